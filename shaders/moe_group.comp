#version 450
// Groups the (token, slot) pairs of OP_MATMUL_ID by expert, for the expert
// matmul (matmul.comp with MATMUL_ID). One thread per expert e walks the ids
// of the dispatch's pairs in order and writes
//   table[e]                          = how many pairs chose e
//   table[n_expert + e * stride + c]  = the c-th of those pairs (t * k + j)
// stride is the pairs' token count (an expert appears at most once per
// token). Ids outside [0, n_expert) match no expert, so their pairs are
// left out and never read weights. Bindings: 0 = ids (I32), 1 = table (U32).
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n_expert;
    uint n_pairs;    // k * tokens of this pass
    uint stride;     // entries per expert's list (>= the most pairs one expert can have)
    uint ids_offset; // binding 0: element of the pass's first id
} p;

layout(set = 0, binding = 0) readonly buffer Ids { int ids[]; };
layout(set = 0, binding = 1) writeonly buffer Table { uint table[]; };

void main()
{
    uint e = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (e >= p.n_expert)
        return;
    uint count = 0u;
    for (uint i = 0u; i < p.n_pairs; i++)
        if (ids[p.ids_offset + i] == int(e) && count < p.stride) {
            table[p.n_expert + e * p.stride + count] = i;
            count++;
        }
    table[e] = count;
}
