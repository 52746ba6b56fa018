#version 450
// OP_GET_ROWS: dst[i, j] = W[ids[j]][i] (f32), for the weight table bound in
// binding 0 (rows row_begin .. row_begin + row_count - 1 of it; ids outside
// are another dispatch's). Each thread dequantizes one unit (8 values, see
// dequant.glsl) of one looked-up row. The values equal base/quant*.c's
// dequantization exactly.
// Dispatch geometry: vk_get_rows_groups() in
// backends/vulkan/vulkan_shader_params.h (units in x, ids over y and z).
#extension GL_GOOGLE_include_directive : require

// specialization constant 0: threads per workgroup (default VK_GET_ROWS_LOCAL_SIZE)
layout(local_size_x = 64) in;
layout(local_size_x_id = 0) in;

layout(set = 0, binding = 0) readonly buffer Weights { uint weight_words[]; };
layout(set = 0, binding = 1) readonly buffer Ids { int ids[]; };
layout(set = 0, binding = 2) writeonly buffer Output { float dst[]; };

// mirrors vk_get_rows_params in backends/vulkan/vulkan_shader_params.h
layout(push_constant) uniform GetRowsParams {
    uint n_embd;
    uint n_rows;
    uint row_begin;
    uint row_count;
    uint weight_offset_bytes;
    uint weight_row_bytes;
    uint ids_offset;
    uint output_offset;
    uint output_stride;
} p;

#include "dequant.glsl"

void main()
{
    const uint j = gl_WorkGroupID.z * gl_NumWorkGroups.y + gl_WorkGroupID.y;
    if (j >= p.n_rows)
        return;
    // a negative id wraps to a huge one and is skipped like any other outside the range
    const uint table_row = uint(ids[p.ids_offset + j]) - p.row_begin;
    if (table_row >= p.row_count)
        return;
    const uint u = gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    const uint n_units = (p.n_embd + BLOCK_ELEMS - 1u) / BLOCK_ELEMS * UNITS_PER_BLOCK;
    if (u >= n_units)
        return;
    const uint block = u / UNITS_PER_BLOCK;
    const uint unit = u % UNITS_PER_BLOCK;
    const uint elems_left = p.n_embd - block * BLOCK_ELEMS;
    vec4 lo, hi;
    dequant_unit(p.weight_offset_bytes + table_row * p.weight_row_bytes + block * BLOCK_BYTES, unit, elems_left, lo,
                 hi);
    const uvec2 bases = unit_bases(unit);
    const uint out_row = p.output_offset + j * p.output_stride + block * BLOCK_ELEMS;
    for (uint i = 0u; i < 4u; i++) {
        if (bases.x + i < elems_left) // only float rows end inside a block
            dst[out_row + bases.x + i] = lo[i];
        if (bases.y + i < elems_left)
            dst[out_row + bases.y + i] = hi[i];
    }
}
