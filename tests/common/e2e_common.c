#include "e2e_common.h"

#include "context.h"
#include "reference_forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const int32_t e2e_byte_prompt[] = {256, 72, 101, 108, 108, 111, 44, 32, 119, 111};
const int64_t e2e_byte_prompt_len = sizeof e2e_byte_prompt / sizeof e2e_byte_prompt[0];
const int32_t e2e_stories_prompt[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421};
const int64_t e2e_stories_prompt_len = sizeof e2e_stories_prompt / sizeof e2e_stories_prompt[0];

const char *const e2e_archs[E2E_ARCH_COUNT] = {"llama", "qwen2", "qwen3"};

const e2e_type_bound e2e_type_bounds[] = {
    {"f32", 1e-9},    {"f16", 1e-6},    {"bf16", 1e-6},   {"q8_0", 3e-3},   {"q4_0", 3e-3},    {"q4_1", 3e-3},
    {"q5_0", 3e-3},   {"q5_1", 3e-3},   {"q2_k", 3e-3},   {"q3_k", 3e-3},   {"q4_k", 3e-3},    {"q5_k", 3e-3},
    {"q6_k", 3e-3},   {"q4_k_m", 3e-3}, {"q4_k_s", 3e-3}, {"q5_k_m", 3e-3}, {"q3_k_m", 3e-3}, {"q2_k_mix", 3e-3},
};
const size_t e2e_type_bound_count = sizeof e2e_type_bounds / sizeof e2e_type_bounds[0];

const e2e_type_bound e2e_lowbit_type_bounds[] = {
    {"iq2_xxs", 3e-3}, {"iq2_xs", 3e-3},     {"iq2_s", 3e-3}, {"iq3_xxs", 3e-3},    {"iq3_s", 3e-3},
    {"iq1_s", 3e-3},   {"iq1_m", 3e-3},      {"iq4_nl", 3e-3}, {"iq4_xs", 3e-3},    {"mxfp4", 3e-3},
    {"tq1_0", 3e-3},   {"tq2_0", 3e-3},      {"iq2_xs_mix", 3e-3}, {"iq3_m", 3e-3}, {"iq4_xs_mix", 3e-3},
};
const size_t e2e_lowbit_type_bound_count = sizeof e2e_lowbit_type_bounds / sizeof e2e_lowbit_type_bounds[0];

int64_t e2e_argmax_float(const float *values, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (values[i] > values[best])
            best = i;
    return best;
}

void e2e_compare_row(const float *got, const double *want, int64_t n_vocab, double nmse_max, e2e_comparison *c)
{
    double err_sq = 0.0, ref_sq = 0.0;
    int64_t want_best = 0;
    for (int64_t i = 0; i < n_vocab; i++) {
        double d = (double)got[i] - want[i];
        err_sq += d * d;
        ref_sq += want[i] * want[i];
        if (want[i] > want[want_best])
            want_best = i;
    }
    double nmse = ref_sq > 0 ? err_sq / ref_sq : err_sq;
    if (!(nmse <= c->worst_nmse)) /* NaN counts as worst */
        c->worst_nmse = nmse;
    int64_t got_best = e2e_argmax_float(got, n_vocab);
    c->argmax_rows++;
    if (got_best == want_best) {
        c->argmax_agree++;
        return;
    }
    /* a different greedy token is fine only where the reference nearly ties */
    double tie_margin = 4.0 * sqrt(nmse_max * ref_sq / (double)n_vocab);
    if (want[want_best] - want[got_best] > tie_margin)
        c->argmax_ok = false;
}

strata_status e2e_run_and_compare(strata_model *model, strata_dtype kv_dtype, bool one_at_a_time, int64_t n_ctx,
                                  const int32_t *tokens, int64_t n_tokens, const double *ref_logits, int64_t n_vocab,
                                  double nmse_max, e2e_comparison *c, float *kept, strata_error *err)
{
    strata_context *ctx = NULL;
    strata_context_params params = strata_context_default_params();
    params.n_ctx = n_ctx;
    params.kv_dtype = kv_dtype;
    *c = (e2e_comparison){.argmax_ok = true};
    strata_status status = strata_context_create(model, &params, &ctx, err);
    if (status != STRATA_OK)
        goto fail;
    for (int64_t t = 0; t < n_tokens;) {
        int64_t n = one_at_a_time ? 1 : n_tokens;
        if ((status = strata_decode(ctx, &tokens[t], n, !one_at_a_time, err)))
            goto fail;
        for (int64_t i = 0; i < n; i++, t++) {
            const float *logits = strata_get_logits(ctx, one_at_a_time ? 0 : i);
            if (ref_logits)
                e2e_compare_row(logits, ref_logits + t * n_vocab, n_vocab, nmse_max, c);
            if (kept)
                memcpy(kept + t * n_vocab, logits, (size_t)n_vocab * sizeof(float));
        }
    }
fail:
    strata_context_free(ctx);
    return status;
}

bool e2e_check_model_placed(const strata_model_params *model_params, const char *label, const int32_t *tokens,
                            int64_t n_tokens, double nmse_max, e2e_placement_report *report)
{
    strata_error err = {0};
    reference_model *ref = NULL;
    strata_model *model = NULL;
    double *ref_logits = NULL;
    e2e_comparison batch = {0}, single = {0};
    bool ok = false;
    const char *path = model_params->path;
    strata_status status = reference_model_load(path, &ref, &err);
    if (status != STRATA_OK)
        goto fail;
    int64_t n_vocab = reference_model_n_vocab(ref);
    ref_logits = malloc((size_t)(n_tokens * n_vocab) * sizeof *ref_logits);
    if (!ref_logits) {
        status = strata_fail(&err, STRATA_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    if ((status = reference_forward(ref, tokens, n_tokens, ref_logits, &err)))
        goto fail;
    if ((status = strata_model_load(model_params, &model, &err)))
        goto fail;
    double single_max = nmse_max > E2E_KV_F16_NMSE_FLOOR ? nmse_max : E2E_KV_F16_NMSE_FLOOR;
    if ((status = e2e_run_and_compare(model, DTYPE_F32, false, 64, tokens, n_tokens, ref_logits, n_vocab, nmse_max,
                                  &batch, NULL, &err)) ||
        (status = e2e_run_and_compare(model, DTYPE_F16, true, 64, tokens, n_tokens, ref_logits, n_vocab, single_max,
                                  &single, NULL, &err)))
        goto fail;
    ok = batch.worst_nmse <= nmse_max && single.worst_nmse <= single_max && batch.argmax_ok &&
              single.argmax_ok;
    if (report) {
        const strata_plan *plan = strata_model_plan(model);
        report->within_budget = true;
        report->within_plan = true;
        for (int d = 0; d < plan->n_devices; d++) {
            uint64_t allocated, peak;
            strata_model_device_usage(model, d, &allocated, &peak);
            if (peak > plan->devices[d].budget_bytes)
                report->within_budget = false;
            if (peak > plan->devices[d].planned_bytes) {
                report->within_plan = false;
                printf("  %s: counted peak %llu bytes, planned %llu\n", plan->devices[d].name,
                       (unsigned long long)peak, (unsigned long long)plan->devices[d].planned_bytes);
            }
            report->peak_bytes[d] = peak;
        }
        report->n_devices = plan->n_devices;
    }
    printf("%-32s %12.3e %12.3e %9d/%-3d %9d/%-3d %10.0e  %s\n", label, batch.worst_nmse, single.worst_nmse,
           batch.argmax_agree, batch.argmax_rows, single.argmax_agree, single.argmax_rows, nmse_max,
           ok ? "ok" : "FAIL");
fail:
    if (status != STRATA_OK) {
        printf("%-32s error: %s\n", label, err.message);
        ok = false;
    }
    strata_model_free(model);
    reference_model_free(ref);
    free(ref_logits);
    return ok;
}

bool e2e_check_model(const char *backend, const char *label, const char *path, const int32_t *tokens,
                     int64_t n_tokens, double nmse_max)
{
    strata_model_params params = {.path = path, .backend = backend};
    return e2e_check_model_placed(&params, label, tokens, n_tokens, nmse_max, NULL);
}

bool e2e_check_handoffs(const strata_model_params *params, const char *label, const int32_t *tokens,
                        int64_t n_tokens, bool at_most)
{
    strata_error err = {0};
    strata_model *model = NULL;
    strata_context *ctx = NULL;
    bool ok = false;
    strata_context_params ctx_params = strata_context_default_params();
    ctx_params.n_ctx = 64;
    if (strata_model_load(params, &model, &err) || strata_context_create(model, &ctx_params, &ctx, &err) ||
        strata_decode(ctx, tokens, n_tokens - 1, false, &err)) {
        printf("FAIL: %s: %s\n", label, err.message);
        goto done;
    }
    uint64_t before = strata_context_handoff_count(ctx);
    if (strata_decode(ctx, &tokens[n_tokens - 1], 1, false, &err) != STRATA_OK) {
        printf("FAIL: %s: decoding one token: %s\n", label, err.message);
        goto done;
    }
    uint64_t made = strata_context_handoff_count(ctx) - before;
    int planned = strata_model_plan(model)->n_handoffs;
    ok = at_most ? made <= (uint64_t)planned : made == (uint64_t)planned;
    printf("%-40s hand-offs per token: %llu (plan: %s%d)%s\n", label, (unsigned long long)made, at_most ? "at most " : "",
           planned, ok ? "" : "  FAIL");
done:
    strata_context_free(ctx);
    strata_model_free(model);
    return ok;
}
