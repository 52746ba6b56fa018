/* The mixture-of-experts ops (backend.h): the router's top-k, the chosen
 * experts' weights, the expert matmul and the weighted sum.
 *
 * The expert matmul groups the (token, slot) pairs by expert and runs each
 * expert's matrix once over its tokens through the same kernels as OP_MATMUL
 * (cpu_matmul_compute: dot products at one token, tiles past it), so an
 * expert's bytes are read once per op and an unchosen expert's not at all.
 * A pair alone with its expert (every pair at decode) is computed in place;
 * several are gathered into ctx->experts and their results scattered back. */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"

/* The ids of column t: each in [0, n_expert) and distinct, else an error
 * naming the first bad one. */
static strata_status check_ids(const int32_t *ids, int64_t k, int64_t n_tok, int64_t n_expert, const char *op,
                               strata_error *err)
{
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t j = 0; j < k; j++) {
            int32_t id = ids[t * k + j];
            if (id < 0 || id >= n_expert)
                return strata_fail(err, STRATA_INVALID_INPUT, "cpu %s: expert id %d (slot %lld of token %lld) is outside [0, %lld)",
                                   op, id, (long long)j, (long long)t, (long long)n_expert);
            for (int64_t i = 0; i < j; i++)
                if (ids[t * k + i] == id)
                    return strata_fail(err, STRATA_INVALID_INPUT, "cpu %s: expert id %d appears twice for token %lld",
                                       op, id, (long long)t);
        }
    return STRATA_OK;
}

strata_status cpu_run_topk(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)ctx;
    (void)err;
    const strata_tensor *x = op->src[0];
    const float *values = cpu_tensor_data(x);
    int32_t *ids = cpu_tensor_data(op->dst);
    int64_t n = x->ne[0], k = op->dst->ne[0];
    for (int64_t t = 0; t < x->ne[1]; t++) {
        const float *column = values + t * n;
        int32_t *top = ids + t * k;
        int64_t filled = 0;
        /* insertion into a list kept in decreasing order; an equal value goes
         * after those already there, so the lower index comes first */
        for (int64_t i = 0; i < n; i++) {
            float v = column[i];
            int64_t at = filled;
            while (at > 0 && v > column[top[at - 1]])
                at--;
            if (at >= k)
                continue;
            int64_t last = filled < k ? filled : k - 1;
            for (int64_t m = last; m > at; m--)
                top[m] = top[m - 1];
            top[at] = (int32_t)i;
            if (filled < k)
                filled++;
        }
    }
    return STRATA_OK;
}

strata_status cpu_run_moe_weights(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)ctx;
    const strata_tensor *p = op->src[0], *ids_t = op->src[1];
    const float *probs = cpu_tensor_data(p);
    const int32_t *ids = cpu_tensor_data(ids_t);
    float *dst = cpu_tensor_data(op->dst);
    int64_t n_expert = p->ne[0], k = ids_t->ne[0], n_tok = ids_t->ne[1];
    strata_status status = check_ids(ids, k, n_tok, n_expert, "moe_weights", err);
    if (status != STRATA_OK)
        return status;
    for (int64_t t = 0; t < n_tok; t++) {
        float sum = 0.0f;
        for (int64_t j = 0; j < k; j++) {
            dst[t * k + j] = probs[t * n_expert + ids[t * k + j]];
            sum += dst[t * k + j];
        }
        if (op->params.moe_weights.normalize)
            for (int64_t j = 0; j < k; j++)
                dst[t * k + j] /= sum;
    }
    return STRATA_OK;
}

strata_status cpu_run_moe_sum(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    (void)ctx;
    (void)err;
    const strata_tensor *y_t = op->src[0];
    const float *y = cpu_tensor_data(y_t), *weights = cpu_tensor_data(op->src[1]);
    float *dst = cpu_tensor_data(op->dst);
    int64_t n = y_t->ne[0], k = y_t->ne[1], n_tok = y_t->ne[2];
    bool sigmoid = op->params.moe_sum.sigmoid;
    for (int64_t t = 0; t < n_tok; t++) {
        float *out = dst + t * n;
        const float *w = weights + t * k;
        for (int64_t i = 0; i < n; i++)
            out[i] = 0.0f;
        for (int64_t j = 0; j < k; j++) {
            const float *column = y + (t * k + j) * n;
            float weight = sigmoid ? 1.0f / (1.0f + expf(-w[j])) : w[j];
            for (int64_t i = 0; i < n; i++)
                out[i] += weight * column[i];
        }
    }
    return STRATA_OK;
}

strata_status cpu_run_matmul_id(cpu_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *experts = op->src[0], *x_t = op->src[1], *ids_t = op->src[2];
    const int32_t *ids = cpu_tensor_data(ids_t);
    const float *x = cpu_tensor_data(x_t);
    float *dst = cpu_tensor_data(op->dst);
    int64_t n_in = experts->ne[0], n_out = experts->ne[1], n_expert = experts->ne[2];
    int64_t k = ids_t->ne[0], n_tok = ids_t->ne[1], k_x = x_t->ne[1];
    strata_status status = check_ids(ids, k, n_tok, n_expert, "matmul_id", err);
    if (status != STRATA_OK)
        return status;

    /* the most pairs one expert has (its ids are distinct per token, so at most n_tok) */
    int64_t most = 0;
    for (int64_t e = 0; e < n_expert; e++) {
        int64_t count = 0;
        for (int64_t i = 0; i < k * n_tok; i++)
            count += ids[i] == e;
        most = count > most ? count : most;
    }
    float *gathered = NULL, *results = NULL;
    if (most > 1) {
        size_t floats = (size_t)most * (size_t)(n_in + n_out);
        if ((status = cpu_scratch_reserve(ctx, &ctx->experts, floats * sizeof(float), err)))
            return status;
        gathered = ctx->experts.data;
        results = gathered + most * n_in;
    }

    cpu_matmul_operands m = {
        .dtype = experts->dtype,
        .weight_row_bytes = experts->nb[1],
        .n_in = n_in,
        .n_out = n_out,
    };
    for (int64_t e = 0; e < n_expert; e++) {
        int64_t count = 0, last = -1;
        for (int64_t i = 0; i < k * n_tok; i++)
            if (ids[i] == e) {
                int64_t t = i / k, j = i % k;
                last = i;
                if (gathered)
                    memcpy(gathered + count * n_in, x + (t * k_x + (k_x == 1 ? 0 : j)) * n_in,
                           (size_t)n_in * sizeof(float));
                count++;
            }
        if (count == 0)
            continue;
        m.weight = (const char *)cpu_tensor_data(experts) + (size_t)e * experts->nb[2];
        m.n_tok = count;
        if (count == 1) { /* in place: the pair's own column in and out */
            int64_t t = last / k, j = last % k;
            m.x = x + (t * k_x + (k_x == 1 ? 0 : j)) * n_in;
            m.dst = dst + last * n_out;
        } else {
            m.x = gathered;
            m.dst = results;
        }
        if ((status = cpu_matmul_compute(ctx, &m, err)))
            return status;
        if (count == 1)
            continue;
        int64_t c = 0;
        for (int64_t i = 0; i < k * n_tok; i++)
            if (ids[i] == e)
                memcpy(dst + i * n_out, results + (c++) * n_out, (size_t)n_out * sizeof(float));
    }
    return STRATA_OK;
}
