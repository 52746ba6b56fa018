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
 * Several devices may be open at once (a model split across cards).
 * copy_peer copies between two of them on the destination's stream, ordered
 * after everything issued on both (cuda_peer.c); peer access is enabled
 * where the cards allow it, and copies are staged through the host by CUDA
 * where they do not.
 *
 * Workspace: besides its buffers a device holds cuBLAS's workspace (32 MiB),
 * the kernels' error flags and the op arena (cuda_workspace.c).
 * workspace_bytes(query) bounds all of it for the ops of a forward pass of
 * the query's shapes, without a device; with set_workspace_limit at that
 * bound the arena never grows past it (without a limit its doubling may
 * overshoot the largest need by up to twice), and an op that needs more
 * fails with STRATA_OUT_OF_MEMORY before touching the device.
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
