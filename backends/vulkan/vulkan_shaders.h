/* The compiled shaders, embedded at build time (cmake/vulkan.cmake lists the
 * variants; cmake/vulkan_embed_spirv.cmake writes the table). */
#ifndef STRATA_VULKAN_SHADERS_H
#define STRATA_VULKAN_SHADERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct vk_shader_blob {
    const char *name;     /* variant name: "rms_norm", "matmul_q4_k", ... */
    const uint32_t *code; /* SPIR-V words */
    size_t size_bytes;
} vk_shader_blob;

extern const vk_shader_blob vk_shader_blobs[];
extern const size_t vk_shader_blob_count;

#endif
