#version 450
// Element-wise ops over F32: add and mul (src1 of the same shape, or one row
// broadcast over every row), scale, swiglu, geglu. One invocation per element.
// Bindings: 0 = src0, 1 = src1 (src0 again for scale), 2 = dst; dst may be
// src0 (in place): each invocation reads its element before writing it.
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;        // elements
    uint b_period; // src1 repeats every b_period elements
    uint a_offset; // elements from the start of each binding
    uint b_offset;
    uint d_offset;
    float value;   // scale
} p;

layout(set = 0, binding = 0) readonly buffer A { float a[]; };
layout(set = 0, binding = 1) readonly buffer B { float b[]; };
layout(set = 0, binding = 2) writeonly buffer D { float d[]; };

float gelu_tanh(float x)
{
    const float sqrt_2_over_pi = 0.7978845608028654;
    return 0.5 * x * (1.0 + tanh(sqrt_2_over_pi * (x + 0.044715 * x * x * x)));
}

void main()
{
    uint i = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i >= p.n)
        return;
    float x = a[p.a_offset + i];
#if defined(EW_ADD)
    float y = x + b[p.b_offset + i % p.b_period];
#elif defined(EW_MUL)
    float y = x * b[p.b_offset + i % p.b_period];
#elif defined(EW_SCALE)
    float y = x * p.value;
#elif defined(EW_SWIGLU)
    float y = x / (1.0 + exp(-x)) * b[p.b_offset + i];
#elif defined(EW_GEGLU)
    float y = gelu_tanh(x) * b[p.b_offset + i];
#else
#error "define one of EW_ADD, EW_MUL, EW_SCALE, EW_SWIGLU, EW_GEGLU"
#endif
    d[p.d_offset + i] = y;
}
