#version 450
// Copy/convert between F32, F16 and BF16 with any element strides (4-D).
// Buffers are viewed as 32-bit words; 16-bit elements are read as halves of
// words and written with STORE_U16. Same-type copies move the bits unchanged.
// One invocation per element. Bindings: 0 = src, 1 = dst.
#include "common.glsl"

layout(local_size_x_id = 0) in;

#define TYPE_F32 0u
#define TYPE_F16 1u
#define TYPE_BF16 2u

layout(push_constant) uniform Push {
    uint ne0, ne1, ne2, ne3;
    uint src_nb0, src_nb1, src_nb2, src_nb3; // strides in elements
    uint dst_nb0, dst_nb1, dst_nb2, dst_nb3;
    uint src_offset, dst_offset;             // in elements
    uint src_type, dst_type;
} p;

layout(set = 0, binding = 0) readonly buffer Src { uint src[]; };
layout(set = 0, binding = 1) buffer Dst { uint dst[]; };

void main()
{
    uint index = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (index >= p.ne0 * p.ne1 * p.ne2 * p.ne3)
        return;
    uint i0 = index % p.ne0;
    uint rest = index / p.ne0;
    uint i1 = rest % p.ne1;
    rest /= p.ne1;
    uint i2 = rest % p.ne2;
    uint i3 = rest / p.ne2;
    uint s = p.src_offset + i0 * p.src_nb0 + i1 * p.src_nb1 + i2 * p.src_nb2 + i3 * p.src_nb3;
    uint t = p.dst_offset + i0 * p.dst_nb0 + i1 * p.dst_nb1 + i2 * p.dst_nb2 + i3 * p.dst_nb3;
    uint bits = p.src_type == TYPE_F32 ? src[s] : LOAD_U16(src, s);
    if (p.src_type != p.dst_type) {
        float value = p.src_type == TYPE_F32 ? uintBitsToFloat(bits)
                    : p.src_type == TYPE_F16 ? f16_bits_to_float(bits)
                                             : bf16_bits_to_float(bits);
        bits = p.dst_type == TYPE_F32 ? floatBitsToUint(value)
             : p.dst_type == TYPE_F16 ? float_to_f16_bits(value)
                                      : float_to_bf16_bits(value);
    }
    if (p.dst_type == TYPE_F32)
        dst[t] = bits;
    else
        STORE_U16(dst, t, bits);
}
