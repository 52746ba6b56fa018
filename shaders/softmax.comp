#version 450
// Softmax along each row: max, then the sum of exp(x - max), both reduced in
// shared memory, then the normalized values. One workgroup per row (a
// power-of-two local size). Bindings: 0 = src0, 1 = dst (may be src0).
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;
    uint rows;
    uint x_offset;
    uint d_offset;
} p;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer D { float d[]; };

shared float partial[gl_WorkGroupSize.x];

void main()
{
    uint row = flat_group();
    if (row >= p.rows)
        return;
    uint tid = gl_LocalInvocationID.x;
    uint base = p.x_offset + row * p.n;
    float row_max = uintBitsToFloat(0xff800000u); // -inf
    for (uint i = tid; i < p.n; i += gl_WorkGroupSize.x)
        row_max = max(row_max, x[base + i]);
    partial[tid] = row_max;
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride >>= 1) {
        if (tid < stride)
            partial[tid] = max(partial[tid], partial[tid + stride]);
        barrier();
    }
    row_max = partial[0];
    barrier();
    float sum = 0.0;
    for (uint i = tid; i < p.n; i += gl_WorkGroupSize.x)
        sum += exp(x[base + i] - row_max);
    partial[tid] = sum;
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride >>= 1) {
        if (tid < stride)
            partial[tid] += partial[tid + stride];
        barrier();
    }
    float inv = 1.0 / partial[0];
    for (uint i = tid; i < p.n; i += gl_WorkGroupSize.x)
        d[p.d_offset + row * p.n + i] = exp(x[base + i] - row_max) * inv;
}
