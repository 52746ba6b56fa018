/* Device buffers, host <-> device transfers through pinned staging, sync and
 * the kernels' error flags (the op arena is in cuda_workspace.c).
 *
 * Uploads copy the caller's bytes into one of CUDA_UPLOAD_CHUNKS pinned
 * chunks and DMA from there; a chunk is reused once the copy out of it has
 * finished (an event per chunk), so copying the next piece on the host
 * overlaps the DMA of the previous one. Downloads DMA into a pinned stage,
 * wait, and copy out. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

/* --- buffers -------------------------------------------------------------------------------------- */

strata_status cuda_buffer_alloc(void *opaque, size_t bytes, backend_buffer **out, strata_error *err)
{
    cuda_context *ctx = opaque;
    strata_status status = STRATA_OK;
    *out = NULL;
    backend_buffer *buffer = calloc(1, sizeof *buffer);
    if (!buffer)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "cuda: out of host memory for a buffer descriptor");
    size_t rounded = cuda_align(bytes ? bytes : 1);
    CUDA_TRY(err, cudaSetDevice(ctx->device), "selecting the device");
    CUDA_TRY(err, cudaMalloc(&buffer->data, rounded), "allocating a device buffer");
    /* zeroed, so a cache row never written holds zeros rather than stale bits */
    CUDA_TRY(err, cudaMemsetAsync(buffer->data, 0, rounded, ctx->stream), "clearing a new buffer");
    buffer->bytes = bytes;
    *out = buffer;
    return STRATA_OK;
fail:
    if (status == STRATA_OUT_OF_MEMORY && err)
        strata_error_prefix(err, "cuda device %d: a buffer of %.2f MiB does not fit", ctx->device,
                            (double)bytes / 1048576.0);
    if (buffer->data)
        (void)cudaFree(buffer->data);
    free(buffer);
    return status;
}

void cuda_buffer_free(void *opaque, backend_buffer *buffer)
{
    cuda_context *ctx = opaque;
    if (!buffer)
        return;
    (void)cudaSetDevice(ctx->device);
    /* ops issued on the buffer may still be running; cudaFree waits for the
     * device, but recorded (not yet launched) ops must go first */
    strata_error ignored = {0};
    (void)cuda_flush(ctx, &ignored);
    (void)cudaStreamSynchronize(ctx->stream);
    (void)cudaFree(buffer->data);
    (void)cudaGetLastError();
    free(buffer);
}

void *cuda_buffer_host_ptr(void *opaque, backend_buffer *buffer)
{
    (void)opaque;
    (void)buffer;
    return NULL; /* device memory is not host-visible */
}

static strata_status check_range(const backend_buffer *buffer, size_t offset, size_t bytes, const char *what,
                                 strata_error *err)
{
    if (!buffer || offset > buffer->bytes || bytes > buffer->bytes - offset)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "cuda: %s of %zu bytes at offset %zu is outside the buffer (%zu bytes)", what, bytes, offset,
                           buffer ? buffer->bytes : 0);
    return STRATA_OK;
}

/* --- transfers ------------------------------------------------------------------------------------------ */

/* Makes the copy stream wait for everything issued on the op stream. */
static strata_status fence_copy_after_ops(cuda_context *ctx, strata_error *err)
{
    CUDA_CHECK(err, cudaEventRecord(ctx->stream_fence, ctx->stream), "fencing the op stream");
    CUDA_CHECK(err, cudaStreamWaitEvent(ctx->copy_stream, ctx->stream_fence, 0), "ordering a transfer");
    return STRATA_OK;
}

/* Makes the op stream wait for everything issued on the copy stream. */
static strata_status fence_ops_after_copy(cuda_context *ctx, strata_error *err)
{
    CUDA_CHECK(err, cudaEventRecord(ctx->copy_fence, ctx->copy_stream), "fencing the copy stream");
    CUDA_CHECK(err, cudaStreamWaitEvent(ctx->stream, ctx->copy_fence, 0), "ordering a transfer");
    return STRATA_OK;
}

strata_status cuda_upload(void *opaque, backend_buffer *dst, size_t offset, const void *src, size_t bytes,
                          strata_error *err)
{
    cuda_context *ctx = opaque;
    strata_status status = check_range(dst, offset, bytes, "upload", err);
    if (status != STRATA_OK || bytes == 0)
        return status;
    CUDA_CHECK(err, cudaSetDevice(ctx->device), "selecting the device");
    if ((status = cuda_flush(ctx, err)) != STRATA_OK)
        return status;
    const bool large = bytes >= CUDA_COPY_STREAM_BYTES;
    cudaStream_t stream = large ? ctx->copy_stream : ctx->stream;
    if (large && (status = fence_copy_after_ops(ctx, err)) != STRATA_OK)
        return status;
    for (size_t done = 0; done < bytes;) {
        size_t piece = bytes - done < CUDA_UPLOAD_CHUNK_BYTES ? bytes - done : CUDA_UPLOAD_CHUNK_BYTES;
        int chunk = ctx->upload_next;
        ctx->upload_next = (ctx->upload_next + 1) % CUDA_UPLOAD_CHUNKS;
        CUDA_CHECK(err, cudaEventSynchronize(ctx->upload_done[chunk]), "waiting for a staging buffer");
        memcpy(ctx->upload_stage[chunk], (const char *)src + done, piece);
        CUDA_CHECK(err,
                   cudaMemcpyAsync((char *)dst->data + offset + done, ctx->upload_stage[chunk], piece,
                                   cudaMemcpyHostToDevice, stream),
                   "copying to the device");
        CUDA_CHECK(err, cudaEventRecord(ctx->upload_done[chunk], stream), "recording a staging event");
        done += piece;
    }
    return large ? fence_ops_after_copy(ctx, err) : STRATA_OK;
}

/* Makes the pinned download stage hold at least bytes. */
static strata_status reserve_download_stage(cuda_context *ctx, size_t bytes, strata_error *err)
{
    if (bytes <= ctx->download_capacity)
        return STRATA_OK;
    size_t capacity = ctx->download_capacity ? ctx->download_capacity : ((size_t)1 << 20);
    while (capacity < bytes)
        capacity *= 2;
    if (ctx->download_stage)
        CUDA_CHECK(err, cudaFreeHost(ctx->download_stage), "freeing the download stage");
    ctx->download_stage = NULL;
    ctx->download_capacity = 0;
    CUDA_CHECK(err, cudaHostAlloc(&ctx->download_stage, capacity, cudaHostAllocDefault),
               "allocating pinned host memory for downloads");
    ctx->download_capacity = capacity;
    return STRATA_OK;
}

/* Blocks until the bytes are in dst: stricter than the interface asks (the
 * bytes must be there once sync returns), and what callers that read right
 * after a download expect. The runtime syncs after each download anyway, so
 * waiting here costs nothing. */
strata_status cuda_download(void *opaque, backend_buffer *src, size_t offset, void *dst, size_t bytes,
                            strata_error *err)
{
    cuda_context *ctx = opaque;
    strata_status status = check_range(src, offset, bytes, "download", err);
    if (status != STRATA_OK || bytes == 0)
        return status;
    CUDA_CHECK(err, cudaSetDevice(ctx->device), "selecting the device");
    if ((status = cuda_flush(ctx, err)) != STRATA_OK)
        return status;
    size_t stage = bytes < CUDA_DOWNLOAD_STAGE_MAX ? bytes : CUDA_DOWNLOAD_STAGE_MAX;
    if ((status = reserve_download_stage(ctx, stage, err)) != STRATA_OK)
        return status;
    for (size_t done = 0; done < bytes;) {
        size_t piece = bytes - done < stage ? bytes - done : stage;
        CUDA_CHECK(err,
                   cudaMemcpyAsync(ctx->download_stage, (const char *)src->data + offset + done, piece,
                                   cudaMemcpyDeviceToHost, ctx->stream),
                   "copying from the device");
        CUDA_CHECK(err, cudaStreamSynchronize(ctx->stream), "waiting for a download");
        memcpy((char *)dst + done, ctx->download_stage, piece);
        done += piece;
    }
    return STRATA_OK;
}

strata_status cuda_sync(void *opaque, strata_error *err)
{
    cuda_context *ctx = opaque;
    strata_status status;
    CUDA_CHECK(err, cudaSetDevice(ctx->device), "selecting the device");
    if ((status = cuda_flush(ctx, err)) != STRATA_OK)
        return status;
    /* the kernels' index errors since the last sync come back with it */
    CUDA_CHECK(err,
               cudaMemcpyAsync(ctx->error_flags_host, ctx->error_flags, sizeof *ctx->error_flags,
                               cudaMemcpyDeviceToHost, ctx->stream),
               "reading the error flags");
    CUDA_CHECK(err, cudaMemsetAsync(ctx->error_flags, 0, sizeof *ctx->error_flags, ctx->stream),
               "clearing the error flags");
    /* the op stream waits for the copy stream after every transfer, so
     * waiting for both covers everything issued */
    CUDA_CHECK(err, cudaStreamSynchronize(ctx->copy_stream), "waiting for the copy stream");
    CUDA_CHECK(err, cudaStreamSynchronize(ctx->stream), "waiting for the device");
    unsigned int flags = *ctx->error_flags_host;
    if (flags & KERNEL_ERROR_KV_POSITION)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "cuda kv_store: a position was outside the cache; those rows were not stored");
    if (flags & KERNEL_ERROR_ROW_ID)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "cuda get_rows: a row id was outside the table; those rows were not written");
    if (flags & KERNEL_ERROR_EXPERT_ID)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "cuda moe_weights/matmul_id: an expert id was outside the experts; its slot got weight 0 "
                           "and its matmul column was not written");
    return STRATA_OK;
}

strata_status cuda_read_indices(cuda_context *ctx, const int32_t *src, int64_t n, strata_error *err)
{
    if (n <= 0)
        return STRATA_OK;
    if (n > CUDA_INDEX_CHECK_MAX)
        return strata_fail(err, STRATA_INVALID_INPUT, "cuda: %lld indices are more than the %d checked at once",
                           (long long)n, CUDA_INDEX_CHECK_MAX);
    CUDA_CHECK(err,
               cudaMemcpyAsync(ctx->index_check, src, (size_t)n * sizeof(int32_t), cudaMemcpyDeviceToHost,
                               ctx->stream),
               "reading indices back");
    CUDA_CHECK(err, cudaStreamSynchronize(ctx->stream), "waiting for the indices");
    return STRATA_OK;
}

/* --- setup ------------------------------------------------------------------------------------------------ */

strata_status cuda_memory_init(cuda_context *ctx, strata_error *err)
{
    CUDA_CHECK(err, cudaEventCreateWithFlags(&ctx->stream_fence, cudaEventDisableTiming), "creating an event");
    CUDA_CHECK(err, cudaEventCreateWithFlags(&ctx->copy_fence, cudaEventDisableTiming), "creating an event");
    CUDA_CHECK(err, cudaEventCreateWithFlags(&ctx->peer_fence, cudaEventDisableTiming), "creating an event");
    for (int i = 0; i < CUDA_UPLOAD_CHUNKS; i++) {
        CUDA_CHECK(err, cudaHostAlloc(&ctx->upload_stage[i], CUDA_UPLOAD_CHUNK_BYTES, cudaHostAllocDefault),
                   "allocating pinned host memory for uploads");
        CUDA_CHECK(err, cudaEventCreateWithFlags(&ctx->upload_done[i], cudaEventDisableTiming), "creating an event");
    }
    CUDA_CHECK(err, cudaMalloc((void **)&ctx->error_flags, sizeof *ctx->error_flags), "allocating the error flags");
    cuda_workspace_count(ctx, (int64_t)CUDA_ERROR_FLAGS_BYTES);
    CUDA_CHECK(err, cudaMemset(ctx->error_flags, 0, sizeof *ctx->error_flags), "clearing the error flags");
    CUDA_CHECK(err, cudaHostAlloc((void **)&ctx->error_flags_host, sizeof *ctx->error_flags_host, cudaHostAllocDefault),
               "allocating pinned host memory");
    CUDA_CHECK(err,
               cudaHostAlloc((void **)&ctx->index_check, CUDA_INDEX_CHECK_MAX * sizeof(int32_t), cudaHostAllocDefault),
               "allocating pinned host memory");
    return STRATA_OK;
}

void cuda_memory_release(cuda_context *ctx)
{
    for (int i = 0; i < CUDA_UPLOAD_CHUNKS; i++) {
        if (ctx->upload_stage[i])
            (void)cudaFreeHost(ctx->upload_stage[i]);
        if (ctx->upload_done[i])
            (void)cudaEventDestroy(ctx->upload_done[i]);
    }
    if (ctx->download_stage)
        (void)cudaFreeHost(ctx->download_stage);
    if (ctx->error_flags_host)
        (void)cudaFreeHost(ctx->error_flags_host);
    if (ctx->index_check)
        (void)cudaFreeHost(ctx->index_check);
    (void)cudaFree(ctx->error_flags);
    (void)cudaFree(ctx->arena);
    if (ctx->stream_fence)
        (void)cudaEventDestroy(ctx->stream_fence);
    if (ctx->copy_fence)
        (void)cudaEventDestroy(ctx->copy_fence);
    if (ctx->peer_fence)
        (void)cudaEventDestroy(ctx->peer_fence);
    (void)cudaGetLastError();
}
