/* Shape and dtype checks of every op on Vulkan, read by both supports() and
 * run_op(). They follow the op contracts of backends/backend.h plus what the
 * shaders assume (named where it applies). */
#include <stdarg.h>
#include <stdio.h>

#include "vulkan_internal.h"

#define ATTENTION_MAX_HEAD_DIM 512 /* shaders/attention.comp: 8 dims per thread, 64 threads */

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static bool need(bool ok, char *why, size_t why_size, const char *fmt, ...)
{
    if (!ok && why && why_size) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(why, why_size, fmt, args);
        va_end(args);
    }
    return ok;
}

static const char *label(const strata_tensor *t, const char *role)
{
    return t && t->name ? t->name : role;
}

static bool need_tensor(const strata_tensor *t, const char *role, strata_dtype dtype, char *why, size_t why_size)
{
    return need(t != NULL, why, why_size, "%s is missing", role) &&
           need(t->dtype == dtype, why, why_size, "%s (%s) is %s, expected %s", role, label(t, role),
                dtype_name(t->dtype), dtype_name(dtype)) &&
           need(tensor_is_contiguous(t), why, why_size, "%s (%s) is not contiguous", role, label(t, role));
}

static bool need_cache(const strata_tensor *t, const char *role, char *why, size_t why_size)
{
    return need(t != NULL, why, why_size, "%s is missing", role) &&
           need(t->dtype == DTYPE_F16 || t->dtype == DTYPE_F32, why, why_size, "%s (%s) is %s, expected f16 or f32",
                role, label(t, role), dtype_name(t->dtype)) &&
           need(tensor_is_contiguous(t), why, why_size, "%s (%s) is not contiguous", role, label(t, role));
}

static bool same_shape(const strata_tensor *a, const strata_tensor *b)
{
    for (int d = 0; d < STRATA_MAX_DIMS; d++)
        if (a->ne[d] != b->ne[d])
            return false;
    return true;
}

static bool need_same_shape(const strata_tensor *a, const char *role_a, const strata_tensor *b, const char *role_b,
                            char *why, size_t why_size)
{
    return need(same_shape(a, b), why, why_size, "%s [%lld, %lld, %lld, %lld] and %s [%lld, %lld, %lld, %lld] differ",
                role_a, (long long)a->ne[0], (long long)a->ne[1], (long long)a->ne[2], (long long)a->ne[3], role_b,
                (long long)b->ne[0], (long long)b->ne[1], (long long)b->ne[2], (long long)b->ne[3]);
}

static bool is_vector(const strata_tensor *t, int64_t n)
{
    return t->ne[0] == n && t->ne[1] == 1 && t->ne[2] == 1 && t->ne[3] == 1;
}

/* Shaders index with 32-bit unsigned integers. */
static bool need_small(const strata_tensor *t, const char *role, char *why, size_t why_size)
{
    return need(tensor_element_count(t) < ((int64_t)1 << 31), why, why_size,
                "%s (%s) has more than 2^31 elements", role, label(t, role));
}

bool vk_check_get_rows(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    const strata_tensor *table = op->src[0], *ids = op->src[1], *dst = op->dst;
    if (!need(table != NULL, why, why_size, "src0 is missing") ||
        !need(vk_weight_dtype_supported(table->dtype), why, why_size,
              "src0 (%s) has dtype %s, for which no get_rows shader is built", label(table, "src0"),
              dtype_name(table->dtype)) ||
        !need(tensor_is_contiguous(table), why, why_size, "src0 (%s) is not contiguous", label(table, "src0")) ||
        !need_tensor(ids, "src1", DTYPE_I32, why, why_size) || !need_tensor(dst, "dst", DTYPE_F32, why, why_size) ||
        !need_small(dst, "dst", why, why_size))
        return false;
    return need(table->ne[2] == 1 && table->ne[3] == 1, why, why_size, "src0 must be 2-D") &&
           need(is_vector(ids, ids->ne[0]), why, why_size, "src1 must be 1-D") &&
           need(dst->ne[0] == table->ne[0] && dst->ne[1] == ids->ne[0] && dst->ne[2] == 1 && dst->ne[3] == 1, why,
                why_size, "dst must be [%lld, %lld]", (long long)table->ne[0], (long long)ids->ne[0]);
}

bool vk_check_matmul(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    const strata_tensor *weight = op->src[0], *x = op->src[1], *dst = op->dst;
    if (!need(weight != NULL, why, why_size, "src0 (weight) is missing") ||
        !need(vk_weight_dtype_supported(weight->dtype), why, why_size,
              "weight %s has dtype %s, for which no matmul shader is built", label(weight, "src0"),
              dtype_name(weight->dtype)) ||
        !need(tensor_is_contiguous(weight), why, why_size, "weight %s is not contiguous", label(weight, "src0")) ||
        !need_tensor(x, "src1", DTYPE_F32, why, why_size) || !need_tensor(dst, "dst", DTYPE_F32, why, why_size) ||
        !need_small(x, "src1", why, why_size) || !need_small(dst, "dst", why, why_size))
        return false;
    return need(weight->ne[2] == 1 && weight->ne[3] == 1, why, why_size, "weight must be 2-D") &&
           need(x->ne[0] == weight->ne[0], why, why_size, "src1 has %lld inputs, weight %lld", (long long)x->ne[0],
                (long long)weight->ne[0]) &&
           need(dst->ne[0] == weight->ne[1] && dst->ne[1] == x->ne[1] && dst->ne[2] == x->ne[2] &&
                    dst->ne[3] == x->ne[3],
                why, why_size, "dst must be [%lld, %lld, %lld, %lld]", (long long)weight->ne[1], (long long)x->ne[1],
                (long long)x->ne[2], (long long)x->ne[3]);
}

bool vk_check_rms_norm(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    const strata_tensor *x = op->src[0], *weight = op->src[1], *dst = op->dst;
    if (!need_tensor(x, "src0", DTYPE_F32, why, why_size) || !need_tensor(dst, "dst", DTYPE_F32, why, why_size) ||
        !need_same_shape(x, "src0", dst, "dst", why, why_size) || !need_small(x, "src0", why, why_size))
        return false;
    if (weight && (!need_tensor(weight, "src1", DTYPE_F32, why, why_size) ||
                   !need(is_vector(weight, x->ne[0]), why, why_size, "src1 must be [%lld]", (long long)x->ne[0])))
        return false;
    return need(op->params.rms_norm.eps >= 0.0f, why, why_size, "eps is negative");
}

bool vk_check_binary(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    const strata_tensor *a = op->src[0], *b = op->src[1], *dst = op->dst;
    if (!need_tensor(a, "src0", DTYPE_F32, why, why_size) || !need_tensor(b, "src1", DTYPE_F32, why, why_size) ||
        !need_tensor(dst, "dst", DTYPE_F32, why, why_size) || !need_same_shape(a, "src0", dst, "dst", why, why_size) ||
        !need_small(a, "src0", why, why_size))
        return false;
    return need(same_shape(a, b) || is_vector(b, a->ne[0]), why, why_size,
                "src1 must have the shape of src0 or be one row of %lld", (long long)a->ne[0]);
}

bool vk_check_unary(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    const strata_tensor *a = op->src[0], *dst = op->dst;
    return need_tensor(a, "src0", DTYPE_F32, why, why_size) && need_tensor(dst, "dst", DTYPE_F32, why, why_size) &&
           need_same_shape(a, "src0", dst, "dst", why, why_size) && need_small(a, "src0", why, why_size);
}

bool vk_check_gated(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    return vk_check_unary(ctx, op, why, why_size) && need_tensor(op->src[1], "src1", DTYPE_F32, why, why_size) &&
           need_same_shape(op->src[0], "src0", op->src[1], "src1", why, why_size);
}

bool vk_check_rope(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *x = op->src[0], *pos = op->src[1], *factors = op->src[2];
    if (!vk_check_unary(ctx, op, why, why_size) || !need_tensor(pos, "src1", DTYPE_I32, why, why_size))
        return false;
    int32_t n_rot = op->params.rope.n_rot;
    if (!need(x->ne[3] == 1, why, why_size, "src0 must be [head_dim, n_heads, n_tok]") ||
        !need(is_vector(pos, x->ne[2]), why, why_size, "src1 must hold %lld positions", (long long)x->ne[2]) ||
        !need(n_rot > 0 && n_rot % 2 == 0 && n_rot <= x->ne[0], why, why_size,
              "n_rot %d must be even and in (0, head_dim %lld]", n_rot, (long long)x->ne[0]))
        return false;
    if (factors && (!need_tensor(factors, "src2", DTYPE_F32, why, why_size) ||
                    !need(is_vector(factors, n_rot / 2), why, why_size, "src2 must hold n_rot/2 = %d factors",
                          n_rot / 2)))
        return false;
    return true;
}

bool vk_check_kv_store(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    const strata_tensor *rows = op->src[0], *pos = op->src[1], *cache = op->dst;
    if (!need_tensor(rows, "src0", DTYPE_F32, why, why_size) || !need_tensor(pos, "src1", DTYPE_I32, why, why_size) ||
        !need_cache(cache, "dst", why, why_size) || !need_small(cache, "dst", why, why_size))
        return false;
    return need(rows->ne[2] == 1 && rows->ne[3] == 1 && cache->ne[2] == 1 && cache->ne[3] == 1, why, why_size,
                "src0 and dst must be 2-D") &&
           need(rows->ne[0] == cache->ne[0], why, why_size, "src0 rows have %lld values, cache rows %lld",
                (long long)rows->ne[0], (long long)cache->ne[0]) &&
           need(is_vector(pos, rows->ne[1]), why, why_size, "src1 must hold %lld positions", (long long)rows->ne[1]);
}

bool vk_check_attention(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    const strata_tensor *q = op->src[0], *k = op->src[1], *v = op->src[2], *pos = op->src[3], *dst = op->dst;
    if (!need_tensor(q, "src0", DTYPE_F32, why, why_size) || !need_cache(k, "src1", why, why_size) ||
        !need_cache(v, "src2", why, why_size) || !need_tensor(pos, "src3", DTYPE_I32, why, why_size) ||
        !need_tensor(dst, "dst", DTYPE_F32, why, why_size) || !need_same_shape(q, "src0", dst, "dst", why, why_size) ||
        !need_same_shape(k, "src1", v, "src2", why, why_size) || !need_small(k, "src1", why, why_size) ||
        !need(k->dtype == v->dtype, why, why_size, "K and V caches differ in dtype"))
        return false;
    int64_t n_heads = q->ne[1], n_kv_heads = k->ne[1];
    return need(q->ne[3] == 1 && k->ne[3] == 1, why, why_size, "queries and caches must be 3-D") &&
           need(k->ne[0] == q->ne[0], why, why_size, "cache head_dim %lld differs from the queries' %lld",
                (long long)k->ne[0], (long long)q->ne[0]) &&
           need(q->ne[0] <= ATTENTION_MAX_HEAD_DIM, why, why_size, "head_dim %lld is above the shader's %d",
                (long long)q->ne[0], ATTENTION_MAX_HEAD_DIM) &&
           need(n_kv_heads > 0 && n_heads % n_kv_heads == 0, why, why_size,
                "%lld query heads are not a multiple of %lld kv heads", (long long)n_heads, (long long)n_kv_heads) &&
           need(is_vector(pos, q->ne[2]), why, why_size, "src3 must hold %lld positions", (long long)q->ne[2]) &&
           need(op->params.attention.n_kv >= 0 && op->params.attention.n_kv <= k->ne[2], why, why_size,
                "n_kv %lld is outside the cache's %lld rows", (long long)op->params.attention.n_kv,
                (long long)k->ne[2]) &&
           need(op->params.attention.sliding_window >= 0 && op->params.attention.softcap >= 0.0f, why, why_size,
                "sliding_window and softcap must not be negative");
}

bool vk_check_argmax(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    const strata_tensor *x = op->src[0], *dst = op->dst;
    if (!need_tensor(x, "src0", DTYPE_F32, why, why_size) || !need_tensor(dst, "dst", DTYPE_I32, why, why_size) ||
        !need_small(x, "src0", why, why_size))
        return false;
    return need(x->ne[0] > 0, why, why_size, "src0 rows are empty") &&
           need(is_vector(dst, tensor_row_count(x)), why, why_size, "dst must hold %lld indices",
                (long long)tensor_row_count(x));
}

static size_t float_type_bytes(strata_dtype dtype)
{
    return dtype == DTYPE_F32 ? 4 : dtype == DTYPE_F16 || dtype == DTYPE_BF16 ? 2 : 0;
}

/* Every stride of t is a whole number of elements (the shader indexes elements). */
static bool strides_in_elements(const strata_tensor *t)
{
    size_t size = float_type_bytes(t->dtype);
    for (int d = 0; d < STRATA_MAX_DIMS; d++)
        if (t->nb[d] % size != 0 || t->nb[d] / size >= ((size_t)1 << 31))
            return false;
    return true;
}

bool vk_check_copy(const vk_context *ctx, const backend_op *op, char *why, size_t why_size)
{
    (void)ctx;
    const strata_tensor *src = op->src[0], *dst = op->dst;
    return need(src != NULL && dst != NULL, why, why_size, "src0 or dst is missing") &&
           need(float_type_bytes(src->dtype) && float_type_bytes(dst->dtype), why, why_size,
                "copy converts between f32, f16 and bf16, not %s to %s", dtype_name(src->dtype),
                dtype_name(dst->dtype)) &&
           need(same_shape(src, dst) || (tensor_is_contiguous(src) && tensor_is_contiguous(dst) &&
                                         tensor_element_count(src) == tensor_element_count(dst)),
                why, why_size, "src0 and dst must have the same shape, or be contiguous with the same element count") &&
           need(strides_in_elements(src) && strides_in_elements(dst), why, why_size,
                "strides must be whole numbers of elements") &&
           need_small(src, "src0", why, why_size);
}
