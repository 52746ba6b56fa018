/* The CPU backend: every op, multi-threaded, with AVX2/FMA dot products chosen
 * at run time and a scalar path for every format.
 *
 * One device. backend_options.n_threads sets the pool (0 = every online
 * core). Ops run synchronously inside run_op, so sync() is a no-op, and one
 * op runs at a time per device (run_op takes a lock). Setting the environment
 * variable STRATA_CPU_SCALAR=1 before opening the device forces the scalar
 * kernels (the op tests use it to cover both paths). */
#ifndef STRATA_CPU_BACKEND_H
#define STRATA_CPU_BACKEND_H

#include "../backend.h"

extern const backend_registration cpu_backend_registration;

#endif
