/* Several CUDA devices at once: identity (distinct UUIDs), memory accounted
 * per device, out of memory on the smallest as a clean status, and copy_peer
 * between every pair in both directions: the bytes, the ranges, and the
 * order backend.h promises (after every op and transfer issued before it on
 * both devices, recorded step ops included; before what the destination
 * issues after it, in steps replayed as graphs too).
 *
 * Needs two devices or more: the emulated variants run with
 * STRATA_EMU_DEVICES (cmake/cuda.cmake), whose streams run asynchronously,
 * so a missing wait between the devices shows as stale bytes here. Skipped
 * (exit 77, saying why) without the CUDA backend or with fewer devices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "test_check.h"

#ifdef STRATA_CUDA_EMULATED
#include <cuda_runtime_api.h> /* the emulator's statistics */
#endif

#define MAX_DEVICES 3
#define N 4096 /* floats in the op buffers */

static backend_device devs[MAX_DEVICES];
static device_info infos[MAX_DEVICES];
static int n_devs;

static backend_buffer *alloc_on(int d, size_t bytes)
{
    backend_buffer *buffer = NULL;
    strata_error err = {0};
    CHECK(devs[d].ops->buffer_alloc(devs[d].ctx, bytes, &buffer, &err) == STRATA_OK, "cuda%d: alloc %zu: %s", d,
          bytes, err.message);
    return buffer;
}

static bool upload_to(int d, backend_buffer *buffer, size_t offset, const void *bytes, size_t size)
{
    strata_error err = {0};
    bool ok = devs[d].ops->upload(devs[d].ctx, buffer, offset, bytes, size, &err) == STRATA_OK;
    CHECK(ok, "cuda%d: upload: %s", d, err.message);
    return ok;
}

/* Downloads and syncs. */
static bool download_from(int d, backend_buffer *buffer, size_t offset, void *bytes, size_t size)
{
    strata_error err = {0};
    bool ok = devs[d].ops->download(devs[d].ctx, buffer, offset, bytes, size, &err) == STRATA_OK &&
              devs[d].ops->sync(devs[d].ctx, &err) == STRATA_OK;
    CHECK(ok, "cuda%d: download: %s", d, err.message);
    return ok;
}

static bool copy(int to, backend_buffer *dst, size_t dst_offset, int from, backend_buffer *src, size_t src_offset,
                 size_t bytes)
{
    strata_error err = {0};
    strata_status status = devs[to].ops->copy_peer(devs[to].ctx, dst, dst_offset, devs[from].ctx, src, src_offset,
                                                   bytes, &err);
    CHECK(status == STRATA_OK, "copy_peer cuda%d -> cuda%d: %s", from, to, err.message);
    return status == STRATA_OK;
}

/* x *= 2 in place on device d, over the N floats of buffer. */
static bool double_on(int d, backend_buffer *buffer)
{
    strata_tensor t;
    tensor_init_contiguous(&t, DTYPE_F32, N, 1, 1, 1);
    t.buffer = buffer;
    backend_op scale = {.kind = OP_SCALE, .dst = &t, .src = {&t}};
    scale.params.scale.value = 2.0f;
    strata_error err = {0};
    bool ok = devs[d].ops->run_op(devs[d].ctx, &scale, &err) == STRATA_OK;
    CHECK(ok, "cuda%d: scale: %s", d, err.message);
    return ok;
}

static void fill(float *x, int n, float base)
{
    for (int i = 0; i < n; i++)
        x[i] = base + (float)i;
}

/* How many of n floats of got are not factor * want. */
static int count_wrong(const float *got, const float *want, int n, float factor)
{
    int wrong = 0;
    for (int i = 0; i < n; i++)
        wrong += got[i] != factor * want[i];
    return wrong;
}

/* --- identity and memory ------------------------------------------------------------------------------ */

static void check_identity(void)
{
    for (int a = 0; a < n_devs; a++) {
        CHECK(infos[a].kind == DEVICE_KIND_CUDA && !infos[a].software && infos[a].has_uuid,
              "cuda%d: kind, software or UUID wrong", a);
        for (int b = 0; b < a; b++)
            CHECK(memcmp(infos[a].uuid, infos[b].uuid, sizeof infos[a].uuid) != 0, "cuda%d and cuda%d share a UUID",
                  b, a);
    }
}

static uint64_t free_bytes(int d)
{
    device_info info;
    devs[d].ops->get_info(devs[d].ctx, &info);
    return info.free_bytes;
}

/* Free bytes of each device drop by its own allocations only, and come back
 * when they are freed. On real GPUs other processes may move them a little. */
static void check_accounting(void)
{
#ifdef STRATA_CUDA_EMULATED
    const uint64_t slack = 0;
#else
    const uint64_t slack = (uint64_t)16 << 20;
#endif
    const size_t bytes = (size_t)24 << 20;
    for (int d = 0; d < n_devs; d++) {
        uint64_t before[MAX_DEVICES];
        for (int i = 0; i < n_devs; i++)
            before[i] = free_bytes(i);
        backend_buffer *buffer = alloc_on(d, bytes);
        if (!buffer)
            continue;
        for (int i = 0; i < n_devs; i++) {
            uint64_t now = free_bytes(i);
            if (i == d)
                CHECK(now + bytes <= before[i] && before[i] - now <= bytes + slack + ((uint64_t)2 << 20),
                      "cuda%d: free bytes went from %llu to %llu for a buffer of %zu", i,
                      (unsigned long long)before[i], (unsigned long long)now, bytes);
            else
                CHECK(now + slack >= before[i] && now <= before[i] + slack,
                      "cuda%d: free bytes moved from %llu to %llu for a buffer on cuda%d", i,
                      (unsigned long long)before[i], (unsigned long long)now, d);
        }
        devs[d].ops->buffer_free(devs[d].ctx, buffer);
        CHECK(free_bytes(d) + slack >= before[d], "cuda%d: freeing did not give the memory back", d);
    }
}

/* More than the smallest device holds fails there with a status and a
 * message, touches no other device, and leaves the small one usable. */
static void check_out_of_memory(void)
{
    int small = 0;
    for (int d = 1; d < n_devs; d++)
        if (infos[d].total_bytes < infos[small].total_bytes)
            small = d;
    uint64_t before[MAX_DEVICES];
    for (int i = 0; i < n_devs; i++)
        before[i] = free_bytes(i);
    backend_buffer *buffer = NULL;
    strata_error err = {0};
    size_t too_much = (size_t)infos[small].total_bytes + ((size_t)1 << 20);
    CHECK(devs[small].ops->buffer_alloc(devs[small].ctx, too_much, &buffer, &err) == STRATA_OUT_OF_MEMORY &&
              !buffer && err.message[0],
          "cuda%d: allocating %zu bytes: %s", small, too_much, err.message);
    printf("out of memory on cuda%d, as expected: %s\n", small, err.message);
#ifdef STRATA_CUDA_EMULATED
    for (int i = 0; i < n_devs; i++)
        CHECK(free_bytes(i) == before[i], "cuda%d: free bytes moved after a failed allocation on cuda%d", i, small);
#else
    (void)before;
#endif
    float x[N], y[N];
    fill(x, N, 7.0f);
    backend_buffer *fine = alloc_on(small, sizeof x);
    if (fine && upload_to(small, fine, 0, x, sizeof x) && download_from(small, fine, 0, y, sizeof y))
        CHECK(memcmp(x, y, sizeof x) == 0, "cuda%d: not usable after an out-of-memory", small);
    if (fine)
        devs[small].ops->buffer_free(devs[small].ctx, fine);
}

/* --- copies ------------------------------------------------------------------------------------------------- */

/* The bytes of a range land at the destination's offset, and nothing else
 * of the destination changes; a range past either end is refused. */
static void check_ranges(int from, int to)
{
    enum { BYTES = 10000 };
    unsigned char *pattern = malloc(BYTES), *before = malloc(BYTES), *back = malloc(BYTES);
    backend_buffer *src = alloc_on(from, BYTES), *dst = alloc_on(to, BYTES);
    if (!pattern || !before || !back || !src || !dst)
        goto done;
    for (int i = 0; i < BYTES; i++) {
        pattern[i] = (unsigned char)(i * 131 + from * 7 + 1);
        before[i] = (unsigned char)(i * 17 + to);
    }
    if (!upload_to(from, src, 0, pattern, BYTES) || !upload_to(to, dst, 0, before, BYTES))
        goto done;
    const size_t src_offset = 1000, dst_offset = 4096, bytes = 3333;
    if (copy(to, dst, dst_offset, from, src, src_offset, bytes) && download_from(to, dst, 0, back, BYTES)) {
        memcpy(before + dst_offset, pattern + src_offset, bytes);
        CHECK(memcmp(back, before, BYTES) == 0, "cuda%d -> cuda%d: a range copy is wrong", from, to);
    }
    strata_error err = {0};
    CHECK(devs[to].ops->copy_peer(devs[to].ctx, dst, BYTES - 10, devs[from].ctx, src, 0, 11, &err) ==
                  STRATA_INVALID_INPUT &&
              err.message[0],
          "a copy past the destination's end was not refused");
    CHECK(devs[to].ops->copy_peer(devs[to].ctx, dst, 0, devs[from].ctx, src, BYTES, 1, &err) == STRATA_INVALID_INPUT,
          "a copy past the source's end was not refused");
    if (download_from(to, dst, 0, back, BYTES))
        CHECK(memcmp(back, before, BYTES) == 0, "a refused copy changed the destination");
done:
    if (src)
        devs[from].ops->buffer_free(devs[from].ctx, src);
    if (dst)
        devs[to].ops->buffer_free(devs[to].ctx, dst);
    free(pattern);
    free(before);
    free(back);
}

/* The copy sees what was issued on the source before it, nothing synced in
 * between: a small upload (op stream), a large one (copy stream), an op, and
 * an op recorded in a step that has not ended. */
static void check_source_order(int from, int to)
{
    const size_t large = (size_t)3 << 20; /* over the copy-stream threshold */
    float x[N], y[N];
    float *big = malloc(large), *big_back = malloc(large);
    backend_buffer *src = alloc_on(from, large), *dst = alloc_on(to, large);
    strata_error err = {0};
    if (!big || !big_back || !src || !dst)
        goto done;

    fill(x, N, 1000.0f * (float)from);
    if (upload_to(from, src, 0, x, sizeof x) && copy(to, dst, 0, from, src, 0, sizeof x) &&
        download_from(to, dst, 0, y, sizeof y))
        CHECK(count_wrong(y, x, N, 1.0f) == 0, "cuda%d -> cuda%d: the copy missed a small upload", from, to);

    for (size_t i = 0; i < large / sizeof(float); i++)
        big[i] = (float)i * 0.5f + (float)to;
    if (upload_to(from, src, 0, big, large) && copy(to, dst, 0, from, src, 0, large) &&
        download_from(to, dst, 0, big_back, large))
        CHECK(memcmp(big, big_back, large) == 0, "cuda%d -> cuda%d: the copy missed a large upload", from, to);

    fill(x, N, 3.0f);
    if (upload_to(from, src, 0, x, sizeof x) && double_on(from, src) && copy(to, dst, 0, from, src, 0, sizeof x) &&
        download_from(to, dst, 0, y, sizeof y))
        CHECK(count_wrong(y, x, N, 2.0f) == 0, "cuda%d -> cuda%d: the copy did not wait for an op on the source",
              from, to);

    fill(x, N, 5.0f);
    if (upload_to(from, src, 0, x, sizeof x)) {
        bool ok = devs[from].ops->begin_step(devs[from].ctx, &err) == STRATA_OK;
        CHECK(ok, "cuda%d: begin_step: %s", from, err.message);
        ok = ok && double_on(from, src) && copy(to, dst, 0, from, src, 0, sizeof x);
        CHECK(devs[from].ops->end_step(devs[from].ctx, &err) == STRATA_OK, "cuda%d: end_step: %s", from, err.message);
        if (ok && download_from(to, dst, 0, y, sizeof y))
            CHECK(count_wrong(y, x, N, 2.0f) == 0,
                  "cuda%d -> cuda%d: the copy did not see an op recorded in the source's step", from, to);
    }
done:
    if (src)
        devs[from].ops->buffer_free(devs[from].ctx, src);
    if (dst)
        devs[to].ops->buffer_free(devs[to].ctx, dst);
    free(big);
    free(big_back);
}

/* On the destination, the copy lands after the ops issued before it and
 * before those issued after it; the same inside steps, which from the third
 * one on replay captured graphs around the copy. */
static void check_destination_order(int from, int to)
{
    float x[N], y[N], old[N];
    backend_buffer *src = alloc_on(from, sizeof x), *dst = alloc_on(to, sizeof x);
    strata_error err = {0};
    if (!src || !dst)
        goto done;
    fill(x, N, 11.0f);
    fill(old, N, -50.0f);
    /* an op on the old destination bytes, the copy, then an op on the copy */
    if (upload_to(from, src, 0, x, sizeof x) && upload_to(to, dst, 0, old, sizeof old) && double_on(to, dst) &&
        copy(to, dst, 0, from, src, 0, sizeof x) && double_on(to, dst) && download_from(to, dst, 0, y, sizeof y))
        CHECK(count_wrong(y, x, N, 2.0f) == 0, "cuda%d -> cuda%d: the copy is out of order on the destination", from,
              to);
    for (int step = 0; step < 4; step++) {
        fill(x, N, 100.0f * (float)step);
        if (!upload_to(from, src, 0, x, sizeof x) || !upload_to(to, dst, 0, old, sizeof old))
            break;
        bool ok = devs[to].ops->begin_step(devs[to].ctx, &err) == STRATA_OK && double_on(to, dst) &&
                  copy(to, dst, 0, from, src, 0, sizeof x) && double_on(to, dst) && double_on(to, dst);
        ok = devs[to].ops->end_step(devs[to].ctx, &err) == STRATA_OK && ok;
        CHECK(ok, "cuda%d: step %d: %s", to, step, err.message);
        if (ok && download_from(to, dst, 0, y, sizeof y))
            CHECK(count_wrong(y, x, N, 4.0f) == 0, "cuda%d -> cuda%d: step %d: the copy is out of order in a step",
                  from, to, step);
    }
done:
    if (src)
        devs[from].ops->buffer_free(devs[from].ctx, src);
    if (dst)
        devs[to].ops->buffer_free(devs[to].ctx, dst);
}

/* A copy within one device (the same context) works too. */
static void check_same_device(void)
{
    float x[N], y[N];
    backend_buffer *a = alloc_on(0, sizeof x), *b = alloc_on(0, sizeof x);
    fill(x, N, 42.0f);
    if (a && b && upload_to(0, a, 0, x, sizeof x) && double_on(0, a) && copy(0, b, 0, 0, a, 0, sizeof x) &&
        download_from(0, b, 0, y, sizeof y))
        CHECK(count_wrong(y, x, N, 2.0f) == 0, "a copy within cuda0 is wrong");
    if (a)
        devs[0].ops->buffer_free(devs[0].ctx, a);
    if (b)
        devs[0].ops->buffer_free(devs[0].ctx, b);
}

/* The emulator says whether peer access was enabled: it is wherever the
 * devices allow it (STRATA_EMU_PEER_ACCESS=0 plays devices that do not, and
 * the copies above must have been right all the same). */
static void check_peer_access(void)
{
#ifdef STRATA_CUDA_EMULATED
    const char *access = getenv("STRATA_EMU_PEER_ACCESS");
    const int expected = !(access && strcmp(access, "0") == 0);
    for (int to = 0; to < n_devs; to++)
        for (int from = 0; from < n_devs; from++)
            if (from != to)
                CHECK(emu_peer_access_enabled(to, from) == expected, "peer access cuda%d -> cuda%d: %d, expected %d",
                      to, from, emu_peer_access_enabled(to, from), expected);
    printf("peer access %s between the emulated devices\n", expected ? "enabled" : "not possible (copies staged)");
#endif
}

int main(void)
{
    const backend_registration *cuda = backend_find("cuda");
    if (!cuda) {
        printf("skipped: this strata was built without the CUDA backend (configure with -DSTRATA_CUDA=ON)\n");
        return 77;
    }
    strata_error err = {0};
    int count = cuda->device_count(&err);
    if (count < 2) {
        printf("skipped: %s\n", count <= 0 ? (err.message[0] ? err.message : "no CUDA device")
                                           : "one CUDA device; peer copies need two (the emulated variants set "
                                             "STRATA_EMU_DEVICES)");
        return 77;
    }
    n_devs = count < MAX_DEVICES ? count : MAX_DEVICES;
    for (int d = 0; d < n_devs; d++) {
        if (backend_open("cuda", d, NULL, &devs[d], &err) != STRATA_OK) {
            printf("FAIL: cannot open cuda device %d: %s\n", d, err.message);
            return 1;
        }
        devs[d].ops->get_info(devs[d].ctx, &infos[d]);
        printf("cuda%d: %s, %.2f GiB (%.2f free)\n", d, infos[d].name, infos[d].total_bytes / 1073741824.0,
               infos[d].free_bytes / 1073741824.0);
    }
    CHECK(devs[0].ops->copy_peer != NULL, "the copy_peer slot is empty");
    if (!devs[0].ops->copy_peer)
        return 1;
    check_identity();
    check_accounting();
    check_out_of_memory();
    for (int from = 0; from < n_devs; from++)
        for (int to = 0; to < n_devs; to++)
            if (from != to) {
                check_ranges(from, to);
                check_source_order(from, to);
                check_destination_order(from, to);
            }
    check_same_device();
    check_peer_access();
    for (int d = 0; d < n_devs; d++)
        backend_close(&devs[d]);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("all passed\n");
    return 0;
}
