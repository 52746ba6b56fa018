/* The sequences of the server and the queue in front of them.
 *
 * --parallel N contexts (each its own KV cache and scratch) serve N requests
 * at once; more wait in a FIFO queue of at most --queue entries, and beyond
 * that a submit is refused (the HTTP layer answers 503). One worker thread
 * steps the active sequences in turn: a chunk of prompt (the planned batch)
 * or one generated token per turn, so a long prompt does not stall the
 * others for more than a chunk. Batched decode across sequences will replace
 * the turns; nothing outside this file sees the difference.
 *
 * A job is shared by the HTTP thread that submitted it (the consumer) and
 * the worker; each holds a reference, and the last release frees it. The
 * worker hands generated text over as it is released by the stop matcher;
 * the consumer takes it with scheduler_wait. A consumer that goes away
 * cancels its job: the worker drops it at its next turn and frees the
 * sequence. */
#ifndef STRATA_SERVER_SCHEDULER_H
#define STRATA_SERVER_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "request.h"
#include "response.h"
#include "strata.h"
#include "text_buffer.h"

typedef struct scheduler scheduler;
typedef struct sched_job sched_job;

typedef struct scheduler_params {
    int n_sequences;          /* >= 1 */
    int max_queue;            /* >= 0 */
    strata_dtype kv_dtype;
} scheduler_params;

/* What a job is asked to do. scheduler_submit takes over prompt and stop. */
typedef struct job_input {
    int32_t *prompt;          /* malloc'ed; 1 <= n_prompt <= the context size */
    size_t n_prompt;
    strata_sampler_params sampling;
    int64_t max_tokens;       /* -1: until end of generation or of the context */
    char *stop[API_MAX_STOP]; /* malloc'ed strings */
    size_t n_stop;
    double arrival;           /* metrics_now_seconds() when the request came in */
} job_input;

/* What scheduler_wait reports. */
typedef struct job_update {
    bool done;                /* nothing more will come */
    bool failed;              /* done with an error instead of a finish */
    int http_status;          /* when failed: 500 (decoding failed), 503 (shutting down), 499 (cancelled) */
    char error[STRATA_ERROR_MESSAGE_MAX + 128];
    api_finish finish;        /* when done and not failed */
    int64_t prompt_tokens;
    int64_t completion_tokens;
} job_update;

typedef enum sched_admit {
    SCHED_ADMITTED,
    SCHED_QUEUE_FULL,         /* every sequence busy and the queue full */
    SCHED_STOPPING,           /* the server is shutting down */
} sched_admit;

/* Creates n_sequences contexts on the model's devices and starts the worker
 * thread. metrics (borrowed) receives token counts and latencies. Fails with
 * the context's status when the devices cannot hold the sequences. */
strata_status scheduler_create(strata_model *model, const scheduler_params *params, server_metrics *metrics,
                               scheduler **out, strata_error *err);
/* Queues the job (taking over input's allocations, whatever the answer).
 * On SCHED_ADMITTED *out holds the consumer's reference. */
sched_admit scheduler_submit(scheduler *sched, job_input *input, sched_job **out);
/* Waits at most timeout_seconds for text or the end of the job: appends the
 * text released since the last call to out and fills update. Returns false
 * when memory for the text ran out (the job is then cancelled). */
bool scheduler_wait(scheduler *sched, sched_job *job, double timeout_seconds, text_buffer *out,
                    job_update *update);
/* The consumer is gone: the job ends at the worker's next turn. */
void scheduler_cancel(scheduler *sched, sched_job *job);
/* Drops the consumer's reference (after cancel, or after done). */
void scheduler_release(scheduler *sched, sched_job *job);
/* Positions a sequence holds (what a prompt may take at most). */
int64_t scheduler_context_size(const scheduler *sched);
/* Sequences busy, requests queued, KV-cache positions used and in all. */
void scheduler_gauges(scheduler *sched, metrics_gauges *out);
/* Finishes the step running now, ends every job (failed, 503) and stops
 * the worker. Blocks until it has. */
void scheduler_stop(scheduler *sched);
/* Stops if needed and frees the contexts. Call it once every consumer has
 * released its job (the HTTP daemon is stopped). */
void scheduler_free(scheduler *sched);

#endif
