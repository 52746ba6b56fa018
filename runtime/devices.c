/* Devices by name, the default list, budgets and measured rates. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices.h"

bool devices_split_name(const char *name, char *backend, size_t backend_size, int *index, bool *has_index)
{
    size_t len = strlen(name), digits = 0;
    while (digits < len && isdigit((unsigned char)name[len - 1 - digits]))
        digits++;
    size_t stem = len - digits;
    if (stem == 0 || stem >= backend_size || digits > 4)
        return false;
    for (size_t i = 0; i < stem; i++)
        if (!islower((unsigned char)name[i]))
            return false;
    memcpy(backend, name, stem);
    backend[stem] = '\0';
    *has_index = digits > 0;
    *index = digits > 0 ? atoi(name + stem) : 0;
    return true;
}

int devices_find(const open_device *devices, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(devices[i].name, name) == 0)
            return i;
    return -1;
}

void devices_close(open_device *devices, int n)
{
    for (int i = 0; i < n; i++)
        backend_close(&devices[i].device);
}

static strata_status open_one(const backend_registration *registration, int index, const backend_options *options,
                              open_device *out, strata_error *err)
{
    memset(out, 0, sizeof *out);
    if (strcmp(registration->name, "cpu") == 0)
        snprintf(out->name, sizeof out->name, "cpu");
    else
        snprintf(out->name, sizeof out->name, "%s%d", registration->name, index);
    out->registration = registration;
    strata_status status = backend_open(registration->name, index, options, &out->device, err);
    if (status != STRATA_OK)
        return status;
    out->device.ops->get_info(out->device.ctx, &out->info);
    return STRATA_OK;
}

/* The names of every device present, for messages ("cpu, vulkan0"). */
static void list_present(char *buf, size_t size)
{
    int n_backends = 0;
    const backend_registration *const *registry = backend_registry(&n_backends);
    size_t used = 0;
    buf[0] = '\0';
    for (int b = 0; b < n_backends && used < size; b++) {
        int count = registry[b]->device_count(NULL);
        for (int d = 0; d < count && used < size; d++) {
            if (strcmp(registry[b]->name, "cpu") == 0)
                used += (size_t)snprintf(buf + used, size - used, "%scpu", used ? ", " : "");
            else
                used += (size_t)snprintf(buf + used, size - used, "%s%s%d", used ? ", " : "", registry[b]->name, d);
        }
    }
}

static strata_status open_default(const backend_options *options, open_device *out, int *n_out, strata_error *err)
{
    int n_backends = 0, n = 0;
    const backend_registration *const *registry = backend_registry(&n_backends);
    const backend_registration *cpu = NULL;
    /* GPUs first: CUDA, then the other backends in registry order */
    for (int pass = 0; pass < 2; pass++) {
        for (int b = 0; b < n_backends; b++) {
            const backend_registration *registration = registry[b];
            if (strcmp(registration->name, "cpu") == 0) {
                cpu = registration;
                continue;
            }
            if ((pass == 0) != (strcmp(registration->name, "cuda") == 0))
                continue;
            int count = registration->device_count(NULL);
            for (int d = 0; d < count && n < STRATA_MAX_DEVICES - 1; d++) {
                strata_error ignored = {0};
                if (open_one(registration, d, options, &out[n], &ignored) != STRATA_OK)
                    continue; /* a device that cannot be opened is not a default */
                bool keep = !out[n].info.software;
                for (int k = 0; k < n && keep; k++)
                    if (out[n].info.has_uuid && out[k].info.has_uuid &&
                        memcmp(out[n].info.uuid, out[k].info.uuid, sizeof out[n].info.uuid) == 0)
                        keep = false; /* the same card, already found through CUDA */
                if (keep)
                    n++;
                else
                    backend_close(&out[n].device);
            }
        }
    }
    if (!cpu) {
        devices_close(out, n);
        return strata_fail(err, STRATA_UNSUPPORTED, "no CPU backend");
    }
    strata_status status = open_one(cpu, 0, options, &out[n], err);
    if (status != STRATA_OK) {
        devices_close(out, n);
        return status;
    }
    *n_out = n + 1;
    return STRATA_OK;
}

strata_status devices_open(const char *list, const backend_options *options, open_device *out, int *n_out,
                           strata_error *err)
{
    *n_out = 0;
    if (!list || !list[0])
        return open_default(options, out, n_out, err);
    int n = 0;
    strata_status status = STRATA_OK;
    const char *cursor = list;
    char present[256];
    while (*cursor) {
        size_t len = strcspn(cursor, ",");
        char name[STRATA_DEVICE_NAME_MAX], backend[STRATA_DEVICE_NAME_MAX];
        if (len == 0 || len >= sizeof name) {
            status = strata_fail(err, STRATA_INVALID_INPUT, "device list '%s': '%.*s' is not a device name", list,
                                 (int)len, cursor);
            goto fail;
        }
        memcpy(name, cursor, len);
        name[len] = '\0';
        cursor += len + (cursor[len] == ',');
        int index;
        bool has_index;
        const backend_registration *registration = NULL;
        if (devices_split_name(name, backend, sizeof backend, &index, &has_index))
            registration = backend_find(backend);
        if (!registration) {
            list_present(present, sizeof present);
            if (devices_split_name(name, backend, sizeof backend, &index, &has_index) &&
                (strcmp(backend, "cuda") == 0 || strcmp(backend, "vulkan") == 0))
                status = strata_fail(err, STRATA_UNSUPPORTED,
                                     "device %s: backend %s was not built into this strata (configure with "
                                     "-DSTRATA_%s=ON); devices here: %s",
                                     name, backend, strcmp(backend, "cuda") == 0 ? "CUDA" : "VULKAN", present);
            else
                status = strata_fail(err, STRATA_INVALID_INPUT,
                                     "unknown device '%s' (names look like cpu, cuda0, vulkan1; devices here: %s)",
                                     name, present);
            goto fail;
        }
        strata_error count_err = {0};
        int count = registration->device_count(&count_err);
        if (strcmp(backend, "cpu") == 0 && has_index && index != 0) {
            status = strata_fail(err, STRATA_INVALID_INPUT, "unknown device '%s' (the CPU is 'cpu')", name);
            goto fail;
        }
        int first = has_index ? index : 0, last = has_index ? index : count - 1;
        if (count <= 0 || first >= count) {
            list_present(present, sizeof present);
            if (count <= 0)
                status = strata_fail(err, STRATA_UNSUPPORTED, "device %s: backend %s: %s", name, backend,
                                     count_err.message[0] ? count_err.message : "no device found");
            else
                status = strata_fail(err, STRATA_INVALID_INPUT, "device %s does not exist (devices here: %s)", name,
                                     present);
            goto fail;
        }
        for (int d = first; d <= last; d++) {
            char full[STRATA_DEVICE_NAME_MAX + 8];
            if (strcmp(backend, "cpu") == 0)
                snprintf(full, sizeof full, "cpu");
            else
                snprintf(full, sizeof full, "%s%d", backend, d);
            if (devices_find(out, n, full) >= 0) {
                status = strata_fail(err, STRATA_INVALID_INPUT, "device list '%s': %s is listed twice", list, full);
                goto fail;
            }
            if (n == STRATA_MAX_DEVICES) {
                status = strata_fail(err, STRATA_INVALID_INPUT, "device list '%s': more than %d devices", list,
                                     STRATA_MAX_DEVICES);
                goto fail;
            }
            if ((status = open_one(registration, d, options, &out[n], err)) != STRATA_OK)
                goto fail;
            n++;
        }
    }
    if (n == 0) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "device list '%s' names no device", list);
        goto fail;
    }
    *n_out = n;
    return STRATA_OK;
fail:
    devices_close(out, n);
    return status;
}

static uint64_t default_margin(device_kind kind, uint64_t total_bytes)
{
    uint64_t max = kind == DEVICE_KIND_CPU ? DEVICES_CPU_MARGIN_MAX : DEVICES_GPU_MARGIN_MAX;
    uint64_t sixteenth = total_bytes / 16;
    return sixteenth < max ? sixteenth : max;
}

uint64_t devices_budget(device_kind kind, uint64_t total_bytes, uint64_t available_bytes,
                        const strata_device_cap *caps, int n_caps, const char *name)
{
    uint64_t margin = default_margin(kind, total_bytes);
    uint64_t usable = available_bytes > margin ? available_bytes - margin : 0;
    for (int i = 0; i < n_caps; i++)
        if (strcmp(caps[i].device, name) == 0)
            return caps[i].bytes < usable ? caps[i].bytes : usable;
    return usable;
}

void devices_describe(const open_device *device, const strata_device_cap *caps, int n_caps, plan_device_input *out)
{
    const backend_ops *ops = device->device.ops;
    uint64_t held = ops->workspace_peak_bytes ? ops->workspace_peak_bytes(device->device.ctx) : 0;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", device->name);
    out->kind = device->info.kind;
    out->total_bytes = device->info.total_bytes;
    out->budget_bytes = devices_budget(device->info.kind, device->info.total_bytes, device->info.free_bytes + held,
                                       caps, n_caps, device->name);
    out->alignment = device->info.alignment ? device->info.alignment : 64;
    out->max_allocation_bytes = device->info.max_allocation_bytes;
    out->multiprocessors = device->info.multiprocessors;
    out->workspace_bytes = device->registration->workspace_bytes;
    out->weight_dtype_supported = device->registration->weight_dtype_supported;
    out->op_kind_supported = device->registration->op_kind_supported;
}

/* Seconds since an arbitrary start. */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Times a Q8_0 matmul of a 2048 x 2048 weight by 64 columns through the
 * device's own op (best of three), for devices without a GEMM measurement:
 * the rate prompt processing multiplies at. */
static strata_status measure_matmul(open_device *device, double *flops, strata_error *err)
{
    enum { N_IN = 2048, N_OUT = 2048, N_TOK = 64 };
    const backend_ops *ops = device->device.ops;
    void *ctx = device->device.ctx;
    strata_tensor weight, activations, result;
    if (!tensor_init_contiguous(&weight, DTYPE_Q8_0, N_IN, N_OUT, 1, 1) ||
        !tensor_init_contiguous(&activations, DTYPE_F32, N_IN, N_TOK, 1, 1) ||
        !tensor_init_contiguous(&result, DTYPE_F32, N_OUT, N_TOK, 1, 1))
        return strata_fail(err, STRATA_INVALID_INPUT, "matmul measurement shapes");
    backend_op op = {.kind = OP_MATMUL, .dst = &result, .src = {&weight, &activations}};
    if (!ops->supports(ctx, &op))
        return strata_fail(err, STRATA_UNSUPPORTED, "%s cannot multiply Q8_0 weights", device->name);
    size_t weight_bytes = tensor_byte_size(&weight), act_bytes = tensor_byte_size(&activations);
    size_t result_bytes = tensor_byte_size(&result);
    backend_buffer *buffers[3] = {NULL, NULL, NULL};
    void *host = calloc(1, weight_bytes > act_bytes ? weight_bytes : act_bytes);
    strata_status status = STRATA_OK;
    if (!host) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory measuring %s", device->name);
        goto done;
    }
    /* Q8_0 blocks: an f16 scale then 32 int8 quants; small scales and quants keep values finite */
    unsigned char *bytes = host;
    for (size_t block = 0; block < weight_bytes / 34; block++) {
        bytes[block * 34] = 0x00;
        bytes[block * 34 + 1] = 0x1c; /* f16 0.0039 */
        for (int q = 0; q < 32; q++)
            bytes[block * 34 + 2 + q] = (unsigned char)((block * 7 + (size_t)q * 13) % 17);
    }
    if ((status = ops->buffer_alloc(ctx, weight_bytes, &buffers[0], err)) ||
        (status = ops->buffer_alloc(ctx, act_bytes, &buffers[1], err)) ||
        (status = ops->buffer_alloc(ctx, result_bytes, &buffers[2], err)) ||
        (status = ops->upload(ctx, buffers[0], 0, host, weight_bytes, err)))
        goto done;
    memset(host, 0, act_bytes);
    if ((status = ops->upload(ctx, buffers[1], 0, host, act_bytes, err)))
        goto done;
    weight.buffer = buffers[0];
    activations.buffer = buffers[1];
    result.buffer = buffers[2];
    weight.host_data = ops->buffer_host_ptr(ctx, buffers[0]);
    activations.host_data = ops->buffer_host_ptr(ctx, buffers[1]);
    result.host_data = ops->buffer_host_ptr(ctx, buffers[2]);
    double best = 0;
    for (int run = 0; run < 3; run++) {
        double start = now_seconds();
        if ((status = ops->run_op(ctx, &op, err)) || (status = ops->sync(ctx, err)))
            goto done;
        double seconds = now_seconds() - start;
        if (run > 0 && (best == 0 || seconds < best)) /* the first run warms up */
            best = seconds;
    }
    *flops = best > 0 ? 2.0 * N_IN * N_OUT * N_TOK / best : 0;
done:
    for (int i = 0; i < 3; i++)
        if (buffers[i])
            ops->buffer_free(ctx, buffers[i]);
    free(host);
    return status;
}

/* Times the device's own copy op over a large F32 buffer (best of three),
 * for devices without a bandwidth measurement: bytes read plus written per
 * second, the same quantity backend_ops.measure_bandwidth reports. The copy
 * goes in pieces of 32 MiB (some devices bind no more than 128 MiB at once)
 * over 256 MiB, more than any cache. */
static strata_status measure_copy(open_device *device, double *bytes_per_second, strata_error *err)
{
    enum { ROW = 4096, PIECE_ROWS = 2048 }; /* 32 MiB of F32 per piece */
    const backend_ops *ops = device->device.ops;
    void *ctx = device->device.ctx;
    int64_t pieces = 8;
    while (pieces > 1 && (uint64_t)pieces * PIECE_ROWS * ROW * 4 * 2 > device->info.free_bytes / 4)
        pieces /= 2;
    size_t piece_bytes = (size_t)PIECE_ROWS * ROW * 4, total = (size_t)pieces * piece_bytes;
    strata_tensor src, dst;
    tensor_init_contiguous(&src, DTYPE_F32, ROW, PIECE_ROWS, 1, 1);
    tensor_init_contiguous(&dst, DTYPE_F32, ROW, PIECE_ROWS, 1, 1);
    backend_op op = {.kind = OP_COPY, .dst = &dst, .src = {&src}};
    if (!ops->supports(ctx, &op))
        return strata_fail(err, STRATA_UNSUPPORTED, "%s cannot copy F32 tensors", device->name);
    backend_buffer *buffers[2] = {NULL, NULL};
    strata_status status;
    if ((status = ops->buffer_alloc(ctx, total, &buffers[0], err)) ||
        (status = ops->buffer_alloc(ctx, total, &buffers[1], err)))
        goto done;
    char *src_base = ops->buffer_host_ptr(ctx, buffers[0]), *dst_base = ops->buffer_host_ptr(ctx, buffers[1]);
    src.buffer = buffers[0];
    dst.buffer = buffers[1];
    double best = 0;
    for (int run = 0; run < 3; run++) {
        double start = now_seconds();
        for (int64_t piece = 0; piece < pieces; piece++) {
            src.offset = dst.offset = (size_t)piece * piece_bytes;
            src.host_data = src_base ? src_base + src.offset : NULL;
            dst.host_data = dst_base ? dst_base + dst.offset : NULL;
            if ((status = ops->run_op(ctx, &op, err)))
                goto done;
        }
        if ((status = ops->sync(ctx, err)))
            goto done;
        double seconds = now_seconds() - start;
        if (run > 0 && (best == 0 || seconds < best)) /* the first run warms up */
            best = seconds;
    }
    *bytes_per_second = best > 0 ? 2.0 * (double)total / best : 0;
done:
    for (int i = 0; i < 2; i++)
        if (buffers[i])
            ops->buffer_free(ctx, buffers[i]);
    return status;
}

/* Times uploads of 64 MiB from host memory to the device (best of three
 * after a warm-up): the host link a hand-off crosses. */
static strata_status measure_link(open_device *device, double *bytes_per_second, strata_error *err)
{
    const size_t bytes = (size_t)64 << 20;
    const backend_ops *ops = device->device.ops;
    void *ctx = device->device.ctx;
    backend_buffer *buffer = NULL;
    void *host = calloc(1, bytes);
    strata_status status = host ? ops->buffer_alloc(ctx, bytes, &buffer, err)
                                : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory measuring %s", device->name);
    double best = 0;
    for (int run = 0; run < 4 && status == STRATA_OK; run++) {
        double start = now_seconds();
        if ((status = ops->upload(ctx, buffer, 0, host, bytes, err)) || (status = ops->sync(ctx, err)))
            break;
        double seconds = now_seconds() - start;
        if (run > 0 && (best == 0 || seconds < best))
            best = seconds;
    }
    if (status == STRATA_OK)
        *bytes_per_second = best > 0 ? (double)bytes / best : 0;
    if (buffer)
        ops->buffer_free(ctx, buffer);
    free(host);
    return status;
}

strata_status devices_measure(open_device *device, int n_threads, plan_device_input *out, strata_error *err)
{
    const backend_ops *ops = device->device.ops;
    strata_status status;
    if (ops->measure_bandwidth)
        status = ops->measure_bandwidth(device->device.ctx, &out->read_bandwidth, err);
    else if (device->info.kind == DEVICE_KIND_CPU)
        status = strata_measure_host_bandwidth(n_threads, &out->read_bandwidth, err);
    else
        status = measure_copy(device, &out->read_bandwidth, err);
    if (status != STRATA_OK)
        return status;
    if (device->info.kind != DEVICE_KIND_CPU) {
        strata_error link_err = {0};
        if (measure_link(device, &out->link_bandwidth, &link_err) != STRATA_OK)
            out->link_bandwidth = 0; /* unknown: hand-offs cost their latency only */
    }
    if (ops->measure_gemm_peak)
        return ops->measure_gemm_peak(device->device.ctx, &out->matmul_flops, err);
    strata_error matmul_err = {0};
    if (measure_matmul(device, &out->matmul_flops, &matmul_err) != STRATA_OK)
        out->matmul_flops = 0; /* unknown, not an error: plans still work without it */
    return STRATA_OK;
}

static device_kind kind_of(const char *backend)
{
    if (strcmp(backend, "cuda") == 0)
        return DEVICE_KIND_CUDA;
    if (strcmp(backend, "vulkan") == 0)
        return DEVICE_KIND_VULKAN;
    return DEVICE_KIND_CPU;
}

strata_status devices_from_specs(const strata_device_spec *specs, int n_specs, const strata_device_cap *caps,
                                 int n_caps, plan_device_input *out, strata_error *err)
{
    for (int i = 0; i < n_specs; i++) {
        char backend[STRATA_DEVICE_NAME_MAX];
        int index;
        bool has_index;
        if (!devices_split_name(specs[i].name, backend, sizeof backend, &index, &has_index) ||
            (strcmp(backend, "cpu") != 0 && strcmp(backend, "cuda") != 0 && strcmp(backend, "vulkan") != 0) ||
            (strcmp(backend, "cpu") != 0 && !has_index) || (strcmp(backend, "cpu") == 0 && has_index))
            return strata_fail(err, STRATA_INVALID_INPUT,
                               "device spec '%s': the name must be cpu, cudaN or vulkanN", specs[i].name);
        for (int k = 0; k < i; k++)
            if (strcmp(specs[k].name, specs[i].name) == 0)
                return strata_fail(err, STRATA_INVALID_INPUT, "device spec %s is given twice", specs[i].name);
        plan_device_input *device = &out[i];
        memset(device, 0, sizeof *device);
        snprintf(device->name, sizeof device->name, "%s", specs[i].name);
        device->kind = kind_of(backend);
        device->total_bytes = specs[i].memory_bytes;
        device->budget_bytes =
            devices_budget(device->kind, specs[i].memory_bytes, specs[i].memory_bytes, caps, n_caps, specs[i].name);
        device->alignment = 256; /* the largest any backend asks for */
        device->read_bandwidth = specs[i].bandwidth;
        device->matmul_flops = specs[i].matmul_flops;
        device->link_bandwidth = device->kind == DEVICE_KIND_CPU ? 0 : specs[i].link_bandwidth;
        const backend_registration *registration = backend_find(backend);
        device->workspace_bytes = registration ? registration->workspace_bytes : NULL;
        device->weight_dtype_supported = registration ? registration->weight_dtype_supported : NULL;
        device->op_kind_supported = registration ? registration->op_kind_supported : NULL;
        device->backend_missing = registration == NULL;
        /* a card that is not here has no SM count to ask: assume more than any
         * had in 2026 (170), so the workspace bound holds for every one */
        device->multiprocessors = device->kind == DEVICE_KIND_CUDA ? DEVICES_SPEC_MULTIPROCESSORS : 0;
    }
    return STRATA_OK;
}
