/* The ceilings `strata bench` compares against, measured on this device in
 * the same run: memory bandwidth by a large device-to-device copy, and the
 * GEMM rate of the prefill path by a large f16 x f16 -> f32 cuBLAS GEMM.
 * Both allocate their own buffers (outside any token loop) and block. */
#include "cuda_internal.h"

#define BANDWIDTH_MAX_BYTES ((size_t)1 << 30)
#define BANDWIDTH_MIN_BYTES ((size_t)64 << 20)
#define BANDWIDTH_REPETITIONS 10
#define GEMM_REPETITIONS 10

/* Milliseconds between two events once stop has completed. */
static strata_status elapsed_ms(cudaEvent_t start, cudaEvent_t stop, float *ms, strata_error *err)
{
    CUDA_CHECK(err, cudaEventSynchronize(stop), "waiting for a measurement");
    CUDA_CHECK(err, cudaEventElapsedTime(ms, start, stop), "reading a timer");
    return STRATA_OK;
}

/* Finishes every op issued so far, so a measurement times only itself. */
static strata_status quiesce(cuda_context *ctx, strata_error *err)
{
    CUDA_CHECK(err, cudaSetDevice(ctx->device), "selecting the device");
    strata_status status = cuda_flush(ctx, err);
    if (status != STRATA_OK)
        return status;
    CUDA_CHECK(err, cudaStreamSynchronize(ctx->stream), "waiting for the device");
    return STRATA_OK;
}

strata_status cuda_measure_bandwidth(void *opaque, double *bytes_per_second, strata_error *err)
{
    cuda_context *ctx = opaque;
    void *from = NULL, *to = NULL;
    cudaEvent_t start = NULL, stop = NULL;
    strata_status status = quiesce(ctx, err);
    *bytes_per_second = 0.0;
    if (status != STRATA_OK)
        return status;
    size_t free_bytes = 0, total_bytes = 0;
    CUDA_TRY(err, cudaMemGetInfo(&free_bytes, &total_bytes), "reading free memory");
    size_t bytes = free_bytes / 4 < BANDWIDTH_MAX_BYTES ? free_bytes / 4 : BANDWIDTH_MAX_BYTES;
    bytes = bytes / ((size_t)1 << 20) * ((size_t)1 << 20);
    if (bytes < BANDWIDTH_MIN_BYTES) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "cuda: %.0f MiB free is too little to measure bandwidth",
                             (double)free_bytes / 1048576.0);
        goto fail;
    }
    CUDA_TRY(err, cudaMalloc(&from, bytes), "allocating the bandwidth buffers");
    CUDA_TRY(err, cudaMalloc(&to, bytes), "allocating the bandwidth buffers");
    CUDA_TRY(err, cudaMemsetAsync(from, 1, bytes, ctx->stream), "filling the bandwidth buffer");
    CUDA_TRY(err, cudaEventCreate(&start), "creating a timer");
    CUDA_TRY(err, cudaEventCreate(&stop), "creating a timer");
    CUDA_TRY(err, cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, ctx->stream), "warming up");
    CUDA_TRY(err, cudaEventRecord(start, ctx->stream), "starting a timer");
    for (int i = 0; i < BANDWIDTH_REPETITIONS; i++)
        CUDA_TRY(err, cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, ctx->stream), "copying");
    CUDA_TRY(err, cudaEventRecord(stop, ctx->stream), "stopping a timer");
    float ms = 0.0f;
    if ((status = elapsed_ms(start, stop, &ms, err)) != STRATA_OK)
        goto fail;
    if (ms > 0.0f) /* each copy reads and writes bytes */
        *bytes_per_second = 2.0 * (double)bytes * BANDWIDTH_REPETITIONS / ((double)ms / 1000.0);
fail:
    if (start)
        (void)cudaEventDestroy(start);
    if (stop)
        (void)cudaEventDestroy(stop);
    (void)cudaFree(from);
    (void)cudaFree(to);
    return status;
}

strata_status cuda_measure_gemm_peak(void *opaque, double *flops, strata_error *err)
{
    cuda_context *ctx = opaque;
    void *a = NULL, *b = NULL, *c = NULL;
    cudaEvent_t start = NULL, stop = NULL;
    strata_status status = quiesce(ctx, err);
    *flops = 0.0;
    if (status != STRATA_OK)
        return status;
    /* 8192^3 keeps every SM busy for milliseconds per GEMM; 4096 when memory is short */
    int n = 8192;
    size_t elements = (size_t)n * (size_t)n;
    if (cudaMalloc(&a, elements * 2) != cudaSuccess || cudaMalloc(&b, elements * 2) != cudaSuccess ||
        cudaMalloc(&c, elements * 4) != cudaSuccess) {
        (void)cudaGetLastError();
        (void)cudaFree(a);
        (void)cudaFree(b);
        (void)cudaFree(c);
        a = b = c = NULL;
        n = 4096;
        elements = (size_t)n * (size_t)n;
        CUDA_TRY(err, cudaMalloc(&a, elements * 2), "allocating the GEMM matrices");
        CUDA_TRY(err, cudaMalloc(&b, elements * 2), "allocating the GEMM matrices");
        CUDA_TRY(err, cudaMalloc(&c, elements * 4), "allocating the GEMM matrices");
    }
    /* bytes of 0x3c: every f16 is 1.06, so no zero shortcuts and no overflow */
    CUDA_TRY(err, cudaMemsetAsync(a, 0x3c, elements * 2, ctx->stream), "filling the GEMM matrices");
    CUDA_TRY(err, cudaMemsetAsync(b, 0x3c, elements * 2, ctx->stream), "filling the GEMM matrices");
    CUDA_TRY(err, cudaEventCreate(&start), "creating a timer");
    CUDA_TRY(err, cudaEventCreate(&stop), "creating a timer");
    const float alpha = 1.0f, beta = 0.0f;
    for (int i = 0; i <= GEMM_REPETITIONS; i++) { /* the first one warms up */
        if (i == 1)
            CUDA_TRY(err, cudaEventRecord(start, ctx->stream), "starting a timer");
        CUBLAS_TRY(err,
                   cublasGemmEx(ctx->cublas, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, a, CUDA_R_16F, n, b,
                                CUDA_R_16F, n, &beta, c, CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   "GemmEx");
    }
    CUDA_TRY(err, cudaEventRecord(stop, ctx->stream), "stopping a timer");
    float ms = 0.0f;
    if ((status = elapsed_ms(start, stop, &ms, err)) != STRATA_OK)
        goto fail;
    if (ms > 0.0f)
        *flops = 2.0 * (double)n * n * n * GEMM_REPETITIONS / ((double)ms / 1000.0);
fail:
    if (start)
        (void)cudaEventDestroy(start);
    if (stop)
        (void)cudaEventDestroy(stop);
    (void)cudaFree(a);
    (void)cudaFree(b);
    (void)cudaFree(c);
    return status;
}
