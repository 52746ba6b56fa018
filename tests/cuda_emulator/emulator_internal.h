/* What the files of the CUDA emulator (tests/cuda_emulator/) share: CUDA's
 * last error, the streams' work queues, the current device. C++ only, test
 * infrastructure only. */
#ifndef STRATA_EMU_INTERNAL_H
#define STRATA_EMU_INTERNAL_H

#include <functional>

#include "cuda_runtime_api.h"

namespace emu {

/* Reports a misuse no CUDA call could return as an error, and aborts. */
[[noreturn]] void die(const char *message);

/* Records code as CUDA's last error (cudaGetLastError) and returns it. */
cudaError_t fail(cudaError_t code);

/* Issues work on stream: queued behind the work issued there before (it
 * runs when something waits for it), recorded when the stream is being
 * captured, run at once on the null stream. Counts as a device call. */
void enqueue(cudaStream_t stream, std::function<void()> work);

/* The device a stream belongs to; the current device for the null stream. */
int stream_device(cudaStream_t stream);

/* The calling host thread's current device (cudaSetDevice). */
int current_device();

/* Counts one call that touched a device (emu_device_calls). */
void count_device_call();

} // namespace emu

#endif
