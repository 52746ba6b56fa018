/* The CPU device: identity, buffers, and the op table that supports() and
 * run_op() both read. Ops run synchronously inside run_op (on the caller and
 * the thread pool), which satisfies the in-order contract; sync is a no-op. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_backend.h"
#include "cpu_internal.h"

typedef struct cpu_op_entry {
    cpu_op_check_fn check;
    cpu_op_run_fn run;
} cpu_op_entry;

/* Op support, written once: supports() runs check, run_op runs check then run. */
static const cpu_op_entry op_table[OP_COUNT_] = {
    [OP_GET_ROWS] = {cpu_check_get_rows, cpu_run_get_rows},
    [OP_RMS_NORM] = {cpu_check_rms_norm, cpu_run_rms_norm},
    [OP_MATMUL] = {cpu_check_matmul, cpu_run_matmul},
    [OP_ADD] = {cpu_check_binary, cpu_run_add},
    [OP_MUL] = {cpu_check_binary, cpu_run_mul},
    [OP_SCALE] = {cpu_check_unary, cpu_run_scale},
    [OP_ROPE] = {cpu_check_rope, cpu_run_rope},
    [OP_KV_STORE] = {cpu_check_kv_store, cpu_run_kv_store},
    [OP_ATTENTION] = {cpu_check_attention, cpu_run_attention},
    [OP_SWIGLU] = {cpu_check_gated, cpu_run_swiglu},
    [OP_GEGLU] = {cpu_check_gated, cpu_run_geglu},
    [OP_SOFTMAX] = {cpu_check_unary, cpu_run_softmax},
    [OP_ARGMAX] = {cpu_check_argmax, cpu_run_argmax},
    [OP_COPY] = {cpu_check_copy, cpu_run_copy},
    [OP_TOPK] = {cpu_check_topk, cpu_run_topk},
    [OP_MOE_WEIGHTS] = {cpu_check_topk, cpu_run_moe_weights},
    [OP_MATMUL_ID] = {cpu_check_matmul_id, cpu_run_matmul_id},
    [OP_MOE_SUM] = {cpu_check_topk, cpu_run_moe_sum},
};

void *cpu_tensor_data(const strata_tensor *tensor)
{
    if (tensor->buffer)
        return (char *)tensor->buffer->data + tensor->offset;
    return tensor->host_data;
}

strata_status cpu_scratch_reserve(cpu_context *ctx, cpu_scratch *scratch, size_t bytes, strata_error *err)
{
    if (scratch->bytes >= bytes)
        return STRATA_OK;
    size_t rounded = (bytes + CPU_ALIGNMENT - 1) / CPU_ALIGNMENT * CPU_ALIGNMENT;
    if (rounded < bytes)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "cpu: %zu bytes of scratch are too many", bytes);
    uint64_t held = (uint64_t)ctx->activations.bytes + ctx->per_thread.bytes + ctx->experts.bytes;
    uint64_t total = held - scratch->bytes + rounded;
    if (ctx->workspace_limit && total > ctx->workspace_limit)
        return strata_fail(err, STRATA_OUT_OF_MEMORY,
                           "cpu: the op workspace needs %.1f MiB but its limit is %.1f MiB (%.1f MiB held); nothing "
                           "was allocated",
                           (double)total / 1048576.0, (double)ctx->workspace_limit / 1048576.0,
                           (double)held / 1048576.0);
    void *data = NULL;
    if (posix_memalign(&data, CPU_ALIGNMENT, rounded) != 0)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes of scratch", bytes);
    free(scratch->data);
    scratch->data = data;
    scratch->bytes = rounded;
    if (total > ctx->workspace_peak)
        ctx->workspace_peak = total;
    return STRATA_OK;
}

strata_status cpu_per_thread_reserve(cpu_context *ctx, size_t bytes, strata_error *err)
{
    size_t slice = (bytes + CPU_ALIGNMENT - 1) / CPU_ALIGNMENT * CPU_ALIGNMENT;
    if (slice <= ctx->per_thread_bytes)
        return STRATA_OK;
    if (slice < bytes || slice > SIZE_MAX / (size_t)ctx->n_threads)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "cpu: per-thread scratch of %zu bytes is too large", bytes);
    strata_status status = cpu_scratch_reserve(ctx, &ctx->per_thread, slice * (size_t)ctx->n_threads, err);
    if (status == STRATA_OK)
        ctx->per_thread_bytes = slice;
    return status;
}

void *cpu_per_thread_slice(cpu_context *ctx, int thread_index)
{
    return (char *)ctx->per_thread.data + (size_t)thread_index * ctx->per_thread_bytes;
}

/* --- device identity ------------------------------------------------------ */

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* "model name" of /proc/cpuinfo, or "CPU" when it cannot be read. */
static void cpu_model_name(char *out, size_t out_size)
{
    snprintf(out, out_size, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *colon = strchr(line, ':');
        if (!colon)
            continue;
        colon++;
        while (*colon == ' ' || *colon == '\t')
            colon++;
        snprintf(out, out_size, "%s", colon);
        out[strcspn(out, "\n")] = '\0';
        break;
    }
    fclose(f);
}

/* MemAvailable of /proc/meminfo in bytes, or 0 when it cannot be read. */
static uint64_t available_memory(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    uint64_t bytes = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kib;
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
            bytes = (uint64_t)kib * 1024u;
            break;
        }
    }
    fclose(f);
    return bytes;
}

static void cpu_get_info(void *opaque, device_info *out)
{
    cpu_context *ctx = opaque;
    memset(out, 0, sizeof *out);
    char model[96];
    cpu_model_name(model, sizeof model);
    snprintf(out->name, sizeof out->name, "%s (%d thread%s)", model, ctx->n_threads, ctx->n_threads == 1 ? "" : "s");
    out->kind = DEVICE_KIND_CPU;
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
    out->total_bytes = pages > 0 && page_size > 0 ? (uint64_t)pages * (uint64_t)page_size : 0;
    out->free_bytes = available_memory();
    if (out->free_bytes == 0) {
        long free_pages = sysconf(_SC_AVPHYS_PAGES);
        out->free_bytes = free_pages > 0 && page_size > 0 ? (uint64_t)free_pages * (uint64_t)page_size : 0;
    }
    out->alignment = CPU_ALIGNMENT;
    out->max_allocation_bytes = out->total_bytes;
    out->host_visible = true;
    out->multiprocessors = ctx->n_threads; /* what the workspace bound scales with */
}

/* --- buffers ---------------------------------------------------------------- */

static strata_status cpu_buffer_alloc(void *opaque, size_t bytes, backend_buffer **out, strata_error *err)
{
    (void)opaque;
    *out = NULL;
    backend_buffer *buffer = calloc(1, sizeof *buffer);
    if (!buffer)
        goto fail;
    size_t rounded = (bytes + CPU_ALIGNMENT - 1) / CPU_ALIGNMENT * CPU_ALIGNMENT;
    if (rounded < bytes)
        goto fail;
    if (rounded == 0)
        rounded = CPU_ALIGNMENT;
    if (posix_memalign(&buffer->data, CPU_ALIGNMENT, rounded) != 0) {
        buffer->data = NULL;
        goto fail;
    }
    buffer->bytes = bytes;
    buffer->owned = true;
    *out = buffer;
    return STRATA_OK;
fail:
    free(buffer);
    return strata_fail(err, STRATA_OUT_OF_MEMORY, "cpu: cannot allocate a buffer of %zu bytes", bytes);
}

static strata_status cpu_buffer_wrap_host(void *opaque, void *host_ptr, size_t bytes, backend_buffer **out,
                                          strata_error *err)
{
    (void)opaque;
    *out = NULL;
    if (!host_ptr && bytes)
        return strata_fail(err, STRATA_INVALID_INPUT, "cpu: cannot wrap a NULL host pointer");
    backend_buffer *buffer = calloc(1, sizeof *buffer);
    if (!buffer)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "cpu: out of memory wrapping host memory");
    buffer->data = host_ptr;
    buffer->bytes = bytes;
    buffer->owned = false;
    *out = buffer;
    return STRATA_OK;
}

static void cpu_buffer_free(void *opaque, backend_buffer *buffer)
{
    (void)opaque;
    if (!buffer)
        return;
    if (buffer->owned)
        free(buffer->data);
    free(buffer);
}

static void *cpu_buffer_host_ptr(void *opaque, backend_buffer *buffer)
{
    (void)opaque;
    return buffer ? buffer->data : NULL;
}

static strata_status check_range(const backend_buffer *buffer, size_t offset, size_t bytes, const char *what,
                                 strata_error *err)
{
    if (!buffer || offset > buffer->bytes || bytes > buffer->bytes - offset)
        return strata_fail(err, STRATA_INVALID_INPUT, "cpu: %s of %zu bytes at offset %zu is outside the buffer (%zu bytes)",
                           what, bytes, offset, buffer ? buffer->bytes : 0);
    return STRATA_OK;
}

static strata_status cpu_upload(void *opaque, backend_buffer *dst, size_t offset, const void *src, size_t bytes,
                                strata_error *err)
{
    (void)opaque;
    strata_status status = check_range(dst, offset, bytes, "upload", err);
    if (status == STRATA_OK && bytes)
        memcpy((char *)dst->data + offset, src, bytes);
    return status;
}

static strata_status cpu_download(void *opaque, backend_buffer *src, size_t offset, void *dst, size_t bytes,
                                  strata_error *err)
{
    (void)opaque;
    strata_status status = check_range(src, offset, bytes, "download", err);
    if (status == STRATA_OK && bytes)
        memcpy(dst, (const char *)src->data + offset, bytes);
    return status;
}

static strata_status cpu_sync(void *opaque, strata_error *err)
{
    (void)opaque;
    (void)err;
    return STRATA_OK;
}

/* --- ops -------------------------------------------------------------------- */

static bool cpu_supports(void *opaque, const backend_op *op)
{
    (void)opaque;
    if (!op || (int)op->kind < 0 || op->kind >= OP_COUNT_ || !op_table[op->kind].check)
        return false;
    return op_table[op->kind].check(op, NULL, 0);
}

/* Every tensor of an op must have host memory behind it on the CPU. */
static bool has_data(const backend_op *op)
{
    if (!cpu_tensor_data(op->dst))
        return false;
    for (int i = 0; i < BACKEND_OP_MAX_SRC; i++)
        if (op->src[i] && !cpu_tensor_data(op->src[i]))
            return false;
    return true;
}

static strata_status cpu_run_op(void *opaque, const backend_op *op, strata_error *err)
{
    cpu_context *ctx = opaque;
    if (!op || (int)op->kind < 0 || op->kind >= OP_COUNT_ || !op_table[op->kind].check)
        return strata_fail(err, STRATA_UNSUPPORTED, "cpu: unknown op");
    char why[512];
    why[0] = '\0';
    if (!op_table[op->kind].check(op, why, sizeof why))
        return strata_fail(err, STRATA_INVALID_INPUT, "cpu %s: %s", op_kind_name(op->kind), why);
    if (!has_data(op))
        return strata_fail(err, STRATA_INVALID_INPUT, "cpu %s: a tensor has no buffer and no host_data",
                           op_kind_name(op->kind));
    pthread_mutex_lock(&ctx->op_mutex);
    strata_status status = op_table[op->kind].run(ctx, op, err);
    pthread_mutex_unlock(&ctx->op_mutex);
    return status;
}

/* --- lifetime ------------------------------------------------------------- */

static void cpu_destroy(void *opaque)
{
    cpu_context *ctx = opaque;
    if (!ctx)
        return;
    cpu_threadpool_destroy(ctx->pool);
    pthread_mutex_destroy(&ctx->op_mutex);
    free(ctx->activations.data);
    free(ctx->per_thread.data);
    free(ctx->experts.data);
    free(ctx);
}

static const backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .get_info = cpu_get_info,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_wrap_host = cpu_buffer_wrap_host,
    .buffer_free = cpu_buffer_free,
    .buffer_host_ptr = cpu_buffer_host_ptr,
    .upload = cpu_upload,
    .download = cpu_download,
    .sync = cpu_sync,
    .supports = cpu_supports,
    .run_op = cpu_run_op,
    .begin_step = NULL,
    .end_step = NULL,
    .set_workspace_limit = cpu_set_workspace_limit,
    .workspace_peak_bytes = cpu_workspace_peak_bytes,
};

static int cpu_device_count(strata_error *err)
{
    (void)err;
    return 1;
}

static strata_status cpu_open(int device_index, const backend_options *options, backend_device *out,
                              strata_error *err)
{
    memset(out, 0, sizeof *out);
    if (device_index != 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "cpu: device %d does not exist (1 device)", device_index);
    int n_threads = options ? options->n_threads : 0;
    if (n_threads < 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "cpu: %d threads requested", n_threads);
    if (n_threads == 0)
        n_threads = online_cores();
    cpu_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "cpu: out of memory opening the device");
    ctx->n_threads = n_threads;
    ctx->isa = cpu_detect_isa();
    pthread_mutex_init(&ctx->op_mutex, NULL);
    strata_status status = cpu_threadpool_create(n_threads, &ctx->pool, err);
    if (status != STRATA_OK)
        goto fail;
    out->ops = &cpu_ops;
    out->ctx = ctx;
    out->index = 0;
    return STRATA_OK;
fail:
    cpu_destroy(ctx);
    return status;
}

const backend_registration cpu_backend_registration = {
    .name = "cpu",
    .device_count = cpu_device_count,
    .open = cpu_open,
    .workspace_bytes = cpu_workspace_bytes,
};
