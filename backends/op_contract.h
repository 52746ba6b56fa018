/* The backend-independent contract of every op in backend.h, checked in one
 * place: tensors present, activation dtypes, shapes and parameters. Each
 * backend's supports()/run_op() call op_contract_check first and then add only
 * their own limits (which weight dtypes they read, index widths, kernel
 * maxima), so the contract is written once. */
#ifndef STRATA_OP_CONTRACT_H
#define STRATA_OP_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>

#include "backend.h"

/* True when op satisfies its contract; else false with a one-line reason in
 * why (which may be NULL). The weight of MATMUL and GET_ROWS (src0) must be a
 * 2-D contiguous tensor of a dtype with traits that is not an integer type;
 * whether a device reads that dtype is for the backend to check. The experts
 * of MATMUL_ID (src0) are the same but 3-D, [n_in, n_out, n_expert]. Ids
 * (TOPK's dst, the src1 of MOE_WEIGHTS, the src2 of MATMUL_ID) are [k,
 * n_tok] I32 with 1 <= k <= n_expert; their values are checked by the
 * backend when it reads them. */
bool op_contract_check(const backend_op *op, char *why, size_t why_size);

/* For the backends' own checks: returns ok; when it is false, writes the
 * printf-style reason to why. */
bool op_need(bool ok, char *why, size_t why_size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* The tensor's name, or role ("src0") when it has none. */
const char *op_tensor_label(const strata_tensor *tensor, const char *role);

#endif
