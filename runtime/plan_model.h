/* Internal: planning a model file (its tensor table and shape) over a
 * device table, for strata_plan_file and strata_model_load. */
#ifndef STRATA_PLAN_MODEL_H
#define STRATA_PLAN_MODEL_H

#include "gguf.h"
#include "planner.h"

/* The context size planned when the user gives none: the training context,
 * at most this, so a 128k-context model does not reserve gigabytes of KV
 * cache for a short prompt. */
#define PLAN_DEFAULT_CTX_CAP 4096
#define PLAN_DEFAULT_BATCH 512

/* The tensors of file as the planner sees them (roles from the GGUF names
 * and the forward pass's use of them). *out is malloc'ed; the names point
 * into the file. */
strata_status plan_tensor_table(const gguf_file *file, const strata_hparams *hparams, plan_tensor_input **out,
                                int64_t *n_out, strata_error *err);

plan_model_shape plan_shape_of(const strata_hparams *hparams);

/* Plans file over devices (in order) with the user's choices in params into
 * out; caps and overrides name devices of the table. */
strata_status plan_model(const gguf_file *file, const strata_hparams *hparams, const plan_device_input *devices,
                         int n_devices, const strata_placement_params *params, strata_plan *out, strata_error *err);

#endif
