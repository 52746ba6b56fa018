/* Vulkan weight ops on tensors larger than one storage-buffer binding: the
 * backend binds them as several row ranges (maxStorageBufferRange, 128 MiB on
 * lavapipe), one dispatch each, and a range may start in the middle of a
 * 32-bit word. The op-conformance suite never reaches that size, so this
 * test does: an f16 weight of 4097 x 16500 (135 MB; rows of 8194 bytes, so
 * on lavapipe the second range starts 2 bytes into a word) multiplied by
 * 2 tokens (matrix-vector kernel) and 9 tokens (tiled kernel), and looked up
 * by get_rows at rows on both sides of the split. On a driver with a larger
 * range it runs unsplit and still checks the results. Skips (77) without a
 * Vulkan device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "op_reference.h"
#include "quant.h"
#include "test_check.h"
#include "test_device.h"

enum { N_IN = 4097, N_OUT = 16500 };

static backend_device dev;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float rng_uniform(void) /* in [-1, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 0x2545F4914F6CDD1DULL) >> 40) / 8388608.0f - 1.0f;
}

typedef struct device_tensor {
    strata_tensor t;
    backend_buffer *buffer;
} device_tensor;

static strata_status tensor_new(device_tensor *dt, strata_dtype dtype, int64_t ne0, int64_t ne1, const void *data,
                                strata_error *err)
{
    memset(dt, 0, sizeof *dt);
    if (!tensor_init_contiguous(&dt->t, dtype, ne0, ne1, 1, 1))
        return strata_fail(err, STRATA_INVALID_INPUT, "bad shape");
    size_t bytes = tensor_byte_size(&dt->t);
    strata_status status = dev.ops->buffer_alloc(dev.ctx, bytes, &dt->buffer, err);
    if (status)
        return status;
    dt->t.buffer = dt->buffer;
    dt->t.host_data = dev.ops->buffer_host_ptr ? dev.ops->buffer_host_ptr(dev.ctx, dt->buffer) : NULL;
    return data ? dev.ops->upload(dev.ctx, dt->buffer, 0, data, bytes, err) : STRATA_OK;
}

static void tensor_release(device_tensor *dt)
{
    if (dt->buffer)
        dev.ops->buffer_free(dev.ctx, dt->buffer);
    dt->buffer = NULL;
}

static strata_status run_and_read(backend_op *op, device_tensor *out, void *host, size_t bytes, strata_error *err)
{
    if (!dev.ops->supports(dev.ctx, op))
        return strata_fail(err, STRATA_UNSUPPORTED, "supports() refuses the op");
    strata_status status = dev.ops->run_op(dev.ctx, op, err);
    if (!status)
        status = dev.ops->sync(dev.ctx, err);
    if (!status)
        status = dev.ops->download(dev.ctx, out->buffer, 0, host, bytes, err);
    return status;
}

/* dst = W x for n_tok tokens, against the double reference. */
static void check_matmul(const uint16_t *w_bits, device_tensor *w, int n_tok)
{
    strata_error err = {0};
    float *x = malloc((size_t)N_IN * n_tok * sizeof *x), *got = malloc((size_t)N_OUT * n_tok * sizeof *got);
    float *row = malloc(N_IN * sizeof *row);
    device_tensor xt = {0}, dst = {0};
    if (!x || !got || !row) {
        CHECK(0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < (size_t)N_IN * n_tok; i++)
        x[i] = rng_uniform();
    backend_op op = {.kind = OP_MATMUL, .dst = &dst.t, .src = {&w->t, &xt.t}};
    strata_status status;
    if ((status = tensor_new(&xt, DTYPE_F32, N_IN, n_tok, x, &err)) ||
        (status = tensor_new(&dst, DTYPE_F32, N_OUT, n_tok, NULL, &err)) ||
        (status = run_and_read(&op, &dst, got, (size_t)N_OUT * n_tok * sizeof *got, &err))) {
        CHECK(0, "matmul of %d tokens: %s", n_tok, err.message);
        goto done;
    }
    double err2 = 0.0, norm = 0.0;
    for (int o = 0; o < N_OUT; o++) {
        for (int i = 0; i < N_IN; i++)
            row[i] = fp16_to_f32(w_bits[(size_t)o * N_IN + i]);
        for (int t = 0; t < n_tok; t++) {
            double sum, squares;
            ref_matmul(row, x + (size_t)t * N_IN, N_IN, 1, 1, &sum, &squares);
            double diff = got[(size_t)t * N_OUT + o] - sum;
            err2 += diff * diff;
            norm += squares;
        }
    }
    /* f32 accumulation of f16 x f32 products: float rounding only */
    CHECK(err2 / norm < 1e-10, "matmul of %d tokens: nmse %.3g", n_tok, err2 / norm);
    printf("matmul [%d, %d] x %d tokens: nmse %.3g\n", N_IN, N_OUT, n_tok, err2 / norm);
done:
    tensor_release(&xt);
    tensor_release(&dst);
    free(x);
    free(got);
    free(row);
}

/* get_rows at rows on both sides of where lavapipe splits the binding, and
 * the first and last rows: bit-exact. */
static void check_get_rows(const uint16_t *w_bits, device_tensor *w)
{
    static const int32_t ids[] = {0, 16378, 16379, 16380, 16381, N_OUT - 1, 7, 16379};
    enum { N_IDS = sizeof ids / sizeof ids[0] };
    strata_error err = {0};
    float *got = malloc((size_t)N_IN * N_IDS * sizeof *got);
    device_tensor it = {0}, dst = {0};
    backend_op op = {.kind = OP_GET_ROWS, .dst = &dst.t, .src = {&w->t, &it.t}};
    strata_status status;
    if (!got || (status = tensor_new(&it, DTYPE_I32, N_IDS, 1, ids, &err)) ||
        (status = tensor_new(&dst, DTYPE_F32, N_IN, N_IDS, NULL, &err)) ||
        (status = run_and_read(&op, &dst, got, (size_t)N_IN * N_IDS * sizeof *got, &err))) {
        CHECK(0, "get_rows: %s", got ? err.message : "out of memory");
        goto done;
    }
    int wrong = 0;
    for (int j = 0; j < N_IDS; j++)
        for (int i = 0; i < N_IN; i++) {
            float want = fp16_to_f32(w_bits[(size_t)ids[j] * N_IN + i]);
            if (memcmp(&got[(size_t)j * N_IN + i], &want, sizeof want) != 0 && wrong++ < 3)
                CHECK(0, "get_rows id %d element %d: %.9g, want %.9g", ids[j], i, got[(size_t)j * N_IN + i], want);
        }
    printf("get_rows of %d ids around the split: %d wrong\n", N_IDS, wrong);
done:
    tensor_release(&it);
    tensor_release(&dst);
    free(got);
}

int main(void)
{
    strata_error err = {0};
    int open_status = test_open_first_device("vulkan", &dev);
    if (open_status != 0)
        return open_status;
    uint16_t *w_bits = malloc((size_t)N_IN * N_OUT * sizeof *w_bits);
    device_tensor w = {0};
    if (!w_bits) {
        CHECK(0, "out of memory");
    } else {
        for (size_t i = 0; i < (size_t)N_IN * N_OUT; i++)
            w_bits[i] = f32_to_fp16(rng_uniform());
        if (tensor_new(&w, DTYPE_F16, N_IN, N_OUT, w_bits, &err) != STRATA_OK) {
            CHECK(0, "weight of %.0f MB: %s", N_IN * 2.0 * N_OUT / 1e6, err.message);
        } else {
            check_matmul(w_bits, &w, 2);
            check_matmul(w_bits, &w, 9);
            check_get_rows(w_bits, &w);
        }
    }
    tensor_release(&w);
    free(w_bits);
    backend_close(&dev);
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("vulkan weights across bindings: all passed\n");
    return 0;
}
