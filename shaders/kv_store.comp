#version 450
// Stores rows[row_size, n_tok] (F32) into the cache at the rows given by
// positions[n_tok]; the cache is F32, or F16 with CACHE_F16 (written as
// halves of 32-bit words, see STORE_U16). A position outside the cache is
// skipped (the runtime never issues one). The binding holds cache rows
// [row_begin, row_begin + row_count) (a cache larger than one binding is
// stored by one dispatch per range); positions outside belong to another
// dispatch. One invocation per element.
// Bindings: 0 = rows, 1 = positions (I32), 2 = cache.
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint row_size;
    uint n_tok;
    uint n_ctx;
    uint src_offset;
    uint pos_offset;
    uint cache_offset; // in cache elements, of row row_begin
    uint row_begin;
    uint row_count;
} p;

layout(set = 0, binding = 0) readonly buffer Src { float src[]; };
layout(set = 0, binding = 1) readonly buffer Pos { int positions[]; };
#ifdef CACHE_F16
layout(set = 0, binding = 2) buffer Cache { uint cache_words[]; };
#else
layout(set = 0, binding = 2) writeonly buffer Cache { float cache[]; };
#endif

void main()
{
    uint index = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (index >= p.row_size * p.n_tok)
        return;
    uint token = index / p.row_size, i = index % p.row_size;
    int position = positions[p.pos_offset + token];
    if (position < 0 || uint(position) >= p.n_ctx)
        return;
    uint row = uint(position) - p.row_begin; // wraps past row_count when below row_begin
    if (row >= p.row_count)
        return;
    uint e = p.cache_offset + row * p.row_size + i;
    float value = src[p.src_offset + index];
#ifdef CACHE_F16
    STORE_U16(cache_words, e, float_to_f16_bits(value));
#else
    cache[e] = value;
#endif
}
