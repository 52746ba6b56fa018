// Reading weights of every format out of 32-bit words, one "unit" at a time.
//
// The including shader declares, before including this file,
//   layout(set = 0, binding = 0) readonly buffer Weights { uint weight_words[]; };
// and is compiled with exactly one WEIGHT_TYPE_<FMT>=1 defined.
//
// A unit is 8 weights of one block that share their scales. Each format
// defines
//   BLOCK_ELEMS, BLOCK_BYTES  the block (8 elements for the float types)
//   UNITS_PER_BLOCK           BLOCK_ELEMS / 8
//   WEIGHT_IS_FLOAT           1 for f32/f16/bf16: a row may end inside a block
//   uvec2 unit_bases(uint unit)
//       lo[i] below is element unit_bases(unit).x + i of the block and hi[i]
//       element unit_bases(unit).y + i (i < 4): the two halves of a unit are
//       where the format's bit layout puts them, not always side by side.
//   void dequant_unit(uint block_byte, uint unit, uint elems_left, out vec4 lo, out vec4 hi)
//       the 8 values of unit (0 .. UNITS_PER_BLOCK-1) of the block starting at
//       byte block_byte of binding 0. elems_left (elements of the row from the
//       block's first on) matters only to the float types: values at or past
//       it are 0 and their bytes are not read.
//
// Dequantized values must equal base/quant.c, quant_k.c and quant_lowbit.c
// bit for bit (get_rows is checked exactly), so the products are formed in
// the same order as there and marked precise: no fused multiply-add may
// change the rounding.
//
// Byte offsets are even (GGUF blocks are 2-byte aligned), so a block may start
// in the middle of a word; read_u32 puts such a straddling word together.
// MXFP4 (17-byte blocks) is the exception: dequant_lowbit.glsl reads it with
// read_u8 and its own read_u32_any, which take any offset.

// The low-bit formats' lookup tables are binding 3, or another binding the
// including shader names (the expert matmul puts its expert table at 3).
#ifndef LOWBIT_TABLES_BINDING
#define LOWBIT_TABLES_BINDING 3
#endif

uint read_u8(uint byte_offset)
{
    return (weight_words[byte_offset >> 2] >> ((byte_offset & 3u) * 8u)) & 0xffu;
}

// byte_offset must be even
uint read_u16(uint byte_offset)
{
    return (weight_words[byte_offset >> 2] >> ((byte_offset & 2u) * 8u)) & 0xffffu;
}

// byte_offset must be even
uint read_u32(uint byte_offset)
{
    uint word = byte_offset >> 2;
    if ((byte_offset & 2u) == 0u)
        return weight_words[word];
    return (weight_words[word] >> 16) | (weight_words[word + 1u] << 16);
}

float read_f16(uint byte_offset)
{
    return unpackHalf2x16(read_u16(byte_offset)).x;
}

// The four bytes of a word as unsigned values, lowest byte first.
uvec4 bytes_of(uint word)
{
    return uvec4(word, word >> 8, word >> 16, word >> 24) & 0xffu;
}

// The four bytes of a word as signed (int8) values, lowest byte first.
vec4 signed_bytes_of(uint word)
{
    // shift each byte to the top, then back down: >> of a signed int extends the sign
    ivec4 w = ivec4(int(word << 24), int(word << 16), int(word << 8), int(word));
    return vec4(w >> 24);
}

#if defined(WEIGHT_TYPE_F32) || defined(WEIGHT_TYPE_F16) || defined(WEIGHT_TYPE_BF16)
#include "dequant_float.glsl"
#elif defined(WEIGHT_TYPE_Q4_0) || defined(WEIGHT_TYPE_Q4_1) || defined(WEIGHT_TYPE_Q5_0) || \
    defined(WEIGHT_TYPE_Q5_1) || defined(WEIGHT_TYPE_Q8_0)
#include "dequant_q.glsl"
#elif defined(WEIGHT_TYPE_Q2_K) || defined(WEIGHT_TYPE_Q3_K) || defined(WEIGHT_TYPE_Q4_K) || \
    defined(WEIGHT_TYPE_Q5_K) || defined(WEIGHT_TYPE_Q6_K)
#include "dequant_k.glsl"
#elif defined(WEIGHT_TYPE_IQ2_XXS) || defined(WEIGHT_TYPE_IQ2_XS) || defined(WEIGHT_TYPE_IQ2_S) || \
    defined(WEIGHT_TYPE_IQ3_XXS) || defined(WEIGHT_TYPE_IQ3_S) || defined(WEIGHT_TYPE_IQ1_S) ||   \
    defined(WEIGHT_TYPE_IQ1_M)
#include "dequant_iq_grid.glsl"
#elif defined(WEIGHT_TYPE_IQ4_NL) || defined(WEIGHT_TYPE_IQ4_XS) || defined(WEIGHT_TYPE_MXFP4) || \
    defined(WEIGHT_TYPE_TQ1_0) || defined(WEIGHT_TYPE_TQ2_0)
#include "dequant_lowbit.glsl"
#else
#error "define one WEIGHT_TYPE_<FMT>"
#endif
