/* Sequences, the queue and the worker that steps them (see scheduler.h).
 *
 * Locking: one mutex (sched->lock) guards the queue, the slots' job
 * pointers, every job's shared fields (refs, cancelled, text, done, ...) and
 * the gauges. The worker runs a step (decode, sample, detokenize) without
 * it, touching only its slot's private state, then takes the lock to hand
 * the step's text over. */
#include "scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stop_matcher.h"

struct sched_job {
    job_input input;          /* owned */
    int refs;                 /* consumer + worker (queue or slot) */
    bool cancelled;
    pthread_cond_t changed;   /* text added, or done */
    text_buffer text;         /* released, not yet taken by the consumer */
    bool done, failed;
    int http_status;
    char error[STRATA_ERROR_MESSAGE_MAX + 128];
    api_finish finish;
    int64_t completion_tokens;
    sched_job *next;          /* in the queue */
};

/* One sequence. Fields below `job` belong to the worker alone. */
typedef struct sched_slot {
    strata_context *ctx;
    sched_job *job;           /* NULL when free (under the lock) */
    int64_t positions;        /* tokens in the cache, for the gauges (under the lock) */
    bool started;
    strata_sampler *sampler;
    strata_detokenizer detok;
    stop_matcher stops;
    size_t n_prompt_done;
    int64_t logits_index;     /* the row of the last decode to sample from */
    int64_t n_generated;
    double last_token_time;
    char *piece;              /* detokenizer output of one token */
    size_t piece_size;
    text_buffer released;     /* what this step hands over */
    bool finished, failed;
    int fail_status;          /* when failed: the HTTP status (0: 500) */
    api_finish finish;
    char error[STRATA_ERROR_MESSAGE_MAX + 128];
} sched_slot;

struct scheduler {
    strata_model *model;
    server_metrics *metrics;
    pthread_mutex_t lock;
    pthread_cond_t work;      /* a job was queued or cancelled, or stop was asked */
    pthread_t worker;
    bool worker_started;
    bool stopping;
    int n_slots;
    sched_slot *slots;
    int next_slot;            /* round robin */
    sched_job *queue_head, *queue_tail;
    int n_queued;
    int max_queue;
    int64_t n_ctx;
    int64_t batch;
};

/* --- jobs ------------------------------------------------------------------------------------ */

static void job_free(sched_job *job)
{
    free(job->input.prompt);
    for (size_t i = 0; i < job->input.n_stop; i++)
        free(job->input.stop[i]);
    text_buffer_free(&job->text);
    pthread_cond_destroy(&job->changed);
    free(job);
}

/* Drops one reference; the caller holds the lock. */
static void job_unref_locked(sched_job *job)
{
    if (--job->refs == 0)
        job_free(job);
}

/* Marks the job failed and done and wakes its consumer; lock held. */
static void job_fail_locked(sched_job *job, int http_status, const char *message)
{
    job->done = true;
    job->failed = true;
    job->http_status = http_status;
    snprintf(job->error, sizeof job->error, "%s", message);
    pthread_cond_broadcast(&job->changed);
}

static void free_input(job_input *input)
{
    free(input->prompt);
    input->prompt = NULL;
    for (size_t i = 0; i < input->n_stop; i++)
        free(input->stop[i]);
    input->n_stop = 0;
}

sched_admit scheduler_submit(scheduler *sched, job_input *input, sched_job **out)
{
    *out = NULL;
    sched_job *job = calloc(1, sizeof *job);
    pthread_condattr_t attr;
    bool cond_ok = false;
    if (job && pthread_condattr_init(&attr) == 0) {
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        cond_ok = pthread_cond_init(&job->changed, &attr) == 0;
        pthread_condattr_destroy(&attr);
    }
    if (!cond_ok) {
        free(job);
        free_input(input);
        return SCHED_QUEUE_FULL; /* no memory for one more request is the same answer: try later */
    }
    job->input = *input;
    memset(input, 0, sizeof *input);
    job->refs = 2;
    pthread_mutex_lock(&sched->lock);
    sched_admit answer = SCHED_ADMITTED;
    int busy = 0;
    for (int i = 0; i < sched->n_slots; i++)
        busy += sched->slots[i].job != NULL;
    if (sched->stopping)
        answer = SCHED_STOPPING;
    else if (busy == sched->n_slots && sched->n_queued >= sched->max_queue)
        answer = SCHED_QUEUE_FULL;
    if (answer != SCHED_ADMITTED) {
        pthread_mutex_unlock(&sched->lock);
        job->refs = 1;
        job_free(job);
        return answer;
    }
    if (sched->queue_tail)
        sched->queue_tail->next = job;
    else
        sched->queue_head = job;
    sched->queue_tail = job;
    sched->n_queued++;
    pthread_cond_signal(&sched->work);
    pthread_mutex_unlock(&sched->lock);
    *out = job;
    return SCHED_ADMITTED;
}

bool scheduler_wait(scheduler *sched, sched_job *job, double timeout_seconds, text_buffer *out,
                    job_update *update)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    long long nanos = (long long)(timeout_seconds * 1e9) + deadline.tv_nsec;
    deadline.tv_sec += (time_t)(nanos / 1000000000LL);
    deadline.tv_nsec = (long)(nanos % 1000000000LL);
    pthread_mutex_lock(&sched->lock);
    while (!job->done && job->text.len == 0)
        if (pthread_cond_timedwait(&job->changed, &sched->lock, &deadline) == ETIMEDOUT)
            break;
    bool ok = text_buffer_append(out, job->text.data ? job->text.data : "", job->text.len);
    if (ok)
        text_buffer_clear(&job->text);
    /* the text is handed over before done is reported, so nothing is lost */
    memset(update, 0, sizeof *update);
    update->done = job->done && job->text.len == 0;
    update->failed = job->failed;
    update->http_status = job->http_status;
    snprintf(update->error, sizeof update->error, "%s", job->error);
    update->finish = job->finish;
    update->prompt_tokens = (int64_t)job->input.n_prompt;
    update->completion_tokens = job->completion_tokens;
    if (!ok) {
        job->cancelled = true;
        pthread_cond_signal(&sched->work);
    }
    pthread_mutex_unlock(&sched->lock);
    return ok;
}

void scheduler_cancel(scheduler *sched, sched_job *job)
{
    pthread_mutex_lock(&sched->lock);
    if (!job->done) {
        job->cancelled = true;
        pthread_cond_signal(&sched->work);
    }
    pthread_mutex_unlock(&sched->lock);
}

void scheduler_release(scheduler *sched, sched_job *job)
{
    if (!job)
        return;
    pthread_mutex_lock(&sched->lock);
    job_unref_locked(job);
    pthread_mutex_unlock(&sched->lock);
}

/* --- one step of a sequence (no lock held) ----------------------------------------------------- */

static void slot_finish(sched_slot *slot, api_finish finish)
{
    slot->finished = true;
    slot->finish = finish;
}

static void slot_fail(sched_slot *slot, const char *what, const strata_error *err)
{
    slot->finished = true;
    slot->failed = true;
    snprintf(slot->error, sizeof slot->error, "%s: %s", what, err ? err->message : "out of memory");
}

/* Sets up the slot for its new job: a fresh sampler that has seen the
 * prompt, an empty cache, the detokenizer and the stop matcher. */
static bool slot_start(scheduler *sched, sched_slot *slot)
{
    const job_input *input = &slot->job->input;
    strata_error err = {0};
    strata_context_reset(slot->ctx);
    if (strata_sampler_create(&input->sampling, strata_model_hparams(sched->model)->n_vocab, &slot->sampler, &err) !=
        STRATA_OK) {
        slot_fail(slot, "creating the sampler", &err);
        return false;
    }
    for (size_t i = 0; i < input->n_prompt; i++)
        strata_sampler_accept(slot->sampler, input->prompt[i]);
    const strata_tokenizer *tokenizer = strata_model_tokenizer(sched->model);
    if (tokenizer) {
        strata_detokenizer_init(&slot->detok, tokenizer, false);
        /* the generated text continues the prompt's (as `strata run` prints it) */
        slot->detok.at_start = false;
    }
    stop_matcher_init(&slot->stops, input->stop, input->n_stop);
    slot->n_prompt_done = 0;
    slot->n_generated = 0;
    slot->started = true;
    return true;
}

/* Passes bytes of generated text through UTF-8 repair and the stop
 * matcher into the step's released text; a stop string ends the job. */
static void slot_emit(sched_slot *slot, const char *bytes, size_t len)
{
    text_buffer clean = {0};
    if (!text_buffer_append_utf8(&clean, bytes, len)) {
        slot_fail(slot, "generating", NULL);
        return;
    }
    int found = stop_matcher_feed(&slot->stops, clean.data ? clean.data : "", clean.len, &slot->released);
    text_buffer_free(&clean);
    if (found < 0)
        slot_fail(slot, "generating", NULL);
    else if (found > 0)
        slot_finish(slot, API_FINISH_STOP);
}

/* The token's text, or its id when the model has no tokenizer. */
static void slot_emit_token(scheduler *sched, sched_slot *slot, int32_t token)
{
    const strata_tokenizer *tokenizer = strata_model_tokenizer(sched->model);
    if (!tokenizer) {
        char id_text[24];
        int n = snprintf(id_text, sizeof id_text, "%s%d", slot->n_generated > 1 ? " " : "", token);
        slot_emit(slot, id_text, (size_t)n);
        return;
    }
    int64_t n = strata_detokenizer_push(&slot->detok, token, slot->piece, slot->piece_size);
    if (n > 0)
        slot_emit(slot, slot->piece, (size_t)n);
}

/* At the end: what the detokenizer and the stop matcher still hold. */
static void slot_flush(scheduler *sched, sched_slot *slot)
{
    if (strata_model_tokenizer(sched->model) && !slot->stops.stopped) {
        char rest[16];
        int64_t n = strata_detokenizer_flush(&slot->detok, rest, sizeof rest);
        if (n > 0)
            slot_emit(slot, rest, (size_t)n);
    }
    int found = stop_matcher_flush(&slot->stops, &slot->released);
    if (found < 0)
        slot_fail(slot, "generating", NULL);
    else if (found > 0)
        slot->finish = API_FINISH_STOP;
}

/* One turn: a chunk of prompt, then (once the prompt is in) one token. */
static void slot_step(scheduler *sched, sched_slot *slot)
{
    strata_error err = {0};
    const job_input *input = &slot->job->input;
    if (!slot->started && !slot_start(sched, slot))
        return;
    if (slot->n_prompt_done < input->n_prompt) {
        size_t left = input->n_prompt - slot->n_prompt_done;
        size_t chunk = left < (size_t)sched->batch ? left : (size_t)sched->batch;
        if (strata_decode(slot->ctx, input->prompt + slot->n_prompt_done, (int64_t)chunk, false, &err) != STRATA_OK) {
            slot_fail(slot, "decoding the prompt", &err);
            return;
        }
        slot->n_prompt_done += chunk;
        slot->logits_index = (int64_t)chunk - 1;
        if (slot->n_prompt_done < input->n_prompt)
            return;
    }
    const float *logits = strata_get_logits(slot->ctx, slot->logits_index);
    int32_t token = strata_sampler_sample(slot->sampler, logits);
    const strata_tokenizer *tokenizer = strata_model_tokenizer(sched->model);
    double now = metrics_now_seconds();
    if (tokenizer && strata_token_is_eog(tokenizer, token)) {
        slot_finish(slot, API_FINISH_STOP);
        return;
    }
    strata_sampler_accept(slot->sampler, token);
    slot->n_generated++;
    if (slot->n_generated == 1)
        metrics_observe_first_token(sched->metrics, now - input->arrival);
    else
        metrics_observe_token(sched->metrics, now - slot->last_token_time);
    slot->last_token_time = now;
    slot_emit_token(sched, slot, token);
    if (slot->finished)
        return;
    if (input->max_tokens >= 0 && slot->n_generated >= input->max_tokens) {
        slot_finish(slot, API_FINISH_LENGTH);
        return;
    }
    if (strata_context_position(slot->ctx) >= strata_context_size(slot->ctx)) {
        slot_finish(slot, API_FINISH_LENGTH);
        return;
    }
    if (strata_decode(slot->ctx, &token, 1, false, &err) != STRATA_OK) {
        slot_fail(slot, "decoding", &err);
        return;
    }
    slot->logits_index = 0;
}

/* --- the worker ------------------------------------------------------------------------------- */

/* Hands the step's text to the job and, when the slot finished, ends the
 * job and frees the slot. Lock held. */
static void slot_publish_locked(scheduler *sched, sched_slot *slot)
{
    sched_job *job = slot->job;
    if (slot->finished && !slot->failed)
        slot_flush(sched, slot);
    if (slot->released.len > 0) {
        if (!text_buffer_append(&job->text, slot->released.data, slot->released.len)) {
            slot->finished = slot->failed = true;
            snprintf(slot->error, sizeof slot->error, "out of memory for the generated text");
        }
        text_buffer_clear(&slot->released);
        pthread_cond_broadcast(&job->changed);
    }
    job->completion_tokens = slot->n_generated;
    slot->positions = strata_context_position(slot->ctx);
    if (!slot->finished)
        return;
    if (slot->failed) {
        job_fail_locked(job, slot->fail_status ? slot->fail_status : 500, slot->error);
    } else {
        job->done = true;
        job->finish = slot->finish;
        pthread_cond_broadcast(&job->changed);
    }
    metrics_count_tokens(sched->metrics, (int64_t)slot->n_prompt_done, slot->n_generated);
    strata_sampler_free(slot->sampler);
    slot->sampler = NULL;
    stop_matcher_free(&slot->stops);
    slot->started = slot->finished = slot->failed = false;
    slot->fail_status = 0;
    slot->job = NULL;
    slot->positions = 0;
    job_unref_locked(job);
}

/* Moves queued jobs into free slots; drops cancelled ones. Lock held. */
static void admit_locked(scheduler *sched)
{
    for (int i = 0; i < sched->n_slots && sched->queue_head; i++) {
        if (sched->slots[i].job)
            continue;
        sched_job *job = sched->queue_head;
        sched->queue_head = job->next;
        if (!sched->queue_head)
            sched->queue_tail = NULL;
        sched->n_queued--;
        job->next = NULL;
        if (job->cancelled) {
            job_fail_locked(job, 499, "cancelled");
            job_unref_locked(job);
            i--;
            continue;
        }
        sched->slots[i].job = job;
    }
}

/* The next busy slot after the last one served, or -1. Lock held. */
static int next_busy_locked(scheduler *sched)
{
    for (int k = 0; k < sched->n_slots; k++) {
        int i = (sched->next_slot + k) % sched->n_slots;
        if (sched->slots[i].job) {
            sched->next_slot = (i + 1) % sched->n_slots;
            return i;
        }
    }
    return -1;
}

/* Ends every job in the slots and the queue: the server is stopping. */
static void end_all_locked(scheduler *sched)
{
    for (int i = 0; i < sched->n_slots; i++) {
        sched_slot *slot = &sched->slots[i];
        if (!slot->job)
            continue;
        slot->finished = slot->failed = true;
        slot->fail_status = 503;
        snprintf(slot->error, sizeof slot->error, "the server is shutting down");
        slot_publish_locked(sched, slot);
        slot->job = NULL;
    }
    while (sched->queue_head) {
        sched_job *job = sched->queue_head;
        sched->queue_head = job->next;
        job_fail_locked(job, 503, "the server is shutting down");
        job_unref_locked(job);
    }
    sched->queue_tail = NULL;
    sched->n_queued = 0;
}

static void *worker_main(void *arg)
{
    scheduler *sched = arg;
    pthread_mutex_lock(&sched->lock);
    while (!sched->stopping) {
        admit_locked(sched);
        int i = next_busy_locked(sched);
        if (i < 0) {
            pthread_cond_wait(&sched->work, &sched->lock);
            continue;
        }
        sched_slot *slot = &sched->slots[i];
        if (slot->job->cancelled) {
            slot->finished = slot->failed = true;
            snprintf(slot->error, sizeof slot->error, "cancelled: the client went away");
            slot_publish_locked(sched, slot);
            continue;
        }
        pthread_mutex_unlock(&sched->lock);
        slot_step(sched, slot);
        pthread_mutex_lock(&sched->lock);
        slot_publish_locked(sched, slot);
    }
    end_all_locked(sched);
    pthread_mutex_unlock(&sched->lock);
    return NULL;
}

/* --- life cycle ------------------------------------------------------------------------------- */

strata_status scheduler_create(strata_model *model, const scheduler_params *params, server_metrics *metrics,
                               scheduler **out, strata_error *err)
{
    *out = NULL;
    if (params->n_sequences < 1 || params->max_queue < 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "sequences %d and queue %d: need at least one sequence",
                           params->n_sequences, params->max_queue);
    scheduler *sched = calloc(1, sizeof *sched);
    if (!sched)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    strata_status status = STRATA_OUT_OF_MEMORY;
    bool lock_made = false, cond_made = false;
    sched->model = model;
    sched->metrics = metrics;
    sched->max_queue = params->max_queue;
    sched->batch = strata_model_plan(model)->max_batch;
    if (sched->batch < 1)
        sched->batch = 512;
    if (pthread_mutex_init(&sched->lock, NULL) != 0)
        goto fail;
    lock_made = true;
    if (pthread_cond_init(&sched->work, NULL) != 0)
        goto fail;
    cond_made = true;
    sched->slots = calloc((size_t)params->n_sequences, sizeof *sched->slots);
    if (!sched->slots)
        goto fail;
    sched->n_slots = params->n_sequences;
    const strata_tokenizer *tokenizer = strata_model_tokenizer(model);
    for (int i = 0; i < sched->n_slots; i++) {
        sched_slot *slot = &sched->slots[i];
        strata_context_params ctx_params = strata_context_default_params();
        ctx_params.kv_dtype = params->kv_dtype;
        status = strata_context_create(model, &ctx_params, &slot->ctx, err);
        if (status != STRATA_OK) {
            strata_error_prefix(err, "sequence %d of %d (try a smaller --parallel or --ctx)", i + 1, sched->n_slots);
            goto fail;
        }
        slot->piece_size = tokenizer ? strata_detokenizer_out_size(tokenizer) : 16;
        if (!(slot->piece = malloc(slot->piece_size))) {
            status = strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
            goto fail;
        }
    }
    sched->n_ctx = strata_context_size(sched->slots[0].ctx);
    if (pthread_create(&sched->worker, NULL, worker_main, sched) != 0) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "cannot start the scheduler's thread");
        goto fail;
    }
    sched->worker_started = true;
    *out = sched;
    return STRATA_OK;
fail:
    if (status == STRATA_OUT_OF_MEMORY && err && err->message[0] == '\0')
        strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (!cond_made && lock_made)
        pthread_mutex_destroy(&sched->lock);
    if (cond_made) {
        scheduler_free(sched);
    } else {
        free(sched->slots);
        free(sched);
    }
    return status;
}

int64_t scheduler_context_size(const scheduler *sched)
{
    return sched->n_ctx;
}

void scheduler_gauges(scheduler *sched, metrics_gauges *out)
{
    pthread_mutex_lock(&sched->lock);
    out->active_requests = 0;
    out->kv_used_positions = 0;
    for (int i = 0; i < sched->n_slots; i++) {
        out->active_requests += sched->slots[i].job != NULL;
        out->kv_used_positions += sched->slots[i].positions;
    }
    out->queued_requests = sched->n_queued;
    out->n_sequences = sched->n_slots;
    out->kv_total_positions = sched->n_ctx * sched->n_slots;
    pthread_mutex_unlock(&sched->lock);
}

void scheduler_stop(scheduler *sched)
{
    pthread_mutex_lock(&sched->lock);
    sched->stopping = true;
    pthread_cond_signal(&sched->work);
    pthread_mutex_unlock(&sched->lock);
    if (sched->worker_started) {
        pthread_join(sched->worker, NULL);
        sched->worker_started = false;
    }
}

void scheduler_free(scheduler *sched)
{
    if (!sched)
        return;
    scheduler_stop(sched);
    for (int i = 0; i < sched->n_slots; i++) {
        strata_context_free(sched->slots[i].ctx);
        free(sched->slots[i].piece);
        text_buffer_free(&sched->slots[i].released);
    }
    free(sched->slots);
    pthread_cond_destroy(&sched->work);
    pthread_mutex_destroy(&sched->lock);
    free(sched);
}
