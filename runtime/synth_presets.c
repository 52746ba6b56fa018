/* Presets (real model shapes), quantization mixes and the tensor plan of a
 * synthetic model.
 *
 * Types. A plain dtype name ("q4_k", "iq2_xs", "f16", ...) is "pure": every
 * weight matrix (token_embd and output included) is stored in that format.
 * The mixes follow llama.cpp's usual per-tensor choices
 * (llama_tensor_get_type) for dense models without an importance matrix,
 * without its special cases for other architectures and 70B (MoE: below):
 *
 *   mix          ftype default  output*  attn_v                         attn_output  ffn_down
 *   q2_k_mix     10    q2_k     q6_k     q4_k if n_gqa>=4 else q3_k     q3_k         q3_k
 *   q3_k_m       12    q3_k     q6_k     q5_k if layer<2 else q4_k      q4_k         q5_k if layer<n/16 else q4_k
 *   q4_k_s       14    q4_k     q6_k     q5_k if layer<n/8              -            q5_k if layer<n/8
 *   q4_k_m       15    q4_k     q6_k     q6_k on "more bits" layers     -            q6_k on "more bits" layers
 *   q5_k_m       17    q5_k     q6_k     q6_k on "more bits" layers     -            q6_k on "more bits" layers
 *   iq2_xxs_mix  19    iq2_xxs  q5_k     q4_k if n_gqa>=4 else q2_k     -            q2_k if layer<n/8
 *   iq2_xs_mix   20    iq2_xs   q5_k     q4_k if n_gqa>=4 else q2_k     -            q2_k if layer<n/8
 *   iq3_xxs_mix  23    iq3_xxs  q5_k     q4_k if n_gqa>=4 else iq3_s    iq3_s        q4_k if layer<n/8 else q3_k
 *   iq1_s_mix    24    iq1_s    q5_k     q4_k if n_gqa>=4 else q2_k     iq2_xxs      q2_k if layer<n/8
 *   iq4_nl_mix   25    iq4_nl   q6_k     q5_k if n_gqa>=4               -            q5_k if layer<n/8
 *   iq3_s_mix    26    iq3_s    q6_k     q4_k if n_gqa>=4               -            -
 *   iq3_m        27    iq3_s    q6_k     q4_k                           q4_k         q4_k if layer<n/8
 *   iq2_s_mix    28    iq2_xs   q5_k     q4_k if n_gqa>=4 else iq3_s    iq3_s        iq3_s if layer<n/8
 *   iq2_m        29    iq2_s    q5_k     q4_k if n_gqa>=4 else iq3_s    iq3_s        iq3_s if layer<n/8
 *   iq4_xs_mix   30    iq4_xs   q6_k     q5_k if n_gqa>=4               -            q5_k if layer<n/8
 *   iq1_m_mix    31    iq1_m    q5_k     q4_k if n_gqa>=4 else q2_k     iq2_xxs      q2_k if layer<n/8
 *
 * Mixtures of experts: the experts' tensors take the rules of their dense
 * names (ffn_gate_exps as ffn_gate, ffn_up_exps as ffn_up, ffn_down_exps as
 * ffn_down, with its layer rules: q4_k_m stores the "more bits" layers'
 * ffn_down_exps in q6_k, all of that layer's experts), and the router
 * ffn_gate_inp stays f32 as llama.cpp's converter and quantizer keep it. On
 * top, llama.cpp's rules for models with experts:
 *   - 8 experts (Mixtral): attn_k and attn_v in q8_0 (small beside 8
 *     experts), attn_output in q5_k for q2_k_mix, q3_k_m, q4_k_s, q4_k_m,
 *     iq3_xxs_mix, iq3_s_mix, iq3_m, iq4_nl_mix and iq4_xs_mix (and none of
 *     the dense attn_output rules); iq3_m's ffn_down q4_k on "more bits"
 *     layers too. In the 1-2 bit i-quant mixes: attn_k in q4_k, attn_output
 *     in q5_k, attn_v as below.
 *   - 4 experts or more: the 1-2 bit i-quant mixes store attn_v in q4_k (as
 *     for n_gqa >= 4).
 * qwen3-30b-a3b's 128 experts take only the last rule, as in llama.cpp.
 *
 * (*) output.weight, or token_embd.weight when the output is tied to it.
 * An untied token_embd.weight is q2_k in iq2_xxs_mix, iq2_xs_mix, iq1_s_mix
 * and iq1_m_mix, iq3_s in iq2_s_mix, iq2_m and iq3_xxs_mix, the default type
 * otherwise. iq3_xxs_mix also stores attn_q and attn_k as iq2_s.
 * "More bits" layers: layer < n/8, layer >= 7n/8, or (layer - n/8) % 3 == 2.
 * "-" means the default type. A plain dtype name is always the pure format,
 * so llama.cpp's mixes that share a dtype's name are spelled "<name>_mix".
 *
 * Norm weights, biases and rope_freqs are always f32. A matrix whose row length
 * is not a multiple of its format's block falls back as llama.cpp does:
 * q2_k/q3_k -> q4_0, q4_k -> q5_0, q5_k -> q5_1, q6_k -> q8_0, the other
 * 256-element formats (i-quants) -> iq4_nl, tq1_0/tq2_0 -> q4_0, and any
 * 32-block format whose row is not a multiple of 32 -> f16. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"
#include "synth.h"

static const synth_config presets[] = {
    /* tiny: every dim a multiple of 256 so K-quants apply; vocab = the
     * built-in byte vocabulary (256 bytes + BOS + EOS). */
    {.arch = "llama", .preset = "tiny", .n_vocab = 258, .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
     .head_dim = 64, .n_ff = 512, .n_ctx_train = 256, .rope_freq_base = 500000.0, .rms_eps = 1e-5,
     .llama3_rope = true},
    {.arch = "qwen2", .preset = "tiny", .n_vocab = 258, .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
     .head_dim = 64, .n_ff = 512, .n_ctx_train = 256, .rope_freq_base = 1000000.0, .rms_eps = 1e-6,
     .tied_output = true, .has_qkv_bias = true},
    /* head_dim * n_head (512) differs from n_embd, as in the small Qwen3s. */
    {.arch = "qwen3", .preset = "tiny", .n_vocab = 258, .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
     .head_dim = 128, .n_ff = 512, .n_ctx_train = 256, .rope_freq_base = 1000000.0, .rms_eps = 1e-6,
     .write_head_dim = true, .has_qk_norm = true},
    /* olmo2: norms after the blocks only, the Q/K norm over the projection */
    {.arch = "olmo2", .preset = "tiny", .n_vocab = 258, .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 4,
     .head_dim = 64, .n_ff = 512, .n_ctx_train = 256, .rope_freq_base = 500000.0, .rms_eps = 1e-6,
     .has_qk_norm = true, .qk_norm_full = true, .no_pre_norms = true, .post_norms = true},
    /* gemma2: a window of 4 (shorter than the tests' prompts) on layers 0 and 2, softcaps */
    {.arch = "gemma2", .preset = "tiny", .n_vocab = 258, .n_embd = 256, .n_layer = 4, .n_head = 4, .n_head_kv = 2,
     .head_dim = 64, .n_ff = 512, .n_ctx_train = 256, .rope_freq_base = 10000.0, .rms_eps = 1e-6,
     .write_head_dim = true, .tied_output = true, .post_norms = true, .sliding_window = 4, .attn_softcap = 50.0,
     .final_softcap = 30.0},
    /* gemma3: 6 layers (5 local with base 10000, 1 global with base 1e6 scaled by 8) */
    {.arch = "gemma3", .preset = "tiny", .n_vocab = 258, .n_embd = 256, .n_layer = 6, .n_head = 4, .n_head_kv = 2,
     .head_dim = 64, .n_ff = 512, .n_ctx_train = 256, .rope_freq_base = 1000000.0, .rms_eps = 1e-6,
     .write_head_dim = true, .tied_output = true, .has_qk_norm = true, .post_norms = true, .sliding_window = 4,
     .rope_freq_base_swa = 10000.0, .rope_linear_factor = 8.0},
    /* phi3: fused weights, half the head rotated, LongRoPE (past 8 positions the long factors) */
    {.arch = "phi3", .preset = "tiny", .n_vocab = 258, .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
     .head_dim = 64, .n_ff = 512, .n_ctx_train = 256, .rope_freq_base = 10000.0, .rms_eps = 1e-5, .fused = true,
     .n_rot = 32, .sliding_window = 4, .longrope_orig_ctx = 8},
    /* mixtral: GGUF's llama with 8 experts, 2 per token (the real model's
     * count, so the 8-expert mix rules apply), each 256 wide */
    {.arch = "mixtral", .gguf_arch = "llama", .preset = "tiny", .n_vocab = 258, .n_embd = 256, .n_layer = 2,
     .n_head = 4, .n_head_kv = 2, .head_dim = 64, .n_ff = 256, .n_ctx_train = 256, .rope_freq_base = 1000000.0,
     .rms_eps = 1e-5, .n_expert = 8, .n_expert_used = 2},
    /* qwen3moe: 8 experts, 2 per token, renormalized, 256 wide (few experts,
     * so that a seed whose routing keeps clear of ties is easy to find for the
     * end-to-end check; 16 of 4 were always within 0.03 of one); the dense
     * feed_forward_length (512) is written as the converter does and unused */
    {.arch = "qwen3moe", .preset = "tiny", .n_vocab = 258, .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
     .head_dim = 128, .n_ff = 512, .n_ctx_train = 256, .rope_freq_base = 1000000.0, .rms_eps = 1e-6,
     .write_head_dim = true, .has_qk_norm = true, .n_expert = 8, .n_expert_used = 2, .n_ff_exp = 256,
     .expert_weights_norm = true},
    /* qwen2moe: 8 experts, 2 per token, not renormalized, 256 wide, and a
     * shared expert 512 wide (as wide as the dense feed_forward_length, as
     * in the published models); QKV biases */
    {.arch = "qwen2moe", .preset = "tiny", .n_vocab = 258, .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
     .head_dim = 64, .n_ff = 512, .n_ctx_train = 256, .rope_freq_base = 1000000.0, .rms_eps = 1e-6,
     .has_qkv_bias = true, .n_expert = 8, .n_expert_used = 2, .n_ff_exp = 256, .n_ff_shexp = 512},
    {.arch = "llama", .preset = "llama2-7b", .n_vocab = 32000, .n_embd = 4096, .n_layer = 32, .n_head = 32,
     .n_head_kv = 32, .head_dim = 128, .n_ff = 11008, .n_ctx_train = 4096, .rope_freq_base = 10000.0,
     .rms_eps = 1e-5},
    {.arch = "llama", .preset = "llama3-8b", .n_vocab = 128256, .n_embd = 4096, .n_layer = 32, .n_head = 32,
     .n_head_kv = 8, .head_dim = 128, .n_ff = 14336, .n_ctx_train = 131072, .rope_freq_base = 500000.0,
     .rms_eps = 1e-5, .llama3_rope = true},
    {.arch = "llama", .preset = "llama3-70b", .n_vocab = 128256, .n_embd = 8192, .n_layer = 80, .n_head = 64,
     .n_head_kv = 8, .head_dim = 128, .n_ff = 28672, .n_ctx_train = 131072, .rope_freq_base = 500000.0,
     .rms_eps = 1e-5, .llama3_rope = true},
    {.arch = "qwen2", .preset = "qwen2.5-7b", .n_vocab = 152064, .n_embd = 3584, .n_layer = 28, .n_head = 28,
     .n_head_kv = 4, .head_dim = 128, .n_ff = 18944, .n_ctx_train = 32768, .rope_freq_base = 1000000.0,
     .rms_eps = 1e-6, .has_qkv_bias = true},
    {.arch = "qwen3", .preset = "qwen3-8b", .n_vocab = 151936, .n_embd = 4096, .n_layer = 36, .n_head = 32,
     .n_head_kv = 8, .head_dim = 128, .n_ff = 12288, .n_ctx_train = 40960, .rope_freq_base = 1000000.0,
     .rms_eps = 1e-6, .write_head_dim = true, .has_qk_norm = true},
    {.arch = "olmo2", .preset = "olmo2-7b", .n_vocab = 100352, .n_embd = 4096, .n_layer = 32, .n_head = 32,
     .n_head_kv = 32, .head_dim = 128, .n_ff = 11008, .n_ctx_train = 4096, .rope_freq_base = 500000.0,
     .rms_eps = 1e-6, .has_qk_norm = true, .qk_norm_full = true, .no_pre_norms = true, .post_norms = true},
    {.arch = "gemma2", .preset = "gemma2-9b", .n_vocab = 256000, .n_embd = 3584, .n_layer = 42, .n_head = 16,
     .n_head_kv = 8, .head_dim = 256, .n_ff = 14336, .n_ctx_train = 8192, .rope_freq_base = 10000.0,
     .rms_eps = 1e-6, .write_head_dim = true, .tied_output = true, .post_norms = true, .sliding_window = 4096,
     .attn_softcap = 50.0, .final_softcap = 30.0},
    {.arch = "gemma3", .preset = "gemma3-12b", .n_vocab = 262208, .n_embd = 3840, .n_layer = 48, .n_head = 16,
     .n_head_kv = 8, .head_dim = 256, .n_ff = 15360, .n_ctx_train = 131072, .rope_freq_base = 1000000.0,
     .rms_eps = 1e-6, .write_head_dim = true, .tied_output = true, .has_qk_norm = true, .post_norms = true,
     .sliding_window = 1024, .rope_freq_base_swa = 10000.0, .rope_linear_factor = 8.0},
    /* Phi-3-mini-4k: no LongRoPE (the 128k variant has it) */
    {.arch = "phi3", .preset = "phi3-mini", .n_vocab = 32064, .n_embd = 3072, .n_layer = 32, .n_head = 32,
     .n_head_kv = 32, .head_dim = 96, .n_ff = 8192, .n_ctx_train = 4096, .rope_freq_base = 10000.0, .rms_eps = 1e-5,
     .fused = true, .sliding_window = 2047},
    /* Mixtral-8x7B-v0.1 (config.json: hidden_size 4096, num_hidden_layers 32,
     * num_attention_heads 32, num_key_value_heads 8, intermediate_size 14336,
     * num_local_experts 8, num_experts_per_tok 2, vocab_size 32000,
     * max_position_embeddings 32768, rope_theta 1e6, rms_norm_eps 1e-5, untied) */
    {.arch = "mixtral", .gguf_arch = "llama", .preset = "mixtral-8x7b", .n_vocab = 32000, .n_embd = 4096,
     .n_layer = 32, .n_head = 32, .n_head_kv = 8, .head_dim = 128, .n_ff = 14336, .n_ctx_train = 32768,
     .rope_freq_base = 1000000.0, .rms_eps = 1e-5, .n_expert = 8, .n_expert_used = 2},
    /* Qwen3-30B-A3B (config.json: hidden_size 2048, num_hidden_layers 48,
     * num_attention_heads 32, num_key_value_heads 4, head_dim 128,
     * intermediate_size 6144 (no dense layer uses it), moe_intermediate_size 768,
     * num_experts 128, num_experts_per_tok 8, norm_topk_prob true,
     * vocab_size 151936, max_position_embeddings 40960, rope_theta 1e6,
     * rms_norm_eps 1e-6, untied) */
    {.arch = "qwen3moe", .preset = "qwen3-30b-a3b", .n_vocab = 151936, .n_embd = 2048, .n_layer = 48, .n_head = 32,
     .n_head_kv = 4, .head_dim = 128, .n_ff = 6144, .n_ctx_train = 40960, .rope_freq_base = 1000000.0,
     .rms_eps = 1e-6, .write_head_dim = true, .has_qk_norm = true, .n_expert = 128, .n_expert_used = 8,
     .n_ff_exp = 768, .expert_weights_norm = true},
    /* Qwen1.5-MoE-A2.7B (config.json: hidden_size 2048, num_hidden_layers 24,
     * num_attention_heads 16, num_key_value_heads 16, intermediate_size 5632,
     * moe_intermediate_size 1408, shared_expert_intermediate_size 5632,
     * num_experts 60, num_experts_per_tok 4, norm_topk_prob false,
     * vocab_size 151936, max_position_embeddings 8192, rope_theta 1e6,
     * rms_norm_eps 1e-6, untied; QKV biases) */
    {.arch = "qwen2moe", .preset = "qwen1.5-moe-a2.7b", .n_vocab = 151936, .n_embd = 2048, .n_layer = 24,
     .n_head = 16, .n_head_kv = 16, .head_dim = 128, .n_ff = 5632, .n_ctx_train = 8192, .rope_freq_base = 1000000.0,
     .rms_eps = 1e-6, .has_qkv_bias = true, .n_expert = 60, .n_expert_used = 4, .n_ff_exp = 1408,
     .n_ff_shexp = 5632},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

static const char *const preset_names[] = {
    "llama/tiny",     "qwen2/tiny",        "qwen3/tiny",       "llama/llama2-7b", "llama/llama3-8b",
    "llama/llama3-70b", "qwen2/qwen2.5-7b", "qwen3/qwen3-8b", "olmo2/tiny",      "gemma2/tiny",
    "gemma3/tiny",      "phi3/tiny",        "olmo2/olmo2-7b", "gemma2/gemma2-9b", "gemma3/gemma3-12b",
    "phi3/phi3-mini",   "mixtral/tiny",     "qwen3moe/tiny",  "mixtral/mixtral-8x7b", "qwen3moe/qwen3-30b-a3b",
    "qwen2moe/tiny",    "qwen2moe/qwen1.5-moe-a2.7b",
    NULL,
};

const char *synth_gguf_arch(const synth_config *config)
{
    return config->gguf_arch ? config->gguf_arch : config->arch;
}

const char *const *strata_synth_preset_names(void)
{
    return preset_names;
}

typedef enum mix_kind {
    MIX_PURE, MIX_Q2_K, MIX_Q3_K_M, MIX_Q4_K_S, MIX_Q4_K_M, MIX_Q5_K_M,
    MIX_IQ_LOW,  /* the 1- and 2-bit i-quant mixes (ftypes 19, 20, 24, 28, 29, 31) */
    MIX_IQ3_XXS, MIX_IQ3_S, MIX_IQ3_M,
    MIX_IQ4,     /* iq4_nl_mix, iq4_xs_mix */
} mix_kind;

typedef struct mix_description {
    const char *name;
    mix_kind kind;
    int file_type;
    strata_dtype default_dtype;
} mix_description;

static const mix_description mixes[] = {
    {"q2_k_mix", MIX_Q2_K, 10, DTYPE_Q2_K},         {"q3_k_m", MIX_Q3_K_M, 12, DTYPE_Q3_K},
    {"q4_k_s", MIX_Q4_K_S, 14, DTYPE_Q4_K},         {"q4_k_m", MIX_Q4_K_M, 15, DTYPE_Q4_K},
    {"q5_k_m", MIX_Q5_K_M, 17, DTYPE_Q5_K},         {"iq2_xxs_mix", MIX_IQ_LOW, 19, DTYPE_IQ2_XXS},
    {"iq2_xs_mix", MIX_IQ_LOW, 20, DTYPE_IQ2_XS},   {"iq3_xxs_mix", MIX_IQ3_XXS, 23, DTYPE_IQ3_XXS},
    {"iq1_s_mix", MIX_IQ_LOW, 24, DTYPE_IQ1_S},     {"iq4_nl_mix", MIX_IQ4, 25, DTYPE_IQ4_NL},
    {"iq3_s_mix", MIX_IQ3_S, 26, DTYPE_IQ3_S},      {"iq3_m", MIX_IQ3_M, 27, DTYPE_IQ3_S},
    {"iq2_s_mix", MIX_IQ_LOW, 28, DTYPE_IQ2_XS},    {"iq2_m", MIX_IQ_LOW, 29, DTYPE_IQ2_S},
    {"iq4_xs_mix", MIX_IQ4, 30, DTYPE_IQ4_XS},      {"iq1_m_mix", MIX_IQ_LOW, 31, DTYPE_IQ1_M},
};
static const char *const mix_names[] = {"q2_k_mix",   "q3_k_m",     "q4_k_s",      "q4_k_m",    "q5_k_m",
                                        "iq2_xxs_mix", "iq2_xs_mix", "iq3_xxs_mix", "iq1_s_mix", "iq4_nl_mix",
                                        "iq3_s_mix",  "iq3_m",      "iq2_s_mix",   "iq2_m",     "iq4_xs_mix",
                                        "iq1_m_mix",  NULL};

const char *const *synth_mix_names(void)
{
    return mix_names;
}

/* llama.cpp's LLAMA_FTYPE of a file whose matrices are all of dtype (the
 * K-quants map to their "_S" variant, the closest named mix; mxfp4 to the
 * only ftype that names it, MOSTLY_MXFP4_MOE). */
static int pure_file_type(strata_dtype dtype)
{
    switch (dtype) {
    case DTYPE_F32: return 0;
    case DTYPE_F16: return 1;
    case DTYPE_Q4_0: return 2;
    case DTYPE_Q4_1: return 3;
    case DTYPE_Q8_0: return 7;
    case DTYPE_Q5_0: return 8;
    case DTYPE_Q5_1: return 9;
    case DTYPE_Q2_K: return 10;
    case DTYPE_Q3_K: return 11;
    case DTYPE_Q4_K: return 14;
    case DTYPE_Q5_K: return 16;
    case DTYPE_Q6_K: return 18;
    case DTYPE_IQ2_XXS: return 19;
    case DTYPE_IQ2_XS: return 20;
    case DTYPE_IQ3_XXS: return 23;
    case DTYPE_IQ1_S: return 24;
    case DTYPE_IQ4_NL: return 25;
    case DTYPE_IQ3_S: return 26;
    case DTYPE_IQ2_S: return 28;
    case DTYPE_IQ4_XS: return 30;
    case DTYPE_IQ1_M: return 31;
    case DTYPE_BF16: return 32;
    case DTYPE_TQ1_0: return 36;
    case DTYPE_TQ2_0: return 37;
    case DTYPE_MXFP4: return 38;
    default: return -1;
    }
}

static strata_status parse_type(const char *type, mix_description *out, strata_error *err)
{
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++) {
        if (strcmp(type, mixes[i].name) == 0) {
            *out = mixes[i];
            return STRATA_OK;
        }
    }
    strata_dtype dtype;
    if (dtype_from_name(type, &dtype) && pure_file_type(dtype) >= 0) {
        *out = (mix_description){type, MIX_PURE, pure_file_type(dtype), dtype};
        return STRATA_OK;
    }
    return strata_fail(err, STRATA_INVALID_INPUT,
                       "synth: unknown type '%s' (expected f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, "
                       "q3_k, q4_k, q5_k, q6_k, iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq4_nl, "
                       "iq4_xs, mxfp4, tq1_0, tq2_0, or a mix: q2_k_mix, q3_k_m, q4_k_s, q4_k_m, q5_k_m, "
                       "iq1_s_mix, iq1_m_mix, iq2_xxs_mix, iq2_xs_mix, iq2_s_mix, iq2_m, iq3_xxs_mix, iq3_s_mix, "
                       "iq3_m, iq4_nl_mix, iq4_xs_mix)",
                       type);
}

strata_status synth_find_config(const char *arch, const char *preset, synth_config *out, strata_error *err)
{
    for (size_t i = 0; i < N_PRESETS; i++) {
        if (strcmp(presets[i].preset, preset) != 0)
            continue;
        if (arch && strcmp(presets[i].arch, arch) != 0)
            continue;
        *out = presets[i];
        return STRATA_OK;
    }
    return strata_fail(err, STRATA_INVALID_INPUT,
                       "synth: no preset '%s' for architecture '%s' (known: llama/tiny, qwen2/tiny, qwen3/tiny, "
                       "olmo2/tiny, gemma2/tiny, gemma3/tiny, phi3/tiny, llama/llama2-7b, llama/llama3-8b, "
                       "llama/llama3-70b, qwen2/qwen2.5-7b, qwen3/qwen3-8b, olmo2/olmo2-7b, gemma2/gemma2-9b, "
                       "gemma3/gemma3-12b, phi3/phi3-mini, mixtral/tiny, qwen3moe/tiny, mixtral/mixtral-8x7b, "
                       "qwen3moe/qwen3-30b-a3b, qwen2moe/tiny, qwen2moe/qwen1.5-moe-a2.7b)",
                       preset, arch ? arch : "(any)");
}

typedef enum tensor_role {
    ROLE_TOKEN_EMBD, ROLE_OUTPUT, ROLE_ATTN_Q, ROLE_ATTN_K, ROLE_ATTN_V, ROLE_ATTN_OUTPUT,
    ROLE_FFN_GATE, ROLE_FFN_UP, ROLE_FFN_DOWN
} tensor_role;

static bool use_more_bits(int64_t layer, int64_t n_layer)
{
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

/* The choice of the i-quant mixes for one matrix that is neither the output
 * nor the token embedding (see the table at the top). */
static strata_dtype iq_mix_dtype(const mix_description *mix, const synth_config *config, tensor_role role,
                                 int64_t layer)
{
    const int64_t n = config->n_layer;
    const bool gqa4 = config->n_head / config->n_head_kv >= 4;
    const bool iq1 = mix->file_type == 24 || mix->file_type == 31;
    const bool iq2_s_or_m = mix->file_type == 28 || mix->file_type == 29;
    switch (mix->kind) {
    case MIX_IQ_LOW:
        if (role == ROLE_ATTN_V)
            return gqa4 ? DTYPE_Q4_K : iq2_s_or_m ? DTYPE_IQ3_S : DTYPE_Q2_K;
        if (role == ROLE_FFN_DOWN && layer < n / 8)
            return iq2_s_or_m ? DTYPE_IQ3_S : DTYPE_Q2_K;
        if (role == ROLE_ATTN_OUTPUT && (iq1 || iq2_s_or_m))
            return iq1 ? DTYPE_IQ2_XXS : DTYPE_IQ3_S;
        break;
    case MIX_IQ3_XXS:
        if (role == ROLE_ATTN_V)
            return gqa4 ? DTYPE_Q4_K : DTYPE_IQ3_S;
        if (role == ROLE_ATTN_Q || role == ROLE_ATTN_K)
            return DTYPE_IQ2_S;
        if (role == ROLE_FFN_DOWN)
            return layer < n / 8 ? DTYPE_Q4_K : DTYPE_Q3_K;
        if (role == ROLE_ATTN_OUTPUT)
            return DTYPE_IQ3_S;
        break;
    case MIX_IQ3_S:
        if (role == ROLE_ATTN_V && gqa4)
            return DTYPE_Q4_K;
        break;
    case MIX_IQ3_M:
        if (role == ROLE_ATTN_V || role == ROLE_ATTN_OUTPUT || (role == ROLE_FFN_DOWN && layer < n / 8))
            return DTYPE_Q4_K;
        break;
    case MIX_IQ4:
        if ((role == ROLE_ATTN_V && gqa4) || (role == ROLE_FFN_DOWN && layer < n / 8))
            return DTYPE_Q5_K;
        break;
    default:
        break;
    }
    return mix->default_dtype;
}

/* llama.cpp's rules for models with experts (see the table at the top):
 * true with *out set when one decides the matrix's format. */
static bool expert_mix_dtype(const mix_description *mix, const synth_config *config, tensor_role role,
                             int64_t layer, strata_dtype *out)
{
    const bool eight = config->n_expert == 8;
    if (mix->kind == MIX_IQ_LOW) {
        if (role == ROLE_ATTN_V && config->n_expert >= 4)
            *out = DTYPE_Q4_K;
        else if (role == ROLE_ATTN_K && eight)
            *out = DTYPE_Q4_K;
        else if (role == ROLE_ATTN_OUTPUT && eight)
            *out = DTYPE_Q5_K;
        else
            return false;
        return true;
    }
    if (!eight)
        return false;
    if (role == ROLE_ATTN_K || role == ROLE_ATTN_V) {
        *out = DTYPE_Q8_0;
        return true;
    }
    if (role == ROLE_ATTN_OUTPUT) {
        const bool to_q5_k = mix->kind == MIX_Q2_K || mix->kind == MIX_Q3_K_M || mix->kind == MIX_Q4_K_S ||
                             mix->kind == MIX_Q4_K_M || mix->kind == MIX_IQ3_XXS || mix->kind == MIX_IQ3_S ||
                             mix->kind == MIX_IQ3_M || mix->kind == MIX_IQ4;
        *out = to_q5_k ? DTYPE_Q5_K : mix->default_dtype;
        return true;
    }
    if (role == ROLE_FFN_DOWN && mix->kind == MIX_IQ3_M && use_more_bits(layer, config->n_layer)) {
        *out = DTYPE_Q4_K;
        return true;
    }
    return false;
}

/* The mix's choice for one matrix, before the block-size fallback. */
static strata_dtype mix_dtype(const mix_description *mix, const synth_config *config, tensor_role role,
                              int64_t layer)
{
    int64_t n = config->n_layer;
    if (mix->kind == MIX_PURE)
        return mix->default_dtype;
    strata_dtype expert_choice;
    if (role != ROLE_OUTPUT && role != ROLE_TOKEN_EMBD && config->n_expert > 0 &&
        expert_mix_dtype(mix, config, role, layer, &expert_choice))
        return expert_choice;
    bool is_output = role == ROLE_OUTPUT || (role == ROLE_TOKEN_EMBD && config->tied_output);
    /* the 1-2 bit mixes and iq3_xxs_mix: q5_k output, a cheaper embedding */
    const bool low_bits = mix->kind == MIX_IQ_LOW || mix->kind == MIX_IQ3_XXS;
    if (is_output)
        return low_bits ? DTYPE_Q5_K : DTYPE_Q6_K;
    if (role == ROLE_TOKEN_EMBD) {
        if (mix->kind == MIX_IQ3_XXS || mix->file_type == 28 || mix->file_type == 29)
            return DTYPE_IQ3_S;
        return mix->kind == MIX_IQ_LOW ? DTYPE_Q2_K : mix->default_dtype;
    }
    switch (mix->kind) {
    case MIX_Q2_K:
        if (role == ROLE_ATTN_V)
            return config->n_head / config->n_head_kv >= 4 ? DTYPE_Q4_K : DTYPE_Q3_K;
        if (role == ROLE_ATTN_OUTPUT || role == ROLE_FFN_DOWN)
            return DTYPE_Q3_K;
        break;
    case MIX_Q3_K_M:
        if (role == ROLE_ATTN_V)
            return layer < 2 ? DTYPE_Q5_K : DTYPE_Q4_K;
        if (role == ROLE_ATTN_OUTPUT)
            return DTYPE_Q4_K;
        if (role == ROLE_FFN_DOWN)
            return layer < n / 16 ? DTYPE_Q5_K : DTYPE_Q4_K;
        break;
    case MIX_Q4_K_S:
        if ((role == ROLE_ATTN_V || role == ROLE_FFN_DOWN) && layer < n / 8)
            return DTYPE_Q5_K;
        break;
    case MIX_Q4_K_M:
    case MIX_Q5_K_M:
        if ((role == ROLE_ATTN_V || role == ROLE_FFN_DOWN) && use_more_bits(layer, n))
            return DTYPE_Q6_K;
        break;
    case MIX_IQ_LOW:
    case MIX_IQ3_XXS:
    case MIX_IQ3_S:
    case MIX_IQ3_M:
    case MIX_IQ4:
        return iq_mix_dtype(mix, config, role, layer);
    case MIX_PURE:
        break;
    }
    return mix->default_dtype;
}

strata_dtype synth_fallback_dtype(strata_dtype dtype, int64_t ne0)
{
    const dtype_traits *traits = dtype_get_traits((int)dtype);
    if (ne0 % traits->block_elements == 0)
        return dtype;
    switch (dtype) {
    case DTYPE_Q2_K:
    case DTYPE_Q3_K: dtype = DTYPE_Q4_0; break;
    case DTYPE_Q4_K: dtype = DTYPE_Q5_0; break;
    case DTYPE_Q5_K: dtype = DTYPE_Q5_1; break;
    case DTYPE_Q6_K: dtype = DTYPE_Q8_0; break;
    case DTYPE_TQ1_0:
    case DTYPE_TQ2_0: dtype = DTYPE_Q4_0; break;
    case DTYPE_IQ2_XXS:
    case DTYPE_IQ2_XS:
    case DTYPE_IQ2_S:
    case DTYPE_IQ3_XXS:
    case DTYPE_IQ3_S:
    case DTYPE_IQ1_S:
    case DTYPE_IQ1_M:
    case DTYPE_IQ4_XS: dtype = DTYPE_IQ4_NL; break;
    default: break;
    }
    traits = dtype_get_traits((int)dtype);
    return ne0 % traits->block_elements == 0 ? dtype : DTYPE_F16;
}

typedef struct plan_builder {
    synth_plan *plan;
    const mix_description *mix;
    int64_t capacity;
} plan_builder;

static synth_tensor *push_tensor(plan_builder *builder, const char *name, int n_dims, int64_t ne0, int64_t ne1)
{
    synth_plan *plan = builder->plan;
    if (plan->n_tensors == builder->capacity)
        return NULL; /* capacity is computed exactly up front */
    synth_tensor *tensor = &plan->tensors[plan->n_tensors++];
    memset(tensor, 0, sizeof *tensor);
    snprintf(tensor->name, sizeof tensor->name, "%s", name);
    tensor->n_dims = n_dims;
    tensor->ne[0] = ne0;
    tensor->ne[1] = ne1;
    tensor->ne[2] = 1;
    return tensor;
}

static void add_vector(plan_builder *builder, const char *name, int64_t ne0, synth_init init, double scale)
{
    synth_tensor *tensor = push_tensor(builder, name, 1, ne0, 1);
    tensor->dtype = DTYPE_F32;
    tensor->init = init;
    tensor->scale = scale;
    tensor->bytes = (uint64_t)ne0 * 4;
}

/* Projections are N(0, 1/n_in) so activations keep their scale through the
 * layers; the embedding is N(0, 1/n_embd) so tied logits have unit spread. */
static void set_matrix(synth_tensor *tensor, strata_dtype dtype)
{
    tensor->dtype = dtype;
    tensor->init = SYNTH_INIT_GAUSSIAN;
    tensor->scale = 1.0 / sqrt((double)tensor->ne[0]);
    size_t row_bytes = 0;
    dtype_row_bytes(tensor->dtype, tensor->ne[0], &row_bytes);
    tensor->bytes = (uint64_t)row_bytes * (uint64_t)synth_tensor_rows(tensor);
}

static void add_matrix(plan_builder *builder, const char *name, int64_t ne0, int64_t ne1, tensor_role role,
                       int64_t layer)
{
    synth_tensor *tensor = push_tensor(builder, name, 2, ne0, ne1);
    set_matrix(tensor, synth_fallback_dtype(mix_dtype(builder->mix, &builder->plan->config, role, layer), ne0));
}

/* The experts of one FFN matrix: [ne0, ne1, n_expert], in the format the mix
 * gives the dense matrix of that role. */
static void add_experts(plan_builder *builder, const char *name, int64_t ne0, int64_t ne1, tensor_role role,
                        int64_t layer)
{
    synth_tensor *tensor = push_tensor(builder, name, 3, ne0, ne1);
    tensor->ne[2] = builder->plan->config.n_expert;
    set_matrix(tensor, synth_fallback_dtype(mix_dtype(builder->mix, &builder->plan->config, role, layer), ne0));
}

/* The router [n_embd, n_expert]: f32 whatever the type (its logits choose the
 * experts; llama.cpp never quantizes it). */
static void add_router(plan_builder *builder, const char *name)
{
    const synth_config *c = &builder->plan->config;
    set_matrix(push_tensor(builder, name, 2, c->n_embd, c->n_expert), DTYPE_F32);
}

static const double norm_noise = 0.1; /* std of norm weights around 1 */
static const double bias_scale = 0.1;

static void add_layer(plan_builder *builder, int64_t layer)
{
    const synth_config *c = &builder->plan->config;
    int64_t q_size = c->n_head * c->head_dim;
    int64_t kv_size = c->n_head_kv * c->head_dim;
    char name[64];
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%lld.%s", (long long)layer, suffix), name)
    if (!c->no_pre_norms)
        add_vector(builder, NAME("attn_norm.weight"), c->n_embd, SYNTH_INIT_NEAR_ONE, norm_noise);
    if (c->fused) {
        /* Q, K, V rows in one matrix; the mix treats it as attn_q */
        add_matrix(builder, NAME("attn_qkv.weight"), c->n_embd, q_size + 2 * kv_size, ROLE_ATTN_Q, layer);
    } else {
        add_matrix(builder, NAME("attn_q.weight"), c->n_embd, q_size, ROLE_ATTN_Q, layer);
        if (c->has_qkv_bias)
            add_vector(builder, NAME("attn_q.bias"), q_size, SYNTH_INIT_GAUSSIAN, bias_scale);
        add_matrix(builder, NAME("attn_k.weight"), c->n_embd, kv_size, ROLE_ATTN_K, layer);
        if (c->has_qkv_bias)
            add_vector(builder, NAME("attn_k.bias"), kv_size, SYNTH_INIT_GAUSSIAN, bias_scale);
        add_matrix(builder, NAME("attn_v.weight"), c->n_embd, kv_size, ROLE_ATTN_V, layer);
        if (c->has_qkv_bias)
            add_vector(builder, NAME("attn_v.bias"), kv_size, SYNTH_INIT_GAUSSIAN, bias_scale);
    }
    if (c->has_qk_norm) {
        add_vector(builder, NAME("attn_q_norm.weight"), c->qk_norm_full ? q_size : c->head_dim, SYNTH_INIT_NEAR_ONE,
                   norm_noise);
        add_vector(builder, NAME("attn_k_norm.weight"), c->qk_norm_full ? kv_size : c->head_dim,
                   SYNTH_INIT_NEAR_ONE, norm_noise);
    }
    add_matrix(builder, NAME("attn_output.weight"), q_size, c->n_embd, ROLE_ATTN_OUTPUT, layer);
    if (c->post_norms)
        add_vector(builder, NAME("post_attention_norm.weight"), c->n_embd, SYNTH_INIT_NEAR_ONE, norm_noise);
    if (!c->no_pre_norms)
        add_vector(builder, NAME("ffn_norm.weight"), c->n_embd, SYNTH_INIT_NEAR_ONE, norm_noise);
    if (c->n_expert > 0) {
        int64_t n_ff_exp = c->n_ff_exp ? c->n_ff_exp : c->n_ff;
        add_router(builder, NAME("ffn_gate_inp.weight"));
        add_experts(builder, NAME("ffn_gate_exps.weight"), c->n_embd, n_ff_exp, ROLE_FFN_GATE, layer);
        add_experts(builder, NAME("ffn_up_exps.weight"), c->n_embd, n_ff_exp, ROLE_FFN_UP, layer);
        add_experts(builder, NAME("ffn_down_exps.weight"), n_ff_exp, c->n_embd, ROLE_FFN_DOWN, layer);
        if (c->n_ff_shexp > 0) {
            /* the shared expert: its gate [n_embd, 1] f32 (the converter
             * writes it so, and llama.cpp's quantizer leaves a one-row
             * tensor alone); its FFN takes the dense FFN's rules, as
             * llama.cpp's quantizer matches it by the names ffn_gate,
             * ffn_up and ffn_down with the layer read from the name */
            set_matrix(push_tensor(builder, NAME("ffn_gate_inp_shexp.weight"), 2, c->n_embd, 1), DTYPE_F32);
            add_matrix(builder, NAME("ffn_gate_shexp.weight"), c->n_embd, c->n_ff_shexp, ROLE_FFN_GATE, layer);
            add_matrix(builder, NAME("ffn_up_shexp.weight"), c->n_embd, c->n_ff_shexp, ROLE_FFN_UP, layer);
            add_matrix(builder, NAME("ffn_down_shexp.weight"), c->n_ff_shexp, c->n_embd, ROLE_FFN_DOWN, layer);
        }
    } else if (c->fused) {
        add_matrix(builder, NAME("ffn_up.weight"), c->n_embd, 2 * c->n_ff, ROLE_FFN_UP, layer);
    } else {
        add_matrix(builder, NAME("ffn_gate.weight"), c->n_embd, c->n_ff, ROLE_FFN_GATE, layer);
        add_matrix(builder, NAME("ffn_up.weight"), c->n_embd, c->n_ff, ROLE_FFN_UP, layer);
    }
    if (c->n_expert == 0)
        add_matrix(builder, NAME("ffn_down.weight"), c->n_ff, c->n_embd, ROLE_FFN_DOWN, layer);
    if (c->post_norms)
        add_vector(builder, NAME("post_ffw_norm.weight"), c->n_embd, SYNTH_INIT_NEAR_ONE, norm_noise);
#undef NAME
}

strata_status synth_plan_create(const char *arch, const char *preset, const char *type, int64_t n_vocab_override,
                                synth_plan *out, strata_error *err)
{
    memset(out, 0, sizeof *out);
    mix_description mix;
    strata_status status = synth_find_config(arch, preset, &out->config, err);
    if (status != STRATA_OK || (status = parse_type(type, &mix, err)) != STRATA_OK)
        return status;
    synth_config *c = &out->config;
    if (n_vocab_override > 0)
        c->n_vocab = n_vocab_override;
    out->file_type = mix.file_type;

    int64_t per_layer = 9 + (c->has_qkv_bias ? 3 : 0) + (c->has_qk_norm ? 2 : 0) + (c->post_norms ? 2 : 0) +
                        (c->n_expert > 0 ? 1 : 0) /* the router */ + (c->n_ff_shexp > 0 ? 4 : 0);
    int64_t capacity = 6 + c->n_layer * per_layer;
    out->tensors = calloc((size_t)capacity, sizeof *out->tensors);
    if (!out->tensors)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "synth: cannot allocate a plan of %lld tensors",
                           (long long)capacity);
    plan_builder builder = {out, &mix, capacity};
    if (c->llama3_rope)
        add_vector(&builder, "rope_freqs.weight", c->head_dim / 2, SYNTH_INIT_ROPE_FREQS, 0.0);
    if (c->longrope_orig_ctx) {
        int64_t n_rot = c->n_rot ? c->n_rot : c->head_dim;
        add_vector(&builder, "rope_factors_long.weight", n_rot / 2, SYNTH_INIT_RAMP, 0.0);
        add_vector(&builder, "rope_factors_short.weight", n_rot / 2, SYNTH_INIT_NEAR_ONE, 0.05);
    }
    add_matrix(&builder, "token_embd.weight", c->n_embd, c->n_vocab, ROLE_TOKEN_EMBD, 0);
    for (int64_t layer = 0; layer < c->n_layer; layer++)
        add_layer(&builder, layer);
    add_vector(&builder, "output_norm.weight", c->n_embd, SYNTH_INIT_NEAR_ONE, norm_noise);
    if (!c->tied_output)
        add_matrix(&builder, "output.weight", c->n_embd, c->n_vocab, ROLE_OUTPUT, 0);

    for (int64_t i = 0; i < out->n_tensors; i++)
        out->total_bytes += out->tensors[i].bytes;
    return STRATA_OK;
}

void synth_plan_free(synth_plan *plan)
{
    if (!plan)
        return;
    free(plan->tensors);
    plan->tensors = NULL;
    plan->n_tensors = 0;
}
