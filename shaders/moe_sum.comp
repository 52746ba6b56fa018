#version 450
// OP_MOE_SUM: dst[i, t] = sum over slots j of w[j, t] * y[i, j, t], summed
// in slot order. One thread per (element, token) of the dispatch. A
// dispatch covers elements [0, n) of its binding, slots [0, slots) and
// tokens [0, tokens); when the host cuts the slots into several dispatches
// (a token's outputs larger than one binding), the later ones add to dst
// (accumulate = 1), which keeps the order of the additions. With sigmoid = 1
// each weight is sigmoid(w[j, t]) (Qwen2-MoE's shared-expert gate).
// Bindings: 0 = y (F32), 1 = weights (F32), 2 = dst (F32).
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;          // elements of each output column in this dispatch
    uint slots;      // slots summed by this dispatch
    uint tokens;     // tokens of this dispatch
    uint y_stride;   // elements between slots of y (the op's n)
    uint k;          // slots per token of the op (y and weights columns)
    uint d_stride;   // elements between dst columns (the op's n)
    uint y_offset;   // binding 0: y[first element, first slot, first token]
    uint w_offset;   // binding 1: w[first slot, first token]
    uint d_offset;   // binding 2: dst[first element, first token]
    uint accumulate; // 1: add to dst instead of overwriting it
    uint sigmoid;    // 1: each weight is sigmoid(w) (a shared expert's gate)
} p;

layout(set = 0, binding = 0) readonly buffer Y { float y[]; };
layout(set = 0, binding = 1) readonly buffer W { float w[]; };
layout(set = 0, binding = 2) buffer D { float d[]; };

void main()
{
    uint index = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (index >= p.n * p.tokens)
        return;
    uint i = index % p.n, t = index / p.n;
    uint out_at = p.d_offset + t * p.d_stride + i;
    float sum = p.accumulate != 0u ? d[out_at] : 0.0;
    for (uint j = 0u; j < p.slots; j++) {
        float weight = w[p.w_offset + t * p.k + j];
        if (p.sigmoid != 0u)
            weight = 1.0 / (1.0 + exp(-weight));
        sum += weight * y[p.y_offset + (t * p.k + j) * p.y_stride + i];
    }
    d[out_at] = sum;
}
