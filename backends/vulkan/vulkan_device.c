/* Vulkan device discovery and lifetime: the loader (volk), the instance,
 * which physical devices count, feature detection, opening one device with a
 * compute queue, and destroying it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vulkan_backend.h"
#include "vulkan_internal.h"
#include "vulkan_push.h"
#include "vulkan_moe_plan.h"
#include "vulkan_split.h"

const char *vk_result_name(VkResult result)
{
    switch (result) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    default: return "VkResult (unknown)";
    }
}

strata_status vk_fail(strata_error *err, VkResult result, const char *what)
{
    strata_status status = STRATA_UNSUPPORTED;
    if (result == VK_ERROR_OUT_OF_HOST_MEMORY || result == VK_ERROR_OUT_OF_DEVICE_MEMORY ||
        result == VK_ERROR_OUT_OF_POOL_MEMORY || result == VK_ERROR_FRAGMENTED_POOL)
        status = STRATA_OUT_OF_MEMORY;
    else if (result == VK_ERROR_DEVICE_LOST)
        status = STRATA_DEVICE_LOST;
    return strata_fail(err, status, "vulkan: %s failed: %s (%d)", what, vk_result_name(result), (int)result);
}

/* volk opens the loader once per process; later calls reuse the answer. */
static VkResult loader_status = VK_NOT_READY;

strata_status vk_instance_create(VkInstance *out, strata_error *err)
{
    *out = VK_NULL_HANDLE;
    if (loader_status == VK_NOT_READY)
        loader_status = volkInitialize();
    if (loader_status != VK_SUCCESS)
        return strata_fail(err, STRATA_UNSUPPORTED, "Vulkan loader not found (libvulkan.so.1 could not be opened)");
    uint32_t api = volkGetInstanceVersion();
    if (api < VK_API_VERSION_1_2)
        return strata_fail(err, STRATA_UNSUPPORTED, "the Vulkan loader is version %u.%u; strata needs 1.2",
                           VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api));
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "strata",
        .pEngineName = "strata",
        .apiVersion = VK_API_VERSION_1_2,
    };
    VkInstanceCreateInfo info = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkInstance instance;
    VkResult result = vkCreateInstance(&info, NULL, &instance);
    if (result == VK_ERROR_INCOMPATIBLE_DRIVER)
        return strata_fail(err, STRATA_UNSUPPORTED, "no Vulkan device (the loader found no compatible driver)");
    if (result != VK_SUCCESS)
        return vk_fail(err, result, "vkCreateInstance");
    /* device functions go through the loader's trampolines, so several open
     * devices (possibly of different drivers) can share the function table */
    volkLoadInstance(instance);
    *out = instance;
    return STRATA_OK;
}

/* Index of a queue family with compute, or -1. */
static int compute_queue_family(VkPhysicalDevice physical)
{
    uint32_t count = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &count, NULL);
    VkQueueFamilyProperties families[32];
    if (count > 32)
        count = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &count, families);
    int any = -1;
    for (uint32_t i = 0; i < count; i++) {
        if (!(families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || families[i].queueCount == 0)
            continue;
        if (!(families[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
            return (int)i; /* a compute-only family: async compute on most GPUs */
        if (any < 0)
            any = (int)i;
    }
    return any;
}

static bool has_transfer_only_family(VkPhysicalDevice physical)
{
    uint32_t count = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &count, NULL);
    VkQueueFamilyProperties families[32];
    if (count > 32)
        count = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &count, families);
    for (uint32_t i = 0; i < count; i++)
        if ((families[i].queueFlags & VK_QUEUE_TRANSFER_BIT) &&
            !(families[i].queueFlags & (VK_QUEUE_COMPUTE_BIT | VK_QUEUE_GRAPHICS_BIT)))
            return true;
    return false;
}

/* The devices strata can use: Vulkan 1.2 and a compute queue. Fills up to
 * capacity handles and returns how many there are. */
static uint32_t usable_devices(VkInstance instance, VkPhysicalDevice *out, uint32_t capacity)
{
    uint32_t count = 0;
    if (vkEnumeratePhysicalDevices(instance, &count, NULL) != VK_SUCCESS || count == 0)
        return 0;
    VkPhysicalDevice all[16];
    if (count > 16)
        count = 16;
    VkResult result = vkEnumeratePhysicalDevices(instance, &count, all);
    if (result != VK_SUCCESS && result != VK_INCOMPLETE)
        return 0;
    uint32_t usable = 0;
    for (uint32_t i = 0; i < count; i++) {
        VkPhysicalDeviceProperties props;
        vkGetPhysicalDeviceProperties(all[i], &props);
        if (props.apiVersion < VK_API_VERSION_1_2 || compute_queue_family(all[i]) < 0)
            continue;
        if (usable < capacity)
            out[usable] = all[i];
        usable++;
    }
    return usable;
}

static int vk_device_count(strata_error *err)
{
    VkInstance instance;
    if (vk_instance_create(&instance, err) != STRATA_OK)
        return 0;
    uint32_t count = usable_devices(instance, NULL, 0);
    vkDestroyInstance(instance, NULL);
    if (count == 0)
        strata_fail(err, STRATA_UNSUPPORTED, "no Vulkan device (no device with Vulkan 1.2 and a compute queue)");
    return (int)count;
}

static bool has_extension(const VkExtensionProperties *extensions, uint32_t count, const char *name)
{
    for (uint32_t i = 0; i < count; i++)
        if (strcmp(extensions[i].extensionName, name) == 0)
            return true;
    return false;
}

void vk_query_features(VkPhysicalDevice physical, vk_features *out)
{
    memset(out, 0, sizeof *out);
    VkPhysicalDeviceVulkan12Features features12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features features11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                                   .pNext = &features12};
    VkPhysicalDeviceFeatures2 features = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &features11};
    vkGetPhysicalDeviceFeatures2(physical, &features);
    VkPhysicalDeviceVulkan11Properties props11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &props11};
    vkGetPhysicalDeviceProperties2(physical, &props);
    out->fp16_storage = features11.storageBuffer16BitAccess;
    out->fp16_arithmetic = features12.shaderFloat16;
    out->int8_storage = features12.storageBuffer8BitAccess;
    out->subgroup_size = props11.subgroupSize;
    out->subgroup_arithmetic = (props11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                               (props11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    uint32_t n_extensions = 0;
    vkEnumerateDeviceExtensionProperties(physical, NULL, &n_extensions, NULL);
    VkExtensionProperties *extensions = calloc(n_extensions + 1, sizeof *extensions);
    bool robustness2 = false;
    if (extensions && vkEnumerateDeviceExtensionProperties(physical, NULL, &n_extensions, extensions) == VK_SUCCESS) {
        out->cooperative_matrix = has_extension(extensions, n_extensions, "VK_KHR_cooperative_matrix");
        robustness2 = has_extension(extensions, n_extensions, VK_EXT_ROBUSTNESS_2_EXTENSION_NAME);
    }
    free(extensions);
    if (robustness2) {
        VkPhysicalDeviceRobustness2FeaturesEXT robust = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ROBUSTNESS_2_FEATURES_EXT};
        VkPhysicalDeviceFeatures2 query = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &robust};
        vkGetPhysicalDeviceFeatures2(physical, &query);
        out->robustness2 = robust.robustBufferAccess2 && query.features.robustBufferAccess;
    }
    out->transfer_queue = has_transfer_only_family(physical);
}

void vk_features_describe(const vk_features *features, char *out, size_t out_size)
{
    snprintf(out, out_size, "fp16-storage:%s fp16-math:%s int8-storage:%s subgroup:%u%s coopmat:%s transfer-queue:%s",
             features->fp16_storage ? "yes" : "no", features->fp16_arithmetic ? "yes" : "no",
             features->int8_storage ? "yes" : "no", features->subgroup_size,
             features->subgroup_arithmetic ? "+arith" : "", features->cooperative_matrix ? "yes" : "no",
             features->transfer_queue ? "yes" : "no");
}

/* The logical device with one compute queue and the optional features
 * shaders may use switched on where present. */
static strata_status create_logical_device(vk_context *ctx, strata_error *err)
{
    int family = compute_queue_family(ctx->physical);
    ctx->queue_family = (uint32_t)family;
    float priority = 1.0f;
    VkDeviceQueueCreateInfo queue_info = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = ctx->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    VkPhysicalDeviceVulkan12Features features12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .shaderFloat16 = ctx->features.fp16_arithmetic,
        .storageBuffer8BitAccess = ctx->features.int8_storage,
    };
    VkPhysicalDeviceVulkan11Features features11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
        .pNext = &features12,
        .storageBuffer16BitAccess = ctx->features.fp16_storage,
    };
    VkPhysicalDeviceRobustness2FeaturesEXT robust = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ROBUSTNESS_2_FEATURES_EXT,
        .robustBufferAccess2 = VK_TRUE,
    };
    VkPhysicalDeviceFeatures core = {.robustBufferAccess = ctx->strict_bindings};
    const char *robust_extension = VK_EXT_ROBUSTNESS_2_EXTENSION_NAME;
    if (ctx->strict_bindings)
        features12.pNext = &robust;
    VkDeviceCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &features11,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &queue_info,
        .enabledExtensionCount = ctx->strict_bindings ? 1u : 0u,
        .ppEnabledExtensionNames = &robust_extension,
        .pEnabledFeatures = &core,
    };
    VkResult result = vkCreateDevice(ctx->physical, &info, NULL, &ctx->device);
    if (result != VK_SUCCESS)
        return vk_fail(err, result, "vkCreateDevice");
    vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);
    return STRATA_OK;
}

/* The binding limit (maxStorageBufferRange, lowered by
 * STRATA_VULKAN_MAX_BIND_KIB, which also asks for strict bindings) and the
 * driver's loop budget. Before the logical device is created. */
static strata_status set_limits(vk_context *ctx, strata_error *err)
{
    const char *knob = getenv("STRATA_VULKAN_MAX_BIND_KIB");
    uint64_t knob_bytes;
    if (!vk_bind_limit_parse(knob, &knob_bytes))
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "STRATA_VULKAN_MAX_BIND_KIB is \"%s\"; expected a whole number of KiB from %u to %u",
                           knob, VK_BIND_LIMIT_MIN_KIB, VK_BIND_LIMIT_MAX_KIB);
    ctx->bind_limit = vk_bind_limit(ctx->properties.limits.maxStorageBufferRange, knob_bytes);
    ctx->strict_bindings = knob_bytes != 0 && ctx->features.robustness2;
    VkPhysicalDeviceVulkan12Properties props12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &props12};
    vkGetPhysicalDeviceProperties2(ctx->physical, &props);
    ctx->loop_budget = props12.driverID == VK_DRIVER_ID_MESA_LLVMPIPE ? VK_LLVMPIPE_LOOP_ITERATIONS : 0;
    return STRATA_OK;
}

void vk_context_destroy(vk_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->device) {
        vkDeviceWaitIdle(ctx->device);
        vk_recording_destroy(ctx);
        vk_suballoc_destroy(ctx);
        vkDestroyDevice(ctx->device, NULL);
    }
    if (ctx->instance)
        vkDestroyInstance(ctx->instance, NULL);
    free(ctx);
}

strata_status vk_context_create(int device_index, vk_context **out, strata_error *err)
{
    *out = NULL;
    vk_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "vulkan: out of memory opening device %d", device_index);
    ctx->device_index = device_index;
    strata_status status = vk_instance_create(&ctx->instance, err);
    if (status != STRATA_OK)
        goto fail;
    VkPhysicalDevice devices[16];
    uint32_t count = usable_devices(ctx->instance, devices, 16);
    if (device_index < 0 || (uint32_t)device_index >= count || device_index >= 16) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "vulkan: device %d does not exist (%u found)", device_index,
                             count);
        goto fail;
    }
    ctx->physical = devices[device_index];
    vkGetPhysicalDeviceProperties(ctx->physical, &ctx->properties);
    vkGetPhysicalDeviceMemoryProperties(ctx->physical, &ctx->memory_properties);
    vk_query_features(ctx->physical, &ctx->features);
    if ((status = set_limits(ctx, err)))
        goto fail;
    if ((status = create_logical_device(ctx, err)) || (status = vk_recording_create(ctx, err)))
        goto fail;
    *out = ctx;
    return STRATA_OK;
fail:
    vk_context_destroy(ctx);
    return status;
}

/* Size of the largest device-local heap. */
uint64_t vk_device_local_bytes(const vk_context *ctx)
{
    uint64_t best = 0;
    for (uint32_t i = 0; i < ctx->memory_properties.memoryHeapCount; i++)
        if ((ctx->memory_properties.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            ctx->memory_properties.memoryHeaps[i].size > best)
            best = ctx->memory_properties.memoryHeaps[i].size;
    return best;
}

/* The workspace holds attention's running state of passes over a cache
 * larger than one binding and its split-KV partials (vulkan_ops_attention.c,
 * bounded by vk_attention_workspace_bound for any binding limit), or, in
 * another op, the expert table of OP_MATMUL_ID (at most
 * VK_MOE_TABLE_MAX_BYTES); one buffer serves both, grown as
 * vk_scratch_reserve grows it. */
static uint64_t vk_workspace_bytes(const backend_workspace_query *query)
{
    uint64_t worst = vk_attention_workspace_bound(query->n_heads, query->head_dim, query->max_tokens, query->n_ctx);
    if (query->max_expert_rows > 0 && worst < VK_MOE_TABLE_MAX_BYTES)
        worst = VK_MOE_TABLE_MAX_BYTES;
    return worst ? vk_scratch_grown_size(worst) + 4 : 0;
}

const backend_registration vulkan_backend_registration = {
    .name = "vulkan",
    .device_count = vk_device_count,
    .open = vk_open,
    .workspace_bytes = vk_workspace_bytes,
    .weight_dtype_supported = vk_weight_dtype_supported, /* the embedded shaders decide */
    .op_kind_supported = NULL, /* every kind, the mixture-of-experts ops included */
};
