/* Internal: an inference context (KV caches and scratch activations on each
 * device of the model's placement) and the forward pass over it. */
#ifndef STRATA_CONTEXT_H
#define STRATA_CONTEXT_H

#include "model.h"
#include "scratch_layout.h"

/* What one device of the placement holds for a context. */
typedef struct context_device {
    bool active;                 /* the plan puts work here */
    backend_buffer *kv_buffer;   /* the K and V caches of the layers placed here */
    size_t kv_bytes;
    backend_buffer *scratch_buffer;
    size_t scratch_bytes;
    scratch_layout scratch;      /* slot tensors, attached to scratch_buffer */
} context_device;

struct strata_context {
    strata_model *model;
    int64_t n_ctx;
    int64_t max_batch;
    strata_dtype kv_dtype;
    int64_t n_past; /* positions already in the cache */

    context_device devices[STRATA_MAX_DEVICES];
    strata_tensor *k_cache; /* [n_layer] of [head_dim, n_head_kv, n_ctx], on the layer's device */
    strata_tensor *v_cache; /* [n_layer] of [head_dim, n_head_kv, n_ctx] */

    /* The forward pass's bookkeeping of activations (handoff.c): which
     * devices hold the current value of each scratch slot (a bit per
     * device), and how many bytes of the slot the current chunk wrote. */
    uint32_t slot_valid_on[SCRATCH_SLOT_COUNT];
    size_t slot_extent[SCRATCH_SLOT_COUNT];
    uint32_t devices_touched;    /* devices that ran ops in the current chunk */
    void *staging;               /* host memory for device -> host -> device hand-offs */
    size_t staging_bytes;
    uint64_t handoffs;           /* activations moved between devices since creation */

    int32_t *host_positions; /* [max_batch] staging for uploads */
    float *host_logits;      /* [host_logits_rows, n_vocab] */
    int64_t host_logits_rows;
    int64_t logits_first_token; /* token index (in the last decode) of host row 0 */
    int64_t logits_row_count;   /* valid host rows after the last decode */
};

/* Runs one chunk of n_tokens (<= max_batch) at positions n_past.. through
 * every layer. When all_logits, the logits of every token are downloaded to
 * host rows [host_row, host_row + n_tokens); otherwise only the last token's,
 * to host_row (none when host_row < 0). Does not advance n_past. */
strata_status forward_chunk(strata_context *ctx, const int32_t *tokens, int64_t n_tokens, bool all_logits,
                            int64_t host_row, strata_error *err);

/* --- activations across devices (handoff.c) --- */

/* Forgets where every slot's value is: called at the start of a chunk. */
void handoff_begin_chunk(strata_context *ctx);
/* Makes the current value of slot (its first slot_extent bytes) present on
 * device d, copying it from a device that holds it: device to device where
 * the backend can (copy_peer), else through host memory. */
strata_status handoff_ensure(strata_context *ctx, scratch_slot slot, int d, strata_error *err);
/* Uploads bytes of host data as the value of slot on device d (token ids,
 * positions), unless d already holds it. */
strata_status handoff_from_host(strata_context *ctx, scratch_slot slot, int d, const void *host, size_t bytes,
                                strata_error *err);
/* Records that device d wrote slot up to byte end: only d holds it now. */
void handoff_written(strata_context *ctx, scratch_slot slot, int d, size_t end);

/* Test hook: activations moved between devices by ctx since its creation. */
uint64_t strata_context_handoff_count(const strata_context *ctx);

#endif
