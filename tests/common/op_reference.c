/* Double-precision op references; see op_reference.h. */
#include "op_reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ref_matmul(const float *w, const float *x, int64_t n_in, int64_t n_out, int64_t n_tok, double *out,
                double *magnitude)
{
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t o = 0; o < n_out; o++) {
            double sum = 0.0, squares = 0.0;
            for (int64_t i = 0; i < n_in; i++) {
                double term = (double)w[o * n_in + i] * (double)x[t * n_in + i];
                sum += term;
                squares += term * term;
            }
            out[t * n_out + o] = sum;
            if (magnitude)
                magnitude[t * n_out + o] = squares;
        }
}

void ref_rms_norm(const float *x, const float *weight, int64_t n, int64_t rows, float eps, double *out)
{
    for (int64_t r = 0; r < rows; r++) {
        double mean_square = 0.0;
        for (int64_t i = 0; i < n; i++)
            mean_square += (double)x[r * n + i] * x[r * n + i];
        mean_square /= (double)n;
        double inv = 1.0 / sqrt(mean_square + eps);
        for (int64_t i = 0; i < n; i++)
            out[r * n + i] = x[r * n + i] * inv * (weight ? (double)weight[i] : 1.0);
    }
}

void ref_softmax(const float *x, int64_t n, int64_t rows, double *out)
{
    for (int64_t r = 0; r < rows; r++) {
        double max = -INFINITY, sum = 0.0;
        for (int64_t i = 0; i < n; i++)
            max = fmax(max, x[r * n + i]);
        for (int64_t i = 0; i < n; i++)
            sum += exp(x[r * n + i] - max);
        for (int64_t i = 0; i < n; i++)
            out[r * n + i] = exp(x[r * n + i] - max) / sum;
    }
}

double ref_silu(double x)
{
    return x / (1.0 + exp(-x));
}

double ref_gelu_tanh(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

void ref_rope(const float *x, const int32_t *positions, const float *factors, int64_t head_dim, int64_t n_heads,
              int64_t n_tok, int n_rot, bool neox, float freq_base, float freq_scale, float attn_factor, double *out)
{
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t h = 0; h < n_heads; h++) {
            const float *in = x + (t * n_heads + h) * head_dim;
            double *y = out + (t * n_heads + h) * head_dim;
            for (int64_t i = 0; i < head_dim; i++)
                y[i] = in[i];
            for (int i = 0; i < n_rot / 2; i++) {
                double theta = positions[t] * (double)freq_scale * pow(freq_base, -2.0 * i / n_rot);
                if (factors)
                    theta /= factors[i];
                int64_t a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
                double m = attn_factor != 0.0f ? attn_factor : 1.0;
                y[a] = m * (in[a] * cos(theta) - in[b] * sin(theta));
                y[b] = m * (in[a] * sin(theta) + in[b] * cos(theta));
            }
        }
}

void ref_attention(const float *q, const float *k, const float *v, const int32_t *positions, int64_t head_dim,
                   int64_t n_heads, int64_t n_kv_heads, int64_t n_tok, int64_t n_kv, double scale,
                   int sliding_window, double softcap, double *out)
{
    double *weights = malloc((size_t)(n_kv > 0 ? n_kv : 1) * sizeof *weights);
    if (!weights)
        return;
    int64_t group = n_heads / n_kv_heads;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t h = 0; h < n_heads; h++) {
            const float *qh = q + (t * n_heads + h) * head_dim;
            double *y = out + (t * n_heads + h) * head_dim;
            int64_t g = h / group;
            double max = -INFINITY;
            for (int64_t j = 0; j < n_kv; j++) {
                bool visible = j <= positions[t] && (sliding_window <= 0 || j > positions[t] - sliding_window);
                if (!visible) {
                    weights[j] = -INFINITY;
                    continue;
                }
                double s = 0.0;
                for (int64_t i = 0; i < head_dim; i++)
                    s += (double)qh[i] * k[(j * n_kv_heads + g) * head_dim + i];
                s *= scale;
                if (softcap > 0.0)
                    s = softcap * tanh(s / softcap);
                weights[j] = s;
                max = fmax(max, s);
            }
            double sum = 0.0;
            for (int64_t j = 0; j < n_kv; j++) {
                weights[j] = weights[j] == -INFINITY ? 0.0 : exp(weights[j] - max);
                sum += weights[j];
            }
            for (int64_t i = 0; i < head_dim; i++) {
                double acc = 0.0;
                for (int64_t j = 0; j < n_kv; j++)
                    acc += weights[j] * v[(j * n_kv_heads + g) * head_dim + i];
                y[i] = sum > 0.0 ? acc / sum : 0.0;
            }
        }
    free(weights);
}

double ref_nmse(const float *a, const double *ref, int64_t n)
{
    double err = 0.0, norm = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double diff = (double)a[i] - ref[i];
        err += diff * diff;
        norm += ref[i] * ref[i];
    }
    return norm > 0.0 ? err / norm : err;
}

double ref_nmse_scaled(const float *a, const double *ref, const double *scale2, int64_t n)
{
    double err = 0.0, norm = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double diff = (double)a[i] - ref[i];
        err += diff * diff;
        norm += scale2[i];
    }
    return norm > 0.0 ? err / norm : err;
}

void ref_topk(const float *x, int64_t n, int64_t n_tok, int64_t k, int32_t *out)
{
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t j = 0; j < k; j++) {
            /* the j-th pick: the largest value not picked yet, lowest index on ties */
            int64_t best = -1;
            for (int64_t i = 0; i < n; i++) {
                bool taken = false;
                for (int64_t m = 0; m < j; m++)
                    taken = taken || out[t * k + m] == i;
                if (!taken && (best < 0 || (double)x[t * n + i] > (double)x[t * n + best]))
                    best = i;
            }
            out[t * k + j] = (int32_t)best;
        }
}

void ref_matmul_id(const float *w, const float *x, int64_t x_stride, const int32_t *ids, int64_t k, int64_t n_in,
                   int64_t n_out, double *out, double *magnitude)
{
    for (int64_t j = 0; j < k; j++)
        ref_matmul(w + (int64_t)ids[j] * n_out * n_in, x + j * x_stride, n_in, n_out, 1, out + j * n_out,
                   magnitude ? magnitude + j * n_out : NULL);
}
