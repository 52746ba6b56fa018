/* Fork-join thread pool. Workers sleep on a condition variable between jobs
 * (the machine may be shared, so no spinning while idle); a job is published
 * by bumping a generation counter, and chunks are claimed with an atomic
 * counter so uneven chunks balance themselves. */
#include "cpu_threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct pool_job {
    cpu_range_fn fn;
    void *arg;
    int64_t n;
    int64_t chunk;
    atomic_int_fast64_t next; /* first index not yet claimed */
} pool_job;

struct cpu_threadpool {
    int n_threads;
    int n_workers_started;
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t job_ready;
    pthread_cond_t job_done;
    uint64_t generation; /* bumped for each job; guarded by mutex */
    int workers_busy;    /* workers still inside the current job */
    bool stopping;
    pool_job job;
};

typedef struct worker_start {
    cpu_threadpool *pool;
    int thread_index;
} worker_start;

static void run_chunks(pool_job *job, int thread_index)
{
    for (;;) {
        int64_t begin = atomic_fetch_add(&job->next, job->chunk);
        if (begin >= job->n)
            return;
        int64_t end = begin + job->chunk < job->n ? begin + job->chunk : job->n;
        job->fn(job->arg, begin, end, thread_index);
    }
}

static void *worker_main(void *arg)
{
    worker_start start = *(worker_start *)arg;
    free(arg);
    cpu_threadpool *pool = start.pool;
    /* jobs may be published before this thread first runs: count from the
     * generation the pool was created with, not the one seen on arrival */
    uint64_t seen = 0;
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        while (pool->generation == seen && !pool->stopping)
            pthread_cond_wait(&pool->job_ready, &pool->mutex);
        if (pool->stopping)
            break;
        seen = pool->generation;
        pthread_mutex_unlock(&pool->mutex);
        run_chunks(&pool->job, start.thread_index);
        pthread_mutex_lock(&pool->mutex);
        if (--pool->workers_busy == 0)
            pthread_cond_signal(&pool->job_done);
    }
    pthread_mutex_unlock(&pool->mutex);
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
    pool->stopping = true;
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
    /* about four chunks per thread: enough to even out, few enough to be cheap */
    int64_t chunk = (n + 4 * (int64_t)n_threads - 1) / (4 * (int64_t)n_threads);
    if (chunk < min_chunk)
        chunk = min_chunk;
    pthread_mutex_lock(&pool->mutex);
    pool->job.fn = fn;
    pool->job.arg = arg;
    pool->job.n = n;
    pool->job.chunk = chunk;
    atomic_store(&pool->job.next, 0);
    pool->workers_busy = pool->n_workers_started;
    pool->generation++;
    pthread_cond_broadcast(&pool->job_ready);
    pthread_mutex_unlock(&pool->mutex);

    run_chunks(&pool->job, 0);

    pthread_mutex_lock(&pool->mutex);
    while (pool->workers_busy > 0)
        pthread_cond_wait(&pool->job_done, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);
}
