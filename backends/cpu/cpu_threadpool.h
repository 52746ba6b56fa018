/* A persistent pool of worker threads with one fork-join primitive: a
 * parallel for over an index range. The calling thread takes part, so a pool
 * of n threads starts n - 1 workers. */
#ifndef STRATA_CPU_THREADPOOL_H
#define STRATA_CPU_THREADPOOL_H

#include <stdint.h>

#include "../../base/status.h"

typedef struct cpu_threadpool cpu_threadpool;

/* Work on the half-open range [begin, end); thread_index is in
 * [0, cpu_threadpool_size) and is stable for the call, so it can pick a
 * per-thread scratch area. */
typedef void (*cpu_range_fn)(void *arg, int64_t begin, int64_t end, int thread_index);

/* Starts n_threads - 1 workers (n_threads >= 1). Returns STRATA_OUT_OF_MEMORY
 * (with a message) when memory or a thread cannot be had; *out is then NULL. */
strata_status cpu_threadpool_create(int n_threads, cpu_threadpool **out, strata_error *err);

/* Stops and joins every worker, then frees the pool. NULL is fine. Must not
 * be called while a parallel_for is running. */
void cpu_threadpool_destroy(cpu_threadpool *pool);

/* Threads that take part in a parallel_for, the caller included. */
int cpu_threadpool_size(const cpu_threadpool *pool);

/* Calls fn over [0, n) split into chunks of at least min_chunk indices,
 * spread over the pool, and returns when every chunk is done. Runs inline on
 * the caller when the range is too small to share. Not reentrant: one
 * parallel_for at a time per pool, and fn must not call back into the pool. */
void cpu_parallel_for(cpu_threadpool *pool, int64_t n, int64_t min_chunk, cpu_range_fn fn, void *arg);

#endif
