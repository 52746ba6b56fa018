/* A CPU emulation of the parts of CUDA strata uses, so the CUDA backend's
 * host code and its kernels (the same .cu sources of kernels/, with the
 * launch syntax rewritten) run in tests on machines without a GPU. This
 * file runs kernels and cuBLAS; emulator_runtime.cpp is the runtime API
 * (devices, memory, streams, events, graphs, peer copies).
 *
 * - kernels: each block runs as one fiber per thread (a small stack-switching
 *   scheduler); fibers switch only at __syncthreads and warp shuffles.
 *   Shuffles wait for all 32 lanes of the warp: a shuffle in a warp where a
 *   lane has already exited, or a deadlock, is reported and aborts the test,
 *   as it would be undefined on a GPU;
 * - STRATA_EMU_ORDER=reverse runs the threads of a block, and the blocks of
 *   a grid, last first. A missing __syncthreads lets a thread read what
 *   another has not written yet only when the reader runs first; forward
 *   order catches one direction of that race, reverse order the other, so
 *   the tests run the kernels both ways;
 * - a kernel launched on a stream of another device than the current one
 *   fails with cudaErrorInvalidResourceHandle, as on a GPU;
 * - cuBLAS GEMMs are plain loops with cuBLAS's column-major conventions; a
 *   handle works on the device that was current when it was created.
 *
 * Test infrastructure only: never linked into libstrata. Launch
 * configurations are checked as CUDA checks them (at most 1024 threads per
 * block, grid limits). Data races between threads are not detected: fibers
 * run one at a time, in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <functional>
#include <memory>
#include <new>
#include <vector>

#include "cublas_v2.h"
#include "emulator_device.h"
#include "emulator_internal.h"

extern "C" float fp16_to_f32(uint16_t h);

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

using emu::die;

namespace {

uint64_t kernels_run = 0;

/* --- fibers ------------------------------------------------------------------------------ */

enum fiber_state { FIBER_READY, FIBER_WAIT_WARP, FIBER_WAIT_BLOCK, FIBER_DONE };

struct fiber {
    void *sp;
    fiber_state state;
    uint3 index;
    unsigned shuffles; /* shuffles this thread has done: picks the slot set */
};

const size_t fiber_stack_bytes = 256 * 1024;
std::vector<fiber> fibers;
std::vector<std::unique_ptr<char[]>> fiber_stacks; /* kept for the next block, freed at exit */
void *scheduler_sp;
int current_fiber;
const std::function<void()> *block_body;
unsigned long long slots[32][2][32]; /* [warp][set][lane] */

} // namespace

/* Saves the callee-saved registers and the stack pointer in *save, loads
 * the ones saved at to, and returns into that context. */
extern "C" void emu_switch(void **save, void *to);
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl emu_switch\n"
        ".type emu_switch, @function\n"
        "emu_switch:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size emu_switch, .-emu_switch\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl emu_switch\n"
        ".type emu_switch, %function\n"
        "emu_switch:\n"
        "  sub sp, sp, #176\n"
        "  stp x19, x20, [sp, #0]\n"
        "  stp x21, x22, [sp, #16]\n"
        "  stp x23, x24, [sp, #32]\n"
        "  stp x25, x26, [sp, #48]\n"
        "  stp x27, x28, [sp, #64]\n"
        "  stp x29, x30, [sp, #80]\n"
        "  stp d8, d9, [sp, #96]\n"
        "  stp d10, d11, [sp, #112]\n"
        "  stp d12, d13, [sp, #128]\n"
        "  stp d14, d15, [sp, #144]\n"
        "  mov x9, sp\n"
        "  str x9, [x0]\n"
        "  mov sp, x1\n"
        "  ldp x19, x20, [sp, #0]\n"
        "  ldp x21, x22, [sp, #16]\n"
        "  ldp x23, x24, [sp, #32]\n"
        "  ldp x25, x26, [sp, #48]\n"
        "  ldp x27, x28, [sp, #64]\n"
        "  ldp x29, x30, [sp, #80]\n"
        "  ldp d8, d9, [sp, #96]\n"
        "  ldp d10, d11, [sp, #112]\n"
        "  ldp d12, d13, [sp, #128]\n"
        "  ldp d14, d15, [sp, #144]\n"
        "  add sp, sp, #176\n"
        "  ret\n"
        ".size emu_switch, .-emu_switch\n");
#else
#error "the CUDA emulator has a context switch for x86-64 and AArch64 only"
#endif

namespace {

void fiber_finished();

/* Where every fiber starts: run the kernel body as this thread, then hand
 * control back for good. */
void emu_fiber_main()
{
    (*block_body)();
    fibers[current_fiber].state = FIBER_DONE;
    fiber_finished();
    emu_switch(&fibers[current_fiber].sp, scheduler_sp);
    die("a finished fiber was resumed");
}

/* A fresh stack whose first switch "returns" into emu_fiber_main. */
void *fiber_start_sp(char *stack)
{
    uintptr_t top = ((uintptr_t)(stack + fiber_stack_bytes)) & ~(uintptr_t)15;
#if defined(__x86_64__)
    void **sp = (void **)top;
    *--sp = nullptr;                      /* fake return address of emu_fiber_main */
    *--sp = (void *)&emu_fiber_main;      /* where emu_switch's ret goes */
    for (int i = 0; i < 6; i++)           /* rbp rbx r12 r13 r14 r15 */
        *--sp = nullptr;
    return sp;
#else
    void **sp = (void **)(top - 176);
    memset(sp, 0, 176);
    sp[11] = (void *)&emu_fiber_main; /* x30, the link register, in slot 80 + 8 */
    return sp;
#endif
}

/* Barrier bookkeeping of the running block: arrivals are counted as fibers
 * yield, and a barrier opens as soon as its last thread arrives. */
int block_threads, block_done, block_waiting;
int warp_waiting[32], warp_done[32];

int lanes_in_warp(int warp)
{
    return std::min(32, block_threads - 32 * warp);
}

void yield_as(fiber_state state)
{
    const int warp = current_fiber / 32;
    fibers[current_fiber].state = state;
    if (state == FIBER_WAIT_WARP) {
        if (warp_done[warp] > 0)
            die("a warp shuffle with every lane in the mask, but some lanes of the warp have exited");
        if (++warp_waiting[warp] == lanes_in_warp(warp)) { /* the last lane: open the warp barrier */
            warp_waiting[warp] = 0;
            for (int i = 32 * warp; i < 32 * warp + lanes_in_warp(warp); i++)
                fibers[i].state = FIBER_READY;
            return; /* the last lane goes on without a switch */
        }
    } else if (state == FIBER_WAIT_BLOCK) {
        if (++block_waiting == block_threads - block_done) {
            block_waiting = 0;
            for (int i = 0; i < block_threads; i++)
                if (fibers[i].state == FIBER_WAIT_BLOCK)
                    fibers[i].state = FIBER_READY;
            return;
        }
    }
    emu_switch(&fibers[current_fiber].sp, scheduler_sp);
}

/* A fiber finished: exited threads no longer hold a block barrier closed. */
void fiber_finished()
{
    block_done++;
    warp_done[current_fiber / 32]++;
    if (warp_waiting[current_fiber / 32] > 0)
        die("a lane exited while the rest of its warp waits in a shuffle");
    if (block_waiting > 0 && block_waiting == block_threads - block_done) {
        block_waiting = 0;
        for (int i = 0; i < block_threads; i++)
            if (fibers[i].state == FIBER_WAIT_BLOCK)
                fibers[i].state = FIBER_READY;
    }
}

/* STRATA_EMU_ORDER=reverse: threads and blocks last first (read once). */
bool reverse_order()
{
    static const int reverse = [] {
        const char *order = getenv("STRATA_EMU_ORDER");
        if (order && strcmp(order, "reverse") != 0 && strcmp(order, "forward") != 0)
            die("STRATA_EMU_ORDER must be forward or reverse");
        return order && strcmp(order, "reverse") == 0 ? 1 : 0;
    }();
    return reverse != 0;
}

void run_block(const dim3 &block)
{
    const int n = (int)(block.x * block.y * block.z);
    fibers.resize((size_t)n);
    while (fiber_stacks.size() < (size_t)n) {
        char *stack = new (std::nothrow) char[fiber_stack_bytes];
        if (!stack)
            die("out of memory for fiber stacks");
        fiber_stacks.emplace_back(stack);
    }
    for (int i = 0; i < n; i++) {
        fibers[i].state = FIBER_READY;
        fibers[i].shuffles = 0;
        fibers[i].index = uint3{(unsigned)i % block.x, ((unsigned)i / block.x) % block.y,
                                (unsigned)i / (block.x * block.y)};
        fibers[i].sp = fiber_start_sp(fiber_stacks[i].get());
    }
    block_threads = n;
    block_done = block_waiting = 0;
    memset(warp_waiting, 0, sizeof warp_waiting);
    memset(warp_done, 0, sizeof warp_done);
    while (block_done < n) {
        bool ran = false;
        for (int k = 0; k < n; k++) {
            const int i = reverse_order() ? n - 1 - k : k;
            if (fibers[i].state != FIBER_READY)
                continue;
            current_fiber = i;
            threadIdx = fibers[i].index;
            emu_switch(&scheduler_sp, fibers[i].sp);
            ran = true;
        }
        if (!ran && block_done < n)
            die("deadlock: threads wait at __syncthreads and at a warp shuffle at the same time");
    }
}

bool launch_config_ok(const dim3 &grid, const dim3 &block)
{
    uint64_t threads = (uint64_t)block.x * block.y * block.z;
    return threads >= 1 && threads <= 1024 && block.z <= 64 && grid.x >= 1 && grid.x <= 0x7fffffffu &&
           grid.y >= 1 && grid.y <= 65535 && grid.z >= 1 && grid.z <= 65535;
}

void run_grid(dim3 grid, dim3 block, const std::function<void()> &body)
{
    kernels_run++;
    gridDim = grid;
    blockDim = block;
    block_body = &body;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                if (reverse_order())
                    blockIdx = uint3{grid.x - 1 - x, grid.y - 1 - y, grid.z - 1 - z};
                else
                    blockIdx = uint3{x, y, z};
                run_block(block);
            }
}

} // namespace

struct emu_cublas {
    cudaStream_t stream = nullptr;
    int device = 0;
};

namespace emu {

void block_barrier()
{
    yield_as(FIBER_WAIT_BLOCK);
}

void warp_barrier()
{
    yield_as(FIBER_WAIT_WARP);
}

int thread_index()
{
    return current_fiber;
}

unsigned long long *shuffle_slots()
{
    fiber &self = fibers[current_fiber];
    return slots[current_fiber / 32][self.shuffles++ & 1];
}

void launch(dim3 grid, dim3 block, cudaStream_t stream, std::function<void()> body)
{
    if (!launch_config_ok(grid, block)) {
        fail(cudaErrorInvalidConfiguration);
        return;
    }
    if (stream_device(stream) != current_device()) { /* a stream of another device */
        fail(cudaErrorInvalidResourceHandle);
        return;
    }
    enqueue(stream, [grid, block, body]() { run_grid(grid, block, body); });
}

} // namespace emu

extern "C" {

/* kernels/quant_unpack.h calls this where a GPU would fault on a misaligned load. */
void unpack_misaligned(const void *address, int alignment)
{
    char message[128];
    snprintf(message, sizeof message, "a %d-byte load from %p, which is not %d-byte aligned (a GPU would fault)",
             alignment, address, alignment);
    die(message);
}

uint64_t emu_kernels_run(void)
{
    return kernels_run;
}

/* --- cuBLAS -------------------------------------------------------------------------------- */

cublasStatus_t cublasCreate(cublasHandle_t *handle)
{
    *handle = new emu_cublas;
    (*handle)->device = emu::current_device();
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle)
{
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream)
{
    if (emu::stream_device(stream) != handle->device)
        return CUBLAS_STATUS_INVALID_VALUE;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void *workspace, size_t bytes)
{
    (void)handle;
    (void)workspace;
    (void)bytes;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
{
    (void)handle;
    (void)mode;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t status)
{
    return status == CUBLAS_STATUS_SUCCESS ? "success" : "emulated cuBLAS error";
}

} // extern "C"

namespace {

float element(const void *matrix, cudaDataType type, size_t index)
{
    if (type == CUDA_R_16F)
        return fp16_to_f32(((const uint16_t *)matrix)[index]);
    return ((const float *)matrix)[index];
}

/* C = alpha op(A) op(B) + beta C, column-major, as cuBLAS defines it. */
cublasStatus_t gemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                    float alpha, const void *a, cudaDataType a_type, int lda, const void *b, cudaDataType b_type,
                    int ldb, float beta, float *c, int ldc)
{
    if (m < 0 || n < 0 || k < 0 || lda < std::max(1, transa == CUBLAS_OP_N ? m : k) ||
        ldb < std::max(1, transb == CUBLAS_OP_N ? k : n) || ldc < std::max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (handle->device != emu::current_device()) /* a handle works on the device it was created on */
        return CUBLAS_STATUS_EXECUTION_FAILED;
    emu::enqueue(handle->stream, [=]() {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                float sum = 0.0f;
                for (int p = 0; p < k; p++) {
                    size_t ai = transa == CUBLAS_OP_N ? (size_t)i + (size_t)p * lda : (size_t)p + (size_t)i * lda;
                    size_t bi = transb == CUBLAS_OP_N ? (size_t)p + (size_t)j * ldb : (size_t)j + (size_t)p * ldb;
                    sum += element(a, a_type, ai) * element(b, b_type, bi);
                }
                float *out = &c[(size_t)i + (size_t)j * ldc];
                *out = alpha * sum + (beta != 0.0f ? beta * *out : 0.0f);
            }
    });
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

extern "C" {

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float *alpha, const float *a, int lda, const float *b, int ldb,
                           const float *beta, float *c, int ldc)
{
    return gemm(handle, transa, transb, m, n, k, *alpha, a, CUDA_R_32F, lda, b, CUDA_R_32F, ldb, *beta, c, ldc);
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void *alpha, const void *a, cudaDataType a_type, int lda, const void *b,
                            cudaDataType b_type, int ldb, const void *beta, void *c, cudaDataType c_type, int ldc,
                            cublasComputeType_t compute_type, cublasGemmAlgo_t algo)
{
    (void)algo;
    if (c_type != CUDA_R_32F || compute_type != CUBLAS_COMPUTE_32F || a_type != b_type)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm(handle, transa, transb, m, n, k, *(const float *)alpha, a, a_type, lda, b, b_type, ldb,
                *(const float *)beta, (float *)c, ldc);
}

} // extern "C"
