#version 450
// Merges the split-KV partials of attention.comp: for each (token, head)
// pair, out = sum_s acc_s * exp(max_s - M) / sum_s sum_s * exp(max_s - M)
// with M the largest max_s. Splits that saw no rows have max -inf and sum 0
// and drop out. One workgroup per pair. Bindings: 0 = partials, 1 = dst.
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint head_dim;
    uint n_pairs;
    uint n_splits;
    uint part_offset;
    uint d_offset;
} p;

layout(set = 0, binding = 0) readonly buffer Part { float part[]; };
layout(set = 0, binding = 1) writeonly buffer D { float d[]; };

void main()
{
    uint pair = flat_group();
    if (pair >= p.n_pairs)
        return;
    uint stride = p.head_dim + 2u;
    uint base = p.part_offset + pair * p.n_splits * stride;
    float global_max = uintBitsToFloat(0xff800000u);
    for (uint s = 0u; s < p.n_splits; s++)
        global_max = max(global_max, part[base + s * stride]);
    float total = 0.0;
    if (!isinf(global_max))
        for (uint s = 0u; s < p.n_splits; s++)
            total += part[base + s * stride + 1u] * exp(part[base + s * stride] - global_max);
    float inv = total > 0.0 ? 1.0 / total : 0.0;
    for (uint dim = gl_LocalInvocationID.x; dim < p.head_dim; dim += gl_WorkGroupSize.x) {
        float sum = 0.0;
        if (total > 0.0)
            for (uint s = 0u; s < p.n_splits; s++)
                sum += part[base + s * stride + 2u + dim] * exp(part[base + s * stride] - global_max);
        d[p.d_offset + pair * p.head_dim + dim] = sum * inv;
    }
}
