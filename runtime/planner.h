/* Internal: the memory planner. Pure: it reads a model's tensor table and
 * shape and a table of devices with their budgets and speeds, and decides
 * where every weight, each layer's KV cache and each device's scratch go,
 * before anything is allocated. No device calls, so it plans for hardware
 * that is not present and is unit-tested on hypothetical device tables.
 *
 * The placement it builds:
 * - Layers form one chain through the devices: the last device of the list
 *   (the CPU, by default) gets the first layers, the first device the last
 *   layers and the output matrix. A token then crosses each device boundary
 *   once (embedding -> layers -> output), whatever the split.
 * - The token embedding stays in host RAM when the CPU is in the list (a
 *   lookup reads one row per token; the rows cross to the first layer's
 *   device), unless the output shares it (tied embeddings).
 * - Each layer's KV cache lives with the layer (attention runs where its
 *   cache is); norms and biases stay with their layer.
 * - rope_freqs (a few hundred floats) is copied to every device that runs
 *   layers.
 * - Tensors matched by an override go where it says, before anything else;
 *   the rest is fitted around them.
 * - The experts' weights (ffn_{gate,up,down}_exps) of the first n_cpu_moe
 *   layers stay in host RAM, computed by the CPU, while the rest of those
 *   layers (attention, router, norms) stays where the layer is: a decoded
 *   token reads only experts_used of n_expert experts, so the CPU reads
 *   little of what it holds. The user fixes n_cpu_moe (--cpu-moe,
 *   --n-cpu-moe N) or the planner tries every count (below).
 * - A weight whose dtype its device's backend does not compute
 *   (plan_device_input.weight_dtype_supported), and the experts' weights on
 *   a device that does not run OP_MATMUL_ID (op_kind_supported), stay in
 *   host RAM and are computed by the CPU, as if overridden there; the output
 *   goes only to a device that computes its dtype. Without the CPU in the list such a
 *   weight cannot be placed, and the plan says so.
 *
 * Fitting: every candidate (number of GPU layers, output on the first device
 * or on the CPU, for a model with experts and a CPU in the list the number
 * of layers whose experts stay in host RAM) is laid out, its memory counted per device, and among those
 * within every budget the one with the highest predicted decode tokens/s
 * wins. The user's choices (-ngl, --n-cpu-moe, --tensor-split, overrides, --ctx) narrow
 * the candidates; they never switch fitting off. */
#ifndef STRATA_PLANNER_H
#define STRATA_PLANNER_H

#include <stdbool.h>
#include <stdint.h>

#include "../backends/backend.h"
#include "strata.h"

/* What a tensor is to the planner. */
typedef enum plan_role {
    PLAN_ROLE_EMBEDDING,   /* token_embd.weight */
    PLAN_ROLE_OUTPUT,      /* output.weight */
    PLAN_ROLE_OUTPUT_NORM, /* output_norm.weight */
    PLAN_ROLE_ROPE_FREQS,  /* rope_freqs.weight: copied to every device with layers */
    PLAN_ROLE_LAYER,       /* blk.N.* */
    PLAN_ROLE_UNUSED,      /* in the file, not read by the forward pass */
} plan_role;

typedef struct plan_tensor_input {
    const char *name;
    strata_dtype dtype;
    int64_t row_elements;  /* ne[0] */
    int64_t rows;          /* product of the other dims */
    uint64_t bytes;
    plan_role role;
    int64_t layer;         /* for PLAN_ROLE_LAYER, else -1 */
    bool is_matrix;        /* read by a matmul (else a norm, bias or vector) */
    /* the experts' weights [n_in, n_out, n_expert]: a decoded token reads
     * experts_used of the n_expert slabs; 0 for every other tensor */
    int64_t n_expert, experts_used;
} plan_tensor_input;

/* The shape of the forward pass (what scratch, KV and workspace depend on). */
typedef struct plan_model_shape {
    int64_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    int64_t n_expert, n_expert_used, n_ff_exp; /* 0: a dense FFN */
    int64_t n_ff_shexp; /* the shared expert's width; 0: none */
    bool tied_output;
} plan_model_shape;

typedef struct plan_device_input {
    char name[STRATA_DEVICE_NAME_MAX];  /* "cuda0", "vulkan1", "cpu" */
    device_kind kind;
    uint64_t total_bytes;
    uint64_t budget_bytes;       /* what the plan may use on the device */
    size_t alignment;            /* of buffer offsets */
    uint64_t max_allocation_bytes; /* 0: no limit */
    double read_bandwidth;       /* bytes/s the device reads its memory at */
    double matmul_flops;         /* FLOP/s of prompt matmuls; 0: unknown */
    double link_bandwidth;       /* host <-> device bytes/s; 0 for the CPU */
    int multiprocessors;         /* for the workspace query; 0: unknown */
    /* backend_registration.workspace_bytes of the device's backend, or NULL */
    uint64_t (*workspace_bytes)(const backend_workspace_query *query);
    /* backend_registration.weight_dtype_supported of the device's backend,
     * or NULL (every dtype): weights of a dtype it says no to stay in host
     * RAM, computed by the CPU */
    bool (*weight_dtype_supported)(strata_dtype dtype);
    /* backend_registration.op_kind_supported of the device's backend, or
     * NULL (every kind): a device that does not run OP_MATMUL_ID leaves the
     * experts' weights in host RAM, computed by the CPU */
    bool (*op_kind_supported)(op_kind kind);
    /* a --device-spec device whose backend is not built into this strata:
     * nothing can say which formats it computes, so the plan assumes every
     * one and says so in its note */
    bool backend_missing;
} plan_device_input;

typedef struct plan_override_input {
    const char *pattern;  /* PCRE2, searched anywhere in the tensor name */
    int device;           /* index into the device table */
} plan_override_input;

typedef struct plan_request {
    plan_model_shape shape;
    const plan_tensor_input *tensors;
    int64_t n_tensors;
    const plan_device_input *devices; /* in the user's order; the first holds the output */
    int n_devices;
    int64_t n_ctx;            /* > 0: fixed by the user */
    int64_t n_ctx_default;    /* used when n_ctx is 0; shrunk to fit, said aloud */
    int64_t max_batch;        /* tokens per forward step (scratch size) */
    int64_t n_sequences;      /* contexts at once, each with its KV cache and scratch; >= 1 */
    strata_dtype kv_dtype;
    bool gpu_layers_set;      /* false: the planner decides */
    int64_t gpu_layers;       /* layers on non-CPU devices when gpu_layers_set */
    const double *tensor_split; /* proportions per non-CPU device, in list order; NULL: fill in order */
    int n_tensor_split;
    const plan_override_input *overrides;
    int n_overrides;
    /* the experts' weights of layers [0, n_cpu_moe) stay in host RAM,
     * computed by the CPU (--n-cpu-moe N; --cpu-moe is n_layer), when
     * n_cpu_moe_set; else the planner chooses the count. An override that
     * matches an expert tensor wins over this. */
    bool n_cpu_moe_set;
    int64_t n_cpu_moe;
} plan_request;

/* Seconds a hand-off between two devices costs besides its bytes (a sync
 * and a launch), for the prediction. */
#define PLAN_HANDOFF_SECONDS 20e-6

/* Hand-offs of a layer whose experts' weights are on another device than
 * the layer: the FFN input and the chosen expert ids go to the experts, the
 * experts' outputs come back (runtime/forward.c, experts_block). */
#define PLAN_EXPERT_DETOUR_HANDOFFS 3

/* Builds the plan of request into out (which the caller frees with
 * strata_plan_free's internals: planner_result_release). Returns
 * STRATA_OK with out->fits false and out->shortfall filled when no
 * placement fits; an error only for bad input (an invalid override
 * pattern, more split proportions than GPUs, ...). */
strata_status planner_run(const plan_request *request, strata_plan *out, strata_error *err);

/* Frees what planner_run allocated inside a plan (not the plan itself). */
void planner_result_release(strata_plan *plan);

/* bytes as text with a binary unit ("512 B", "3.86 MiB", "23.46 GiB"), for
 * messages; returns buf. */
const char *planner_format_bytes(double bytes, char *buf, size_t size);

/* Bytes of scratch activations one device holds for a forward step of
 * max_batch tokens: every activation of a layer, plus the token ids and
 * the logits rows when with_logits. The context lays its scratch out with
 * the same function (scratch_layout.c), so the plan is exact. */
uint64_t planner_scratch_bytes(const plan_model_shape *shape, int64_t max_batch, size_t alignment,
                               bool with_logits);

/* Bytes of one layer's K and V caches for n_ctx positions (two buffers'
 * worth, each rounded up to alignment). */
uint64_t planner_layer_kv_bytes(const plan_model_shape *shape, int64_t n_ctx, strata_dtype kv_dtype,
                                size_t alignment);

#endif
