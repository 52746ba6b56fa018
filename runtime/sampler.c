/* Token sampling: penalties, then top-k, top-p and min-p on the
 * temperature-1 distribution, then temperature, then a draw from a seeded
 * generator (the order llama.cpp's default chain uses). Temperature <= 0 is
 * greedy. Same seed + same history + same logits = same token. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"

typedef struct candidate {
    int32_t id;
    float logit;
    float prob;
} candidate;

struct strata_sampler {
    strata_sampler_params params;
    int64_t n_vocab;
    uint64_t rng_state[4];   /* xoshiro256** */
    int32_t *history;        /* ring of the last repeat_last_n accepted tokens */
    int64_t history_count;   /* tokens in the ring (<= repeat_last_n) */
    int64_t history_next;    /* where the next token goes */
    int32_t *token_counts;   /* [n_vocab] scratch, all zero between calls */
    candidate *candidates;   /* [n_vocab] scratch */
};

strata_sampler_params strata_sampler_default_params(void)
{
    strata_sampler_params params = {
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .seed = 0,
    };
    return params;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* uniform in [0, 1) with 53 random bits */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

strata_status strata_sampler_create(const strata_sampler_params *params, int64_t n_vocab, strata_sampler **out,
                                    strata_error *err)
{
    *out = NULL;
    if (n_vocab < 1 || n_vocab > (1 << 30))
        return strata_fail(err, STRATA_INVALID_INPUT, "sampler: vocabulary size %lld is invalid", (long long)n_vocab);
    if (!(params->temperature == params->temperature) || params->top_p < 0 || params->min_p > 1 ||
        !(params->repeat_penalty > 0) || params->repeat_last_n < 0)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "sampler: invalid parameters (temperature %g, top-p %g, min-p %g, repeat penalty %g, "
                           "repeat last n %d)",
                           params->temperature, params->top_p, params->min_p, params->repeat_penalty,
                           params->repeat_last_n);
    strata_sampler *sampler = calloc(1, sizeof *sampler);
    if (!sampler)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    sampler->params = *params;
    sampler->n_vocab = n_vocab;
    uint64_t seed_state = params->seed;
    for (int i = 0; i < 4; i++)
        sampler->rng_state[i] = splitmix64(&seed_state);
    sampler->history = calloc((size_t)params->repeat_last_n + 1, sizeof *sampler->history);
    sampler->token_counts = calloc((size_t)n_vocab, sizeof *sampler->token_counts);
    sampler->candidates = malloc((size_t)n_vocab * sizeof *sampler->candidates);
    if (!sampler->history || !sampler->token_counts || !sampler->candidates) {
        strata_sampler_free(sampler);
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory for a sampler over %lld tokens",
                           (long long)n_vocab);
    }
    *out = sampler;
    return STRATA_OK;
}

void strata_sampler_free(strata_sampler *sampler)
{
    if (!sampler)
        return;
    free(sampler->history);
    free(sampler->token_counts);
    free(sampler->candidates);
    free(sampler);
}

void strata_sampler_accept(strata_sampler *sampler, int32_t token)
{
    int64_t capacity = sampler->params.repeat_last_n;
    if (capacity == 0)
        return;
    sampler->history[sampler->history_next] = token;
    sampler->history_next = (sampler->history_next + 1) % capacity;
    if (sampler->history_count < capacity)
        sampler->history_count++;
}

static bool penalties_active(const strata_sampler_params *p)
{
    return p->repeat_last_n > 0 && (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f ||
                                    p->frequency_penalty != 0.0f);
}

static void apply_penalties(strata_sampler *sampler)
{
    const strata_sampler_params *p = &sampler->params;
    for (int64_t i = 0; i < sampler->history_count; i++) {
        int32_t token = sampler->history[i];
        if (token >= 0 && token < sampler->n_vocab)
            sampler->token_counts[token]++;
    }
    for (int64_t i = 0; i < sampler->history_count; i++) {
        int32_t token = sampler->history[i];
        if (token < 0 || token >= sampler->n_vocab || sampler->token_counts[token] == 0)
            continue;
        float *logit = &sampler->candidates[token].logit;
        if (*logit > 0)
            *logit /= p->repeat_penalty;
        else
            *logit *= p->repeat_penalty;
        *logit -= (float)sampler->token_counts[token] * p->frequency_penalty + p->presence_penalty;
        sampler->token_counts[token] = 0; /* each distinct token once; leaves the scratch zeroed */
    }
}

/* descending by logit, ascending id on ties (deterministic) */
static int compare_candidates(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Moves the k best candidates to the front, sorted; returns k. Uses a
 * selection pass (O(n k) worst case is avoided by sorting only when k is
 * large relative to n). */
static int64_t keep_top_k(candidate *candidates, int64_t n, int64_t k)
{
    if (k <= 0 || k >= n) {
        qsort(candidates, (size_t)n, sizeof *candidates, compare_candidates);
        return n;
    }
    /* min-heap of the k best seen so far, root = worst of them */
    for (int64_t i = k / 2 - 1; i >= 0; i--)
        for (int64_t parent = i;;) {
            int64_t child = 2 * parent + 1;
            if (child >= k)
                break;
            if (child + 1 < k && compare_candidates(&candidates[child + 1], &candidates[child]) > 0)
                child++;
            if (compare_candidates(&candidates[child], &candidates[parent]) <= 0)
                break;
            candidate t = candidates[child];
            candidates[child] = candidates[parent];
            candidates[parent] = t;
            parent = child;
        }
    for (int64_t i = k; i < n; i++) {
        if (compare_candidates(&candidates[i], &candidates[0]) >= 0)
            continue; /* not better than the worst kept */
        candidates[0] = candidates[i];
        for (int64_t parent = 0;;) {
            int64_t child = 2 * parent + 1;
            if (child >= k)
                break;
            if (child + 1 < k && compare_candidates(&candidates[child + 1], &candidates[child]) > 0)
                child++;
            if (compare_candidates(&candidates[child], &candidates[parent]) <= 0)
                break;
            candidate t = candidates[child];
            candidates[child] = candidates[parent];
            candidates[parent] = t;
            parent = child;
        }
    }
    qsort(candidates, (size_t)k, sizeof *candidates, compare_candidates);
    return k;
}

/* probs of the first n (sorted) candidates at temperature t */
static void softmax_sorted(candidate *candidates, int64_t n, float temperature)
{
    double max_logit = candidates[0].logit, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = exp(((double)candidates[i].logit - max_logit) / temperature);
        candidates[i].prob = (float)e;
        sum += e;
    }
    for (int64_t i = 0; i < n; i++)
        candidates[i].prob = (float)(candidates[i].prob / sum);
}

static int32_t argmax(const float *logits, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return (int32_t)best;
}

int32_t strata_sampler_sample(strata_sampler *sampler, const float *logits)
{
    const strata_sampler_params *p = &sampler->params;
    int64_t n = sampler->n_vocab;
    if (p->temperature <= 0 && !penalties_active(p))
        return argmax(logits, n);

    candidate *candidates = sampler->candidates;
    for (int64_t i = 0; i < n; i++) {
        candidates[i].id = (int32_t)i;
        candidates[i].logit = isnan(logits[i]) ? -INFINITY : logits[i];
    }
    if (penalties_active(p))
        apply_penalties(sampler);
    if (p->temperature <= 0) {
        int64_t best = 0;
        for (int64_t i = 1; i < n; i++)
            if (candidates[i].logit > candidates[best].logit)
                best = i;
        return candidates[best].id;
    }

    n = keep_top_k(candidates, n, p->top_k);
    softmax_sorted(candidates, n, 1.0f);
    if (p->top_p < 1.0f) {
        double cumulative = 0;
        for (int64_t i = 0; i < n; i++) {
            cumulative += candidates[i].prob;
            if (cumulative >= p->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0) {
        float threshold = candidates[0].prob * p->min_p;
        int64_t kept = 1;
        while (kept < n && candidates[kept].prob >= threshold)
            kept++;
        n = kept;
    }
    softmax_sorted(candidates, n, p->temperature);
    double target = rng_uniform(sampler->rng_state), cumulative = 0;
    for (int64_t i = 0; i < n; i++) {
        cumulative += candidates[i].prob;
        if (target < cumulative)
            return candidates[i].id;
    }
    return candidates[n - 1].id;
}
