/* Macros the SIMD tiled kernels (cpu_tile_avx2.c, cpu_tile_avx512.c) share.
 * Private to backends/cpu. */
#ifndef STRATA_CPU_TILE_SIMD_H
#define STRATA_CPU_TILE_SIMD_H

#include "cpu_tile.h"

/* Calls kernel(..., COUNT) with COUNT the constant 1 .. 8 (or 1 .. 16) equal
 * to tokens, so each instance is compiled with its own trip counts. */
#define FOR_TOKEN_COUNT_8(tokens, kernel, ...)                                                                         \
    switch (tokens) {                                                                                                  \
    case 1: kernel(__VA_ARGS__, 1); break;                                                                             \
    case 2: kernel(__VA_ARGS__, 2); break;                                                                             \
    case 3: kernel(__VA_ARGS__, 3); break;                                                                             \
    case 4: kernel(__VA_ARGS__, 4); break;                                                                             \
    case 5: kernel(__VA_ARGS__, 5); break;                                                                             \
    case 6: kernel(__VA_ARGS__, 6); break;                                                                             \
    case 7: kernel(__VA_ARGS__, 7); break;                                                                             \
    default: kernel(__VA_ARGS__, 8); break;                                                                            \
    }
#define FOR_TOKEN_COUNT_16(tokens, kernel, ...)                                                                        \
    switch (tokens) {                                                                                                  \
    case 9: kernel(__VA_ARGS__, 9); break;                                                                             \
    case 10: kernel(__VA_ARGS__, 10); break;                                                                           \
    case 11: kernel(__VA_ARGS__, 11); break;                                                                           \
    case 12: kernel(__VA_ARGS__, 12); break;                                                                           \
    case 13: kernel(__VA_ARGS__, 13); break;                                                                           \
    case 14: kernel(__VA_ARGS__, 14); break;                                                                           \
    case 15: kernel(__VA_ARGS__, 15); break;                                                                           \
    case 16: kernel(__VA_ARGS__, 16); break;                                                                           \
    default: FOR_TOKEN_COUNT_8(tokens, kernel, __VA_ARGS__) break;                                                     \
    }

_Static_assert(CPU_TILE_TOKENS == 16, "FOR_TOKEN_COUNT_16 covers 1 .. 16 tokens");

#endif
