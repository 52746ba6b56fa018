/* The CUDA runtime API of the CPU emulation of CUDA (tests/cuda_emulator/):
 * devices, memory, streams, events, graphs and peer copies.
 *
 * - devices: one of 8 GiB (or STRATA_EMU_DEVICE_MIB), or as many as
 *   STRATA_EMU_DEVICES=MIB,MIB,... lists, of those sizes (it takes
 *   precedence). Device memory is host memory; every allocation remembers
 *   its device, and each device counts its own, so out-of-memory paths and
 *   per-device accounting can be exercised. The current device is per host
 *   thread, as in CUDA. STRATA_EMU_DRIVER=none|old|nodevice plays a machine
 *   without a driver, with a driver older than the runtime, or without a GPU.
 * - streams run asynchronously, as on a GPU: work issued on a stream is
 *   queued, and runs only when something waits for it (cudaStreamSynchronize,
 *   cudaEventSynchronize, cudaDeviceSynchronize, a stream that waits for an
 *   event recorded behind it), in issue order. So work that is not ordered
 *   by an event or a synchronization really does run in the wrong order:
 *   a missing cudaStreamWaitEvent between two streams, or two devices, shows
 *   as stale bytes in a test. cudaFree, cudaFreeHost and destroying a stream
 *   or event first finish the work of every stream, so the emulator never
 *   touches freed memory. Copies from or to pageable (not cudaHostAlloc'd)
 *   host memory behave as CUDA's do: the source is read at the call, a copy
 *   to pageable memory completes before the call returns.
 * - work issued on a stream that is being captured is recorded instead, into
 *   a graph that cudaGraphLaunch replays: captured parameters are replayed
 *   as captured, as on a GPU.
 * - events belong to the device current at their creation; recording one on
 *   a stream of another device fails, waiting for one across devices works
 *   (that is how devices are ordered with each other).
 * - peer copies (cudaMemcpyPeerAsync) check that each address lies in an
 *   allocation of the device named for it. Peer access can be enabled
 *   between any two devices, unless STRATA_EMU_PEER_ACCESS=0, which plays
 *   GPUs without it (cudaDeviceCanAccessPeer says no; peer copies still
 *   work, as CUDA stages them through the host). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "emulator_internal.h"

namespace {

cudaError_t last_error = cudaSuccess;
uint64_t device_calls = 0, graph_launches = 0;

double now_seconds()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --- devices ------------------------------------------------------------------------------ */

const unsigned long long max_device_mib = 1ull << 24;
const size_t max_devices = 16;

/* A size in MiB, 1 .. 2^24, from text (the whole of it); 0 when it is not one. */
unsigned long long parse_mib(const char *text, const char *end_of_text)
{
    char *end = nullptr;
    unsigned long long value = strtoull(text, &end, 10);
    if (end == text || end != end_of_text || value == 0 || value > max_device_mib)
        return 0;
    return value;
}

/* The sizes of the emulated devices, from STRATA_EMU_DEVICES or
 * STRATA_EMU_DEVICE_MIB (default: one device of 8 GiB). */
std::vector<size_t> device_sizes_from_environment()
{
    std::vector<size_t> sizes;
    if (const char *list = getenv("STRATA_EMU_DEVICES")) {
        for (const char *item = list;;) {
            const char *comma = strchr(item, ',');
            const char *end = comma ? comma : item + strlen(item);
            unsigned long long mib = parse_mib(item, end);
            if (!mib || sizes.size() == max_devices)
                emu::die("STRATA_EMU_DEVICES must be 1 to 16 sizes in MiB (1 .. 16777216), separated by commas");
            sizes.push_back((size_t)mib << 20);
            if (!comma)
                break;
            item = comma + 1;
        }
        return sizes;
    }
    const char *mib = getenv("STRATA_EMU_DEVICE_MIB");
    unsigned long long value = mib ? parse_mib(mib, mib + strlen(mib)) : 8192;
    if (!value)
        emu::die("STRATA_EMU_DEVICE_MIB must be a size in MiB, 1 .. 16777216");
    sizes.push_back((size_t)value << 20);
    return sizes;
}

struct device_state {
    size_t memory;
    size_t used;
};

std::vector<device_state> &devices()
{
    static std::vector<device_state> table = [] {
        std::vector<device_state> made;
        for (size_t size : device_sizes_from_environment())
            made.push_back(device_state{size, 0});
        return made;
    }();
    return table;
}

bool valid_device(int device)
{
    return device >= 0 && (size_t)device < devices().size();
}

thread_local int current = 0;

/* STRATA_EMU_DRIVER plays the machines where the CUDA runtime finds no
 * device: "none" (no NVIDIA driver loaded), "old" (a driver older than the
 * runtime), "nodevice" (a driver, no GPU); unset: working devices. */
enum emulated_driver { DRIVER_OK, DRIVER_NONE, DRIVER_OLD, DRIVER_NO_DEVICE };
emulated_driver driver_state()
{
    const char *driver = getenv("STRATA_EMU_DRIVER");
    if (!driver)
        return DRIVER_OK;
    if (strcmp(driver, "none") == 0)
        return DRIVER_NONE;
    if (strcmp(driver, "old") == 0)
        return DRIVER_OLD;
    if (strcmp(driver, "nodevice") == 0)
        return DRIVER_NO_DEVICE;
    emu::die("STRATA_EMU_DRIVER must be none, old or nodevice");
}

bool peer_access_possible()
{
    const char *access = getenv("STRATA_EMU_PEER_ACCESS");
    if (access && strcmp(access, "0") != 0 && strcmp(access, "1") != 0)
        emu::die("STRATA_EMU_PEER_ACCESS must be 0 or 1");
    return !(access && strcmp(access, "0") == 0);
}

std::set<std::pair<int, int>> peers_enabled; /* (device, peer): device may access peer's memory */

/* --- memory ------------------------------------------------------------------------------------ */

struct allocation {
    size_t bytes;
    int device; /* -1: pinned host memory */
};
std::map<uintptr_t, allocation> device_allocations; /* by base address */
std::map<uintptr_t, allocation> pinned_allocations; /* cudaHostAlloc'd host memory */

/* The allocation of map holding [address, address + bytes), or nullptr. */
const allocation *find_range(const std::map<uintptr_t, allocation> &map, const void *address, size_t bytes)
{
    const uintptr_t begin = (uintptr_t)address;
    auto it = map.upper_bound(begin);
    if (it == map.begin())
        return nullptr;
    --it;
    const size_t into = begin - it->first;
    if (into >= it->second.bytes || bytes > it->second.bytes - into)
        return nullptr;
    return &it->second;
}

/* Whether [address, address + bytes) is memory a copy may read or write
 * later, when its stream gets there: device memory or pinned host memory. */
bool is_device_or_pinned(const void *address, size_t bytes)
{
    return find_range(device_allocations, address, bytes) || find_range(pinned_allocations, address, bytes);
}

} // namespace

/* --- streams, events and graphs ----------------------------------------------------------- */

/* One piece of work on a stream, or a wait: before going on, run the
 * stream wait_stream up to its wait_position-th piece. */
struct emu_node {
    std::function<void()> work;
    uint64_t wait_stream = 0;
    uint64_t wait_position = 0;
};

struct emu_graph {
    std::shared_ptr<std::vector<std::function<void()>>> nodes =
        std::make_shared<std::vector<std::function<void()>>>();
};

struct emu_stream {
    uint64_t id;
    int device;
    emu_graph *capture = nullptr;
    std::deque<emu_node> queue; /* issued, not yet run */
    uint64_t issued = 0, completed = 0;
};

/* Where the event was last recorded: after the position-th piece of work of
 * stream (0: not recorded, or on the null stream, so complete). */
struct emu_event {
    int device;
    double seconds = 0.0;
    uint64_t stream = 0;
    uint64_t position = 0;
};

namespace {

uint64_t next_stream_id = 1;
std::map<uint64_t, emu_stream *> streams; /* live ones, by id */

/* Runs stream id's work until position pieces have run. A wait runs the
 * other stream first; waits only point back to work issued before them, so
 * this never loops. A destroyed stream has finished all its work. */
void run_until(uint64_t id, uint64_t position)
{
    auto it = streams.find(id);
    if (it == streams.end())
        return;
    emu_stream *stream = it->second;
    while (stream->completed < position && !stream->queue.empty()) {
        emu_node node = std::move(stream->queue.front());
        stream->queue.pop_front();
        stream->completed++;
        if (node.work)
            node.work();
        else
            run_until(node.wait_stream, node.wait_position);
    }
}

void run_stream(emu_stream *stream)
{
    run_until(stream->id, stream->issued);
}

/* Every stream of device, or of every device when device < 0. */
void run_streams(int device)
{
    std::vector<emu_stream *> chosen;
    for (auto &entry : streams)
        if (device < 0 || entry.second->device == device)
            chosen.push_back(entry.second);
    for (emu_stream *stream : chosen)
        run_stream(stream);
}

bool event_complete(const emu_event *event)
{
    auto it = streams.find(event->stream);
    return event->stream == 0 || it == streams.end() || it->second->completed >= event->position;
}

} // namespace

namespace emu {

[[noreturn]] void die(const char *message)
{
    fprintf(stderr, "cuda emulator: %s\n", message);
    abort();
}

cudaError_t fail(cudaError_t code)
{
    last_error = code;
    return code;
}

void count_device_call()
{
    device_calls++;
}

void enqueue(cudaStream_t stream, std::function<void()> work)
{
    count_device_call();
    if (!stream) {
        work();
    } else if (stream->capture) {
        stream->capture->nodes->push_back(std::move(work));
    } else {
        stream->queue.push_back(emu_node{std::move(work), 0, 0});
        stream->issued++;
    }
}

int stream_device(cudaStream_t stream)
{
    return stream ? stream->device : current;
}

int current_device()
{
    return current;
}

} // namespace emu

using emu::fail;

extern "C" {

const char *cudaGetErrorString(cudaError_t error)
{
    switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorPeerAccessUnsupported: return "peer access is not supported between these two devices";
    case cudaErrorPeerAccessAlreadyEnabled: return "peer access is already enabled";
    case cudaErrorPeerAccessNotEnabled: return "peer access has not been enabled";
    default: return "emulated CUDA error";
    }
}

const char *cudaGetErrorName(cudaError_t error)
{
    switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorPeerAccessUnsupported: return "cudaErrorPeerAccessUnsupported";
    case cudaErrorPeerAccessAlreadyEnabled: return "cudaErrorPeerAccessAlreadyEnabled";
    case cudaErrorPeerAccessNotEnabled: return "cudaErrorPeerAccessNotEnabled";
    default: return "cudaErrorUnknown";
    }
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t error = last_error;
    last_error = cudaSuccess;
    return error;
}

/* --- devices ------------------------------------------------------------------------------ */

cudaError_t cudaGetDeviceCount(int *count)
{
    *count = 0;
    switch (driver_state()) {
    case DRIVER_NONE:
    case DRIVER_OLD: return fail(cudaErrorInsufficientDriver);
    case DRIVER_NO_DEVICE: return fail(cudaErrorNoDevice);
    case DRIVER_OK: break;
    }
    *count = (int)devices().size();
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    if (!valid_device(device))
        return fail(cudaErrorInvalidDevice);
    current = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
    *device = current;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    if (!valid_device(device))
        return fail(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "CUDA emulator device %d on the CPU (tests only)", device);
    /* a fixed UUID per device, distinct across devices */
    static const char uuid_base[16] = {'s', 't', 'r', 'a', 't', 'a', '-', 'e', 'm', 'u', 'l', 'a', 't', 'o', 'r', 0};
    memcpy(prop->uuid.bytes, uuid_base, sizeof uuid_base);
    prop->uuid.bytes[15] = (char)(0x80 | device);
    prop->totalGlobalMem = devices()[(size_t)device].memory;
    prop->multiProcessorCount = 4;
    prop->major = 9;
    prop->minor = 0;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *version)
{
    const emulated_driver driver = driver_state();
    *version = driver == DRIVER_NONE ? 0 : driver == DRIVER_OLD ? 11080 : 13000;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *version)
{
    *version = 13000;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    emu::count_device_call();
    run_streams(current);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    const device_state &device = devices()[(size_t)current];
    *free_bytes = device.memory - device.used;
    *total_bytes = device.memory;
    return cudaSuccess;
}

cudaError_t cudaDeviceCanAccessPeer(int *can_access, int device, int peer_device)
{
    *can_access = 0;
    if (!valid_device(device) || !valid_device(peer_device))
        return fail(cudaErrorInvalidDevice);
    *can_access = device != peer_device && peer_access_possible();
    return cudaSuccess;
}

cudaError_t cudaDeviceEnablePeerAccess(int peer_device, unsigned int flags)
{
    if (flags != 0)
        return fail(cudaErrorInvalidValue);
    if (!valid_device(peer_device) || peer_device == current)
        return fail(cudaErrorInvalidDevice);
    if (!peer_access_possible())
        return fail(cudaErrorPeerAccessUnsupported);
    if (!peers_enabled.insert({current, peer_device}).second)
        return fail(cudaErrorPeerAccessAlreadyEnabled);
    return cudaSuccess;
}

/* --- memory ------------------------------------------------------------------------------------ */

cudaError_t cudaMalloc(void **ptr, size_t bytes)
{
    emu::count_device_call();
    *ptr = nullptr;
    device_state &device = devices()[(size_t)current];
    size_t rounded = (bytes + 255) / 256 * 256;
    if (rounded < bytes || rounded > device.memory - device.used)
        return fail(cudaErrorMemoryAllocation);
    void *memory = aligned_alloc(256, rounded ? rounded : 256);
    if (!memory)
        return fail(cudaErrorMemoryAllocation);
    /* fresh device memory holds garbage: make it loud, so reads of unwritten memory show */
    memset(memory, 0x7f, rounded);
    device_allocations[(uintptr_t)memory] = allocation{rounded, current};
    device.used += rounded;
    *ptr = memory;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr)
{
    if (!ptr)
        return cudaSuccess;
    emu::count_device_call();
    auto it = device_allocations.find((uintptr_t)ptr);
    if (it == device_allocations.end())
        return fail(cudaErrorInvalidValue);
    run_streams(-1);
    devices()[(size_t)it->second.device].used -= it->second.bytes;
    device_allocations.erase(it);
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned int flags)
{
    (void)flags;
    *ptr = malloc(bytes ? bytes : 1);
    if (!*ptr)
        return fail(cudaErrorMemoryAllocation);
    pinned_allocations[(uintptr_t)*ptr] = allocation{bytes ? bytes : 1, -1};
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *ptr)
{
    if (!ptr)
        return cudaSuccess;
    run_streams(-1);
    pinned_allocations.erase((uintptr_t)ptr);
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *ptr, int value, size_t bytes)
{
    emu::count_device_call();
    memset(ptr, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream)
{
    emu::enqueue(stream, [=]() { memset(ptr, value, bytes); });
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t stream)
{
    (void)kind;
    if (bytes == 0)
        return cudaSuccess;
    if (!is_device_or_pinned(src, bytes)) {
        /* pageable source: CUDA has copied it by the time the call returns */
        auto copy = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + bytes);
        emu::enqueue(stream, [=]() { memcpy(dst, copy->data(), bytes); });
        return cudaSuccess;
    }
    emu::enqueue(stream, [=]() { memmove(dst, src, bytes); });
    if (!is_device_or_pinned(dst, bytes) && stream && !stream->capture)
        run_stream(stream); /* pageable destination: the copy is done when the call returns */
    return cudaSuccess;
}

cudaError_t cudaMemcpyPeerAsync(void *dst, int dst_device, const void *src, int src_device, size_t bytes,
                                cudaStream_t stream)
{
    if (!valid_device(dst_device) || !valid_device(src_device))
        return fail(cudaErrorInvalidDevice);
    if (bytes == 0)
        return cudaSuccess;
    const allocation *to = find_range(device_allocations, dst, bytes);
    const allocation *from = find_range(device_allocations, src, bytes);
    if (!to || !from || to->device != dst_device || from->device != src_device)
        return fail(cudaErrorInvalidValue);
    emu::enqueue(stream, [=]() { memmove(dst, src, bytes); });
    return cudaSuccess;
}

/* --- streams ----------------------------------------------------------------------------------- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags)
{
    (void)flags;
    *stream = new emu_stream;
    (*stream)->id = next_stream_id++;
    (*stream)->device = current;
    streams[(*stream)->id] = *stream;
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    if (!stream)
        return fail(cudaErrorInvalidResourceHandle);
    run_stream(stream);
    streams.erase(stream->id);
    delete stream->capture;
    delete stream;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    if (stream && stream->capture)
        return fail(cudaErrorStreamCaptureUnsupported);
    emu::count_device_call();
    if (stream)
        run_stream(stream);
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    (void)flags;
    if (stream && stream->capture)
        return fail(cudaErrorStreamCaptureUnsupported); /* cross-stream capture is not emulated */
    emu::count_device_call();
    if (!stream) {
        run_until(event->stream, event->position);
    } else if (event->stream != 0) {
        stream->queue.push_back(emu_node{nullptr, event->stream, event->position});
        stream->issued++;
    }
    return cudaSuccess;
}

/* --- events ------------------------------------------------------------------------------------ */

cudaError_t cudaEventCreate(cudaEvent_t *event)
{
    *event = new emu_event;
    (*event)->device = current;
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    (void)flags;
    return cudaEventCreate(event);
}

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    run_streams(-1); /* a pending record would write to it */
    delete event;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    if (event->device != emu::stream_device(stream))
        return fail(cudaErrorInvalidResourceHandle);
    if (stream && stream->capture)
        return fail(cudaErrorStreamCaptureUnsupported); /* cross-stream capture is not emulated */
    emu::enqueue(stream, [event]() { event->seconds = now_seconds(); });
    event->stream = stream ? stream->id : 0;
    event->position = stream ? stream->issued : 0;
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    emu::count_device_call();
    run_until(event->stream, event->position);
    return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    if (start->device != end->device)
        return fail(cudaErrorInvalidResourceHandle);
    if (!event_complete(start) || !event_complete(end))
        return fail(cudaErrorNotReady);
    *ms = (float)((end->seconds - start->seconds) * 1000.0);
    return cudaSuccess;
}

/* --- graphs ------------------------------------------------------------------------------------ */

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode)
{
    (void)mode;
    if (!stream || stream->capture)
        return fail(cudaErrorStreamCaptureUnsupported);
    stream->capture = new emu_graph;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph)
{
    if (!stream || !stream->capture)
        return fail(cudaErrorInvalidValue);
    *graph = stream->capture;
    stream->capture = nullptr;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags)
{
    (void)flags;
    *exec = new emu_graph;
    *(*exec)->nodes = *graph->nodes;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream)
{
    if (emu::stream_device(stream) != current)
        return fail(cudaErrorInvalidResourceHandle);
    graph_launches++;
    /* the launch holds the nodes, so destroying the graph before it ran is safe */
    std::shared_ptr<std::vector<std::function<void()>>> nodes = exec->nodes;
    emu::enqueue(stream, [nodes]() {
        for (const auto &node : *nodes)
            node();
    });
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    delete exec;
    return cudaSuccess;
}

/* --- statistics for the tests ------------------------------------------------------------------ */

uint64_t emu_graph_launches(void)
{
    return graph_launches;
}

uint64_t emu_device_calls(void)
{
    return device_calls;
}

int emu_peer_access_enabled(int device, int peer)
{
    return peers_enabled.count({device, peer}) ? 1 : 0;
}

} // extern "C"
