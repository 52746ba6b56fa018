/* The CUDA backend: NVIDIA GPUs through the CUDA runtime and cuBLAS.
 *
 * One backend device per CUDA device (`--backend cuda --device N`). Each has
 * one stream for its ops, a second stream for large transfers, pinned host
 * buffers that stage every upload and download, and a device arena for the
 * scratch of its ops that grows while a model warms up and is then reused
 * (no cudaMalloc in the token loop). Every CUDA and cuBLAS call is checked;
 * failures come back as strata statuses with CUDA's message ("out of memory",
 * "no CUDA device", "driver too old"), never as an abort.
 *
 * begin_step/end_step record the ops of a forward pass; an op sequence seen
 * before is captured once as a CUDA graph and then replayed, so launch
 * overhead does not bound decode speed on small models. Setting the
 * environment variable STRATA_CUDA_GRAPHS=0 before opening the device
 * launches every op directly instead.
 *
 * Use a device from one thread at a time.
 *
 * This backend was written and compiled without a GPU: it builds and links
 * in CI, and its tests skip there. Correctness on a GPU is what
 * tests/test_backend_ops.c and tests/test_cuda_e2e_logits.c check on a lent
 * one (scripts/gpu-check.sh runs them, under compute-sanitizer too). */
#ifndef STRATA_CUDA_BACKEND_H
#define STRATA_CUDA_BACKEND_H

#include "../backend.h"

extern const backend_registration cuda_backend_registration;

#endif
