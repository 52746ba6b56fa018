/* Sampler: greedy is argmax; the same seed gives the same tokens; top-k,
 * top-p and min-p keep exactly the set a brute-force computation keeps, and
 * the empirical frequencies follow the temperature-scaled softmax over it;
 * penalties move the logits as documented. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"

#include "test_check.h"

enum { N_VOCAB = 50, DRAWS = 40000 };

static strata_sampler *make(strata_sampler_params params)
{
    strata_sampler *sampler = NULL;
    strata_error err = {0};
    if (strata_sampler_create(&params, N_VOCAB, &sampler, &err) != STRATA_OK) {
        printf("FAIL: sampler_create: %s\n", err.message);
        exit(1);
    }
    return sampler;
}

static void fill_logits(float *logits, unsigned seed)
{
    srand(seed);
    for (int i = 0; i < N_VOCAB; i++)
        logits[i] = (float)(rand() % 1000) / 200.0f - 2.5f;
}

/* The set the filters must keep, computed the slow obvious way: rank every
 * token, then apply top-k, top-p and min-p on the temperature-1 softmax. */
static void expected_distribution(const float *logits, const strata_sampler_params *p, double *probs)
{
    int order[N_VOCAB];
    for (int i = 0; i < N_VOCAB; i++)
        order[i] = i;
    for (int i = 0; i < N_VOCAB; i++)
        for (int j = i + 1; j < N_VOCAB; j++)
            if (logits[order[j]] > logits[order[i]] || (logits[order[j]] == logits[order[i]] && order[j] < order[i])) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    int kept = p->top_k > 0 && p->top_k < N_VOCAB ? p->top_k : N_VOCAB;
    double sum = 0, p1[N_VOCAB];
    for (int i = 0; i < kept; i++)
        sum += exp((double)logits[order[i]] - logits[order[0]]);
    for (int i = 0; i < kept; i++)
        p1[i] = exp((double)logits[order[i]] - logits[order[0]]) / sum;
    if (p->top_p < 1) {
        double cumulative = 0;
        for (int i = 0; i < kept; i++) {
            cumulative += p1[i];
            if (cumulative >= p->top_p) {
                kept = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0) {
        int k = 1;
        while (k < kept && p1[k] >= p1[0] * p->min_p)
            k++;
        kept = k;
    }
    memset(probs, 0, sizeof(double) * N_VOCAB);
    sum = 0;
    for (int i = 0; i < kept; i++)
        sum += exp(((double)logits[order[i]] - logits[order[0]]) / p->temperature);
    for (int i = 0; i < kept; i++)
        probs[order[i]] = exp(((double)logits[order[i]] - logits[order[0]]) / p->temperature) / sum;
}

static void check_distribution(const char *label, strata_sampler_params params, unsigned logits_seed)
{
    float logits[N_VOCAB];
    fill_logits(logits, logits_seed);
    double expected[N_VOCAB];
    expected_distribution(logits, &params, expected);
    strata_sampler *sampler = make(params);
    int counts[N_VOCAB] = {0};
    for (int i = 0; i < DRAWS; i++)
        counts[strata_sampler_sample(sampler, logits)]++;
    double max_deviation = 0;
    for (int t = 0; t < N_VOCAB; t++) {
        CHECK(expected[t] > 0 || counts[t] == 0, "%s: token %d drawn %d times but filtered out", label, t, counts[t]);
        double observed = (double)counts[t] / DRAWS;
        /* 5 standard deviations of a binomial proportion, plus a floor */
        double sigma = sqrt(expected[t] * (1 - expected[t]) / DRAWS);
        double deviation = fabs(observed - expected[t]);
        CHECK(deviation <= 5 * sigma + 1e-3, "%s: token %d frequency %.4f, expected %.4f", label, t, observed,
              expected[t]);
        if (deviation > max_deviation)
            max_deviation = deviation;
    }
    printf("%-28s max |freq - p| = %.4f\n", label, max_deviation);
    strata_sampler_free(sampler);
}

int main(void)
{
    float logits[N_VOCAB];
    fill_logits(logits, 7);
    int best = 0;
    for (int i = 1; i < N_VOCAB; i++)
        if (logits[i] > logits[best])
            best = i;

    /* greedy */
    strata_sampler_params greedy = strata_sampler_default_params();
    greedy.temperature = 0;
    strata_sampler *sampler = make(greedy);
    CHECK(strata_sampler_sample(sampler, logits) == best, "greedy did not pick the argmax");
    strata_sampler_free(sampler);

    /* same seed, same sequence; another seed, another sequence */
    strata_sampler_params params = strata_sampler_default_params();
    params.top_k = 0;
    params.top_p = 1;
    params.min_p = 0;
    params.temperature = 1.5f;
    params.seed = 42;
    strata_sampler *a = make(params), *b = make(params);
    params.seed = 43;
    strata_sampler *c = make(params);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 200; i++) {
        int32_t ta = strata_sampler_sample(a, logits), tb = strata_sampler_sample(b, logits),
                tc = strata_sampler_sample(c, logits);
        same_ab &= ta == tb;
        same_ac &= ta == tc;
    }
    CHECK(same_ab, "same seed gave different tokens");
    CHECK(!same_ac, "different seeds gave the same 200 tokens");
    strata_sampler_free(a);
    strata_sampler_free(b);
    strata_sampler_free(c);

    /* filters and temperature against the brute-force distribution */
    strata_sampler_params plain = params;
    plain.seed = 1;
    plain.temperature = 1.0f;
    check_distribution("plain softmax, T=1", plain, 1);
    strata_sampler_params hot = plain;
    hot.temperature = 0.5f;
    check_distribution("T=0.5", hot, 2);
    strata_sampler_params topk = plain;
    topk.top_k = 5;
    check_distribution("top-k 5", topk, 3);
    strata_sampler_params topp = plain;
    topp.top_p = 0.6f;
    check_distribution("top-p 0.6", topp, 4);
    strata_sampler_params minp = plain;
    minp.min_p = 0.3f;
    minp.temperature = 0.8f;
    check_distribution("min-p 0.3, T=0.8", minp, 5);
    check_distribution("defaults (k40 p.95 m.05 T.8)", strata_sampler_default_params(), 6);

    /* repeat penalty: a positive logit is divided, so a token that would win
     * greedily loses to the runner-up once it is in the history */
    float two[N_VOCAB];
    for (int i = 0; i < N_VOCAB; i++)
        two[i] = -5;
    two[3] = 2.0f;
    two[9] = 1.5f;
    strata_sampler_params penalized = greedy;
    penalized.repeat_penalty = 1.5f; /* 2.0 / 1.5 = 1.33 < 1.5 */
    sampler = make(penalized);
    CHECK(strata_sampler_sample(sampler, two) == 3, "before the history the best token wins");
    strata_sampler_accept(sampler, 3);
    CHECK(strata_sampler_sample(sampler, two) == 9, "repeat penalty did not demote a repeated token");
    strata_sampler_free(sampler);

    /* frequency penalty scales with the count; presence does not */
    strata_sampler_params frequency = greedy;
    frequency.frequency_penalty = 0.2f; /* 2.0 - 2*0.2 = 1.6 > 1.5, 2.0 - 3*0.2 = 1.4 < 1.5 */
    sampler = make(frequency);
    strata_sampler_accept(sampler, 3);
    strata_sampler_accept(sampler, 3);
    CHECK(strata_sampler_sample(sampler, two) == 3, "two repeats at 0.2 should not yet demote");
    strata_sampler_accept(sampler, 3);
    CHECK(strata_sampler_sample(sampler, two) == 9, "three repeats at 0.2 should demote");
    strata_sampler_free(sampler);

    /* the history is a window of repeat_last_n tokens */
    strata_sampler_params window = penalized;
    window.repeat_last_n = 2;
    sampler = make(window);
    strata_sampler_accept(sampler, 3);
    strata_sampler_accept(sampler, 20);
    strata_sampler_accept(sampler, 21);
    CHECK(strata_sampler_sample(sampler, two) == 3, "a token older than the window was still penalized");
    strata_sampler_free(sampler);

    /* bad parameters are errors, not crashes */
    strata_sampler_params bad = strata_sampler_default_params();
    bad.repeat_penalty = 0;
    strata_sampler *none = NULL;
    strata_error err = {0};
    CHECK(strata_sampler_create(&bad, N_VOCAB, &none, &err) == STRATA_INVALID_INPUT && none == NULL,
          "a zero repeat penalty was accepted");
    CHECK(strata_sampler_create(&params, 0, &none, &err) == STRATA_INVALID_INPUT, "an empty vocabulary was accepted");

    printf("%s: %d failure(s)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
