/* OP_MATMUL for a few tokens (decode): matrix-vector products that read each
 * weight byte once for all the tokens of the call.
 *
 * Block formats: the activations are first quantized to 8 bits per
 * 32-element unit (kernel_quantize_q8); each weight unit is unpacked in
 * registers (quant_unpack.h) and multiplied with dp4a, four byte products per
 * instruction, summed in int32 and scaled in F32. One warp per output row,
 * MATVEC_WARPS rows per block; the lanes of a warp take consecutive groups
 * of units, so a warp's loads cover a contiguous stretch of the row, and the
 * partial sums meet in a warp reduction.
 *
 * Decode is bound by memory bandwidth only while the instructions that
 * unpack a byte take less time than the byte takes to arrive: at 3.35 TB/s
 * (H100) or 4.8 TB/s (H200), 132 SMs issuing 4 warp instructions a clock at
 * about 1.75 GHz, a warp may spend about 160 or 110 instructions on 32
 * Q4_K units (18 bytes each), one per lane. So where the rows allow it
 * (UNPACK_GROUP_ALIGNMENT, checked at launch) each lane unpacks a group of
 * units that share bytes with unpack_group: every byte loaded once, with the
 * widest load its alignment allows, and the bias of the format's quants
 * subtracted once per half unit from the integer sum rather than from every
 * byte. Other rows take unpack_unit one unit at a time, two units in flight.
 *
 * Static figures of the hot loop at one token, sm_90, nvcc 13.0
 * (scripts/kernel-report.sh; compiled, not run on a GPU: what they do to
 * speed is not measured). Per 32-element unit of one lane: instructions and
 * global loads by width in bits (8/16/32/64/128; the 8-bit activations are
 * 3 x 128 bits of them). No kernel spills, before or after.
 *
 *   format  before (one unit a lane)         after (grouped path)
 *           regs  instr  loads 8/16/32/64/128  regs  instr  loads 8/16/32/64/128
 *   Q4_K    32     88    3/2/8/0/3            42     55    0/0/0/0/4.5
 *   Q5_K    32    120    3/0/17/0/3           55     81    0/0/0/0/5.5
 *   Q6_K    32    166    2/33/0/0/3           70     80    0/0.25/7.25/0/3
 *   Q3_K    32    194    6/33/0/0/3           63    104    0/0.25/5.5/0/3
 *   Q2_K    32     86    2/2/8/0/3            40     55    0/0/2.75/0/3
 *   Q4_0    30     80    0/9/0/0/3            34     44    0/0/0/2.25/3
 *   Q5_0    32    161    0/11/0/0/3           42     74    0/0/0/2.75/3
 *   Q8_0    29     56    0/17/0/0/3           38     31    0/0/0/4.25/3
 *   Q4_1    32     44    0/0/5/0/3            32     44    0/0/5/0/3      (unit path)
 *   Q5_1    32    132    0/0/6/0/3            32     76    0/0/6/0/3      (unit path)
 *
 * The unit path (rows of other alignments) keeps two units in flight a
 * lane and, with the bias out of the bytes, takes 51 (Q8_0) to 179 (Q3_K)
 * instructions a unit. At 8 tokens the kernels use 74-114 registers.
 *
 * Float weights (F32, F16, BF16): F32 activations as they are, F32 products;
 * 16-byte loads of weights and activations when the row length and the
 * addresses allow, element loads otherwise (F16 at one token: 36 registers,
 * 93 instructions and 4 + 8 16-byte loads per 32 elements; unchanged).
 *
 * The launch shapes are first choices made without a GPU at hand (ggml's
 * mmvq uses a similar layout); tune them with strata bench on a real device.
 * Open questions for that: whether the grouped kernels' registers (up to 70
 * at one token, so 7 blocks an SM) cost a second wave on 4096-row matrices,
 * and whether the activation loads (now most of the load instructions)
 * should be shared by two rows per warp. */
#include "cuda_common.h"
#include "quant_unpack.h"

#define MATVEC_WARPS 4
#define QUANTIZE_WARPS 8

/* OP_MATMUL_ID's form of the kernels below (ROUTED): block y takes chunk y
 * of the expert-grouped pairs (kernel_moe_group), shifts the weight to its
 * expert's slab and the activations to its first sorted column, and writes
 * result t to the pair's own column of dst, for t below the chunk's pairs
 * (the columns past them are computed, from padding, and dropped). */
struct matvec_route {
    const kernel_expert_chunk *chunks;
    const int32_t *sorted;
    int64_t expert_bytes;
};

/* Where a routed block's chunk starts; false when the chunk is empty. */
static __device__ __forceinline__ bool route_chunk(const matvec_route &route, kernel_expert_chunk *chunk)
{
    *chunk = route.chunks[blockIdx.y];
    return chunk->n_pairs > 0;
}

/* --- activations to 8 bits ----------------------------------------------------------- */

/* One warp per 32-element unit, one element per lane: d = amax / 127 and
 * quants rounded half away from zero, as base/quant.c's Q8 quantizers.
 * xs gets d, d times the quant sum of each half, and the two integer sums
 * as the low and high 16 bits of the fourth float's bits (each within
 * +-16 * 127). */
static __global__ void quantize_q8_kernel(int8_t *xq, float4 *xs, const float *x, int64_t n_in, int64_t n_units_total)
{
    const int lane = threadIdx.x % WARP_SIZE;
    const int64_t unit = (int64_t)blockIdx.x * QUANTIZE_WARPS + threadIdx.x / WARP_SIZE;
    if (unit >= n_units_total)
        return;
    /* the units of all tokens are consecutive in x as well: x is [n_in, n_tok] */
    const float value = x[unit * UNPACK_UNIT_ELEMENTS + lane];
    const float amax = warp_max(fabsf(value));
    const float d = amax / 127.0f;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    const float r = roundf(value * inv);
    const int q = r >= 127.0f ? 127 : r <= -127.0f ? -127 : (r == r ? (int)r : 0);
    xq[unit * UNPACK_UNIT_ELEMENTS + lane] = (int8_t)q;
    int sum = q;
    for (int offset = 8; offset > 0; offset >>= 1) /* within each half of 16 lanes */
        sum += __shfl_xor_sync(FULL_MASK, sum, offset);
    const int upper_sum = __shfl_sync(FULL_MASK, sum, 16);
    if (lane == 0) {
        const uint32_t packed_sums = ((uint32_t)sum & 0xffffu) | ((uint32_t)upper_sum << 16);
        xs[unit] = make_float4(d, d * (float)sum, d * (float)upper_sum, __uint_as_float(packed_sums));
    }
}

extern "C" cudaError_t kernel_quantize_q8(int32_t *xq, float *xs, const float *x, int64_t n_in, int64_t n_tok,
                                          cudaStream_t stream)
{
    if (n_in % UNPACK_UNIT_ELEMENTS != 0)
        return cudaErrorInvalidValue;
    const int64_t units = n_in / UNPACK_UNIT_ELEMENTS * n_tok;
    if (units <= 0)
        return cudaSuccess;
    const int64_t blocks = (units + QUANTIZE_WARPS - 1) / QUANTIZE_WARPS;
    if (blocks > 0x7fffffff)
        return cudaErrorInvalidValue;
    quantize_q8_kernel<<<(unsigned int)blocks, QUANTIZE_WARPS * WARP_SIZE, 0, stream>>>((int8_t *)xq, (float4 *)xs,
                                                                                       x, n_in, units);
    return cudaGetLastError();
}

/* --- block formats x 8-bit activations --------------------------------------------------- */

/* acc[t] += the dot products of G consecutive units with the activations
 * of token t: the first unit's quants at xq[0..1] and scales at xs[0] for
 * token 0, each further token n_units units on. */
template <int G, int NTOK>
static __device__ __forceinline__ void accumulate_units(float *acc, const quant_unit *units, const int4 *xq,
                                                        const float4 *xs, int n_units)
{
#pragma unroll
    for (int i = 0; i < G; i++) {
#pragma unroll
        for (int t = 0; t < NTOK; t++) {
            const int a = t * n_units + i;
            const int4 low = xq[2 * a], high = xq[2 * a + 1];
            const float4 s = xs[a];
            const int32_t q[8] = {low.x, low.y, low.z, low.w, high.x, high.y, high.z, high.w};
            const float sums[2] = {s.y, s.z};
            uint32_t packed_sums; /* the bits of s.w: kernel_quantize_q8's integer half sums */
            memcpy(&packed_sums, &s.w, sizeof packed_sums);
            const int32_t quant_sums[2] = {(int16_t)(packed_sums & 0xffffu), (int16_t)(packed_sums >> 16)};
            acc[t] += unpack_unit_dot(&units[i], q, s.x, sums, quant_sums);
        }
    }
}

/* GROUPED: each lane unpacks groups of UNPACK_GROUP_UNITS units with
 * unpack_group (rows meeting UNPACK_GROUP_ALIGNMENT); otherwise one unit at
 * a time with unpack_unit, which needs only the alignment GGUF gives.
 * Groups of one unit go two to an iteration, so that every lane has two
 * blocks' loads in flight before it needs the first.
 *
 * An iteration of the warp covers a stretch of whole blocks (32 lanes x
 * group_units x groups_per_iteration units, a multiple of 8), so where a
 * lane's groups lie in the stretch is the same in every iteration and is
 * worked out once, outside the loop. */
template <int FORMAT, int NTOK, bool GROUPED, bool ROUTED>
static __global__ void matvec_q8_kernel(float *dst, const uint8_t *weight, int64_t row_bytes, const int4 *xq,
                                        const float4 *xs, int n_units, int64_t n_out, matvec_route route)
{
    constexpr int units_per_block = UNPACK_UNITS_PER_BLOCK(FORMAT);
    constexpr int group_units = GROUPED ? UNPACK_GROUP_UNITS(FORMAT) : 1;
    constexpr int groups_per_iteration = group_units == 1 ? 2 : 1;
    constexpr int units_per_iteration = WARP_SIZE * group_units * groups_per_iteration;
    constexpr int block_bytes = UNPACK_BLOCK_BYTES(FORMAT);
    static_assert(units_per_iteration % units_per_block == 0, "an iteration covers whole blocks");
    const int64_t row = (int64_t)blockIdx.x * MATVEC_WARPS + threadIdx.y;
    if (row >= n_out) /* the whole warp leaves together */
        return;
    kernel_expert_chunk chunk = {0, 0, NTOK, 0};
    if (ROUTED) {
        if (!route_chunk(route, &chunk))
            return;
        weight += chunk.expert * route.expert_bytes;
        xq += 2 * (int64_t)chunk.first * n_units;
        xs += (int64_t)chunk.first * n_units;
    }
    const int lane = threadIdx.x;
    int block_offset[groups_per_iteration], unit_in_block[groups_per_iteration];
#pragma unroll
    for (int r = 0; r < groups_per_iteration; r++) {
        const int unit = (r * WARP_SIZE + lane) * group_units; /* in the stretch */
        block_offset[r] = unit / units_per_block * block_bytes;
        unit_in_block[r] = unit % units_per_block;
    }
    /* The grouped path's rows meet the group alignment (checked at launch);
     * saying so lets the compiler work out each lane's misalignment within
     * its block once, outside the loop. */
    constexpr int64_t row_alignment = GROUPED ? UNPACK_GROUP_ALIGNMENT(FORMAT) : 1;
    const uint8_t *row_base = (const uint8_t *)__builtin_assume_aligned(weight, row_alignment) +
                              row * (row_bytes & ~(row_alignment - 1));
    int stretch = 0; /* byte offset of the iteration's stretch in the row */
    const int4 *stretch_xq = xq + 2 * lane * group_units;
    const float4 *stretch_xs = xs + lane * group_units;
    const int n_groups = n_units / group_units;
    float acc[NTOK];
#pragma unroll
    for (int t = 0; t < NTOK; t++)
        acc[t] = 0.0f;
    int g = lane;
    for (; g + (groups_per_iteration - 1) * WARP_SIZE < n_groups; g += groups_per_iteration * WARP_SIZE) {
        quant_unit units[groups_per_iteration][group_units];
#pragma unroll
        for (int r = 0; r < groups_per_iteration; r++) {
            const uint8_t *block = row_base + (stretch + block_offset[r]);
            if (GROUPED)
                unpack_group(FORMAT, block, unit_in_block[r] / group_units, units[r]);
            else
                unpack_unit(FORMAT, block, unit_in_block[r], units[r]);
        }
#pragma unroll
        for (int r = 0; r < groups_per_iteration; r++) {
            const int unit = r * WARP_SIZE * group_units;
            accumulate_units<group_units, NTOK>(acc, units[r], stretch_xq + 2 * unit, stretch_xs + unit, n_units);
        }
        stretch += units_per_iteration / units_per_block * block_bytes;
        stretch_xq += 2 * units_per_iteration;
        stretch_xs += units_per_iteration;
    }
    if (groups_per_iteration > 1 && g < n_groups) { /* one group left over: the first of the iteration */
        quant_unit units[group_units];
        const uint8_t *block = row_base + (stretch + block_offset[0]);
        if (GROUPED)
            unpack_group(FORMAT, block, unit_in_block[0] / group_units, units);
        else
            unpack_unit(FORMAT, block, unit_in_block[0], units);
        accumulate_units<group_units, NTOK>(acc, units, stretch_xq, stretch_xs, n_units);
    }
#pragma unroll
    for (int t = 0; t < NTOK; t++) {
        const float total = warp_sum(acc[t]);
        if (threadIdx.x == 0 && t < chunk.n_pairs)
            dst[(ROUTED ? (int64_t)route.sorted[chunk.first + t] : t) * n_out + row] = total;
    }
}

/* Routed launches take the chunk widths 1, 2, 4 and 8 only (fewer kernels
 * to compile); matvec_route_width rounds up to them. */
#define MATVEC_ROUTED_WIDTH(N) ((N) == 1 || (N) == 2 || (N) == 4 || (N) == 8)

template <int FORMAT, bool GROUPED, bool ROUTED>
static void launch_matvec_q8(int n_tok, dim3 grid, dim3 block, cudaStream_t stream, float *dst, const uint8_t *w,
                             int64_t row_bytes, const int4 *xq, const float4 *xs, int n_units, int64_t n_out,
                             matvec_route route)
{
#define MATVEC_Q8_CASE(N)                                                                                          \
    case N:                                                                                                        \
        if constexpr (!ROUTED || MATVEC_ROUTED_WIDTH(N))                                                          \
            matvec_q8_kernel<FORMAT, N, GROUPED, ROUTED><<<grid, block, 0, stream>>>(dst, w, row_bytes, xq, xs,    \
                                                                                    n_units, n_out, route);       \
        break;
    switch (n_tok) {
        MATVEC_Q8_CASE(1)
        MATVEC_Q8_CASE(2)
        MATVEC_Q8_CASE(3)
        MATVEC_Q8_CASE(4)
        MATVEC_Q8_CASE(5)
        MATVEC_Q8_CASE(6)
        MATVEC_Q8_CASE(7)
        MATVEC_Q8_CASE(8)
    default: break;
    }
#undef MATVEC_Q8_CASE
}

/* The grouped kernel where the weight's rows meet its alignment, the
 * unit-at-a-time one otherwise; Q4_1 and Q5_1 have no groups beyond
 * unpack_unit and always take the latter. */
template <int FORMAT, bool ROUTED>
static void launch_matvec_q8_aligned(bool aligned, int n_tok, dim3 grid, dim3 block, cudaStream_t stream, float *dst,
                                     const uint8_t *w, int64_t row_bytes, const int4 *xq, const float4 *xs,
                                     int n_units, int64_t n_out, matvec_route route)
{
    if constexpr (UNPACK_GROUP_UNITS(FORMAT) > 1) {
        if (aligned) {
            launch_matvec_q8<FORMAT, true, ROUTED>(n_tok, grid, block, stream, dst, w, row_bytes, xq, xs, n_units,
                                                   n_out, route);
            return;
        }
    }
    launch_matvec_q8<FORMAT, false, ROUTED>(n_tok, grid, block, stream, dst, w, row_bytes, xq, xs, n_units, n_out,
                                            route);
}

/* route.chunks NULL: the plain matrix-vector product. */
template <int FORMAT>
static void launch_matvec_q8_any(bool aligned, int n_tok, dim3 grid, dim3 block, cudaStream_t stream, float *dst,
                                 const uint8_t *w, int64_t row_bytes, const int4 *xq, const float4 *xs, int n_units,
                                 int64_t n_out, matvec_route route)
{
    if (route.chunks)
        launch_matvec_q8_aligned<FORMAT, true>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, xq, xs,
                                               n_units, n_out, route);
    else
        launch_matvec_q8_aligned<FORMAT, false>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, xq, xs,
                                                n_units, n_out, route);
}

/* The plain product (route.chunks NULL, grid y 1) or the routed one (grid y:
 * the chunks of this launch). */
static cudaError_t matvec_q8(float *dst, const void *weight, int dtype, int64_t row_bytes, const int32_t *xq,
                             const float *xs, int64_t n_in, int64_t n_out, int n_tok, unsigned int grid_y,
                             matvec_route route, cudaStream_t stream)
{
    if (n_out <= 0 || n_tok <= 0)
        return cudaSuccess;
    if (n_tok > KERNEL_MATVEC_MAX_TOKENS || n_in % UNPACK_UNIT_ELEMENTS != 0 || unpack_block_bytes(dtype) == 0)
        return cudaErrorInvalidValue;
    const int64_t n_units = n_in / UNPACK_UNIT_ELEMENTS;
    /* whole blocks per row, and activation indices (2 n_tok n_units) in an int */
    if (n_units % unpack_units_per_block(dtype) != 0 || n_units > 0x7fffffff / (2 * KERNEL_MATVEC_MAX_TOKENS))
        return cudaErrorInvalidValue;
    const int64_t blocks = (n_out + MATVEC_WARPS - 1) / MATVEC_WARPS;
    if (blocks > 0x7fffffff)
        return cudaErrorInvalidValue;
    const dim3 grid((unsigned int)blocks, grid_y), block(WARP_SIZE, MATVEC_WARPS);
    const uint8_t *w = (const uint8_t *)weight;
    const int4 *q = (const int4 *)xq;
    const float4 *s = (const float4 *)xs;
    const int units = (int)n_units;
    /* every row starts and ends at a multiple of the grouped loads' alignment
     * and holds whole groups */
    const int64_t alignment = UNPACK_GROUP_ALIGNMENT(dtype);
    const bool aligned = row_bytes % alignment == 0 && (uintptr_t)weight % (uintptr_t)alignment == 0 &&
                         route.expert_bytes % alignment == 0 && n_units % UNPACK_GROUP_UNITS(dtype) == 0;
    switch (dtype) {
    case UNPACK_Q4_0: launch_matvec_q8_any<UNPACK_Q4_0>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_Q4_1: launch_matvec_q8_any<UNPACK_Q4_1>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_Q5_0: launch_matvec_q8_any<UNPACK_Q5_0>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_Q5_1: launch_matvec_q8_any<UNPACK_Q5_1>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_Q8_0: launch_matvec_q8_any<UNPACK_Q8_0>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_Q2_K: launch_matvec_q8_any<UNPACK_Q2_K>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_Q3_K: launch_matvec_q8_any<UNPACK_Q3_K>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_Q4_K: launch_matvec_q8_any<UNPACK_Q4_K>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_Q5_K: launch_matvec_q8_any<UNPACK_Q5_K>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_Q6_K: launch_matvec_q8_any<UNPACK_Q6_K>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_IQ2_XXS: launch_matvec_q8_any<UNPACK_IQ2_XXS>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_IQ2_XS: launch_matvec_q8_any<UNPACK_IQ2_XS>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_IQ2_S: launch_matvec_q8_any<UNPACK_IQ2_S>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_IQ3_XXS: launch_matvec_q8_any<UNPACK_IQ3_XXS>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_IQ3_S: launch_matvec_q8_any<UNPACK_IQ3_S>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_IQ1_S: launch_matvec_q8_any<UNPACK_IQ1_S>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_IQ1_M: launch_matvec_q8_any<UNPACK_IQ1_M>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_IQ4_NL: launch_matvec_q8_any<UNPACK_IQ4_NL>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_IQ4_XS: launch_matvec_q8_any<UNPACK_IQ4_XS>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_MXFP4: launch_matvec_q8_any<UNPACK_MXFP4>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_TQ1_0: launch_matvec_q8_any<UNPACK_TQ1_0>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    case UNPACK_TQ2_0: launch_matvec_q8_any<UNPACK_TQ2_0>(aligned, n_tok, grid, block, stream, dst, w, row_bytes, q, s, units, n_out, route); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kernel_matvec_q8(float *dst, const void *weight, int dtype, int64_t row_bytes,
                                        const int32_t *xq, const float *xs, int64_t n_in, int64_t n_out, int n_tok,
                                        cudaStream_t stream)
{
    const matvec_route none = {nullptr, nullptr, 0};
    return matvec_q8(dst, weight, dtype, row_bytes, xq, xs, n_in, n_out, n_tok, 1, none, stream);
}

/* The chunks go to grid y, at most 65535 to a launch: more take several
 * launches, each given its part of the chunk list. */
#define MATVEC_MAX_GRID_Y 65535

extern "C" cudaError_t kernel_matmul_id_q8(float *dst, const void *weight, int dtype, int64_t row_bytes,
                                           int64_t expert_bytes, const int32_t *xq, const float *xs, int64_t n_in,
                                           int64_t n_out, const kernel_expert_chunk *chunks, int64_t n_chunks,
                                           const int32_t *sorted, int width, cudaStream_t stream)
{
    if (!MATVEC_ROUTED_WIDTH(width))
        return cudaErrorInvalidValue;
    for (int64_t c0 = 0; c0 < n_chunks; c0 += MATVEC_MAX_GRID_Y) {
        const int64_t part = n_chunks - c0 < MATVEC_MAX_GRID_Y ? n_chunks - c0 : MATVEC_MAX_GRID_Y;
        const matvec_route route = {chunks + c0, sorted, expert_bytes};
        cudaError_t code = matvec_q8(dst, weight, dtype, row_bytes, xq, xs, n_in, n_out, width, (unsigned int)part,
                                     route, stream);
        if (code != cudaSuccess)
            return code;
    }
    return cudaSuccess;
}

/* --- float weights x F32 activations ------------------------------------------------------- */

/* Weights per 16-byte load. */
template <int DTYPE> struct float_weight {
    static constexpr int per_load = DTYPE == KERNEL_F32 ? 4 : 8;
    static constexpr int bytes = DTYPE == KERNEL_F32 ? 4 : 2;
};

/* The per_load weights of one 16-byte load, as floats. */
template <int DTYPE>
static __device__ __forceinline__ void decode_load(uint4 raw, float *out)
{
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
    if (DTYPE == KERNEL_F32) {
        for (int j = 0; j < 4; j++)
            out[j] = __uint_as_float(words[j]);
    } else if (DTYPE == KERNEL_F16) {
        for (int j = 0; j < 4; j++) {
            out[2 * j] = __half2float(__ushort_as_half((unsigned short)(words[j] & 0xffffu)));
            out[2 * j + 1] = __half2float(__ushort_as_half((unsigned short)(words[j] >> 16)));
        }
    } else {
        for (int j = 0; j < 4; j++) {
            out[2 * j] = __uint_as_float(words[j] << 16);
            out[2 * j + 1] = __uint_as_float(words[j] & 0xffff0000u);
        }
    }
}

template <int DTYPE, int NTOK, bool VECTOR, bool ROUTED>
static __global__ void matvec_float_kernel(float *dst, const uint8_t *weight, int64_t row_bytes, const float *x,
                                           int64_t n_in, int64_t n_out, matvec_route route)
{
    const int64_t row = (int64_t)blockIdx.x * MATVEC_WARPS + threadIdx.y;
    if (row >= n_out)
        return;
    kernel_expert_chunk chunk = {0, 0, NTOK, 0};
    if (ROUTED) {
        if (!route_chunk(route, &chunk))
            return;
        weight += chunk.expert * route.expert_bytes;
        x += (int64_t)chunk.first * n_in;
    }
    const uint8_t *w = weight + row * row_bytes;
    float acc[NTOK];
#pragma unroll
    for (int t = 0; t < NTOK; t++)
        acc[t] = 0.0f;
    if (VECTOR) {
        constexpr int per_load = float_weight<DTYPE>::per_load;
        for (int64_t i = (int64_t)threadIdx.x * per_load; i < n_in; i += WARP_SIZE * per_load) {
            float wv[per_load];
            decode_load<DTYPE>(*(const uint4 *)(w + i * float_weight<DTYPE>::bytes), wv);
#pragma unroll
            for (int t = 0; t < NTOK; t++) {
                const float4 *xv = (const float4 *)(x + t * n_in + i);
#pragma unroll
                for (int j = 0; j < per_load / 4; j++) {
                    const float4 a = xv[j];
                    acc[t] += wv[4 * j] * a.x + wv[4 * j + 1] * a.y + wv[4 * j + 2] * a.z + wv[4 * j + 3] * a.w;
                }
            }
        }
    } else {
        for (int64_t i = threadIdx.x; i < n_in; i += WARP_SIZE) {
            const float wv = load_float(w, i * float_weight<DTYPE>::bytes, DTYPE);
#pragma unroll
            for (int t = 0; t < NTOK; t++)
                acc[t] += wv * x[t * n_in + i];
        }
    }
#pragma unroll
    for (int t = 0; t < NTOK; t++) {
        const float total = warp_sum(acc[t]);
        if (threadIdx.x == 0 && t < chunk.n_pairs)
            dst[(ROUTED ? (int64_t)route.sorted[chunk.first + t] : t) * n_out + row] = total;
    }
}

template <int DTYPE, bool VECTOR, bool ROUTED>
static void launch_matvec_float(int n_tok, dim3 grid, dim3 block, cudaStream_t stream, float *dst, const uint8_t *w,
                                int64_t row_bytes, const float *x, int64_t n_in, int64_t n_out, matvec_route route)
{
#define MATVEC_FLOAT_CASE(N)                                                                                       \
    case N:                                                                                                        \
        if constexpr (!ROUTED || MATVEC_ROUTED_WIDTH(N))                                                          \
            matvec_float_kernel<DTYPE, N, VECTOR, ROUTED><<<grid, block, 0, stream>>>(dst, w, row_bytes, x, n_in,  \
                                                                                     n_out, route);               \
        break;
    switch (n_tok) {
        MATVEC_FLOAT_CASE(1)
        MATVEC_FLOAT_CASE(2)
        MATVEC_FLOAT_CASE(3)
        MATVEC_FLOAT_CASE(4)
        MATVEC_FLOAT_CASE(5)
        MATVEC_FLOAT_CASE(6)
        MATVEC_FLOAT_CASE(7)
        MATVEC_FLOAT_CASE(8)
    default: break;
    }
#undef MATVEC_FLOAT_CASE
}

template <int DTYPE, bool ROUTED>
static void launch_matvec_float_vector(bool vector, int n_tok, dim3 grid, dim3 block, cudaStream_t stream,
                                       float *dst, const uint8_t *w, int64_t row_bytes, const float *x, int64_t n_in,
                                       int64_t n_out, matvec_route route)
{
    if (vector)
        launch_matvec_float<DTYPE, true, ROUTED>(n_tok, grid, block, stream, dst, w, row_bytes, x, n_in, n_out, route);
    else
        launch_matvec_float<DTYPE, false, ROUTED>(n_tok, grid, block, stream, dst, w, row_bytes, x, n_in, n_out,
                                                  route);
}

/* route.chunks NULL: the plain matrix-vector product. */
template <int DTYPE>
static void launch_matvec_float_any(bool vector, int n_tok, dim3 grid, dim3 block, cudaStream_t stream, float *dst,
                                    const uint8_t *w, int64_t row_bytes, const float *x, int64_t n_in, int64_t n_out,
                                    matvec_route route)
{
    if (route.chunks)
        launch_matvec_float_vector<DTYPE, true>(vector, n_tok, grid, block, stream, dst, w, row_bytes, x, n_in,
                                                n_out, route);
    else
        launch_matvec_float_vector<DTYPE, false>(vector, n_tok, grid, block, stream, dst, w, row_bytes, x, n_in,
                                                 n_out, route);
}

static cudaError_t matvec_float(float *dst, const void *weight, int dtype, int64_t row_bytes, const float *x,
                                int64_t n_in, int64_t n_out, int n_tok, unsigned int grid_y, matvec_route route,
                                cudaStream_t stream)
{
    if (n_out <= 0 || n_tok <= 0)
        return cudaSuccess;
    if (n_tok > KERNEL_MATVEC_MAX_TOKENS)
        return cudaErrorInvalidValue;
    const int64_t blocks = (n_out + MATVEC_WARPS - 1) / MATVEC_WARPS;
    if (blocks > 0x7fffffff)
        return cudaErrorInvalidValue;
    const dim3 grid((unsigned int)blocks, grid_y), block(WARP_SIZE, MATVEC_WARPS);
    const int per_load = dtype == KERNEL_F32 ? 4 : 8;
    /* 16-byte loads: every row and every token's activations start 16-byte aligned */
    const bool vector = n_in % per_load == 0 && row_bytes % 16 == 0 && ((uintptr_t)weight & 15u) == 0 &&
                        ((uintptr_t)x & 15u) == 0 && (n_in * 4) % 16 == 0 &&
                        route.expert_bytes % 16 == 0;
    const uint8_t *w = (const uint8_t *)weight;
    switch (dtype) {
    case KERNEL_F32: launch_matvec_float_any<KERNEL_F32>(vector, n_tok, grid, block, stream, dst, w, row_bytes, x, n_in, n_out, route); break;
    case KERNEL_F16: launch_matvec_float_any<KERNEL_F16>(vector, n_tok, grid, block, stream, dst, w, row_bytes, x, n_in, n_out, route); break;
    case KERNEL_BF16: launch_matvec_float_any<KERNEL_BF16>(vector, n_tok, grid, block, stream, dst, w, row_bytes, x, n_in, n_out, route); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kernel_matvec_float(float *dst, const void *weight, int dtype, int64_t row_bytes,
                                           const float *x, int64_t n_in, int64_t n_out, int n_tok,
                                           cudaStream_t stream)
{
    const matvec_route none = {nullptr, nullptr, 0};
    return matvec_float(dst, weight, dtype, row_bytes, x, n_in, n_out, n_tok, 1, none, stream);
}

extern "C" cudaError_t kernel_matmul_id_float(float *dst, const void *weight, int dtype, int64_t row_bytes,
                                              int64_t expert_bytes, const float *x_sorted, int64_t n_in,
                                              int64_t n_out, const kernel_expert_chunk *chunks, int64_t n_chunks,
                                              const int32_t *sorted, int width, cudaStream_t stream)
{
    if (!MATVEC_ROUTED_WIDTH(width))
        return cudaErrorInvalidValue;
    for (int64_t c0 = 0; c0 < n_chunks; c0 += MATVEC_MAX_GRID_Y) {
        const int64_t part = n_chunks - c0 < MATVEC_MAX_GRID_Y ? n_chunks - c0 : MATVEC_MAX_GRID_Y;
        const matvec_route route = {chunks + c0, sorted, expert_bytes};
        cudaError_t code = matvec_float(dst, weight, dtype, row_bytes, x_sorted, n_in, n_out, width,
                                        (unsigned int)part, route, stream);
        if (code != cudaSuccess)
            return code;
    }
    return cudaSuccess;
}
