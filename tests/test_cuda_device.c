/* The CUDA device outside the ops: transfers through the pinned staging and
 * the copy stream, range checks, steps replayed as graphs reading new inputs,
 * index errors (positions, expert ids) reported at sync, out of memory as a status (and the device
 * still usable after), and the bandwidth and GEMM-peak measurements, which it
 * prints (scripts/gpu-check.sh keeps them beside the bench results).
 * Skipped (exit 77, saying why) without the CUDA backend or a device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "test_check.h"

static backend_device dev;

static backend_buffer *alloc_buffer(size_t bytes)
{
    backend_buffer *buffer = NULL;
    strata_error err = {0};
    CHECK(dev.ops->buffer_alloc(dev.ctx, bytes, &buffer, &err) == STRATA_OK, "alloc %zu: %s", bytes, err.message);
    return buffer;
}

/* Uploads of sizes around the staging chunk and copy-stream thresholds, a
 * small overwrite in the middle, then downloads: every byte where it should be. */
static void check_transfers(void)
{
    const size_t bytes = ((size_t)70 << 20) + 3; /* more than the largest download stage */
    unsigned char *pattern = malloc(bytes), *back = malloc(bytes);
    backend_buffer *buffer = alloc_buffer(bytes);
    strata_error err = {0};
    if (!pattern || !back || !buffer) {
        CHECK(0, "setup");
        goto done;
    }
    for (size_t i = 0; i < bytes; i++)
        pattern[i] = (unsigned char)(i * 2654435761u >> 13);
    CHECK(dev.ops->upload(dev.ctx, buffer, 0, pattern, bytes, &err) == STRATA_OK, "large upload: %s", err.message);
    unsigned char small[100];
    memset(small, 0xab, sizeof small);
    memset(pattern + 5000, 0xab, sizeof small);
    CHECK(dev.ops->upload(dev.ctx, buffer, 5000, small, sizeof small, &err) == STRATA_OK, "small upload: %s",
          err.message);
    CHECK(dev.ops->download(dev.ctx, buffer, 0, back, bytes, &err) == STRATA_OK, "download: %s", err.message);
    CHECK(dev.ops->sync(dev.ctx, &err) == STRATA_OK, "sync: %s", err.message);
    CHECK(memcmp(pattern, back, bytes) == 0, "downloaded bytes differ from the uploaded ones");
    CHECK(dev.ops->download(dev.ctx, buffer, bytes - 10, back, 10, &err) == STRATA_OK && memcmp(back, pattern + bytes - 10, 10) == 0,
          "download of the tail");
    err.message[0] = '\0';
    CHECK(dev.ops->upload(dev.ctx, buffer, bytes - 1, small, 2, &err) == STRATA_INVALID_INPUT && err.message[0],
          "an upload past the end was not refused");
    CHECK(dev.ops->download(dev.ctx, buffer, bytes + 1, back, 0, &err) == STRATA_INVALID_INPUT,
          "a download past the end was not refused");
done:
    if (buffer)
        dev.ops->buffer_free(dev.ctx, buffer);
    free(pattern);
    free(back);
}

/* Steps of one op (x *= 2, in place) on new input each time: the first runs
 * directly, the second is captured, the rest replay the graph; each must see
 * the input uploaded just before it. */
static void check_steps(void)
{
    enum { N = 1000 };
    float x[N], y[N];
    backend_buffer *buffer = alloc_buffer(N * sizeof(float));
    strata_tensor t;
    tensor_init_contiguous(&t, DTYPE_F32, N, 1, 1, 1);
    t.buffer = buffer;
    strata_error err = {0};
    for (int step = 0; buffer && step < 5; step++) {
        for (int i = 0; i < N; i++)
            x[i] = (float)(i + 1000 * step);
        backend_op scale = {.kind = OP_SCALE, .dst = &t, .src = {&t}};
        scale.params.scale.value = 2.0f;
        bool ok = dev.ops->upload(dev.ctx, buffer, 0, x, sizeof x, &err) == STRATA_OK &&
                  dev.ops->begin_step(dev.ctx, &err) == STRATA_OK && dev.ops->run_op(dev.ctx, &scale, &err) == STRATA_OK &&
                  dev.ops->run_op(dev.ctx, &scale, &err) == STRATA_OK &&
                  dev.ops->download(dev.ctx, buffer, 0, y, sizeof y, &err) == STRATA_OK &&
                  dev.ops->sync(dev.ctx, &err) == STRATA_OK && dev.ops->end_step(dev.ctx, &err) == STRATA_OK;
        CHECK(ok, "step %d: %s", step, err.message);
        int wrong = 0;
        for (int i = 0; i < N; i++)
            wrong += y[i] != 4.0f * x[i];
        CHECK(wrong == 0, "step %d: %d of %d values are not 4x the new input", step, wrong, N);
    }
    if (buffer)
        dev.ops->buffer_free(dev.ctx, buffer);
}

/* Inside a step, a kv_store position past the cache is skipped by the kernel
 * and reported by sync; the sync after that is clean again. */
static void check_step_index_error(void)
{
    backend_buffer *cache_buffer = alloc_buffer(8 * 4 * sizeof(float)), *rows_buffer = alloc_buffer(8 * sizeof(float));
    backend_buffer *pos_buffer = alloc_buffer(sizeof(int32_t));
    strata_tensor cache, rows, pos;
    tensor_init_contiguous(&cache, DTYPE_F32, 8, 4, 1, 1);
    tensor_init_contiguous(&rows, DTYPE_F32, 8, 1, 1, 1);
    tensor_init_contiguous(&pos, DTYPE_I32, 1, 1, 1, 1);
    cache.buffer = cache_buffer;
    rows.buffer = rows_buffer;
    pos.buffer = pos_buffer;
    int32_t bad = 4;
    strata_error err = {0};
    if (!cache_buffer || !rows_buffer || !pos_buffer)
        goto done;
    backend_op store = {.kind = OP_KV_STORE, .dst = &cache, .src = {&rows, &pos}};
    CHECK(dev.ops->upload(dev.ctx, pos_buffer, 0, &bad, sizeof bad, &err) == STRATA_OK, "upload: %s", err.message);
    CHECK(dev.ops->begin_step(dev.ctx, &err) == STRATA_OK && dev.ops->run_op(dev.ctx, &store, &err) == STRATA_OK,
          "recording: %s", err.message);
    err.message[0] = '\0';
    CHECK(dev.ops->sync(dev.ctx, &err) == STRATA_INVALID_INPUT && strstr(err.message, "kv_store"),
          "a bad position inside a step was not reported at sync (%s)", err.message);
    CHECK(dev.ops->end_step(dev.ctx, &err) == STRATA_OK, "end_step: %s", err.message);
    CHECK(dev.ops->sync(dev.ctx, &err) == STRATA_OK, "the next sync still fails: %s", err.message);
done:
    dev.ops->buffer_free(dev.ctx, cache_buffer);
    dev.ops->buffer_free(dev.ctx, rows_buffer);
    dev.ops->buffer_free(dev.ctx, pos_buffer);
}

/* Inside a step, an expert id past the experts: matmul_id computes the
 * good slot, leaves the bad slot's column as it was (no read outside the
 * experts), moe_weights gives the bad slot weight 0, and sync reports it.
 * Experts [32, 4, 2] of F32: expert e is all e + 1, the input all ones, so
 * a good column is 32 (e + 1) everywhere. */
static void check_step_expert_id_error(void)
{
    enum { N_IN = 32, N_OUT = 4, N_EXPERT = 2, K = 2 };
    float experts_host[N_IN * N_OUT * N_EXPERT], ones[N_IN], sentinel[N_OUT * K], probs_host[N_EXPERT] = {0.25f, 0.75f};
    for (int i = 0; i < N_IN * N_OUT * N_EXPERT; i++)
        experts_host[i] = (float)(i / (N_IN * N_OUT) + 1);
    for (int i = 0; i < N_IN; i++)
        ones[i] = 1.0f;
    for (int i = 0; i < N_OUT * K; i++)
        sentinel[i] = -5.0f;
    const int32_t ids_host[K] = {1, 7};
    backend_buffer *buffers[6] = {
        alloc_buffer(sizeof experts_host), alloc_buffer(sizeof ones), alloc_buffer(sizeof ids_host),
        alloc_buffer(sizeof sentinel),     alloc_buffer(sizeof probs_host), alloc_buffer(K * sizeof(float)),
    };
    strata_tensor experts, x, ids, out, probs, weights;
    tensor_init_contiguous(&experts, DTYPE_F32, N_IN, N_OUT, N_EXPERT, 1);
    tensor_init_contiguous(&x, DTYPE_F32, N_IN, 1, 1, 1);
    tensor_init_contiguous(&ids, DTYPE_I32, K, 1, 1, 1);
    tensor_init_contiguous(&out, DTYPE_F32, N_OUT, K, 1, 1);
    tensor_init_contiguous(&probs, DTYPE_F32, N_EXPERT, 1, 1, 1);
    tensor_init_contiguous(&weights, DTYPE_F32, K, 1, 1, 1);
    strata_tensor *tensors[6] = {&experts, &x, &ids, &out, &probs, &weights};
    const void *contents[5] = {experts_host, ones, ids_host, sentinel, probs_host};
    const size_t sizes[5] = {sizeof experts_host, sizeof ones, sizeof ids_host, sizeof sentinel, sizeof probs_host};
    strata_error err = {0};
    for (int i = 0; i < 6; i++) {
        if (!buffers[i])
            goto done;
        tensors[i]->buffer = buffers[i];
        if (i < 5)
            CHECK(dev.ops->upload(dev.ctx, buffers[i], 0, contents[i], sizes[i], &err) == STRATA_OK, "upload: %s",
                  err.message);
    }
    backend_op routed = {.kind = OP_MATMUL_ID, .dst = &out, .src = {&experts, &x, &ids}};
    backend_op chosen = {.kind = OP_MOE_WEIGHTS, .dst = &weights, .src = {&probs, &ids}};
    CHECK(dev.ops->begin_step(dev.ctx, &err) == STRATA_OK && dev.ops->run_op(dev.ctx, &routed, &err) == STRATA_OK &&
              dev.ops->run_op(dev.ctx, &chosen, &err) == STRATA_OK,
          "recording: %s", err.message);
    err.message[0] = '\0';
    CHECK(dev.ops->sync(dev.ctx, &err) == STRATA_INVALID_INPUT && strstr(err.message, "expert id"),
          "a bad expert id inside a step was not reported at sync (%s)", err.message);
    CHECK(dev.ops->end_step(dev.ctx, &err) == STRATA_OK, "end_step: %s", err.message);
    float got[N_OUT * K], got_weights[K];
    CHECK(dev.ops->download(dev.ctx, buffers[3], 0, got, sizeof got, &err) == STRATA_OK &&
              dev.ops->download(dev.ctx, buffers[5], 0, got_weights, sizeof got_weights, &err) == STRATA_OK &&
              dev.ops->sync(dev.ctx, &err) == STRATA_OK,
          "reading back: %s", err.message);
    int wrong = 0;
    for (int o = 0; o < N_OUT; o++)
        wrong += got[o] != 64.0f || got[N_OUT + o] != -5.0f;
    CHECK(wrong == 0, "matmul_id with ids {1, 7}: %d of %d values are not 64 (good slot) or untouched (bad slot)",
          wrong, N_OUT * K);
    CHECK(got_weights[0] == 0.75f && got_weights[1] == 0.0f, "moe_weights with ids {1, 7}: %g %g, want 0.75 0",
          got_weights[0], got_weights[1]);
done:
    for (int i = 0; i < 6; i++)
        if (buffers[i])
            dev.ops->buffer_free(dev.ctx, buffers[i]);
}

/* Far more than the device holds: a status and a message, then business as usual. */
static void check_out_of_memory(const device_info *info)
{
    backend_buffer *buffer = NULL;
    strata_error err = {0};
    size_t huge = (size_t)(info->total_bytes * 4 + ((uint64_t)1 << 40));
    CHECK(dev.ops->buffer_alloc(dev.ctx, huge, &buffer, &err) == STRATA_OUT_OF_MEMORY && err.message[0] && !buffer,
          "allocating %zu bytes: %s", huge, err.message);
    printf("out of memory, as expected: %s\n", err.message);
    backend_buffer *small = alloc_buffer(4096);
    unsigned char bytes[4096] = {1, 2, 3};
    CHECK(small && dev.ops->upload(dev.ctx, small, 0, bytes, sizeof bytes, &err) == STRATA_OK &&
              dev.ops->sync(dev.ctx, &err) == STRATA_OK,
          "the device is not usable after an out-of-memory: %s", err.message);
    if (small)
        dev.ops->buffer_free(dev.ctx, small);
}

static void check_measurements(void)
{
#ifdef STRATA_CUDA_EMULATED
    printf("measurements: skipped on the CUDA emulator (its copies and GEMMs are host loops)\n");
    return;
#endif
    double bandwidth = 0, flops = 0;
    strata_error err = {0};
    CHECK(dev.ops->measure_bandwidth && dev.ops->measure_gemm_peak, "the measurement slots are empty");
    if (!dev.ops->measure_bandwidth || !dev.ops->measure_gemm_peak)
        return;
    CHECK(dev.ops->measure_bandwidth(dev.ctx, &bandwidth, &err) == STRATA_OK, "bandwidth: %s", err.message);
    CHECK(dev.ops->measure_gemm_peak(dev.ctx, &flops, &err) == STRATA_OK, "gemm peak: %s", err.message);
    /* 10 GB/s .. 100 TB/s and 1 TFLOP/s .. 100 PFLOP/s bracket every GPU strata supports */
    CHECK(bandwidth > 1e10 && bandwidth < 1e14, "implausible bandwidth %.3g bytes/s", bandwidth);
    CHECK(flops > 1e12 && flops < 1e17, "implausible GEMM rate %.3g flop/s", flops);
    printf("device-to-device copy bandwidth: %.1f GB/s\n", bandwidth / 1e9);
    printf("cuBLAS f16 GEMM peak: %.1f TFLOP/s\n", flops / 1e12);
}

int main(void)
{
    const backend_registration *cuda = backend_find("cuda");
    if (!cuda) {
        printf("skipped: this strata was built without the CUDA backend (configure with -DSTRATA_CUDA=ON)\n");
        return 77;
    }
    strata_error err = {0};
    if (cuda->device_count(&err) <= 0) {
        printf("skipped: %s\n", err.message[0] ? err.message : "no CUDA device");
        return 77;
    }
    if (backend_open("cuda", 0, NULL, &dev, &err) != STRATA_OK) {
        printf("FAIL: cannot open cuda device 0: %s\n", err.message);
        return 1;
    }
    device_info info;
    dev.ops->get_info(dev.ctx, &info);
    printf("cuda device 0: %s, %.1f GiB (%.1f free), %s\n", info.name, info.total_bytes / 1073741824.0,
           info.free_bytes / 1073741824.0, info.features);
    CHECK(info.kind == DEVICE_KIND_CUDA && !info.host_visible && info.alignment >= 16, "device info");
    static const uint8_t no_uuid[16];
    CHECK(info.has_uuid && memcmp(info.uuid, no_uuid, sizeof no_uuid) != 0 && !info.software,
          "device info: no UUID, or a software device");
    int n_devices = cuda->device_count(NULL);
    backend_device other;
    CHECK(backend_open("cuda", n_devices, NULL, &other, &err) == STRATA_INVALID_INPUT && err.message[0],
          "device %d of %d opened", n_devices, n_devices);
    check_transfers();
    check_steps();
    check_step_index_error();
    check_step_expert_id_error();
    check_out_of_memory(&info);
    check_measurements();
    backend_close(&dev);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("all passed\n");
    return 0;
}
