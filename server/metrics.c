/* Prometheus counters and histograms of the server (see metrics.h). */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const double first_token_bounds[METRICS_TTFT_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                                 0.5,   1,    2.5,   5,    10,  30};
static const double token_bounds[METRICS_TOKEN_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                           0.05,   0.1,   0.25,   0.5,   1,    2.5};

static const char *const endpoint_names[METRICS_ENDPOINT_COUNT] = {
    "/health", "/v1/models", "/v1/completions", "/v1/chat/completions", "/metrics", "other"};

double metrics_now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

bool metrics_init(server_metrics *metrics)
{
    memset(metrics, 0, sizeof *metrics);
    metrics->time_to_first_token.bounds = first_token_bounds;
    metrics->time_to_first_token.n_bounds = METRICS_TTFT_BUCKETS;
    metrics->time_per_token.bounds = token_bounds;
    metrics->time_per_token.n_bounds = METRICS_TOKEN_BUCKETS;
    return pthread_mutex_init(&metrics->lock, NULL) == 0;
}

void metrics_destroy(server_metrics *metrics)
{
    pthread_mutex_destroy(&metrics->lock);
}

void metrics_count_request(server_metrics *metrics, metrics_endpoint endpoint, int http_status)
{
    pthread_mutex_lock(&metrics->lock);
    for (int i = 0; i < METRICS_MAX_STATUSES; i++) {
        /* statuses fill from the front; a table full of other statuses drops the count */
        if (metrics->statuses[endpoint][i] == 0)
            metrics->statuses[endpoint][i] = http_status;
        if (metrics->statuses[endpoint][i] == http_status) {
            metrics->requests[endpoint][i]++;
            break;
        }
    }
    pthread_mutex_unlock(&metrics->lock);
}

void metrics_count_tokens(server_metrics *metrics, int64_t prompt_tokens, int64_t generated_tokens)
{
    pthread_mutex_lock(&metrics->lock);
    metrics->prompt_tokens += (uint64_t)(prompt_tokens > 0 ? prompt_tokens : 0);
    metrics->generated_tokens += (uint64_t)(generated_tokens > 0 ? generated_tokens : 0);
    pthread_mutex_unlock(&metrics->lock);
}

static void observe(server_metrics *metrics, metrics_histogram *histogram, double seconds)
{
    pthread_mutex_lock(&metrics->lock);
    int bucket = 0;
    while (bucket < histogram->n_bounds && seconds > histogram->bounds[bucket])
        bucket++;
    histogram->counts[bucket]++;
    histogram->sum += seconds;
    histogram->count++;
    pthread_mutex_unlock(&metrics->lock);
}

void metrics_observe_first_token(server_metrics *metrics, double seconds)
{
    observe(metrics, &metrics->time_to_first_token, seconds);
}

void metrics_observe_token(server_metrics *metrics, double seconds)
{
    observe(metrics, &metrics->time_per_token, seconds);
}

/* printf into out; false when memory runs out. */
static bool emit(text_buffer *out, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static bool emit(text_buffer *out, const char *fmt, ...)
{
    va_list args, again;
    va_start(args, fmt);
    va_copy(again, args);
    int n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    bool ok = text && vsnprintf(text, (size_t)n + 1, fmt, again) == n && text_buffer_append(out, text, (size_t)n);
    va_end(again);
    free(text);
    return ok;
}

static bool render_histogram(text_buffer *out, const char *name, const char *help, const metrics_histogram *h)
{
    bool ok = emit(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (int b = 0; b < h->n_bounds; b++) {
        cumulative += h->counts[b];
        ok = ok && emit(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[b], (unsigned long long)cumulative);
    }
    cumulative += h->counts[h->n_bounds];
    ok = ok && emit(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
    ok = ok && emit(out, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
    return ok;
}

bool metrics_render(server_metrics *metrics, const metrics_gauges *gauges, text_buffer *out)
{
    pthread_mutex_lock(&metrics->lock);
    bool ok = emit(out, "# HELP strata_requests_total HTTP requests answered, by endpoint and status.\n"
                        "# TYPE strata_requests_total counter\n");
    for (int e = 0; e < METRICS_ENDPOINT_COUNT; e++)
        for (int i = 0; i < METRICS_MAX_STATUSES && metrics->statuses[e][i]; i++)
            ok = ok && emit(out, "strata_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", endpoint_names[e],
                            metrics->statuses[e][i], (unsigned long long)metrics->requests[e][i]);
    ok = ok && emit(out,
                    "# HELP strata_prompt_tokens_total Prompt tokens of finished completions.\n"
                    "# TYPE strata_prompt_tokens_total counter\nstrata_prompt_tokens_total %llu\n"
                    "# HELP strata_generated_tokens_total Tokens generated by finished completions.\n"
                    "# TYPE strata_generated_tokens_total counter\nstrata_generated_tokens_total %llu\n",
                    (unsigned long long)metrics->prompt_tokens, (unsigned long long)metrics->generated_tokens);
    ok = ok && render_histogram(out, "strata_time_to_first_token_seconds",
                                "From a request's arrival to its first generated token.",
                                &metrics->time_to_first_token);
    ok = ok && render_histogram(out, "strata_time_per_token_seconds",
                                "Between two generated tokens of one request.", &metrics->time_per_token);
    pthread_mutex_unlock(&metrics->lock);
    ok = ok && emit(out,
                    "# HELP strata_requests_active Requests holding a sequence.\n"
                    "# TYPE strata_requests_active gauge\nstrata_requests_active %d\n"
                    "# HELP strata_requests_queued Requests waiting for a sequence.\n"
                    "# TYPE strata_requests_queued gauge\nstrata_requests_queued %d\n"
                    "# HELP strata_sequences Sequences (--parallel), each with its own KV cache.\n"
                    "# TYPE strata_sequences gauge\nstrata_sequences %d\n",
                    gauges->active_requests, gauges->queued_requests, gauges->n_sequences);
    ok = ok && emit(out,
                    "# HELP strata_kv_cache_used_positions Positions held in the sequences' KV caches.\n"
                    "# TYPE strata_kv_cache_used_positions gauge\nstrata_kv_cache_used_positions %lld\n"
                    "# HELP strata_kv_cache_positions Positions the sequences' KV caches hold in all.\n"
                    "# TYPE strata_kv_cache_positions gauge\nstrata_kv_cache_positions %lld\n"
                    "# HELP strata_kv_cache_usage_ratio Used over total KV-cache positions.\n"
                    "# TYPE strata_kv_cache_usage_ratio gauge\nstrata_kv_cache_usage_ratio %.6f\n"
                    "# HELP strata_ready Whether the model is loaded and requests are served.\n"
                    "# TYPE strata_ready gauge\nstrata_ready %d\n",
                    (long long)gauges->kv_used_positions, (long long)gauges->kv_total_positions,
                    gauges->kv_total_positions > 0
                        ? (double)gauges->kv_used_positions / (double)gauges->kv_total_positions
                        : 0.0,
                    gauges->ready ? 1 : 0);
    return ok;
}
