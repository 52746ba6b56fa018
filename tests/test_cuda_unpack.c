/* The CUDA backend's block-format code, checked on the host (no GPU needed):
 *
 * - kernels/quant_unpack.h: every unit of every block format (the low-bit
 *   ones of quant_unpack_lowbit.h too) unpacks to the exact floats
 *   base/quant.c dequantizes to, its tables are base's, and the dp4a-style unit dot
 *   product equals the float dot product with the same 8-bit activations;
 * - backends/cuda/cuda_choose.h: the pure choices of the CUDA backend
 *   (matmul path per dtype and batch, attention kernel and splits, context
 *   buckets).
 *
 * The kernels compile these same inline functions for the device, so a
 * layout mistake shows here, in CI, rather than only on a lent GPU. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_choose.h"

#ifdef UNPACK_DEVICE_PATHS
/* Built as test_cuda_unpack_device_paths: quant_unpack.h takes its device
 * code (wide loads, funnel shifts, byte permutes, dp4a), with these stand-ins for the CUDA
 * vector types and intrinsics, written from their documented meaning. The
 * device loads are plain pointer reads, so alignment is not checked here
 * (test_cuda_unpack does that on the host code). */
typedef struct uint2 {
    uint32_t x, y;
} uint2;
typedef struct uint4 {
    uint32_t x, y, z, w;
} uint4;
typedef struct half_bits {
    uint16_t bits;
} __half;
float fp16_to_f32(uint16_t h);
static inline __half __ushort_as_half(uint16_t bits)
{
    __half h = {bits};
    return h;
}
static inline float __half2float(__half h)
{
    return fp16_to_f32(h.bits);
}
/* hi:lo shifted right by shift % 32, the low 32 bits */
static inline uint32_t __funnelshift_r(uint32_t lo, uint32_t hi, uint32_t shift)
{
    return (uint32_t)((((uint64_t)hi << 32) | lo) >> (shift & 31u));
}
/* byte n of the result: byte (s >> 4 n) & 7 of the 8 bytes y:x */
static inline uint32_t __byte_perm(uint32_t x, uint32_t y, uint32_t s)
{
    const uint64_t bytes = ((uint64_t)y << 32) | x;
    uint32_t result = 0;
    for (int n = 0; n < 4; n++)
        result |= (uint32_t)((bytes >> (8 * ((s >> (4 * n)) & 7u))) & 0xffu) << (8 * n);
    return result;
}
/* the four signed byte products of a and b, summed, plus c */
static inline int __dp4a(int a, int b, int c)
{
    for (int i = 0; i < 4; i++)
        c += (int8_t)(uint8_t)((uint32_t)a >> (8 * i)) * (int8_t)(uint8_t)((uint32_t)b >> (8 * i));
    return c;
}
#else
/* the loads of quant_unpack.h check their alignment here, as on the CUDA
 * emulator: a misaligned one is counted (and would fault on a GPU) */
#define UNPACK_CHECK_ALIGNMENT
#endif
static int misaligned_loads;
#ifdef UNPACK_CHECK_ALIGNMENT
void unpack_misaligned(const void *address, int alignment);
void unpack_misaligned(const void *address, int alignment)
{
    (void)address;
    (void)alignment;
    misaligned_loads++;
}
#endif

#include "kernels/quant_unpack.h"
#include "quant.h"
#include "quant_lowbit.h"
#include "test_check.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static double rng_uniform(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return ((double)((rng_state * 0x2545F4914F6CDD1DULL) >> 11) + 0.5) / 9007199254740992.0;
}

static float rng_gauss(void)
{
    return (float)(sqrt(-2.0 * log(rng_uniform())) * cos(2.0 * M_PI * rng_uniform()));
}

static const strata_dtype formats[] = {DTYPE_Q4_0,    DTYPE_Q4_1,   DTYPE_Q5_0,    DTYPE_Q5_1,   DTYPE_Q8_0,
                                       DTYPE_Q2_K,    DTYPE_Q3_K,   DTYPE_Q4_K,    DTYPE_Q5_K,   DTYPE_Q6_K,
                                       DTYPE_IQ2_XXS, DTYPE_IQ2_XS, DTYPE_IQ2_S,   DTYPE_IQ3_XXS, DTYPE_IQ3_S,
                                       DTYPE_IQ1_S,   DTYPE_IQ1_M,  DTYPE_IQ4_NL,  DTYPE_IQ4_XS, DTYPE_MXFP4,
                                       DTYPE_TQ1_0,   DTYPE_TQ2_0};

/* The 8-bit activations of 32 values, as kernel_quantize_q8 makes them. */
static void quantize_activations(const float *x, int32_t q[8], float *scale, float sums[2], int32_t quant_sums[2])
{
    float amax = 0.0f;
    for (int e = 0; e < 32; e++)
        amax = fmaxf(amax, fabsf(x[e]));
    const float d = amax / 127.0f, inv = d != 0.0f ? 1.0f / d : 0.0f;
    int8_t bytes[32];
    int half_sums[2] = {0, 0};
    for (int e = 0; e < 32; e++) {
        float r = roundf(x[e] * inv);
        bytes[e] = (int8_t)(r >= 127.0f ? 127 : r <= -127.0f ? -127 : r);
        half_sums[e / 16] += bytes[e];
    }
    memcpy(q, bytes, sizeof bytes); /* little-endian: element 4k + b in byte b of q[k] */
    *scale = d;
    sums[0] = d * (float)half_sums[0];
    sums[1] = d * (float)half_sums[1];
    quant_sums[0] = half_sums[0];
    quant_sums[1] = half_sums[1];
}

static void check_format(strata_dtype dtype, int64_t n)
{
    const dtype_traits *traits = dtype_get_traits((int)dtype);
    size_t row_bytes;
    CHECK(dtype_row_bytes(dtype, n, &row_bytes), "%s row bytes", traits->name);
    CHECK(unpack_block_bytes((int)dtype) == (int)traits->block_bytes, "%s: block bytes %d, runtime says %zu",
          traits->name, unpack_block_bytes((int)dtype), traits->block_bytes);
    CHECK(unpack_units_per_block((int)dtype) * 32 == (int)traits->block_elements, "%s: units per block",
          traits->name);
    float *values = malloc((size_t)n * sizeof(float)), *decoded = malloc((size_t)n * sizeof(float));
    float *x = malloc((size_t)n * sizeof(float));
    uint8_t *bytes = malloc(row_bytes);
    if (!values || !decoded || !x || !bytes) {
        CHECK(0, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        values[i] = rng_gauss() * (i % 97 == 0 ? 4.0f : 0.7f);
        x[i] = rng_gauss();
    }
    strata_error err = {0};
    CHECK(quant_quantize_row(dtype, values, bytes, n, &err) == STRATA_OK, "%s quantize: %s", traits->name,
          err.message);
    CHECK(quant_dequantize_row(dtype, bytes, decoded, n, &err) == STRATA_OK, "%s dequantize: %s", traits->name,
          err.message);

    const int units_per_block = unpack_units_per_block((int)dtype), block_bytes = unpack_block_bytes((int)dtype);
    int mismatches = 0;
    double worst_dot_error = 0.0;
    for (int64_t u = 0; u < n / 32; u++) {
        quant_unit unit;
        unpack_unit((int)dtype, bytes + (u / units_per_block) * block_bytes, (int)(u % units_per_block), &unit);
        for (int e = 0; e < 32; e++) {
            float got = unpack_value(&unit, e), want = decoded[u * 32 + e];
            if (memcmp(&got, &want, sizeof got) != 0 && !(got == 0.0f && want == 0.0f) && mismatches++ < 3)
                printf("  %s unit %lld element %d: %.9g, runtime %.9g\n", traits->name, (long long)u, e, got, want);
        }
        /* the integer dot product equals the float one over the same activations */
        int32_t xq[8], x_quant_sums[2];
        float x_scale, x_sums[2];
        quantize_activations(x + u * 32, xq, &x_scale, x_sums, x_quant_sums);
        double want_dot = 0.0, magnitude = 0.0;
        const int8_t *xb = (const int8_t *)xq;
        for (int e = 0; e < 32; e++) {
            double term = (double)decoded[u * 32 + e] * (double)x_scale * xb[e];
            want_dot += term;
            magnitude += fabs(term);
        }
        double got_dot = unpack_unit_dot(&unit, xq, x_scale, x_sums, x_quant_sums);
        double error = fabs(got_dot - want_dot) / (magnitude > 0 ? magnitude : 1.0);
        if (error > worst_dot_error)
            worst_dot_error = error;
    }
    CHECK(mismatches == 0, "%s: %d unpacked values differ from base/quant.c", traits->name, mismatches);
    CHECK(worst_dot_error < 1e-5, "%s: unit dot relative error %.3g", traits->name, worst_dot_error);
    printf("%-5s n=%-5lld unpack exact, dot error %.2g\n", traits->name, (long long)n, worst_dot_error);
done:
    free(values);
    free(decoded);
    free(x);
    free(bytes);
}

/* The groups of the matrix-vector kernels (unpack_group) against
 * unpack_unit, unit for unit and bit for bit, over a row of 16 blocks at
 * a 16-byte aligned address (so the 2-byte aligned formats have blocks at
 * both 0 and 2 modulo 4). */
static void check_groups(strata_dtype dtype)
{
    const dtype_traits *traits = dtype_get_traits((int)dtype);
    const int64_t n = 16 * (int64_t)traits->block_elements;
    const int units_per_block = unpack_units_per_block((int)dtype), block_bytes = unpack_block_bytes((int)dtype);
    const int group_units = UNPACK_GROUP_UNITS((int)dtype);
    size_t row_bytes;
    CHECK(dtype_row_bytes(dtype, n, &row_bytes), "%s row bytes", traits->name);
    CHECK(row_bytes % UNPACK_GROUP_ALIGNMENT((int)dtype) == 0, "%s: 16 blocks meet the group alignment",
          traits->name);
    float *values = malloc((size_t)n * sizeof(float));
    uint8_t *bytes = aligned_alloc(16, (row_bytes + 15) / 16 * 16);
    if (!values || !bytes) {
        CHECK(0, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        values[i] = rng_gauss() * (i % 61 == 0 ? 5.0f : 0.8f);
    strata_error err = {0};
    CHECK(quant_quantize_row(dtype, values, bytes, n, &err) == STRATA_OK, "%s quantize: %s", traits->name,
          err.message);
    int mismatches = 0;
    misaligned_loads = 0;
    for (int64_t unit0 = 0; unit0 < n / 32; unit0 += group_units) {
        quant_unit group[8], single;
        const uint8_t *block = bytes + (unit0 / units_per_block) * block_bytes;
        unpack_group((int)dtype, block, (int)(unit0 % units_per_block) / group_units, group);
        for (int i = 0; i < group_units; i++) {
            const int64_t u = unit0 + i;
            unpack_unit((int)dtype, bytes + (u / units_per_block) * block_bytes, (int)(u % units_per_block), &single);
            if (memcmp(&group[i], &single, sizeof single) != 0 && mismatches++ < 3)
                printf("  %s unit %lld: the group gives other values than unpack_unit\n", traits->name, (long long)u);
        }
    }
    CHECK(mismatches == 0, "%s: %d grouped units differ from unpack_unit", traits->name, mismatches);
    CHECK(misaligned_loads == 0, "%s: %d misaligned loads in an aligned row", traits->name, misaligned_loads);
    printf("%-5s groups of %d unpack exactly\n", traits->name, group_units);
done:
    free(values);
    free(bytes);
}

/* The tables of quant_unpack_lowbit.h, expanded from the header that
 * cmake/unpack_tables.cmake generates from base/quant_iq_grids.c, hold the
 * bytes of the tables the CPU computes with (the GPU's __device__ copies
 * are expanded from the same macros). */
static void check_tables(void)
{
#define CHECK_TABLE(name)                                                                                          \
    CHECK(sizeof unpack_table_##name == sizeof quant_##name &&                                                     \
              memcmp(unpack_table_##name, quant_##name, sizeof quant_##name) == 0,                                 \
          "unpack_table_" #name " differs from base's quant_" #name)
    CHECK_TABLE(iq2xxs_grid);
    CHECK_TABLE(iq2xs_grid);
    CHECK_TABLE(iq2s_grid);
    CHECK_TABLE(iq3xxs_grid);
    CHECK_TABLE(iq3s_grid);
    CHECK_TABLE(iq1s_grid);
    CHECK_TABLE(iq2_signs);
    CHECK_TABLE(iq4nl_values);
    CHECK_TABLE(mxfp4_values);
#undef CHECK_TABLE
}

/* The wide loads: the words they give, and the alignment they insist on. */
static void check_wide_loads(void)
{
    _Alignas(16) uint8_t bytes[64];
    for (int i = 0; i < 64; i++)
        bytes[i] = (uint8_t)(i * 37 + 11);
    uint32_t want[12], got[12];
    for (int offset = 0; offset <= 16; offset += 2) {
        for (int k = 0; k < 12; k++) /* little-endian, by hand */
            want[k] = (uint32_t)bytes[offset + 4 * k] | (uint32_t)bytes[offset + 4 * k + 1] << 8 |
                      (uint32_t)bytes[offset + 4 * k + 2] << 16 | (uint32_t)bytes[offset + 4 * k + 3] << 24;
        misaligned_loads = 0;
        unpack_words_a2(bytes + offset, 10, got);
        CHECK(memcmp(got, want, 10 * sizeof got[0]) == 0 && misaligned_loads == 0, "words_a2 at offset %d", offset);
        if (offset % 8 == 0) {
            unpack_words_a8(bytes + offset, 12, got);
            CHECK(memcmp(got, want, sizeof got) == 0 && misaligned_loads == 0, "words_a8 at offset %d", offset);
        }
        if (offset % 16 == 0) {
            unpack_words_a16(bytes + offset, 12, got);
            CHECK(memcmp(got, want, sizeof got) == 0 && misaligned_loads == 0, "words_a16 at offset %d", offset);
        }
        for (int at = 0; at + 4 <= 40; at += 2) {
            uint32_t image[12];
            memcpy(image, want, sizeof image);
            CHECK(unpack_image_u32(image, at) == unpack_u32_a2(bytes + offset + at), "image word at %d", at);
            CHECK(unpack_image_u16(image, at) == unpack_u16(bytes + offset + at), "image half at %d", at);
            CHECK(unpack_u16(bytes + offset + at) == (bytes[offset + at] | bytes[offset + at + 1] << 8),
                  "u16 at %d", offset + at);
        }
    }
#ifdef UNPACK_CHECK_ALIGNMENT
    /* each wide load refuses an address of too little alignment */
    misaligned_loads = 0;
    unpack_words_a16(bytes + 8, 4, got);
    CHECK(misaligned_loads >= 1, "words_a16 at 8 is misaligned");
    misaligned_loads = 0;
    unpack_words_a8(bytes + 4, 2, got);
    CHECK(misaligned_loads >= 1, "words_a8 at 4 is misaligned");
    misaligned_loads = 0;
    unpack_words_a2(bytes + 1, 1, got);
    CHECK(misaligned_loads >= 1, "words_a2 at 1 is misaligned");
    misaligned_loads = 0;
#endif
}

static void check_bytes_helpers(void)
{
    for (uint32_t h = 0; h < 16; h++) {
        uint32_t spread = unpack_spread4(h);
        for (int b = 0; b < 4; b++)
            CHECK(((spread >> (8 * b)) & 0xffu) == ((h >> b) & 1u), "spread4(%u) byte %d", h, b);
    }
    for (int i = 0; i < 1000; i++) {
        uint16_t bits = (uint16_t)(rng_uniform() * 65536.0);
        float got = unpack_half(bits), want = fp16_to_f32(bits);
        CHECK((got != got && want != want) || memcmp(&got, &want, sizeof got) == 0, "half 0x%04x: %g vs %g", bits,
              got, want);
    }
    CHECK(unpack_dp4a((int32_t)0x80ff7f01, (int32_t)0x01ff02ff, 5) == 5 + (1 * -1 + 127 * 2 + -1 * -1 + -128 * 1),
          "dp4a emulation");
}

static void check_choices(void)
{
    CHECK(cuda_matmul_choose(DTYPE_Q4_K, 1) == CUDA_MATMUL_MATVEC_Q8, "q4_k decode is a dp4a matvec");
    CHECK(cuda_matmul_choose(DTYPE_Q4_0, CUDA_MATVEC_MAX_TOKENS) == CUDA_MATMUL_MATVEC_Q8, "q4_0 at the threshold");
    CHECK(cuda_matmul_choose(DTYPE_Q4_0, CUDA_MATVEC_MAX_TOKENS + 1) == CUDA_MATMUL_GEMM_F16, "q4_0 prefill");
    CHECK(cuda_matmul_choose(DTYPE_F16, 1) == CUDA_MATMUL_MATVEC_FLOAT, "f16 decode");
    CHECK(cuda_matmul_choose(DTYPE_F16, 512) == CUDA_MATMUL_GEMM_F16_SPLIT, "f16 prefill keeps f32 activations");
    CHECK(cuda_matmul_choose(DTYPE_BF16, 512) == CUDA_MATMUL_GEMM_F32, "bf16 prefill");
    CHECK(cuda_matmul_choose(DTYPE_F32, 33) == CUDA_MATMUL_GEMM_F32, "f32 prefill");
    CHECK(cuda_matmul_choose(DTYPE_IQ2_XS, 1) == CUDA_MATMUL_MATVEC_Q8, "iq2_xs decode is a dp4a matvec");
    CHECK(cuda_matmul_choose(DTYPE_MXFP4, 512) == CUDA_MATMUL_GEMM_F16, "mxfp4 prefill dequantizes to f16");
    CHECK(cuda_matmul_choose(DTYPE_Q8_K, 1) == CUDA_MATMUL_NONE, "q8_k is not a weight format");
    CHECK(cuda_matmul_choose(DTYPE_I32, 1) == CUDA_MATMUL_NONE, "i32 is not a weight format");
    CHECK(cuda_matmul_choose(DTYPE_Q6_K, 0) == CUDA_MATMUL_MATVEC_Q8, "no tokens: a matvec of nothing");
    int64_t tile = 0;
    CHECK(cuda_gemm_tile_parse(NULL, &tile) && tile == CUDA_GEMM_TILE_ELEMENTS_DEFAULT, "default tile");
    CHECK(cuda_gemm_tile_parse("", &tile) && tile == CUDA_GEMM_TILE_ELEMENTS_DEFAULT, "empty: default tile");
    CHECK(cuda_gemm_tile_parse("64", &tile) && tile == (int64_t)1 << 25, "64 MiB of f16");
    CHECK(cuda_gemm_tile_parse("0.5", &tile) && tile == (int64_t)1 << 18, "half a MiB");
    CHECK(cuda_gemm_tile_parse("1e-9", &tile) && tile == 1, "at least one element");
    CHECK(cuda_gemm_tile_parse("65536", &tile) && tile == (int64_t)1 << 35, "the largest tile");
    const char *bad_tiles[] = {"0", "-4", "abc", "16MiB", "65537", "nan", "inf"};
    for (size_t i = 0; i < sizeof bad_tiles / sizeof bad_tiles[0]; i++)
        CHECK(!cuda_gemm_tile_parse(bad_tiles[i], &tile), "tile '%s' accepted", bad_tiles[i]);
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        CHECK(cuda_weight_dtype_supported(formats[i]), "%s supported", dtype_name(formats[i]));

    CHECK(cuda_attention_kv_bucket(1, 4096) == 256, "bucket of 1");
    CHECK(cuda_attention_kv_bucket(256, 4096) == 256, "bucket of 256");
    CHECK(cuda_attention_kv_bucket(257, 4096) == 512, "bucket of 257");
    CHECK(cuda_attention_kv_bucket(300, 300) == 300, "bucket clamps to the cache");
    CHECK(cuda_attention_kv_bucket(0, 64) == 0, "bucket of nothing");
    /* matmul_id chunks: the widths the routed kernels have, and a bound on the chunks */
    CHECK(cuda_matmul_id_width(1) == 1 && cuda_matmul_id_width(2) == 2 && cuda_matmul_id_width(3) == 4,
          "matmul_id width of 1-3 tokens");
    CHECK(cuda_matmul_id_width(5) == 8 && cuda_matmul_id_width(8) == 8 && cuda_matmul_id_width(512) == 8,
          "matmul_id width of 5, 8, 512 tokens");
    CHECK(cuda_matmul_id_max_chunks(8, 128, 1) == 8, "decode: one chunk a pair");
    CHECK(cuda_matmul_id_max_chunks(4096, 128, 8) == 512 + 128, "prefill: full chunks and a partial one an expert");
    CHECK(cuda_matmul_id_max_chunks(10, 2, 8) == 3, "two experts, 10 pairs: at most 1 + 2 chunks");

    CHECK(cuda_attention_splits(32 * 512, 512, 132) == 1, "prefill has pairs enough");
    int decode_splits = cuda_attention_splits(32, 4096, 132);
    CHECK(decode_splits > 1 && decode_splits <= CUDA_ATTENTION_MAX_SPLITS, "long decode splits (%d)", decode_splits);
    CHECK(cuda_attention_splits(32, 64, 132) == 1, "short decode does not split (%d)", cuda_attention_splits(32, 64, 132));
    CHECK(cuda_attention_splits(1, 1 << 20, 132) == CUDA_ATTENTION_MAX_SPLITS, "one pair, huge cache");
    CHECK(cuda_attention_splits(8, 0, 132) == 1, "empty cache");

    /* llama3-8b: 32 query heads on 8 kv heads */
    CHECK(cuda_attention_choose(CUDA_ATTENTION_AUTO, 1, 32, 8) == CUDA_ATTENTION_ROWS, "decode: rows");
    CHECK(cuda_attention_choose(CUDA_ATTENTION_AUTO, 512, 32, 8) == CUDA_ATTENTION_TILED, "pp512: tiled");
    CHECK(cuda_attention_choose(CUDA_ATTENTION_AUTO, 4, 32, 8) == CUDA_ATTENTION_TILED, "16 queries per kv head");
    CHECK(cuda_attention_choose(CUDA_ATTENTION_AUTO, 3, 32, 8) == CUDA_ATTENTION_ROWS, "12 queries per kv head");
    CHECK(cuda_attention_choose(CUDA_ATTENTION_AUTO, 1, 64, 1) == CUDA_ATTENTION_ROWS, "one-token MQA stays rows");
    CHECK(cuda_attention_choose(CUDA_ATTENTION_AUTO, 15, 8, 8) == CUDA_ATTENTION_ROWS, "MHA, 15 tokens");
    CHECK(cuda_attention_choose(CUDA_ATTENTION_AUTO, 16, 8, 8) == CUDA_ATTENTION_TILED, "MHA, 16 tokens");
    CHECK(cuda_attention_choose(CUDA_ATTENTION_AUTO, 512, 6, 4) == CUDA_ATTENTION_ROWS, "heads not a multiple");
    CHECK(cuda_attention_choose(CUDA_ATTENTION_FORCE_TILED, 1, 32, 8) == CUDA_ATTENTION_TILED, "forced tiled");
    CHECK(cuda_attention_choose(CUDA_ATTENTION_FORCE_ROWS, 512, 32, 8) == CUDA_ATTENTION_ROWS, "forced rows");
    cuda_attention_mode mode = CUDA_ATTENTION_FORCE_ROWS;
    CHECK(cuda_attention_mode_parse(NULL, &mode) && mode == CUDA_ATTENTION_AUTO, "unset: auto");
    CHECK(cuda_attention_mode_parse("tiled", &mode) && mode == CUDA_ATTENTION_FORCE_TILED, "tiled");
    CHECK(cuda_attention_mode_parse("rows", &mode) && mode == CUDA_ATTENTION_FORCE_ROWS, "rows");
    CHECK(cuda_attention_mode_parse("", &mode) && mode == CUDA_ATTENTION_AUTO, "empty: auto");
    CHECK(!cuda_attention_mode_parse("Tiled", &mode) && mode == CUDA_ATTENTION_AUTO, "unknown text refused");

    CHECK(cuda_gemm_rows_per_chunk(4096, 128256, 1 << 25) == 8192, "output matrix chunks");
    CHECK(cuda_gemm_rows_per_chunk(4096, 1024, 1 << 25) == 1024, "small matrix in one chunk");
    CHECK(cuda_gemm_rows_per_chunk(1 << 26, 4, 1 << 25) == 1, "a row longer than the tile still goes");

    /* the arena's tile reservation holds every chunk and never shrinks as a
     * weight grows (the workspace estimate relies on it: 5120 columns fill
     * less of a 2^25 tile than 4096 do) */
    const int64_t tiles[] = {1, 1000, (int64_t)1 << 20, (int64_t)1 << 25};
    const int64_t dims[] = {1, 31, 256, 4096, 5000, 5120, 14336, 1 << 20, 1 << 26};
    const int n_dims = (int)(sizeof dims / sizeof dims[0]);
    int bad_capacity = 0;
    for (size_t t = 0; t < sizeof tiles / sizeof tiles[0]; t++)
        for (int i = 0; i < n_dims; i++)
            for (int o = 0; o < n_dims; o++) {
                int64_t n_in = dims[i], n_out = dims[o], tile = tiles[t];
                int64_t capacity = cuda_gemm_tile_capacity(n_in, n_out, tile);
                bad_capacity += capacity < cuda_gemm_rows_per_chunk(n_in, n_out, tile) * n_in;
                bad_capacity += i + 1 < n_dims && cuda_gemm_tile_capacity(dims[i + 1], n_out, tile) < capacity;
                bad_capacity += o + 1 < n_dims && cuda_gemm_tile_capacity(n_in, dims[o + 1], tile) < capacity;
                bad_capacity += capacity > cuda_gemm_rows_per_chunk(n_in, n_out, tile) * n_in + n_in - 1;
            }
    CHECK(bad_capacity == 0, "%d tile capacities too small, shrinking with a dimension, or too large", bad_capacity);
}

int main(void)
{
#ifdef UNPACK_DEVICE
    printf("the device code of quant_unpack.h, with host stand-ins for the intrinsics\n");
#endif
    check_bytes_helpers();
    check_wide_loads();
    check_tables();
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        int64_t block = dtype_get_traits((int)formats[i])->block_elements;
        check_format(formats[i], block);
        check_format(formats[i], 16 * block);
        check_groups(formats[i]);
    }
    CHECK(misaligned_loads == 0, "%d misaligned loads", misaligned_loads);
    check_choices();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("all passed\n");
    return 0;
}
