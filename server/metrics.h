/* The server's counters and histograms, rendered in Prometheus' text
 * exposition format for GET /metrics.
 *
 * Thread-safe: HTTP threads count requests, the scheduler's worker counts
 * tokens and latencies, a scrape renders them; one mutex guards them all. */
#ifndef STRATA_SERVER_METRICS_H
#define STRATA_SERVER_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "text_buffer.h"

/* The endpoints requests are counted by ("other" for unknown routes). */
typedef enum metrics_endpoint {
    METRICS_HEALTH,
    METRICS_MODELS,
    METRICS_COMPLETIONS,
    METRICS_CHAT_COMPLETIONS,
    METRICS_METRICS,
    METRICS_OTHER,
    METRICS_ENDPOINT_COUNT
} metrics_endpoint;

#define METRICS_MAX_STATUSES 16       /* distinct HTTP statuses counted per endpoint */
#define METRICS_TTFT_BUCKETS 12
#define METRICS_TOKEN_BUCKETS 12

typedef struct metrics_histogram {
    const double *bounds;             /* upper bounds in seconds, increasing */
    int n_bounds;
    uint64_t counts[16];              /* per bound, not cumulative; [n_bounds] is +Inf */
    double sum;
    uint64_t count;
} metrics_histogram;

typedef struct server_metrics {
    pthread_mutex_t lock;
    int statuses[METRICS_ENDPOINT_COUNT][METRICS_MAX_STATUSES];
    uint64_t requests[METRICS_ENDPOINT_COUNT][METRICS_MAX_STATUSES];
    uint64_t prompt_tokens;
    uint64_t generated_tokens;
    metrics_histogram time_to_first_token;
    metrics_histogram time_per_token;
} server_metrics;

/* What the scheduler reports at scrape time. */
typedef struct metrics_gauges {
    int active_requests;        /* holding a sequence */
    int queued_requests;        /* waiting for one */
    int n_sequences;
    int64_t kv_used_positions;  /* positions in the sequences' KV caches */
    int64_t kv_total_positions;
    bool ready;                 /* the model is loaded */
} metrics_gauges;

/* Seconds on a monotonic clock, for latencies. */
double metrics_now_seconds(void);

/* Initializes the counters (false when the mutex cannot be made). */
bool metrics_init(server_metrics *metrics);
void metrics_destroy(server_metrics *metrics);

/* One answered request of endpoint with its HTTP status. */
void metrics_count_request(server_metrics *metrics, metrics_endpoint endpoint, int http_status);
/* A finished completion's token counts. */
void metrics_count_tokens(server_metrics *metrics, int64_t prompt_tokens, int64_t generated_tokens);
/* From a request's arrival to its first generated token, in seconds. */
void metrics_observe_first_token(server_metrics *metrics, double seconds);
/* Between two generated tokens of one request, in seconds. */
void metrics_observe_token(server_metrics *metrics, double seconds);

/* Appends the exposition text (HELP, TYPE and samples of every metric).
 * Returns false when memory runs out. */
bool metrics_render(server_metrics *metrics, const metrics_gauges *gauges, text_buffer *out);

#endif
