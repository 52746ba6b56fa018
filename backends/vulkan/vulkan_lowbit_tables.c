/* The lookup tables of the low-bit formats (grids, the sign table, the
 * 16-level tables) in one device buffer, bound as binding 3 of the matmul
 * and get_rows shaders of those formats (shaders/dequant_iq_grid.glsl,
 * shaders/dequant_lowbit.glsl). The buffer is built at a context's first
 * low-bit op from the very arrays the CPU backend reads
 * (base/quant_iq_grids.c), so no table is written down twice.
 *
 * Why a buffer and not GLSL constant arrays: a constant array indexed at run
 * time is copied by lavapipe into every invocation's private memory, and
 * with IQ1_S's 16 KiB grid the op suite's IQ1_S cases went from seconds to
 * minutes. A storage buffer is an ordinary cached load on every driver.
 *
 * Sections, in 32-bit words, each at a multiple of the binding alignment so
 * that a format binds its own section at offset 0:
 *   8-coordinate grids (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S/IQ1_M): two words a
 *     point, word 2i = coordinates 0..3 of point i (lowest byte first),
 *     word 2i + 1 = coordinates 4..7 (no 64-bit integers in the shaders: not
 *     every device has them);
 *   4-coordinate grids (IQ3_XXS, IQ3_S): one word a point;
 *   IQ2_XXS, IQ2_XS, IQ3_XXS: the 128 sign words follow their grid;
 *   IQ4_NL/IQ4_XS, MXFP4: 16 levels as int32. */
#include <stdlib.h>
#include <string.h>

#include "quant_lowbit.h"
#include "vulkan_internal.h"

typedef enum lowbit_section {
    SECTION_IQ2XXS,
    SECTION_IQ2XS,
    SECTION_IQ2S,
    SECTION_IQ3XXS,
    SECTION_IQ3S,
    SECTION_IQ1S,
    SECTION_IQ4NL,
    SECTION_MXFP4,
    SECTION_COUNT
} lowbit_section;

_Static_assert(SECTION_COUNT == VK_LOWBIT_TABLE_SECTIONS, "vulkan_internal.h sizes the offsets by this count");

/* The section dtype's shaders read, or -1 (TQ1_0, TQ2_0 and the other
 * formats need none). */
static int section_of(strata_dtype dtype)
{
    switch (dtype) {
    case DTYPE_IQ2_XXS: return SECTION_IQ2XXS;
    case DTYPE_IQ2_XS: return SECTION_IQ2XS;
    case DTYPE_IQ2_S: return SECTION_IQ2S;
    case DTYPE_IQ3_XXS: return SECTION_IQ3XXS;
    case DTYPE_IQ3_S: return SECTION_IQ3S;
    case DTYPE_IQ1_S:
    case DTYPE_IQ1_M: return SECTION_IQ1S;
    case DTYPE_IQ4_NL:
    case DTYPE_IQ4_XS: return SECTION_IQ4NL;
    case DTYPE_MXFP4: return SECTION_MXFP4;
    default: return -1;
    }
}

static uint32_t put_grid8(uint32_t *out, const uint64_t *grid, uint32_t points)
{
    if (out)
        for (uint32_t i = 0; i < points; i++) {
            out[2 * i] = (uint32_t)grid[i];
            out[2 * i + 1] = (uint32_t)(grid[i] >> 32);
        }
    return 2 * points;
}

static uint32_t put_words(uint32_t *out, const uint32_t *words, uint32_t count)
{
    if (out)
        memcpy(out, words, count * sizeof *words);
    return count;
}

static uint32_t put_signs(uint32_t *out)
{
    if (out)
        for (uint32_t i = 0; i < 128; i++)
            out[i] = quant_iq2_signs[i];
    return 128;
}

static uint32_t put_levels(uint32_t *out, const int8_t *levels)
{
    if (out)
        for (uint32_t i = 0; i < 16; i++)
            out[i] = (uint32_t)(int32_t)levels[i];
    return 16;
}

/* Writes section s into out (when not NULL); returns its words. */
static uint32_t section_words(int s, uint32_t *out)
{
    uint32_t n = 0;
    switch ((lowbit_section)s) {
    case SECTION_IQ2XXS:
        n = put_grid8(out, quant_iq2xxs_grid, 256);
        return n + put_signs(out ? out + n : NULL);
    case SECTION_IQ2XS:
        n = put_grid8(out, quant_iq2xs_grid, 512);
        return n + put_signs(out ? out + n : NULL);
    case SECTION_IQ2S: return put_grid8(out, quant_iq2s_grid, 1024);
    case SECTION_IQ3XXS:
        n = put_words(out, quant_iq3xxs_grid, 256);
        return n + put_signs(out ? out + n : NULL);
    case SECTION_IQ3S: return put_words(out, quant_iq3s_grid, 512);
    case SECTION_IQ1S: return put_grid8(out, quant_iq1s_grid, 2048);
    case SECTION_IQ4NL: return put_levels(out, quant_iq4nl_values);
    case SECTION_MXFP4: return put_levels(out, quant_mxfp4_values);
    case SECTION_COUNT: break;
    }
    return 0;
}

bool vk_lowbit_has_tables(strata_dtype dtype)
{
    return section_of(dtype) >= 0;
}

/* Builds and uploads every section (the upload is recorded like any other,
 * so the first dispatch that reads the tables waits for it). */
static strata_status tables_create(vk_context *ctx, strata_error *err)
{
    VkDeviceSize alignment = vk_binding_alignment(ctx);
    VkDeviceSize offsets[SECTION_COUNT], total = 0;
    for (int s = 0; s < SECTION_COUNT; s++) {
        offsets[s] = total;
        total += ((VkDeviceSize)section_words(s, NULL) * 4 + alignment - 1) / alignment * alignment;
    }
    uint32_t *host = calloc((size_t)total / 4, sizeof *host);
    if (!host)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "vulkan: out of host memory for the low-bit tables");
    for (int s = 0; s < SECTION_COUNT; s++)
        section_words(s, host + offsets[s] / 4);
    backend_buffer *buffer = NULL;
    strata_status status = vk_buffer_create(ctx, total, false, &buffer, err);
    if (status == STRATA_OK)
        status = vk_upload(ctx, buffer, 0, host, (size_t)total, err);
    free(host);
    if (status != STRATA_OK) {
        vk_buffer_destroy(ctx, buffer);
        return status;
    }
    ctx->lowbit_tables = buffer;
    memcpy(ctx->lowbit_table_offsets, offsets, sizeof offsets);
    return STRATA_OK;
}

strata_status vk_lowbit_tables_bind(vk_context *ctx, strata_dtype dtype, vk_binding *out, strata_error *err)
{
    int s = section_of(dtype);
    if (s < 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "vulkan: %s has no lookup tables", dtype_name(dtype));
    strata_status status = ctx->lowbit_tables ? STRATA_OK : tables_create(ctx, err);
    if (status != STRATA_OK)
        return status;
    *out = (vk_binding){.buffer = ctx->lowbit_tables,
                        .offset = ctx->lowbit_table_offsets[s],
                        .range = (VkDeviceSize)section_words(s, NULL) * 4,
                        .written = false};
    return STRATA_OK;
}
