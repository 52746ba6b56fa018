// f32, f16 and bf16 weights, seen as blocks of 8 elements (one unit) so that
// they share the block formats' code. A row of n elements ends inside its
// last block when n % 8 != 0: elements at or past elems_left are 0, and their
// bytes are not read (they may lie past the binding).
#define BLOCK_ELEMS 8u
#define UNITS_PER_BLOCK 1u
#define WEIGHT_IS_FLOAT 1

#if defined(WEIGHT_TYPE_F32)
#define ELEM_BYTES 4u
float read_weight(uint byte_offset)
{
    return uintBitsToFloat(read_u32(byte_offset));
}
#elif defined(WEIGHT_TYPE_F16)
#define ELEM_BYTES 2u
float read_weight(uint byte_offset)
{
    return read_f16(byte_offset);
}
#else // bf16: the high half of an f32
#define ELEM_BYTES 2u
float read_weight(uint byte_offset)
{
    return uintBitsToFloat(read_u16(byte_offset) << 16);
}
#endif
#define BLOCK_BYTES (8u * ELEM_BYTES)

uvec2 unit_bases(uint unit)
{
    return uvec2(0u, 4u);
}

// Two elements of a 16-bit format packed in one word, lower address first.
vec2 unpack_pair(uint word)
{
#if defined(WEIGHT_TYPE_F16)
    return unpackHalf2x16(word);
#else
    return vec2(uintBitsToFloat(word << 16), uintBitsToFloat(word & 0xffff0000u));
#endif
}

void dequant_unit(uint block_byte, uint unit, uint elems_left, out vec4 lo, out vec4 hi)
{
#if !defined(WEIGHT_TYPE_F32)
    if (elems_left >= 8u) { // whole unit: four words, two elements each
        lo = vec4(unpack_pair(read_u32(block_byte)), unpack_pair(read_u32(block_byte + 4u)));
        hi = vec4(unpack_pair(read_u32(block_byte + 8u)), unpack_pair(read_u32(block_byte + 12u)));
        return;
    }
#endif
    float v[8];
    for (uint i = 0u; i < 8u; i++) {
        v[i] = 0.0;
        if (i < elems_left) // a branch, not a select: the bytes past the row must not be loaded
            v[i] = read_weight(block_byte + i * ELEM_BYTES);
    }
    lo = vec4(v[0], v[1], v[2], v[3]);
    hi = vec4(v[4], v[5], v[6], v[7]);
}
