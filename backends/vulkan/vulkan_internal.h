/* Private to backends/vulkan: the device context, the buffer struct, the
 * recording helpers every op uses, and the op table entry type.
 *
 * How work flows: run_op, upload and download record into one command buffer
 * (vk_context.cmd); sync() (or a download, or a full staging ring) submits it
 * and waits on a fence. A step of the forward pass is therefore one submit.
 * Between recorded commands a barrier is inserted only when a command touches
 * a range that an earlier, unbarriered command wrote (or writes a range one
 * read): see vk_hazard_*. */
#ifndef STRATA_VULKAN_INTERNAL_H
#define STRATA_VULKAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <volk.h>

#include "../backend.h"

#define VK_MAX_BINDINGS 6
#define VK_PUSH_CONSTANT_BYTES 128 /* the minimum every device guarantees */
#define VK_MAX_PIPELINES 160 /* every variant of cmake/vulkan.cmake fits */
#define VK_MAX_HAZARD_RANGES 64
#define VK_STAGING_BYTES ((VkDeviceSize)32 << 20)
#define VK_PARAMS_BYTES ((VkDeviceSize)64 << 10)
#define VK_DESCRIPTOR_SETS_PER_POOL 512
#define VK_LOWBIT_TABLE_SECTIONS 8 /* vulkan_lowbit_tables.c */

/* Turns a VkResult into a status and message; returns it. */
strata_status vk_fail(strata_error *err, VkResult result, const char *what);
const char *vk_result_name(VkResult result);

/* A shared block of device memory (vulkan_suballoc.c). */
typedef struct vk_block vk_block;

struct backend_buffer {
    VkBuffer buffer;
    VkDeviceMemory memory;     /* its own allocation, or VK_NULL_HANDLE when in a block */
    vk_block *block;           /* the shared block it is bound in, or NULL */
    VkDeviceSize block_offset; /* where in the block */
    VkDeviceSize memory_bytes; /* of memory it holds (VkMemoryRequirements.size) */
    VkDeviceSize bytes;        /* as requested */
    VkDeviceSize capacity;     /* bytes rounded up to 4 (shaders read whole words) */
    void *mapped;              /* persistent mapping when host-visible, else NULL */
};

/* What the device can do (queried once at open). */
typedef struct vk_features {
    bool fp16_storage;      /* storageBuffer16BitAccess */
    bool fp16_arithmetic;   /* shaderFloat16 */
    bool int8_storage;      /* storageBuffer8BitAccess */
    bool subgroup_arithmetic;
    bool cooperative_matrix; /* VK_KHR_cooperative_matrix */
    bool transfer_queue;     /* a queue family with transfer but not compute/graphics */
    bool robustness2;        /* VK_EXT_robustness2 with robustBufferAccess2 */
    uint32_t subgroup_size;
} vk_features;

typedef struct vk_pipeline {
    const char *shader_name;
    uint32_t local_size;
    int n_bindings;
    VkPipeline pipeline;
} vk_pipeline;

/* One storage-buffer binding: a range of a buffer. */
typedef struct vk_binding {
    const backend_buffer *buffer;
    VkDeviceSize offset; /* multiple of minStorageBufferOffsetAlignment */
    VkDeviceSize range;  /* <= the context's bind_limit */
    bool written;        /* the dispatch writes it (for barriers) */
} vk_binding;

typedef struct vk_hazard_range {
    VkBuffer buffer;
    VkDeviceSize begin, end;
} vk_hazard_range;

#define VK_SHADOW_ENTRIES 4
#define VK_SHADOW_BYTES 16384
typedef struct vk_shadow {
    const backend_buffer *buffer; /* NULL: unused */
    size_t offset, bytes;
    unsigned char data[VK_SHADOW_BYTES];
} vk_shadow;

typedef struct vk_context {
    int device_index;
    VkInstance instance;
    VkPhysicalDevice physical;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceProperties properties;
    VkPhysicalDeviceMemoryProperties memory_properties;
    vk_features features;
    /* the most bytes one storage-buffer binding may span: maxStorageBufferRange,
     * or less with STRATA_VULKAN_MAX_BIND_KIB (vulkan_split.h) */
    uint64_t bind_limit;
    /* loop iterations a shader invocation may run in all before the driver
     * cuts its loops short (VK_LLVMPIPE_LOOP_ITERATIONS on lavapipe); 0: no limit */
    uint32_t loop_budget;
    /* STRATA_VULKAN_MAX_BIND_KIB is set and the driver has robustBufferAccess2:
     * shader accesses outside their binding read zero and write nothing, so
     * a split that misses a range gives wrong results instead of reaching
     * the neighbouring bytes, as a GPU without bounds checks would (lavapipe
     * checks binding ranges either way) */
    bool strict_bindings;
    uint64_t allocated_bytes; /* device memory held (blocks and own allocations), for free_bytes */
    struct {
        vk_block *blocks;              /* every shared block, of any memory type */
        uint32_t memory_objects;       /* live VkDeviceMemory, <= maxMemoryAllocationCount */
        uint64_t max_allocation_bytes; /* maxMemoryAllocationSize; 0 until asked */
    } suballoc;

    /* recording */
    VkCommandPool command_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    bool recording;
    VkDescriptorPool *descriptor_pools;
    int n_descriptor_pools, current_descriptor_pool;
    VkDescriptorSetLayout set_layouts[VK_MAX_BINDINGS + 1]; /* by binding count */
    VkPipelineLayout pipeline_layouts[VK_MAX_BINDINGS + 1];
    vk_pipeline pipelines[VK_MAX_PIPELINES];
    int n_pipelines;
    vk_hazard_range written[VK_MAX_HAZARD_RANGES], read[VK_MAX_HAZARD_RANGES];
    int n_written, n_read;

    /* host-visible staging ring for uploads and downloads, reset per submit */
    backend_buffer *staging;
    VkDeviceSize staging_used;
    /* small per-op tables written with vkCmdUpdateBuffer, reset per submit */
    backend_buffer *params;
    VkDeviceSize params_used;
    /* device scratch (attention partials), grown on demand: the backend's
     * workspace, capped by workspace_limit (0: none) */
    backend_buffer *scratch;
    uint64_t workspace_limit;
    uint64_t workspace_peak;
    /* the low-bit formats' lookup tables (vulkan_lowbit_tables.c), made at
     * the first op that reads them, and where each format's section starts */
    backend_buffer *lowbit_tables;
    VkDeviceSize lowbit_table_offsets[VK_LOWBIT_TABLE_SECTIONS];

    /* downloads waiting for the submit: copied out of staging after it */
    struct vk_pending_download {
        void *host;
        VkDeviceSize staging_offset, bytes;
    } *downloads;
    int n_downloads, downloads_capacity;

    /* the last few small uploads, as the host sent them (vk_shadow_find) */
    vk_shadow shadows[VK_SHADOW_ENTRIES];
    int next_shadow;
} vk_context;

/* --- device (vulkan_device.c) ----------------------------------------------- */
/* Creates an instance; *out is NULL with a message when there is no loader. */
strata_status vk_instance_create(VkInstance *out, strata_error *err);
void vk_query_features(VkPhysicalDevice physical, vk_features *out);
/* "fp16-storage:yes ... coopmat:no" */
void vk_features_describe(const vk_features *features, char *out, size_t out_size);
/* Opens device_index (instance, device, queue, recording state). */
strata_status vk_context_create(int device_index, vk_context **out, strata_error *err);
void vk_context_destroy(vk_context *ctx); /* NULL is fine; waits for the device */
uint64_t vk_device_local_bytes(const vk_context *ctx);
/* backend_registration.open (vulkan_backend.c) */
strata_status vk_open(int device_index, const backend_options *options, backend_device *out, strata_error *err);

/* --- memory (vulkan_memory.c) ------------------------------------------------ */
/* A buffer of bytes in memory with the wanted properties (device-local for
 * tensors, host-visible + coherent for staging). Never blocks. */
strata_status vk_buffer_create(vk_context *ctx, VkDeviceSize bytes, bool host_visible, backend_buffer **out,
                               strata_error *err);
void vk_buffer_destroy(vk_context *ctx, backend_buffer *buffer);

/* --- device memory (vulkan_suballoc.c) ------------------------------------------ */
/* One VkDeviceMemory of bytes; fails with OUT_OF_MEMORY when the device's
 * maxMemoryAllocationCount is reached or the allocation fails. */
strata_status vk_memory_allocate(vk_context *ctx, uint32_t memory_type, VkDeviceSize bytes, VkDeviceMemory *out,
                                 strata_error *err);
void vk_memory_free(vk_context *ctx, VkDeviceMemory memory, VkDeviceSize bytes); /* NULL is fine */
/* Binds buffer->buffer at an aligned offset of a shared block of memory_type
 * (a new block when none has room) and sets block, block_offset,
 * memory_bytes and mapped. *bound is false, with STRATA_OK, when the buffer
 * is too large to share or no block can be had: the caller then gives it
 * its own allocation. */
strata_status vk_suballoc_bind(vk_context *ctx, backend_buffer *buffer, const VkMemoryRequirements *needs,
                               uint32_t memory_type, bool host_visible, bool *bound, strata_error *err);
/* Gives a buffer's range back (the VkBuffer must be destroyed already);
 * frees the block when it was the last. Nothing for own allocations. */
void vk_suballoc_release(vk_context *ctx, backend_buffer *buffer);
/* Frees every block left (at device destroy). */
void vk_suballoc_destroy(vk_context *ctx);

/* --- recording (vulkan_command.c) ------------------------------------------- */
/* Command pool, buffer, fence, descriptor layouts, staging and params buffers. */
strata_status vk_recording_create(vk_context *ctx, strata_error *err);
void vk_recording_destroy(vk_context *ctx); /* device must be idle */
/* Makes sure ctx->cmd is recording. */
strata_status vk_record_begin(vk_context *ctx, strata_error *err);
/* Ends, submits and waits for everything recorded; copies pending downloads
 * to the host; resets the staging ring, the params area and descriptor pools. */
strata_status vk_submit_and_wait(vk_context *ctx, strata_error *err);
/* Records a barrier first when [begin, end) of buffer depends on an earlier
 * unbarriered command (read after write, or write after read/write). */
void vk_hazard_check(vk_context *ctx, const backend_buffer *buffer, VkDeviceSize begin, VkDeviceSize end,
                     bool write);
/* Notes [begin, end) as read or written by the command just recorded. */
void vk_hazard_note(vk_context *ctx, const backend_buffer *buffer, VkDeviceSize begin, VkDeviceSize end, bool write);

/* Whether the embedded shader variant name was built in. */
bool vk_shader_present(const char *name);
/* The pipeline of an embedded shader variant with its local size (spec
 * constant 0) and binding count, created on first use. */
strata_status vk_pipeline_get(vk_context *ctx, const char *shader_name, uint32_t local_size, int n_bindings,
                              const vk_pipeline **out, strata_error *err);
/* Records one dispatch: a descriptor set for bindings, the push constants
 * (at most VK_PUSH_CONSTANT_BYTES), barriers where needed. */
strata_status vk_dispatch(vk_context *ctx, const vk_pipeline *pipeline, const vk_binding *bindings,
                          const void *push, size_t push_bytes, uint32_t groups_x, uint32_t groups_y,
                          uint32_t groups_z, strata_error *err);

/* Binds [tensor offset + begin_bytes, + span_bytes) of tensor's buffer: the
 * binding starts at the aligned offset at or below that byte and
 * *element_offset receives the rest in units of element_bytes. Fails with a
 * message when the range is outside the buffer or does not fit the binding
 * limit (ctx->bind_limit: callers split their work with vulkan_split.h so
 * that it does), or when the start is not a multiple of element_bytes. */
strata_status vk_bind_range(const vk_context *ctx, const strata_tensor *tensor, uint64_t begin_bytes,
                            uint64_t span_bytes, size_t element_bytes, bool written, vk_binding *out,
                            uint32_t *element_offset, strata_error *err);
/* vk_bind_range from the tensor's first byte. */
strata_status vk_bind_tensor(const vk_context *ctx, const strata_tensor *tensor, size_t span_bytes,
                             size_t element_bytes, bool written, vk_binding *out, uint32_t *element_offset,
                             strata_error *err);
/* The alignment vk_bind_tensor uses for binding offsets. */
static inline VkDeviceSize vk_binding_alignment(const vk_context *ctx)
{
    VkDeviceSize alignment = ctx->properties.limits.minStorageBufferOffsetAlignment;
    return alignment < 4 ? 4 : alignment;
}
/* Copies bytes into the params area (vkCmdUpdateBuffer) and binds them. */
strata_status vk_params_write(vk_context *ctx, const void *data, size_t bytes, vk_binding *out, strata_error *err);
/* Makes ctx->scratch hold at least bytes (submits first if it must grow):
 * half as much again as asked, within workspace_limit. */
/* Whether dtype's matmul and get_rows shaders read lookup tables (binding 3). */
bool vk_lowbit_has_tables(strata_dtype dtype);
/* Binds dtype's lookup tables (read only), uploading all of them at the
 * context's first call; the upload is recorded on the queue before any
 * dispatch that binds them. Fails for a dtype without tables. */
strata_status vk_lowbit_tables_bind(vk_context *ctx, strata_dtype dtype, vk_binding *out, strata_error *err);
strata_status vk_scratch_reserve(vk_context *ctx, VkDeviceSize bytes, strata_error *err);
/* The workspace growth vk_scratch_reserve makes for a need of bytes. */
static inline VkDeviceSize vk_scratch_grown_size(VkDeviceSize bytes)
{
    return bytes + bytes / 2;
}

/* Splits a count of workgroups over x and y (x at most 65535). */
void vk_groups_2d(uint64_t groups, uint32_t *x, uint32_t *y);

/* --- transfers (vulkan_transfer.c) ------------------------------------------- */
strata_status vk_upload(void *opaque, backend_buffer *dst, size_t offset, const void *src, size_t bytes,
                        strata_error *err);
strata_status vk_download(void *opaque, backend_buffer *src, size_t offset, void *dst, size_t bytes,
                          strata_error *err);
/* The host copy of [offset, offset + bytes) of buffer when a small upload put
 * it there and no device command has written over it since; else NULL. */
const void *vk_shadow_find(const vk_context *ctx, const backend_buffer *buffer, size_t offset, size_t bytes);
/* Forgets shadows that overlap a range a command writes. */
void vk_shadow_invalidate(vk_context *ctx, const backend_buffer *buffer, VkDeviceSize begin, VkDeviceSize end);

/* --- ops ---------------------------------------------------------------------- */
/* An op's check: true when accepted; otherwise false with the reason in why. */
typedef bool (*vk_op_check_fn)(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
/* Records an op that passed its check. */
typedef strata_status (*vk_op_run_fn)(vk_context *ctx, const backend_op *op, strata_error *err);

/* vulkan_check.c */
bool vk_check_get_rows(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_matmul(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_rms_norm(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_binary(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_unary(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_gated(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_rope(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_kv_store(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_attention(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_argmax(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_copy(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_topk(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_moe_weights(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_matmul_id(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);
bool vk_check_moe_sum(const vk_context *ctx, const backend_op *op, char *why, size_t why_size);

/* vulkan_ops_elementwise.c */
strata_status vk_run_add(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_mul(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_scale(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_swiglu(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_geglu(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_rms_norm(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_softmax(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_argmax(vk_context *ctx, const backend_op *op, strata_error *err);
/* vulkan_ops_attention.c */
strata_status vk_run_rope(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_kv_store(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_attention(vk_context *ctx, const backend_op *op, strata_error *err);
/* vulkan_ops_copy.c */
strata_status vk_run_copy(vk_context *ctx, const backend_op *op, strata_error *err);
/* vulkan_ops_weights.c */
strata_status vk_run_matmul(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_get_rows(vk_context *ctx, const backend_op *op, strata_error *err);
/* Whether the shaders of a weight dtype are built in. */
bool vk_weight_dtype_supported(strata_dtype dtype);
/* The byte alignment a weight row of dtype must start at (the shaders' reads). */
size_t vk_weight_row_alignment(strata_dtype dtype);
/* vulkan_ops_moe.c */
strata_status vk_run_topk(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_moe_weights(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_matmul_id(vk_context *ctx, const backend_op *op, strata_error *err);
strata_status vk_run_moe_sum(vk_context *ctx, const backend_op *op, strata_error *err);

#endif
