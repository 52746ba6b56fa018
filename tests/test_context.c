/* Inference contexts on the bundled stories260K model: batch and one-token
 * decoding agree, a reset context repeats itself exactly, a truncated one
 * continues as a fresh one would, and misuse (context
 * overflow, ids outside the vocabulary, bad parameters, missing files) is an
 * error that leaves the context usable. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"

#include "test_check.h"

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= worst))
            worst = d; /* also catches NaN */
    }
    return worst;
}

int main(void)
{
    strata_error err = {0};
    strata_model *model = NULL;
    strata_model_params model_params = {.path = STRATA_MODELS_DIR "/stories260K.gguf", .backend = "cpu"};
    if (strata_model_load(&model_params, &model, &err) != STRATA_OK) {
        printf("FAIL: load: %s\n", err.message);
        return 1;
    }
    const strata_hparams *hp = strata_model_hparams(model);
    CHECK(hp->n_vocab == 512 && hp->n_layer == 5 && hp->n_embd == 64 && hp->n_head == 8 && hp->n_head_kv == 4,
          "stories260K hyper-parameters: vocab %lld layers %lld embd %lld heads %lld/%lld", (long long)hp->n_vocab,
          (long long)hp->n_layer, (long long)hp->n_embd, (long long)hp->n_head, (long long)hp->n_head_kv);

    enum { N = 12 };
    const int32_t tokens[N] = {1, 403, 407, 261, 378, 275, 370, 302, 260, 334, 300, 44};
    strata_context_params params = strata_context_default_params();
    params.n_ctx = 16;
    params.max_batch = 5; /* forces three chunks for the batch run */
    params.kv_dtype = DTYPE_F32;
    strata_context *batch = NULL, *stepwise = NULL;
    if (strata_context_create(model, &params, &batch, &err) != STRATA_OK ||
        strata_context_create(model, &params, &stepwise, &err) != STRATA_OK) {
        printf("FAIL: context: %s\n", err.message);
        return 1;
    }
    int64_t n_vocab = hp->n_vocab;
    float *all = malloc(sizeof(float) * N * (size_t)n_vocab);
    CHECK(strata_decode(batch, tokens, N, true, &err) == STRATA_OK, "batch decode: %s", err.message);
    for (int i = 0; i < N; i++)
        memcpy(all + (size_t)i * n_vocab, strata_get_logits(batch, i), sizeof(float) * (size_t)n_vocab);
    CHECK(strata_context_position(batch) == N, "position after batch decode");

    /* one token at a time gives the same logits (f32 cache: only summation
     * order differs) */
    double worst = 0;
    for (int i = 0; i < N; i++) {
        CHECK(strata_decode(stepwise, &tokens[i], 1, false, &err) == STRATA_OK, "step %d: %s", i, err.message);
        const float *row = strata_get_logits(stepwise, 0);
        CHECK(row != NULL, "no logits after a one-token decode");
        if (row) {
            double d = max_abs_diff(row, all + (size_t)i * n_vocab, n_vocab);
            if (!(d <= worst))
                worst = d;
        }
    }
    printf("batch vs one-token decode: max |diff| = %.3g\n", worst);
    CHECK(worst < 1e-4, "batch and one-token logits differ by %.3g", worst);

    /* overflow: 5 more tokens do not fit in 16 - 12 = 4; nothing changes */
    CHECK(strata_decode(batch, tokens, 5, false, &err) == STRATA_INVALID_INPUT, "overflow was accepted");
    CHECK(strata_context_position(batch) == N, "a rejected decode moved the position");
    CHECK(strata_decode(batch, tokens, 4, false, &err) == STRATA_OK, "4 tokens should still fit: %s", err.message);

    /* an id outside the vocabulary is rejected before any work */
    strata_context_reset(batch);
    const int32_t bad_tokens[2] = {1, 512};
    CHECK(strata_decode(batch, bad_tokens, 2, false, &err) == STRATA_INVALID_INPUT && strstr(err.message, "512"),
          "id 512 was accepted (%s)", err.message);
    CHECK(strata_context_position(batch) == 0, "a rejected decode moved the position");

    /* reset gives exactly the same logits again */
    CHECK(strata_decode(batch, tokens, N, true, &err) == STRATA_OK, "decode after reset: %s", err.message);
    double repeat = 0;
    for (int i = 0; i < N; i++) {
        double d = max_abs_diff(strata_get_logits(batch, i), all + (size_t)i * n_vocab, n_vocab);
        if (!(d <= repeat))
            repeat = d;
    }
    CHECK(repeat == 0, "a reset context gave different logits (%.3g)", repeat);

    /* truncating keeps a prefix: after tokens[0..7) plus another tail, a
     * context cut back to 7 positions and given a different tail computes
     * what a fresh one computes for the prefix and that tail (same chunks:
     * the same logits exactly) */
    enum { KEEP = 7, TAIL = 4 };
    const int32_t other_tail[TAIL] = {290, 311, 263, 400};
    strata_context_reset(batch);
    CHECK(strata_decode(batch, tokens, KEEP, false, &err) == STRATA_OK, "prefix: %s", err.message);
    CHECK(strata_decode(batch, other_tail, TAIL, true, &err) == STRATA_OK, "other tail: %s", err.message);
    float *fresh_tail = malloc(sizeof(float) * TAIL * (size_t)n_vocab);
    for (int i = 0; i < TAIL; i++)
        memcpy(fresh_tail + (size_t)i * n_vocab, strata_get_logits(batch, i), sizeof(float) * (size_t)n_vocab);
    strata_context_reset(batch);
    CHECK(strata_decode(batch, tokens, KEEP, false, &err) == STRATA_OK, "prefix again: %s", err.message);
    CHECK(strata_decode(batch, tokens + KEEP, N - KEEP, false, &err) == STRATA_OK, "first tail: %s", err.message);
    CHECK(strata_context_truncate(batch, N + 1, &err) == STRATA_INVALID_INPUT &&
              strata_context_position(batch) == N,
          "keeping more positions than the cache holds was accepted");
    CHECK(strata_context_truncate(batch, -1, &err) == STRATA_INVALID_INPUT, "a negative truncation was accepted");
    CHECK(strata_context_truncate(batch, KEEP, &err) == STRATA_OK, "truncate: %s", err.message);
    CHECK(strata_context_position(batch) == KEEP, "position after truncate: %lld",
          (long long)strata_context_position(batch));
    CHECK(strata_get_logits(batch, N - KEEP - 1) == NULL, "the logits of the cut decode are still offered");
    CHECK(strata_decode(batch, other_tail, TAIL, true, &err) == STRATA_OK, "tail after truncate: %s", err.message);
    double cut = 0;
    for (int i = 0; i < TAIL; i++) {
        double d = max_abs_diff(strata_get_logits(batch, i), fresh_tail + (size_t)i * n_vocab, n_vocab);
        if (!(d <= cut))
            cut = d;
    }
    CHECK(cut == 0, "a truncated context gave different logits than a fresh one (%.3g)", cut);
    free(fresh_tail);

    /* an f16 cache stays close to the f32 one */
    strata_context *half = NULL;
    params.kv_dtype = DTYPE_F16;
    CHECK(strata_context_create(model, &params, &half, &err) == STRATA_OK, "f16 context: %s", err.message);
    if (half) {
        CHECK(strata_decode(half, tokens, N, false, &err) == STRATA_OK, "f16 decode: %s", err.message);
        double d = max_abs_diff(strata_get_logits(half, N - 1), all + (size_t)(N - 1) * n_vocab, n_vocab);
        printf("f16 vs f32 cache, last position: max |diff| = %.3g\n", d);
        CHECK(d < 0.05, "f16 cache logits differ by %.3g", d);
    }
    strata_context_free(half);

    /* bad parameters and files */
    strata_context *none = NULL;
    params.kv_dtype = DTYPE_Q4_0;
    CHECK(strata_context_create(model, &params, &none, &err) == STRATA_UNSUPPORTED, "q4_0 KV cache was accepted");
    params.kv_dtype = DTYPE_F16;
    params.n_ctx = -3;
    CHECK(strata_context_create(model, &params, &none, &err) == STRATA_INVALID_INPUT, "negative context accepted");
    strata_model *missing = NULL;
    strata_model_params missing_params = {.path = STRATA_TEST_DATA_DIR "/no-such-model.gguf"};
    CHECK(strata_model_load(&missing_params, &missing, &err) == STRATA_IO && missing == NULL,
          "a missing file did not give an i/o error (%s)", err.message);
    strata_model_params bad_backend = model_params;
    bad_backend.backend = "nonsense";
    CHECK(strata_model_load(&bad_backend, &missing, &err) == STRATA_INVALID_INPUT, "unknown backend accepted");

    free(all);
    strata_context_free(batch);
    strata_context_free(stepwise);
    strata_model_free(model);
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
