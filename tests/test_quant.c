/* Block formats: fp16/bf16 conversions, dequantization and quantization.
 *
 * - fp16/bf16: hand-picked edge cases (rounding ties, overflow, subnormals,
 *   inf, nan) and an exhaustive half -> f32 -> half round trip.
 * - dequantize: tests/data/quant/<type>.blocks decoded by the PyPI gguf
 *   package (tests/tools/make_quant_fixtures.py) must equal ours bit for bit:
 *   the C code forms each product in the same order as the reference, so no
 *   tolerance is needed. The same for the low-bit formats (IQ*, MXFP4, TQ*),
 *   whose grid tables are also compared point by point with gguf's.
 * - quantize: for the types gguf can quantize (f16, bf16, q4_0, q4_1, q5_0,
 *   q5_1, q8_0, mxfp4, tq1_0, tq2_0), our bytes must equal the package's
 *   bytes exactly. The i-quants have no reference quantizer there: they are
 *   held to round-trip error bounds.
 * - round trip: gaussian data through quantize -> dequantize for every
 *   format, normalized RMS error under a per-format bound.
 * - bad input: n not a multiple of the block size, an unknown dtype. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "quant_lowbit.h"

#include "test_check.h"
#include "test_file.h"

static uint32_t bits_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static float float_of(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* ---- fp16 / bf16 --------------------------------------------------------- */

static void test_fp16_edges(void)
{
    static const struct { uint16_t h; uint32_t f; } decode[] = {
        {0x0000, 0x00000000}, {0x8000, 0x80000000}, {0x3c00, 0x3f800000}, {0xc000, 0xc0000000},
        {0x0001, 0x33800000}, /* 2^-24, smallest subnormal */
        {0x03ff, 0x387fc000}, /* largest subnormal */
        {0x0400, 0x38800000}, /* 2^-14, smallest normal */
        {0x7bff, 0x477fe000}, /* 65504 */
        {0x7c00, 0x7f800000}, {0xfc00, 0xff800000},
    };
    for (size_t i = 0; i < sizeof decode / sizeof decode[0]; i++)
        CHECK(bits_of(fp16_to_f32(decode[i].h)) == decode[i].f, "fp16_to_f32(0x%04x) = 0x%08x, want 0x%08x",
              decode[i].h, bits_of(fp16_to_f32(decode[i].h)), decode[i].f);
    CHECK(isnan(fp16_to_f32(0x7e00)) && isnan(fp16_to_f32(0x7c01)) && isnan(fp16_to_f32(0xfe00)), "fp16 nan decode");

    static const struct { float f; uint16_t h; } encode[] = {
        {1.0f, 0x3c00}, {-2.0f, 0xc000}, {0.0f, 0x0000}, {-0.0f, 0x8000},
        {65504.0f, 0x7bff}, {65519.996f, 0x7bff}, {65520.0f, 0x7c00} /* tie goes to even: inf */,
        {1e9f, 0x7c00}, {-1e9f, 0xfc00}, {INFINITY, 0x7c00}, {-INFINITY, 0xfc00},
        {1.0f + 0x1p-11f, 0x3c00} /* tie, even is down */, {1.0f + 0x3p-11f, 0x3c02} /* tie, even is up */,
        {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01},
        {0x1p-14f, 0x0400}, {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000} /* tie to even zero */,
        {0x1p-25f + 0x1p-40f, 0x0001}, {0x3p-25f, 0x0002} /* 1.5 units: tie, even is up */,
        {0x1.ff8p-15f, 0x03ff}, {0x1.ffcp-15f, 0x0400} /* tie, rounds up out of the subnormals */, {1e-10f, 0x0000}, {-1e-10f, 0x8000},
    };
    for (size_t i = 0; i < sizeof encode / sizeof encode[0]; i++)
        CHECK(f32_to_fp16(encode[i].f) == encode[i].h, "f32_to_fp16(%a) = 0x%04x, want 0x%04x", (double)encode[i].f,
              f32_to_fp16(encode[i].f), encode[i].h);
    uint16_t nan_h = f32_to_fp16(NAN), snan_h = f32_to_fp16(float_of(0x7f800001));
    CHECK((nan_h & 0x7c00) == 0x7c00 && (nan_h & 0x3ff) != 0, "f32_to_fp16(nan) = 0x%04x", nan_h);
    CHECK((snan_h & 0x7c00) == 0x7c00 && (snan_h & 0x3ff) != 0, "f32_to_fp16(snan) = 0x%04x", snan_h);

    /* every half survives half -> f32 -> half (nans stay nans) */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = fp16_to_f32((uint16_t)h);
        const uint16_t back = f32_to_fp16(f);
        const int is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
        if (is_nan ? !isnan(f) || (back & 0x7fff) <= 0x7c00 : back != h)
            bad++;
    }
    CHECK(bad == 0, "%d halves do not round-trip through f32", bad);
}

static void test_bf16_edges(void)
{
    CHECK(bits_of(bf16_to_f32(0x3f80)) == 0x3f800000, "bf16_to_f32(1)");
    CHECK(bits_of(bf16_to_f32(0x8001)) == 0x80010000, "bf16_to_f32 keeps subnormals");
    static const struct { uint32_t f; uint16_t h; } encode[] = {
        {0x3f800000, 0x3f80}, {0x3f808000, 0x3f80} /* tie, even down */, {0x3f818000, 0x3f82} /* tie, even up */,
        {0x3f808001, 0x3f81}, {0x7f7fffff, 0x7f80} /* FLT_MAX rounds to inf */, {0x7f800000, 0x7f80},
        {0xff800000, 0xff80}, {0x00000001, 0x0000}, {0x80000000, 0x8000},
    };
    for (size_t i = 0; i < sizeof encode / sizeof encode[0]; i++)
        CHECK(f32_to_bf16(float_of(encode[i].f)) == encode[i].h, "f32_to_bf16(0x%08x) = 0x%04x, want 0x%04x",
              encode[i].f, f32_to_bf16(float_of(encode[i].f)), encode[i].h);
    /* a nan whose payload lives only in the low 16 bits must not become inf */
    static const uint32_t nans[] = {0x7f800001, 0xff80ffff, 0x7fc00000, 0x7fffffff};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++)
        CHECK(isnan(bf16_to_f32(f32_to_bf16(float_of(nans[i])))), "f32_to_bf16(0x%08x) is not nan", nans[i]);
}

/* ---- fixtures ------------------------------------------------------------ */

/* Reads tests/data/quant/<name> into a new buffer; returns NULL (and counts a
 * failure) when it cannot. */
static void *read_fixture(const char *name, size_t *out_size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/quant/%s", STRATA_TEST_DATA_DIR, name);
    void *data = test_read_file(path, out_size);
    CHECK(data != NULL, "cannot read fixture %s", path);
    return data;
}

static const strata_dtype dequant_fixture_types[] = {
    DTYPE_F16,     DTYPE_BF16,   DTYPE_Q4_0,    DTYPE_Q4_1,   DTYPE_Q5_0,   DTYPE_Q5_1,   DTYPE_Q8_0,
    DTYPE_Q8_1,    DTYPE_Q2_K,   DTYPE_Q3_K,    DTYPE_Q4_K,   DTYPE_Q5_K,   DTYPE_Q6_K,   DTYPE_Q8_K,
    DTYPE_IQ2_XXS, DTYPE_IQ2_XS, DTYPE_IQ2_S,   DTYPE_IQ3_XXS, DTYPE_IQ3_S, DTYPE_IQ1_S,  DTYPE_IQ1_M,
    DTYPE_IQ4_NL,  DTYPE_IQ4_XS, DTYPE_MXFP4,   DTYPE_TQ1_0,  DTYPE_TQ2_0,
};

/* Exact agreement with the Python reference: the same bits for every float
 * (nans compared as "both nan"). */
static void test_dequantize_fixtures(void)
{
    for (size_t t = 0; t < sizeof dequant_fixture_types / sizeof dequant_fixture_types[0]; t++) {
        const strata_dtype dtype = dequant_fixture_types[t];
        const dtype_traits *traits = dtype_get_traits((int)dtype);
        char name[64];
        size_t blocks_size = 0, ref_size = 0;
        snprintf(name, sizeof name, "%s.blocks", traits->name);
        unsigned char *blocks = read_fixture(name, &blocks_size);
        snprintf(name, sizeof name, "%s.dequant.f32", traits->name);
        float *ref = read_fixture(name, &ref_size);
        float *got = NULL;
        if (!blocks || !ref)
            goto next;
        const int64_t n = (int64_t)(ref_size / sizeof(float));
        CHECK(blocks_size == (size_t)(n / traits->block_elements) * traits->block_bytes, "%s: fixture sizes disagree",
              traits->name);
        got = malloc(ref_size);
        strata_error err = {0};
        strata_status st = quant_dequantize_row(dtype, blocks, got, n, &err);
        CHECK(st == STRATA_OK, "%s: dequantize: %s", traits->name, err.message);
        int mismatches = 0;
        for (int64_t i = 0; st == STRATA_OK && i < n; i++) {
            const int same = isnan(ref[i]) ? isnan(got[i]) : bits_of(ref[i]) == bits_of(got[i]);
            if (!same && mismatches++ < 3)
                printf("  %s[%lld]: got %.9g (0x%08x), reference %.9g (0x%08x)\n", traits->name, (long long)i,
                       (double)got[i], bits_of(got[i]), (double)ref[i], bits_of(ref[i]));
        }
        CHECK(mismatches == 0, "%s: %d of %lld values differ from the gguf-py dequantization", traits->name,
              mismatches, (long long)n);
    next:
        free(blocks);
        free(ref);
        free(got);
    }
}

/* The grids of quant_iq_grids.c against gguf's expanded grids
 * (<type>.grid: one int8 per coordinate), point by point. */
static void test_grids(void)
{
    static const struct {
        const char *file;
        const void *table;
        int points, width; /* width 8: uint64_t points, 4: uint32_t */
    } grids[] = {
        {"iq2_xxs.grid", quant_iq2xxs_grid, 256, 8}, {"iq2_xs.grid", quant_iq2xs_grid, 512, 8},
        {"iq2_s.grid", quant_iq2s_grid, 1024, 8},    {"iq3_xxs.grid", quant_iq3xxs_grid, 256, 4},
        {"iq3_s.grid", quant_iq3s_grid, 512, 4},     {"iq1_s.grid", quant_iq1s_grid, 2048, 8},
    };
    for (size_t g = 0; g < sizeof grids / sizeof grids[0]; g++) {
        size_t size = 0;
        int8_t *ref = read_fixture(grids[g].file, &size);
        if (!ref)
            continue;
        CHECK(size == (size_t)grids[g].points * (size_t)grids[g].width, "%s: %zu bytes", grids[g].file, size);
        int bad = 0;
        for (int p = 0; p < grids[g].points && size == (size_t)grids[g].points * (size_t)grids[g].width; p++) {
            const uint64_t point = grids[g].width == 8 ? ((const uint64_t *)grids[g].table)[p]
                                                       : ((const uint32_t *)grids[g].table)[p];
            for (int j = 0; j < grids[g].width; j++)
                if ((int8_t)(uint8_t)(point >> (8 * j)) != ref[p * grids[g].width + j] && bad++ < 3)
                    printf("  %s point %d coordinate %d: %d, gguf %d\n", grids[g].file, p, j,
                           (int8_t)(uint8_t)(point >> (8 * j)), ref[p * grids[g].width + j]);
        }
        CHECK(bad == 0, "%s: %d coordinates differ from gguf's grid", grids[g].file, bad);
        free(ref);
    }
    /* the sign table: 7 bits plus a parity bit that makes the minus signs even */
    for (int i = 0; i < 128; i++) {
        int ones = 0;
        for (int bit = 0; bit < 8; bit++)
            ones += (quant_iq2_signs[i] >> bit) & 1;
        CHECK((quant_iq2_signs[i] & 0x7f) == i && ones % 2 == 0, "sign table entry %d = 0x%02x", i,
              quant_iq2_signs[i]);
    }
}

static const strata_dtype quant_fixture_types[] = {
    DTYPE_F16,  DTYPE_BF16, DTYPE_Q4_0, DTYPE_Q4_1,  DTYPE_Q5_0,  DTYPE_Q5_1,
    DTYPE_Q8_0, DTYPE_MXFP4, DTYPE_TQ1_0, DTYPE_TQ2_0,
};

/* Both 16-bit values are nans of a half (f16) or bfloat16 (bf16) encoding. */
static int both_16bit_nans(strata_dtype dtype, const unsigned char *a, const unsigned char *b)
{
    const uint16_t x = (uint16_t)(a[0] | (a[1] << 8)), y = (uint16_t)(b[0] | (b[1] << 8));
    const uint16_t exp_mask = dtype == DTYPE_F16 ? 0x7c00 : 0x7f80;
    return (x & exp_mask) == exp_mask && (x & ~exp_mask & 0x7fff) != 0 && (y & exp_mask) == exp_mask &&
           (y & ~exp_mask & 0x7fff) != 0;
}

/* Byte-exact agreement with gguf-py's quantizers (which follow ggml's
 * reference quantizers). One documented exception: for f16, a nan input may
 * come back as a different nan. numpy keeps a signaling nan signaling
 * (0x7f800001 -> 0x7c01); we quiet every nan and keep the top of its payload
 * (0x7f800001 -> 0x7e00), as F16C's vcvtps2ph does. Any nan is accepted. */
static void test_quantize_fixtures(void)
{
    for (size_t t = 0; t < sizeof quant_fixture_types / sizeof quant_fixture_types[0]; t++) {
        const strata_dtype dtype = quant_fixture_types[t];
        const dtype_traits *traits = dtype_get_traits((int)dtype);
        char name[64];
        size_t in_size = 0, ref_size = 0;
        snprintf(name, sizeof name, "%s.qin.f32", traits->name);
        float *in = read_fixture(name, &in_size);
        snprintf(name, sizeof name, "%s.qout.bin", traits->name);
        unsigned char *ref = read_fixture(name, &ref_size);
        unsigned char *got = NULL;
        if (!in || !ref)
            goto next;
        const int64_t n = (int64_t)(in_size / sizeof(float));
        size_t row_bytes = 0;
        CHECK(dtype_row_bytes(dtype, n, &row_bytes) && row_bytes == ref_size, "%s: fixture sizes disagree",
              traits->name);
        got = calloc(1, ref_size);
        strata_error err = {0};
        strata_status st = quant_quantize_row(dtype, in, got, n, &err);
        CHECK(st == STRATA_OK, "%s: quantize: %s", traits->name, err.message);
        int mismatches = 0;
        const int is_16bit = dtype == DTYPE_F16 || dtype == DTYPE_BF16;
        for (size_t i = 0; st == STRATA_OK && i < ref_size; i++) {
            if (is_16bit && both_16bit_nans(dtype, got + (i & ~(size_t)1), ref + (i & ~(size_t)1)))
                continue;
            if (got[i] != ref[i] && mismatches++ < 3)
                printf("  %s byte %zu (block %zu): got 0x%02x, reference 0x%02x\n", traits->name, i,
                       i / traits->block_bytes, got[i], ref[i]);
        }
        CHECK(mismatches == 0, "%s: %d of %zu bytes differ from the gguf-py quantization", traits->name, mismatches,
              ref_size);
    next:
        free(in);
        free(ref);
        free(got);
    }
}

/* ---- round trip ---------------------------------------------------------- */

/* Deterministic standard normal values (xorshift64 + Box-Muller). */
static void fill_gaussian(float *x, int64_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; i < n; i += 2) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            u[k] = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
        }
        const double r = sqrt(-2.0 * log(u[0]));
        x[i] = (float)(r * cos(6.283185307179586 * u[1]));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(6.283185307179586 * u[1]));
    }
}

/* Normalized RMS error bounds for gaussian data: the measured value (printed
 * by the test) with a margin of roughly 20 %, so a real regression in scale
 * selection trips them while float noise does not. Measured on 16384
 * N(0, 1) values per format (see the report printed by this test). */
static const struct { strata_dtype dtype; double max_nrmse; } round_trip_bounds[] = {
    /* measured:    f32 0, f16 0.000206, bf16 0.001664 */
    {DTYPE_F32, 0.0},     {DTYPE_F16, 0.00025}, {DTYPE_BF16, 0.002},
    /* measured:    q8_0 0.005316, q8_1 0.005316, q8_k 0.006954, q6_k 0.017669 */
    {DTYPE_Q8_0, 0.0065}, {DTYPE_Q8_1, 0.0065}, {DTYPE_Q8_K, 0.0085}, {DTYPE_Q6_K, 0.021},
    /* measured:    q5_0 0.042252, q5_1 0.037857, q5_k 0.036177 */
    {DTYPE_Q5_0, 0.05},   {DTYPE_Q5_1, 0.045},  {DTYPE_Q5_K, 0.043},
    /* measured:    q4_0 0.085370, q4_1 0.077833, q4_k 0.070970 */
    {DTYPE_Q4_0, 0.10},   {DTYPE_Q4_1, 0.092},  {DTYPE_Q4_K, 0.085},
    /* measured:    q3_k 0.149627, q2_k 0.295455 */
    {DTYPE_Q3_K, 0.18},   {DTYPE_Q2_K, 0.35},
    /* measured:    iq4_nl 0.075623, iq4_xs 0.076232, mxfp4 0.113919 */
    {DTYPE_IQ4_NL, 0.09}, {DTYPE_IQ4_XS, 0.09}, {DTYPE_MXFP4, 0.135},
    /* measured:    iq3_s 0.137275, iq3_xxs 0.185239 */
    {DTYPE_IQ3_S, 0.165}, {DTYPE_IQ3_XXS, 0.22},
    /* measured:    iq2_s 0.249580, iq2_xs 0.297994, iq2_xxs 0.345382 */
    {DTYPE_IQ2_S, 0.30},  {DTYPE_IQ2_XS, 0.355}, {DTYPE_IQ2_XXS, 0.415},
    /* measured:    iq1_m 0.444990, iq1_s 0.483857; tq1_0 = tq2_0 0.807706
     * (ternary with one scale per 256: a format for ternary-trained
     * weights, not for gaussian ones) */
    {DTYPE_IQ1_M, 0.53},  {DTYPE_IQ1_S, 0.58},   {DTYPE_TQ1_0, 0.85}, {DTYPE_TQ2_0, 0.85},
};

static void test_round_trip(void)
{
    enum { N = 64 * QK_K };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    void *q = malloc((size_t)N * 4 + 4096);
    if (!x || !y || !q) {
        CHECK(0, "out of memory");
        goto done;
    }
    fill_gaussian(x, N, 7);
    printf("round-trip normalized RMS error on %d gaussian values:\n", N);
    for (size_t t = 0; t < sizeof round_trip_bounds / sizeof round_trip_bounds[0]; t++) {
        const strata_dtype dtype = round_trip_bounds[t].dtype;
        strata_error err = {0};
        memset(y, 0, N * sizeof(float));
        CHECK(quant_quantize_row(dtype, x, q, N, &err) == STRATA_OK, "%s: quantize: %s", dtype_name(dtype),
              err.message);
        CHECK(quant_dequantize_row(dtype, q, y, N, &err) == STRATA_OK, "%s: dequantize: %s", dtype_name(dtype),
              err.message);
        double num = 0, den = 0;
        for (int i = 0; i < N; i++) {
            num += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
            den += (double)x[i] * x[i];
        }
        const double nrmse = sqrt(num / den);
        printf("  %-5s %.6f (bound %.5f)\n", dtype_name(dtype), nrmse, round_trip_bounds[t].max_nrmse);
        CHECK(nrmse <= round_trip_bounds[t].max_nrmse, "%s: round-trip nrmse %.6f above %.5f", dtype_name(dtype), nrmse,
              round_trip_bounds[t].max_nrmse);
    }
done:
    free(x);
    free(y);
    free(q);
}

/* Zeros quantize to zeros (every scale-zero path), and a constant row comes
 * back close to itself even in the formats with a min. */
static void test_degenerate_rows(void)
{
    static const strata_dtype types[] = {DTYPE_Q4_0,    DTYPE_Q4_1,   DTYPE_Q5_0,   DTYPE_Q5_1,    DTYPE_Q8_0,
                                         DTYPE_Q8_1,    DTYPE_Q2_K,   DTYPE_Q3_K,   DTYPE_Q4_K,    DTYPE_Q5_K,
                                         DTYPE_Q6_K,    DTYPE_Q8_K,   DTYPE_IQ4_NL, DTYPE_IQ4_XS,  DTYPE_MXFP4,
                                         DTYPE_IQ3_S,   DTYPE_IQ3_XXS, DTYPE_IQ2_S, DTYPE_IQ2_XS,  DTYPE_IQ2_XXS,
                                         DTYPE_IQ1_M,   DTYPE_IQ1_S,  DTYPE_TQ1_0,  DTYPE_TQ2_0};
    float x[QK_K], y[QK_K];
    unsigned char q[512];
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        strata_error err = {0};
        memset(x, 0, sizeof x);
        for (int i = 0; i < QK_K; i++)
            y[i] = 1.0f;
        CHECK(quant_quantize_row(types[t], x, q, QK_K, &err) == STRATA_OK, "%s zeros", dtype_name(types[t]));
        CHECK(quant_dequantize_row(types[t], q, y, QK_K, &err) == STRATA_OK, "%s zeros", dtype_name(types[t]));
        int nonzero = 0;
        for (int i = 0; i < QK_K; i++)
            nonzero += y[i] != 0.0f;
        CHECK(nonzero == 0, "%s: %d of the zeros came back nonzero", dtype_name(types[t]), nonzero);

        for (int i = 0; i < QK_K; i++)
            x[i] = 0.75f;
        CHECK(quant_quantize_row(types[t], x, q, QK_K, &err) == STRATA_OK, "%s const", dtype_name(types[t]));
        CHECK(quant_dequantize_row(types[t], q, y, QK_K, &err) == STRATA_OK, "%s const", dtype_name(types[t]));
        double worst = 0;
        for (int i = 0; i < QK_K; i++)
            worst = fmax(worst, fabs((double)y[i] - 0.75));
        CHECK(worst < 0.75 * 0.02, "%s: constant 0.75 came back off by %g", dtype_name(types[t]), worst);
    }
}

/* The derived fields that are not needed to decode: Q8_1's s = d * sum(qs)
 * and Q8_K's bsums. */
static void test_derived_fields(void)
{
    float x[QK_K];
    fill_gaussian(x, QK_K, 11);
    block_q8_1 b81[QK_K / QK8_1];
    block_q8_K b8k;
    strata_error err = {0};
    CHECK(quant_quantize_row(DTYPE_Q8_1, x, b81, QK_K, &err) == STRATA_OK, "q8_1: %s", err.message);
    for (int b = 0; b < QK_K / QK8_1; b++) {
        int sum = 0;
        for (int j = 0; j < QK8_1; j++)
            sum += b81[b].qs[j];
        const float want = fp16_to_f32(f32_to_fp16((float)sum * fp16_to_f32(b81[b].d)));
        CHECK(fabsf(fp16_to_f32(b81[b].s) - want) <= fabsf(want) * 2e-3f + 1e-6f, "q8_1 block %d: s %g, want %g", b,
              (double)fp16_to_f32(b81[b].s), (double)want);
    }
    CHECK(quant_quantize_row(DTYPE_Q8_K, x, &b8k, QK_K, &err) == STRATA_OK, "q8_k: %s", err.message);
    for (int g = 0; g < QK_K / 16; g++) {
        int sum = 0;
        for (int j = 0; j < 16; j++)
            sum += b8k.qs[16 * g + j];
        CHECK(b8k.bsums[g] == sum, "q8_k bsums[%d] = %d, want %d", g, b8k.bsums[g], sum);
    }
}

/* ---- bad input ----------------------------------------------------------- */

/* Rows with inf and nan quantize without a crash or an undefined float to
 * int conversion (the sanitizer build checks the latter); what comes out is
 * not specified beyond "some valid bytes". */
static void test_non_finite_input(void)
{
    static const strata_dtype types[] = {DTYPE_F16,    DTYPE_BF16,    DTYPE_Q4_0,  DTYPE_Q4_1,   DTYPE_Q5_0,
                                         DTYPE_Q5_1,   DTYPE_Q8_0,    DTYPE_Q8_1,  DTYPE_Q2_K,   DTYPE_Q3_K,
                                         DTYPE_Q4_K,   DTYPE_Q5_K,    DTYPE_Q6_K,  DTYPE_Q8_K,   DTYPE_IQ4_NL,
                                         DTYPE_IQ4_XS, DTYPE_MXFP4,   DTYPE_IQ3_S, DTYPE_IQ3_XXS, DTYPE_IQ2_S,
                                         DTYPE_IQ2_XS, DTYPE_IQ2_XXS, DTYPE_IQ1_M, DTYPE_IQ1_S,  DTYPE_TQ1_0,
                                         DTYPE_TQ2_0};
    float x[QK_K], y[QK_K];
    unsigned char q[QK_K * 4];
    fill_gaussian(x, QK_K, 3);
    x[5] = INFINITY;
    x[40] = -INFINITY;
    x[77] = NAN;
    x[200] = 3e38f;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        strata_error err = {0};
        CHECK(quant_quantize_row(types[t], x, q, QK_K, &err) == STRATA_OK, "%s: non-finite row", dtype_name(types[t]));
        CHECK(quant_dequantize_row(types[t], q, y, QK_K, &err) == STRATA_OK, "%s: non-finite row back",
              dtype_name(types[t]));
    }
}

static void test_bad_input(void)
{
    float x[64] = {0}, y[64];
    unsigned char q[64 * 4];
    strata_error err = {0};
    CHECK(quant_quantize_row(DTYPE_Q4_0, x, q, 33, &err) == STRATA_INVALID_INPUT && err.message[0],
          "q4_0 n = 33 must be invalid input");
    CHECK(quant_dequantize_row(DTYPE_Q4_0, q, y, 31, &err) == STRATA_INVALID_INPUT, "q4_0 n = 31 must be invalid");
    CHECK(quant_dequantize_row(DTYPE_Q6_K, q, y, 64, &err) == STRATA_INVALID_INPUT, "q6_k n = 64 must be invalid");
    CHECK(quant_quantize_row(DTYPE_Q2_K, x, q, 32, &err) == STRATA_INVALID_INPUT, "q2_k n = 32 must be invalid");
    CHECK(quant_dequantize_row(DTYPE_F16, q, y, -2, &err) == STRATA_INVALID_INPUT, "negative n must be invalid");
    CHECK(quant_dequantize_row((strata_dtype)5, q, y, 32, &err) == STRATA_UNSUPPORTED, "dtype 5 is unknown");
    CHECK(quant_quantize_row((strata_dtype)38, x, q, 32, &err) == STRATA_UNSUPPORTED, "dtype 38 is unknown");
    CHECK(quant_dequantize_row((strata_dtype)40, q, y, 32, &err) == STRATA_UNSUPPORTED, "dtype 40 is unknown");
    CHECK(quant_dequantize_row((strata_dtype)-1, q, y, 32, &err) == STRATA_UNSUPPORTED, "dtype -1 is unknown");
    CHECK(quant_dequantize_row(DTYPE_I32, q, y, 4, &err) == STRATA_UNSUPPORTED, "i32 has no dequantizer");
    CHECK(quant_quantize_row(DTYPE_I8, x, q, 4, &err) == STRATA_UNSUPPORTED, "i8 has no quantizer");
    CHECK(quant_dequantize_row(DTYPE_Q4_0, q, y, 0, &err) == STRATA_OK, "an empty row is fine");
}

int main(void)
{
    test_fp16_edges();
    test_bf16_edges();
    test_dequantize_fixtures();
    test_grids();
    test_quantize_fixtures();
    test_round_trip();
    test_degenerate_rows();
    test_derived_fields();
    test_non_finite_input();
    test_bad_input();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
