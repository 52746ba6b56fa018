/* The forward pass, written once over backend ops. Architecture differences
 * are data in strata_hparams (QKV bias, Q/K norm per head or over the
 * projection, norms before and/or after each sublayer, SwiGLU or GeGLU, rope
 * layout and scaling, sliding window and its layers, softcaps, embedding
 * scale, tied output, a mixture of experts in place of the FFN, with or
 * without a gated shared expert beside it; fused weights
 * are bound as views of their rows), not copies of this function.
 *
 * Devices: an op that reads a weight runs on the device holding it; rope,
 * the KV-cache store and attention run where the layer's cache is; the
 * other weightless ops (residual add, swiglu) run where their inputs
 * already are. handoff.c moves an activation when an op needs it elsewhere,
 * so a model split by layers costs one hand-off per device boundary.
 *
 * Shapes are [ne0, ne1, ...], innermost first; n is the number of tokens in
 * the chunk. Activations are named by their scratch slot. */
#include <math.h>
#include <string.h>

#include "context.h"

/* An activation: a view of [ne0, ne1, ne2] at offset bytes into a scratch
 * slot, on whichever device the op runs. */
typedef struct activation {
    scratch_slot slot;
    int64_t ne0, ne1, ne2;
    size_t offset;
} activation;

static activation act(scratch_slot slot, int64_t ne0, int64_t ne1, int64_t ne2)
{
    activation a = {.slot = slot, .ne0 = ne0, .ne1 = ne1, .ne2 = ne2, .offset = 0};
    return a;
}

typedef struct forward_state {
    strata_context *ctx;
    strata_error *err;
} forward_state;

/* The tensor of a on device d (a contiguous F32/I32 view of the slot). */
static strata_tensor on_device(const forward_state *s, int d, activation a)
{
    const strata_tensor *base = &s->ctx->devices[d].scratch.slots[a.slot];
    strata_tensor view;
    tensor_init_contiguous(&view, base->dtype, a.ne0, a.ne1, a.ne2, 1);
    view.buffer = base->buffer;
    view.offset = base->offset + a.offset;
    view.host_data = base->host_data ? (char *)base->host_data + a.offset : NULL;
    view.name = base->name;
    return view;
}

/* Bytes of the slot that a covers (from the slot's start). */
static size_t end_of(activation a)
{
    return a.offset + (size_t)(a.ne0 * a.ne1 * a.ne2) * 4; /* F32 and I32 */
}

/* Issues op on device d, opening the device's step the first time. */
static strata_status issue(forward_state *s, int d, backend_op *op)
{
    strata_context *ctx = s->ctx;
    const backend_device *device = &ctx->model->devices[d].device;
    if (!(ctx->devices_touched & (1u << d))) {
        ctx->devices_touched |= 1u << d;
        if (device->ops->begin_step) {
            strata_status status = device->ops->begin_step(device->ctx, s->err);
            if (status != STRATA_OK)
                return status;
        }
    }
    return device->ops->run_op(device->ctx, op, s->err);
}

/* Runs op on d after bringing each input activation there; dst is then
 * held by d alone. */
static strata_status run(forward_state *s, int d, backend_op *op, activation dst, const activation *inputs,
                         int n_inputs)
{
    strata_status status;
    for (int i = 0; i < n_inputs; i++)
        if ((status = handoff_ensure(s->ctx, inputs[i].slot, d, s->err)))
            return status;
    if ((status = issue(s, d, op)))
        return status;
    handoff_written(s->ctx, dst.slot, d, end_of(dst));
    return STRATA_OK;
}

/* Where a weightless op on these inputs runs: a device holding all of
 * them, else one holding the last (the freshest result), so at most the
 * others move. */
static int follow_inputs(const forward_state *s, const activation *inputs, int n_inputs)
{
    uint32_t all = ~0u;
    for (int i = 0; i < n_inputs; i++)
        all &= s->ctx->slot_valid_on[inputs[i].slot];
    uint32_t choice = all ? all : s->ctx->slot_valid_on[inputs[n_inputs - 1].slot];
    for (int d = 0; d < s->ctx->model->n_devices; d++)
        if (choice & (1u << d))
            return d;
    return 0;
}

/* dst = rms_norm(x) * weight, where the weight is */
static strata_status rms_norm(forward_state *s, activation dst, activation x, const model_weight *weight)
{
    int d = weight->device;
    strata_tensor dst_t = on_device(s, d, dst), x_t = on_device(s, d, x);
    backend_op op = {.kind = OP_RMS_NORM, .dst = &dst_t, .src = {&x_t, &weight->tensor}};
    op.params.rms_norm.eps = s->ctx->model->hparams.rms_eps;
    return run(s, d, &op, dst, &x, 1);
}

/* dst = weight x, where the weight is */
static strata_status matmul(forward_state *s, activation dst, const model_weight *weight, activation x)
{
    int d = weight->device;
    strata_tensor dst_t = on_device(s, d, dst), x_t = on_device(s, d, x);
    backend_op op = {.kind = OP_MATMUL, .dst = &dst_t, .src = {&weight->tensor, &x_t}};
    return run(s, d, &op, dst, &x, 1);
}

/* x += bias (one row broadcast), where the bias is */
static strata_status add_bias(forward_state *s, activation x, const model_weight *bias)
{
    int d = bias->device;
    strata_tensor x_t = on_device(s, d, x);
    backend_op op = {.kind = OP_ADD, .dst = &x_t, .src = {&x_t, &bias->tensor}};
    return run(s, d, &op, x, &x, 1);
}

/* x += y, where the inputs are */
static strata_status add(forward_state *s, activation x, activation y)
{
    activation inputs[2] = {x, y};
    int d = follow_inputs(s, inputs, 2);
    strata_tensor x_t = on_device(s, d, x), y_t = on_device(s, d, y);
    backend_op op = {.kind = OP_ADD, .dst = &x_t, .src = {&x_t, &y_t}};
    return run(s, d, &op, x, inputs, 2);
}

/* gate = act(gate) * up (silu, or tanh gelu when gelu), where the inputs are */
static strata_status gated(forward_state *s, activation gate, activation up, bool gelu)
{
    activation inputs[2] = {up, gate};
    int d = follow_inputs(s, inputs, 2);
    strata_tensor gate_t = on_device(s, d, gate), up_t = on_device(s, d, up);
    backend_op op = {.kind = gelu ? OP_GEGLU : OP_SWIGLU, .dst = &gate_t, .src = {&gate_t, &up_t}};
    return run(s, d, &op, gate, inputs, 2);
}

/* x *= value on device d */
static strata_status scale(forward_state *s, int d, activation x, float value)
{
    strata_tensor x_t = on_device(s, d, x);
    backend_op op = {.kind = OP_SCALE, .dst = &x_t, .src = {&x_t}};
    op.params.scale.value = value;
    return run(s, d, &op, x, &x, 1);
}

/* Whether layer attends through the sliding window. */
static bool layer_is_local(const strata_hparams *hp, int64_t layer)
{
    if (hp->sliding_window <= 0)
        return false;
    if (hp->swa_layers == STRATA_SWA_ALL)
        return true;
    return layer % hp->swa_period < hp->swa_period - 1;
}

/* The token positions of the chunk on device d (uploaded once per device). */
static strata_status positions_on(forward_state *s, int d, int64_t n, strata_tensor *out)
{
    strata_status status = handoff_from_host(s->ctx, SCRATCH_POSITIONS, d, s->ctx->host_positions,
                                             (size_t)n * sizeof(int32_t), s->err);
    *out = on_device(s, d, act(SCRATCH_POSITIONS, n, 1, 1));
    return status;
}

/* Rotary embedding of x [hd, heads, n] in place on device d (the layer's),
 * with the base and scale of a local (sliding-window) or global layer. */
static strata_status rope(forward_state *s, int d, activation x, int64_t n, bool local)
{
    const strata_model *model = s->ctx->model;
    const strata_hparams *hp = &model->hparams;
    strata_tensor positions;
    strata_status status = positions_on(s, d, n, &positions);
    if (status != STRATA_OK)
        return status;
    /* LongRoPE takes the long factors for a context past the original one
     * (for the whole context, so that every step rotates the same way) */
    const strata_tensor *factors = NULL;
    if (hp->has_rope_freq_factors)
        factors = &model->devices[d].rope_factors[ROPE_FACTORS_FREQS];
    else if (hp->has_rope_longrope)
        factors = &model->devices[d].rope_factors[s->ctx->n_ctx > hp->rope_orig_ctx ? ROPE_FACTORS_LONG
                                                                                     : ROPE_FACTORS_SHORT];
    strata_tensor x_t = on_device(s, d, x);
    backend_op op = {.kind = OP_ROPE, .dst = &x_t, .src = {&x_t, &positions, factors}};
    op.params.rope.n_rot = (int32_t)hp->n_rot;
    op.params.rope.neox = hp->rope_neox;
    op.params.rope.freq_base = local ? hp->rope_freq_base_swa : hp->rope_freq_base;
    op.params.rope.freq_scale = local ? hp->rope_freq_scale_swa : hp->rope_freq_scale;
    op.params.rope.attn_factor = hp->rope_attn_factor;
    return run(s, d, &op, x, &x, 1);
}

/* The cache rows of one layer seen as [row_size, n_ctx] for OP_KV_STORE. */
static strata_tensor cache_rows(const strata_tensor *cache)
{
    strata_tensor rows = *cache;
    rows.ne[0] = cache->ne[0] * cache->ne[1];
    rows.ne[1] = cache->ne[2];
    rows.ne[2] = 1;
    rows.nb[1] = cache->nb[2];
    rows.nb[2] = cache->nb[3];
    return rows;
}

/* Appends src [row_size, n] to a layer's cache at the chunk's positions. */
static strata_status kv_store(forward_state *s, int d, strata_tensor *cache, activation src, int64_t n)
{
    strata_tensor positions;
    strata_status status = positions_on(s, d, n, &positions);
    if (status != STRATA_OK || (status = handoff_ensure(s->ctx, src.slot, d, s->err)))
        return status;
    strata_tensor rows = cache_rows(cache), src_t = on_device(s, d, src);
    backend_op op = {.kind = OP_KV_STORE, .dst = &rows, .src = {&src_t, &positions}};
    return issue(s, d, &op);
}

static strata_status attention_block(forward_state *s, const layer_weights *layer, int64_t layer_index, int64_t n)
{
    strata_context *ctx = s->ctx;
    const strata_hparams *hp = &ctx->model->hparams;
    int64_t hd = hp->head_dim, q_size = hp->n_head * hd, kv_size = hp->n_head_kv * hd;
    int kv_device = layer->device;
    activation x = act(SCRATCH_RESIDUAL, hp->n_embd, n, 1);      /* [n_embd, n] */
    activation normed = act(SCRATCH_NORMED, hp->n_embd, n, 1);   /* [n_embd, n] */
    activation q = act(SCRATCH_Q, q_size, n, 1);                 /* [n_head*hd, n] */
    activation k = act(SCRATCH_K, kv_size, n, 1);                /* [n_head_kv*hd, n] */
    activation v = act(SCRATCH_V, kv_size, n, 1);                /* [n_head_kv*hd, n] */
    activation attn = act(SCRATCH_ATTN_OUT, hd, hp->n_head, n);  /* [hd, n_head, n] */
    activation proj = act(SCRATCH_PROJ, hp->n_embd, n, 1);       /* [n_embd, n] */
    strata_status status;

    bool local = layer_is_local(hp, layer_index);

    /* normed = rms_norm(x) * attn_norm (olmo2: the block reads x itself) */
    activation input = hp->has_pre_norms ? normed : x;
    if (hp->has_pre_norms && (status = rms_norm(s, normed, x, &layer->attn_norm)))
        return status;
    /* q, k, v = W input (+ bias); fused QKV weights are three views */
    if ((status = matmul(s, q, &layer->attn_q, input)) || (status = matmul(s, k, &layer->attn_k, input)) ||
        (status = matmul(s, v, &layer->attn_v, input)))
        return status;
    if (hp->has_qkv_bias && ((status = add_bias(s, q, &layer->attn_q_bias)) ||
                             (status = add_bias(s, k, &layer->attn_k_bias)) ||
                             (status = add_bias(s, v, &layer->attn_v_bias))))
        return status;
    if (hp->has_qk_norm && hp->qk_norm_full) {
        /* RMS norm over each token's whole projection, weight [q_size] / [kv_size] */
        if ((status = rms_norm(s, q, q, &layer->attn_q_norm)) || (status = rms_norm(s, k, k, &layer->attn_k_norm)))
            return status;
    } else if (hp->has_qk_norm) {
        /* RMS norm over each head's hd values, weight [hd] */
        activation q_rows = act(SCRATCH_Q, hd, hp->n_head * n, 1);
        activation k_rows = act(SCRATCH_K, hd, hp->n_head_kv * n, 1);
        if ((status = rms_norm(s, q_rows, q_rows, &layer->attn_q_norm)) ||
            (status = rms_norm(s, k_rows, k_rows, &layer->attn_k_norm)))
            return status;
    }
    /* per-head views: q [hd, n_head, n], k [hd, n_head_kv, n], rotated where the cache is */
    activation q_heads = act(SCRATCH_Q, hd, hp->n_head, n);
    activation k_heads = act(SCRATCH_K, hd, hp->n_head_kv, n);
    if ((status = rope(s, kv_device, q_heads, n, local)) || (status = rope(s, kv_device, k_heads, n, local)))
        return status;

    /* append k, v to this layer's cache at the chunk's positions */
    if ((status = kv_store(s, kv_device, &ctx->k_cache[layer_index], k, n)) ||
        (status = kv_store(s, kv_device, &ctx->v_cache[layer_index], v, n)))
        return status;

    /* attn [hd, n_head, n] = softmax(softcap(q k^T * attn_scale), causal, window on local layers) v */
    strata_tensor positions;
    if ((status = positions_on(s, kv_device, n, &positions)))
        return status;
    strata_tensor attn_t = on_device(s, kv_device, attn), q_t = on_device(s, kv_device, q_heads);
    backend_op attention = {.kind = OP_ATTENTION,
                            .dst = &attn_t,
                            .src = {&q_t, &ctx->k_cache[layer_index], &ctx->v_cache[layer_index], &positions}};
    attention.params.attention.n_kv = ctx->n_past + n;
    attention.params.attention.scale = hp->attn_scale;
    attention.params.attention.softcap = hp->attn_softcap;
    attention.params.attention.sliding_window = local ? (int32_t)hp->sliding_window : 0;
    if ((status = run(s, kv_device, &attention, attn, &q_heads, 1)))
        return status;

    /* x += W_o attn (rms_norm(W_o attn) * post_attention_norm with post-norms) */
    activation attn_flat = act(SCRATCH_ATTN_OUT, q_size, n, 1);
    if ((status = matmul(s, proj, &layer->attn_output, attn_flat)) ||
        (hp->has_post_norms && (status = rms_norm(s, proj, proj, &layer->attn_post_norm))) ||
        (status = add(s, x, proj)))
        return status;
    return STRATA_OK;
}

/* The CPU among the model's devices, or -1. */
static int cpu_device(const forward_state *s)
{
    const strata_model *model = s->ctx->model;
    for (int d = 0; d < model->n_devices; d++)
        if (model->devices[d].info.kind == DEVICE_KIND_CPU)
            return d;
    return -1;
}

/* A weightless op whose inputs are activations: it runs where they are
 * (follow_inputs), src[i] bound to inputs[i] there; on the CPU when that
 * device does not run ops of its kind (a GPU without the router's top-k,
 * whose experts the planner left on the CPU). */
static strata_status run_here(forward_state *s, backend_op *op, activation dst, const activation *inputs,
                              int n_inputs)
{
    int d = follow_inputs(s, inputs, n_inputs);
    strata_tensor dst_t, src_t[BACKEND_OP_MAX_SRC];
    for (int attempt = 0; attempt < 2; attempt++) {
        dst_t = on_device(s, d, dst);
        for (int i = 0; i < n_inputs; i++) {
            src_t[i] = on_device(s, d, inputs[i]);
            op->src[i] = &src_t[i];
        }
        op->dst = &dst_t;
        const backend_device *device = &s->ctx->model->devices[d].device;
        if (device->ops->supports(device->ctx, op))
            return run(s, d, op, dst, inputs, n_inputs);
        int cpu = cpu_device(s);
        if (cpu < 0 || cpu == d)
            break;
        d = cpu;
    }
    return strata_fail(s->err, STRATA_UNSUPPORTED, "%s: no device of this model runs %s on these shapes",
                       s->ctx->model->devices[d].name, op_kind_name(op->kind));
}

/* dst = the chosen experts' weights times x, where the experts are */
static strata_status matmul_id(forward_state *s, activation dst, const model_weight *experts, activation x,
                               activation ids)
{
    int d = experts->device;
    activation inputs[2] = {x, ids};
    strata_tensor dst_t = on_device(s, d, dst), x_t = on_device(s, d, x), ids_t = on_device(s, d, ids);
    backend_op op = {.kind = OP_MATMUL_ID, .dst = &dst_t, .src = {&experts->tensor, &x_t, &ids_t}};
    return run(s, d, &op, dst, inputs, 2);
}

/* The mixture of experts of one layer on input [n_embd, n]: each token goes
 * through the k experts its router picks, their outputs summed with the
 * router's weights into proj [n_embd, n]. */
static strata_status experts_block(forward_state *s, const layer_weights *layer, activation input, activation proj,
                                   int64_t n)
{
    const strata_hparams *hp = &s->ctx->model->hparams;
    int64_t k = hp->n_expert_used, f = hp->n_ff_exp;
    activation probs = act(SCRATCH_ROUTER, hp->n_expert, n, 1);     /* [n_expert, n] */
    activation ids = act(SCRATCH_EXPERT_IDS, k, n, 1);              /* [k, n] I32 */
    activation weights = act(SCRATCH_EXPERT_WEIGHTS, k, n, 1);      /* [k, n] */
    activation shared_in = act(input.slot, hp->n_embd, 1, n);       /* [n_embd, 1, n] */
    activation gate = act(SCRATCH_FFN_GATE, f, k, n);               /* [n_ff_exp, k, n] */
    activation up = act(SCRATCH_FFN_UP, f, k, n);                   /* [n_ff_exp, k, n] */
    activation outputs = act(SCRATCH_EXPERT_OUT, hp->n_embd, k, n); /* [n_embd, k, n] */
    strata_status status;

    /* probs = softmax(W_router input); ids = the k most probable experts;
     * weights = their probabilities, renormalized to sum 1 when the model does */
    backend_op softmax = {.kind = OP_SOFTMAX}, topk = {.kind = OP_TOPK}, pick = {.kind = OP_MOE_WEIGHTS};
    pick.params.moe_weights.normalize = hp->expert_weights_norm;
    activation pick_inputs[2] = {probs, ids};
    if ((status = matmul(s, probs, &layer->ffn_gate_inp, input)) ||
        (status = run_here(s, &softmax, probs, &probs, 1)) || (status = run_here(s, &topk, ids, &probs, 1)) ||
        (status = run_here(s, &pick, weights, pick_inputs, 2)))
        return status;
    /* gate = silu(W_gate,e input) * (W_up,e input) for each chosen expert e */
    if ((status = matmul_id(s, gate, &layer->ffn_gate_exps, shared_in, ids)) ||
        (status = matmul_id(s, up, &layer->ffn_up_exps, shared_in, ids)) ||
        (status = gated(s, gate, up, hp->ffn_gelu)))
        return status;
    /* outputs[:, j, t] = W_down,e gate[:, j, t]; proj = sum_j weights[j] outputs[:, j] */
    if ((status = matmul_id(s, outputs, &layer->ffn_down_exps, gate, ids)))
        return status;
    backend_op sum = {.kind = OP_MOE_SUM};
    activation sum_inputs[2] = {outputs, weights};
    return run_here(s, &sum, proj, sum_inputs, 2);
}

/* The shared expert of one layer (qwen2moe) on input [n_embd, n], added to
 * the experts' sum in proj [n_embd, n]: proj += sigmoid(w_gate_inp . input)
 * * W_down (silu(W_gate input) * (W_up input)), the gate a scalar per token.
 * It runs after experts_block, whose scratch it reuses: the expert weights'
 * slot for the gate, the expert outputs' for the FFN's, and normed (read by
 * no later step) for the gated result. */
static strata_status shared_expert_block(forward_state *s, const layer_weights *layer, activation input,
                                         activation proj, int64_t n)
{
    const strata_hparams *hp = &s->ctx->model->hparams;
    int64_t f = hp->n_ff_shexp;
    activation gate_logit = act(SCRATCH_EXPERT_WEIGHTS, 1, n, 1);    /* [1, n] */
    activation gate = act(SCRATCH_FFN_GATE, f, n, 1);                /* [n_ff_shexp, n] */
    activation up = act(SCRATCH_FFN_UP, f, n, 1);                    /* [n_ff_shexp, n] */
    activation shared = act(SCRATCH_EXPERT_OUT, hp->n_embd, 1, n);   /* [n_embd, 1, n] */
    activation shared_flat = act(SCRATCH_EXPERT_OUT, hp->n_embd, n, 1);
    activation gated_out = act(SCRATCH_NORMED, hp->n_embd, n, 1);    /* [n_embd, n] */
    strata_status status;

    /* gate_logit = w_gate_inp . input; shared = W_down (silu(W_gate input) * (W_up input)) */
    if ((status = matmul(s, gate_logit, &layer->ffn_gate_inp_shexp, input)) ||
        (status = matmul(s, gate, &layer->ffn_gate_shexp, input)) ||
        (status = matmul(s, up, &layer->ffn_up_shexp, input)) || (status = gated(s, gate, up, false)) ||
        (status = matmul(s, shared_flat, &layer->ffn_down_shexp, gate)))
        return status;
    /* gated_out[:, t] = sigmoid(gate_logit[t]) shared[:, 0, t] (a sum over one
     * slot with the sigmoid of its weight); proj += gated_out */
    backend_op sum = {.kind = OP_MOE_SUM};
    sum.params.moe_sum.sigmoid = true;
    activation sum_inputs[2] = {shared, gate_logit};
    if ((status = run_here(s, &sum, gated_out, sum_inputs, 2)))
        return status;
    return add(s, proj, gated_out);
}

static strata_status ffn_block(forward_state *s, const layer_weights *layer, int64_t n)
{
    const strata_hparams *hp = &s->ctx->model->hparams;
    activation x = act(SCRATCH_RESIDUAL, hp->n_embd, n, 1);    /* [n_embd, n] */
    activation normed = act(SCRATCH_NORMED, hp->n_embd, n, 1); /* [n_embd, n] */
    activation gate = act(SCRATCH_FFN_GATE, hp->n_ff, n, 1);   /* [n_ff, n] */
    activation up = act(SCRATCH_FFN_UP, hp->n_ff, n, 1);       /* [n_ff, n] */
    activation proj = act(SCRATCH_PROJ, hp->n_embd, n, 1);     /* [n_embd, n] */
    strata_status status;

    /* normed = rms_norm(x) * ffn_norm (olmo2: the block reads x itself) */
    activation input = hp->has_pre_norms ? normed : x;
    if (hp->has_pre_norms && (status = rms_norm(s, normed, x, &layer->ffn_norm)))
        return status;
    if (hp->n_expert > 0) {
        /* proj = the chosen experts' outputs, weighted (+ the gated shared expert's) */
        if ((status = experts_block(s, layer, input, proj, n)) ||
            (hp->n_ff_shexp > 0 && (status = shared_expert_block(s, layer, input, proj, n))))
            return status;
    } else if ((status = matmul(s, gate, &layer->ffn_gate, input)) ||
               (status = matmul(s, up, &layer->ffn_up, input)) || (status = gated(s, gate, up, hp->ffn_gelu)) ||
               (status = matmul(s, proj, &layer->ffn_down, gate))) {
        /* gate = act(W_gate input) * (W_up input), act silu or tanh gelu
         * (fused gate/up weights are two views); proj = W_down gate */
        return status;
    }
    /* x += proj (rms_norm(proj) * post_ffw_norm with post-norms) */
    if ((hp->has_post_norms && (status = rms_norm(s, proj, proj, &layer->ffn_post_norm))) ||
        (status = add(s, x, proj)))
        return status;
    return STRATA_OK;
}

/* logits of tokens [first, first + count) of the chunk -> host rows from host_row */
static strata_status output_logits(forward_state *s, int64_t first, int64_t count, int64_t host_row)
{
    strata_context *ctx = s->ctx;
    const strata_model *model = ctx->model;
    const strata_hparams *hp = &model->hparams;
    int d = model->output.device;
    const backend_device *device = &model->devices[d].device;
    size_t column_bytes = (size_t)hp->n_embd * sizeof(float);
    strata_status status;
    for (int64_t done = 0; done < count; done += SCRATCH_LOGITS_CHUNK) {
        int64_t rows = count - done < SCRATCH_LOGITS_CHUNK ? count - done : SCRATCH_LOGITS_CHUNK;
        /* normed [n_embd, rows] = rms_norm(x columns) * output_norm */
        activation x = act(SCRATCH_RESIDUAL, hp->n_embd, rows, 1);
        x.offset = (size_t)(first + done) * column_bytes;
        activation normed = act(SCRATCH_NORMED, hp->n_embd, rows, 1);
        activation logits = act(SCRATCH_LOGITS, hp->n_vocab, rows, 1); /* [n_vocab, rows] */
        if ((status = rms_norm(s, normed, x, &model->output_norm)) ||
            (status = matmul(s, logits, &model->output, normed)))
            return status;
        strata_tensor logits_t = on_device(s, d, logits);
        float *host = ctx->host_logits + (size_t)(host_row + done) * (size_t)hp->n_vocab;
        if ((status = device->ops->download(device->ctx, logits_t.buffer, logits_t.offset, host,
                                            tensor_byte_size(&logits_t), s->err)) ||
            (status = device->ops->sync(device->ctx, s->err)))
            return status;
        /* logits = c * tanh(logits / c) (gemma2), on the host rows: they are
         * here already, and the cap keeps their order */
        if (hp->final_softcap > 0.0f)
            for (size_t i = 0; i < (size_t)(rows * hp->n_vocab); i++)
                host[i] = hp->final_softcap * tanhf(host[i] / hp->final_softcap);
    }
    return STRATA_OK;
}

/* Closes the step of every device the chunk used and waits for them. */
static strata_status finish_chunk(strata_context *ctx, strata_status status, strata_error *err)
{
    strata_model *model = ctx->model;
    for (int d = 0; d < model->n_devices; d++) {
        if (!(ctx->devices_touched & (1u << d)))
            continue;
        const backend_device *device = &model->devices[d].device;
        strata_error end_err = {0};
        strata_status end_status = device->ops->end_step ? device->ops->end_step(device->ctx, &end_err) : STRATA_OK;
        if (end_status == STRATA_OK)
            end_status = device->ops->sync(device->ctx, &end_err);
        if (status == STRATA_OK && end_status != STRATA_OK) {
            if (err)
                *err = end_err;
            status = end_status;
        }
    }
    ctx->devices_touched = 0;
    return status;
}

strata_status forward_chunk(strata_context *ctx, const int32_t *tokens, int64_t n, bool all_logits,
                            int64_t host_row, strata_error *err)
{
    strata_model *model = ctx->model;
    const strata_hparams *hp = &model->hparams;
    forward_state state = {.ctx = ctx, .err = err};
    strata_status status;

    for (int64_t i = 0; i < n; i++)
        ctx->host_positions[i] = (int32_t)(ctx->n_past + i);
    handoff_begin_chunk(ctx);
    ctx->devices_touched = 0;

    /* x [n_embd, n] = token_embd[tokens], where the embedding is */
    int embedding_device = model->token_embd.device;
    activation x = act(SCRATCH_RESIDUAL, hp->n_embd, n, 1);
    if ((status = handoff_from_host(ctx, SCRATCH_TOKENS, embedding_device, tokens, (size_t)n * sizeof(int32_t),
                                    err)))
        return status;
    strata_tensor x_t = on_device(&state, embedding_device, x);
    strata_tensor token_ids = on_device(&state, embedding_device, act(SCRATCH_TOKENS, n, 1, 1)); /* [n] I32 */
    backend_op get_rows = {.kind = OP_GET_ROWS, .dst = &x_t, .src = {&model->token_embd.tensor, &token_ids}};
    if ((status = issue(&state, embedding_device, &get_rows)))
        goto done;
    handoff_written(ctx, SCRATCH_RESIDUAL, embedding_device, end_of(x));
    /* x *= sqrt(n_embd) (gemma) */
    if (hp->embd_scale != 1.0f && (status = scale(&state, embedding_device, x, hp->embd_scale)))
        goto done;

    for (int64_t layer = 0; layer < hp->n_layer; layer++) {
        const layer_weights *weights = &model->layers[layer];
        if ((status = attention_block(&state, weights, layer, n)) || (status = ffn_block(&state, weights, n)))
            goto done;
    }

    if (all_logits)
        status = output_logits(&state, 0, n, host_row);
    else if (host_row >= 0)
        status = output_logits(&state, n - 1, 1, host_row);

done:
    return finish_chunk(ctx, status, err);
}
