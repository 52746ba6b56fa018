/* Copies between two CUDA devices of this backend (backend_ops.copy_peer).
 *
 * Order, as backend.h asks: the source device's recorded ops are launched
 * (cuda_flush) and an event is recorded behind everything issued on its op
 * stream; the destination's recorded ops are launched too, its op stream
 * waits for that event, and the copy is issued on the destination's op
 * stream. So the copy follows every op and transfer issued before it on both
 * devices (large uploads run on a copy stream, but every one of them ends
 * with the op stream waiting for it, so the source's op stream covers them),
 * and precedes whatever the destination issues after it (its later uploads
 * on the copy stream first wait for its op stream). The source device does
 * not wait for the copy: the caller keeps the source bytes until the
 * destination has synced or issued something after the copy.
 *
 * Peer access is enabled once per pair, when cudaDeviceCanAccessPeer allows
 * it, and the copy then goes directly over NVLink or PCIe. When it does not
 * (cards on different PCIe root complexes, many consumer cards), the copy is
 * still made with cudaMemcpyPeerAsync, which CUDA stages through host memory:
 * still ordered on the destination's stream without blocking the host, which
 * the runtime's own fallback through the host (a download, a sync and an
 * upload) is not. So this backend never answers STRATA_UNSUPPORTED for two
 * of its devices; the runtime's host path is for pairs of backends.
 *
 * Compiled, not run on a GPU: tests/test_cuda_peer.c checks it on several
 * emulated devices. */
#include "cuda_internal.h"

/* Enables direct access from ctx's device (current) to peer's memory once,
 * when the hardware allows it; remembers the answer. A refusal is no error:
 * the copy is staged through the host then. */
static void enable_peer_access(cuda_context *ctx, int peer)
{
    if (peer == ctx->device)
        return;
    signed char *state = peer >= 0 && peer < CUDA_PEER_SLOTS ? &ctx->peer_state[peer] : NULL;
    if (state && *state != 0)
        return;
    int can_access = 0;
    bool direct = cudaDeviceCanAccessPeer(&can_access, ctx->device, peer) == cudaSuccess && can_access;
    if (direct) {
        /* another context of the same device may have enabled it already */
        cudaError_t code = cudaDeviceEnablePeerAccess(peer, 0);
        direct = code == cudaSuccess || code == cudaErrorPeerAccessAlreadyEnabled;
    }
    (void)cudaGetLastError(); /* neither "already enabled" nor a refusal is an error here */
    if (state)
        *state = direct ? 1 : -1;
}

static strata_status check_range(const backend_buffer *buffer, size_t offset, size_t bytes, const char *which,
                                 strata_error *err)
{
    if (!buffer || offset > buffer->bytes || bytes > buffer->bytes - offset)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "cuda copy_peer: %zu bytes at offset %zu are outside the %s buffer (%zu bytes)", bytes,
                           offset, which, buffer ? buffer->bytes : 0);
    return STRATA_OK;
}

strata_status cuda_copy_peer(void *dst_opaque, backend_buffer *dst, size_t dst_offset, void *src_opaque,
                             backend_buffer *src, size_t src_offset, size_t bytes, strata_error *err)
{
    cuda_context *to = dst_opaque, *from = src_opaque;
    strata_status status = check_range(dst, dst_offset, bytes, "destination", err);
    if (status == STRATA_OK)
        status = check_range(src, src_offset, bytes, "source", err);
    if (status != STRATA_OK || bytes == 0)
        return status;
    if (from != to) {
        CUDA_CHECK(err, cudaSetDevice(from->device), "selecting the source device");
        if ((status = cuda_flush(from, err)) != STRATA_OK)
            return status;
        CUDA_CHECK(err, cudaEventRecord(from->peer_fence, from->stream), "fencing the source device");
    }
    CUDA_CHECK(err, cudaSetDevice(to->device), "selecting the device");
    if ((status = cuda_flush(to, err)) != STRATA_OK)
        return status;
    enable_peer_access(to, from->device);
    if (from != to)
        CUDA_CHECK(err, cudaStreamWaitEvent(to->stream, from->peer_fence, 0), "waiting for the source device");
    CUDA_CHECK(err,
               cudaMemcpyPeerAsync((char *)dst->data + dst_offset, to->device, (const char *)src->data + src_offset,
                                   from->device, bytes, to->stream),
               "copying from another device");
    return STRATA_OK;
}
