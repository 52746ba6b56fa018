#version 450
// RMS norm of each row: dst = x / sqrt(mean(x^2) + eps) (* weight). One
// workgroup per row (a power-of-two local size); the sum of squares is reduced
// in shared memory. Bindings: 0 = src0, 1 = weight (src0 again when absent),
// 2 = dst (may be src0: every read of the row ends at the reduction barrier,
// and the second pass reads each element before writing it).
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;    // elements per row
    uint rows;
    uint x_offset;
    uint w_offset;
    uint d_offset;
    uint has_weight;
    float eps;
} p;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { float w[]; };
layout(set = 0, binding = 2) writeonly buffer D { float d[]; };

shared float partial[gl_WorkGroupSize.x];

void main()
{
    uint row = flat_group();
    if (row >= p.rows)
        return; // the whole workgroup leaves together
    uint tid = gl_LocalInvocationID.x;
    uint base = row * p.n;
    float sum = 0.0;
    for (uint i = tid; i < p.n; i += gl_WorkGroupSize.x) {
        float v = x[p.x_offset + base + i];
        sum += v * v;
    }
    partial[tid] = sum;
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride >>= 1) {
        if (tid < stride)
            partial[tid] += partial[tid + stride];
        barrier();
    }
    float inv = 1.0 / sqrt(partial[0] / float(p.n) + p.eps);
    for (uint i = tid; i < p.n; i += gl_WorkGroupSize.x) {
        float v = x[p.x_offset + base + i] * inv;
        if (p.has_weight != 0u)
            v *= w[p.w_offset + i];
        d[p.d_offset + base + i] = v;
    }
}
