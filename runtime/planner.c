/* The memory planner (see planner.h for the placement it builds and how it
 * fits). Everything here is arithmetic on the tensor table and the device
 * table; the only allocations are the plan's own arrays. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "planner.h"
#include "scratch_layout.h"

/* The decode prediction reads the KV cache at this average position (a
 * tg128 benchmark from an empty cache). */
#define PLAN_PREDICT_POSITION 64

#define GIB (1024.0 * 1024.0 * 1024.0)

/* What one device holds under one candidate placement. */
typedef struct device_tally {
    uint64_t weights;
    uint64_t kv;
    uint64_t scratch; /* activations + workspace */
    bool used;
    bool holds_output;
    bool holds_embedding;
    int64_t first_layer;
    int64_t n_layers;
    double decode_bytes;   /* read per decoded token */
    double matmul_params;  /* weight elements multiplied per token (prefill FLOPs = 2 x this x tokens) */
    double weight_bytes;   /* weights read once per prefill batch */
} device_tally;

typedef struct evaluation {
    device_tally tally[STRATA_MAX_DEVICES];
    int64_t layer_device_count[STRATA_MAX_DEVICES];
    bool fits;
    double overshoot_bytes; /* summed over devices: how far from fitting */
    int handoffs;
    double decode_seconds;  /* per token; < 0: unknown */
    double prefill_seconds; /* per max_batch tokens; < 0: unknown */
    double score;           /* higher is better */
    bool laid_out;          /* a candidate was evaluated (not the zeroed default) */
    /* set on the search's best: the fastest fit with every layer's experts
     * with the layer (n_cpu_moe 0), the alternative the plan reports */
    bool whole_layers_found;
    double whole_layers_decode_seconds;
    int64_t whole_layers_gpu_layers;
    int64_t uncomputable;   /* a tensor on a device that cannot compute its dtype; -1: none */
} evaluation;

typedef struct planner {
    const plan_request *request;
    int cpu;                /* index of the CPU in the device table, -1: none */
    int n_gpus;             /* devices that are not the CPU */
    int *fixed_device;      /* [n_tensors]: an override's device, or -1 */
    int64_t n_ctx;          /* of the pass being tried */
    int64_t batch;          /* tokens per step: the request's, at most n_ctx */
    uint64_t workspace[STRATA_MAX_DEVICES];
    bool rates_known;       /* every device has a read bandwidth */
    /* per device, bit (1 << dtype) for the weight dtypes among the tensors
     * that its backend does not compute */
    uint64_t cannot_compute[STRATA_MAX_DEVICES];
    /* per device: its backend does not run OP_MATMUL_ID, so the experts'
     * weights of its layers stay with the CPU */
    bool refuses_experts[STRATA_MAX_DEVICES];
    bool has_experts;       /* some tensor is an expert tensor of a layer */
    /* the fastest fitting candidate that keeps every layer's experts with
     * the layer (n_cpu_moe 0), for the plan's comparison */
    double whole_layers_score;
    double whole_layers_decode_seconds;
    int64_t whole_layers_gpu_layers;
    bool whole_layers_found;
    unsigned char *layer_flag; /* [n_layer]: scratch for count_handoffs */
    /* the tensors of layer l are by_layer[layer_start[l] .. layer_start[l + 1]) */
    int64_t *by_layer;      /* [n_tensors] */
    int64_t *layer_start;   /* [n_layer + 1] */
    /* the candidate being laid out */
    int output_device;
    int *layer_device;      /* [n_layer] */
    int64_t n_cpu_moe;      /* layers [0, n_cpu_moe) keep their experts in host RAM */
} planner;

static uint64_t align_up(uint64_t x, size_t alignment)
{
    return scratch_align_up(x, alignment);
}

static scratch_dims dims_of(const plan_model_shape *shape)
{
    scratch_dims dims = {.n_vocab = shape->n_vocab, .n_embd = shape->n_embd, .n_head = shape->n_head,
                         .n_head_kv = shape->n_head_kv, .head_dim = shape->head_dim, .n_ff = shape->n_ff,
                         .n_expert = shape->n_expert, .n_expert_used = shape->n_expert_used,
                         .n_ff_exp = shape->n_ff_exp, .n_ff_shexp = shape->n_ff_shexp};
    return dims;
}

uint64_t planner_scratch_bytes(const plan_model_shape *shape, int64_t max_batch, size_t alignment,
                               bool with_logits)
{
    scratch_dims dims = dims_of(shape);
    scratch_layout layout;
    if (!scratch_layout_build(&dims, max_batch, alignment, with_logits, &layout))
        return UINT64_MAX;
    return layout.total_bytes;
}

uint64_t planner_layer_kv_bytes(const plan_model_shape *shape, int64_t n_ctx, strata_dtype kv_dtype,
                                size_t alignment)
{
    uint64_t element_bytes = kv_dtype == DTYPE_F32 ? 4 : 2;
    uint64_t one = (uint64_t)(shape->n_head_kv * shape->head_dim) * (uint64_t)n_ctx * element_bytes;
    return 2 * align_up(one, alignment);
}

/* Contexts the plan holds at once (a request of 0 means one). */
static uint64_t sequences_of(const plan_request *r)
{
    return r->n_sequences > 1 ? (uint64_t)r->n_sequences : 1;
}

/* --- overrides ------------------------------------------------------------------------------- */

static strata_status match_overrides(planner *p, strata_error *err)
{
    const plan_request *r = p->request;
    for (int64_t t = 0; t < r->n_tensors; t++)
        p->fixed_device[t] = -1;
    for (int o = 0; o < r->n_overrides; o++) {
        const plan_override_input *override = &r->overrides[o];
        int error_code;
        PCRE2_SIZE error_offset;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)override->pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
                                         &error_code, &error_offset, NULL);
        if (!code) {
            char message[160];
            pcre2_get_error_message(error_code, (PCRE2_UCHAR *)message, sizeof message);
            return strata_fail(err, STRATA_INVALID_INPUT, "override '%s': %s at offset %zu", override->pattern,
                               message, (size_t)error_offset);
        }
        pcre2_match_data *match = pcre2_match_data_create_from_pattern(code, NULL);
        if (!match) {
            pcre2_code_free(code);
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory matching overrides");
        }
        for (int64_t t = 0; t < r->n_tensors; t++) {
            /* the first override that matches a tensor wins, as in llama.cpp */
            /* rope_freqs is copied to every device that runs layers */
            if (p->fixed_device[t] >= 0 || r->tensors[t].role == PLAN_ROLE_UNUSED ||
                r->tensors[t].role == PLAN_ROLE_ROPE_FREQS)
                continue;
            int rc = pcre2_match(code, (PCRE2_SPTR)r->tensors[t].name, PCRE2_ZERO_TERMINATED, 0, 0, match, NULL);
            if (rc >= 0)
                p->fixed_device[t] = override->device;
        }
        pcre2_match_data_free(match);
        pcre2_code_free(code);
    }
    return STRATA_OK;
}

/* --- weight formats a device computes ------------------------------------------------------------ */

/* Whether a tensor is read by a matmul or a lookup (so its dtype matters to
 * the device), rather than by element-wise ops in f32. */
static bool reads_weight_dtype(const plan_tensor_input *tensor)
{
    return tensor->is_matrix || tensor->role == PLAN_ROLE_EMBEDDING || tensor->role == PLAN_ROLE_OUTPUT;
}

static bool device_computes(const planner *p, int d, const plan_tensor_input *tensor)
{
    if (d >= 0 && tensor->n_expert > 0 && p->refuses_experts[d])
        return false;
    if (d < 0 || !reads_weight_dtype(tensor) || (int)tensor->dtype < 0 || (int)tensor->dtype >= 64)
        return true;
    return !((p->cannot_compute[d] >> tensor->dtype) & 1);
}

/* Where a tensor that its role puts on d goes: d, or the CPU when d cannot
 * compute its dtype and the CPU can. */
static int compute_home(const planner *p, int d, const plan_tensor_input *tensor)
{
    if (d < 0 || device_computes(p, d, tensor) || p->cpu < 0 || !device_computes(p, p->cpu, tensor))
        return d;
    return p->cpu;
}

/* Asks every device's backend once about each weight dtype of the model. */
static void find_uncomputable(planner *p)
{
    const plan_request *r = p->request;
    for (int d = 0; d < r->n_devices; d++) {
        p->cannot_compute[d] = 0;
        bool (*kind_supported)(op_kind) = r->devices[d].op_kind_supported;
        p->refuses_experts[d] = kind_supported && !kind_supported(OP_MATMUL_ID);
        bool (*supported)(strata_dtype) = r->devices[d].weight_dtype_supported;
        if (!supported)
            continue;
        for (int64_t t = 0; t < r->n_tensors; t++) {
            const plan_tensor_input *tensor = &r->tensors[t];
            if (tensor->role == PLAN_ROLE_UNUSED || !reads_weight_dtype(tensor) || (int)tensor->dtype < 0 ||
                (int)tensor->dtype >= 64)
                continue;
            if (!supported(tensor->dtype))
                p->cannot_compute[d] |= 1ull << tensor->dtype;
        }
    }
}

/* The tensor that produces the logits: output.weight, or the token
 * embedding when the output is tied to it; -1 when there is none. */
static int64_t output_tensor(const planner *p)
{
    const plan_request *r = p->request;
    plan_role role = r->shape.tied_output ? PLAN_ROLE_EMBEDDING : PLAN_ROLE_OUTPUT;
    for (int64_t t = 0; t < r->n_tensors; t++)
        if (r->tensors[t].role == role)
            return t;
    return -1;
}

/* --- one candidate ------------------------------------------------------------------------------ */

/* Where the token embedding goes: with the output when they are one tensor,
 * else in host RAM when the CPU is in the list, else with the first layer. */
static int embedding_device(const planner *p)
{
    if (p->request->shape.tied_output)
        return p->output_device;
    if (p->cpu >= 0)
        return p->cpu;
    return p->request->shape.n_layer > 0 ? p->layer_device[0] : p->output_device;
}

/* The device a tensor's role gives it under the current candidate, before
 * its dtype is considered; -1 for unused tensors and -2 for rope_freqs
 * (every device with layers). */
static int role_device(const planner *p, int64_t t)
{
    const plan_tensor_input *tensor = &p->request->tensors[t];
    switch (tensor->role) {
    case PLAN_ROLE_EMBEDDING: return embedding_device(p);
    case PLAN_ROLE_OUTPUT:
    case PLAN_ROLE_OUTPUT_NORM: return p->output_device;
    case PLAN_ROLE_ROPE_FREQS: return -2;
    case PLAN_ROLE_LAYER: return p->layer_device[tensor->layer];
    case PLAN_ROLE_UNUSED: break;
    }
    return -1;
}

/* Whether the candidate keeps this tensor in host RAM as one of the
 * experts' weights of the first n_cpu_moe layers (an override still wins). */
static bool expert_kept_on_cpu(const planner *p, const plan_tensor_input *tensor)
{
    return p->cpu >= 0 && tensor->n_expert > 0 && tensor->role == PLAN_ROLE_LAYER && tensor->layer < p->n_cpu_moe;
}

/* The device a tensor goes to under the current candidate: an override's,
 * else the CPU for the experts of the first n_cpu_moe layers, else its
 * role's unless that device cannot compute its dtype (then the CPU's); -1
 * and -2 as role_device. */
static int tensor_device(const planner *p, int64_t t)
{
    const plan_tensor_input *tensor = &p->request->tensors[t];
    if (tensor->role == PLAN_ROLE_UNUSED)
        return -1;
    if (p->fixed_device[t] >= 0)
        return p->fixed_device[t];
    if (expert_kept_on_cpu(p, tensor))
        return p->cpu;
    return compute_home(p, role_device(p, t), tensor);
}

/* Assigns layers along the chain (the device list read backwards) from the
 * per-device counts. */
static void assign_layers(planner *p, const int64_t *counts)
{
    const plan_request *r = p->request;
    int64_t next = 0;
    for (int d = r->n_devices - 1; d >= 0; d--)
        for (int64_t i = 0; i < counts[d] && next < r->shape.n_layer; i++)
            p->layer_device[next++] = d;
}

static void add_weight(const planner *p, device_tally *tally, int d, const plan_tensor_input *tensor)
{
    const plan_device_input *device = &p->request->devices[d];
    tally->weights += align_up(tensor->bytes, device->alignment);
    tally->used = true;
    tally->weight_bytes += (double)tensor->bytes;
    bool lookup_only = tensor->role == PLAN_ROLE_EMBEDDING && !p->request->shape.tied_output;
    if (lookup_only) {
        /* a lookup reads one row per token */
        tally->decode_bytes += tensor->rows > 0 ? (double)tensor->bytes / (double)tensor->rows : 0;
        tally->weight_bytes -= (double)tensor->bytes;
        return;
    }
    /* of the experts' weights, a token reads only its chosen experts' */
    double share = tensor->n_expert > 0 ? (double)tensor->experts_used / (double)tensor->n_expert : 1.0;
    tally->decode_bytes += (double)tensor->bytes * share;
    if (tensor->is_matrix)
        tally->matmul_params += (double)tensor->row_elements * (double)tensor->rows * share;
}

/* Hand-offs a decoded token makes: each change of device along embedding,
 * layers (and the detours of overridden tensors) and output. */
static int count_handoffs(const planner *p)
{
    const plan_request *r = p->request;
    int handoffs = 0;
    int at = embedding_device(p);
    for (int64_t l = 0; l < r->shape.n_layer; l++) {
        if (p->layer_device[l] != at)
            handoffs++;
        at = p->layer_device[l];
    }
    if (p->output_device != at)
        handoffs++;
    /* a tensor inside a layer that is elsewhere (overridden, or kept on the
     * CPU for its dtype) sends the activation away and back; a layer's
     * experts elsewhere make one detour for the three of them */
    memset(p->layer_flag, 0, (size_t)r->shape.n_layer);
    for (int64_t t = 0; t < r->n_tensors; t++) {
        const plan_tensor_input *tensor = &r->tensors[t];
        if (tensor->role != PLAN_ROLE_LAYER || !tensor->is_matrix ||
            tensor_device(p, t) == p->layer_device[tensor->layer])
            continue;
        if (tensor->n_expert == 0)
            handoffs += 2;
        else if (!p->layer_flag[tensor->layer]) {
            handoffs += PLAN_EXPERT_DETOUR_HANDOFFS;
            p->layer_flag[tensor->layer] = 1;
        }
    }
    return handoffs;
}

/* Seconds the hand-offs of tokens tokens cost: a fixed latency each, and
 * the activations over the slowest host link among the devices used (links
 * not known are not counted). */
static double handoff_seconds(const planner *p, const evaluation *e, double tokens)
{
    const plan_request *r = p->request;
    double slowest = 0;
    for (int d = 0; d < r->n_devices; d++) {
        double link = r->devices[d].link_bandwidth;
        if (e->tally[d].used && r->devices[d].kind != DEVICE_KIND_CPU && link > 0 && (slowest == 0 || link < slowest))
            slowest = link;
    }
    double bytes = (double)r->shape.n_embd * 4.0 * tokens;
    return e->handoffs * (PLAN_HANDOFF_SECONDS + (slowest > 0 ? bytes / slowest : 0));
}

static void predict(const planner *p, evaluation *e)
{
    const plan_request *r = p->request;
    double batch = (double)p->batch;
    double decode = handoff_seconds(p, e, 1), prefill = handoff_seconds(p, e, batch);
    bool decode_known = true, prefill_known = true;
    for (int d = 0; d < r->n_devices; d++) {
        const device_tally *tally = &e->tally[d];
        const plan_device_input *device = &r->devices[d];
        if (!tally->used)
            continue;
        if (device->read_bandwidth > 0)
            decode += tally->decode_bytes / device->read_bandwidth;
        else
            decode_known = false;
        if (device->read_bandwidth > 0 && device->matmul_flops > 0) {
            double compute = 2.0 * tally->matmul_params * batch / device->matmul_flops;
            double memory = tally->weight_bytes / device->read_bandwidth;
            prefill += compute > memory ? compute : memory;
        } else {
            prefill_known = false;
        }
    }
    e->decode_seconds = decode_known ? decode : -1;
    e->prefill_seconds = prefill_known ? prefill : -1;
    if (p->rates_known) {
        e->score = decode > 0 ? 1.0 / decode : 0;
    } else {
        /* no rates: prefer what reads the most bytes off the CPU */
        double off_cpu = 0;
        for (int d = 0; d < r->n_devices; d++)
            if (r->devices[d].kind != DEVICE_KIND_CPU)
                off_cpu += e->tally[d].decode_bytes;
        e->score = off_cpu - e->handoffs;
    }
}

/* Lays out the candidate (p->layer_device, p->output_device) and counts
 * every device's memory against its budget. */
static void evaluate(planner *p, evaluation *e)
{
    const plan_request *r = p->request;
    memset(e, 0, sizeof *e);
    e->uncomputable = -1;
    for (int d = 0; d < r->n_devices; d++)
        e->tally[d].first_layer = -1;
    for (int64_t l = 0; l < r->shape.n_layer; l++) {
        int d = p->layer_device[l];
        device_tally *tally = &e->tally[d];
        if (tally->first_layer < 0)
            tally->first_layer = l;
        tally->n_layers++;
        tally->used = true;
        tally->kv += sequences_of(r) * planner_layer_kv_bytes(&r->shape, p->n_ctx, r->kv_dtype, r->devices[d].alignment);
        double kv_row = (double)(r->shape.n_head_kv * r->shape.head_dim) * (r->kv_dtype == DTYPE_F32 ? 4 : 2);
        int64_t position = p->n_ctx < PLAN_PREDICT_POSITION ? p->n_ctx : PLAN_PREDICT_POSITION;
        tally->decode_bytes += 2.0 * kv_row * (double)position;
    }
    for (int d = 0; d < r->n_devices; d++)
        e->layer_device_count[d] = e->tally[d].n_layers;
    e->tally[p->output_device].holds_output = true;
    e->tally[p->output_device].used = true;
    int embedding_at = embedding_device(p);
    for (int64_t t = 0; t < r->n_tensors; t++)
        if (r->tensors[t].role == PLAN_ROLE_EMBEDDING && tensor_device(p, t) >= 0)
            embedding_at = tensor_device(p, t);
    e->tally[embedding_at].holds_embedding = true;
    e->tally[embedding_at].used = true;
    for (int64_t t = 0; t < r->n_tensors; t++) {
        int d = tensor_device(p, t);
        if (d >= 0 && !device_computes(p, d, &r->tensors[t]) && e->uncomputable < 0)
            e->uncomputable = t;
        if (d == -2) {
            for (int k = 0; k < r->n_devices; k++)
                if (e->tally[k].n_layers > 0)
                    add_weight(p, &e->tally[k], k, &r->tensors[t]);
        } else if (d >= 0) {
            add_weight(p, &e->tally[d], d, &r->tensors[t]);
        }
    }
    e->fits = e->uncomputable < 0;
    if (!e->fits) /* judged as far from fitting as the tensor's size */
        e->overshoot_bytes += (double)r->tensors[e->uncomputable].bytes;
    for (int d = 0; d < r->n_devices; d++) {
        device_tally *tally = &e->tally[d];
        if (!tally->used)
            continue;
        uint64_t activations = planner_scratch_bytes(&r->shape, p->batch, r->devices[d].alignment,
                                                     tally->holds_output);
        /* each context has its own activations; the backend's workspace is shared */
        tally->scratch = activations == UINT64_MAX ? UINT64_MAX : sequences_of(r) * activations + p->workspace[d];
        double planned = (double)tally->weights + (double)tally->kv + (double)tally->scratch;
        if (planned > (double)r->devices[d].budget_bytes) {
            e->fits = false;
            e->overshoot_bytes += planned - (double)r->devices[d].budget_bytes;
        }
    }
    e->handoffs = count_handoffs(p);
    predict(p, e);
    e->laid_out = true;
}

/* --- choosing the layer counts ----------------------------------------------------------------- */

/* Whether the token embedding goes wherever layer 0 goes (no CPU in the
 * list, not tied to the output): see embedding_device. */
static bool embedding_follows_first_layer(const planner *p)
{
    return !p->request->shape.tied_output && p->cpu < 0 && p->request->shape.n_layer > 0;
}

/* Bytes one layer's tensors (those not overridden) and KV cache take on d;
 * layer 0's include the embedding when it follows that layer. */
static uint64_t layer_cost(const planner *p, int64_t layer, int d)
{
    const plan_request *r = p->request;
    uint64_t bytes =
        sequences_of(r) * planner_layer_kv_bytes(&r->shape, p->n_ctx, r->kv_dtype, r->devices[d].alignment);
    for (int64_t i = p->layer_start[layer]; i < p->layer_start[layer + 1]; i++) {
        int64_t t = p->by_layer[i];
        const plan_tensor_input *tensor = &r->tensors[t];
        if (p->fixed_device[t] < 0 && !expert_kept_on_cpu(p, tensor) && compute_home(p, d, tensor) == d)
            bytes += align_up(tensor->bytes, r->devices[d].alignment);
    }
    /* counted with layer 0, not in fixed_cost: only the device that gets layer 0 holds it */
    for (int64_t t = 0; layer == 0 && embedding_follows_first_layer(p) && t < r->n_tensors; t++) {
        const plan_tensor_input *tensor = &r->tensors[t];
        if (tensor->role == PLAN_ROLE_EMBEDDING && p->fixed_device[t] < 0 && compute_home(p, d, tensor) == d)
            bytes += align_up(tensor->bytes, r->devices[d].alignment);
    }
    return bytes;
}

/* Bytes d holds whatever its layers: overrides, the output and embedding
 * when they are there, scratch and workspace, rope_freqs when it has layers. */
static uint64_t fixed_cost(planner *p, int d, bool with_layers)
{
    const plan_request *r = p->request;
    uint64_t bytes = 0;
    bool used = with_layers || d == p->output_device || d == embedding_device(p);
    for (int64_t t = 0; t < r->n_tensors; t++) {
        const plan_tensor_input *tensor = &r->tensors[t];
        int fixed = p->fixed_device[t];
        bool here = false;
        if (fixed >= 0)
            here = fixed == d;
        else if (tensor->role == PLAN_ROLE_ROPE_FREQS)
            here = with_layers;
        else if (tensor->role == PLAN_ROLE_OUTPUT_NORM)
            here = d == p->output_device;
        else if (tensor->role == PLAN_ROLE_OUTPUT)
            here = d == compute_home(p, p->output_device, tensor);
        else if (tensor->role == PLAN_ROLE_EMBEDDING)
            /* when it follows layer 0, layer_cost counts it: counting it here
             * too made every GPU but the one with layer 0 reserve room for it,
             * so fitting chains with no CPU were missed */
            here = !embedding_follows_first_layer(p) && d == compute_home(p, embedding_device(p), tensor);
        if (here) {
            bytes += align_up(tensor->bytes, r->devices[d].alignment);
            used = true;
        }
    }
    if (used) {
        uint64_t activations =
            planner_scratch_bytes(&r->shape, p->batch, r->devices[d].alignment, d == p->output_device);
        bytes += sequences_of(r) * activations + p->workspace[d];
    }
    return bytes;
}

/* Splits gpu_layers over the non-CPU devices: by the user's proportions, or
 * filling each in list order (the first gets the last layers) as far as
 * its budget goes. The CPU gets the rest. Returns false when the layers
 * cannot all be given a device. */
static bool distribute(planner *p, int64_t gpu_layers, int64_t *counts)
{
    const plan_request *r = p->request;
    int64_t n_layer = r->shape.n_layer;
    memset(counts, 0, sizeof *counts * STRATA_MAX_DEVICES);
    if (p->cpu < 0 && gpu_layers < n_layer)
        return false;
    if (p->n_gpus == 0 && gpu_layers > 0)
        return false;
    if (r->tensor_split) {
        double total = 0;
        for (int i = 0; i < r->n_tensor_split; i++)
            total += r->tensor_split[i];
        if (!(total > 0))
            return false;
        /* largest remainder */
        double remainders[STRATA_MAX_DEVICES] = {0};
        int64_t given = 0;
        int g = 0;
        for (int d = 0; d < r->n_devices; d++) {
            if (d == p->cpu)
                continue;
            double share = g < r->n_tensor_split ? r->tensor_split[g] / total * (double)gpu_layers : 0;
            counts[d] = (int64_t)floor(share);
            remainders[d] = share - (double)counts[d];
            given += counts[d];
            g++;
        }
        while (given < gpu_layers) {
            int best = -1;
            for (int d = 0; d < r->n_devices; d++)
                if (d != p->cpu && (best < 0 || remainders[d] > remainders[best]))
                    best = d;
            counts[best]++;
            remainders[best] = -1;
            given++;
        }
    } else {
        int64_t remaining = gpu_layers, top = n_layer - 1;
        for (int d = 0; d < r->n_devices && remaining > 0; d++) {
            if (d == p->cpu)
                continue;
            uint64_t budget = r->devices[d].budget_bytes;
            uint64_t used = fixed_cost(p, d, true);
            while (remaining > 0 && top >= 0) {
                uint64_t cost = layer_cost(p, top, d);
                if (used > budget || cost > budget - used)
                    break;
                used += cost;
                counts[d]++;
                remaining--;
                top--;
            }
        }
        /* what did not fit goes to the last GPU in the list, to be judged */
        if (remaining > 0) {
            for (int d = r->n_devices - 1; d >= 0; d--)
                if (d != p->cpu) {
                    counts[d] += remaining;
                    break;
                }
        }
    }
    if (p->cpu >= 0)
        counts[p->cpu] = n_layer - gpu_layers;
    return true;
}

/* A candidate's layout, kept while others are tried. */
typedef struct layout_copy {
    int *layer_device; /* [n_layer] */
    int output_device;
    int64_t n_cpu_moe;
} layout_copy;

static void keep_layout(const planner *p, layout_copy *copy)
{
    memcpy(copy->layer_device, p->layer_device, (size_t)p->request->shape.n_layer * sizeof *copy->layer_device);
    copy->output_device = p->output_device;
    copy->n_cpu_moe = p->n_cpu_moe;
}

static void restore_layout(planner *p, const layout_copy *copy)
{
    memcpy(p->layer_device, copy->layer_device, (size_t)p->request->shape.n_layer * sizeof *copy->layer_device);
    p->output_device = copy->output_device;
    p->n_cpu_moe = copy->n_cpu_moe;
}

/* Tries every candidate for the current n_ctx. Returns whether one fits:
 * then *best and best_layout hold the one with the highest score; else
 * *closest and closest_layout the one nearest to fitting. */
static bool search(planner *p, evaluation *best, layout_copy *best_layout, evaluation *closest,
                   layout_copy *closest_layout)
{
    const plan_request *r = p->request;
    int64_t n_layer = r->shape.n_layer;
    bool found = false, have_closest = false;
    int64_t counts[STRATA_MAX_DEVICES];
    evaluation e;
    const int64_t logits_tensor = output_tensor(p);
    /* More GPU layers are faster as long as a layer's weights are where the
     * layer is; when a device keeps some of them on the CPU for their dtype,
     * each GPU layer adds detours, so every layer count is tried. */
    bool weights_kept = false;
    for (int d = 0; d < r->n_devices; d++)
        weights_kept = weights_kept || (d != p->cpu && (p->cannot_compute[d] != 0 || p->refuses_experts[d]));
    /* How many layers keep their experts in host RAM: the user's count, or
     * every count when there are experts, a CPU and a GPU. A count only
     * matters for the layers that are on a GPU: with k GPU layers, counts up
     * to n_layer - k are the same placement as 0 and are not tried again. */
    int64_t moe_low = 0, moe_high = 0;
    if (r->n_cpu_moe_set)
        moe_low = moe_high = r->n_cpu_moe;
    else if (p->has_experts && p->cpu >= 0 && p->n_gpus > 0)
        moe_high = n_layer;
    p->whole_layers_found = false;
    for (int64_t moe = moe_low; moe <= moe_high; moe++) {
        p->n_cpu_moe = moe;
        for (int output = 0; output < r->n_devices; output++) {
            /* the logits are made where the output is: a device that computes it */
            if (logits_tensor >= 0 && !device_computes(p, output, &r->tensors[logits_tensor]))
                continue;
            p->output_device = output;
            int64_t max_gpu_layers = p->n_gpus > 0 ? n_layer : 0;
            int64_t high = max_gpu_layers;
            if (r->gpu_layers_set && r->gpu_layers < high)
                high = r->gpu_layers;
            int64_t low = r->gpu_layers_set ? high : 0;
            for (int64_t layers = high; layers >= low; layers--) {
                if (!r->n_cpu_moe_set && moe > 0 && n_layer - layers >= moe)
                    break; /* the experts kept are all in CPU layers: tried as 0 */
                for (int64_t l = 0; l < n_layer; l++)
                    p->layer_device[l] = p->cpu >= 0 ? p->cpu : 0;
                if (!distribute(p, layers, counts))
                    continue;
                assign_layers(p, counts);
                evaluate(p, &e);
                if (!e.fits) {
                    if (!have_closest || e.overshoot_bytes < closest->overshoot_bytes) {
                        *closest = e;
                        keep_layout(p, closest_layout);
                        have_closest = true;
                    }
                    continue;
                }
                if (moe == 0 && (!p->whole_layers_found || e.score > p->whole_layers_score)) {
                    p->whole_layers_found = true;
                    p->whole_layers_score = e.score;
                    p->whole_layers_decode_seconds = e.decode_seconds;
                    p->whole_layers_gpu_layers = layers;
                }
                if (!found || e.score > best->score) {
                    *best = e;
                    keep_layout(p, best_layout);
                    found = true;
                }
                /* going down, the first fit is the most this output choice
                 * allows; with experts kept, every count is weighed (a
                 * GPU layer then adds a detour) */
                if (!weights_kept && moe == 0)
                    break;
            }
        }
    }
    if (found) {
        best->whole_layers_found = p->whole_layers_found;
        best->whole_layers_decode_seconds = p->whole_layers_decode_seconds;
        best->whole_layers_gpu_layers = p->whole_layers_gpu_layers;
    }
    return found;
}

/* --- the plan ----------------------------------------------------------------------------------- */

const char *planner_format_bytes(double bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    double value = bytes < 0 ? -bytes : bytes;
    while (value >= 1024.0 && unit < 4) {
        value /= 1024.0;
        unit++;
    }
    if (unit == 0)
        snprintf(buf, size, "%s%.0f B", bytes < 0 ? "-" : "", value);
    else
        snprintf(buf, size, "%s%.2f %s", bytes < 0 ? "-" : "", value, units[unit]);
    return buf;
}

static void describe_shortfall(const planner *p, const evaluation *closest, strata_plan *out)
{
    const plan_request *r = p->request;
    size_t used = 0;
    used += (size_t)snprintf(out->shortfall + used, sizeof out->shortfall - used, "does not fit with a context of %lld",
                             (long long)p->n_ctx);
    if (r->gpu_layers_set && used < sizeof out->shortfall)
        used += (size_t)snprintf(out->shortfall + used, sizeof out->shortfall - used, " and %lld GPU layers",
                                 (long long)r->gpu_layers);
    for (int d = 0; d < r->n_devices && used < sizeof out->shortfall; d++) {
        const device_tally *tally = &closest->tally[d];
        double planned = (double)tally->weights + (double)tally->kv + (double)tally->scratch;
        double budget = (double)r->devices[d].budget_bytes;
        if (!tally->used || planned <= budget)
            continue;
        char need[24], weights[24], kv[24], scratch[24], have[24], short_by[24];
        used += (size_t)snprintf(out->shortfall + used, sizeof out->shortfall - used,
                                 "; %s needs %s (weights %s, KV cache %s, scratch %s) but its budget is %s: %s short",
                                 r->devices[d].name, planner_format_bytes(planned, need, sizeof need),
                                 planner_format_bytes((double)tally->weights, weights, sizeof weights),
                                 planner_format_bytes((double)tally->kv, kv, sizeof kv),
                                 planner_format_bytes((double)tally->scratch, scratch, sizeof scratch),
                                 planner_format_bytes(budget, have, sizeof have),
                                 planner_format_bytes(planned - budget, short_by, sizeof short_by));
    }
    if (closest->uncomputable >= 0 && used < sizeof out->shortfall) {
        const plan_tensor_input *tensor = &r->tensors[closest->uncomputable];
        int d = tensor_device(p, closest->uncomputable);
        bool experts = d >= 0 && tensor->n_expert > 0 && p->refuses_experts[d];
        snprintf(out->shortfall + used, sizeof out->shortfall - used,
                 "; %s does not compute %s%s (%s)%s", d >= 0 ? r->devices[d].name : "?",
                 experts ? "the experts' matmul" : dtype_name(tensor->dtype), experts ? "" : " weights", tensor->name,
                 p->fixed_device[closest->uncomputable] >= 0 ? ", where an override puts it"
                                                             : " and no CPU is listed to take it");
    }
}

/* Appends "; "-separated text to the plan's note. */
static void append_note(strata_plan *out, const char *text)
{
    size_t used = strlen(out->note);
    if (used + 3 < sizeof out->note)
        snprintf(out->note + used, sizeof out->note - used, "%s%s", used ? "; " : "", text);
}

/* Says which formats of the model a device does not compute and how much of
 * its layers' weights that kept in host RAM, and which devices' formats were
 * assumed. */
static void describe_formats(const planner *p, strata_plan *out)
{
    const plan_request *r = p->request;
    char text[320], size[24];
    for (int d = 0; d < r->n_devices; d++) {
        if (d != p->cpu && p->cannot_compute[d] != 0) {
            int64_t count = 0;
            double bytes = 0;
            for (int64_t t = 0; t < r->n_tensors; t++) {
                if (p->fixed_device[t] >= 0 || expert_kept_on_cpu(p, &r->tensors[t]) || role_device(p, t) != d ||
                    tensor_device(p, t) == d || (int)r->tensors[t].dtype < 0 || (int)r->tensors[t].dtype >= 64 ||
                    !((p->cannot_compute[d] >> r->tensors[t].dtype) & 1))
                    continue;
                count++;
                bytes += (double)r->tensors[t].bytes;
            }
            size_t used = (size_t)snprintf(text, sizeof text, "%s does not compute", r->devices[d].name);
            for (int k = 0; k < 64 && used < sizeof text; k++)
                if ((p->cannot_compute[d] >> k) & 1)
                    used += (size_t)snprintf(text + used, sizeof text - used, " %s", dtype_name((strata_dtype)k));
            if (used < sizeof text && count > 0)
                snprintf(text + used, sizeof text - used,
                         ": %lld of its layers' weights (%s) stay in host RAM, computed by the CPU", (long long)count,
                         planner_format_bytes(bytes, size, sizeof size));
            else if (used < sizeof text)
                snprintf(text + used, sizeof text - used, ": the layers with those weights are faster on the CPU");
            append_note(out, text);
        }
        if (d != p->cpu && p->refuses_experts[d]) {
            int64_t count = 0;
            double bytes = 0;
            for (int64_t t = 0; t < r->n_tensors; t++) {
                if (r->tensors[t].n_expert == 0 || p->fixed_device[t] >= 0 || expert_kept_on_cpu(p, &r->tensors[t]) ||
                    role_device(p, t) != d || tensor_device(p, t) == d)
                    continue;
                count++;
                bytes += (double)r->tensors[t].bytes;
            }
            if (count > 0) {
                snprintf(text, sizeof text,
                         "%s does not run the experts' matmul: %lld expert tensors of its layers (%s) stay in host "
                         "RAM, computed by the CPU",
                         r->devices[d].name, (long long)count, planner_format_bytes(bytes, size, sizeof size));
                append_note(out, text);
            }
        }
        if (r->devices[d].backend_missing && out->devices[d].planned_bytes > 0) {
            snprintf(text, sizeof text,
                     "this strata is built without the backend of %s: the plan assumes it computes every weight format",
                     r->devices[d].name);
            append_note(out, text);
        }
    }
}

/* Says which layers' experts stay in host RAM and why: as asked, or chosen
 * over whole layers on the CPU (with both predictions). */
static void describe_experts(const planner *p, const evaluation *e, strata_plan *out)
{
    const plan_request *r = p->request;
    char text[320], size[24], layers[48];
    if (r->n_cpu_moe_set && r->n_cpu_moe > 0 && !p->has_experts) {
        append_note(out, "--n-cpu-moe/--cpu-moe: the model has no experts, nothing was moved");
        return;
    }
    if (p->n_cpu_moe == 0)
        return;
    int64_t count = 0;
    double bytes = 0;
    for (int64_t t = 0; t < r->n_tensors; t++)
        if (p->fixed_device[t] < 0 && expert_kept_on_cpu(p, &r->tensors[t])) {
            count++;
            bytes += (double)r->tensors[t].bytes;
        }
    if (p->n_cpu_moe == 1)
        snprintf(layers, sizeof layers, "layer 0");
    else
        snprintf(layers, sizeof layers, "layers 0-%lld", (long long)p->n_cpu_moe - 1);
    size_t used = (size_t)snprintf(text, sizeof text,
                                   "the experts of %s stay in host RAM, computed by the CPU (%lld tensors, %s)",
                                   layers, (long long)count, planner_format_bytes(bytes, size, sizeof size));
    if (r->n_cpu_moe_set && used < sizeof text)
        snprintf(text + used, sizeof text - used, ", as asked (--n-cpu-moe %lld%s)", (long long)p->n_cpu_moe,
                 p->n_cpu_moe == r->shape.n_layer ? " or --cpu-moe" : "");
    else if (e->decode_seconds > 0 && e->whole_layers_found && e->whole_layers_decode_seconds > 0 && used < sizeof text)
        snprintf(text + used, sizeof text - used,
                 ": predicted %.1f tokens/s, against %.1f with whole layers on the CPU (%lld GPU layers)",
                 1.0 / e->decode_seconds, 1.0 / e->whole_layers_decode_seconds,
                 (long long)e->whole_layers_gpu_layers);
    else if (!e->whole_layers_found && used < sizeof text)
        snprintf(text + used, sizeof text - used, ": whole layers on the CPU do not fit");
    else if (used < sizeof text)
        snprintf(text + used, sizeof text - used, ": it reads more bytes off the CPU than whole layers there");
    append_note(out, text);
}

static void describe_bounds(const planner *p, const evaluation *e, strata_plan *out)
{
    const plan_request *r = p->request;
    if (e->decode_seconds <= 0) {
        snprintf(out->tg_bound, sizeof out->tg_bound, "unknown: a device has no measured or given bandwidth");
    } else {
        int worst = -1;
        double worst_seconds = 0;
        for (int d = 0; d < r->n_devices; d++) {
            double seconds = e->tally[d].used && r->devices[d].read_bandwidth > 0
                                 ? e->tally[d].decode_bytes / r->devices[d].read_bandwidth
                                 : 0;
            if (seconds > worst_seconds) {
                worst_seconds = seconds;
                worst = d;
            }
        }
        double handoffs = handoff_seconds(p, e, 1);
        if (handoffs > worst_seconds) {
            snprintf(out->tg_bound, sizeof out->tg_bound,
                     "hand-offs between devices: %d per token (%.0f%% of the time)", e->handoffs,
                     100.0 * handoffs / e->decode_seconds);
        } else if (worst >= 0) {
            double bytes = e->tally[worst].decode_bytes;
            snprintf(out->tg_bound, sizeof out->tg_bound,
                     "%s memory bandwidth: %.3g %s read per token at %.4g GB/s (%.0f%% of the time)",
                     r->devices[worst].name, bytes >= 1e9 ? bytes / 1e9 : bytes / 1e6, bytes >= 1e9 ? "GB" : "MB",
                     r->devices[worst].read_bandwidth / 1e9, 100.0 * worst_seconds / e->decode_seconds);
        }
    }
    if (e->prefill_seconds <= 0) {
        snprintf(out->pp_bound, sizeof out->pp_bound, "unknown: a device has no measured or given matmul rate");
    } else {
        int worst = -1;
        double worst_seconds = 0;
        bool compute_bound = false;
        for (int d = 0; d < r->n_devices; d++) {
            const plan_device_input *device = &r->devices[d];
            if (!e->tally[d].used || device->matmul_flops <= 0 || device->read_bandwidth <= 0)
                continue;
            double compute = 2.0 * e->tally[d].matmul_params * (double)p->batch / device->matmul_flops;
            double memory = e->tally[d].weight_bytes / device->read_bandwidth;
            double seconds = compute > memory ? compute : memory;
            if (seconds > worst_seconds) {
                worst_seconds = seconds;
                worst = d;
                compute_bound = compute >= memory;
            }
        }
        double handoffs = handoff_seconds(p, e, (double)p->batch);
        if (handoffs > worst_seconds)
            snprintf(out->pp_bound, sizeof out->pp_bound, "hand-offs between devices: %d per batch (%.0f%% of the time)",
                     e->handoffs, 100.0 * handoffs / e->prefill_seconds);
        else if (worst >= 0)
            snprintf(out->pp_bound, sizeof out->pp_bound, "%s %s: %.0f%% of the time (batches of %lld)",
                     r->devices[worst].name,
                     compute_bound ? "matmul rate" : "memory bandwidth", 100.0 * worst_seconds / e->prefill_seconds,
                     (long long)p->batch);
    }
}

static strata_status fill_plan(const planner *p, const evaluation *e, strata_plan *out, strata_error *err)
{
    const plan_request *r = p->request;
    out->n_devices = r->n_devices;
    out->n_layer = r->shape.n_layer;
    out->n_ctx = p->n_ctx;
    out->max_batch = p->batch;
    out->kv_dtype = r->kv_dtype;
    out->output_device = p->output_device;
    out->embedding_device = embedding_device(p);
    out->n_handoffs = e->handoffs;
    out->tg_tokens_per_s = e->decode_seconds > 0 ? 1.0 / e->decode_seconds : 0;
    out->pp_tokens_per_s = e->prefill_seconds > 0 ? (double)p->batch / e->prefill_seconds : 0;
    for (int d = 0; d < r->n_devices; d++) {
        const device_tally *tally = &e->tally[d];
        strata_plan_device *device = &out->devices[d];
        snprintf(device->name, sizeof device->name, "%s", r->devices[d].name);
        device->total_bytes = r->devices[d].total_bytes;
        device->budget_bytes = r->devices[d].budget_bytes;
        device->weights_bytes = tally->weights;
        device->kv_bytes = tally->kv;
        device->scratch_bytes = tally->used ? tally->scratch : 0;
        device->workspace_bytes = tally->used ? p->workspace[d] : 0;
        device->planned_bytes = device->weights_bytes + device->kv_bytes + device->scratch_bytes;
        device->first_layer = tally->n_layers > 0 ? tally->first_layer : -1;
        device->n_layers = tally->n_layers;
        device->holds_output = tally->holds_output;
        device->holds_embedding = tally->holds_embedding;
        device->read_bandwidth = r->devices[d].read_bandwidth;
        device->matmul_flops = r->devices[d].matmul_flops;
        device->link_bandwidth = r->devices[d].link_bandwidth;
        device->decode_bytes = tally->decode_bytes;
    }
    out->layer_device = malloc((size_t)(r->shape.n_layer > 0 ? r->shape.n_layer : 1) * sizeof *out->layer_device);
    out->tensors = calloc((size_t)(r->n_tensors > 0 ? r->n_tensors : 1), sizeof *out->tensors);
    if (!out->layer_device || !out->tensors)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory for the plan");
    memcpy(out->layer_device, p->layer_device, (size_t)r->shape.n_layer * sizeof *out->layer_device);
    out->n_tensors = r->n_tensors;
    for (int64_t t = 0; t < r->n_tensors; t++) {
        strata_plan_tensor *tensor = &out->tensors[t];
        size_t len = strlen(r->tensors[t].name);
        if (!(tensor->name = malloc(len + 1)))
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory for the plan");
        memcpy(tensor->name, r->tensors[t].name, len + 1);
        tensor->device = tensor_device(p, t);
        tensor->bytes = r->tensors[t].bytes;
        tensor->overridden = p->fixed_device[t] >= 0;
    }
    out->n_cpu_moe = p->n_cpu_moe;
    out->n_cpu_moe_chosen = !r->n_cpu_moe_set && p->n_cpu_moe > 0;
    out->whole_layers_tg_tokens_per_s =
        e->whole_layers_found && e->whole_layers_decode_seconds > 0 ? 1.0 / e->whole_layers_decode_seconds : 0;
    out->whole_layers_gpu_layers = e->whole_layers_found ? e->whole_layers_gpu_layers : -1;
    describe_bounds(p, e, out);
    describe_experts(p, e, out);
    describe_formats(p, out);
    return STRATA_OK;
}

static strata_status check_request(const plan_request *r, int *cpu, int *n_gpus, strata_error *err)
{
    if (r->n_devices < 1 || r->n_devices > STRATA_MAX_DEVICES)
        return strata_fail(err, STRATA_INVALID_INPUT, "a plan needs 1 to %d devices (got %d)", STRATA_MAX_DEVICES,
                           r->n_devices);
    *cpu = -1;
    *n_gpus = 0;
    for (int d = 0; d < r->n_devices; d++) {
        if (r->devices[d].kind == DEVICE_KIND_CPU) {
            if (*cpu >= 0)
                return strata_fail(err, STRATA_INVALID_INPUT, "the CPU is listed twice");
            *cpu = d;
        } else {
            (*n_gpus)++;
        }
    }
    if (r->max_batch < 1)
        return strata_fail(err, STRATA_INVALID_INPUT, "batch size %lld is not positive", (long long)r->max_batch);
    if (r->n_ctx < 0 || (r->n_ctx == 0 && r->n_ctx_default < 1))
        return strata_fail(err, STRATA_INVALID_INPUT, "no context size to plan for");
    if (r->tensor_split) {
        if (r->n_tensor_split > *n_gpus)
            return strata_fail(err, STRATA_INVALID_INPUT,
                               "--tensor-split gives %d proportions but there %s %d GPU device%s", r->n_tensor_split,
                               *n_gpus == 1 ? "is" : "are", *n_gpus, *n_gpus == 1 ? "" : "s");
        double total = 0;
        for (int i = 0; i < r->n_tensor_split; i++) {
            if (!(r->tensor_split[i] >= 0))
                return strata_fail(err, STRATA_INVALID_INPUT, "--tensor-split: proportion %g is negative",
                                   r->tensor_split[i]);
            total += r->tensor_split[i];
        }
        if (!(total > 0))
            return strata_fail(err, STRATA_INVALID_INPUT, "--tensor-split: the proportions add up to 0");
    }
    if (r->gpu_layers_set && r->gpu_layers < 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "-ngl %lld is negative", (long long)r->gpu_layers);
    if (r->n_cpu_moe_set && r->n_cpu_moe < 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "--n-cpu-moe %lld is negative", (long long)r->n_cpu_moe);
    if (r->n_cpu_moe_set && r->n_cpu_moe > r->shape.n_layer)
        return strata_fail(err, STRATA_INVALID_INPUT, "--n-cpu-moe %lld: the model has %lld layers",
                           (long long)r->n_cpu_moe, (long long)r->shape.n_layer);
    if (r->n_cpu_moe_set && r->n_cpu_moe > 0 && *cpu < 0)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "--n-cpu-moe/--cpu-moe keep experts in host RAM for the CPU, but cpu is not among the "
                           "devices (add it to --device)");
    for (int o = 0; o < r->n_overrides; o++)
        if (r->overrides[o].device < 0 || r->overrides[o].device >= r->n_devices)
            return strata_fail(err, STRATA_INVALID_INPUT, "override '%s' names no listed device",
                               r->overrides[o].pattern);
    for (int64_t t = 0; t < r->n_tensors; t++)
        if (r->tensors[t].role == PLAN_ROLE_LAYER &&
            (r->tensors[t].layer < 0 || r->tensors[t].layer >= r->shape.n_layer))
            return strata_fail(err, STRATA_INVALID_INPUT, "tensor %s: layer %lld is outside [0, %lld)",
                               r->tensors[t].name, (long long)r->tensors[t].layer, (long long)r->shape.n_layer);
    return STRATA_OK;
}

/* Workspace bound per device: the largest matmul of the whole model (any
 * device may get it), so the bound does not depend on the candidate. */
static void estimate_workspace(planner *p)
{
    const plan_request *r = p->request;
    /* a step never holds more tokens than the context */
    p->batch = r->max_batch < p->n_ctx ? r->max_batch : p->n_ctx;
    backend_workspace_query query = {
        .max_tokens = p->batch, .n_heads = r->shape.n_head, .n_kv_heads = r->shape.n_head_kv,
        .head_dim = r->shape.head_dim, .n_ctx = p->n_ctx};
    for (int64_t t = 0; t < r->n_tensors; t++) {
        const plan_tensor_input *tensor = &r->tensors[t];
        if (!tensor->is_matrix || tensor->role == PLAN_ROLE_UNUSED)
            continue;
        if (tensor->n_expert > 0) { /* matmul_id: one expert's slab at a time */
            int64_t rows = tensor->rows / tensor->n_expert;
            query.max_expert_rows = rows > query.max_expert_rows ? rows : query.max_expert_rows;
            query.max_expert_cols =
                tensor->row_elements > query.max_expert_cols ? tensor->row_elements : query.max_expert_cols;
            if (tensor->experts_used > query.max_experts_used)
                query.max_experts_used = tensor->experts_used;
        }
        if (tensor->rows > query.max_matmul_rows)
            query.max_matmul_rows = tensor->rows;
        if (tensor->row_elements > query.max_matmul_cols)
            query.max_matmul_cols = tensor->row_elements;
        int64_t row_bytes = tensor->rows > 0 ? (int64_t)(tensor->bytes / (uint64_t)tensor->rows) : 0;
        if (row_bytes > query.max_matmul_row_bytes)
            query.max_matmul_row_bytes = row_bytes;
        if ((int)tensor->dtype >= 0 && (int)tensor->dtype < 64)
            query.weight_dtype_mask |= 1ull << tensor->dtype;
    }
    for (int d = 0; d < r->n_devices; d++) {
        query.multiprocessors = r->devices[d].multiprocessors;
        p->workspace[d] = r->devices[d].workspace_bytes ? r->devices[d].workspace_bytes(&query) : 0;
    }
}

/* Lists each layer's tensors (by_layer, layer_start: a counting sort) and
 * notes whether the model has experts. */
static void index_layers(planner *p)
{
    const plan_request *r = p->request;
    int64_t n_layer = r->shape.n_layer;
    for (int64_t t = 0; t < r->n_tensors; t++)
        if (r->tensors[t].role == PLAN_ROLE_LAYER) {
            p->layer_start[r->tensors[t].layer + 1]++;
            p->has_experts = p->has_experts || r->tensors[t].n_expert > 0;
        }
    for (int64_t l = 0; l < n_layer; l++)
        p->layer_start[l + 1] += p->layer_start[l];
    int64_t *next = p->layer_start; /* the starts serve as cursors, then shift back */
    for (int64_t t = 0; t < r->n_tensors; t++)
        if (r->tensors[t].role == PLAN_ROLE_LAYER)
            p->by_layer[next[r->tensors[t].layer]++] = t;
    /* next[l] now holds the end of layer l, which is the start of l + 1 */
    for (int64_t l = n_layer; l > 0; l--)
        p->layer_start[l] = p->layer_start[l - 1];
    p->layer_start[0] = 0;
}

strata_status planner_run(const plan_request *request, strata_plan *out, strata_error *err)
{
    memset(out, 0, sizeof *out);
    planner p = {.request = request};
    strata_status status = check_request(request, &p.cpu, &p.n_gpus, err);
    if (status != STRATA_OK)
        return status;
    size_t layer_slots = (size_t)(request->shape.n_layer > 0 ? request->shape.n_layer : 1);
    p.fixed_device = malloc((size_t)(request->n_tensors > 0 ? request->n_tensors : 1) * sizeof *p.fixed_device);
    p.layer_device = calloc(layer_slots, sizeof *p.layer_device);
    layout_copy best_layout = {.layer_device = calloc(layer_slots, sizeof(int))};
    layout_copy closest_layout = {.layer_device = calloc(layer_slots, sizeof(int))};
    layout_copy trial_layout = {.layer_device = calloc(layer_slots, sizeof(int))};
    evaluation *best = calloc(1, sizeof *best), *closest = calloc(1, sizeof *closest),
               *trial = calloc(1, sizeof *trial);
    p.layer_flag = calloc(layer_slots, 1);
    p.by_layer = malloc((size_t)(request->n_tensors > 0 ? request->n_tensors : 1) * sizeof *p.by_layer);
    p.layer_start = calloc(layer_slots + 1, sizeof *p.layer_start);
    if (!p.fixed_device || !p.layer_device || !best_layout.layer_device || !closest_layout.layer_device ||
        !trial_layout.layer_device || !best || !closest || !trial || !p.layer_flag || !p.by_layer ||
        !p.layer_start) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory planning");
        goto done;
    }
    index_layers(&p);
    if ((status = match_overrides(&p, err)) != STRATA_OK)
        goto done;
    find_uncomputable(&p);
    p.rates_known = true;
    for (int d = 0; d < request->n_devices; d++)
        if (!(request->devices[d].read_bandwidth > 0))
            p.rates_known = false;

    int64_t wanted = request->n_ctx > 0 ? request->n_ctx : request->n_ctx_default;
    p.n_ctx = wanted;
    estimate_workspace(&p);
    bool found = search(&p, best, &best_layout, closest, &closest_layout);
    if (!found && request->n_ctx == 0 && wanted > 1) {
        /* the default context is not a promise: find the largest that fits */
        int64_t low = 0, high = wanted; /* low fits (0: none found yet), high does not */
        while (high - low > 1) {
            int64_t mid = low + (high - low) / 2;
            p.n_ctx = mid;
            estimate_workspace(&p);
            if (search(&p, trial, &trial_layout, closest, &closest_layout)) {
                low = mid;
                *best = *trial;
                restore_layout(&p, &trial_layout);
                keep_layout(&p, &best_layout);
                found = true;
            } else {
                high = mid;
            }
        }
        if (found)
            snprintf(out->note, sizeof out->note,
                     "the context was shrunk from %lld to %lld positions, the most that fits (give --ctx to "
                     "choose it, or put fewer layers on a device to make room)",
                     (long long)wanted, (long long)low);
        p.n_ctx = found ? low : wanted;
        estimate_workspace(&p);
        if (!found) /* the shortfall is told for the context that was asked for */
            (void)search(&p, trial, &trial_layout, closest, &closest_layout);
    }
    if (!found) {
        restore_layout(&p, &closest_layout);
        describe_shortfall(&p, closest, out);
        if (!closest->laid_out) {
            /* no candidate could even be laid out: say why */
            size_t used = strlen(out->shortfall);
            const int64_t logits = output_tensor(&p);
            bool output_anywhere = logits < 0;
            for (int d = 0; d < request->n_devices && !output_anywhere; d++)
                output_anywhere = device_computes(&p, d, &request->tensors[logits]);
            if (!output_anywhere)
                snprintf(out->shortfall + used, sizeof out->shortfall - used,
                         "; no listed device computes %s weights (%s): add cpu to --device",
                         dtype_name(request->tensors[logits].dtype), request->tensors[logits].name);
            else
                snprintf(out->shortfall + used, sizeof out->shortfall - used,
                         p.cpu < 0 ? "; the layers not on GPUs have no device (add cpu to --device)"
                                   : "; there is no GPU for the GPU layers");
        }
        /* still describe the closest layout, so the caller can show it */
        status = fill_plan(&p, closest, out, err);
        out->fits = false;
        goto done;
    }
    restore_layout(&p, &best_layout);
    status = fill_plan(&p, best, out, err);
    out->fits = true;
done:
    free(p.fixed_device);
    free(p.layer_device);
    free(p.layer_flag);
    free(p.by_layer);
    free(p.layer_start);
    free(best_layout.layer_device);
    free(closest_layout.layer_device);
    free(trial_layout.layer_device);
    free(best);
    free(closest);
    free(trial);
    if (status != STRATA_OK)
        planner_result_release(out);
    return status;
}

void planner_result_release(strata_plan *plan)
{
    if (!plan)
        return;
    for (int64_t t = 0; t < plan->n_tensors && plan->tensors; t++)
        free(plan->tensors[t].name);
    free(plan->tensors);
    free(plan->layer_device);
    plan->tensors = NULL;
    plan->layer_device = NULL;
    plan->n_tensors = 0;
}
