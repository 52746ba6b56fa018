/* The planner and mixture-of-experts models (runtime/planner.c): the
 * experts' weights as their own placement unit, on hypothetical devices.
 *
 * The tensor tables are written here by hand at real sizes: qwen3-30b-a3b
 * (48 layers, 128 experts of which 8 are used) and mixtral-8x7b (32 layers,
 * 8 experts, 2 used), both in a q4_k_m-like mix (Q4_K, with Q6_K for attn_v,
 * ffn_down_exps and the output on the layers where llama.cpp's q4_k_m gives
 * more bits). No file is written.
 *
 * - --n-cpu-moe N (n_cpu_moe_set) puts exactly the expert tensors of layers
 *   [0, N) in host RAM and leaves the rest of those layers on the GPU;
 *   --cpu-moe (N = n_layer) every expert tensor; an override still wins;
 *   bad counts are refused with a message.
 * - Automatic: when the model does not fit the card whole, the planner
 *   keeps the experts of some layers in host RAM when that is predicted
 *   faster than whole layers on the CPU: more layers' attention on the
 *   card, the experts of as few layers as fit (with one fewer it does not
 *   fit). On a card that is full to the last megabytes the fastest may
 *   still run a layer whole on the CPU (its attention reads less than
 *   another layer's chosen experts). Its predicted decode speed is
 *   recomputed here from the plan's placement (bytes each device reads per
 *   token, only the used experts' share of an expert tensor, hand-offs), and
 *   compared with every (GPU layers, n_cpu_moe) pair laid out with both
 *   fixed: none that fits is faster.
 * - -ngl and --n-cpu-moe narrow the candidates: with -ngl 48 the count of
 *   layers whose experts stay in host RAM is still chosen, with --n-cpu-moe
 *   the layer count is still fitted, and both fixed to what cannot fit say
 *   what is short.
 * - A model that fits the card whole keeps its experts there.
 * - Qwen2-MoE's shared expert (ffn_{gate,up,down}_shexp, ffn_gate_inp_shexp)
 *   is no expert tensor: --cpu-moe moves only the _exps tensors of the
 *   converter's file (tests/data/families/qwen2moe.gguf) to host RAM. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"
#include "strata.h"
#include "test_check.h"

#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)
#define ALIGNMENT 256
#define MAX_TENSORS 1024
#define NAME_LENGTH 48

/* --- real-size tensor tables ------------------------------------------------------------------ */

typedef struct moe_model {
    const char *label;
    plan_model_shape shape;
    plan_tensor_input tensors[MAX_TENSORS];
    char names[MAX_TENSORS][NAME_LENGTH];
    int64_t n_tensors;
} moe_model;

/* llama.cpp's q4_k_m gives more bits to attn_v and ffn_down on these layers */
static bool more_bits(int64_t layer, int64_t n_layer)
{
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

static void add_tensor(moe_model *m, const char *name, strata_dtype dtype, int64_t ne0, int64_t ne1, int64_t ne2,
                       plan_role role, int64_t layer, bool matrix, bool experts)
{
    int64_t t = m->n_tensors++;
    snprintf(m->names[t], NAME_LENGTH, "%s", name);
    size_t row_bytes = 0;
    bool ok = dtype_row_bytes(dtype, ne0, &row_bytes);
    CHECK(ok, "%s: %lld elements of %s", name, (long long)ne0, dtype_name(dtype));
    m->tensors[t] = (plan_tensor_input){
        .name = m->names[t], .dtype = dtype, .row_elements = ne0, .rows = ne1 * ne2,
        .bytes = (uint64_t)row_bytes * (uint64_t)(ne1 * ne2), .role = role, .layer = layer, .is_matrix = matrix,
        .n_expert = experts ? m->shape.n_expert : 0, .experts_used = experts ? m->shape.n_expert_used : 0};
}

/* The tensors of a llama-style MoE model of shape m->shape (Q/K norms when
 * qk_norm, as qwen3moe has). */
static void build_model(moe_model *m, bool qk_norm)
{
    const plan_model_shape *s = &m->shape;
    int64_t q = s->n_head * s->head_dim, kv = s->n_head_kv * s->head_dim;
    m->n_tensors = 0;
    add_tensor(m, "token_embd.weight", DTYPE_Q4_K, s->n_embd, s->n_vocab, 1, PLAN_ROLE_EMBEDDING, -1, true, false);
    for (int64_t l = 0; l < s->n_layer; l++) {
        char name[NAME_LENGTH];
        strata_dtype more = more_bits(l, s->n_layer) ? DTYPE_Q6_K : DTYPE_Q4_K;
#define LAYER(suffix, dtype, ne0, ne1, ne2, matrix, experts)                                                       \
    snprintf(name, sizeof name, "blk.%lld." suffix, (long long)l);                                               \
    add_tensor(m, name, dtype, ne0, ne1, ne2, PLAN_ROLE_LAYER, l, matrix, experts)
        LAYER("attn_norm.weight", DTYPE_F32, s->n_embd, 1, 1, false, false);
        LAYER("attn_q.weight", DTYPE_Q4_K, s->n_embd, q, 1, true, false);
        LAYER("attn_k.weight", DTYPE_Q4_K, s->n_embd, kv, 1, true, false);
        LAYER("attn_v.weight", more, s->n_embd, kv, 1, true, false);
        LAYER("attn_output.weight", DTYPE_Q4_K, q, s->n_embd, 1, true, false);
        if (qk_norm) {
            LAYER("attn_q_norm.weight", DTYPE_F32, s->head_dim, 1, 1, false, false);
            LAYER("attn_k_norm.weight", DTYPE_F32, s->head_dim, 1, 1, false, false);
        }
        LAYER("ffn_norm.weight", DTYPE_F32, s->n_embd, 1, 1, false, false);
        LAYER("ffn_gate_inp.weight", DTYPE_F32, s->n_embd, s->n_expert, 1, true, false);
        LAYER("ffn_gate_exps.weight", DTYPE_Q4_K, s->n_embd, s->n_ff_exp, s->n_expert, true, true);
        LAYER("ffn_up_exps.weight", DTYPE_Q4_K, s->n_embd, s->n_ff_exp, s->n_expert, true, true);
        LAYER("ffn_down_exps.weight", more, s->n_ff_exp, s->n_embd, s->n_expert, true, true);
#undef LAYER
    }
    add_tensor(m, "output_norm.weight", DTYPE_F32, s->n_embd, 1, 1, PLAN_ROLE_OUTPUT_NORM, -1, false, false);
    add_tensor(m, "output.weight", DTYPE_Q6_K, s->n_embd, s->n_vocab, 1, PLAN_ROLE_OUTPUT, -1, true, false);
}

static void qwen3_30b_a3b(moe_model *m)
{
    m->label = "qwen3-30b-a3b";
    m->shape = (plan_model_shape){.n_vocab = 151936, .n_embd = 2048, .n_layer = 48, .n_head = 32, .n_head_kv = 4,
                                  .head_dim = 128, .n_ff = 6144, .n_ctx_train = 40960, .n_expert = 128,
                                  .n_expert_used = 8, .n_ff_exp = 768};
    build_model(m, true);
}

static void mixtral_8x7b(moe_model *m)
{
    m->label = "mixtral-8x7b";
    m->shape = (plan_model_shape){.n_vocab = 32000, .n_embd = 4096, .n_layer = 32, .n_head = 32, .n_head_kv = 8,
                                  .head_dim = 128, .n_ff = 14336, .n_ctx_train = 32768, .n_expert = 8,
                                  .n_expert_used = 2, .n_ff_exp = 14336};
    build_model(m, false);
}

/* --- devices ------------------------------------------------------------------------------------ */

static plan_device_input card(double gib, double bandwidth)
{
    plan_device_input d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "cuda0");
    d.kind = DEVICE_KIND_CUDA;
    d.total_bytes = (uint64_t)(gib * (double)GIB);
    d.budget_bytes = d.total_bytes - 512 * MIB;
    d.alignment = ALIGNMENT;
    d.read_bandwidth = bandwidth;
    d.matmul_flops = 100e12;
    d.link_bandwidth = 25e9;
    return d;
}

static plan_device_input host(double gib, double bandwidth)
{
    plan_device_input d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "cpu");
    d.kind = DEVICE_KIND_CPU;
    d.total_bytes = (uint64_t)(gib * (double)GIB);
    d.budget_bytes = d.total_bytes - GIB;
    d.alignment = ALIGNMENT;
    d.read_bandwidth = bandwidth;
    d.matmul_flops = 1e12;
    return d;
}

static plan_request request_for(const moe_model *m, const plan_device_input *devices, int n_devices)
{
    plan_request r = {.shape = m->shape, .tensors = m->tensors, .n_tensors = m->n_tensors, .devices = devices,
                      .n_devices = n_devices, .n_ctx = 4096, .max_batch = 512, .kv_dtype = DTYPE_F16};
    return r;
}

static bool is_expert_name(const char *name)
{
    return strstr(name, "_exps.") != NULL;
}

/* --- the reference prediction ------------------------------------------------------------------ */

/* Seconds per decoded token of the plan's placement, counted here: every
 * device reads its weights (an expert tensor only the used experts' share,
 * the embedding one row) and its layers' KV cache at position 64; each
 * change of device along embedding -> layers -> output and each layer
 * whose experts sit elsewhere (3 hand-offs) costs PLAN_HANDOFF_SECONDS and
 * one activation over the card's link. */
static double ref_decode_seconds(const plan_request *r, const strata_plan *plan)
{
    double bytes[STRATA_MAX_DEVICES] = {0};
    const plan_model_shape *s = &r->shape;
    for (int64_t t = 0; t < r->n_tensors; t++) {
        const plan_tensor_input *tensor = &r->tensors[t];
        int d = plan->tensors[t].device;
        if (d < 0)
            continue;
        if (tensor->role == PLAN_ROLE_EMBEDDING)
            bytes[d] += (double)tensor->bytes / (double)tensor->rows;
        else if (tensor->n_expert > 0)
            bytes[d] += (double)tensor->bytes * (double)tensor->experts_used / (double)tensor->n_expert;
        else
            bytes[d] += (double)tensor->bytes;
    }
    int handoffs = 0, at = plan->embedding_device;
    for (int64_t l = 0; l < s->n_layer; l++) {
        int d = plan->layer_device[l];
        bytes[d] += 2.0 * (double)(s->n_head_kv * s->head_dim) * 2.0 * 64.0;
        handoffs += d != at;
        at = d;
        bool detour = false;
        for (int64_t t = 0; t < r->n_tensors; t++)
            detour = detour || (r->tensors[t].layer == l && r->tensors[t].n_expert > 0 && plan->tensors[t].device != d);
        handoffs += detour ? 3 : 0;
    }
    handoffs += plan->output_device != at;
    double seconds = handoffs * (PLAN_HANDOFF_SECONDS + (double)s->n_embd * 4.0 / r->devices[0].link_bandwidth);
    for (int d = 0; d < r->n_devices; d++)
        seconds += bytes[d] / r->devices[d].read_bandwidth;
    return seconds;
}

static int64_t gpu_layers_of(const strata_plan *plan, int cpu)
{
    int64_t n = 0;
    for (int64_t l = 0; l < plan->n_layer; l++)
        n += plan->layer_device[l] != cpu;
    return n;
}

/* --- --n-cpu-moe and --cpu-moe ----------------------------------------------------------------- */

/* Every expert tensor of layers [0, n) on the CPU, every other layer tensor
 * on the card (all layers are GPU layers here); the CPU's weights are those
 * tensors plus the embedding. */
static void check_named_tensors(const char *what, const moe_model *m, const strata_plan *plan, int64_t n,
                                int64_t exception)
{
    uint64_t expected_cpu = 0;
    int wrong = 0;
    for (int64_t t = 0; t < m->n_tensors; t++) {
        const plan_tensor_input *tensor = &m->tensors[t];
        int expected = 0;
        if (tensor->role == PLAN_ROLE_EMBEDDING ||
            (t != exception && is_expert_name(tensor->name) && tensor->layer < n))
            expected = 1;
        if (expected == 1)
            expected_cpu += (tensor->bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        if (plan->tensors[t].device != expected && wrong++ < 3)
            CHECK(false, "%s: %s on %d, expected %s", what, tensor->name, plan->tensors[t].device,
                  expected ? "cpu" : "cuda0");
    }
    CHECK(wrong == 0, "%s: %d tensors misplaced", what, wrong);
    CHECK(plan->devices[1].weights_bytes == expected_cpu, "%s: cpu holds %llu bytes of weights, expected %llu", what,
          (unsigned long long)plan->devices[1].weights_bytes, (unsigned long long)expected_cpu);
    CHECK(plan->n_cpu_moe == n && !plan->n_cpu_moe_chosen, "%s: plan says n_cpu_moe %lld (chosen %d)", what,
          (long long)plan->n_cpu_moe, plan->n_cpu_moe_chosen);
}

static void test_named_layers(void)
{
    static moe_model m;
    qwen3_30b_a3b(&m);
    plan_device_input devices[] = {card(80, 2000e9), host(128, 60e9)};
    const int64_t counts[] = {1, 10, 47, 48};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        for (int pinned = 0; pinned < 2; pinned++) {
            plan_request r = request_for(&m, devices, 2);
            r.n_cpu_moe_set = true;
            r.n_cpu_moe = counts[i];
            r.gpu_layers_set = pinned;
            r.gpu_layers = pinned ? 48 : 0;
            strata_plan plan;
            strata_error err = {0};
            char what[96];
            snprintf(what, sizeof what, "qwen3-30b-a3b 80G --n-cpu-moe %lld%s", (long long)counts[i],
                     pinned ? " -ngl 48" : "");
            if (planner_run(&r, &plan, &err) != STRATA_OK) {
                CHECK(false, "%s: %s", what, err.message);
                continue;
            }
            CHECK(plan.fits && gpu_layers_of(&plan, 1) == 48, "%s: fits %d with %lld GPU layers", what, plan.fits,
                  (long long)gpu_layers_of(&plan, 1));
            check_named_tensors(what, &m, &plan, counts[i], -1);
            CHECK(plan.n_handoffs == 1 + 3 * (int)counts[i], "%s: %d hand-offs, expected %d", what, plan.n_handoffs,
                  1 + 3 * (int)counts[i]);
            CHECK(strstr(plan.note, "stay in host RAM") && strstr(plan.note, "as asked"), "%s: note '%s'", what,
                  plan.note);
            CHECK(fabs(plan.tg_tokens_per_s * ref_decode_seconds(&r, &plan) - 1) < 1e-9,
                  "%s: predicted %.4f tokens/s, the reference %.4f", what, plan.tg_tokens_per_s,
                  1 / ref_decode_seconds(&r, &plan));
            planner_result_release(&plan);
        }
    }
    /* an override that names an expert tensor wins over --n-cpu-moe */
    plan_override_input keep[] = {{"^blk\\.3\\.ffn_down_exps", 0}};
    plan_request r = request_for(&m, devices, 2);
    r.n_cpu_moe_set = true;
    r.n_cpu_moe = 10;
    r.overrides = keep;
    r.n_overrides = 1;
    strata_plan plan;
    strata_error err = {0};
    if (planner_run(&r, &plan, &err) == STRATA_OK) {
        int64_t exception = -1;
        for (int64_t t = 0; t < m.n_tensors; t++)
            if (strcmp(m.names[t], "blk.3.ffn_down_exps.weight") == 0)
                exception = t;
        check_named_tensors("--n-cpu-moe 10 -ot blk.3.ffn_down_exps=cuda0", &m, &plan, 10, exception);
        planner_result_release(&plan);
    } else {
        CHECK(false, "--n-cpu-moe 10 with an override: %s", err.message);
    }
    /* 0 is every expert with its layer: nothing on the CPU but the embedding */
    r = request_for(&m, devices, 2);
    r.n_cpu_moe_set = true;
    if (planner_run(&r, &plan, &err) == STRATA_OK) {
        check_named_tensors("--n-cpu-moe 0", &m, &plan, 0, -1);
        planner_result_release(&plan);
    }
}

static void expect_invalid(const char *what, const plan_request *r, const char *message)
{
    strata_plan plan;
    strata_error err = {0};
    strata_status status = planner_run(r, &plan, &err);
    CHECK(status == STRATA_INVALID_INPUT && strstr(err.message, message), "%s: status %d, message '%s'", what,
          status, err.message);
    if (status == STRATA_OK)
        planner_result_release(&plan);
}

static void test_invalid_counts(void)
{
    static moe_model m;
    qwen3_30b_a3b(&m);
    plan_device_input devices[] = {card(24, 1000e9), host(64, 60e9)};
    plan_request r = request_for(&m, devices, 2);
    r.n_cpu_moe_set = true;
    r.n_cpu_moe = 49;
    expect_invalid("--n-cpu-moe 49 of 48 layers", &r, "--n-cpu-moe 49: the model has 48 layers");
    r.n_cpu_moe = -1;
    expect_invalid("--n-cpu-moe -1", &r, "--n-cpu-moe -1 is negative");
    r = request_for(&m, devices, 1);
    r.n_cpu_moe_set = true;
    r.n_cpu_moe = 4;
    expect_invalid("--n-cpu-moe 4 without the CPU", &r, "cpu is not among the devices");
}

/* --- the automatic choice ---------------------------------------------------------------------- */

/* Lays out the request with -ngl layers and --n-cpu-moe k fixed; returns
 * the reference tokens/s when it fits, else 0. */
static double pinned_speed(const plan_request *base, int64_t layers, int64_t k)
{
    plan_request r = *base;
    r.gpu_layers_set = true;
    r.gpu_layers = layers;
    r.n_cpu_moe_set = true;
    r.n_cpu_moe = k;
    strata_plan plan;
    strata_error err = {0};
    if (planner_run(&r, &plan, &err) != STRATA_OK) {
        CHECK(false, "-ngl %lld --n-cpu-moe %lld: %s", (long long)layers, (long long)k, err.message);
        return 0;
    }
    double speed = plan.fits ? 1 / ref_decode_seconds(&r, &plan) : 0;
    planner_result_release(&plan);
    return speed;
}

static void test_automatic(const char *what, moe_model *m, double card_gib, double card_bandwidth)
{
    plan_device_input devices[] = {card(card_gib, card_bandwidth), host(64, 60e9)};
    plan_request r = request_for(m, devices, 2);
    strata_plan plan;
    strata_error err = {0};
    if (planner_run(&r, &plan, &err) != STRATA_OK) {
        CHECK(false, "%s: %s", what, err.message);
        return;
    }
    int64_t n_layer = m->shape.n_layer, k = plan.n_cpu_moe;
    double predicted = plan.tg_tokens_per_s, reference = 1 / ref_decode_seconds(&r, &plan);
    CHECK(plan.fits && plan.n_cpu_moe_chosen && k > 0, "%s: fits %d, experts of %lld layers kept (chosen %d)", what,
          plan.fits, (long long)k, plan.n_cpu_moe_chosen);
    int64_t gpu_layers = gpu_layers_of(&plan, 1);
    CHECK(gpu_layers > n_layer - k, "%s: %lld GPU layers: the experts of %lld layers are all in CPU layers", what,
          (long long)gpu_layers, (long long)k);
    CHECK(fabs(predicted / reference - 1) < 1e-9, "%s: predicted %.4f tokens/s, the reference %.4f", what, predicted,
          reference);
    /* the alternative it was weighed against: whole layers on the CPU */
    double whole_best = 0;
    int64_t whole_layers = -1;
    for (int64_t layers = 0; layers <= n_layer; layers++) {
        double speed = pinned_speed(&r, layers, 0);
        if (speed > whole_best) {
            whole_best = speed;
            whole_layers = layers;
        }
    }
    CHECK(whole_layers >= 0 && whole_layers < n_layer, "%s: whole layers fit best with %lld GPU layers", what,
          (long long)whole_layers);
    CHECK(fabs(plan.whole_layers_tg_tokens_per_s / whole_best - 1) < 1e-9 && plan.whole_layers_gpu_layers == whole_layers,
          "%s: the plan reports whole layers at %.4f tokens/s with %lld GPU layers, the reference %.4f with %lld", what,
          plan.whole_layers_tg_tokens_per_s, (long long)plan.whole_layers_gpu_layers, whole_best,
          (long long)whole_layers);
    CHECK(predicted > whole_best, "%s: experts on the CPU %.2f tokens/s, not faster than whole layers %.2f", what,
          predicted, whole_best);
    CHECK(strstr(plan.note, "against") != NULL, "%s: the note does not compare: '%s'", what, plan.note);
    /* as few layers' experts as needed: one fewer does not fit */
    CHECK(whole_layers < gpu_layers, "%s: %lld GPU layers, no more than whole layers' %lld", what,
          (long long)gpu_layers, (long long)whole_layers);
    CHECK(pinned_speed(&r, gpu_layers, k - 1) == 0, "%s: the experts of %lld layers would have done", what,
          (long long)(k - 1));
    /* no pair of (GPU layers, kept experts) that fits is faster */
    double fastest = 0;
    for (int64_t layers = n_layer - 8; layers <= n_layer; layers++)
        for (int64_t kept = n_layer - layers + 1; kept <= n_layer; kept++) {
            double speed = pinned_speed(&r, layers, kept);
            fastest = speed > fastest ? speed : fastest;
        }
    CHECK(fastest <= predicted * (1 + 1e-9), "%s: a pinned layout predicts %.4f tokens/s, the plan %.4f", what,
          fastest, predicted);
    printf("%s: experts of layers 0-%lld in host RAM, %lld of %lld layers on the card: predicted %.1f "
           "tokens/s; whole layers (%lld on the card): %.1f tokens/s; %d hand-offs; card %.2f GiB of %.2f\n",
           what, (long long)k - 1, (long long)gpu_layers, (long long)n_layer, predicted, (long long)whole_layers,
           whole_best,
           plan.n_handoffs, (double)plan.devices[0].planned_bytes / (double)GIB,
           (double)plan.devices[0].budget_bytes / (double)GIB);
    double model_bytes = 0;
    for (int64_t t = 0; t < m->n_tensors; t++)
        model_bytes += (double)m->tensors[t].bytes;
    printf("    weights %.2f GiB; other layouts, predicted: every layer's experts in host RAM (--cpu-moe): %.1f tokens/s; everything "
           "on the CPU (-ngl 0): %.1f tokens/s\n",
           model_bytes / (double)GIB, pinned_speed(&r, n_layer, n_layer), pinned_speed(&r, 0, 0));
    planner_result_release(&plan);
}

static void test_fits_whole(void)
{
    static moe_model m;
    qwen3_30b_a3b(&m);
    plan_device_input devices[] = {card(24, 1000e9), host(64, 60e9)};
    plan_request r = request_for(&m, devices, 2);
    strata_plan plan;
    strata_error err = {0};
    if (planner_run(&r, &plan, &err) != STRATA_OK) {
        CHECK(false, "qwen3-30b-a3b on 24G: %s", err.message);
        return;
    }
    CHECK(plan.fits && plan.n_cpu_moe == 0 && gpu_layers_of(&plan, 1) == 48 && plan.n_handoffs == 1,
          "qwen3-30b-a3b fits 24G whole: fits %d, n_cpu_moe %lld, %lld GPU layers, %d hand-offs", plan.fits,
          (long long)plan.n_cpu_moe, (long long)gpu_layers_of(&plan, 1), plan.n_handoffs);
    planner_result_release(&plan);
}

/* -ngl and --n-cpu-moe narrow the candidates; fitting goes on around them */
static void test_choices_narrow(void)
{
    static moe_model m;
    qwen3_30b_a3b(&m);
    plan_device_input devices[] = {card(16, 717e9), host(64, 60e9)};
    plan_request r = request_for(&m, devices, 2);
    r.gpu_layers_set = true;
    r.gpu_layers = 48;
    strata_plan plan;
    strata_error err = {0};
    if (planner_run(&r, &plan, &err) == STRATA_OK) {
        CHECK(plan.fits && plan.n_cpu_moe_chosen && plan.n_cpu_moe == 6 && gpu_layers_of(&plan, 1) == 48,
              "-ngl 48 on 16G: fits %d, the experts of %lld layers kept (chosen %d)", plan.fits,
              (long long)plan.n_cpu_moe, plan.n_cpu_moe_chosen);
        planner_result_release(&plan);
    }
    /* too few layers' experts for every layer on the card: the plan says what is short */
    r.n_cpu_moe_set = true;
    r.n_cpu_moe = 2;
    if (planner_run(&r, &plan, &err) == STRATA_OK) {
        CHECK(!plan.fits && strstr(plan.shortfall, "and 48 GPU layers") && strstr(plan.shortfall, "cuda0 needs"),
              "-ngl 48 --n-cpu-moe 2 on 16G: fits %d, '%s'", plan.fits, plan.shortfall);
        planner_result_release(&plan);
    }
    /* --n-cpu-moe alone: the layer count is still fitted (whole layers go to the CPU as needed) */
    r.gpu_layers_set = false;
    if (planner_run(&r, &plan, &err) == STRATA_OK) {
        int64_t gpu_layers = gpu_layers_of(&plan, 1);
        CHECK(plan.fits && plan.n_cpu_moe == 2 && gpu_layers < 48 && gpu_layers > 40,
              "--n-cpu-moe 2 on 16G: fits %d with %lld GPU layers", plan.fits, (long long)gpu_layers);
        planner_result_release(&plan);
    }
}

/* --cpu-moe on the qwen2moe fixture, planned for a 1 GiB card and the host:
 * with every layer on the card (-ngl 2), the experts' tensors on the CPU,
 * the shared expert and its gate (and the router) on the card with the rest
 * of their layer. */
static void test_shared_expert_stays(void)
{
    const char *path = STRATA_TEST_DATA_DIR "/families/qwen2moe.gguf";
    strata_device_spec specs[2] = {{.name = "cuda0", .memory_bytes = GIB, .bandwidth = 1e12},
                                   {.name = "cpu", .memory_bytes = 8 * GIB, .bandwidth = 60e9}};
    strata_placement_params params = strata_placement_default_params();
    params.specs = specs;
    params.n_specs = 2;
    params.cpu_moe = true;
    params.gpu_layers_set = true; /* every layer on the card (-ngl 2) */
    params.gpu_layers = 2;
    strata_plan *plan = NULL;
    strata_error err = {0};
    if (strata_plan_file(path, &params, &plan, &err) != STRATA_OK) {
        CHECK(false, "qwen2moe --cpu-moe plan: %s", err.message);
        return;
    }
    int experts_on_cpu = 0, shared_on_card = 0;
    for (int64_t t = 0; t < plan->n_tensors; t++) {
        const strata_plan_tensor *tensor = &plan->tensors[t];
        if (strstr(tensor->name, "_exps.weight")) {
            CHECK(tensor->device == 1, "--cpu-moe: %s on the CPU (device %d)", tensor->name, tensor->device);
            experts_on_cpu += tensor->device == 1;
        } else if (strstr(tensor->name, "shexp") || strstr(tensor->name, "ffn_gate_inp")) {
            CHECK(tensor->device == 0, "--cpu-moe: %s stays on the card (device %d)", tensor->name, tensor->device);
            shared_on_card += tensor->device == 0 && strstr(tensor->name, "shexp") != NULL;
        }
    }
    CHECK(plan->fits && experts_on_cpu == 2 * 3 && shared_on_card == 2 * 4 && plan->n_cpu_moe == 2,
          "qwen2moe --cpu-moe: fits %d, %d expert tensors on the CPU, %d shared-expert tensors on the card, "
          "n_cpu_moe %lld",
          plan->fits, experts_on_cpu, shared_on_card, (long long)plan->n_cpu_moe);
    printf("ok   qwen2moe --cpu-moe: %d expert tensors on the CPU, %d shared-expert tensors on the card\n",
           experts_on_cpu, shared_on_card);
    strata_plan_free(plan);
}

int main(void)
{
    static moe_model m;
    test_shared_expert_stays();
    test_named_layers();
    test_invalid_counts();
    test_fits_whole();
    test_choices_narrow();
    qwen3_30b_a3b(&m);
    test_automatic("qwen3-30b-a3b q4_k_m-like on 16 GiB (717 GB/s) + 64 GiB host (60 GB/s)", &m, 16, 717e9);
    mixtral_8x7b(&m);
    test_automatic("mixtral-8x7b q4_k_m-like on 24 GiB (1008 GB/s) + 64 GiB host (60 GB/s)", &m, 24, 1008e9);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("planner with experts: all checks passed\n");
    return 0;
}
