#version 450
// Merges the split-KV partials of attention.comp: for each (token, head)
// pair, out = sum_s acc_s * exp(max_s - M) / sum_s sum_s * exp(max_s - M)
// with M the largest max_s. Splits that saw no rows have max -inf and sum 0
// and drop out. With VK_ATTENTION_MERGE (flags 1) the result is merged into
// dst and the state written by an earlier pass over other cache rows, and
// with VK_ATTENTION_KEEP_STATE (flags 2) the merged state is written back
// (attention_merge.glsl). One workgroup per pair. Bindings: 0 = the
// workspace (state at state_offset, partials at part_offset), 1 = dst.
#include "common.glsl"
#include "attention_merge.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint head_dim;
    uint n_pairs;
    uint n_splits;
    uint part_offset;
    uint d_offset;
    uint state_offset;
    uint flags;
} p;

layout(set = 0, binding = 0) buffer Part { float part[]; };
layout(set = 0, binding = 1) buffer D { float d[]; };

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
    vec4 merge = vec4(0.0, total > 0.0 ? 1.0 / total : 0.0, global_max, total);
    uint state = p.state_offset + 2u * pair;
    if ((p.flags & 1u) != 0u)
        merge = attention_merge(part[state], part[state + 1u], global_max, total);
    for (uint dim = gl_LocalInvocationID.x; dim < p.head_dim; dim += gl_WorkGroupSize.x) {
        float sum = 0.0;
        if (total > 0.0)
            for (uint s = 0u; s < p.n_splits; s++)
                sum += part[base + s * stride + 2u + dim] * exp(part[base + s * stride] - global_max);
        uint at = p.d_offset + pair * p.head_dim + dim;
        float old_part = merge.x > 0.0 ? d[at] * merge.x : 0.0;
        d[at] = old_part + sum * merge.y;
    }
    barrier(); // every invocation has read the old state
    if ((p.flags & 2u) != 0u && gl_LocalInvocationID.x == 0u) {
        part[state] = merge.z;
        part[state + 1u] = merge.w;
    }
}
