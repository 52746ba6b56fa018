/* Vulkan ops on buffers larger than one storage-buffer binding, at the
 * device's own limit (maxStorageBufferRange: 128 MiB on lavapipe): the ops
 * cut their work into bindings that fit (backends/vulkan/vulkan_split.h).
 * test_backend_ops_vulkan_bind64k runs every op at a 64 KiB limit; this
 * test runs the sizes a long context really has:
 * - kv_store into a 143 MB F32 cache (one kv head of 128, 280000 rows) at
 *   rows on both sides of where the binding is cut, then attention over it:
 *   a query that sees all of it, and windowed queries before and across the
 *   cut;
 * - attention over a 13 MB F16 cache with 12500 rows per workgroup, more
 *   than lavapipe runs a shader's loops for (VK_LLVMPIPE_LOOP_ITERATIONS);
 * - get_rows of 9000 ids into a 147 MB output from a 138 MB F32 table;
 * - a matmul with a 144 MB output (300000 rows x 120 tokens);
 * - add, rms_norm and an f32 -> f16 copy of 136 MB activations;
 * - supports() of attention and kv_store over a 2.2M-token cache (more
 *   than 2^31 values), on descriptors alone.
 * Results are compared with double-precision references (tests/common) or
 * bit for bit. Skips (77) without a Vulkan device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "op_reference.h"
#include "quant.h"
#include "test_check.h"
#include "test_device.h"

static backend_device dev;

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static float rng_uniform(void) /* in [-1, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 0x2545F4914F6CDD1DULL) >> 40) / 8388608.0f - 1.0f;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct device_tensor {
    strata_tensor t;
    backend_buffer *buffer;
} device_tensor;

static strata_status tensor_new(device_tensor *dt, strata_dtype dtype, int64_t ne0, int64_t ne1, int64_t ne2,
                                const void *data, strata_error *err)
{
    memset(dt, 0, sizeof *dt);
    if (!tensor_init_contiguous(&dt->t, dtype, ne0, ne1, ne2, 1))
        return strata_fail(err, STRATA_INVALID_INPUT, "bad shape");
    size_t bytes = tensor_byte_size(&dt->t);
    strata_status status = dev.ops->buffer_alloc(dev.ctx, bytes, &dt->buffer, err);
    if (status)
        return status;
    dt->t.buffer = dt->buffer;
    return data ? dev.ops->upload(dev.ctx, dt->buffer, 0, data, bytes, err) : STRATA_OK;
}

static void tensor_release(device_tensor *dt)
{
    if (dt->buffer)
        dev.ops->buffer_free(dev.ctx, dt->buffer);
    dt->buffer = NULL;
}

static strata_status run(backend_op *op, strata_error *err)
{
    if (!dev.ops->supports(dev.ctx, op))
        return strata_fail(err, STRATA_UNSUPPORTED, "supports() refuses the op");
    strata_status status = dev.ops->run_op(dev.ctx, op, err);
    return status ? status : dev.ops->sync(dev.ctx, err);
}

static strata_status read_back(const device_tensor *dt, size_t offset, void *host, size_t bytes, strata_error *err)
{
    return dev.ops->download(dev.ctx, dt->buffer, offset, host, bytes, err);
}

/* --- the long F32 cache: kv_store, then attention ------------------------------ */

enum { HEAD_DIM = 128 };

/* Attention of n_heads heads (over the one kv head) of n_tok tokens at
 * positions, over k/v (host copies, as f32) in device tensors kt/vt of n_ctx
 * rows, with a sliding window (0: none); nmse against ref_attention. */
static void check_attention(const char *what, const device_tensor *kt, const device_tensor *vt, const float *k,
                            const float *v, int64_t n_ctx, int64_t n_heads, int64_t n_tok, const int32_t *positions,
                            int window)
{
    strata_error err = {0};
    size_t count = (size_t)(HEAD_DIM * n_heads * n_tok);
    float *q = malloc(count * sizeof *q), *got = malloc(count * sizeof *got);
    double *ref = malloc(count * sizeof *ref);
    device_tensor qt = {0}, pt = {0}, dst = {0};
    if (!q || !got || !ref) {
        CHECK(0, "%s: out of memory", what);
        goto done;
    }
    for (size_t i = 0; i < count; i++)
        q[i] = 2.0f * rng_uniform();
    backend_op op = {.kind = OP_ATTENTION, .dst = &dst.t, .src = {&qt.t, &kt->t, &vt->t, &pt.t}};
    op.params.attention.n_kv = n_ctx;
    op.params.attention.scale = 1.0f / sqrtf((float)HEAD_DIM);
    op.params.attention.sliding_window = window;
    double start = seconds();
    if (tensor_new(&qt, DTYPE_F32, HEAD_DIM, n_heads, n_tok, q, &err) ||
        tensor_new(&pt, DTYPE_I32, n_tok, 1, 1, positions, &err) ||
        tensor_new(&dst, DTYPE_F32, HEAD_DIM, n_heads, n_tok, NULL, &err) || run(&op, &err) ||
        read_back(&dst, 0, got, count * sizeof *got, &err)) {
        CHECK(0, "%s: %s", what, err.message);
        goto done;
    }
    double device_seconds = seconds() - start;
    ref_attention(q, k, v, positions, HEAD_DIM, n_heads, 1, n_tok, n_ctx, (double)op.params.attention.scale, window,
                  0.0, ref);
    double nmse = ref_nmse(got, ref, (int64_t)count);
    CHECK(nmse < 1e-10, "%s: nmse %.3g", what, nmse);
    printf("%s: nmse %.3g (%.1f s on the device)\n", what, nmse, device_seconds);
done:
    tensor_release(&qt);
    tensor_release(&pt);
    tensor_release(&dst);
    free(q);
    free(got);
    free(ref);
}

static void test_long_f32_cache(void)
{
    enum { N_CTX = 280000, N_STORE = 4 };
    /* a 128 MiB binding holds 262143 rows of 512 bytes: the first binding
     * ends with row 262142, the next starts at 262143 */
    static const int32_t stored[N_STORE] = {5, 262142, 262144, N_CTX - 1};
    size_t count = (size_t)HEAD_DIM * N_CTX;
    float *k = malloc(count * sizeof *k), *v = malloc(count * sizeof *v);
    float rows[2][HEAD_DIM * N_STORE], readback[HEAD_DIM];
    device_tensor kt = {0}, vt = {0}, pt = {0}, rt[2];
    memset(rt, 0, sizeof rt);
    strata_error err = {0};
    if (!k || !v) {
        CHECK(0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        k[i] = rng_uniform();
        v[i] = rng_uniform();
    }
    if (tensor_new(&kt, DTYPE_F32, HEAD_DIM, 1, N_CTX, k, &err) ||
        tensor_new(&vt, DTYPE_F32, HEAD_DIM, 1, N_CTX, v, &err)) {
        CHECK(0, "caches of %.0f MB: %s", count * 4.0 / 1e6, err.message);
        goto done;
    }
    /* store new rows into both caches, as the forward pass does */
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < HEAD_DIM * N_STORE; i++)
            rows[c][i] = 3.0f * rng_uniform();
    if (tensor_new(&pt, DTYPE_I32, N_STORE, 1, 1, stored, &err)) {
        CHECK(0, "positions: %s", err.message);
        goto done;
    }
    for (int c = 0; c < 2; c++) {
        device_tensor *cache = c == 0 ? &kt : &vt;
        strata_tensor cache_2d = cache->t; /* kv_store sees [HEAD_DIM, N_CTX] */
        cache_2d.ne[1] = N_CTX;
        cache_2d.ne[2] = 1;
        cache_2d.nb[1] = HEAD_DIM * sizeof(float);
        cache_2d.nb[2] = cache_2d.nb[3] = cache_2d.nb[1] * N_CTX;
        backend_op store = {.kind = OP_KV_STORE, .dst = &cache_2d, .src = {&rt[c].t, &pt.t}};
        if (tensor_new(&rt[c], DTYPE_F32, HEAD_DIM, N_STORE, 1, rows[c], &err) || run(&store, &err)) {
            CHECK(0, "kv_store into the %s cache: %s", c ? "V" : "K", err.message);
            goto done;
        }
        float *host = c == 0 ? k : v;
        for (int s = 0; s < N_STORE; s++)
            memcpy(host + (size_t)stored[s] * HEAD_DIM, rows[c] + s * HEAD_DIM, sizeof readback);
    }
    /* the stored rows and their neighbours, bit for bit */
    int wrong = 0;
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < N_STORE; s++)
            for (int32_t row = stored[s] - 1; row <= stored[s] + 1; row++) {
                if (row < 0 || row >= N_CTX)
                    continue;
                const float *want = (c == 0 ? k : v) + (size_t)row * HEAD_DIM;
                if (read_back(c == 0 ? &kt : &vt, (size_t)row * sizeof readback, readback, sizeof readback, &err)) {
                    CHECK(0, "download: %s", err.message);
                    goto done;
                }
                if (memcmp(readback, want, sizeof readback) != 0)
                    wrong++;
            }
    CHECK(wrong == 0, "kv_store: %d rows around the stored ones differ", wrong);
    printf("kv_store of %d rows into a %.0f MB cache: %d rows wrong\n", N_STORE, count * 4.0 / 1e6, wrong);
    /* the last query sees every row (both bindings, every pass); a window
     * keeps the others short, one before the cut, two across it */
    static const int32_t last[1] = {N_CTX - 1}, windowed[4] = {1000, 262142, 262160, N_CTX - 1};
    check_attention("attention over a 143 MB f32 cache, every row", &kt, &vt, k, v, N_CTX, 2, 1, last, 0);
    check_attention("attention over a 143 MB f32 cache, window of 20000", &kt, &vt, k, v, N_CTX, 4, 4, windowed,
                    20000);
done:
    tensor_release(&kt);
    tensor_release(&vt);
    tensor_release(&rt[0]);
    tensor_release(&rt[1]);
    tensor_release(&pt);
    free(k);
    free(v);
}

/* 64 (token, head) pairs split the rows in 4 (vk_attention_splits): 12500
 * rows per workgroup in one binding, more than lavapipe loops over for
 * head_dim 128 (it went wrong from about 11000), unless the loop budget cuts
 * the passes shorter. */
static void test_long_f16_split(void)
{
    enum { N_CTX = 50000, N_TOK = 8 };
    static const int32_t positions[N_TOK] = {49990, 49991, 49992, 49993, 49994, 49995, 49996, N_CTX - 1};
    size_t count = (size_t)HEAD_DIM * N_CTX;
    float *k = malloc(count * sizeof *k), *v = malloc(count * sizeof *v);
    uint16_t *k_bits = malloc(count * sizeof *k_bits), *v_bits = malloc(count * sizeof *v_bits);
    device_tensor kt = {0}, vt = {0};
    strata_error err = {0};
    if (!k || !v || !k_bits || !v_bits) {
        CHECK(0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        k_bits[i] = f32_to_fp16(rng_uniform());
        v_bits[i] = f32_to_fp16(rng_uniform());
        k[i] = fp16_to_f32(k_bits[i]);
        v[i] = fp16_to_f32(v_bits[i]);
    }
    if (tensor_new(&kt, DTYPE_F16, HEAD_DIM, 1, N_CTX, k_bits, &err) ||
        tensor_new(&vt, DTYPE_F16, HEAD_DIM, 1, N_CTX, v_bits, &err)) {
        CHECK(0, "f16 caches: %s", err.message);
        goto done;
    }
    check_attention("attention over a 13 MB f16 cache, 12500 rows per split", &kt, &vt, k, v, N_CTX, 8, N_TOK,
                    positions, 0);
done:
    tensor_release(&kt);
    tensor_release(&vt);
    free(k);
    free(v);
    free(k_bits);
    free(v_bits);
}

/* --- weights and activations ------------------------------------------------------ */

static void test_get_rows_big_output(void)
{
    enum { N_EMBD = 4096, N_VOCAB = 8448, N_IDS = 9000 };
    size_t table_count = (size_t)N_EMBD * N_VOCAB, out_count = (size_t)N_EMBD * N_IDS;
    float *table = malloc(table_count * sizeof *table), *got = malloc(out_count * sizeof *got);
    int32_t *ids = malloc(N_IDS * sizeof *ids);
    device_tensor tt = {0}, it = {0}, dst = {0};
    strata_error err = {0};
    if (!table || !got || !ids) {
        CHECK(0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < table_count; i++)
        table[i] = rng_uniform();
    /* the first and last rows, both sides of the table's cut (8191 rows of 16 KiB per binding), random ones */
    for (int j = 0; j < N_IDS; j++) {
        rng_uniform();
        ids[j] = j == 0 ? 0 : j == 1 ? N_VOCAB - 1 : j == 2 ? 8190 : j == 3 ? 8191 : (int32_t)(rng_state % N_VOCAB);
    }
    backend_op op = {.kind = OP_GET_ROWS, .dst = &dst.t, .src = {&tt.t, &it.t}};
    if (tensor_new(&tt, DTYPE_F32, N_EMBD, N_VOCAB, 1, table, &err) ||
        tensor_new(&it, DTYPE_I32, N_IDS, 1, 1, ids, &err) || tensor_new(&dst, DTYPE_F32, N_EMBD, N_IDS, 1, NULL, &err) ||
        run(&op, &err) || read_back(&dst, 0, got, out_count * sizeof *got, &err)) {
        CHECK(0, "get_rows: %s", err.message);
        goto done;
    }
    int wrong = 0;
    for (int j = 0; j < N_IDS; j++)
        if (memcmp(got + (size_t)j * N_EMBD, table + (size_t)ids[j] * N_EMBD, N_EMBD * sizeof(float)) != 0)
            wrong++;
    CHECK(wrong == 0, "get_rows: %d of %d rows differ", wrong, N_IDS);
    printf("get_rows of %d ids (%.0f MB) from a %.0f MB table: %d rows wrong\n", N_IDS, out_count * 4.0 / 1e6,
           table_count * 4.0 / 1e6, wrong);
done:
    tensor_release(&tt);
    tensor_release(&it);
    tensor_release(&dst);
    free(table);
    free(got);
    free(ids);
}

static void test_matmul_big_output(void)
{
    enum { N_IN = 8, N_OUT = 300000, N_TOKENS = 120 };
    size_t w_count = (size_t)N_IN * N_OUT, out_count = (size_t)N_OUT * N_TOKENS;
    uint16_t *w_bits = malloc(w_count * sizeof *w_bits);
    float *w = malloc(w_count * sizeof *w), *x = malloc((size_t)N_IN * N_TOKENS * sizeof *x);
    float *got = malloc(out_count * sizeof *got);
    device_tensor wt = {0}, xt = {0}, dst = {0};
    strata_error err = {0};
    if (!w_bits || !w || !x || !got) {
        CHECK(0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < w_count; i++) {
        w_bits[i] = f32_to_fp16(rng_uniform());
        w[i] = fp16_to_f32(w_bits[i]);
    }
    for (size_t i = 0; i < (size_t)N_IN * N_TOKENS; i++)
        x[i] = rng_uniform();
    backend_op op = {.kind = OP_MATMUL, .dst = &dst.t, .src = {&wt.t, &xt.t}};
    if (tensor_new(&wt, DTYPE_F16, N_IN, N_OUT, 1, w_bits, &err) ||
        tensor_new(&xt, DTYPE_F32, N_IN, N_TOKENS, 1, x, &err) ||
        tensor_new(&dst, DTYPE_F32, N_OUT, N_TOKENS, 1, NULL, &err) || run(&op, &err) ||
        read_back(&dst, 0, got, out_count * sizeof *got, &err)) {
        CHECK(0, "matmul: %s", err.message);
        goto done;
    }
    double err2 = 0.0, norm = 0.0;
    for (size_t o = 0; o < N_OUT; o++)
        for (size_t t = 0; t < N_TOKENS; t++) {
            double sum, squares;
            ref_matmul(w + o * N_IN, x + t * N_IN, N_IN, 1, 1, &sum, &squares);
            double diff = got[t * N_OUT + o] - sum;
            err2 += diff * diff;
            norm += squares;
        }
    CHECK(err2 / norm < 1e-10, "matmul with a %.0f MB output: nmse %.3g", out_count * 4.0 / 1e6, err2 / norm);
    printf("matmul [%d, %d] x %d tokens (%.0f MB output): nmse %.3g\n", N_IN, N_OUT, N_TOKENS, out_count * 4.0 / 1e6,
           err2 / norm);
done:
    tensor_release(&wt);
    tensor_release(&xt);
    tensor_release(&dst);
    free(w_bits);
    free(w);
    free(x);
    free(got);
}

static void test_activations(void)
{
    enum { N = 4096, ROWS = 8300 };
    size_t count = (size_t)N * ROWS;
    float *a = malloc(count * sizeof *a), *b = malloc(count * sizeof *b), *got = malloc(count * sizeof *got);
    float weight[N];
    double *ref = malloc(count * sizeof *ref);
    uint16_t *halves = malloc(count * sizeof *halves);
    device_tensor at = {0}, bt = {0}, wt = {0}, dst = {0}, ht = {0};
    strata_error err = {0};
    if (!a || !b || !got || !ref || !halves) {
        CHECK(0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        a[i] = rng_uniform();
        b[i] = rng_uniform();
    }
    for (int i = 0; i < N; i++)
        weight[i] = rng_uniform();
    if (tensor_new(&at, DTYPE_F32, N, ROWS, 1, a, &err) || tensor_new(&bt, DTYPE_F32, N, ROWS, 1, b, &err) ||
        tensor_new(&wt, DTYPE_F32, N, 1, 1, weight, &err) || tensor_new(&dst, DTYPE_F32, N, ROWS, 1, NULL, &err)) {
        CHECK(0, "activations of %.0f MB: %s", count * 4.0 / 1e6, err.message);
        goto done;
    }
    /* add: f32 sums, the same on both sides */
    backend_op add = {.kind = OP_ADD, .dst = &dst.t, .src = {&at.t, &bt.t}};
    if (run(&add, &err) || read_back(&dst, 0, got, count * sizeof *got, &err)) {
        CHECK(0, "add: %s", err.message);
        goto done;
    }
    size_t wrong = 0;
    for (size_t i = 0; i < count; i++)
        if (got[i] != a[i] + b[i])
            wrong++;
    CHECK(wrong == 0, "add: %zu of %zu sums differ", wrong, count);
    /* rms_norm with a weight, against the double reference */
    backend_op norm = {.kind = OP_RMS_NORM, .dst = &dst.t, .src = {&at.t, &wt.t}};
    norm.params.rms_norm.eps = 1e-5f;
    if (run(&norm, &err) || read_back(&dst, 0, got, count * sizeof *got, &err)) {
        CHECK(0, "rms_norm: %s", err.message);
        goto done;
    }
    ref_rms_norm(a, weight, N, ROWS, 1e-5f, ref);
    double nmse = ref_nmse(got, ref, (int64_t)count);
    CHECK(nmse < 1e-10, "rms_norm: nmse %.3g", nmse);
    /* f32 -> f16, bit for bit */
    backend_op copy = {.kind = OP_COPY, .src = {&bt.t}};
    if (tensor_new(&ht, DTYPE_F16, N, ROWS, 1, NULL, &err)) {
        CHECK(0, "f16 copy: %s", err.message);
        goto done;
    }
    copy.dst = &ht.t;
    if (run(&copy, &err) || read_back(&ht, 0, halves, count * sizeof *halves, &err)) {
        CHECK(0, "copy: %s", err.message);
        goto done;
    }
    size_t wrong_halves = 0;
    for (size_t i = 0; i < count; i++)
        if (halves[i] != f32_to_fp16(b[i]))
            wrong_halves++;
    CHECK(wrong_halves == 0, "copy to f16: %zu of %zu values differ", wrong_halves, count);
    printf("add, rms_norm and an f16 copy of [%d, %d] (%.0f MB): %zu sums wrong, rms_norm nmse %.3g, %zu halves "
           "wrong\n",
           N, ROWS, count * 4.0 / 1e6, wrong, nmse, wrong_halves);
done:
    tensor_release(&at);
    tensor_release(&bt);
    tensor_release(&wt);
    tensor_release(&dst);
    tensor_release(&ht);
    free(a);
    free(b);
    free(got);
    free(ref);
    free(halves);
}

/* supports() takes a 2.2M-token cache of 8 kv heads x 128 (2^31 values and
 * more: the ops bind it in ranges), judged on descriptors alone. */
static void test_supports_long_cache(void)
{
    enum { N_CTX = 2200000 };
    strata_tensor q, k, v, pos, dst, rows;
    tensor_init_contiguous(&q, DTYPE_F32, HEAD_DIM, 32, 1, 1);
    tensor_init_contiguous(&k, DTYPE_F16, HEAD_DIM, 8, N_CTX, 1);
    tensor_init_contiguous(&v, DTYPE_F16, HEAD_DIM, 8, N_CTX, 1);
    tensor_init_contiguous(&pos, DTYPE_I32, 1, 1, 1, 1);
    tensor_init_contiguous(&dst, DTYPE_F32, HEAD_DIM, 32, 1, 1);
    backend_op attention = {.kind = OP_ATTENTION, .dst = &dst, .src = {&q, &k, &v, &pos}};
    attention.params.attention.n_kv = N_CTX;
    attention.params.attention.scale = 0.1f;
    CHECK(dev.ops->supports(dev.ctx, &attention), "supports() refuses attention over a 2.2M-token cache");
    strata_tensor cache = k; /* kv_store sees [HEAD_DIM * 8, N_CTX] */
    tensor_init_contiguous(&cache, DTYPE_F16, HEAD_DIM * 8, N_CTX, 1, 1);
    tensor_init_contiguous(&rows, DTYPE_F32, HEAD_DIM * 8, 1, 1, 1);
    backend_op store = {.kind = OP_KV_STORE, .dst = &cache, .src = {&rows, &pos}};
    CHECK(dev.ops->supports(dev.ctx, &store), "supports() refuses kv_store into a 2.2M-token cache");
    printf("supports() takes attention and kv_store over a cache of %.2fG values\n", HEAD_DIM * 8.0 * N_CTX / 1e9);
}

int main(void)
{
    int open_status = test_open_first_device("vulkan", &dev);
    if (open_status != 0)
        return open_status;
    device_info info;
    dev.ops->get_info(dev.ctx, &info);
    printf("%s: %s\n", info.name, info.features);
    double start = seconds();
    void (*parts[])(void) = {test_supports_long_cache, test_long_f32_cache, test_long_f16_split, test_get_rows_big_output,
                             test_matmul_big_output, test_activations};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        double part_start = seconds();
        parts[i]();
        printf("  (%.1f s)\n", seconds() - part_start);
    }
    backend_close(&dev);
    printf("%.1f s in all\n", seconds() - start);
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("vulkan buffers larger than one binding: all passed\n");
    return 0;
}
