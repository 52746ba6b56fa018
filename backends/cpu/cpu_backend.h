/* The CPU backend: every op, multi-threaded, with AVX2/FMA dot products chosen
 * at run time and a scalar path for every format. */
#ifndef STRATA_CPU_BACKEND_H
#define STRATA_CPU_BACKEND_H

#include "../backend.h"

extern const backend_registration cpu_backend_registration;

#endif
