#version 450
// Causal attention over the KV cache (GQA, optional sliding window and
// softcap), one workgroup per (query token, head) pair and KV split.
//
// The visible cache rows are walked in chunks of one row per invocation: each
// invocation scores its row (q . k * scale, softcapped), the chunk's max
// updates the running max (online softmax: earlier sums are rescaled by
// exp(old_max - new_max)), and then each invocation accumulates p * v for
// its head dimensions (up to DIMS_PER_THREAD per invocation).
//
// One dispatch covers the cache rows [kv_begin, kv_end) bound in bindings 1
// and 2 (a cache larger than one binding, or than the driver lets one
// workgroup loop over, is walked in several passes: vulkan_split.h). With
// VK_ATTENTION_MERGE an earlier pass wrote dst and the state, and this one
// merges into them (attention_merge.glsl); with VK_ATTENTION_KEEP_STATE it
// writes the state (max, sum per pair, at state_offset of binding 5) for the
// next pass.
//
// Split-KV (decode with long contexts): workgroup z = split s of n_splits
// covers rows_per_split rows of the pass and writes (max, sum, unnormalized
// output) to the partials (part_offset of binding 5);
// attention_combine.comp merges them. With one split the result goes
// straight to dst.
//
// Bindings: 0 = q, 1 = K cache, 2 = V cache (F32, or F16 with CACHE_F16, read
// as 32-bit words), 3 = positions (I32), 4 = dst, 5 = the workspace: state
// then partials (dst again when the pass needs neither).
#include "common.glsl"
#include "attention_merge.glsl"

layout(local_size_x_id = 0) in;

#define DIMS_PER_THREAD 8 // head_dim <= 8 * local size (the host uses 64: 512)
#define MAX_HEAD_DIM 512

layout(push_constant) uniform Push {
    uint head_dim;
    uint n_heads;
    uint n_tok;
    uint group;     // query heads per kv head
    uint n_kv;      // cache rows to scan
    int window;     // sliding window, 0: none
    float scale;
    float softcap;  // 0: none
    uint q_offset;  // elements
    uint k_offset;
    uint v_offset;
    uint pos_offset;
    uint d_offset;
    uint k_row_stride;  // elements between cache rows
    uint k_head_stride; // elements between kv heads
    uint v_row_stride;
    uint v_head_stride;
    uint n_splits;
    uint rows_per_split;
    uint part_offset;
    uint kv_begin;  // cache rows of this pass; k_offset and v_offset are row kv_begin's
    uint kv_end;
    uint state_offset;
    uint flags;     // VK_ATTENTION_MERGE 1, VK_ATTENTION_KEEP_STATE 2
} p;

layout(set = 0, binding = 0) readonly buffer Q { float q[]; };
#ifdef CACHE_F16
layout(set = 0, binding = 1) readonly buffer K { uint k_words[]; };
layout(set = 0, binding = 2) readonly buffer V { uint v_words[]; };
float load_k(uint e) { return f16_bits_to_float(LOAD_U16(k_words, e)); }
float load_v(uint e) { return f16_bits_to_float(LOAD_U16(v_words, e)); }
#else
layout(set = 0, binding = 1) readonly buffer K { float k_data[]; };
layout(set = 0, binding = 2) readonly buffer V { float v_data[]; };
float load_k(uint e) { return k_data[e]; }
float load_v(uint e) { return v_data[e]; }
#endif
layout(set = 0, binding = 3) readonly buffer Pos { int positions[]; };
layout(set = 0, binding = 4) buffer D { float d[]; };
layout(set = 0, binding = 5) buffer Part { float part[]; };

shared float q_shared[MAX_HEAD_DIM];
shared float p_shared[gl_WorkGroupSize.x];

void main()
{
    uint pair = flat_group();
    if (pair >= p.n_heads * p.n_tok)
        return; // the whole workgroup leaves together
    uint split = gl_WorkGroupID.z;
    uint tid = gl_LocalInvocationID.x;
    const uint threads = gl_WorkGroupSize.x;
    uint token = pair / p.n_heads, head = pair % p.n_heads;
    uint kv_head = head / p.group;
    for (uint i = tid; i < p.head_dim; i += threads)
        q_shared[i] = q[p.q_offset + pair * p.head_dim + i];

    int position = positions[p.pos_offset + token];
    int last = min(position + 1, int(p.n_kv)); // exclusive
    int first = p.window > 0 ? max(position - p.window + 1, 0) : 0;
    first = max(first, int(p.kv_begin));
    last = min(last, int(p.kv_end));
    int begin = first + int(split * p.rows_per_split);
    int end = min(last, begin + int(p.rows_per_split));

    float acc[DIMS_PER_THREAD];
    for (uint c = 0u; c < DIMS_PER_THREAD; c++)
        acc[c] = 0.0;
    float running_max = uintBitsToFloat(0xff800000u); // -inf
    float running_sum = 0.0;
    uint k_base = p.k_offset + kv_head * p.k_head_stride;
    uint v_base = p.v_offset + kv_head * p.v_head_stride;
    barrier(); // q_shared is ready

    for (int chunk = begin; chunk < end; chunk += int(threads)) {
        uint count = min(threads, uint(end - chunk));
        float score = uintBitsToFloat(0xff800000u);
        if (tid < count) {
            uint row = k_base + (uint(chunk + int(tid)) - p.kv_begin) * p.k_row_stride;
            float dot_qk = 0.0;
            for (uint i = 0u; i < p.head_dim; i++)
                dot_qk += q_shared[i] * load_k(row + i);
            score = dot_qk * p.scale;
            if (p.softcap > 0.0)
                score = p.softcap * tanh(score / p.softcap);
        }
        p_shared[tid] = score;
        barrier();
        float chunk_max = p_shared[0];
        for (uint r = 1u; r < count; r++)
            chunk_max = max(chunk_max, p_shared[r]);
        float new_max = max(running_max, chunk_max);
        float rescale = exp(running_max - new_max);
        barrier();
        p_shared[tid] = tid < count ? exp(score - new_max) : 0.0;
        barrier();
        float chunk_sum = 0.0;
        for (uint r = 0u; r < count; r++)
            chunk_sum += p_shared[r];
        running_sum = running_sum * rescale + chunk_sum;
        for (uint c = 0u; c < DIMS_PER_THREAD; c++) {
            uint dim = tid + c * threads;
            if (dim >= p.head_dim)
                break;
            float sum = acc[c] * rescale;
            uint v_row = v_base + (uint(chunk) - p.kv_begin) * p.v_row_stride + dim;
            for (uint r = 0u; r < count; r++)
                sum += p_shared[r] * load_v(v_row + r * p.v_row_stride);
            acc[c] = sum;
        }
        running_max = new_max;
        barrier(); // p_shared is rewritten by the next chunk
    }

    if (p.n_splits == 1u) {
        vec4 merge = vec4(0.0, running_sum > 0.0 ? 1.0 / running_sum : 0.0, running_max, running_sum);
        uint state = p.state_offset + 2u * pair;
        if ((p.flags & 1u) != 0u)
            merge = attention_merge(part[state], part[state + 1u], running_max, running_sum);
        for (uint c = 0u; c < DIMS_PER_THREAD; c++) {
            uint dim = tid + c * threads;
            if (dim < p.head_dim) {
                uint at = p.d_offset + pair * p.head_dim + dim;
                float old_part = merge.x > 0.0 ? d[at] * merge.x : 0.0;
                d[at] = old_part + acc[c] * merge.y;
            }
        }
        barrier(); // every invocation has read the old state
        if ((p.flags & 2u) != 0u && tid == 0u) {
            part[state] = merge.z;
            part[state + 1u] = merge.w;
        }
    } else {
        uint base = p.part_offset + (pair * p.n_splits + split) * (p.head_dim + 2u);
        if (tid == 0u) {
            part[base] = running_max;
            part[base + 1u] = running_sum;
        }
        for (uint c = 0u; c < DIMS_PER_THREAD; c++) {
            uint dim = tid + c * threads;
            if (dim < p.head_dim)
                part[base + 2u + dim] = acc[c];
        }
    }
}
