/* Host memory read bandwidth: the ceiling of the decode roofline.
 *
 * Threads each sum their own slice of a buffer far larger than the last-level
 * cache; a pass is timed from the moment all threads are released until the
 * last one finishes, and the best of a few passes is kept (the least
 * disturbed by other work on the machine). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "strata.h"

/* 512 MiB: well above the last-level cache of any current CPU (up to a few
 * hundred MiB on large server parts), small enough for a laptop. */
#define BANDWIDTH_BUFFER_BYTES ((size_t)512 << 20)
/* The best of 20 passes (each 20-40 ms): on a shared host the neighbours'
 * traffic comes and goes within a second, and five passes sometimes all fell
 * in a busy stretch, so that a decode measured over seconds read more than
 * this "ceiling" (104-120 % of it on the 2-core development VM). */
#define BANDWIDTH_PASSES 20 /* STRATA_HOST_BANDWIDTH_METHOD (strata.h) says 20 */
#define BANDWIDTH_MAX_THREADS 256

typedef struct bandwidth_shared {
    pthread_mutex_t lock;
    pthread_cond_t go;
    int generation;       /* incremented to release the threads for one pass */
    int finished;         /* threads done with the current pass */
    pthread_cond_t done;
    bool quit;
} bandwidth_shared;

typedef struct bandwidth_worker {
    bandwidth_shared *shared;
    const uint64_t *data;
    size_t n_words;
    uint64_t sink; /* keeps the reads from being optimized away */
} bandwidth_worker;

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* The measurement must not depend on the build type: a Debug build would
 * otherwise report half the bandwidth of the hardware. */
#if defined(__GNUC__) && !defined(__clang__)
#define BANDWIDTH_OPTIMIZED __attribute__((optimize("O2")))
#else
#define BANDWIDTH_OPTIMIZED
#endif

/* Sums the slice with four independent accumulators so the loop is bound by
 * loads, not by one dependency chain. */
BANDWIDTH_OPTIMIZED static uint64_t read_slice(const uint64_t *data, size_t n_words)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 8 <= n_words; i += 8) {
        a += data[i] ^ data[i + 4];
        b += data[i + 1] ^ data[i + 5];
        c += data[i + 2] ^ data[i + 6];
        d += data[i + 3] ^ data[i + 7];
    }
    for (; i < n_words; i++)
        a += data[i];
    return a + b + c + d;
}

static void *bandwidth_thread(void *arg)
{
    bandwidth_worker *worker = arg;
    bandwidth_shared *shared = worker->shared;
    int seen_generation = 0;
    for (;;) {
        pthread_mutex_lock(&shared->lock);
        while (shared->generation == seen_generation && !shared->quit)
            pthread_cond_wait(&shared->go, &shared->lock);
        bool quit = shared->quit;
        seen_generation = shared->generation;
        pthread_mutex_unlock(&shared->lock);
        if (quit)
            return NULL;
        worker->sink += read_slice(worker->data, worker->n_words);
        pthread_mutex_lock(&shared->lock);
        shared->finished++;
        pthread_cond_signal(&shared->done);
        pthread_mutex_unlock(&shared->lock);
    }
}

static int online_cores(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > BANDWIDTH_MAX_THREADS ? BANDWIDTH_MAX_THREADS : (int)cores;
}

strata_status strata_measure_host_bandwidth(int n_threads, double *bytes_per_second, strata_error *err)
{
    *bytes_per_second = 0;
    if (n_threads < 0 || n_threads > BANDWIDTH_MAX_THREADS)
        return strata_fail(err, STRATA_INVALID_INPUT, "bandwidth: %d threads is outside [0, %d]", n_threads,
                           BANDWIDTH_MAX_THREADS);
    if (n_threads == 0)
        n_threads = online_cores();

    strata_status status = STRATA_OK;
    size_t n_words = BANDWIDTH_BUFFER_BYTES / sizeof(uint64_t);
    uint64_t *buffer = malloc(BANDWIDTH_BUFFER_BYTES);
    bandwidth_worker *workers = calloc((size_t)n_threads, sizeof *workers);
    pthread_t *threads = calloc((size_t)n_threads, sizeof *threads);
    bandwidth_shared shared = {.generation = 0};
    int started = 0;
    bool sync_ready = false;
    if (!buffer || !workers || !threads) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "bandwidth: cannot allocate a %zu MiB buffer",
                             BANDWIDTH_BUFFER_BYTES >> 20);
        goto fail;
    }
    /* touch every page so the passes measure reads, not page faults */
    for (size_t i = 0; i < n_words; i++)
        buffer[i] = i * 0x9E3779B97F4A7C15ull;

    if (pthread_mutex_init(&shared.lock, NULL) != 0)
        goto fail_threads;
    if (pthread_cond_init(&shared.go, NULL) != 0) {
        pthread_mutex_destroy(&shared.lock);
        goto fail_threads;
    }
    if (pthread_cond_init(&shared.done, NULL) != 0) {
        pthread_cond_destroy(&shared.go);
        pthread_mutex_destroy(&shared.lock);
        goto fail_threads;
    }
    sync_ready = true;
    size_t words_per_thread = n_words / (size_t)n_threads;
    for (int t = 0; t < n_threads; t++) {
        workers[t].shared = &shared;
        workers[t].data = buffer + (size_t)t * words_per_thread;
        workers[t].n_words = t == n_threads - 1 ? n_words - (size_t)t * words_per_thread : words_per_thread;
        if (pthread_create(&threads[t], NULL, bandwidth_thread, &workers[t]) != 0)
            goto fail_threads;
        started++;
    }

    double best_seconds = 0;
    for (int pass = 0; pass < BANDWIDTH_PASSES; pass++) {
        pthread_mutex_lock(&shared.lock);
        shared.finished = 0;
        shared.generation++;
        double start = now_seconds();
        pthread_cond_broadcast(&shared.go);
        while (shared.finished < n_threads)
            pthread_cond_wait(&shared.done, &shared.lock);
        double seconds = now_seconds() - start;
        pthread_mutex_unlock(&shared.lock);
        if (pass == 0 || seconds < best_seconds)
            best_seconds = seconds;
    }
    *bytes_per_second = best_seconds > 0 ? (double)(n_words * sizeof(uint64_t)) / best_seconds : 0;
    goto cleanup;

fail_threads:
    status = strata_fail(err, STRATA_OUT_OF_MEMORY, "bandwidth: cannot start %d threads", n_threads);
fail:
cleanup:
    if (sync_ready) {
        pthread_mutex_lock(&shared.lock);
        shared.quit = true;
        pthread_cond_broadcast(&shared.go);
        pthread_mutex_unlock(&shared.lock);
        for (int t = 0; t < started; t++)
            pthread_join(threads[t], NULL);
        pthread_cond_destroy(&shared.done);
        pthread_cond_destroy(&shared.go);
        pthread_mutex_destroy(&shared.lock);
    }
    free(threads);
    free(workers);
    free(buffer);
    return status;
}
