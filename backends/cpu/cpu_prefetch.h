/* Software prefetch for the decode kernels, where every weight byte is read
 * once, straight from memory. A dot product of K-quant blocks spends about
 * 80 instructions on each 144-byte block, so the out-of-order window holds
 * only the next few hundred bytes of loads, and the hardware prefetcher
 * alone keeps too few lines in flight: one Zen 3 core ran the Q4_K dot
 * product over 1 GiB of rows at 11-13 GB/s where a plain read of the same
 * memory runs 19-21 GB/s. Asking for the lines a fixed distance ahead, a
 * block's worth per block, took it to 13-15 GB/s (two threads: 21-23 ->
 * 24-26 GB/s), and llama3-8b Q4_K_M decode from 4.29 to 5.08 tokens/s
 * (BENCHMARKS.md, 2026-12-07); distances from 1.5 to 3 KiB did equally
 * well, 512 bytes less. A prefetch never faults, so reading past the end
 * of the weights is harmless. Private to backends/cpu; x86 GCC/clang
 * builds only. */
#ifndef STRATA_CPU_PREFETCH_H
#define STRATA_CPU_PREFETCH_H

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <stddef.h>
#include <stdint.h>
#include <xmmintrin.h>

enum { CPU_PREFETCH_DISTANCE = 2048, CPU_CACHE_LINE = 64 };

/* Asks for the cache lines of the `bytes` that lie CPU_PREFETCH_DISTANCE
 * past `block` (bytes a constant, so the loop unrolls). Blocks that do not
 * fill whole lines may ask for a line twice; that costs one instruction. */
__attribute__((always_inline)) static inline void cpu_prefetch_ahead(const void *block, size_t bytes)
{
    /* by integer arithmetic: the address may lie past the weights' object */
    uintptr_t ahead = (uintptr_t)block + CPU_PREFETCH_DISTANCE;
    for (size_t at = 0; at < bytes; at += CPU_CACHE_LINE)
        _mm_prefetch((const char *)(ahead + at), _MM_HINT_T0);
}

#endif
#endif
