/* Push constants and dispatch geometry of the shaders that read weights:
 * shaders/matmul.comp, shaders/matmul_tiled.comp and shaders/get_rows.comp.
 *
 * Variants. Each shader is compiled once per weight format FMT in
 *   f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k
 * with -DWEIGHT_TYPE_<FMT upper>=1 (glslc --target-env=vulkan1.2), giving
 *   matmul_<FMT>        from shaders/matmul.comp        (matrix-vector, decode)
 *   matmul_tiled_<FMT>  from shaders/matmul_tiled.comp  (tiled GEMM, prefill)
 *   get_rows_<FMT>      from shaders/get_rows.comp
 * and, with -DMATMUL_ID=1 as well (OP_MATMUL_ID: bindings 3 = the expert
 * table, 4 = the low-bit tables),
 *   matmul_id_<FMT>, matmul_id_tiled_<FMT>  from the two matmul shaders
 * None needs a device feature beyond Vulkan 1.0 compute: weights are read as
 * 32-bit words (no 8/16-bit storage), reductions go through shared memory.
 *
 * Bindings, descriptor set 0, all storage buffers:
 *   0  weights, readonly, read as uint words
 *   1  matmul: f32 activations x; get_rows: int32 row ids
 *   2  f32 output, writeonly
 * Offsets inside a binding travel in the push constants: weights in bytes
 * (any even number), binding 1 and 2 in elements. The weight binding's range
 * must be a whole number of 32-bit words that covers every byte of the rows
 * of the dispatch: round the range up to 4 bytes (buffers are allocated in
 * whole words) or the shader's last word read falls outside the binding.
 *
 * Specialization constants:
 *   matmul.comp    id 0 = local_size_x (threads per output row), default
 *                  VK_MATMUL_VECTOR_LOCAL_SIZE; any value from 1 to the
 *                  device's maxComputeWorkGroupSize[0], power of two or not;
 *                  it takes 4 * VK_MATMUL_VECTOR_TOKENS * local_size_x bytes
 *                  of shared memory (2 KiB at the default; keep it within
 *                  maxComputeSharedMemorySize, at least 16 KiB everywhere).
 *   get_rows.comp  id 0 = local_size_x, default VK_GET_ROWS_LOCAL_SIZE; any
 *                  value >= 1. Pass the value used to vk_get_rows_groups().
 *   matmul_tiled.comp has none: its tile shape is compiled in (below).
 *
 * Workgroup counts: Vulkan only guarantees 65535 per dimension, so a count
 * that may be larger is spread over two dimensions (x first, then y or z);
 * the shaders rebuild the linear index and skip the excess groups. */
#ifndef STRATA_VULKAN_SHADER_PARAMS_H
#define STRATA_VULKAN_SHADER_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

/* Every shader thread dequantizes units of this many weights that share
 * their scales (see shaders/dequant.glsl). */
#define VK_WEIGHT_UNIT_ELEMS 8u
/* The smallest maxComputeWorkGroupCount Vulkan guarantees in each dimension. */
#define VK_MAX_GROUPS_PER_DIM 65535u

/* matmul.comp: one workgroup per output row and up to this many tokens
 * (each weight unit is dequantized once and used for all of them). */
#define VK_MATMUL_VECTOR_LOCAL_SIZE 64u
#define VK_MATMUL_VECTOR_TOKENS 8u

/* matmul_tiled.comp: a workgroup computes a tile of output rows x tokens,
 * walking n_in in steps of 32 weights (4 units) staged in shared memory
 * (12.4 KiB, under the 16 KiB every device offers). */
#define VK_MATMUL_TILED_LOCAL_SIZE 128u
#define VK_MATMUL_TILE_ROWS 64u
#define VK_MATMUL_TILE_TOKENS 32u

#define VK_GET_ROWS_LOCAL_SIZE 64u

/* Push constants of matmul.comp and matmul_tiled.comp (std430 layout: the
 * GLSL block in shaders/matmul_params.glsl lists the same members in the same
 * order). One dispatch computes row_count output rows (a range of the
 * weight's rows, bound in binding 0) for n_tok tokens:
 *   dst[output_offset + t * output_stride + r] =
 *     sum_i W(r)[i] * x[input_offset + t * input_stride + i]
 * where W(r) is the weight row starting at byte weight_offset_bytes +
 * r * weight_row_bytes of binding 0 (r counts from the dispatch's first row:
 * the host binds a tensor too large for one binding as several row ranges,
 * and dst from the range's first row, so output_offset points there). */
typedef struct vk_matmul_params {
    uint32_t n_in;                /* weights per row = activations per token */
    uint32_t row_count;           /* output rows of this dispatch */
    uint32_t n_tok;               /* tokens (columns of x and of dst) */
    uint32_t weight_offset_bytes; /* binding 0: first byte of the first row; even */
    uint32_t weight_row_bytes;    /* bytes per weight row (whole blocks) */
    uint32_t input_offset;        /* binding 1: element of x[0, token 0] */
    uint32_t input_stride;        /* elements between tokens of x */
    uint32_t output_offset;       /* binding 2: element of dst[first row, token 0] */
    uint32_t output_stride;       /* elements between tokens of dst */
} vk_matmul_params;

/* Push constants of get_rows.comp (GLSL block in shaders/get_rows.comp). For
 * each id j < n_rows with ids[ids_offset + j] in [row_begin, row_begin +
 * row_count):
 *   dst[output_offset + j * output_stride + i] = W(id)[i], i < n_embd
 * where W(id) starts at byte weight_offset_bytes + (id - row_begin) *
 * weight_row_bytes of binding 0. Ids outside the range are left alone: a
 * table too large for one binding is looked up by one dispatch per range. */
typedef struct vk_get_rows_params {
    uint32_t n_embd;              /* elements per table row */
    uint32_t n_rows;              /* ids to look up */
    uint32_t row_begin;           /* first table row bound in binding 0 */
    uint32_t row_count;           /* table rows bound in binding 0 */
    uint32_t weight_offset_bytes; /* binding 0: first byte of row row_begin; even */
    uint32_t weight_row_bytes;    /* bytes per table row */
    uint32_t ids_offset;          /* binding 1: element of the first id */
    uint32_t output_offset;       /* binding 2: element of dst[0, 0] */
    uint32_t output_stride;       /* elements between output rows */
} vk_get_rows_params;

_Static_assert(sizeof(vk_matmul_params) == 36, "vk_matmul_params must match the GLSL push-constant block");
_Static_assert(sizeof(vk_get_rows_params) == 36, "vk_get_rows_params must match the GLSL push-constant block");

/* Push constants of matmul.comp compiled with MATMUL_ID (OP_MATMUL_ID): the
 * matmul's, then the experts' (GLSL: the MATMUL_ID members of
 * shaders/matmul_params.glsl). One dispatch computes rows [0, row_count) of
 * the range bound in binding 0 for every pair listed in the expert table
 * (binding 3, shaders/moe_group.comp) under experts [expert_begin,
 * expert_begin + expert_count):
 *   dst[output_offset + pair * output_stride + r] =
 *     sum_i W(e, r)[i] * x[input_offset + column(pair) * input_stride + i]
 * where W(e, r) starts at byte weight_offset_bytes + (e - expert_begin) *
 * expert_bytes + r * weight_row_bytes, and column(pair) is pair
 * (input_per_slot) or pair / n_used. n_tok is not read. */
typedef struct vk_matmul_id_params {
    vk_matmul_params matmul;
    uint32_t expert_begin, expert_count, expert_bytes;
    uint32_t n_expert;       /* entries of the table's counts */
    uint32_t list_stride;    /* entries per expert's list (tokens of the pass) */
    uint32_t n_used;         /* k */
    uint32_t input_per_slot; /* 1: x has a column per slot */
} vk_matmul_id_params;

_Static_assert(sizeof(vk_matmul_id_params) == 64, "vk_matmul_id_params must match the GLSL push-constant block");

typedef enum vk_matmul_kernel {
    VK_MATMUL_VECTOR, /* matmul_<FMT>: weights read once per VK_MATMUL_VECTOR_TOKENS tokens */
    VK_MATMUL_TILED,  /* matmul_tiled_<FMT>: shared-memory tiles, for prefill */
} vk_matmul_kernel;

/* Up to this many tokens the vector kernel reads the weights once, so it
 * wins where decode lives; beyond, the tiled kernel's reuse pays. Not tuned
 * on any GPU yet (set by reasoning, checked for correctness on lavapipe). */
#define VK_MATMUL_VECTOR_MAX_TOKENS VK_MATMUL_VECTOR_TOKENS

/* Pure: which matmul kernel runs n_tok tokens. has_coopmat (the device
 * offers cooperative matrices) is taken now so callers need not change when
 * a cooperative-matrix GEMM lands; today it does not change the choice. */
static inline vk_matmul_kernel vk_matmul_choose(uint32_t n_tok, bool has_coopmat)
{
    (void)has_coopmat;
    return n_tok <= VK_MATMUL_VECTOR_MAX_TOKENS ? VK_MATMUL_VECTOR : VK_MATMUL_TILED;
}

/* Pure: ceil(a / b) for b > 0, without overflow. */
static inline uint32_t vk_div_ceil(uint32_t a, uint32_t b)
{
    return a / b + (a % b != 0);
}

/* Pure: spreads count workgroups over two dimensions, *lo first (at most
 * VK_MAX_GROUPS_PER_DIM), the rest in *hi; the shader computes the linear
 * index hi_id * lo_count + lo_id and skips indices >= count. Returns false
 * when even two dimensions cannot hold count. A count of 0 gives 0 x 0. */
static inline bool vk_spread_groups(uint32_t count, uint32_t *lo, uint32_t *hi)
{
    if (count == 0) {
        *lo = *hi = 0;
        return true;
    }
    *lo = count < VK_MAX_GROUPS_PER_DIM ? count : VK_MAX_GROUPS_PER_DIM;
    *hi = vk_div_ceil(count, *lo);
    return *hi <= VK_MAX_GROUPS_PER_DIM;
}

/* Pure: the workgroup counts of one matmul dispatch with kernel. Output rows
 * (one per workgroup for VK_MATMUL_VECTOR, VK_MATMUL_TILE_ROWS per workgroup
 * for VK_MATMUL_TILED) are spread over x and y, token groups go in z. The
 * vector kernel must run with its default local size, or any: its geometry
 * does not depend on it. Returns false (groups zeroed) when a count exceeds
 * what Vulkan guarantees; an empty dispatch (no rows or no tokens) gives
 * zeros and true: record nothing. */
static inline bool vk_matmul_groups(const vk_matmul_params *p, vk_matmul_kernel kernel, uint32_t groups[3])
{
    uint32_t rows_per_group = kernel == VK_MATMUL_TILED ? VK_MATMUL_TILE_ROWS : 1u;
    uint32_t tokens_per_group = kernel == VK_MATMUL_TILED ? VK_MATMUL_TILE_TOKENS : VK_MATMUL_VECTOR_TOKENS;
    uint32_t row_groups = vk_div_ceil(p->row_count, rows_per_group);
    uint32_t token_groups = vk_div_ceil(p->n_tok, tokens_per_group);
    groups[0] = groups[1] = groups[2] = 0;
    if (row_groups == 0 || token_groups == 0)
        return true;
    if (!vk_spread_groups(row_groups, &groups[0], &groups[1]) || token_groups > VK_MAX_GROUPS_PER_DIM) {
        groups[0] = groups[1] = 0;
        return false;
    }
    groups[2] = token_groups;
    return true;
}

/* Pure: the workgroup counts of one expert-matmul dispatch with kernel:
 * output rows over x and y as vk_matmul_groups, and in z, for each bound
 * expert that may have pairs (no more than the pass's n_used * list_stride
 * pairs), enough token groups of kernel for a list of list_stride pairs.
 * Returns false (groups zeroed) when a count exceeds what Vulkan
 * guarantees. */
static inline bool vk_matmul_id_groups(const vk_matmul_id_params *p, vk_matmul_kernel kernel, uint32_t groups[3])
{
    uint32_t rows_per_group = kernel == VK_MATMUL_TILED ? VK_MATMUL_TILE_ROWS : 1u;
    uint32_t tokens_per_group = kernel == VK_MATMUL_TILED ? VK_MATMUL_TILE_TOKENS : VK_MATMUL_VECTOR_TOKENS;
    uint64_t pairs = (uint64_t)p->n_used * p->list_stride;
    uint64_t experts = p->expert_count < pairs ? p->expert_count : pairs;
    uint64_t z = experts * vk_div_ceil(p->list_stride, tokens_per_group);
    groups[0] = groups[1] = groups[2] = 0;
    if (p->matmul.row_count == 0 || z == 0)
        return true;
    if (!vk_spread_groups(vk_div_ceil(p->matmul.row_count, rows_per_group), &groups[0], &groups[1]) ||
        z > VK_MAX_GROUPS_PER_DIM) {
        groups[0] = groups[1] = 0;
        return false;
    }
    groups[2] = (uint32_t)z;
    return true;
}

/* Pure: the workgroup counts of one get_rows dispatch run with local_size_x
 * threads (specialization constant 0): units of VK_WEIGHT_UNIT_ELEMS
 * elements of a row in x, ids spread over y and z. Returns false (groups
 * zeroed) when a count exceeds what Vulkan guarantees or local_size_x is 0. */
static inline bool vk_get_rows_groups(const vk_get_rows_params *p, uint32_t local_size_x, uint32_t groups[3])
{
    groups[0] = groups[1] = groups[2] = 0;
    if (local_size_x == 0)
        return false;
    uint32_t unit_groups = vk_div_ceil(vk_div_ceil(p->n_embd, VK_WEIGHT_UNIT_ELEMS), local_size_x);
    if (unit_groups == 0 || p->n_rows == 0)
        return true;
    if (unit_groups > VK_MAX_GROUPS_PER_DIM || !vk_spread_groups(p->n_rows, &groups[1], &groups[2])) {
        groups[1] = groups[2] = 0;
        return false;
    }
    groups[0] = unit_groups;
    return true;
}

#endif
