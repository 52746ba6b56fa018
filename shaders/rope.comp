#version 450
// Rotary position embedding of x[head_dim, n_heads, n_tok]. One invocation
// per element slot k of a head: k < n_rot/2 rotates pair k (2k, 2k+1, or
// k, k + n_rot/2 when neox); k >= n_rot copies its element through (needed
// when dst is not src0). theta = pos * inv_freq[k] / factor[k], where the
// host computes inv_freq = freq_scale * freq_base^(-2k/n_rot) in double.
// Bindings: 0 = x, 1 = positions (I32), 2 = inv_freq table, 3 = factors (x
// again when absent), 4 = dst (may be x).
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint head_dim;
    uint n_heads;
    uint n_tok;
    uint n_rot;
    uint neox;
    uint has_factors;
    uint x_offset;
    uint pos_offset;
    uint factor_offset;
    uint d_offset;
    float attn_factor; // LongRoPE's, on the rotated dims; 1: none
} p;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer Pos { int positions[]; };
layout(set = 0, binding = 2) readonly buffer Freq { float inv_freq[]; };
layout(set = 0, binding = 3) readonly buffer Factors { float factors[]; };
layout(set = 0, binding = 4) writeonly buffer D { float d[]; };

void main()
{
    uint index = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (index >= p.head_dim * p.n_heads * p.n_tok)
        return;
    uint k = index % p.head_dim;
    uint head = index / p.head_dim; // over n_heads * n_tok
    uint token = head / p.n_heads;
    uint base = head * p.head_dim;
    uint half_rot = p.n_rot / 2u;
    if (k < half_rot) {
        uint i0 = p.neox != 0u ? k : 2u * k;
        uint i1 = p.neox != 0u ? k + half_rot : 2u * k + 1u;
        float theta = float(positions[p.pos_offset + token]) * inv_freq[k];
        if (p.has_factors != 0u)
            theta /= factors[p.factor_offset + k];
        float c = cos(theta) * p.attn_factor, s = sin(theta) * p.attn_factor;
        float x0 = x[p.x_offset + base + i0], x1 = x[p.x_offset + base + i1];
        d[p.d_offset + base + i0] = x0 * c - x1 * s;
        d[p.d_offset + base + i1] = x0 * s + x1 * c;
    } else if (k >= p.n_rot) {
        d[p.d_offset + base + k] = x[p.x_offset + base + k];
    }
}
