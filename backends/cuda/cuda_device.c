/* The CUDA device: enumeration, opening (streams, cuBLAS, staging), identity,
 * error messages, and the backend_ops table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"
#include "cuda_internal.h"

#ifndef STRATA_CUDA_ARCHITECTURES
#define STRATA_CUDA_ARCHITECTURES "unknown"
#endif

/* --- errors ------------------------------------------------------------------------------------- */

static strata_status status_of_cuda_error(cudaError_t code)
{
    switch (code) {
    case cudaErrorMemoryAllocation:
        return STRATA_OUT_OF_MEMORY;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorInvalidDevice:
    case cudaErrorNotSupported:
    case cudaErrorCallRequiresNewerDriver:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorSystemDriverMismatch:
        return STRATA_UNSUPPORTED;
    case cudaErrorInvalidValue:
        return STRATA_INVALID_INPUT;
    default:
        return STRATA_DEVICE_LOST;
    }
}

strata_status cuda_fail(strata_error *err, cudaError_t code, const char *what)
{
    (void)cudaGetLastError(); /* clears a non-sticky error; a sticky one keeps being reported */
    return strata_fail(err, status_of_cuda_error(code), "cuda: %s: %s (%s)", what, cudaGetErrorString(code),
                       cudaGetErrorName(code));
}

strata_status cublas_fail(strata_error *err, cublasStatus_t code, const char *what)
{
    strata_status status = code == CUBLAS_STATUS_ALLOC_FAILED     ? STRATA_OUT_OF_MEMORY
                           : code == CUBLAS_STATUS_NOT_SUPPORTED  ? STRATA_UNSUPPORTED
                           : code == CUBLAS_STATUS_INVALID_VALUE  ? STRATA_INVALID_INPUT
                           : code == CUBLAS_STATUS_ARCH_MISMATCH  ? STRATA_UNSUPPORTED
                                                                  : STRATA_DEVICE_LOST;
    (void)cudaGetLastError();
    return strata_fail(err, status, "cuda: cuBLAS %s: %s", what, cublasGetStatusString(code));
}

/* "12.4" from CUDA's 12040. */
static void version_text(int version, char *out, size_t size)
{
    snprintf(out, size, "%d.%d", version / 1000, (version % 1000) / 10);
}

/* Why cudaGetDeviceCount failed, in words a user can act on. */
static void explain_no_devices(cudaError_t code, strata_error *err)
{
    int driver = 0, runtime = 0;
    char driver_text[16], runtime_text[16];
    (void)cudaDriverGetVersion(&driver);
    (void)cudaRuntimeGetVersion(&runtime);
    version_text(driver, driver_text, sizeof driver_text);
    version_text(runtime, runtime_text, sizeof runtime_text);
    if (code == cudaErrorInsufficientDriver && driver == 0)
        strata_fail(err, STRATA_UNSUPPORTED, "no CUDA device: no NVIDIA driver is loaded (%s)", cudaGetErrorString(code));
    else if (code == cudaErrorInsufficientDriver)
        strata_fail(err, STRATA_UNSUPPORTED,
                    "the NVIDIA driver is too old: it supports CUDA %s, this strata was built with CUDA %s (%s)",
                    driver_text, runtime_text, cudaGetErrorString(code));
    else if (code == cudaErrorNoDevice)
        strata_fail(err, STRATA_UNSUPPORTED, "no CUDA device: %s", cudaGetErrorString(code));
    else
        strata_fail(err, STRATA_UNSUPPORTED, "cannot list CUDA devices: %s (%s)", cudaGetErrorString(code),
                    cudaGetErrorName(code));
    (void)cudaGetLastError();
}

/* --- identity ------------------------------------------------------------------------------------- */

static void cuda_get_info(void *opaque, device_info *out)
{
    cuda_context *ctx = opaque;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", ctx->name);
    out->kind = DEVICE_KIND_CUDA;
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaSetDevice(ctx->device) != cudaSuccess || cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        free_bytes = total_bytes = 0;
    }
    out->total_bytes = total_bytes;
    out->free_bytes = free_bytes;
    out->alignment = CUDA_ALIGNMENT;
    out->max_allocation_bytes = total_bytes;
    out->host_visible = false;
    out->multiprocessors = ctx->sm_count;
    out->software = false;
    out->has_uuid = true;
    memcpy(out->uuid, ctx->uuid, sizeof out->uuid);
    snprintf(out->features, sizeof out->features, "sm_%d%d sms:%d cublas:yes graphs:%s", ctx->cc_major,
             ctx->cc_minor, ctx->sm_count, ctx->graphs_enabled ? "on" : "off");
}

/* --- lifetime ------------------------------------------------------------------------------------------ */

static void cuda_destroy(void *opaque)
{
    cuda_context *ctx = opaque;
    if (!ctx)
        return;
    (void)cudaSetDevice(ctx->device);
    if (ctx->stream)
        (void)cudaStreamSynchronize(ctx->stream);
    if (ctx->copy_stream)
        (void)cudaStreamSynchronize(ctx->copy_stream);
    cuda_graphs_release(ctx);
    cuda_memory_release(ctx);
    if (ctx->cublas)
        (void)cublasDestroy(ctx->cublas);
    (void)cudaFree(ctx->cublas_workspace);
    if (ctx->stream)
        (void)cudaStreamDestroy(ctx->stream);
    if (ctx->copy_stream)
        (void)cudaStreamDestroy(ctx->copy_stream);
    (void)cudaGetLastError();
    free(ctx->recorded);
    free(ctx);
}

static const backend_ops cuda_ops = {
    .name = "cuda",
    .destroy = cuda_destroy,
    .get_info = cuda_get_info,
    .buffer_alloc = cuda_buffer_alloc,
    .buffer_wrap_host = NULL,
    .buffer_free = cuda_buffer_free,
    .buffer_host_ptr = cuda_buffer_host_ptr,
    .upload = cuda_upload,
    .download = cuda_download,
    .sync = cuda_sync,
    .supports = cuda_supports,
    .run_op = cuda_run_op,
    .begin_step = cuda_begin_step,
    .end_step = cuda_end_step,
    .measure_bandwidth = cuda_measure_bandwidth,
    .measure_gemm_peak = cuda_measure_gemm_peak,
    .copy_peer = cuda_copy_peer,
    .set_workspace_limit = cuda_set_workspace_limit,
    .workspace_peak_bytes = cuda_workspace_peak_bytes,
};

static int cuda_device_count(strata_error *err)
{
    int count = 0;
    cudaError_t code = cudaGetDeviceCount(&count);
    if (code != cudaSuccess) {
        explain_no_devices(code, err);
        return 0;
    }
    if (count <= 0)
        strata_fail(err, STRATA_UNSUPPORTED, "no CUDA device found");
    return count > 0 ? count : 0;
}

/* Whether this binary carries code the device can run: a device newer than
 * every architecture compiled in can still JIT the PTX of the newest one,
 * an older one cannot run anything. */
static strata_status check_kernel_image(const cuda_context *ctx, strata_error *err)
{
    cudaError_t code = kernel_probe();
    if (code == cudaSuccess)
        return STRATA_OK;
    if (code == cudaErrorNoKernelImageForDevice || code == cudaErrorUnsupportedPtxVersion) {
        (void)cudaGetLastError();
        return strata_fail(err, STRATA_UNSUPPORTED,
                           "cuda device %d (%s, sm_%d%d): this strata was built for CUDA architectures %s only; "
                           "rebuild with -DCMAKE_CUDA_ARCHITECTURES=%d%d (%s)",
                           ctx->device, ctx->name, ctx->cc_major, ctx->cc_minor, STRATA_CUDA_ARCHITECTURES,
                           ctx->cc_major, ctx->cc_minor, cudaGetErrorString(code));
    }
    return cuda_fail(err, code, "running a first kernel");
}

static strata_status cuda_open(int device_index, const backend_options *options, backend_device *out,
                               strata_error *err)
{
    (void)options;
    memset(out, 0, sizeof *out);
    strata_status status = STRATA_OK;
    cuda_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "cuda: out of memory opening device %d", device_index);
    ctx->device = device_index;
    CUDA_TRY(err, cudaSetDevice(device_index), "selecting the device");
    struct cudaDeviceProp prop;
    CUDA_TRY(err, cudaGetDeviceProperties(&prop, device_index), "reading the device properties");
    snprintf(ctx->name, sizeof ctx->name, "%.127s", prop.name);
    _Static_assert(sizeof prop.uuid.bytes == sizeof ctx->uuid, "a CUDA UUID is 16 bytes");
    memcpy(ctx->uuid, prop.uuid.bytes, sizeof ctx->uuid);
    ctx->sm_count = prop.multiProcessorCount;
    ctx->cc_major = prop.major;
    ctx->cc_minor = prop.minor;
    if (prop.major * 10 + prop.minor < 75) {
        status = strata_fail(err, STRATA_UNSUPPORTED,
                             "cuda device %d (%s) has compute capability %d.%d; strata needs 7.5 (Turing) or newer",
                             device_index, ctx->name, prop.major, prop.minor);
        goto fail;
    }
    if ((status = check_kernel_image(ctx, err)) != STRATA_OK)
        goto fail;
    CUDA_TRY(err, cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking), "creating the op stream");
    CUDA_TRY(err, cudaStreamCreateWithFlags(&ctx->copy_stream, cudaStreamNonBlocking), "creating the copy stream");
    CUBLAS_TRY(err, cublasCreate(&ctx->cublas), "creating a handle");
    CUBLAS_TRY(err, cublasSetStream(ctx->cublas, ctx->stream), "binding the op stream");
    /* a workspace of our own, so cuBLAS never allocates while a graph is captured */
    CUDA_TRY(err, cudaMalloc(&ctx->cublas_workspace, CUDA_CUBLAS_WORKSPACE_BYTES), "allocating the cuBLAS workspace");
    cuda_workspace_count(ctx, (int64_t)CUDA_CUBLAS_WORKSPACE_BYTES);
    CUBLAS_TRY(err, cublasSetWorkspace(ctx->cublas, ctx->cublas_workspace, CUDA_CUBLAS_WORKSPACE_BYTES),
               "setting the workspace");
    /* no TF32: F32 GEMMs stay F32, as the op contract says */
    CUBLAS_TRY(err, cublasSetMathMode(ctx->cublas, CUBLAS_DEFAULT_MATH), "setting the math mode");
    if ((status = cuda_memory_init(ctx, err)) != STRATA_OK)
        goto fail;
    const char *graphs = getenv("STRATA_CUDA_GRAPHS");
    ctx->graphs_enabled = !(graphs && strcmp(graphs, "0") == 0);
    const char *attention = getenv("STRATA_CUDA_ATTENTION");
    if (!cuda_attention_mode_parse(attention, &ctx->attention_mode)) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "STRATA_CUDA_ATTENTION is \"%s\"; expected rows, tiled or auto",
                             attention);
        goto fail;
    }
    const char *gemm_tile = getenv("STRATA_CUDA_GEMM_TILE_MIB");
    if (!cuda_gemm_tile_parse(gemm_tile, &ctx->gemm_tile_elements)) {
        status = strata_fail(err, STRATA_INVALID_INPUT,
                             "STRATA_CUDA_GEMM_TILE_MIB is \"%s\"; expected MiB of F16 per GEMM tile, above 0 and at "
                             "most %.0f",
                             gemm_tile, CUDA_GEMM_TILE_MIB_MAX);
        goto fail;
    }
    out->ops = &cuda_ops;
    out->ctx = ctx;
    out->index = device_index;
    return STRATA_OK;
fail:
    cuda_destroy(ctx);
    return status;
}

/* The registration's pure answer: the weight dtypes the kernels read
 * (cuda_choose.h, the same list supports() checks). */
static bool cuda_registration_weight_dtype_supported(strata_dtype dtype)
{
    return cuda_weight_dtype_supported(dtype);
}

const backend_registration cuda_backend_registration = {
    .name = "cuda",
    .device_count = cuda_device_count,
    .open = cuda_open,
    .workspace_bytes = cuda_workspace_bytes,
    .weight_dtype_supported = cuda_registration_weight_dtype_supported,
    .op_kind_supported = NULL, /* every kind, the mixture-of-experts ops included */
};
