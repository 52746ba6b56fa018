#version 450
// OP_MOE_WEIGHTS: dst[j, t] = probs[ids[j, t], t], then each column divided
// by its sum when normalize is set. One thread per column (k is small). An
// id outside [0, n_expert) (an error the runtime never makes) reads 0
// instead of memory outside the column. Bindings: 0 = probs (F32), 1 = ids
// (I32), 2 = dst (F32).
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n_expert;
    uint k;
    uint columns;   // columns of this dispatch
    uint normalize; // 1: divide each column by its sum
    uint p_offset;  // binding 0: element of the dispatch's first probability
    uint ids_offset;
    uint d_offset;
} p;

layout(set = 0, binding = 0) readonly buffer Probs { float probs[]; };
layout(set = 0, binding = 1) readonly buffer Ids { int ids[]; };
layout(set = 0, binding = 2) buffer D { float d[]; };

void main()
{
    uint column = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (column >= p.columns)
        return;
    float sum = 0.0;
    for (uint j = 0u; j < p.k; j++) {
        int id = ids[p.ids_offset + column * p.k + j];
        float value = id >= 0 && uint(id) < p.n_expert ? probs[p.p_offset + column * p.n_expert + uint(id)] : 0.0;
        d[p.d_offset + column * p.k + j] = value;
        sum += value;
    }
    if (p.normalize != 0u)
        for (uint j = 0u; j < p.k; j++)
            d[p.d_offset + column * p.k + j] /= sum;
}
