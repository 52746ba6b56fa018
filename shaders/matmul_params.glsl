// Bindings and push constants shared by matmul.comp and matmul_tiled.comp.
// The push-constant block mirrors vk_matmul_params in
// backends/vulkan/vulkan_shader_params.h member for member; the meaning of
// each field is written there.
layout(set = 0, binding = 0) readonly buffer Weights { uint weight_words[]; };
layout(set = 0, binding = 1) readonly buffer Input { float x[]; };
layout(set = 0, binding = 2) writeonly buffer Output { float dst[]; };

layout(push_constant) uniform MatmulParams {
    uint n_in;
    uint row_count;
    uint n_tok;
    uint weight_offset_bytes;
    uint weight_row_bytes;
    uint input_offset;
    uint input_stride;
    uint output_offset;
    uint output_stride;
#ifdef MATMUL_ID
    // the expert matmul (vk_matmul_id_params): see matmul.comp
    uint expert_begin;    // first expert of the table bound in binding 0
    uint expert_count;    // experts bound in binding 0 (their slabs expert_bytes apart)
    uint expert_bytes;    // bytes between the experts' matrices
    uint n_expert;        // experts of the op (entries of the table's counts)
    uint list_stride;     // entries per expert's list in the table
    uint n_used;          // k: slots per token
    uint input_per_slot;  // 1: pair (t, j) reads x column t * k + j; 0: column t
#endif
} p;
