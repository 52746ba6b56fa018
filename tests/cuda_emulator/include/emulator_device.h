/* What CUDA C++ gives device code, for the CPU emulation of CUDA
 * (tests/cuda_emulator/): the execution-space keywords, thread and block
 * indices, vector types, __syncthreads, warp shuffles and atomics, and
 * emu_launch, which the build substitutes for the <<<...>>> launch syntax.
 *
 * Every emulated thread of a block is a fiber; a block's fibers run one at
 * a time and switch only at __syncthreads and at warp shuffles (which wait
 * for all 32 lanes), so the kernels' own code runs unchanged, and a block
 * runs to completion before the next starts, which makes `static` a faithful
 * stand-in for __shared__. C++ only; force-included before each kernel file. */
#ifndef STRATA_EMU_DEVICE_H
#define STRATA_EMU_DEVICE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <functional>

#include "cuda_runtime_api.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) int4 {
    int x, y, z, w;
};
struct alignas(16) uint4 {
    unsigned int x, y, z, w;
};

static inline float4 make_float4(float x, float y, float z, float w)
{
    return float4{x, y, z, w};
}

extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

using std::max;
using std::min;

static inline float __uint_as_float(unsigned int bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

namespace emu {
/* The calling fiber waits until every thread of its block, or every lane of
 * its warp, has arrived. */
void block_barrier();
void warp_barrier();
/* Linear index of the calling thread in its block. */
int thread_index();
/* The exchange slots for the calling lane's next shuffle: two sets per warp
 * used in turn, so one barrier per shuffle suffices (a lane can get at most
 * one shuffle ahead of the slowest lane of its warp). */
unsigned long long *shuffle_slots();
/* Runs body on every thread of grid x block now, or records it when stream
 * is being captured into a graph. */
void launch(dim3 grid, dim3 block, cudaStream_t stream, std::function<void()> body);
} // namespace emu

static inline void __syncthreads()
{
    emu::block_barrier();
}

template <typename T> static inline T emu_shuffle_from(T value, int source_lane)
{
    static_assert(sizeof(T) <= sizeof(unsigned long long), "shuffle of a value wider than 8 bytes");
    const int lane = emu::thread_index() % 32;
    unsigned long long *slots = emu::shuffle_slots();
    memcpy(&slots[lane], &value, sizeof value);
    emu::warp_barrier();
    T result;
    memcpy(&result, &slots[source_lane & 31], sizeof result);
    return result;
}

template <typename T> static inline T __shfl_xor_sync(unsigned int mask, T value, int lane_mask)
{
    (void)mask;
    return emu_shuffle_from(value, (emu::thread_index() % 32) ^ lane_mask);
}

template <typename T> static inline T __shfl_sync(unsigned int mask, T value, int source_lane)
{
    (void)mask;
    return emu_shuffle_from(value, source_lane);
}

static inline unsigned int atomicOr(unsigned int *address, unsigned int value)
{
    unsigned int old = *address; /* one fiber runs at a time */
    *address = old | value;
    return old;
}

template <typename Kernel> struct emu_launcher {
    Kernel kernel;
    dim3 grid, block;
    cudaStream_t stream;
    template <typename... Args> void operator()(Args... args) const
    {
        Kernel k = kernel;
        emu::launch(grid, block, stream, [=]() { k(args...); });
    }
};

/* kernel<<<grid, block, shared_bytes, stream>>>(args) is rewritten as
 * emu_launch(kernel, grid, block, shared_bytes, stream)(args). */
template <typename Kernel>
static inline emu_launcher<Kernel> emu_launch(Kernel kernel, dim3 grid, dim3 block, size_t shared_bytes = 0,
                                              cudaStream_t stream = nullptr)
{
    (void)shared_bytes;
    return emu_launcher<Kernel>{kernel, grid, block, stream};
}

#endif
