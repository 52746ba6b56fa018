/* Backend registry and the pure tensor helpers of backend.h. */
#include "backend.h"

#include <string.h>

#include "cpu/cpu_backend.h"
#ifdef STRATA_WITH_CUDA
#include "cuda/cuda_backend.h"
#endif
#ifdef STRATA_WITH_VULKAN
#include "vulkan/vulkan_backend.h"
#endif

/* Adding a backend: one line here, nothing else outside backends/<name>/. */
static const backend_registration *const registry[] = {
    &cpu_backend_registration,
#ifdef STRATA_WITH_CUDA
    &cuda_backend_registration,
#endif
#ifdef STRATA_WITH_VULKAN
    &vulkan_backend_registration,
#endif
};

const backend_registration *const *backend_registry(int *count)
{
    *count = (int)(sizeof registry / sizeof registry[0]);
    return registry;
}

const backend_registration *backend_find(const char *name)
{
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

strata_status backend_open(const char *name, int device_index, const backend_options *options,
                           backend_device *out, strata_error *err)
{
    memset(out, 0, sizeof *out);
    const backend_registration *reg = backend_find(name);
    if (!reg) {
        if (strcmp(name, "cuda") == 0 || strcmp(name, "vulkan") == 0)
            return strata_fail(err, STRATA_UNSUPPORTED,
                               "backend %s was not built into this strata (configure with -DSTRATA_%s=ON)", name,
                               strcmp(name, "cuda") == 0 ? "CUDA" : "VULKAN");
        return strata_fail(err, STRATA_INVALID_INPUT, "unknown backend '%s' (known: cpu, cuda, vulkan)", name);
    }
    strata_error count_err = {0};
    int n_devices = reg->device_count(&count_err);
    if (n_devices <= 0) {
        if (count_err.message[0])
            return strata_fail(err, STRATA_UNSUPPORTED, "backend %s: %s", name, count_err.message);
        return strata_fail(err, STRATA_UNSUPPORTED, "backend %s: no device found", name);
    }
    if (device_index < 0 || device_index >= n_devices)
        return strata_fail(err, STRATA_INVALID_INPUT, "backend %s: device %d does not exist (%d device%s found)",
                           name, device_index, n_devices, n_devices == 1 ? "" : "s");
    return reg->open(device_index, options, out, err);
}

void backend_close(backend_device *device)
{
    if (device && device->ops) {
        device->ops->destroy(device->ctx);
        device->ops = NULL;
        device->ctx = NULL;
    }
}

bool op_kind_is_moe(op_kind kind)
{
    return kind == OP_TOPK || kind == OP_MOE_WEIGHTS || kind == OP_MATMUL_ID || kind == OP_MOE_SUM;
}

const char *op_kind_name(op_kind kind)
{
    static const char *const names[OP_COUNT_] = {
        [OP_GET_ROWS] = "get_rows", [OP_RMS_NORM] = "rms_norm", [OP_MATMUL] = "matmul",
        [OP_ADD] = "add",           [OP_MUL] = "mul",           [OP_SCALE] = "scale",
        [OP_ROPE] = "rope",         [OP_KV_STORE] = "kv_store", [OP_ATTENTION] = "attention",
        [OP_SWIGLU] = "swiglu",     [OP_GEGLU] = "geglu",       [OP_SOFTMAX] = "softmax",
        [OP_ARGMAX] = "argmax",     [OP_COPY] = "copy",         [OP_TOPK] = "topk",
        [OP_MOE_WEIGHTS] = "moe_weights", [OP_MATMUL_ID] = "matmul_id", [OP_MOE_SUM] = "moe_sum",
    };
    if ((int)kind < 0 || kind >= OP_COUNT_)
        return "unknown";
    return names[kind];
}

bool tensor_init_contiguous(strata_tensor *tensor, strata_dtype dtype, int64_t ne0, int64_t ne1, int64_t ne2,
                            int64_t ne3)
{
    memset(tensor, 0, sizeof *tensor);
    const dtype_traits *traits = dtype_get_traits((int)dtype);
    if (!traits || ne0 < 0 || ne1 < 0 || ne2 < 0 || ne3 < 0)
        return false;
    size_t row_bytes;
    if (!dtype_row_bytes(dtype, ne0, &row_bytes))
        return false;
    tensor->dtype = dtype;
    tensor->ne[0] = ne0;
    tensor->ne[1] = ne1;
    tensor->ne[2] = ne2;
    tensor->ne[3] = ne3;
    tensor->nb[0] = traits->block_bytes; /* per element for plain types, per block for quantized */
    tensor->nb[1] = row_bytes;
    for (int d = 2; d < STRATA_MAX_DIMS; d++) {
        size_t prev = tensor->nb[d - 1];
        uint64_t count = (uint64_t)tensor->ne[d - 1];
        if (count != 0 && prev > SIZE_MAX / count)
            return false;
        tensor->nb[d] = prev * (size_t)count;
    }
    if (ne3 != 0 && tensor->nb[3] > SIZE_MAX / (uint64_t)ne3)
        return false;
    return true;
}

int64_t tensor_element_count(const strata_tensor *tensor)
{
    return tensor->ne[0] * tensor->ne[1] * tensor->ne[2] * tensor->ne[3];
}

int64_t tensor_row_count(const strata_tensor *tensor)
{
    return tensor->ne[1] * tensor->ne[2] * tensor->ne[3];
}

size_t tensor_byte_size(const strata_tensor *tensor)
{
    return tensor->nb[3] * (size_t)tensor->ne[3];
}

bool tensor_is_contiguous(const strata_tensor *tensor)
{
    const dtype_traits *traits = dtype_get_traits((int)tensor->dtype);
    size_t row_bytes;
    if (!traits || tensor->nb[0] != traits->block_bytes || !dtype_row_bytes(tensor->dtype, tensor->ne[0], &row_bytes))
        return false;
    if (tensor->nb[1] != row_bytes)
        return false;
    for (int d = 2; d < STRATA_MAX_DIMS; d++)
        if (tensor->nb[d] != tensor->nb[d - 1] * (size_t)tensor->ne[d - 1])
            return false;
    return true;
}
