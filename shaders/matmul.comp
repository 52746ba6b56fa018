#version 450
// OP_MATMUL, matrix-vector form (decode and small batches):
//   dst[row, t] = sum_i W[row][i] * x[i, t]
// One workgroup per output row and up to TOKENS tokens. The threads stride
// over the row's units (8 weights sharing their scales, see dequant.glsl),
// dequantize each in registers once and multiply it with every token's
// activations, then the per-thread sums are added in shared memory.
// Dispatch geometry: vk_matmul_groups(VK_MATMUL_VECTOR) in
// backends/vulkan/vulkan_shader_params.h (rows over x and y, tokens in z).
//
// With MATMUL_ID defined this is OP_MATMUL_ID's expert matmul: binding 0
// holds the same rows of expert_count experts' matrices (expert_bytes
// apart), binding 3 the expert table of shaders/moe_group.comp (binding 4
// the low-bit tables). z counts (expert, group of TOKENS of its pairs),
// where the expert is the nth of the bound experts that have pairs: a
// workgroup reads its expert's row once for up to TOKENS pairs that chose
// that expert, and leaves at once when the expert has fewer pairs (or there
// are fewer such experts), so an expert nobody chose costs no weight reads
// and, at decode, z is about k, not the expert count. Pair t * k + j reads x column
// t * k + j (input_per_slot) or t, and writes dst column t * k + j.
// Dispatch geometry: vk_matmul_id_groups in vulkan_shader_params.h.
#extension GL_GOOGLE_include_directive : require

// specialization constant 0: threads per row (any count, power of two or not)
// (default VK_MATMUL_VECTOR_LOCAL_SIZE)
layout(local_size_x = 64) in;
layout(local_size_x_id = 0) in;
#define LOCAL_SIZE gl_WorkGroupSize.x

const uint TOKENS = 8; // VK_MATMUL_VECTOR_TOKENS

#include "matmul_params.glsl"
#ifdef MATMUL_ID
#include "matmul_id.glsl"
#endif
#include "dequant.glsl"

shared float partial_sums[TOKENS * LOCAL_SIZE];

// The activations of token column column_start at elements first .. first+3
// of the row; past n_in (float weights only) they are 0 and not read.
vec4 load_x4(uint column_start, uint first)
{
#if WEIGHT_IS_FLOAT
    if (first + 4u > p.n_in) {
        vec4 v = vec4(0.0);
        for (uint i = 0u; i < 4u; i++)
            if (first + i < p.n_in)
                v[i] = x[column_start + first + i];
        return v;
    }
#endif
    uint at = column_start + first;
    return vec4(x[at], x[at + 1u], x[at + 2u], x[at + 3u]);
}

#ifdef MATMUL_ID
// the x and dst columns of the workgroup's t-th pair
#define input_column(t) matmul_id_input_column(pair_of[t])
#define output_column(t) (pair_of[t])
#else
#define input_column(t) (first_token + (t))
#define output_column(t) (first_token + (t))
#endif

void main()
{
    const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; // within the dispatch
    if (row >= p.row_count)
        return; // the whole workgroup leaves together, before any barrier
    const uint tid = gl_LocalInvocationID.x;
#ifdef MATMUL_ID
    const uint chunks = (p.list_stride + TOKENS - 1u) / TOKENS;
    const uint expert_here = matmul_id_nth_expert(gl_WorkGroupID.z / chunks);
    if (expert_here == p.expert_count)
        return; // fewer experts with pairs than z allows for; uniform, before any barrier
    const uint expert = p.expert_begin + expert_here;
    const uint list = p.n_expert + expert * p.list_stride;
    const uint first_token = (gl_WorkGroupID.z % chunks) * TOKENS; // within the expert's list
    const uint pairs = expert_table[expert];
    if (first_token >= pairs)
        return; // uniform over the workgroup, before any barrier
    const uint tokens_here = min(TOKENS, pairs - first_token);
    const uint row_byte = p.weight_offset_bytes + expert_here * p.expert_bytes + row * p.weight_row_bytes;
    uint pair_of[TOKENS];
    for (uint t = 0u; t < TOKENS; t++)
        pair_of[t] = t < tokens_here ? expert_table[list + first_token + t] : 0u;
#else
    const uint first_token = gl_WorkGroupID.z * TOKENS;
    const uint tokens_here = min(TOKENS, p.n_tok - first_token);
    const uint row_byte = p.weight_offset_bytes + row * p.weight_row_bytes;
#endif
    const uint n_blocks = (p.n_in + BLOCK_ELEMS - 1u) / BLOCK_ELEMS;
    const uint n_units = n_blocks * UNITS_PER_BLOCK;

    float sums[TOKENS];
    for (uint t = 0u; t < TOKENS; t++)
        sums[t] = 0.0;

    for (uint u = tid; u < n_units; u += LOCAL_SIZE) {
        const uint block = u / UNITS_PER_BLOCK;
        const uint unit = u % UNITS_PER_BLOCK;
        vec4 lo, hi;
        dequant_unit(row_byte + block * BLOCK_BYTES, unit, p.n_in - block * BLOCK_ELEMS, lo, hi);
        const uvec2 first = unit_bases(unit) + block * BLOCK_ELEMS;
        // constant trip counts here and below, so sums[] stays in registers once unrolled
        for (uint t = 0u; t < TOKENS; t++) {
            if (t < tokens_here) {
                const uint column_start = p.input_offset + input_column(t) * p.input_stride;
                sums[t] += dot(lo, load_x4(column_start, first.x)) + dot(hi, load_x4(column_start, first.y));
            }
        }
    }

    for (uint t = 0u; t < TOKENS; t++)
        if (t < tokens_here)
            partial_sums[t * LOCAL_SIZE + tid] = sums[t];
    barrier();
    // tree reduction that also works when LOCAL_SIZE is not a power of two:
    // fold the upper part of the smallest power of two >= LOCAL_SIZE
    uint span = 1u;
    while (span < LOCAL_SIZE)
        span <<= 1;
    for (span >>= 1; span > 0u; span >>= 1) {
        if (tid < span && tid + span < LOCAL_SIZE)
            for (uint t = 0u; t < TOKENS; t++)
                if (t < tokens_here)
                    partial_sums[t * LOCAL_SIZE + tid] += partial_sums[t * LOCAL_SIZE + tid + span];
        barrier();
    }
    if (tid < tokens_here)
        dst[p.output_offset + output_column(tid) * p.output_stride + row] = partial_sums[tid * LOCAL_SIZE];
}
