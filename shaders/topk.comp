#version 450
// OP_TOPK: the indices of the k largest values of each column of src0
// [n_expert, n_tok], largest first, the lower index first among equal
// values. One workgroup per column; each thread takes elements i and counts
// the elements that come before i in that order: that count is i's rank,
// and i is written at its rank when the rank is below k. The ranks of a
// column are distinct (the order is total for values that are not NaN), so
// every slot is written once. Bindings: 0 = src0 (F32), 1 = dst (I32).
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;        // values per column (n_expert)
    uint k;        // indices kept per column
    uint columns;  // columns of this dispatch
    uint x_offset; // binding 0: element of the dispatch's first value
    uint d_offset; // binding 1: element of its first index
} p;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer D { int d[]; };

void main()
{
    uint column = flat_group();
    if (column >= p.columns)
        return;
    uint first = p.x_offset + column * p.n;
    for (uint i = gl_LocalInvocationID.x; i < p.n; i += gl_WorkGroupSize.x) {
        float v = x[first + i];
        uint rank = 0u;
        for (uint m = 0u; m < p.n; m++) {
            float other = x[first + m];
            if (other > v || (other == v && m < i))
                rank++;
        }
        if (rank < p.k)
            d[p.d_offset + column * p.k + rank] = int(i);
    }
}
