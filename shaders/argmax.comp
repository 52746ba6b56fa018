#version 450
// Index of the largest value of each row (the lowest index wins ties). One
// workgroup per row (a power-of-two local size). Bindings: 0 = src0 (F32),
// 1 = dst (I32).
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;
    uint rows;
    uint x_offset;
    uint d_offset;
} p;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer D { int d[]; };

shared float best_value[gl_WorkGroupSize.x];
shared uint best_index[gl_WorkGroupSize.x];

void main()
{
    uint row = flat_group();
    if (row >= p.rows)
        return;
    uint tid = gl_LocalInvocationID.x;
    float value = uintBitsToFloat(0xff800000u);
    uint index = 0xffffffffu; // loses every tie
    for (uint i = tid; i < p.n; i += gl_WorkGroupSize.x) {
        float v = x[p.x_offset + row * p.n + i];
        if (v > value || index == 0xffffffffu) { // i only grows, so ties keep the first
            value = v;
            index = i;
        }
    }
    best_value[tid] = value;
    best_index[tid] = index;
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride >>= 1) {
        if (tid < stride) {
            float other = best_value[tid + stride];
            uint other_index = best_index[tid + stride];
            bool take = other_index != 0xffffffffu &&
                        (best_index[tid] == 0xffffffffu || other > best_value[tid] ||
                         (other == best_value[tid] && other_index < best_index[tid]));
            if (take) {
                best_value[tid] = other;
                best_index[tid] = other_index;
            }
        }
        barrier();
    }
    if (tid == 0u)
        d[p.d_offset + row] = int(best_index[0]);
}
