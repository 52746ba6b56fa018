/* Independent double-precision references of the backend ops, written from
 * the contracts in backends/backend.h with plain loops (no code shared with
 * any backend). Inputs are plain host arrays, innermost dimension first;
 * quantized weights are expected already dequantized to f32. */
#ifndef STRATA_OP_REFERENCE_H
#define STRATA_OP_REFERENCE_H

#include <stdbool.h>
#include <stdint.h>

/* out[t * n_out + o] = sum_i w[o * n_in + i] * x[t * n_in + i]; when
 * magnitude is not NULL it receives sum_i (w x)^2 per output, the scale of the
 * rounding error a dot product can have (see ref_nmse_scaled). */
void ref_matmul(const float *w, const float *x, int64_t n_in, int64_t n_out, int64_t n_tok, double *out,
                double *magnitude);

/* out = x / sqrt(mean(x^2) + eps) (* weight when not NULL), per row of n */
void ref_rms_norm(const float *x, const float *weight, int64_t n, int64_t rows, float eps, double *out);

/* out = softmax of each row of n */
void ref_softmax(const float *x, int64_t n, int64_t rows, double *out);

double ref_silu(double x);
double ref_gelu_tanh(double x);

/* Rotary embedding of x[head_dim, n_heads, n_tok] at positions; factors may be NULL;
 * the rotated dims scaled by attn_factor (0: 1). */
void ref_rope(const float *x, const int32_t *positions, const float *factors, int64_t head_dim, int64_t n_heads,
              int64_t n_tok, int n_rot, bool neox, float freq_base, float freq_scale, float attn_factor, double *out);

/* Causal GQA attention: q[head_dim, n_heads, n_tok], k/v[head_dim, n_kv_heads,
 * n_ctx] (as f32), positions[n_tok]; out[head_dim, n_heads, n_tok]. */
void ref_attention(const float *q, const float *k, const float *v, const int32_t *positions, int64_t head_dim,
                   int64_t n_heads, int64_t n_kv_heads, int64_t n_tok, int64_t n_kv, double scale,
                   int sliding_window, double softcap, double *out);

/* The indices of the k largest values of each column of x[n, n_tok],
 * largest first, the lower index first among equal values: out[k, n_tok]. */
void ref_topk(const float *x, int64_t n, int64_t n_tok, int64_t k, int32_t *out);

/* Mixture of experts for one token: out[n_out, k] = expert ids[j]'s matrix
 * w + ids[j] * n_out * n_in (rows of n_in) times x + j * x_stride, with
 * magnitude as ref_matmul's. */
void ref_matmul_id(const float *w, const float *x, int64_t x_stride, const int32_t *ids, int64_t k, int64_t n_in,
                   int64_t n_out, double *out, double *magnitude);

/* sum (a - ref)^2 / sum ref^2 (or the plain sum when ref is all zero). */
double ref_nmse(const float *a, const double *ref, int64_t n);

/* sum (a - ref)^2 / sum scale2: the error against a known magnitude per
 * value. For dot products scale2 = sum of squared terms, so a result that
 * happens to cancel to near zero does not inflate the measure the way it
 * inflates plain nmse when there are only a few outputs. */
double ref_nmse_scaled(const float *a, const double *ref, const double *scale2, int64_t n);

#endif
