/* The memory planner (runtime/planner.c) on hypothetical device tables: the
 * tensor tables of `strata synth` presets (llama3-8b and llama3-70b at
 * q4_k_m, q8_0, q2_k and q2_k_mix; no weights are written) over 1-4 cards
 * of 8-80 GiB with and without 32-256 GiB of host RAM.
 *
 * Every expectation is computed here, apart from the planner:
 * - ref_account() counts what a layout puts on each device (weights rounded
 *   up to the alignment, KV = 2 x layers x n_ctx x n_head_kv x head_dim x
 *   element size, the scratch slots of one forward step, the workspace) and
 *   predicts decode tokens/s from the bandwidths;
 * - brute_force() tries every chain of layers through the devices (every
 *   split of the layers into contiguous runs in reverse list order) with the
 *   output on every device, so "fits" is checked against every placement the
 *   planner's design allows, not against the planner's own search.
 * Then: the plan's numbers equal ref_account's for the plan's layout, fits
 * equals brute_force's verdict, budgets hold, layers form one chain, and
 * -ngl, --tensor-split, overrides, caps, the context, the KV type and the
 * batch do what they say. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"
#include "synth.h"
#include "test_check.h"

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)
#define ALIGNMENT 256
#define GPU_BANDWIDTH 1000e9
#define CPU_BANDWIDTH 50e9
#define MAX_LAYERS 128

/* --- models from synth presets ------------------------------------------------------------- */

typedef struct test_model {
    synth_plan synth;
    plan_tensor_input *tensors;
    int64_t n_tensors;
    plan_model_shape shape;
    char label[64];
    uint64_t tensor_bytes; /* sum of every tensor's bytes */
} test_model;

/* Whether blk.N.<suffix> is read by the forward pass (and through a matmul):
 * what plan_tensor_table (runtime/plan_model.c) decides from a GGUF file's
 * names, written again from the architecture's tensor list. */
static bool layer_suffix(const synth_config *config, const char *suffix, bool *is_matrix)
{
    static const char *const matrices[] = {"attn_q.weight",   "attn_k.weight", "attn_v.weight", "attn_output.weight",
                                           "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};
    static const char *const biases[] = {"attn_q.bias", "attn_k.bias", "attn_v.bias"};
    static const char *const qk_norms[] = {"attn_q_norm.weight", "attn_k_norm.weight"};
    *is_matrix = false;
    for (size_t i = 0; i < sizeof matrices / sizeof matrices[0]; i++)
        if (strcmp(suffix, matrices[i]) == 0)
            return *is_matrix = true;
    if (strcmp(suffix, "attn_norm.weight") == 0 || strcmp(suffix, "ffn_norm.weight") == 0)
        return true;
    for (size_t i = 0; config->has_qkv_bias && i < 3; i++)
        if (strcmp(suffix, biases[i]) == 0)
            return true;
    for (size_t i = 0; config->has_qk_norm && i < 2; i++)
        if (strcmp(suffix, qk_norms[i]) == 0)
            return true;
    return false;
}

static bool load_model(const char *preset, const char *type, test_model *m)
{
    memset(m, 0, sizeof *m);
    strata_error err = {0};
    if (synth_plan_create(NULL, preset, type, 0, &m->synth, &err) != STRATA_OK) {
        CHECK(false, "synth_plan_create %s %s: %s", preset, type, err.message);
        return false;
    }
    const synth_config *c = &m->synth.config;
    snprintf(m->label, sizeof m->label, "%s %s", preset, type);
    m->shape = (plan_model_shape){.n_vocab = c->n_vocab, .n_embd = c->n_embd, .n_layer = c->n_layer,
                                  .n_head = c->n_head, .n_head_kv = c->n_head_kv, .head_dim = c->head_dim,
                                  .n_ff = c->n_ff, .n_ctx_train = c->n_ctx_train, .tied_output = c->tied_output};
    m->n_tensors = m->synth.n_tensors;
    m->tensors = calloc((size_t)m->n_tensors, sizeof *m->tensors);
    if (!m->tensors || c->n_layer > MAX_LAYERS) {
        CHECK(false, "%s: cannot set up", m->label);
        return false;
    }
    for (int64_t i = 0; i < m->n_tensors; i++) {
        const synth_tensor *s = &m->synth.tensors[i];
        plan_tensor_input *t = &m->tensors[i];
        t->name = s->name;
        t->dtype = s->dtype;
        t->row_elements = s->ne[0];
        t->rows = s->n_dims > 1 ? s->ne[1] : 1;
        t->bytes = s->bytes;
        t->layer = -1;
        t->role = PLAN_ROLE_UNUSED;
        long long layer;
        int consumed = 0;
        if (strcmp(s->name, "token_embd.weight") == 0) {
            t->role = PLAN_ROLE_EMBEDDING;
            t->is_matrix = true;
        } else if (strcmp(s->name, "output.weight") == 0) {
            t->role = PLAN_ROLE_OUTPUT;
            t->is_matrix = true;
        } else if (strcmp(s->name, "output_norm.weight") == 0) {
            t->role = PLAN_ROLE_OUTPUT_NORM;
        } else if (strcmp(s->name, "rope_freqs.weight") == 0) {
            t->role = PLAN_ROLE_ROPE_FREQS;
        } else if (sscanf(s->name, "blk.%lld.%n", &layer, &consumed) == 1 && consumed > 0 &&
                   layer_suffix(c, s->name + consumed, &t->is_matrix)) {
            t->role = PLAN_ROLE_LAYER;
            t->layer = layer;
        }
        m->tensor_bytes += s->bytes;
    }
    return true;
}

static void free_model(test_model *m)
{
    free(m->tensors);
    synth_plan_free(&m->synth);
}

/* --- device tables ---------------------------------------------------------------------------- */

/* The workspace a backend says it may allocate by itself, for the device
 * tables here: a test bound that grows with the context and the batch (as
 * attention's split-KV partials do), remembering the query it was asked. */
static backend_workspace_query last_query;
static uint64_t test_workspace_bound(const backend_workspace_query *query)
{
    last_query = *query;
    return 32 * MIB + (uint64_t)query->n_ctx * 4 * KIB + (uint64_t)query->max_tokens * 8 * KIB;
}

/* A card of gib GiB; its budget keeps the default margin of devices.c
 * (1/16 of the memory, at most 512 MiB) free. */
static plan_device_input card(const char *name, double gib, double bandwidth)
{
    plan_device_input d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "%s", name);
    d.kind = DEVICE_KIND_CUDA;
    d.total_bytes = (uint64_t)(gib * (double)GIB);
    uint64_t margin = d.total_bytes / 16 < 512 * MIB ? d.total_bytes / 16 : 512 * MIB;
    d.budget_bytes = d.total_bytes - margin;
    d.alignment = ALIGNMENT;
    d.read_bandwidth = bandwidth;
    d.matmul_flops = 100e12;
    d.link_bandwidth = 25e9;
    d.multiprocessors = 100;
    return d;
}

/* Host RAM of gib GiB (margin: 1/16, at most 1 GiB). */
static plan_device_input host(double gib, double bandwidth)
{
    plan_device_input d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "cpu");
    d.kind = DEVICE_KIND_CPU;
    d.total_bytes = (uint64_t)(gib * (double)GIB);
    uint64_t margin = d.total_bytes / 16 < GIB ? d.total_bytes / 16 : GIB;
    d.budget_bytes = d.total_bytes - margin;
    d.alignment = ALIGNMENT;
    d.read_bandwidth = bandwidth;
    d.matmul_flops = 1e12;
    return d;
}

static plan_request request_for(const test_model *m, const plan_device_input *devices, int n_devices)
{
    plan_request r = {.shape = m->shape, .tensors = m->tensors, .n_tensors = m->n_tensors, .devices = devices,
                      .n_devices = n_devices, .n_ctx = 4096, .max_batch = 512, .kv_dtype = DTYPE_F16};
    return r;
}

/* --- the independent reference --------------------------------------------------------------- */

static uint64_t round_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

/* Bytes of one forward step's activations on a device (backends/ tensors:
 * I32 token ids and positions, F32 activations; logits for 32 tokens on the
 * output's device), each slot at a multiple of the alignment. */
static uint64_t ref_scratch(const plan_model_shape *s, int64_t batch, uint64_t alignment, bool with_logits)
{
    uint64_t b = (uint64_t)batch, q = (uint64_t)(s->n_head * s->head_dim), kv = (uint64_t)(s->n_head_kv * s->head_dim);
    uint64_t slots[] = {4 * b,
                        4 * b,
                        4 * (uint64_t)s->n_embd * b,
                        4 * (uint64_t)s->n_embd * b,
                        4 * q * b,
                        4 * kv * b,
                        4 * kv * b,
                        4 * q * b,
                        4 * (uint64_t)s->n_embd * b,
                        4 * (uint64_t)s->n_ff * b,
                        4 * (uint64_t)s->n_ff * b,
                        with_logits ? 4 * (uint64_t)s->n_vocab * 32 : 0};
    uint64_t total = 0;
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        if (slots[i])
            total = round_up(total, alignment) + slots[i];
    return total;
}

/* KV cache of one layer: K and V, n_ctx rows of n_head_kv x head_dim, each
 * buffer starting at a multiple of the alignment (with 256 and these
 * shapes, exactly 2 x n_ctx x n_head_kv x head_dim x element size). */
static uint64_t ref_layer_kv(const plan_model_shape *s, int64_t n_ctx, strata_dtype kv_dtype, uint64_t alignment)
{
    return 2 * round_up((uint64_t)n_ctx * (uint64_t)(s->n_head_kv * s->head_dim) * (kv_dtype == DTYPE_F32 ? 4 : 2),
                        alignment);
}

static uint64_t ref_workspace(const plan_device_input *d, int64_t n_ctx, int64_t batch)
{
    if (!d->workspace_bytes)
        return 0;
    return 32 * MIB + (uint64_t)n_ctx * 4 * KIB + (uint64_t)batch * 8 * KIB;
}

typedef struct ref_usage {
    uint64_t weights[STRATA_MAX_DEVICES], kv[STRATA_MAX_DEVICES], scratch[STRATA_MAX_DEVICES];
    bool used[STRATA_MAX_DEVICES];
    int64_t n_layers[STRATA_MAX_DEVICES];
    double decode_bytes[STRATA_MAX_DEVICES];
    int embedding_device;
    int handoffs;
    bool fits;
    double tg; /* 0: a used device has no bandwidth */
} ref_usage;

static int cpu_index(const plan_request *r)
{
    for (int d = 0; d < r->n_devices; d++)
        if (r->devices[d].kind == DEVICE_KIND_CPU)
            return d;
    return -1;
}

/* What the layout (layer_device, output) of r puts on each device, with
 * fixed[t] >= 0 the device an override sends tensor t to. */
static void ref_account(const plan_request *r, const int *fixed, const int *layer_device, int output, int64_t n_ctx,
                        ref_usage *u)
{
    memset(u, 0, sizeof *u);
    const plan_model_shape *s = &r->shape;
    int cpu = cpu_index(r);
    u->embedding_device = s->tied_output ? output : cpu >= 0 ? cpu : layer_device[0];
    for (int64_t l = 0; l < s->n_layer; l++)
        u->n_layers[layer_device[l]]++;
    double kv_row = (double)(s->n_head_kv * s->head_dim) * (r->kv_dtype == DTYPE_F32 ? 4 : 2);
    double position = n_ctx < 64 ? (double)n_ctx : 64; /* the prediction reads the cache at 64 */
    for (int d = 0; d < r->n_devices; d++) {
        u->kv[d] = (uint64_t)u->n_layers[d] * ref_layer_kv(s, n_ctx, r->kv_dtype, r->devices[d].alignment);
        u->decode_bytes[d] = (double)u->n_layers[d] * 2.0 * kv_row * position;
        u->used[d] = u->n_layers[d] > 0 || d == output || d == u->embedding_device;
    }
    for (int64_t t = 0; t < r->n_tensors; t++) {
        const plan_tensor_input *tensor = &r->tensors[t];
        int d = -1;
        if (tensor->role == PLAN_ROLE_UNUSED)
            continue;
        if (tensor->role == PLAN_ROLE_ROPE_FREQS) {
            for (int k = 0; k < r->n_devices; k++)
                if (u->n_layers[k] > 0) {
                    u->weights[k] += round_up(tensor->bytes, r->devices[k].alignment);
                    u->decode_bytes[k] += (double)tensor->bytes;
                }
            continue;
        }
        if (fixed && fixed[t] >= 0)
            d = fixed[t];
        else if (tensor->role == PLAN_ROLE_EMBEDDING)
            d = u->embedding_device;
        else if (tensor->role == PLAN_ROLE_OUTPUT || tensor->role == PLAN_ROLE_OUTPUT_NORM)
            d = output;
        else
            d = layer_device[tensor->layer];
        u->weights[d] += round_up(tensor->bytes, r->devices[d].alignment);
        u->used[d] = true;
        bool lookup = tensor->role == PLAN_ROLE_EMBEDDING && !s->tied_output;
        u->decode_bytes[d] += lookup ? (double)tensor->bytes / (double)tensor->rows : (double)tensor->bytes;
        if (tensor->role == PLAN_ROLE_LAYER && tensor->is_matrix && d != layer_device[tensor->layer])
            u->handoffs += 2; /* the activation goes to the tensor's device and back */
    }
    int at = u->embedding_device;
    for (int64_t l = 0; l < s->n_layer; l++) {
        u->handoffs += layer_device[l] != at;
        at = layer_device[l];
    }
    u->handoffs += output != at;
    u->fits = true;
    /* a hand-off: 20 us and n_embd floats over the slowest host link in use */
    double slowest = 0;
    for (int d = 0; d < r->n_devices; d++)
        if (u->used[d] && r->devices[d].kind != DEVICE_KIND_CPU && r->devices[d].link_bandwidth > 0 &&
            (slowest == 0 || r->devices[d].link_bandwidth < slowest))
            slowest = r->devices[d].link_bandwidth;
    double seconds = u->handoffs * (20e-6 + (slowest > 0 ? (double)s->n_embd * 4.0 / slowest : 0));
    bool known = true;
    for (int d = 0; d < r->n_devices; d++) {
        if (!u->used[d])
            continue;
        u->scratch[d] = ref_scratch(s, r->max_batch, r->devices[d].alignment, d == output) +
                        ref_workspace(&r->devices[d], n_ctx, r->max_batch);
        if (u->weights[d] + u->kv[d] + u->scratch[d] > r->devices[d].budget_bytes)
            u->fits = false;
        if (r->devices[d].read_bandwidth > 0)
            seconds += u->decode_bytes[d] / r->devices[d].read_bandwidth;
        else
            known = false;
    }
    u->tg = known ? 1.0 / seconds : 0;
}

/* Every chain of layers through the devices of r (device n-1 gets the first
 * layers, device 0 the last), with the output on every device: whether one
 * fits, and among those that fit the best predicted tg and the most layers
 * off the CPU. gpu_layers >= 0 keeps only chains with that many layers off
 * the CPU. Millions of chains are tried, so each is counted from sums over
 * layer ranges; one in BRUTE_SAMPLE is counted again by ref_account, and
 * the two must agree. */
#define BRUTE_SAMPLE 211

typedef struct brute_result {
    bool fits;
    double best_tg;
    int64_t most_gpu_layers;
    long long candidates;
    long long sampled;    /* candidates counted again by ref_account */
    long long disagreed;  /* of those, where the sums disagreed with it */
} brute_result;

typedef struct brute_state {
    const plan_request *r;
    const int *fixed;
    int64_t n_ctx;
    int64_t gpu_layers; /* -1: any */
    int cpu;
    /* [n_layer + 1] sums over layers of the layers' own (not overridden) tensors */
    uint64_t *prefix;        /* bytes, aligned */
    double *decode_prefix;   /* bytes read per token */
    int *detour_prefix;      /* overridden matrices */
    int *detour_on;          /* [n_devices][n_layer + 1]: overridden matrices sent to that device */
    uint64_t kv_layer;
    double kv_decode_layer;
    uint64_t rope, output, embedding, fixed_bytes[STRATA_MAX_DEVICES];
    double rope_decode, output_decode, embedding_decode, fixed_decode[STRATA_MAX_DEVICES];
    int fixed_count[STRATA_MAX_DEVICES];
    uint64_t scratch[STRATA_MAX_DEVICES][2]; /* without, with the logits */
    int64_t counts[STRATA_MAX_DEVICES], first[STRATA_MAX_DEVICES];
    int layer_device[MAX_LAYERS];
    brute_result *out;
} brute_state;

static bool brute_candidate(brute_state *b, int output, double *tg)
{
    const plan_request *r = b->r;
    int n = r->n_devices;
    int64_t n_layer = r->shape.n_layer;
    int embedding = r->shape.tied_output ? output : b->cpu >= 0 ? b->cpu : b->layer_device[0];
    int handoffs = 0, at = embedding;
    for (int d = n - 1; d >= 0; d--) {
        if (b->counts[d] == 0)
            continue;
        handoffs += d != at;
        at = d;
        int64_t a = b->first[d], e = a + b->counts[d];
        int detours = (b->detour_prefix[e] - b->detour_prefix[a]) -
                      (b->detour_on[d * (n_layer + 1) + e] - b->detour_on[d * (n_layer + 1) + a]);
        handoffs += 2 * detours;
    }
    handoffs += output != at;
    bool fits = true, known = true;
    double slowest = 0;
    for (int d = 0; d < n; d++) {
        bool used = b->counts[d] > 0 || d == output || d == embedding || b->fixed_count[d] > 0;
        if (used && r->devices[d].kind != DEVICE_KIND_CPU && r->devices[d].link_bandwidth > 0 &&
            (slowest == 0 || r->devices[d].link_bandwidth < slowest))
            slowest = r->devices[d].link_bandwidth;
    }
    double seconds = handoffs * (20e-6 + (slowest > 0 ? (double)r->shape.n_embd * 4.0 / slowest : 0));
    for (int d = 0; d < n; d++) {
        int64_t count = b->counts[d];
        int64_t a = b->first[d], e = a + count;
        bool used = count > 0 || d == output || d == embedding || b->fixed_count[d] > 0;
        if (!used)
            continue;
        uint64_t bytes = b->prefix[e] - b->prefix[a] + (uint64_t)count * b->kv_layer + b->fixed_bytes[d] +
                         (count > 0 ? b->rope : 0) + (d == output ? b->output : 0) +
                         (d == embedding ? b->embedding : 0) + b->scratch[d][d == output];
        fits = fits && bytes <= r->devices[d].budget_bytes;
        double decode = b->decode_prefix[e] - b->decode_prefix[a] + (double)count * b->kv_decode_layer +
                        b->fixed_decode[d] + (count > 0 ? b->rope_decode : 0) + (d == output ? b->output_decode : 0) +
                        (d == embedding ? b->embedding_decode : 0);
        if (r->devices[d].read_bandwidth > 0)
            seconds += decode / r->devices[d].read_bandwidth;
        else
            known = false;
    }
    *tg = known ? 1.0 / seconds : 0;
    return fits;
}

static void brute_leaf(brute_state *b)
{
    const plan_request *r = b->r;
    int64_t off_cpu = 0;
    for (int d = 0; d < r->n_devices; d++)
        if (d != b->cpu)
            off_cpu += b->counts[d];
    if (b->gpu_layers >= 0 && off_cpu != b->gpu_layers)
        return;
    for (int output = 0; output < r->n_devices; output++) {
        double tg;
        bool fits = brute_candidate(b, output, &tg);
        if (b->out->candidates++ % BRUTE_SAMPLE == 0) {
            ref_usage u;
            ref_account(r, b->fixed, b->layer_device, output, b->n_ctx, &u);
            b->out->sampled++;
            if (u.fits != fits || fabs(u.tg - tg) > 1e-9 * u.tg)
                b->out->disagreed++;
        }
        if (!fits)
            continue;
        if (!b->out->fits || tg > b->out->best_tg)
            b->out->best_tg = tg;
        if (!b->out->fits || off_cpu > b->out->most_gpu_layers)
            b->out->most_gpu_layers = off_cpu;
        b->out->fits = true;
    }
}

/* Gives chain position `position` (device n-1-position) layers from `next` on. */
static void brute_step(brute_state *b, int position, int64_t next)
{
    const plan_request *r = b->r;
    int64_t n_layer = r->shape.n_layer;
    int d = r->n_devices - 1 - position;
    int64_t least = d == 0 ? n_layer - next : 0; /* the first device takes the rest */
    b->first[d] = next;
    for (int64_t count = least; next + count <= n_layer; count++) {
        /* the layers alone already overflow the device: more only overflow more */
        if (b->prefix[next + count] - b->prefix[next] + (uint64_t)count * b->kv_layer > r->devices[d].budget_bytes)
            break;
        b->counts[d] = count;
        for (int64_t l = count == least ? next : next + count - 1; l < next + count; l++)
            b->layer_device[l] = d;
        if (d == 0)
            brute_leaf(b);
        else
            brute_step(b, position + 1, next + count);
    }
    b->counts[d] = 0;
}

static brute_result brute_force(const plan_request *r, const int *fixed, int64_t n_ctx, int64_t gpu_layers)
{
    brute_result result = {0};
    for (int d = 0; d < r->n_devices; d++)
        if (r->devices[d].alignment != ALIGNMENT) {
            CHECK(false, "brute force: %s has alignment %zu, the sums assume %d", r->devices[d].name,
                  r->devices[d].alignment, ALIGNMENT);
            return result;
        }
    brute_state *b = calloc(1, sizeof *b);
    const plan_model_shape *s = &r->shape;
    int64_t n_layer = s->n_layer;
    int n = r->n_devices;
    *b = (brute_state){.r = r, .fixed = fixed, .n_ctx = n_ctx, .gpu_layers = gpu_layers, .cpu = cpu_index(r),
                       .out = &result};
    b->prefix = calloc((size_t)n_layer + 1, sizeof *b->prefix);
    b->decode_prefix = calloc((size_t)n_layer + 1, sizeof *b->decode_prefix);
    b->detour_prefix = calloc((size_t)n_layer + 1, sizeof *b->detour_prefix);
    b->detour_on = calloc((size_t)(n * (n_layer + 1)), sizeof *b->detour_on);
    uint64_t own[MAX_LAYERS] = {0};
    double own_decode[MAX_LAYERS] = {0};
    int detours[MAX_LAYERS] = {0}, *detours_on = calloc((size_t)(n * n_layer), sizeof *detours_on);
    for (int64_t t = 0; t < r->n_tensors; t++) {
        const plan_tensor_input *tensor = &r->tensors[t];
        uint64_t bytes = round_up(tensor->bytes, ALIGNMENT);
        double decode = tensor->role == PLAN_ROLE_EMBEDDING && !s->tied_output
                            ? (double)tensor->bytes / (double)tensor->rows
                            : (double)tensor->bytes;
        if (tensor->role == PLAN_ROLE_UNUSED)
            continue;
        if (tensor->role == PLAN_ROLE_ROPE_FREQS) {
            b->rope += bytes;
            b->rope_decode += decode;
        } else if (fixed && fixed[t] >= 0) {
            b->fixed_bytes[fixed[t]] += bytes;
            b->fixed_decode[fixed[t]] += decode;
            b->fixed_count[fixed[t]]++;
            if (tensor->role == PLAN_ROLE_LAYER && tensor->is_matrix) {
                detours[tensor->layer]++;
                detours_on[fixed[t] * n_layer + tensor->layer]++;
            }
        } else if (tensor->role == PLAN_ROLE_LAYER) {
            own[tensor->layer] += bytes;
            own_decode[tensor->layer] += decode;
        } else if (tensor->role == PLAN_ROLE_EMBEDDING) {
            b->embedding += bytes;
            b->embedding_decode += decode;
        } else {
            b->output += bytes;
            b->output_decode += decode;
        }
    }
    for (int64_t l = 0; l < n_layer; l++) {
        b->prefix[l + 1] = b->prefix[l] + own[l];
        b->decode_prefix[l + 1] = b->decode_prefix[l] + own_decode[l];
        b->detour_prefix[l + 1] = b->detour_prefix[l] + detours[l];
        for (int d = 0; d < n; d++)
            b->detour_on[d * (n_layer + 1) + l + 1] = b->detour_on[d * (n_layer + 1) + l] + detours_on[d * n_layer + l];
    }
    b->kv_layer = ref_layer_kv(s, n_ctx, r->kv_dtype, ALIGNMENT);
    double position = n_ctx < 64 ? (double)n_ctx : 64;
    b->kv_decode_layer = 2.0 * (double)(s->n_head_kv * s->head_dim) * (r->kv_dtype == DTYPE_F32 ? 4 : 2) * position;
    for (int d = 0; d < n; d++)
        for (int logits = 0; logits < 2; logits++)
            b->scratch[d][logits] = ref_scratch(s, r->max_batch, ALIGNMENT, logits) +
                                    ref_workspace(&r->devices[d], n_ctx, r->max_batch);
    brute_step(b, 0, 0);
    CHECK(result.disagreed == 0, "brute force: %lld of %lld sampled chains counted otherwise by ref_account",
          result.disagreed, result.sampled);
    free(detours_on);
    free(b->detour_on);
    free(b->detour_prefix);
    free(b->decode_prefix);
    free(b->prefix);
    free(b);
    return result;
}

/* --- checks of one plan ---------------------------------------------------------------------- */

static int64_t gpu_layers_of(const strata_plan *plan, const plan_request *r)
{
    int64_t n = 0;
    for (int64_t l = 0; l < plan->n_layer; l++)
        n += r->devices[plan->layer_device[l]].kind != DEVICE_KIND_CPU;
    return n;
}

/* "... NAME needs X ... : Y UNIT short" for device NAME, Y in GiB; -1 when
 * absent. */
static double shortfall_gib(const char *shortfall, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "; %s needs ", name);
    const char *at = strstr(shortfall, key);
    if (!at)
        return -1;
    const char *end = strstr(at, " short");
    if (!end)
        return -1;
    const char *colon = end;
    while (colon > at && *colon != ':')
        colon--;
    char *unit = NULL;
    double value = strtod(colon + 1, &unit);
    static const char *const units[] = {" B", " KiB", " MiB", " GiB", " TiB"};
    double scale = 1.0 / (1024.0 * 1024.0 * 1024.0);
    for (int u = 0; u < 5; u++, scale *= 1024.0)
        if (unit && strncmp(unit, units[u], strlen(units[u])) == 0)
            return value * scale;
    return -1;
}

/* The invariants every plan keeps, and its numbers against ref_account for
 * its own layout. fixed: the overrides' devices as the test expects them. */
static void check_plan(const char *what, const plan_request *r, const int *fixed, const strata_plan *plan)
{
    const plan_model_shape *s = &r->shape;
    CHECK(plan->n_devices == r->n_devices && plan->n_layer == s->n_layer && plan->n_tensors == r->n_tensors,
          "%s: plan of %d devices, %lld layers, %lld tensors", what, plan->n_devices, (long long)plan->n_layer,
          (long long)plan->n_tensors);
    if (plan->n_layer != s->n_layer || plan->n_tensors != r->n_tensors)
        return;
    /* one chain in reverse list order: device indices never rise along the layers */
    for (int64_t l = 0; l < s->n_layer; l++) {
        CHECK(plan->layer_device[l] >= 0 && plan->layer_device[l] < r->n_devices, "%s: layer %lld on device %d",
              what, (long long)l, plan->layer_device[l]);
        if (l > 0)
            CHECK(plan->layer_device[l] <= plan->layer_device[l - 1],
                  "%s: layer %lld on device %d after layer %lld on device %d (not one chain)", what, (long long)l,
                  plan->layer_device[l], (long long)l - 1, plan->layer_device[l - 1]);
        if (r->devices[plan->layer_device[l]].kind == DEVICE_KIND_CPU)
            CHECK(cpu_index(r) >= 0, "%s: a layer on a CPU not in the list", what);
    }
    ref_usage u;
    ref_account(r, fixed, plan->layer_device, plan->output_device, plan->n_ctx, &u);
    CHECK(plan->embedding_device == u.embedding_device, "%s: embedding on %d, expected %d", what,
          plan->embedding_device, u.embedding_device);
    CHECK(plan->n_handoffs == u.handoffs, "%s: %d hand-offs, expected %d", what, plan->n_handoffs, u.handoffs);
    uint64_t weights = 0, rope_copies = 0;
    for (int d = 0; d < r->n_devices; d++) {
        const strata_plan_device *pd = &plan->devices[d];
        CHECK(strcmp(pd->name, r->devices[d].name) == 0 && pd->budget_bytes == r->devices[d].budget_bytes,
              "%s: device %d is %s with budget %llu", what, d, pd->name, (unsigned long long)pd->budget_bytes);
        CHECK(pd->weights_bytes == u.weights[d], "%s: %s weights %llu, expected %llu", what, pd->name,
              (unsigned long long)pd->weights_bytes, (unsigned long long)u.weights[d]);
        CHECK(pd->kv_bytes == u.kv[d], "%s: %s KV %llu, expected %llu", what, pd->name,
              (unsigned long long)pd->kv_bytes, (unsigned long long)u.kv[d]);
        CHECK(pd->scratch_bytes == u.scratch[d], "%s: %s scratch %llu, expected %llu", what, pd->name,
              (unsigned long long)pd->scratch_bytes, (unsigned long long)u.scratch[d]);
        CHECK(pd->planned_bytes == pd->weights_bytes + pd->kv_bytes + pd->scratch_bytes,
              "%s: %s planned %llu is not weights + KV + scratch", what, pd->name,
              (unsigned long long)pd->planned_bytes);
        CHECK(pd->n_layers == u.n_layers[d], "%s: %s has %lld layers, the layer table says %lld", what, pd->name,
              (long long)pd->n_layers, (long long)u.n_layers[d]);
        if (pd->n_layers > 0) {
            CHECK(plan->layer_device[pd->first_layer] == d &&
                      plan->layer_device[pd->first_layer + pd->n_layers - 1] == d,
                  "%s: %s layers from %lld (%lld) disagree with the layer table", what, pd->name,
                  (long long)pd->first_layer, (long long)pd->n_layers);
            rope_copies++;
        }
        CHECK(pd->holds_output == (d == plan->output_device), "%s: %s holds_output", what, pd->name);
        if (plan->fits)
            CHECK(pd->planned_bytes <= pd->budget_bytes, "%s: %s plans %llu bytes over a budget of %llu", what,
                  pd->name, (unsigned long long)pd->planned_bytes, (unsigned long long)pd->budget_bytes);
        weights += pd->weights_bytes;
    }
    CHECK(plan->fits == u.fits, "%s: the plan says fits=%d, its layout counted here fits=%d", what, plan->fits,
          u.fits);
    /* every weight is placed once (rope_freqs once per device with layers),
     * rounded up to its device's alignment */
    uint64_t aligned = 0, raw = 0, rope = 0, largest_alignment = 0;
    for (int d = 0; d < r->n_devices; d++)
        if (r->devices[d].alignment > largest_alignment)
            largest_alignment = r->devices[d].alignment;
    for (int64_t t = 0; t < r->n_tensors; t++) {
        const plan_tensor_input *tensor = &r->tensors[t];
        int copies = 1;
        if (tensor->role == PLAN_ROLE_ROPE_FREQS) {
            copies = (int)rope_copies;
            rope += tensor->bytes;
            for (int d = 0; d < r->n_devices; d++)
                if (plan->devices[d].n_layers > 0)
                    aligned += round_up(tensor->bytes, r->devices[d].alignment);
        } else if (plan->tensors[t].device >= 0) {
            aligned += round_up(tensor->bytes, r->devices[plan->tensors[t].device].alignment);
        }
        raw += (uint64_t)copies * tensor->bytes;
    }
    CHECK(weights == aligned, "%s: %llu bytes of weights over the devices, the tensors have %llu (aligned)", what,
          (unsigned long long)weights, (unsigned long long)aligned);
    CHECK(weights >= raw && weights - raw < (uint64_t)(r->n_tensors + rope_copies) * largest_alignment,
          "%s: weights %llu vs tensor bytes %llu (%llu of rope_freqs copies)", what, (unsigned long long)weights,
          (unsigned long long)raw, (unsigned long long)((rope_copies - 1) * rope));
    /* each tensor where its role, its layer or its override puts it */
    for (int64_t t = 0; t < r->n_tensors; t++) {
        const plan_tensor_input *tensor = &r->tensors[t];
        int want;
        if (tensor->role == PLAN_ROLE_ROPE_FREQS)
            want = -2;
        else if (fixed && fixed[t] >= 0)
            want = fixed[t];
        else if (tensor->role == PLAN_ROLE_EMBEDDING)
            want = u.embedding_device;
        else if (tensor->role == PLAN_ROLE_OUTPUT || tensor->role == PLAN_ROLE_OUTPUT_NORM)
            want = plan->output_device;
        else
            want = plan->layer_device[tensor->layer];
        CHECK(plan->tensors[t].device == want && plan->tensors[t].bytes == tensor->bytes &&
                  strcmp(plan->tensors[t].name, tensor->name) == 0,
              "%s: tensor %s on %d (%llu bytes), expected %d", what, tensor->name, plan->tensors[t].device,
              (unsigned long long)plan->tensors[t].bytes, want);
        bool overridden = fixed && fixed[t] >= 0;
        CHECK(plan->tensors[t].overridden == overridden, "%s: tensor %s overridden=%d", what, tensor->name,
              plan->tensors[t].overridden);
    }
    if (plan->fits) {
        CHECK(plan->shortfall[0] == '\0', "%s: a plan that fits has a shortfall: %s", what, plan->shortfall);
        if (u.tg > 0)
            CHECK(fabs(plan->tg_tokens_per_s - u.tg) <= 1e-9 * u.tg, "%s: predicted tg %.6f, expected %.6f", what,
                  plan->tg_tokens_per_s, u.tg);
    } else {
        /* the shortfall names every device over its budget and by how much */
        CHECK(strstr(plan->shortfall, "does not fit") != NULL, "%s: shortfall '%s'", what, plan->shortfall);
        for (int d = 0; d < r->n_devices; d++) {
            const strata_plan_device *pd = &plan->devices[d];
            double gib = shortfall_gib(plan->shortfall, pd->name);
            if (pd->planned_bytes > pd->budget_bytes) {
                double want = (double)(pd->planned_bytes - pd->budget_bytes) / (double)GIB;
                CHECK(gib >= 0 && fabs(gib - want) <= 0.0051, "%s: shortfall says %s is %.2f GiB short, expected %.3f "
                      "(%s)", what, pd->name, gib, want, plan->shortfall);
            } else {
                CHECK(gib < 0, "%s: shortfall names %s, which is within its budget (%s)", what, pd->name,
                      plan->shortfall);
            }
        }
    }
}

/* Runs the planner on r; returns its status and leaves the plan in *plan. */
static strata_status plan_of(const plan_request *r, strata_plan *plan)
{
    strata_error err = {0};
    strata_status status = planner_run(r, plan, &err);
    return status;
}

/* The planner and brute_force agree on fitting; the plan keeps the invariants. */
static void check_against_brute(const char *what, const plan_request *r, const int *fixed, strata_plan *plan,
                                brute_result *brute_out)
{
    strata_status status = plan_of(r, plan);
    CHECK(status == STRATA_OK, "%s: planner_run status %d", what, status);
    if (status != STRATA_OK)
        return;
    check_plan(what, r, fixed, plan);
    int64_t gpu_layers = r->gpu_layers_set ? (r->gpu_layers < r->shape.n_layer ? r->gpu_layers : r->shape.n_layer) : -1;
    brute_result brute = brute_force(r, fixed, plan->n_ctx, gpu_layers);
    CHECK(plan->fits == brute.fits, "%s: the planner says fits=%d, %lld candidates say fits=%d (%s)", what,
          plan->fits, brute.candidates, brute.fits, plan->shortfall);
    if (plan->fits && brute.fits)
        /* the planner fills devices in list order; with the fastest device
         * first, no other placement decodes faster */
        CHECK(plan->tg_tokens_per_s >= brute.best_tg * (1 - 1e-9),
              "%s: predicted tg %.3f, but a placement with %.3f fits", what, plan->tg_tokens_per_s, brute.best_tg);
    if (brute_out)
        *brute_out = brute;
}

/* --- the matrix: models x types x device tables ----------------------------------------------- */

typedef struct device_table {
    const char *label;
    int n;
    struct {
        const char *name; /* "cpu" for host RAM */
        double gib;
    } devices[5];
} device_table;

static const device_table tables[] = {
    {"1x8G", 1, {{"cuda0", 8}}},
    {"1x24G", 1, {{"cuda0", 24}}},
    {"1x48G", 1, {{"cuda0", 48}}},
    {"1x80G", 1, {{"cuda0", 80}}},
    {"2x24G", 2, {{"cuda0", 24}, {"cuda1", 24}}},
    {"8G+32G host", 2, {{"cuda0", 8}, {"cpu", 32}}},
    {"24G+64G host", 2, {{"cuda0", 24}, {"cpu", 64}}},
    {"2x24G+32G host", 3, {{"cuda0", 24}, {"cuda1", 24}, {"cpu", 32}}},
    {"3x16G+128G host", 4, {{"cuda0", 16}, {"cuda1", 16}, {"cuda2", 16}, {"cpu", 128}}},
    {"4x12G+256G host", 5, {{"cuda0", 12}, {"cuda1", 12}, {"cuda2", 12}, {"cuda3", 12}, {"cpu", 256}}},
    {"4x80G", 4, {{"cuda0", 80}, {"cuda1", 80}, {"cuda2", 80}, {"cuda3", 80}}},
    /* the CPU need not be last: it then runs the last layers (and maybe the output) */
    {"64G host+24G", 2, {{"cpu", 64}, {"cuda0", 24}}},
    {"16G+64G host+16G", 3, {{"cuda0", 16}, {"cpu", 64}, {"cuda1", 16}}},
};

static int build_table(const device_table *table, plan_device_input *out)
{
    for (int d = 0; d < table->n; d++) {
        if (strcmp(table->devices[d].name, "cpu") == 0)
            out[d] = host(table->devices[d].gib, CPU_BANDWIDTH);
        else
            out[d] = card(table->devices[d].name, table->devices[d].gib, GPU_BANDWIDTH);
        out[d].workspace_bytes = out[d].kind == DEVICE_KIND_CPU ? NULL : test_workspace_bound;
    }
    return table->n;
}

static const char *const presets[] = {"llama3-8b", "llama3-70b"};
static const char *const types[] = {"q4_k_m", "q8_0", "q2_k", "q2_k_mix"};

/* What a model needs in all at a context of n_ctx and batches of 512 on one
 * device (the output's): weights, KV and scratch. */
static uint64_t total_need(const test_model *m, const plan_device_input *d, int64_t n_ctx)
{
    uint64_t weights = 0;
    for (int64_t t = 0; t < m->n_tensors; t++)
        weights += round_up(m->tensors[t].bytes, ALIGNMENT);
    return weights + (uint64_t)m->shape.n_layer * ref_layer_kv(&m->shape, n_ctx, DTYPE_F16, ALIGNMENT) +
           ref_scratch(&m->shape, 512, ALIGNMENT, true) + ref_workspace(d, n_ctx, 512);
}

static void test_matrix(void)
{
    for (size_t p = 0; p < sizeof presets / sizeof presets[0]; p++) {
        for (size_t ty = 0; ty < sizeof types / sizeof types[0]; ty++) {
            test_model m;
            if (!load_model(presets[p], types[ty], &m))
                continue;
            printf("%s: %.2f GiB of weights, %lld tensors\n", m.label, (double)m.tensor_bytes / (double)GIB,
                   (long long)m.n_tensors);
            for (size_t k = 0; k < sizeof tables / sizeof tables[0]; k++) {
                plan_device_input devices[STRATA_MAX_DEVICES];
                int n = build_table(&tables[k], devices);
                plan_request r = request_for(&m, devices, n);
                char what[160];
                snprintf(what, sizeof what, "%s on %s", m.label, tables[k].label);
                strata_plan plan;
                brute_result brute = {0};
                check_against_brute(what, &r, NULL, &plan, &brute);
                printf("  %-18s fits=%d gpu_layers=%lld tg=%.1f (brute force: fits=%d, %lld candidates)\n",
                       tables[k].label, plan.fits, plan.layer_device ? (long long)gpu_layers_of(&plan, &r) : -1LL,
                       plan.tg_tokens_per_s, brute.fits, brute.candidates);
                /* one card alone: it fits exactly when everything does on that card */
                if (n == 1)
                    CHECK(plan.fits == (total_need(&m, &devices[0], 4096) <= devices[0].budget_bytes),
                          "%s: fits=%d but the model needs %llu of %llu bytes", what, plan.fits,
                          (unsigned long long)total_need(&m, &devices[0], 4096),
                          (unsigned long long)devices[0].budget_bytes);
                /* with everything on one device the output goes with the last layers */
                if (plan.fits && plan.layer_device && plan.devices[0].n_layers == m.shape.n_layer)
                    CHECK(plan.output_device == 0, "%s: all layers on %s but the output on %d", what,
                          devices[0].name, plan.output_device);
                planner_result_release(&plan);
            }
            free_model(&m);
        }
    }
}

/* The cases the issue names, as plain arithmetic on llama3-70b q4_k_m. */
static void test_named_cases(void)
{
    test_model m;
    if (!load_model("llama3-70b", "q4_k_m", &m))
        return;
    double gib = (double)m.tensor_bytes / (double)GIB;
    CHECK(gib > 38 && gib < 42, "llama3-70b q4_k_m has %.2f GiB of weights, expected about 40", gib);
    struct {
        const char *label;
        int n;
        plan_device_input devices[3];
        bool fits;
        int64_t n_ctx; /* 0: 4096 */
    } cases[] = {
        {"one 24G card", 1, {card("cuda0", 24, GPU_BANDWIDTH)}, false, 0},
        {"24G + 64G host", 2, {card("cuda0", 24, GPU_BANDWIDTH), host(64, CPU_BANDWIDTH)}, true, 0},
        {"2x24G", 2, {card("cuda0", 24, GPU_BANDWIDTH), card("cuda1", 24, GPU_BANDWIDTH)}, true, 0},
        {"one 48G card", 1, {card("cuda0", 48, GPU_BANDWIDTH)}, true, 0},
        {"one 80G card", 1, {card("cuda0", 80, GPU_BANDWIDTH)}, true, 0},
        {"40G + 32G host", 2, {card("cuda0", 40, GPU_BANDWIDTH), host(32, CPU_BANDWIDTH)}, true, 0},
        {"2x16G", 2, {card("cuda0", 16, GPU_BANDWIDTH), card("cuda1", 16, GPU_BANDWIDTH)}, false, 0},
        {"16G + 32G host", 2, {card("cuda0", 16, GPU_BANDWIDTH), host(32, CPU_BANDWIDTH)}, true, 0},
        {"8G + 32G host", 2, {card("cuda0", 8, GPU_BANDWIDTH), host(32, CPU_BANDWIDTH)}, false, 0},
        /* 39.55 GiB of weights + 6.62 GiB of KV + scratch = 46.38 GiB in 47 GiB
         * of budgets: it fits when the embedding's room is counted only on
         * the card that gets layer 0 */
        {"2x24G at 21701 positions", 2, {card("cuda0", 24, GPU_BANDWIDTH), card("cuda1", 24, GPU_BANDWIDTH)}, true,
         21701},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        plan_request r = request_for(&m, cases[i].devices, cases[i].n);
        if (cases[i].n_ctx > 0)
            r.n_ctx = cases[i].n_ctx;
        /* the arithmetic behind each expectation */
        uint64_t budgets = 0;
        for (int d = 0; d < cases[i].n; d++)
            budgets += cases[i].devices[d].budget_bytes;
        uint64_t need = total_need(&m, &cases[i].devices[0], r.n_ctx);
        if (!cases[i].fits && cases[i].n == 1)
            CHECK(need > budgets, "%s: the test's expectation is wrong", cases[i].label);
        strata_plan plan;
        char what[96];
        snprintf(what, sizeof what, "llama3-70b q4_k_m on %s", cases[i].label);
        check_against_brute(what, &r, NULL, &plan, NULL);
        CHECK(plan.fits == cases[i].fits, "%s: fits=%d, expected %d (needs %.2f GiB, budgets %.2f GiB): %s", what,
              plan.fits, cases[i].fits, (double)need / (double)GIB, (double)budgets / (double)GIB, plan.shortfall);
        if (!plan.fits)
            CHECK(strstr(plan.shortfall, " needs ") && strstr(plan.shortfall, " short"),
                  "%s: the shortfall does not say what is short: %s", what, plan.shortfall);
        planner_result_release(&plan);
    }
    free_model(&m);
}

/* --- the user's choices ----------------------------------------------------------------------- */

static void test_gpu_layers(void)
{
    test_model m;
    if (!load_model("llama3-70b", "q4_k_m", &m))
        return;
    plan_device_input devices[] = {card("cuda0", 24, GPU_BANDWIDTH), host(64, CPU_BANDWIDTH)};
    plan_request r = request_for(&m, devices, 2);
    /* a layer is about 0.49 GiB of weights and 16 MiB of KV: 40 layers (20.4
     * GiB) fit the 23.5 GiB budget, 50 (25.5 GiB) do not; around 47 the
     * brute force decides */
    const int64_t asked[] = {0, 1, 10, 20, 40, 46, 47, 48, 50, 80, 99};
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        r.gpu_layers_set = true;
        r.gpu_layers = asked[i];
        strata_plan plan;
        char what[96];
        snprintf(what, sizeof what, "70b q4_k_m 24G+64G -ngl %lld", (long long)asked[i]);
        check_against_brute(what, &r, NULL, &plan, NULL);
        int64_t want = asked[i] < m.shape.n_layer ? asked[i] : m.shape.n_layer;
        CHECK(gpu_layers_of(&plan, &r) == want, "%s: %lld layers on the GPU", what,
              (long long)gpu_layers_of(&plan, &r));
        if (asked[i] <= 40)
            CHECK(plan.fits, "%s: does not fit: %s", what, plan.shortfall);
        if (asked[i] >= 50) {
            CHECK(!plan.fits, "%s: fits", what);
            CHECK(strstr(plan.shortfall, "cuda0 needs") != NULL && strstr(plan.shortfall, "GPU layers") != NULL,
                  "%s: the shortfall should name cuda0 and the GPU layers: %s", what, plan.shortfall);
            CHECK(shortfall_gib(plan.shortfall, "cpu") < 0, "%s: the CPU is not short: %s", what, plan.shortfall);
        }
        planner_result_release(&plan);
    }
    /* -ngl on two cards and the CPU: the layers off the CPU are exactly N */
    plan_device_input three[] = {card("cuda0", 24, GPU_BANDWIDTH), card("cuda1", 24, GPU_BANDWIDTH),
                                 host(64, CPU_BANDWIDTH)};
    r = request_for(&m, three, 3);
    r.gpu_layers_set = true;
    r.gpu_layers = 50;
    strata_plan plan;
    check_against_brute("70b q4_k_m 2x24G+64G -ngl 50", &r, NULL, &plan, NULL);
    CHECK(plan.fits && gpu_layers_of(&plan, &r) == 50, "-ngl 50 on two cards: fits=%d, %lld GPU layers", plan.fits,
          (long long)gpu_layers_of(&plan, &r));
    planner_result_release(&plan);
    /* no CPU: -ngl below the layer count cannot be met */
    plan_device_input one[] = {card("cuda0", 80, GPU_BANDWIDTH)};
    r = request_for(&m, one, 1);
    r.gpu_layers_set = true;
    r.gpu_layers = 40;
    CHECK(plan_of(&r, &plan) == STRATA_OK && !plan.fits, "-ngl 40 with no CPU to run the rest: fits=%d", plan.fits);
    planner_result_release(&plan);
    free_model(&m);
}

static void test_tensor_split(void)
{
    test_model m;
    if (!load_model("llama3-70b", "q4_k_m", &m))
        return;
    plan_device_input devices[] = {card("cuda0", 24, GPU_BANDWIDTH), card("cuda1", 24, GPU_BANDWIDTH),
                                   host(64, CPU_BANDWIDTH)};
    const struct {
        double split[2];
        int n_split;
        int64_t ngl; /* -1: fitted */
    } cases[] = {{{3, 1}, 2, 40}, {{1, 1}, 2, 41}, {{1, 3}, 2, -1}, {{3, 1}, 2, -1}, {{1, 0}, 2, 30},
                 {{2, 1}, 2, 60}, {{1, 2}, 2, 40}, {{1}, 1, 20}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        plan_request r = request_for(&m, devices, 3);
        r.tensor_split = cases[i].split;
        r.n_tensor_split = cases[i].n_split;
        r.gpu_layers_set = cases[i].ngl >= 0;
        r.gpu_layers = cases[i].ngl;
        char what[96];
        snprintf(what, sizeof what, "70b q4_k_m 2x24G+64G -ts %g,%g -ngl %lld", cases[i].split[0],
                 cases[i].n_split > 1 ? cases[i].split[1] : 0.0, (long long)cases[i].ngl);
        strata_plan plan;
        if (plan_of(&r, &plan) != STRATA_OK) {
            CHECK(false, "%s: planner_run failed", what);
            continue;
        }
        check_plan(what, &r, NULL, &plan);
        int64_t gpu = gpu_layers_of(&plan, &r);
        double total = cases[i].split[0] + (cases[i].n_split > 1 ? cases[i].split[1] : 0);
        for (int g = 0; g < 2; g++) {
            double share = (g < cases[i].n_split ? cases[i].split[g] : 0) / total * (double)gpu;
            CHECK(fabs((double)plan.devices[g].n_layers - share) < 1.0,
                  "%s: %s has %lld of %lld GPU layers, its share is %.2f", what, devices[g].name,
                  (long long)plan.devices[g].n_layers, (long long)gpu, share);
        }
        if (cases[i].ngl >= 0)
            CHECK(gpu == cases[i].ngl, "%s: %lld GPU layers", what, (long long)gpu);
        /* the split fits exactly when its chain does: try the split's chain for each output */
        if (cases[i].ngl >= 0) {
            int layer_device[MAX_LAYERS];
            int64_t counts[2];
            double shares[2], rem[2];
            int64_t given = 0;
            for (int g = 0; g < 2; g++) {
                shares[g] = (g < cases[i].n_split ? cases[i].split[g] : 0) / total * (double)cases[i].ngl;
                counts[g] = (int64_t)floor(shares[g]);
                rem[g] = shares[g] - (double)counts[g];
                given += counts[g];
            }
            if (given < cases[i].ngl)
                counts[rem[1] > rem[0] ? 1 : 0]++; /* the largest remainder */
            for (int g = 0; g < 2; g++)
                CHECK(plan.devices[g].n_layers == counts[g], "%s: %s has %lld layers, the split gives it %lld", what,
                      devices[g].name, (long long)plan.devices[g].n_layers, (long long)counts[g]);
            int64_t n_cpu = m.shape.n_layer - cases[i].ngl, l = 0;
            for (int64_t k = 0; k < n_cpu; k++)
                layer_device[l++] = 2;
            for (int64_t k = 0; k < counts[1]; k++)
                layer_device[l++] = 1;
            for (int64_t k = 0; k < counts[0]; k++)
                layer_device[l++] = 0;
            bool any = false;
            for (int output = 0; output < 3; output++) {
                ref_usage u;
                ref_account(&r, NULL, layer_device, output, plan.n_ctx, &u);
                any = any || u.fits;
            }
            CHECK(plan.fits == any, "%s: fits=%d, the split's chain fits=%d", what, plan.fits, any);
        } else {
            CHECK(plan.fits, "%s: does not fit: %s", what, plan.shortfall);
        }
        planner_result_release(&plan);
    }
    free_model(&m);
}

/* blk.N.ffn_{up,gate,down} of the test's own matching */
static bool is_ffn_matrix(const char *name)
{
    long long layer;
    int consumed = 0;
    if (sscanf(name, "blk.%lld.%n", &layer, &consumed) != 1 || consumed == 0)
        return false;
    const char *suffix = name + consumed;
    return strncmp(suffix, "ffn_up", 6) == 0 || strncmp(suffix, "ffn_gate", 8) == 0 ||
           strncmp(suffix, "ffn_down", 8) == 0;
}

static void test_overrides(void)
{
    test_model m;
    if (!load_model("llama3-70b", "q4_k_m", &m))
        return;
    plan_device_input devices[] = {card("cuda0", 24, GPU_BANDWIDTH), host(128, CPU_BANDWIDTH)};
    plan_request r = request_for(&m, devices, 2);
    strata_plan without, with;
    check_against_brute("70b q4_k_m 24G+128G", &r, NULL, &without, NULL);

    plan_override_input overrides[] = {{"blk\\.[0-9]+\\.ffn_(up|gate|down)", 1}};
    r.overrides = overrides;
    r.n_overrides = 1;
    int *fixed = malloc((size_t)m.n_tensors * sizeof *fixed);
    int64_t n_matched = 0;
    for (int64_t t = 0; t < m.n_tensors; t++) {
        fixed[t] = is_ffn_matrix(m.tensors[t].name) ? 1 : -1;
        n_matched += fixed[t] >= 0;
    }
    CHECK(n_matched == 3 * m.shape.n_layer, "the test's matching found %lld FFN matrices", (long long)n_matched);
    check_against_brute("70b q4_k_m 24G+128G -ot ffn=cpu", &r, fixed, &with, NULL);
    CHECK(with.fits && without.fits, "with the FFNs on the CPU: fits=%d, without: fits=%d", with.fits, without.fits);
    CHECK(gpu_layers_of(&with, &r) > gpu_layers_of(&without, &r),
          "with the FFNs on the CPU %lld GPU layers, without %lld: the override should make room",
          (long long)gpu_layers_of(&with, &r), (long long)gpu_layers_of(&without, &r));
    printf("override: %lld GPU layers with the FFNs on the CPU, %lld without\n", (long long)gpu_layers_of(&with, &r),
           (long long)gpu_layers_of(&without, &r));
    planner_result_release(&with);
    planner_result_release(&without);

    /* overrides take the first match; later ones only what is left */
    plan_override_input two[] = {{"ffn_down", 1}, {"blk\\.1[0-9]\\.", 0}};
    r.overrides = two;
    r.n_overrides = 2;
    for (int64_t t = 0; t < m.n_tensors; t++) {
        const char *name = m.tensors[t].name;
        long long layer = -1;
        sscanf(name, "blk.%lld.", &layer);
        fixed[t] = strstr(name, "ffn_down") ? 1 : (layer >= 10 && layer <= 19) ? 0 : -1;
    }
    check_against_brute("70b q4_k_m 24G+128G -ot ffn_down=cpu -ot blk.1x=cuda0", &r, fixed, &with, NULL);
    planner_result_release(&with);

    /* an override that overfills a device makes the plan not fit, whatever the layers */
    plan_override_input all_gpu[] = {{"^blk\\.", 0}};
    r.overrides = all_gpu;
    r.n_overrides = 1;
    for (int64_t t = 0; t < m.n_tensors; t++)
        fixed[t] = strncmp(m.tensors[t].name, "blk.", 4) == 0 ? 0 : -1;
    check_against_brute("70b q4_k_m 24G+128G -ot blk=cuda0", &r, fixed, &with, NULL);
    CHECK(!with.fits && shortfall_gib(with.shortfall, "cuda0") > 10,
          "every layer tensor forced onto a 24G card: fits=%d (%s)", with.fits, with.shortfall);
    planner_result_release(&with);
    free(fixed);
    free_model(&m);
}

static void test_caps(void)
{
    test_model m;
    if (!load_model("llama3-70b", "q4_k_m", &m))
        return;
    const double budgets_gib[] = {23.5, 20, 16, 12, 8, 4};
    int64_t previous = -1;
    int64_t first = 0, last = 0;
    for (size_t i = 0; i < sizeof budgets_gib / sizeof budgets_gib[0]; i++) {
        plan_device_input devices[] = {card("cuda0", 24, GPU_BANDWIDTH), host(128, CPU_BANDWIDTH)};
        devices[0].budget_bytes = (uint64_t)(budgets_gib[i] * (double)GIB); /* --vram cuda0=... */
        plan_request r = request_for(&m, devices, 2);
        strata_plan plan;
        char what[64];
        snprintf(what, sizeof what, "70b q4_k_m cuda0 capped at %.1f GiB", budgets_gib[i]);
        check_against_brute(what, &r, NULL, &plan, NULL);
        int64_t gpu = gpu_layers_of(&plan, &r);
        CHECK(plan.fits, "%s: does not fit", what);
        if (previous >= 0)
            CHECK(gpu <= previous, "%s: %lld GPU layers, more than %lld with a larger cap", what, (long long)gpu,
                  (long long)previous);
        if (i == 0)
            first = gpu;
        last = gpu;
        previous = gpu;
        planner_result_release(&plan);
    }
    CHECK(last < first && first - last >= 20, "a 4 GiB cap leaves %lld GPU layers, 23.5 GiB %lld", (long long)last,
          (long long)first);
    free_model(&m);
}

/* Devices with other alignments: each tensor and each K and V buffer
 * rounded up to its own device's (qwen2.5-7b's bias vectors, rope-less, are
 * not multiples of 4096 bytes; nor is a cache of 1001 positions). */
static void test_alignment(void)
{
    test_model m;
    if (!load_model("qwen2.5-7b", "q4_k_m", &m))
        return;
    plan_device_input devices[] = {card("cuda0", 24, GPU_BANDWIDTH), host(64, CPU_BANDWIDTH)};
    devices[0].alignment = 4096;
    devices[1].alignment = 64;
    plan_request r = request_for(&m, devices, 2);
    r.n_ctx = 1001;
    r.gpu_layers_set = true;
    r.gpu_layers = 14;
    strata_plan plan;
    if (plan_of(&r, &plan) != STRATA_OK) {
        CHECK(false, "qwen2.5-7b with alignments 4096 and 64: planner_run failed");
        free_model(&m);
        return;
    }
    check_plan("qwen2.5-7b with alignments 4096 and 64", &r, NULL, &plan);
    /* 14 layers of K and V, 1001 x 512 x 2 bytes each, rounded up to 4096 */
    CHECK(plan.devices[0].kv_bytes == 14 * 2 * 1028096ull && plan.devices[1].kv_bytes == 14 * 2 * 1025024ull,
          "KV with alignments 4096 and 64: %llu and %llu", (unsigned long long)plan.devices[0].kv_bytes,
          (unsigned long long)plan.devices[1].kv_bytes);
    uint64_t gpu_weights = 0;
    for (int64_t t = 0; t < m.n_tensors; t++)
        if (plan.tensors[t].device == 0)
            gpu_weights += round_up(m.tensors[t].bytes, 4096);
    CHECK(plan.devices[0].weights_bytes == gpu_weights, "cuda0 weights %llu, expected %llu aligned to 4096",
          (unsigned long long)plan.devices[0].weights_bytes, (unsigned long long)gpu_weights);
    planner_result_release(&plan);
    free_model(&m);
}

/* --- context, KV type, batch ------------------------------------------------------------------ */

static uint64_t total_kv(const strata_plan *plan)
{
    uint64_t kv = 0;
    for (int d = 0; d < plan->n_devices; d++)
        kv += plan->devices[d].kv_bytes;
    return kv;
}

static void test_context_and_kv(void)
{
    test_model m;
    if (!load_model("llama3-8b", "q4_k_m", &m))
        return;
    plan_device_input devices[] = {card("cuda0", 80, GPU_BANDWIDTH)};
    devices[0].workspace_bytes = test_workspace_bound;
    const int64_t contexts[] = {512, 4096, 8192, 32768};
    uint64_t previous = 0, previous_f16 = 0;
    for (size_t i = 0; i < sizeof contexts / sizeof contexts[0]; i++) {
        for (int f32 = 0; f32 < 2; f32++) {
            plan_request r = request_for(&m, devices, 1);
            r.n_ctx = contexts[i];
            r.kv_dtype = f32 ? DTYPE_F32 : DTYPE_F16;
            strata_plan plan;
            char what[64];
            snprintf(what, sizeof what, "8b q4_k_m ctx %lld %s", (long long)contexts[i], f32 ? "f32" : "f16");
            check_against_brute(what, &r, NULL, &plan, NULL);
            /* 2 (K and V) x 32 layers x n_ctx x 8 heads x 128 x 2 or 4 bytes */
            uint64_t want = 2ull * 32 * (uint64_t)contexts[i] * 8 * 128 * (f32 ? 4 : 2);
            CHECK(total_kv(&plan) == want, "%s: KV %llu, expected %llu", what, (unsigned long long)total_kv(&plan),
                  (unsigned long long)want);
            CHECK(plan.n_ctx == contexts[i] && plan.fits, "%s: n_ctx %lld fits=%d", what, (long long)plan.n_ctx,
                  plan.fits);
            if (!f32) {
                CHECK(total_kv(&plan) > previous_f16, "%s: the KV cache does not grow with the context", what);
                previous_f16 = total_kv(&plan);
            } else {
                CHECK(total_kv(&plan) == 2 * previous, "%s: an f32 cache is not twice the f16 one", what);
            }
            CHECK(planner_layer_kv_bytes(&m.shape, contexts[i], r.kv_dtype, ALIGNMENT) == want / 32,
                  "%s: planner_layer_kv_bytes", what);
            previous = total_kv(&plan);
            planner_result_release(&plan);
        }
    }
    /* the workspace query describes the model and the request */
    plan_request r = request_for(&m, devices, 1);
    strata_plan plan;
    memset(&last_query, 0, sizeof last_query);
    if (plan_of(&r, &plan) == STRATA_OK) {
        CHECK(last_query.max_tokens == 512 && last_query.n_ctx == 4096 && last_query.n_heads == 32 &&
                  last_query.n_kv_heads == 8 && last_query.head_dim == 128 && last_query.multiprocessors == 100,
              "workspace query: tokens %lld ctx %lld heads %lld/%lld dim %lld mps %d", (long long)last_query.max_tokens,
              (long long)last_query.n_ctx, (long long)last_query.n_heads, (long long)last_query.n_kv_heads,
              (long long)last_query.head_dim, last_query.multiprocessors);
        /* the largest matmul: the output's 128256 rows, ffn_down's 14336 columns */
        CHECK(last_query.max_matmul_rows == 128256 && last_query.max_matmul_cols == 14336,
              "workspace query: largest matmul %lld x %lld", (long long)last_query.max_matmul_rows,
              (long long)last_query.max_matmul_cols);
        CHECK(plan.devices[0].workspace_bytes == ref_workspace(&devices[0], 4096, 512),
              "workspace %llu not counted", (unsigned long long)plan.devices[0].workspace_bytes);
        planner_result_release(&plan);
    }
    free_model(&m);
}

/* The default context shrinks to the largest that fits, and says so. */
static void test_default_context_shrinks(void)
{
    const struct {
        const char *preset, *type;
        int n;
        double gib[2];
    } cases[] = {{"llama3-8b", "q8_0", 1, {12}}, {"llama3-8b", "q4_k_m", 1, {8}}, {"llama3-70b", "q4_k_m", 2, {24, 24}}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_model m;
        if (!load_model(cases[i].preset, cases[i].type, &m))
            continue;
        plan_device_input devices[2];
        for (int d = 0; d < cases[i].n; d++) {
            char name[16];
            snprintf(name, sizeof name, "cuda%d", d);
            devices[d] = card(name, cases[i].gib[d], GPU_BANDWIDTH);
            devices[d].workspace_bytes = test_workspace_bound;
        }
        plan_request r = request_for(&m, devices, cases[i].n);
        r.n_ctx = 0;
        r.n_ctx_default = 131072;
        strata_plan plan;
        char what[96];
        snprintf(what, sizeof what, "%s on %d x %.0fG, default context", m.label, cases[i].n, cases[i].gib[0]);
        if (plan_of(&r, &plan) != STRATA_OK) {
            CHECK(false, "%s: planner_run failed", what);
            free_model(&m);
            continue;
        }
        check_plan(what, &r, NULL, &plan);
        int64_t n_ctx = plan.n_ctx;
        printf("%s: the context shrinks to %lld\n", what, (long long)n_ctx);
        CHECK(plan.fits && n_ctx > 0 && n_ctx < 131072, "%s: fits=%d n_ctx %lld", what, plan.fits, (long long)n_ctx);
        CHECK(strstr(plan.note, "shrunk") != NULL && strstr(plan.note, "131072") != NULL,
              "%s: no note of the shrunk context: '%s'", what, plan.note);
        char number[32];
        snprintf(number, sizeof number, "to %lld", (long long)n_ctx);
        CHECK(strstr(plan.note, number) != NULL, "%s: the note does not give %lld: '%s'", what, (long long)n_ctx,
              plan.note);
        planner_result_release(&plan);
        /* the largest context any chain fits, found apart from the planner */
        int64_t low = 0, high = 131072; /* low fits (0: none), high does not */
        while (high - low > 1) {
            int64_t mid = low + (high - low) / 2;
            if (brute_force(&r, NULL, mid, -1).fits)
                low = mid;
            else
                high = mid;
        }
        CHECK(n_ctx == low, "%s: the context shrinks to %lld, but %lld fits", what, (long long)n_ctx, (long long)low);
        /* that context, given, fits; one more position does not (here and for every chain) */
        r.n_ctx = n_ctx;
        check_against_brute(what, &r, NULL, &plan, NULL);
        CHECK(plan.fits && plan.note[0] == '\0', "%s: --ctx %lld fits=%d note '%s'", what, (long long)n_ctx,
              plan.fits, plan.note);
        planner_result_release(&plan);
        r.n_ctx = n_ctx + 1;
        check_against_brute(what, &r, NULL, &plan, NULL);
        CHECK(!plan.fits, "%s: --ctx %lld fits too: the default should have shrunk to it", what,
              (long long)n_ctx + 1);
        CHECK(strstr(plan.shortfall, "context of") != NULL, "%s: shortfall '%s'", what, plan.shortfall);
        planner_result_release(&plan);
        free_model(&m);
    }
    /* nothing fits even at one position: the shortfall is told for the context asked for */
    test_model m;
    if (!load_model("llama3-70b", "q8_0", &m))
        return;
    plan_device_input small[] = {card("cuda0", 24, GPU_BANDWIDTH)};
    plan_request r = request_for(&m, small, 1);
    r.n_ctx = 0;
    r.n_ctx_default = 8192;
    strata_plan plan;
    if (plan_of(&r, &plan) == STRATA_OK) {
        CHECK(!plan.fits && plan.n_ctx == 8192 && strstr(plan.shortfall, "context of 8192"),
              "70b q8_0 on 24G: fits=%d n_ctx %lld shortfall '%s'", plan.fits, (long long)plan.n_ctx, plan.shortfall);
        planner_result_release(&plan);
    }
    free_model(&m);
}

static void test_scratch(void)
{
    test_model m;
    if (!load_model("llama3-8b", "q4_k_m", &m))
        return;
    plan_device_input devices[] = {card("cuda0", 24, GPU_BANDWIDTH), host(64, CPU_BANDWIDTH)};
    const int64_t batches[] = {1, 64, 512, 2048};
    uint64_t previous = 0;
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        plan_request r = request_for(&m, devices, 2);
        r.max_batch = batches[i];
        strata_plan plan;
        char what[64];
        snprintf(what, sizeof what, "8b q4_k_m 24G+64G batch %lld", (long long)batches[i]);
        check_against_brute(what, &r, NULL, &plan, NULL);
        uint64_t scratch = plan.devices[0].scratch_bytes;
        CHECK(scratch > previous, "%s: scratch %llu does not grow with the batch", what,
              (unsigned long long)scratch);
        for (int logits = 0; logits < 2; logits++)
            CHECK(planner_scratch_bytes(&m.shape, batches[i], ALIGNMENT, logits) ==
                      ref_scratch(&m.shape, batches[i], ALIGNMENT, logits),
                  "%s: planner_scratch_bytes %llu, expected %llu", what,
                  (unsigned long long)planner_scratch_bytes(&m.shape, batches[i], ALIGNMENT, logits),
                  (unsigned long long)ref_scratch(&m.shape, batches[i], ALIGNMENT, logits));
        previous = scratch;
        planner_result_release(&plan);
    }
    /* the logits rows are on the output's device only: 128256 x 32 floats */
    CHECK(ref_scratch(&m.shape, 512, ALIGNMENT, true) - ref_scratch(&m.shape, 512, ALIGNMENT, false) ==
              128256ull * 32 * 4,
          "logits scratch");
    free_model(&m);
}

/* A server's sequences: n contexts, each with its KV cache and activations,
 * the backend's workspace once; on a card that holds one context of the
 * default size but not four, the default context shrinks to fit four. */
static void test_sequences(void)
{
    test_model m;
    if (!load_model("llama3-8b", "q4_k_m", &m))
        return;
    plan_device_input devices[] = {card("cuda0", 80, GPU_BANDWIDTH)};
    devices[0].workspace_bytes = test_workspace_bound;
    for (int n = 1; n <= 8; n *= 2) {
        plan_request r = request_for(&m, devices, 1);
        r.n_sequences = n;
        strata_plan plan;
        if (plan_of(&r, &plan) != STRATA_OK)
            continue;
        char what[64];
        snprintf(what, sizeof what, "8b q4_k_m on 80G, %d sequences", n);
        uint64_t kv_want = (uint64_t)n * 32 * ref_layer_kv(&m.shape, 4096, DTYPE_F16, ALIGNMENT);
        uint64_t scratch_want =
            (uint64_t)n * ref_scratch(&m.shape, 512, ALIGNMENT, true) + ref_workspace(&devices[0], 4096, 512);
        CHECK(plan.fits && plan.n_ctx == 4096, "%s: fits %d ctx %lld", what, plan.fits, (long long)plan.n_ctx);
        CHECK(total_kv(&plan) == kv_want, "%s: KV %llu, expected %llu", what, (unsigned long long)total_kv(&plan),
              (unsigned long long)kv_want);
        CHECK(plan.devices[0].scratch_bytes == scratch_want, "%s: scratch %llu, expected %llu", what,
              (unsigned long long)plan.devices[0].scratch_bytes, (unsigned long long)scratch_want);
        planner_result_release(&plan);
    }
    /* 12 GiB: the weights (about 4.6 GiB) and one 32768-position cache (4 GiB)
     * fit; four such caches do not, so the default context shrinks */
    plan_device_input small[] = {card("cuda0", 12, GPU_BANDWIDTH)};
    int64_t contexts[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        plan_request r = request_for(&m, small, 1);
        r.n_ctx = 0;
        r.n_ctx_default = 32768;
        r.n_sequences = i == 0 ? 1 : 4;
        strata_plan plan;
        if (plan_of(&r, &plan) != STRATA_OK)
            continue;
        contexts[i] = plan.n_ctx;
        uint64_t used = plan.devices[0].planned_bytes;
        CHECK(plan.fits && used <= plan.devices[0].budget_bytes, "12G, %d sequences: fits %d, %llu bytes",
              (int)r.n_sequences, plan.fits, (unsigned long long)used);
        planner_result_release(&plan);
    }
    CHECK(contexts[0] == 32768 && contexts[1] > 0 && contexts[1] < 32768,
          "12G: one sequence gets ctx %lld (want 32768), four get %lld (want less)", (long long)contexts[0],
          (long long)contexts[1]);
    free_model(&m);
}

/* --- the prediction --------------------------------------------------------------------------- */

static void test_prediction(void)
{
    test_model m;
    if (!load_model("llama3-8b", "q4_k_m", &m))
        return;
    /* more layers on the fast device: faster */
    double previous = 0;
    for (int64_t ngl = 0; ngl <= 32; ngl += 4) {
        plan_device_input devices[] = {card("cuda0", 80, GPU_BANDWIDTH), host(64, CPU_BANDWIDTH)};
        plan_request r = request_for(&m, devices, 2);
        r.gpu_layers_set = true;
        r.gpu_layers = ngl;
        strata_plan plan;
        char what[64];
        snprintf(what, sizeof what, "8b q4_k_m 80G+64G -ngl %lld", (long long)ngl);
        check_against_brute(what, &r, NULL, &plan, NULL);
        CHECK(plan.fits && plan.tg_tokens_per_s > previous, "%s: tg %.2f, %.2f with fewer GPU layers", what,
              plan.tg_tokens_per_s, previous);
        previous = plan.tg_tokens_per_s;
        planner_result_release(&plan);
    }
    /* a faster device (the same placement): faster; a slower one: slower */
    const double bandwidths[] = {100e9, 300e9, 1000e9, 3000e9};
    previous = 0;
    for (size_t i = 0; i < sizeof bandwidths / sizeof bandwidths[0]; i++) {
        plan_device_input devices[] = {card("cuda0", 24, bandwidths[i]), host(64, CPU_BANDWIDTH)};
        plan_request r = request_for(&m, devices, 2);
        r.gpu_layers_set = true;
        r.gpu_layers = 20;
        strata_plan plan;
        char what[64];
        snprintf(what, sizeof what, "8b q4_k_m -ngl 20 at %.0f GB/s", bandwidths[i] / 1e9);
        check_against_brute(what, &r, NULL, &plan, NULL);
        CHECK(plan.tg_tokens_per_s > previous, "%s: tg %.2f, %.2f at a lower bandwidth", what, plan.tg_tokens_per_s,
              previous);
        previous = plan.tg_tokens_per_s;
        planner_result_release(&plan);
    }
    /* a fast card first, a slow one second: the fast one gets the layers */
    plan_device_input mixed[] = {card("cuda0", 24, 1000e9), card("cuda1", 24, 200e9), host(64, CPU_BANDWIDTH)};
    plan_request r = request_for(&m, mixed, 3);
    strata_plan plan;
    check_against_brute("8b q4_k_m 24G fast + 24G slow + host", &r, NULL, &plan, NULL);
    CHECK(plan.fits && plan.devices[0].n_layers == 32 && plan.output_device == 0,
          "a model that fits the fast card: %lld layers there, output on %d", (long long)plan.devices[0].n_layers,
          plan.output_device);
    planner_result_release(&plan);
    /* no rates: no prediction, still a plan, as many layers off the CPU as fit */
    plan_device_input unknown[] = {card("cuda0", 12, 0), host(64, 0)};
    r = request_for(&m, unknown, 2);
    if (plan_of(&r, &plan) == STRATA_OK) {
        check_plan("8b q4_k_m without rates", &r, NULL, &plan);
        CHECK(plan.fits && plan.tg_tokens_per_s == 0 && strstr(plan.tg_bound, "unknown"),
              "without rates: fits=%d tg %.2f bound '%s'", plan.fits, plan.tg_tokens_per_s, plan.tg_bound);
        brute_result brute = brute_force(&r, NULL, plan.n_ctx, -1);
        CHECK(gpu_layers_of(&plan, &r) == brute.most_gpu_layers, "without rates: %lld GPU layers, %lld fit",
              (long long)gpu_layers_of(&plan, &r), (long long)brute.most_gpu_layers);
        planner_result_release(&plan);
    }
    free_model(&m);
}

/* --- bad requests ----------------------------------------------------------------------------- */

static void expect_invalid(const char *what, const plan_request *r, const char *message)
{
    strata_plan plan;
    strata_error err = {0};
    strata_status status = planner_run(r, &plan, &err);
    CHECK(status == STRATA_INVALID_INPUT, "%s: status %d, expected an invalid-input error", what, status);
    CHECK(strstr(err.message, message) != NULL, "%s: message '%s' does not say '%s'", what, err.message, message);
    if (status == STRATA_OK)
        planner_result_release(&plan);
    /* an error leaves nothing to free */
    CHECK(plan.tensors == NULL && plan.layer_device == NULL, "%s: an error left arrays in the plan", what);
}

static void test_invalid(void)
{
    test_model m;
    if (!load_model("llama3-8b", "q4_k_m", &m))
        return;
    plan_device_input devices[] = {card("cuda0", 24, GPU_BANDWIDTH), host(64, CPU_BANDWIDTH)};
    plan_device_input two_cpus[] = {host(64, CPU_BANDWIDTH), host(32, CPU_BANDWIDTH)};
    const double three[] = {1, 1, 1}, zeros[] = {0, 0}, negative[] = {2, -1};
    plan_override_input bad_regex[] = {{"blk\\.[0-9+\\.ffn", 1}};
    plan_override_input no_device[] = {{"ffn", 5}};

    plan_request r = request_for(&m, devices, 2);
    r.tensor_split = three;
    r.n_tensor_split = 3;
    expect_invalid("three proportions for one GPU", &r, "--tensor-split gives 3 proportions");
    r = request_for(&m, devices, 2);
    r.tensor_split = zeros;
    r.n_tensor_split = 1;
    expect_invalid("a split of zeros", &r, "add up to 0");
    r.tensor_split = negative;
    r.n_tensor_split = 2;
    plan_device_input two_gpus[] = {card("cuda0", 24, GPU_BANDWIDTH), card("cuda1", 24, GPU_BANDWIDTH)};
    r.devices = two_gpus;
    expect_invalid("a negative proportion", &r, "negative");
    r = request_for(&m, devices, 2);
    r.overrides = bad_regex;
    r.n_overrides = 1;
    expect_invalid("an override that is no regex", &r, "override 'blk");
    r.overrides = no_device;
    expect_invalid("an override to device 5 of 2", &r, "names no listed device");
    r = request_for(&m, devices, 0);
    expect_invalid("no devices", &r, "1 to 16 devices");
    r = request_for(&m, devices, STRATA_MAX_DEVICES + 1);
    expect_invalid("17 devices", &r, "1 to 16 devices");
    r = request_for(&m, two_cpus, 2);
    expect_invalid("the CPU twice", &r, "the CPU is listed twice");
    r = request_for(&m, devices, 2);
    r.max_batch = 0;
    expect_invalid("a batch of 0", &r, "batch size 0");
    r = request_for(&m, devices, 2);
    r.n_ctx = 0;
    r.n_ctx_default = 0;
    expect_invalid("no context", &r, "no context size");
    r = request_for(&m, devices, 2);
    r.gpu_layers_set = true;
    r.gpu_layers = -1;
    expect_invalid("-ngl -1", &r, "-ngl -1 is negative");
    /* a tensor table that names a layer the shape does not have */
    plan_tensor_input *tensors = malloc((size_t)m.n_tensors * sizeof *tensors);
    memcpy(tensors, m.tensors, (size_t)m.n_tensors * sizeof *tensors);
    for (int64_t t = 0; t < m.n_tensors; t++)
        if (tensors[t].role == PLAN_ROLE_LAYER && tensors[t].layer == 31)
            tensors[t].layer = 32;
    r = request_for(&m, devices, 2);
    r.tensors = tensors;
    expect_invalid("a tensor of layer 32 in a 32-layer model", &r, "layer 32 is outside [0, 32)");
    free(tensors);
    /* a split on a table with no GPU at all */
    r = request_for(&m, devices + 1, 1);
    r.tensor_split = three;
    r.n_tensor_split = 1;
    expect_invalid("a split with no GPU", &r, "there are 0 GPU devices");
    free_model(&m);
}

int main(void)
{
    test_named_cases();
    test_gpu_layers();
    test_tensor_split();
    test_overrides();
    test_caps();
    test_alignment();
    test_context_and_kv();
    test_default_context_shrinks();
    test_scratch();
    test_sequences();
    test_prediction();
    test_invalid();
    test_matrix();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("planner: all checks passed\n");
    return 0;
}
