/* Where the bytes of a GGUF file come from: a read-only memory map of the
 * file (registered with the fault guard, and watched for changes through the
 * descriptor kept open), or a private copy read into memory. Also the one
 * place that opens a model path: it never blocks and takes only regular
 * files. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault_guard.h"
#include "gguf_internal.h"

/* Largest single read: Linux transfers at most about 2 GiB per call. */
#define READ_CHUNK_BYTES ((size_t)1 << 30)

/* "a directory", ... for a file that is not a regular file. */
static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO or pipe";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "of another kind";
}

static bool same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* Opens path for reading without ever blocking (a FIFO with no writer, or a
 * device that waits for a carrier, would block a plain open forever), checks
 * that it is a regular file, and then clears O_NONBLOCK so the descriptor
 * behaves as a plain one. */
static strata_status open_regular_file(const char *path, int *out_fd, struct stat *st, strata_error *err)
{
    strata_status status;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return strata_fail(err, STRATA_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, st) != 0) {
        status = strata_fail(err, STRATA_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st->st_mode)) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "%s: not a regular file but %s; a GGUF file must be a regular file",
                             path, file_kind(st->st_mode));
        goto fail;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        status = strata_fail(err, STRATA_IO, "%s: cannot set the file's flags: %s", path, strerror(errno));
        goto fail;
    }
    *out_fd = fd;
    return STRATA_OK;
fail:
    close(fd);
    return status;
}

/* Reads size bytes of fd into a fresh anonymous mapping (page-aligned, like
 * a file mapping, and released the same way), then makes it read-only. */
static strata_status read_copy(int fd, const char *path, size_t size, const struct stat *opened, void **out,
                               strata_error *err)
{
    strata_status status;
    char *copy = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (copy == MAP_FAILED)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes to read the file into: %s", path,
                           size, strerror(errno));
    for (size_t done = 0; done < size;) {
        size_t want = size - done < READ_CHUNK_BYTES ? size - done : READ_CHUNK_BYTES;
        ssize_t got = pread(fd, copy + done, want, (off_t)done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            status = strata_fail(err, STRATA_IO, "%s: reading at offset %zu failed: %s", path, done, strerror(errno));
            goto fail;
        }
        if (got == 0) {
            status = strata_fail(err, STRATA_IO, "%s: the file shrank while being read (%zu bytes, the end came at %zu)",
                                 path, size, done);
            goto fail;
        }
        done += (size_t)got;
    }
    struct stat now;
    if (fstat(fd, &now) != 0) {
        status = strata_fail(err, STRATA_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (now.st_size != opened->st_size || !same_time(now.st_mtim, opened->st_mtim)) {
        status = strata_fail(err, STRATA_IO, "%s: the file was modified while being read; try again", path);
        goto fail;
    }
    if (mprotect(copy, size, PROT_READ) != 0) {
        status = strata_fail(err, STRATA_IO, "%s: cannot protect the copy: %s", path, strerror(errno));
        goto fail;
    }
    *out = copy;
    return STRATA_OK;
fail:
    munmap(copy, size);
    return status;
}

strata_status gguf_source_open(const char *path, bool read_into_memory, gguf_source *out, strata_error *err)
{
    *out = (gguf_source){.fd = -1, .guard_slot = FAULT_GUARD_NO_SLOT};
    int fd = -1;
    struct stat st;
    strata_status status = open_regular_file(path, &fd, &st, err);
    if (status != STRATA_OK)
        return status;
    if ((uint64_t)st.st_size < GGUF_HEADER_BYTES) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "%s: file is %lld bytes, too small for a GGUF header (%d bytes)",
                             path, (long long)st.st_size, GGUF_HEADER_BYTES);
        goto fail;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        status = strata_fail(err, STRATA_UNSUPPORTED, "%s: file is too large to map", path);
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    if (read_into_memory) {
        void *copy = NULL;
        if ((status = read_copy(fd, path, size, &st, &copy, err)) != STRATA_OK)
            goto fail;
        close(fd);
        *out = (gguf_source){.bytes = copy, .size = size, .fd = -1, .guard_slot = FAULT_GUARD_NO_SLOT};
        return STRATA_OK;
    }
    void *mapping = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
        status = strata_fail(err, STRATA_IO, "%s: cannot map %zu bytes: %s", path, size, strerror(errno));
        goto fail;
    }
    /* the descriptor stays open: gguf_check_unchanged asks it for the
     * file's size and time (a path could meanwhile name another file) */
    *out = (gguf_source){.bytes = mapping, .size = size, .fd = fd, .guard_slot = fault_guard_register(mapping, size),
                         .opened_size = st.st_size, .opened_mtime = st.st_mtim};
    return STRATA_OK;
fail:
    close(fd);
    return status;
}

void gguf_source_close(gguf_source *source)
{
    /* forget the range before unmapping it: the address may be reused */
    fault_guard_unregister(source->guard_slot);
    if (source->bytes)
        munmap(source->bytes, source->size);
    if (source->fd >= 0)
        close(source->fd);
    *source = (gguf_source){.fd = -1, .guard_slot = FAULT_GUARD_NO_SLOT};
}

strata_status gguf_check_unchanged(const gguf_file *file, strata_error *err)
{
    const gguf_source *source = &file->source;
    if (source->fd < 0)
        return STRATA_OK; /* a copy in memory, or a caller's buffer */
    static const char consequence[] = "the weights read from it can no longer be trusted (a model file must not "
                                      "change while in use; --no-mmap reads it into memory instead)";
    struct stat now;
    if (fstat(source->fd, &now) != 0)
        return strata_fail(err, STRATA_IO, "%s: cannot check the file for changes: %s", file->path, strerror(errno));
    if (now.st_size < source->opened_size)
        return strata_fail(err, STRATA_IO, "%s: the file was truncated while in use (%lld bytes when opened, %lld now); %s",
                           file->path, (long long)source->opened_size, (long long)now.st_size, consequence);
    if (now.st_size != source->opened_size)
        return strata_fail(err, STRATA_IO, "%s: the file was modified while in use (%lld bytes when opened, %lld now); %s",
                           file->path, (long long)source->opened_size, (long long)now.st_size, consequence);
    if (!same_time(now.st_mtim, source->opened_mtime))
        return strata_fail(err, STRATA_IO, "%s: the file was modified while in use (its modification time changed); %s",
                           file->path, consequence);
    if (fault_guard_was_hit(source->guard_slot))
        return strata_fail(err, STRATA_IO, "%s: reading the file's memory map failed while in use (an I/O error, or "
                           "the file was truncated and grown back); %s", file->path, consequence);
    return STRATA_OK;
}
