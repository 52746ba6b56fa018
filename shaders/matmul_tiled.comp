#version 450
// OP_MATMUL, tiled GEMM form (prefill):
//   dst[row, t] = sum_i W[row][i] * x[i, t]
// A workgroup of 128 threads computes a tile of TILE_ROWS output rows x
// TILE_TOKENS tokens. It walks the row in steps of STEP_UNITS units (32
// weights): each step dequantizes the tile's weight units once into shared
// memory, stages the matching activations beside them, and every thread adds
// a 4 x 4 block of products. A dot product does not care about the order of
// its terms, so a step takes whole units in unit order, and the activations
// are gathered at the elements those units cover (unit_bases), which need
// not be contiguous.
// Dispatch geometry: vk_matmul_groups(VK_MATMUL_TILED) in
// backends/vulkan/vulkan_shader_params.h (row tiles over x and y, token
// tiles in z). No specialization constants: the tile shape is compiled in.
//
// With MATMUL_ID defined this is OP_MATMUL_ID's expert matmul for passes of
// many tokens, as matmul.comp's MATMUL_ID form (read there) but with tiles
// of TILE_TOKENS pairs of one expert: z counts (nth expert with pairs, tile
// of its pairs). Dispatch geometry: vk_matmul_id_groups(VK_MATMUL_TILED).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 128) in; // VK_MATMUL_TILED_LOCAL_SIZE

const uint TILE_ROWS = 64;   // VK_MATMUL_TILE_ROWS
const uint TILE_TOKENS = 32; // VK_MATMUL_TILE_TOKENS
const uint STEP_UNITS = 4;
const uint STEP_ELEMS = STEP_UNITS * 8;
const uint PITCH = STEP_ELEMS + 1; // one float of padding keeps the rows in different banks
// each thread owns rows row_lane + 16 i and tokens token_lane + 8 j, i, j < 4
const uint ROW_LANES = 16;
const uint TOKEN_LANES = 8;

#include "matmul_params.glsl"
#ifdef MATMUL_ID
#include "matmul_id.glsl"
#endif
#include "dequant.glsl"

shared float weight_tile[TILE_ROWS * PITCH];
shared float input_tile[TILE_TOKENS * PITCH];

#ifdef MATMUL_ID
// the x and dst columns of the i-th pair of the expert's list
#define column_of(i) matmul_id_input_column(expert_table[list + (i)])
#define output_column_of(i) (expert_table[list + (i)])
#else
#define column_of(i) (i)
#define output_column_of(i) (i)
#endif

void main()
{
    const uint tile = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    const uint first_row = tile * TILE_ROWS; // within the dispatch
    if (first_row >= p.row_count)
        return; // the whole workgroup leaves together, before any barrier
#ifdef MATMUL_ID
    const uint chunks = (p.list_stride + TILE_TOKENS - 1u) / TILE_TOKENS;
    const uint expert_here = matmul_id_nth_expert(gl_WorkGroupID.z / chunks);
    if (expert_here == p.expert_count)
        return; // uniform over the workgroup, before any barrier
    const uint expert = p.expert_begin + expert_here;
    const uint list = p.n_expert + expert * p.list_stride;
    const uint first_token = (gl_WorkGroupID.z % chunks) * TILE_TOKENS; // within the expert's list
    const uint n_columns = expert_table[expert];
    if (first_token >= n_columns)
        return;
    const uint weight_base = p.weight_offset_bytes + expert_here * p.expert_bytes;
#else
    const uint first_token = gl_WorkGroupID.z * TILE_TOKENS;
    const uint n_columns = p.n_tok;
    const uint weight_base = p.weight_offset_bytes;
#endif
    const uint tid = gl_LocalInvocationID.x;
    const uint row_lane = tid % ROW_LANES;
    const uint token_lane = tid / ROW_LANES;
    const uint n_blocks = (p.n_in + BLOCK_ELEMS - 1u) / BLOCK_ELEMS;
    const uint n_units = n_blocks * UNITS_PER_BLOCK;
    const uint n_steps = (n_units + STEP_UNITS - 1u) / STEP_UNITS;

    float sums[4][4];
    for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++)
            sums[i][j] = 0.0;

    for (uint step = 0u; step < n_steps; step++) {
        // weights: TILE_ROWS x STEP_UNITS = 256 units, two per thread
        for (uint k = 0u; k < 2u; k++) {
            const uint slot = tid + 128u * k;
            const uint r = slot / STEP_UNITS;
            const uint step_unit = slot % STEP_UNITS;
            const uint u = step * STEP_UNITS + step_unit;
            vec4 lo = vec4(0.0), hi = vec4(0.0);
            if (first_row + r < p.row_count && u < n_units) {
                const uint block = u / UNITS_PER_BLOCK;
                const uint row_byte = weight_base + (first_row + r) * p.weight_row_bytes;
                dequant_unit(row_byte + block * BLOCK_BYTES, u % UNITS_PER_BLOCK, p.n_in - block * BLOCK_ELEMS,
                             lo, hi);
            }
            const uint at = r * PITCH + step_unit * 8u;
            for (uint i = 0u; i < 4u; i++) {
                weight_tile[at + i] = lo[i];
                weight_tile[at + 4u + i] = hi[i];
            }
        }
        // activations: TILE_TOKENS x STEP_ELEMS = 1024 values, eight per thread,
        // at the elements the step's units cover
        for (uint k = 0u; k < 8u; k++) {
            const uint slot = tid + 128u * k;
            const uint t = slot / STEP_ELEMS;
            const uint e = slot % STEP_ELEMS;
            const uint u = step * STEP_UNITS + e / 8u;
            float v = 0.0;
            if (first_token + t < n_columns && u < n_units) {
                const uint block = u / UNITS_PER_BLOCK;
                const uvec2 bases = unit_bases(u % UNITS_PER_BLOCK);
                const uint i = e % 8u;
                const uint element = block * BLOCK_ELEMS + (i < 4u ? bases.x + i : bases.y + i - 4u);
                if (element < p.n_in)
                    v = x[p.input_offset + column_of(first_token + t) * p.input_stride + element];
            }
            input_tile[t * PITCH + e] = v;
        }
        barrier();
        for (uint e = 0u; e < STEP_ELEMS; e++) {
            float w[4], a[4];
            for (uint i = 0u; i < 4u; i++)
                w[i] = weight_tile[(row_lane + ROW_LANES * i) * PITCH + e];
            for (uint j = 0u; j < 4u; j++)
                a[j] = input_tile[(token_lane + TOKEN_LANES * j) * PITCH + e];
            for (uint i = 0u; i < 4u; i++)
                for (uint j = 0u; j < 4u; j++)
                    sums[i][j] += w[i] * a[j];
        }
        barrier();
    }

    for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++) {
            const uint r = first_row + row_lane + ROW_LANES * i;
            const uint t = first_token + token_lane + TOKEN_LANES * j;
            if (r < p.row_count && t < n_columns)
                dst[p.output_offset + output_column_of(t) * p.output_stride + r] = sums[i][j];
        }
}
