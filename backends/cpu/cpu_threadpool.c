/* Fork-join thread pool. A job is published by bumping a generation counter,
 * and chunks are claimed with an atomic counter so uneven chunks balance
 * themselves; each claim takes a share of what is left, so the chunks shrink
 * towards the end and the threads finish close together. Between jobs, and
 * while the caller waits for the last chunk, a thread first watches the
 * counters for a short while (decode publishes a few hundred small jobs per
 * token, and waking a sleeping thread costs tens of microseconds each time),
 * then sleeps on a condition variable: the machine may be shared, so nobody
 * spins for long. */
#include "cpu_threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long a thread watches before it sleeps; STRATA_CPU_SPIN_US overrides
 * it (0: sleep at once, as an oversubscribed machine would want). */
enum { DEFAULT_SPIN_MICROSECONDS = 200, MAX_SPIN_MICROSECONDS = 100000 };

typedef struct pool_job {
    cpu_range_fn fn;
    void *arg;
    int64_t n;
    int64_t min_chunk;        /* every chunk but the last a multiple of it */
    atomic_int_fast64_t next; /* first index not yet claimed */
} pool_job;

struct cpu_threadpool {
    int n_threads;
    int n_workers_started;
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t job_ready;
    pthread_cond_t job_done;
    /* bumped for each job, under the mutex (so a sleeper cannot miss it),
     * read without it by watching threads */
    atomic_uint_fast64_t generation;
    atomic_int workers_busy; /* workers still inside the current job */
    atomic_bool stopping;
    int64_t spin_nanoseconds;
    pool_job job;
};

typedef struct worker_start {
    cpu_threadpool *pool;
    int thread_index;
} worker_start;

/* Claims chunks of the pool's job until none is left: each a 1/(2 x
 * threads) of the indices not yet claimed, rounded up to a multiple of min_chunk. Large chunks first (few
 * claims), small ones at the end: with equal chunks, whichever thread took
 * the last one kept the others waiting for up to a whole chunk, and decode's
 * few hundred matrix products per token spent 6 % of their samples so
 * (qwen3-8b, two threads, an eighth of the rows per chunk). */
static void run_chunks(cpu_threadpool *pool, int thread_index)
{
    pool_job *job = &pool->job;
    const int64_t share = 2 * (int64_t)pool->n_threads;
    int64_t begin = atomic_load_explicit(&job->next, memory_order_relaxed);
    for (;;) {
        if (begin >= job->n)
            return;
        int64_t left = job->n - begin;
        int64_t size = (left / share + job->min_chunk - 1) / job->min_chunk * job->min_chunk;
        if (size < job->min_chunk)
            size = job->min_chunk;
        int64_t end = size < left ? begin + size : job->n;
        /* on failure begin is reloaded with the index claimed meanwhile */
        if (!atomic_compare_exchange_weak_explicit(&job->next, &begin, end, memory_order_relaxed,
                                                   memory_order_relaxed))
            continue;
        job->fn(job->arg, begin, end, thread_index);
        begin = atomic_load_explicit(&job->next, memory_order_relaxed);
    }
}

static int64_t now_nanoseconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Watches until done(pool, arg) holds or the pool's spin time has passed;
 * returns whether it holds. The clock is read once every 64 pauses. */
static bool spin_until(cpu_threadpool *pool, bool (*done)(cpu_threadpool *, uint64_t), uint64_t arg)
{
    if (pool->spin_nanoseconds <= 0)
        return done(pool, arg);
    int64_t deadline = now_nanoseconds() + pool->spin_nanoseconds;
    for (unsigned i = 1;; i++) {
        if (done(pool, arg))
            return true;
        cpu_relax();
        if (i % 64 == 0 && now_nanoseconds() > deadline)
            return done(pool, arg);
    }
}

static bool job_published(cpu_threadpool *pool, uint64_t seen)
{
    return atomic_load_explicit(&pool->generation, memory_order_acquire) != seen ||
           atomic_load_explicit(&pool->stopping, memory_order_acquire);
}

static bool workers_finished(cpu_threadpool *pool, uint64_t unused)
{
    (void)unused;
    return atomic_load_explicit(&pool->workers_busy, memory_order_acquire) == 0;
}

static void *worker_main(void *arg)
{
    worker_start start = *(worker_start *)arg;
    free(arg);
    cpu_threadpool *pool = start.pool;
    /* jobs may be published before this thread first runs: count from the
     * generation the pool was created with, not the one seen on arrival */
    uint64_t seen = 0;
    for (;;) {
        if (!spin_until(pool, job_published, seen)) {
            pthread_mutex_lock(&pool->mutex);
            while (!job_published(pool, seen))
                pthread_cond_wait(&pool->job_ready, &pool->mutex);
            pthread_mutex_unlock(&pool->mutex);
        }
        if (atomic_load(&pool->stopping))
            break;
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        run_chunks(pool, start.thread_index);
        if (atomic_fetch_sub_explicit(&pool->workers_busy, 1, memory_order_acq_rel) == 1) {
            /* the caller checks workers_busy under the mutex before it sleeps:
             * taking the mutex here means the signal cannot fall between the
             * two */
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_signal(&pool->job_done);
            pthread_mutex_unlock(&pool->mutex);
        }
    }
    return NULL;
}

strata_status cpu_threadpool_create(int n_threads, cpu_threadpool **out, strata_error *err)
{
    *out = NULL;
    if (n_threads < 1)
        return strata_fail(err, STRATA_INVALID_INPUT, "cpu thread pool: %d threads requested (need at least 1)",
                           n_threads);
    cpu_threadpool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "cpu thread pool: out of memory");
    pool->n_threads = n_threads;
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->workers_busy, 0);
    atomic_init(&pool->stopping, false);
    int64_t spin_microseconds = DEFAULT_SPIN_MICROSECONDS;
    const char *spin_text = getenv("STRATA_CPU_SPIN_US");
    if (spin_text && *spin_text) {
        char *end = NULL;
        long long value = strtoll(spin_text, &end, 10);
        if (end && *end == '\0' && value >= 0 && value <= MAX_SPIN_MICROSECONDS)
            spin_microseconds = value;
    }
    pool->spin_nanoseconds = spin_microseconds * 1000;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->job_ready, NULL);
    pthread_cond_init(&pool->job_done, NULL);
    if (n_threads > 1) {
        pool->workers = calloc((size_t)(n_threads - 1), sizeof *pool->workers);
        if (!pool->workers)
            goto fail;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_start *start = malloc(sizeof *start);
        if (!start)
            goto fail;
        start->pool = pool;
        start->thread_index = i;
        if (pthread_create(&pool->workers[i - 1], NULL, worker_main, start) != 0) {
            free(start);
            goto fail;
        }
        pool->n_workers_started++;
    }
    *out = pool;
    return STRATA_OK;
fail:
    cpu_threadpool_destroy(pool);
    return strata_fail(err, STRATA_OUT_OF_MEMORY, "cpu thread pool: could not start %d threads", n_threads);
}

void cpu_threadpool_destroy(cpu_threadpool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->stopping, true);
    pthread_cond_broadcast(&pool->job_ready);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 0; i < pool->n_workers_started; i++)
        pthread_join(pool->workers[i], NULL);
    pthread_cond_destroy(&pool->job_done);
    pthread_cond_destroy(&pool->job_ready);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->workers);
    free(pool);
}

int cpu_threadpool_size(const cpu_threadpool *pool)
{
    return pool ? pool->n_threads : 1;
}

void cpu_parallel_for(cpu_threadpool *pool, int64_t n, int64_t min_chunk, cpu_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (min_chunk < 1)
        min_chunk = 1;
    int n_threads = cpu_threadpool_size(pool);
    if (n_threads == 1 || pool->n_workers_started == 0 || n <= min_chunk) {
        fn(arg, 0, n, 0);
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    pool->job.fn = fn;
    pool->job.arg = arg;
    pool->job.n = n;
    pool->job.min_chunk = min_chunk;
    atomic_store(&pool->job.next, 0);
    atomic_store(&pool->workers_busy, pool->n_workers_started);
    /* the release store publishes the job's fields to watching workers */
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->job_ready);
    pthread_mutex_unlock(&pool->mutex);

    run_chunks(pool, 0);

    if (!spin_until(pool, workers_finished, 0)) {
        pthread_mutex_lock(&pool->mutex);
        while (!workers_finished(pool, 0))
            pthread_cond_wait(&pool->job_done, &pool->mutex);
        pthread_mutex_unlock(&pool->mutex);
    }
}
