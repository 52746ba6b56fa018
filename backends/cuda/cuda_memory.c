/* Device buffers, host <-> device transfers through pinned staging, sync, the
 * op arena and the kernels' error flags.
 *
 * Uploads copy the caller's bytes into one of CUDA_UPLOAD_CHUNKS pinned
 * chunks and DMA from there; a chunk is reused once the copy out of it has
 * finished (an event per chunk), so copying the next piece on the host
 * overlaps the DMA of the previous one. Downloads DMA into a pinned stage and
 * reach the caller's memory at sync(), which the interface allows (host
 * memory must stay valid until sync returns). */
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

/* Waits for every stream, then copies the pending downloads out of the
 * pinned stage into the callers' memory. */
static strata_status finish_downloads(cuda_context *ctx, strata_error *err)
{
    CUDA_CHECK(err, cudaStreamSynchronize(ctx->copy_stream), "waiting for the copy stream");
    CUDA_CHECK(err, cudaStreamSynchronize(ctx->stream), "waiting for the device");
    for (int i = 0; i < ctx->n_pending; i++)
        memcpy(ctx->pending[i].dst, (const char *)ctx->download_stage + ctx->pending[i].stage_offset,
               ctx->pending[i].bytes);
    ctx->n_pending = 0;
    ctx->download_used = 0;
    return STRATA_OK;
}

/* Makes the download stage hold bytes more (finishing earlier downloads, or
 * growing it, when it is full). */
static strata_status reserve_download_stage(cuda_context *ctx, size_t bytes, strata_error *err)
{
    strata_status status;
    if (ctx->download_used + cuda_align(bytes) <= ctx->download_capacity && ctx->n_pending < ctx->pending_capacity)
        return STRATA_OK;
    if ((status = finish_downloads(ctx, err)) != STRATA_OK)
        return status;
    if (ctx->n_pending >= ctx->pending_capacity) {
        int capacity = ctx->pending_capacity ? 2 * ctx->pending_capacity : 16;
        cuda_pending_download *grown = realloc(ctx->pending, (size_t)capacity * sizeof *grown);
        if (!grown)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "cuda: out of host memory for pending downloads");
        ctx->pending = grown;
        ctx->pending_capacity = capacity;
    }
    if (cuda_align(bytes) > ctx->download_capacity) {
        size_t capacity = ctx->download_capacity ? ctx->download_capacity : ((size_t)1 << 20);
        while (capacity < cuda_align(bytes))
            capacity *= 2;
        if (ctx->download_stage)
            CUDA_CHECK(err, cudaFreeHost(ctx->download_stage), "freeing the download stage");
        ctx->download_stage = NULL;
        ctx->download_capacity = 0;
        CUDA_CHECK(err, cudaHostAlloc(&ctx->download_stage, capacity, cudaHostAllocDefault),
                   "allocating pinned host memory for downloads");
        ctx->download_capacity = capacity;
    }
    return STRATA_OK;
}

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
    for (size_t done = 0; done < bytes;) {
        /* pieces of at most the largest stage; each waits in the stage until sync */
        size_t piece = bytes - done < CUDA_DOWNLOAD_STAGE_MAX ? bytes - done : CUDA_DOWNLOAD_STAGE_MAX;
        if ((status = reserve_download_stage(ctx, piece, err)) != STRATA_OK)
            return status;
        const bool large = piece >= CUDA_COPY_STREAM_BYTES;
        if (large && (status = fence_copy_after_ops(ctx, err)) != STRATA_OK)
            return status;
        CUDA_CHECK(err,
                   cudaMemcpyAsync((char *)ctx->download_stage + ctx->download_used,
                                   (const char *)src->data + offset + done, piece, cudaMemcpyDeviceToHost,
                                   large ? ctx->copy_stream : ctx->stream),
                   "copying from the device");
        if (large && (status = fence_ops_after_copy(ctx, err)) != STRATA_OK)
            return status;
        ctx->pending[ctx->n_pending++] =
            (cuda_pending_download){.dst = (char *)dst + done, .stage_offset = ctx->download_used, .bytes = piece};
        ctx->download_used += cuda_align(piece);
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
    if ((status = finish_downloads(ctx, err)) != STRATA_OK)
        return status;
    unsigned int flags = *ctx->error_flags_host;
    if (flags & KERNEL_ERROR_KV_POSITION)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "cuda kv_store: a position was outside the cache; those rows were not stored");
    if (flags & KERNEL_ERROR_ROW_ID)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "cuda get_rows: a row id was outside the table; those rows were not written");
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

/* --- arena ----------------------------------------------------------------------------------------------- */

strata_status cuda_arena_reserve(cuda_context *ctx, size_t bytes, strata_error *err)
{
    if (bytes <= ctx->arena_bytes)
        return STRATA_OK;
    /* recorded ops reach the arena through ctx at launch; launched ones and
     * captured graphs hold the old address: finish them, then drop the graphs */
    CUDA_CHECK(err, cudaStreamSynchronize(ctx->stream), "waiting for the device");
    cuda_graphs_release(ctx);
    size_t grown = ctx->arena_bytes * 2 > bytes ? ctx->arena_bytes * 2 : bytes;
    grown = (grown + ((size_t)1 << 20) - 1) / ((size_t)1 << 20) * ((size_t)1 << 20);
    CUDA_CHECK(err, cudaFree(ctx->arena), "freeing the op arena");
    ctx->arena = NULL;
    ctx->arena_bytes = 0;
    cudaError_t code = cudaMalloc(&ctx->arena, grown);
    if (code == cudaErrorMemoryAllocation && grown > bytes) { /* the doubling was too much: the exact size */
        (void)cudaGetLastError();
        grown = cuda_align(bytes);
        code = cudaMalloc(&ctx->arena, grown);
    }
    if (code != cudaSuccess) {
        ctx->arena = NULL;
        strata_status status = cuda_fail(err, code, "allocating the op arena");
        if (err)
            strata_error_prefix(err, "cuda device %d: %.1f MiB of op scratch", ctx->device,
                                (double)bytes / 1048576.0);
        return status;
    }
    ctx->arena_bytes = grown;
    return STRATA_OK;
}

/* --- setup ------------------------------------------------------------------------------------------------ */

strata_status cuda_memory_init(cuda_context *ctx, strata_error *err)
{
    CUDA_CHECK(err, cudaEventCreateWithFlags(&ctx->stream_fence, cudaEventDisableTiming), "creating an event");
    CUDA_CHECK(err, cudaEventCreateWithFlags(&ctx->copy_fence, cudaEventDisableTiming), "creating an event");
    for (int i = 0; i < CUDA_UPLOAD_CHUNKS; i++) {
        CUDA_CHECK(err, cudaHostAlloc(&ctx->upload_stage[i], CUDA_UPLOAD_CHUNK_BYTES, cudaHostAllocDefault),
                   "allocating pinned host memory for uploads");
        CUDA_CHECK(err, cudaEventCreateWithFlags(&ctx->upload_done[i], cudaEventDisableTiming), "creating an event");
    }
    CUDA_CHECK(err, cudaMalloc((void **)&ctx->error_flags, sizeof *ctx->error_flags), "allocating the error flags");
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
    (void)cudaGetLastError();
    free(ctx->pending);
    ctx->pending = NULL;
}
