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
} p;
