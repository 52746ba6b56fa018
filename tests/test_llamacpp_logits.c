/* Files quantized by llama.cpp's own llama-quantize: strata loads them and
 * gives llama.cpp's logits.
 *
 * tests/data/llamacpp/ (written by tests/tools/make_llamacpp_fixtures.py; see
 * the README there) holds, per low-bit format, a tiny llama (2 layers, n_embd
 * 256, the byte vocabulary, random weights) that llama-quantize quantized
 * with an importance matrix and its own mix for that format, the logits
 * llama.cpp computed on it for every position of a 44-token prompt, and a
 * checksum of the gguf Python package's dequantization of every tensor. For
 * each file:
 *   1. strata's dequantization of every tensor (quant_dequantize_row) has the
 *      gguf package's checksum: bit-exact on blocks that llama.cpp's
 *      quantizers chose (with an importance matrix), not strata's;
 *   2. strata (CPU backend) decodes the prompt a token at a time with an f16
 *      KV cache (as llama.cpp's) and as one batch with an f32 cache; every
 *      row of logits is compared with llama.cpp's by normalized MSE
 *      (sum (a - b)^2 / sum b^2) and greedy argmax (a different token only
 *      where llama.cpp's two logits nearly tie, as in test_e2e_logits);
 *   3. strata against the double-precision reference (reference_forward.c,
 *      which dequantizes with the code checked in 1), as test_e2e_logits does
 *      for the files strata's own quantizers write.
 *
 * Bounds. Both programs quantize the activations of every dot product with
 * a block-format weight to 8 bits (Q8_K, or Q8_0 for IQ4_NL and MXFP4) the
 * same way and sum in f32; llama.cpp keeps K and V in f16 and its CPU flash
 * attention also rounds Q and the V accumulator to f16.
 *   - Position 0 of the f16-cache pass: attention is the identity on V there,
 *     so both do the same arithmetic up to the order of f32 sums: 4e-15 ..
 *     1e-13 measured over the 12 files (0 for MXFP4). Bound 1e-5: a kernel or
 *     activation quantizer that computes anything else lands far above it
 *     (the next item shows how far a mere f16 rounding of V moves).
 *   - Every position of both passes: 5e-4 .. 1.4e-3 measured, and position 0
 *     of the f32-cache pass alone 5e-5 .. 5e-4. A small difference in an
 *     activation flips the 8-bit rounding of the elements that sit near a half
 *     step, each flip moves a dot product by a whole step, and this random
 *     2-layer model amplifies what reaches the logits (its 8-bit rounding
 *     alone moves them 6e-4 .. 1.9e-3 from an exact forward pass, part 3). So
 *     the f16 roundings in llama.cpp's attention leave the two programs about
 *     as far apart as each is from the exact result. Bound 3e-3, the bound of
 *     test_e2e_logits for the block formats against the exact forward pass. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e_common.h"
#include "gguf.h"
#include "quant.h"
#include "strata.h"

#define NMSE_FIRST_BOUND 1e-5
#define NMSE_BOUND 3e-3
#define E2E_REFERENCE_BOUND 3e-3

/* the formats of tests/data/llamacpp/ (every one llama-quantize produced) */
static const char *const fixture_types[] = {
    "iq2_xxs", "iq2_xs", "iq2_m", "iq3_xxs", "iq3_s", "iq1_s", "iq1_m",
    "iq4_nl", "iq4_xs", "tq1_0", "tq2_0", "mxfp4",
};
#define N_FIXTURES (sizeof fixture_types / sizeof fixture_types[0])

static int failures;

typedef struct llamacpp_logits {
    uint32_t n_tokens, n_vocab;
    int32_t *tokens;
    double *logits; /* n_tokens x n_vocab */
} llamacpp_logits;

static uint32_t read_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads a logits file of make_llamacpp_fixtures.py ("LCPL", n_tokens,
 * n_vocab, tokens, logits; little-endian). */
static bool read_logits(const char *path, llamacpp_logits *out)
{
    bool ok = false;
    unsigned char *bytes = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("%s: cannot open\n", path);
        return false;
    }
    unsigned char head[12];
    if (fread(head, 1, sizeof head, f) != sizeof head || memcmp(head, "LCPL", 4) != 0) {
        printf("%s: not a logits file\n", path);
        goto done;
    }
    out->n_tokens = read_le32(head + 4);
    out->n_vocab = read_le32(head + 8);
    if (out->n_tokens == 0 || out->n_tokens > 4096 || out->n_vocab == 0 || out->n_vocab > 1u << 20) {
        printf("%s: implausible sizes %u x %u\n", path, out->n_tokens, out->n_vocab);
        goto done;
    }
    size_t n_logits = (size_t)out->n_tokens * out->n_vocab;
    size_t n_bytes = 4 * (out->n_tokens + n_logits);
    bytes = malloc(n_bytes);
    out->tokens = malloc(out->n_tokens * sizeof *out->tokens);
    out->logits = malloc(n_logits * sizeof *out->logits);
    if (!bytes || !out->tokens || !out->logits || fread(bytes, 1, n_bytes, f) != n_bytes) {
        printf("%s: cannot read %zu bytes\n", path, n_bytes);
        goto done;
    }
    for (uint32_t t = 0; t < out->n_tokens; t++)
        out->tokens[t] = (int32_t)read_le32(bytes + 4 * t);
    for (size_t i = 0; i < n_logits; i++) {
        uint32_t bits = read_le32(bytes + 4 * (out->n_tokens + i));
        float v;
        memcpy(&v, &bits, sizeof v);
        out->logits[i] = v;
    }
    ok = true;
done:
    fclose(f);
    free(bytes);
    return ok;
}

/* sum over i of bits(values[i]) * (2 (first + i) + 1) modulo 2^64, the
 * checksum make_llamacpp_fixtures.py writes */
static uint64_t checksum_add(uint64_t sum, const float *values, int64_t n, uint64_t first)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], sizeof bits);
        sum += (uint64_t)bits * (2 * (first + (uint64_t)i) + 1);
    }
    return sum;
}

/* Checks strata's dequantization of every tensor listed in dequant_path
 * against the gguf package's checksum. Returns the number of tensors
 * checked, -1 on a mismatch or error (printed). */
static int check_dequantization(const char *gguf_path, const char *dequant_path, char *types_seen, size_t types_size)
{
    strata_error err = {0};
    gguf_file *file = NULL;
    float *row = NULL;
    int checked = 0;
    bool ok = true;
    FILE *list = fopen(dequant_path, "r");
    if (!list) {
        printf("%s: cannot open\n", dequant_path);
        return -1;
    }
    if (gguf_open(gguf_path, &file, &err) != STRATA_OK) {
        printf("%s\n", err.message);
        ok = false;
        goto done;
    }
    char name[128], type[32];
    long long n_elements;
    unsigned long long want;
    types_seen[0] = '\0';
    while (fscanf(list, "%127s %31s %lld %llx", name, type, &n_elements, &want) == 4) {
        const gguf_tensor_info *info = gguf_find_tensor(file, name);
        if (!info) {
            printf("  %s: no tensor %s\n", gguf_path, name);
            ok = false;
            continue;
        }
        int64_t n_per_row = info->ne[0];
        int64_t n_rows = 1;
        for (int d = 1; d < info->n_dims; d++)
            n_rows *= info->ne[d];
        size_t row_bytes = 0;
        if (strcmp(dtype_name(info->dtype), type) != 0 || n_rows * n_per_row != n_elements ||
            !dtype_row_bytes(info->dtype, n_per_row, &row_bytes)) {
            printf("  %s: strata reads %s as %s with %lld elements, gguf as %s with %lld\n", gguf_path, name,
                   dtype_name(info->dtype), (long long)(n_rows * n_per_row), type, n_elements);
            ok = false;
            continue;
        }
        if (!strstr(types_seen, type) && strlen(types_seen) + strlen(type) + 2 < types_size) {
            strcat(types_seen, types_seen[0] ? " " : "");
            strcat(types_seen, type);
        }
        float *grown = realloc(row, (size_t)n_per_row * sizeof *row);
        if (!grown) {
            printf("out of memory\n");
            ok = false;
            break;
        }
        row = grown;
        uint64_t sum = 0;
        for (int64_t r = 0; r < n_rows; r++) {
            const unsigned char *src = (const unsigned char *)info->data + (size_t)r * row_bytes;
            if (quant_dequantize_row(info->dtype, src, row, n_per_row, &err) != STRATA_OK) {
                printf("  %s: %s: %s\n", gguf_path, name, err.message);
                ok = false;
                break;
            }
            sum = checksum_add(sum, row, n_per_row, (uint64_t)(r * n_per_row));
        }
        if (sum != (uint64_t)want) {
            printf("  %s: %s (%s): dequantization checksum %016llx, the gguf package's %016llx\n", gguf_path, name,
                   type, (unsigned long long)sum, want);
            ok = false;
        }
        checked++;
    }
    if (checked == 0) {
        printf("%s: no tensors listed\n", dequant_path);
        ok = false;
    }
done:
    fclose(list);
    gguf_close(file);
    free(row);
    return ok ? checked : -1;
}

/* Agreement of strata's logits (n_tokens x n_vocab) with llama.cpp's. */
typedef struct agreement {
    double nmse_first; /* position 0 */
    double nmse_worst; /* worst position */
    double max_abs_err, max_abs_ref;
    e2e_comparison argmax;
} agreement;

static void compare_logits(const float *got, const llamacpp_logits *ref, agreement *a)
{
    *a = (agreement){.argmax = {.argmax_ok = true}};
    for (uint32_t t = 0; t < ref->n_tokens; t++) {
        const float *g = got + (size_t)t * ref->n_vocab;
        const double *w = ref->logits + (size_t)t * ref->n_vocab;
        double err_sq = 0.0, ref_sq = 0.0;
        for (uint32_t v = 0; v < ref->n_vocab; v++) {
            double d = (double)g[v] - w[v];
            err_sq += d * d;
            ref_sq += w[v] * w[v];
            if (!(fabs(d) <= a->max_abs_err))
                a->max_abs_err = fabs(d);
            if (fabs(w[v]) > a->max_abs_ref)
                a->max_abs_ref = fabs(w[v]);
        }
        double nmse = ref_sq > 0 ? err_sq / ref_sq : err_sq;
        if (t == 0)
            a->nmse_first = nmse;
        if (!(nmse <= a->nmse_worst))
            a->nmse_worst = nmse;
        e2e_compare_row(g, w, ref->n_vocab, NMSE_BOUND, &a->argmax);
    }
}

/* f16_kv: the pass whose KV cache holds what llama.cpp's does, so that its
 * position 0 is held to the tight bound. */
static bool agreement_ok(const agreement *a, bool f16_kv)
{
    return (!f16_kv || a->nmse_first <= NMSE_FIRST_BOUND) && a->nmse_worst <= NMSE_BOUND && a->argmax.argmax_ok;
}

static void check_fixture(const char *type)
{
    char gguf_path[512], logits_path[512], dequant_path[512], types_seen[128], label[64];
    snprintf(gguf_path, sizeof gguf_path, STRATA_TEST_DATA_DIR "/llamacpp/tiny-%s.gguf", type);
    snprintf(logits_path, sizeof logits_path, STRATA_TEST_DATA_DIR "/llamacpp/tiny-%s.logits.bin", type);
    snprintf(dequant_path, sizeof dequant_path, STRATA_TEST_DATA_DIR "/llamacpp/tiny-%s.dequant.txt", type);
    llamacpp_logits ref = {0};
    strata_model *model = NULL;
    float *got = NULL;
    strata_error err = {0};
    bool ok = false;

    int n_checked = check_dequantization(gguf_path, dequant_path, types_seen, sizeof types_seen);
    if (n_checked < 0 || !read_logits(logits_path, &ref))
        goto done;
    strata_model_params params = {.path = gguf_path, .backend = "cpu"};
    if (strata_model_load(&params, &model, &err) != STRATA_OK) {
        printf("%-8s load: %s\n", type, err.message);
        goto done;
    }
    got = malloc((size_t)ref.n_tokens * ref.n_vocab * sizeof *got);
    if (!got)
        goto done;
    agreement batch, single;
    e2e_comparison unused;
    if (e2e_run_and_compare(model, DTYPE_F32, false, 64, ref.tokens, ref.n_tokens, NULL, ref.n_vocab, NMSE_BOUND,
                            &unused, got, &err) != STRATA_OK)
        goto run_failed;
    compare_logits(got, &ref, &batch);
    if (e2e_run_and_compare(model, DTYPE_F16, true, 64, ref.tokens, ref.n_tokens, NULL, ref.n_vocab, NMSE_BOUND,
                            &unused, got, &err) != STRATA_OK)
        goto run_failed;
    compare_logits(got, &ref, &single);
    ok = agreement_ok(&batch, false) && agreement_ok(&single, true);
    printf("%-8s %3d ok %9.1e %9.1e %9.1e %9.1e %7.4f %7.4f %6.3f %3d/%-3d %3d/%-3d %s  (%s)\n", type, n_checked,
           batch.nmse_first, single.nmse_first, batch.nmse_worst, single.nmse_worst, batch.max_abs_err,
           single.max_abs_err, batch.max_abs_ref, batch.argmax.argmax_agree, batch.argmax.argmax_rows,
           single.argmax.argmax_agree, single.argmax.argmax_rows, ok ? "ok" : "FAIL", types_seen);
    /* and against the double-precision reference (tests/common/reference_forward.c) on
     * the same file, with test_e2e_logits's bound for block formats */
    snprintf(label, sizeof label, "  %s vs reference", type);
    if (!e2e_check_model("cpu", label, gguf_path, ref.tokens, ref.n_tokens, E2E_REFERENCE_BOUND))
        ok = false;
    goto done;
run_failed:
    printf("%-8s decode: %s\n", type, err.message);
done:
    if (!ok)
        failures++;
    strata_model_free(model);
    free(got);
    free(ref.tokens);
    free(ref.logits);
}

int main(void)
{
    printf("strata against llama.cpp on files llama-quantize wrote; NMSE bounds %.0e (position 0), %.0e\n",
           NMSE_FIRST_BOUND, NMSE_BOUND);
    printf("batch: one batch, f32 KV cache; 1-by-1: a token at a time, f16 KV cache; nmse(0): position 0\n");
    printf("%-8s %-6s %9s %9s %9s %9s %7s %7s %6s %7s %7s\n", "file", "dequant", "nmse(0) b", "nmse(0) 1",
           "nmse b", "nmse 1", "max|d|b", "max|d|1", "max|l|", "argmx b", "argmx 1");
    for (size_t i = 0; i < N_FIXTURES; i++)
        check_fixture(fixture_types[i]);
    if (failures) {
        printf("\n%d failure(s)\n", failures);
        return 1;
    }
    printf("\nall llama.cpp fixtures agree\n");
    return 0;
}
