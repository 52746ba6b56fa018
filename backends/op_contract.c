/* The op contracts of backend.h, checked once for every backend (see
 * op_contract.h). */
#include "op_contract.h"

#include <stdarg.h>
#include <stdio.h>

/* Returns ok; when it is false, writes the printf-style reason to why. */
bool op_need(bool ok, char *why, size_t why_size, const char *fmt, ...)
{
    if (!ok && why && why_size) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(why, why_size, fmt, args);
        va_end(args);
    }
    return ok;
}

const char *op_tensor_label(const strata_tensor *t, const char *role)
{
    return t && t->name ? t->name : role;
}

/* t is present, of dtype, contiguous. */
static bool need_tensor(const strata_tensor *t, const char *role, strata_dtype dtype, char *why, size_t why_size)
{
    return op_need(t != NULL, why, why_size, "%s is missing", role) &&
           op_need(t->dtype == dtype, why, why_size, "%s (%s) is %s, expected %s", role, op_tensor_label(t, role),
                dtype_name(t->dtype), dtype_name(dtype)) &&
           op_need(tensor_is_contiguous(t), why, why_size, "%s (%s) is not contiguous", role, op_tensor_label(t, role));
}

/* t is present, contiguous, and F16 or F32. */
static bool need_cache(const strata_tensor *t, const char *role, char *why, size_t why_size)
{
    return op_need(t != NULL, why, why_size, "%s is missing", role) &&
           op_need(t->dtype == DTYPE_F16 || t->dtype == DTYPE_F32, why, why_size, "%s (%s) is %s, expected f16 or f32",
                role, op_tensor_label(t, role), dtype_name(t->dtype)) &&
           op_need(tensor_is_contiguous(t), why, why_size, "%s (%s) is not contiguous", role, op_tensor_label(t, role));
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
    return op_need(same_shape(a, b), why, why_size,
                "%s [%lld, %lld, %lld, %lld] and %s [%lld, %lld, %lld, %lld] differ in shape", role_a,
                (long long)a->ne[0], (long long)a->ne[1], (long long)a->ne[2], (long long)a->ne[3], role_b,
                (long long)b->ne[0], (long long)b->ne[1], (long long)b->ne[2], (long long)b->ne[3]);
}

/* A weight (matmul) or embedding table (get_rows): present, of a dtype with
 * traits that is not an integer type, contiguous, 2-D. */
static bool need_weight(const strata_tensor *w, const char *role, char *why, size_t why_size)
{
    if (!op_need(w != NULL, why, why_size, "%s is missing", role))
        return false;
    const dtype_traits *traits = dtype_get_traits((int)w->dtype);
    bool is_integer = w->dtype == DTYPE_I8 || w->dtype == DTYPE_I16 || w->dtype == DTYPE_I32 || w->dtype == DTYPE_I64;
    return op_need(traits != NULL && !is_integer, why, why_size, "%s (%s) has dtype %s, which is not a weight format",
                   role, op_tensor_label(w, role), dtype_name(w->dtype)) &&
           op_need(tensor_is_contiguous(w), why, why_size, "%s (%s) is not contiguous", role, op_tensor_label(w, role)) &&
           op_need(w->ne[2] == 1 && w->ne[3] == 1, why, why_size, "%s (%s) must be 2-D", role, op_tensor_label(w, role));
}

/* A one-dimensional tensor of n elements. */
static bool is_vector(const strata_tensor *t, int64_t n)
{
    return t->ne[0] == n && t->ne[1] == 1 && t->ne[2] == 1 && t->ne[3] == 1;
}

static bool contract_get_rows(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *table = op->src[0], *ids = op->src[1], *dst = op->dst;
    if (!need_weight(table, "src0", why, why_size) ||
        !need_tensor(ids, "src1", DTYPE_I32, why, why_size) || !need_tensor(dst, "dst", DTYPE_F32, why, why_size))
        return false;
    return op_need(is_vector(ids, ids->ne[0]), why, why_size, "src1 must be 1-D") &&
           op_need(dst->ne[0] == table->ne[0] && dst->ne[1] == ids->ne[0] && dst->ne[2] == 1 && dst->ne[3] == 1, why,
                why_size, "dst must be [%lld, %lld]", (long long)table->ne[0], (long long)ids->ne[0]);
}

static bool contract_rms_norm(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *x = op->src[0], *weight = op->src[1], *dst = op->dst;
    if (!need_tensor(x, "src0", DTYPE_F32, why, why_size) || !need_tensor(dst, "dst", DTYPE_F32, why, why_size) ||
        !need_same_shape(x, "src0", dst, "dst", why, why_size))
        return false;
    if (weight && (!need_tensor(weight, "src1", DTYPE_F32, why, why_size) ||
                   !op_need(is_vector(weight, x->ne[0]), why, why_size, "src1 must be [%lld]", (long long)x->ne[0])))
        return false;
    return op_need(op->params.rms_norm.eps >= 0.0f, why, why_size, "eps is negative");
}

static bool contract_matmul(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *weight = op->src[0], *x = op->src[1], *dst = op->dst;
    if (!need_weight(weight, "src0 (weight)", why, why_size) ||
        !need_tensor(x, "src1", DTYPE_F32, why, why_size) || !need_tensor(dst, "dst", DTYPE_F32, why, why_size))
        return false;
    return op_need(x->ne[0] == weight->ne[0], why, why_size, "src1 has %lld inputs, weight %lld", (long long)x->ne[0],
                (long long)weight->ne[0]) &&
           op_need(dst->ne[0] == weight->ne[1] && dst->ne[1] == x->ne[1] && dst->ne[2] == x->ne[2] &&
                    dst->ne[3] == x->ne[3],
                why, why_size, "dst must be [%lld, %lld, %lld, %lld]", (long long)weight->ne[1], (long long)x->ne[1],
                (long long)x->ne[2], (long long)x->ne[3]);
}

static bool contract_binary(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *a = op->src[0], *b = op->src[1], *dst = op->dst;
    if (!need_tensor(a, "src0", DTYPE_F32, why, why_size) || !need_tensor(b, "src1", DTYPE_F32, why, why_size) ||
        !need_tensor(dst, "dst", DTYPE_F32, why, why_size) || !need_same_shape(a, "src0", dst, "dst", why, why_size))
        return false;
    return op_need(same_shape(a, b) || is_vector(b, a->ne[0]), why, why_size,
                "src1 must have the shape of src0 or be one row of %lld", (long long)a->ne[0]);
}

static bool contract_unary(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *a = op->src[0], *dst = op->dst;
    return need_tensor(a, "src0", DTYPE_F32, why, why_size) && need_tensor(dst, "dst", DTYPE_F32, why, why_size) &&
           need_same_shape(a, "src0", dst, "dst", why, why_size);
}

static bool contract_gated(const backend_op *op, char *why, size_t why_size)
{
    return contract_unary(op, why, why_size) && need_tensor(op->src[1], "src1", DTYPE_F32, why, why_size) &&
           need_same_shape(op->src[0], "src0", op->src[1], "src1", why, why_size);
}

static bool contract_rope(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *x = op->src[0], *pos = op->src[1], *factors = op->src[2];
    if (!contract_unary(op, why, why_size) || !need_tensor(pos, "src1", DTYPE_I32, why, why_size))
        return false;
    int32_t n_rot = op->params.rope.n_rot;
    if (!op_need(x->ne[3] == 1, why, why_size, "src0 must be [head_dim, n_heads, n_tok]") ||
        !op_need(is_vector(pos, x->ne[2]), why, why_size, "src1 must hold %lld positions", (long long)x->ne[2]) ||
        !op_need(n_rot > 0 && n_rot % 2 == 0 && n_rot <= x->ne[0], why, why_size,
              "n_rot %d must be even and in (0, head_dim %lld]", n_rot, (long long)x->ne[0]) ||
        !op_need(op->params.rope.attn_factor >= 0.0f && op->params.rope.attn_factor < 1e30f, why, why_size,
                 "attn_factor must be finite and not negative"))
        return false;
    if (factors && (!need_tensor(factors, "src2", DTYPE_F32, why, why_size) ||
                    !op_need(is_vector(factors, n_rot / 2), why, why_size, "src2 must hold n_rot/2 = %d factors", n_rot / 2)))
        return false;
    return true;
}

static bool contract_kv_store(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *rows = op->src[0], *pos = op->src[1], *cache = op->dst;
    if (!need_tensor(rows, "src0", DTYPE_F32, why, why_size) || !need_tensor(pos, "src1", DTYPE_I32, why, why_size) ||
        !need_cache(cache, "dst", why, why_size))
        return false;
    return op_need(rows->ne[2] == 1 && rows->ne[3] == 1 && cache->ne[2] == 1 && cache->ne[3] == 1, why, why_size,
                "src0 and dst must be 2-D") &&
           op_need(rows->ne[0] == cache->ne[0], why, why_size, "src0 rows have %lld values, cache rows %lld",
                (long long)rows->ne[0], (long long)cache->ne[0]) &&
           op_need(is_vector(pos, rows->ne[1]), why, why_size, "src1 must hold %lld positions", (long long)rows->ne[1]);
}

static bool contract_attention(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *q = op->src[0], *k = op->src[1], *v = op->src[2], *pos = op->src[3], *dst = op->dst;
    if (!need_tensor(q, "src0", DTYPE_F32, why, why_size) || !need_cache(k, "src1", why, why_size) ||
        !need_cache(v, "src2", why, why_size) || !need_tensor(pos, "src3", DTYPE_I32, why, why_size) ||
        !need_tensor(dst, "dst", DTYPE_F32, why, why_size) || !need_same_shape(q, "src0", dst, "dst", why, why_size) ||
        !need_same_shape(k, "src1", v, "src2", why, why_size))
        return false;
    int64_t n_heads = q->ne[1], n_kv_heads = k->ne[1];
    return op_need(q->ne[3] == 1 && k->ne[3] == 1, why, why_size, "queries and caches must be 3-D") &&
           op_need(k->ne[0] == q->ne[0], why, why_size, "cache head_dim %lld differs from the queries' %lld",
                (long long)k->ne[0], (long long)q->ne[0]) &&
           op_need(n_kv_heads > 0 && n_heads % n_kv_heads == 0, why, why_size,
                "%lld query heads are not a multiple of %lld kv heads", (long long)n_heads, (long long)n_kv_heads) &&
           op_need(is_vector(pos, q->ne[2]), why, why_size, "src3 must hold %lld positions", (long long)q->ne[2]) &&
           op_need(op->params.attention.n_kv >= 0 && op->params.attention.n_kv <= k->ne[2], why, why_size,
                "n_kv %lld is outside the cache's %lld rows", (long long)op->params.attention.n_kv,
                (long long)k->ne[2]) &&
           op_need(op->params.attention.sliding_window >= 0 && op->params.attention.softcap >= 0.0f, why, why_size,
                "sliding_window and softcap must not be negative");
}

static bool contract_argmax(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *x = op->src[0], *dst = op->dst;
    if (!need_tensor(x, "src0", DTYPE_F32, why, why_size) || !need_tensor(dst, "dst", DTYPE_I32, why, why_size))
        return false;
    return op_need(x->ne[0] > 0, why, why_size, "src0 rows are empty") &&
           op_need(is_vector(dst, tensor_row_count(x)), why, why_size, "dst must hold %lld indices",
                (long long)tensor_row_count(x));
}

static bool is_float_type(strata_dtype dtype)
{
    return dtype == DTYPE_F32 || dtype == DTYPE_F16 || dtype == DTYPE_BF16;
}

static bool contract_copy(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *src = op->src[0], *dst = op->dst;
    return op_need(src != NULL && dst != NULL, why, why_size, "src0 or dst is missing") &&
           op_need(is_float_type(src->dtype) && is_float_type(dst->dtype), why, why_size,
                "copy converts between f32, f16 and bf16, not %s to %s", dtype_name(src->dtype),
                dtype_name(dst->dtype)) &&
           op_need(same_shape(src, dst) || (tensor_is_contiguous(src) && tensor_is_contiguous(dst) &&
                                         tensor_element_count(src) == tensor_element_count(dst)),
                why, why_size, "src0 and dst must have the same shape, or be contiguous with the same element count");
}

/* OP_TOPK: ids [k, n_tok] I32 from src0 [n_expert, n_tok] F32, 1 <= k <= n_expert. */
static bool contract_topk(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *x = op->src[0], *dst = op->dst;
    if (!need_tensor(x, "src0", DTYPE_F32, why, why_size) || !need_tensor(dst, "dst", DTYPE_I32, why, why_size))
        return false;
    return op_need(x->ne[2] == 1 && x->ne[3] == 1 && dst->ne[2] == 1 && dst->ne[3] == 1, why, why_size,
                   "src0 and dst must be 2-D") &&
           op_need(dst->ne[0] >= 1 && dst->ne[0] <= x->ne[0], why, why_size, "k %lld is outside [1, %lld]",
                   (long long)dst->ne[0], (long long)x->ne[0]) &&
           op_need(dst->ne[1] == x->ne[1], why, why_size, "dst has %lld columns, src0 %lld", (long long)dst->ne[1],
                   (long long)x->ne[1]);
}

/* ids [k, n_tok] I32 for n_tok columns, k <= n_expert. */
static bool need_ids(const strata_tensor *ids, const char *role, int64_t n_expert, int64_t n_tok, char *why,
                     size_t why_size)
{
    return need_tensor(ids, role, DTYPE_I32, why, why_size) &&
           op_need(ids->ne[2] == 1 && ids->ne[3] == 1 && ids->ne[1] == n_tok, why, why_size,
                   "%s must be [k, %lld]", role, (long long)n_tok) &&
           op_need(ids->ne[0] >= 1 && ids->ne[0] <= n_expert, why, why_size, "%s: k %lld is outside [1, %lld]", role,
                   (long long)ids->ne[0], (long long)n_expert);
}

/* OP_MOE_WEIGHTS: dst [k, n_tok] F32 = probabilities src0 [n_expert, n_tok] at ids src1 [k, n_tok]. */
static bool contract_moe_weights(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *p = op->src[0], *ids = op->src[1], *dst = op->dst;
    if (!need_tensor(p, "src0", DTYPE_F32, why, why_size) || !need_tensor(dst, "dst", DTYPE_F32, why, why_size) ||
        !op_need(p->ne[2] == 1 && p->ne[3] == 1, why, why_size, "src0 must be 2-D") ||
        !need_ids(ids, "src1", p->ne[0], p->ne[1], why, why_size))
        return false;
    return need_same_shape(ids, "src1", dst, "dst", why, why_size);
}

/* The experts' weights of OP_MATMUL_ID: a weight format, contiguous, 3-D. */
static bool need_expert_weights(const strata_tensor *w, char *why, size_t why_size)
{
    if (!op_need(w != NULL, why, why_size, "src0 is missing"))
        return false;
    strata_tensor slab = *w; /* one expert's matrix passes the 2-D weight checks */
    slab.ne[2] = 1;
    slab.nb[3] = slab.nb[2];
    return need_weight(&slab, "src0 (experts)", why, why_size) &&
           op_need(tensor_is_contiguous(w), why, why_size, "src0 (%s) is not contiguous", op_tensor_label(w, "src0")) &&
           op_need(w->ne[2] >= 1 && w->ne[3] == 1, why, why_size, "src0 (%s) must be [n_in, n_out, n_expert]",
                   op_tensor_label(w, "src0"));
}

/* OP_MATMUL_ID: dst [n_out, k, n_tok] = experts src0 [n_in, n_out, n_expert]
 * at ids src2 [k, n_tok] times src1 [n_in, k or 1, n_tok]. */
static bool contract_matmul_id(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *w = op->src[0], *x = op->src[1], *ids = op->src[2], *dst = op->dst;
    if (!need_expert_weights(w, why, why_size) || !need_tensor(x, "src1", DTYPE_F32, why, why_size) ||
        !need_tensor(dst, "dst", DTYPE_F32, why, why_size) ||
        !need_ids(ids, "src2", w->ne[2], x->ne[2], why, why_size))
        return false;
    int64_t k = ids->ne[0];
    return op_need(x->ne[0] == w->ne[0], why, why_size, "src1 has %lld inputs, the experts %lld", (long long)x->ne[0],
                   (long long)w->ne[0]) &&
           op_need((x->ne[1] == k || x->ne[1] == 1) && x->ne[3] == 1, why, why_size,
                   "src1 must be [%lld, %lld or 1, n_tok]", (long long)w->ne[0], (long long)k) &&
           op_need(dst->ne[0] == w->ne[1] && dst->ne[1] == k && dst->ne[2] == x->ne[2] && dst->ne[3] == 1, why,
                   why_size, "dst must be [%lld, %lld, %lld]", (long long)w->ne[1], (long long)k, (long long)x->ne[2]);
}

/* OP_MOE_SUM: dst [n, n_tok] = sum_j src1[j, t] src0[:, j, t]. */
static bool contract_moe_sum(const backend_op *op, char *why, size_t why_size)
{
    const strata_tensor *y = op->src[0], *weights = op->src[1], *dst = op->dst;
    if (!need_tensor(y, "src0", DTYPE_F32, why, why_size) || !need_tensor(weights, "src1", DTYPE_F32, why, why_size) ||
        !need_tensor(dst, "dst", DTYPE_F32, why, why_size))
        return false;
    return op_need(y->ne[3] == 1 && weights->ne[0] == y->ne[1] && weights->ne[1] == y->ne[2] && weights->ne[2] == 1 &&
                       weights->ne[3] == 1,
                   why, why_size, "src1 must be [%lld, %lld]", (long long)y->ne[1], (long long)y->ne[2]) &&
           op_need(dst->ne[0] == y->ne[0] && dst->ne[1] == y->ne[2] && dst->ne[2] == 1 && dst->ne[3] == 1, why,
                   why_size, "dst must be [%lld, %lld]", (long long)y->ne[0], (long long)y->ne[2]);
}

bool op_contract_check(const backend_op *op, char *why, size_t why_size)
{
    switch (op->kind) {
    case OP_GET_ROWS: return contract_get_rows(op, why, why_size);
    case OP_RMS_NORM: return contract_rms_norm(op, why, why_size);
    case OP_MATMUL: return contract_matmul(op, why, why_size);
    case OP_ADD:
    case OP_MUL: return contract_binary(op, why, why_size);
    case OP_SCALE:
    case OP_SOFTMAX: return contract_unary(op, why, why_size);
    case OP_SWIGLU:
    case OP_GEGLU: return contract_gated(op, why, why_size);
    case OP_ROPE: return contract_rope(op, why, why_size);
    case OP_KV_STORE: return contract_kv_store(op, why, why_size);
    case OP_ATTENTION: return contract_attention(op, why, why_size);
    case OP_ARGMAX: return contract_argmax(op, why, why_size);
    case OP_COPY: return contract_copy(op, why, why_size);
    case OP_TOPK: return contract_topk(op, why, why_size);
    case OP_MOE_WEIGHTS: return contract_moe_weights(op, why, why_size);
    case OP_MATMUL_ID: return contract_matmul_id(op, why, why_size);
    case OP_MOE_SUM: return contract_moe_sum(op, why, why_size);
    case OP_COUNT_: break;
    }
    return op_need(false, why, why_size, "op %d is not an op of backend.h", (int)op->kind);
}
