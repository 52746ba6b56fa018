/* The fault guard and the watch on mapped GGUF files: a registered mapping
 * whose file is truncated reads zeros instead of killing the process and is
 * marked; a fault anywhere else, or a SIGBUS sent by kill(), still ends the
 * process; gguf_check_unchanged reports truncation, rewriting and a repaired
 * fault, naming the file, and stays quiet when the file is only renamed or
 * deleted; gguf_open_read does not depend on the file at all; and gguf_open
 * refuses FIFOs, devices and directories without blocking. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault_guard.h"
#include "gguf.h"
#include "strata.h"

#include "test_check.h"
#include "test_temp.h"

/* floats in the test tensor: 1 MiB, many pages */
#define TENSOR_FLOATS (256 * 1024)
/* a mapping of a file none of these tests should take longer than this */
#define TEST_TIME_LIMIT_S 60

static char temp_dir[512];
static size_t page_bytes;

static void temp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", temp_dir, name);
}

/* Sets the file's modification time to 2001, so that any write now moves it
 * even where the clock ticks coarsely. */
static void date_in_the_past(const char *path)
{
    struct timespec times[2] = {{.tv_sec = 978307200}, {.tv_sec = 978307200}};
    CHECK(utimensat(AT_FDCWD, path, times, 0) == 0, "utimensat %s", path);
}

static bool write_pattern_file(const char *path, size_t bytes, int value)
{
    FILE *file = fopen(path, "wb");
    if (!file)
        return false;
    for (size_t i = 0; i < bytes; i++)
        fputc(value, file);
    return fclose(file) == 0;
}

/* A GGUF file with one f32 tensor "t" holding 1, 2, 3, ... */
static bool write_test_gguf(const char *path)
{
    strata_error err = {0};
    gguf_writer *w = NULL;
    float *values = malloc(TENSOR_FLOATS * sizeof *values);
    int64_t ne[1] = {TENSOR_FLOATS};
    bool ok = values && gguf_writer_create(path, 3, &w, &err) == STRATA_OK &&
              gguf_writer_set_string(w, "general.architecture", "test", &err) == STRATA_OK &&
              gguf_writer_add_tensor(w, "t", 1, ne, DTYPE_F32, &err) == STRATA_OK &&
              gguf_writer_begin_data(w, &err) == STRATA_OK;
    for (int i = 0; ok && i < TENSOR_FLOATS; i++)
        values[i] = (float)(i + 1);
    ok = ok && gguf_writer_write_tensor(w, values, TENSOR_FLOATS * sizeof *values, &err) == STRATA_OK &&
         gguf_writer_finish(w, &err) == STRATA_OK;
    CHECK(ok, "writing %s: %s", path, err.message);
    gguf_writer_free(w);
    free(values);
    if (ok)
        date_in_the_past(path);
    return ok;
}

/* Reads through a volatile pointer so the compiler keeps the load. */
static float read_float(const void *data, size_t index)
{
    return ((const volatile float *)data)[index];
}

/* --- the guard itself --------------------------------------------------------- */

static void test_truncated_mapping_reads_zeros(void)
{
    char path[600];
    temp_path(path, sizeof path, "pattern.bin");
    if (!write_pattern_file(path, 4 * page_bytes, 0x5A)) {
        CHECK(0, "cannot write %s", path);
        return;
    }
    int fd = open(path, O_RDWR);
    unsigned char *map = fd >= 0 ? mmap(NULL, 4 * page_bytes, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    if (map == MAP_FAILED) {
        CHECK(0, "cannot map %s", path);
        if (fd >= 0)
            close(fd);
        return;
    }
    int slot = fault_guard_register(map, 4 * page_bytes);
    CHECK(slot != FAULT_GUARD_NO_SLOT, "no slot");
    CHECK(!fault_guard_was_hit(slot), "hit before any fault");
    /* keep the first page and 100 bytes of the second */
    CHECK(ftruncate(fd, (off_t)page_bytes + 100) == 0, "ftruncate");
    volatile unsigned char *bytes = map;
    CHECK(bytes[0] == 0x5A, "page 0 changed: %d", bytes[0]);
    CHECK(bytes[page_bytes + 10] == 0x5A, "the kept start of page 1 changed: %d", bytes[page_bytes + 10]);
    CHECK(!fault_guard_was_hit(slot), "hit without a fault");
    /* past the end: SIGBUS without the guard */
    CHECK(bytes[3 * page_bytes + 7] == 0, "page 3 reads %d, expected a zero", bytes[3 * page_bytes + 7]);
    CHECK(bytes[2 * page_bytes] == 0, "page 2 reads %d, expected a zero", bytes[2 * page_bytes]);
    CHECK(fault_guard_was_hit(slot), "the fault was not recorded");
    CHECK(bytes[0] == 0x5A, "page 0 changed after the repair: %d", bytes[0]);
    fault_guard_unregister(slot);
    munmap(map, 4 * page_bytes);
    close(fd);
}

/* Runs child in a forked process; returns its wait status. */
static int run_in_child(void (*child)(const char *), const char *path)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        child(path);
        _exit(0); /* reached only when the child survived */
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        CHECK(0, "fork/waitpid failed");
    return status;
}

/* A fault in a mapping the guard does not know (never registered, or
 * unregistered) goes on to the default action. */
static void touch_truncated_unregistered_mapping(const char *path)
{
    int fd = open(path, O_RDWR);
    unsigned char *map = mmap(NULL, 2 * page_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (fd < 0 || map == MAP_FAILED)
        _exit(3);
    fault_guard_unregister(fault_guard_register(map, 2 * page_bytes));
    if (ftruncate(fd, 0) != 0)
        _exit(3);
    volatile unsigned char *bytes = map;
    (void)bytes[page_bytes];
}

static void send_sigbus_to_self(const char *path)
{
    (void)path;
    raise(SIGBUS);
}

/* Without sanitizers the child is killed by SIGBUS; a sanitizer's own
 * SIGBUS report (the handler the guard passes the signal on to) exits
 * non-zero instead. Either way it must not carry on. */
static void check_child_did_not_survive(int status, const char *what)
{
    CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0), "%s: the process carried on", what);
    CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 3), "%s: the child could not set up", what);
    if (WIFSIGNALED(status))
        CHECK(WTERMSIG(status) == SIGBUS, "%s: killed by signal %d, expected SIGBUS", what, WTERMSIG(status));
}

static void test_foreign_sigbus_is_not_swallowed(void)
{
    printf("note: two child processes die of SIGBUS on purpose next (under sanitizers, each prints a report)\n");
    char path[600];
    temp_path(path, sizeof path, "foreign.bin");
    if (!write_pattern_file(path, 2 * page_bytes, 1)) {
        CHECK(0, "cannot write %s", path);
        return;
    }
    check_child_did_not_survive(run_in_child(touch_truncated_unregistered_mapping, path), "unregistered mapping");
    check_child_did_not_survive(run_in_child(send_sigbus_to_self, path), "SIGBUS sent by raise()");
}

/* --- the watch on GGUF files ------------------------------------------------- */

/* Opens path (mapped), applies change, reads the whole tensor (which must
 * not kill the process) and returns gguf_check_unchanged's status with its
 * message in err. */
static strata_status open_change_check(const char *path, void (*change)(const char *, size_t), strata_error *err)
{
    gguf_file *file = NULL;
    strata_status status = gguf_open(path, &file, err);
    if (status != STRATA_OK) {
        CHECK(0, "open %s: %s", path, err->message);
        return status;
    }
    CHECK(gguf_check_unchanged(file, err) == STRATA_OK, "fresh file reported changed: %s", err->message);
    const gguf_tensor_info *tensor = gguf_find_tensor(file, "t");
    change(path, gguf_data_offset(file));
    double sum = 0;
    for (size_t i = 0; tensor && i < TENSOR_FLOATS; i++)
        sum += read_float(tensor->data, i);
    (void)sum;
    status = gguf_check_unchanged(file, err);
    gguf_close(file);
    return status;
}

static void truncate_into_data(const char *path, size_t data_offset)
{
    CHECK(truncate(path, (off_t)(data_offset + 5 * page_bytes)) == 0, "truncate");
}

static void overwrite_data(const char *path, size_t data_offset)
{
    int fd = open(path, O_WRONLY);
    char junk[4096];
    memset(junk, 0xFF, sizeof junk);
    CHECK(fd >= 0 && pwrite(fd, junk, sizeof junk, (off_t)data_offset + 8192) == (ssize_t)sizeof junk, "pwrite");
    if (fd >= 0)
        close(fd);
}

static void rename_and_delete(const char *path, size_t data_offset)
{
    (void)data_offset;
    char moved[700];
    snprintf(moved, sizeof moved, "%s.moved", path);
    CHECK(rename(path, moved) == 0, "rename");
    CHECK(unlink(moved) == 0, "unlink");
}

static void test_gguf_changes(void)
{
    char path[600];
    strata_error err = {0};

    temp_path(path, sizeof path, "truncated.gguf");
    if (write_test_gguf(path)) {
        CHECK(open_change_check(path, truncate_into_data, &err) == STRATA_IO, "truncation not reported");
        CHECK(strstr(err.message, path) && strstr(err.message, "truncated"), "message: %s", err.message);
    }
    temp_path(path, sizeof path, "overwritten.gguf");
    if (write_test_gguf(path)) {
        CHECK(open_change_check(path, overwrite_data, &err) == STRATA_IO, "overwrite not reported");
        CHECK(strstr(err.message, path) && strstr(err.message, "modified"), "message: %s", err.message);
    }
    temp_path(path, sizeof path, "renamed.gguf");
    if (write_test_gguf(path)) {
        err.message[0] = '\0';
        CHECK(open_change_check(path, rename_and_delete, &err) == STRATA_OK,
              "a renamed and deleted file was reported: %s", err.message);
    }
}

/* The fault happens while the file is short; afterwards size and time are
 * as they were, and only the guard's mark is left to tell. */
static void test_gguf_repaired_fault_alone(void)
{
    char path[600];
    strata_error err = {0};
    temp_path(path, sizeof path, "restored.gguf");
    if (!write_test_gguf(path))
        return;
    gguf_file *file = NULL;
    if (gguf_open(path, &file, &err) != STRATA_OK) {
        CHECK(0, "open: %s", err.message);
        return;
    }
    const gguf_tensor_info *tensor = gguf_find_tensor(file, "t");
    struct stat before;
    CHECK(stat(path, &before) == 0, "stat");
    CHECK(truncate(path, (off_t)gguf_data_offset(file)) == 0, "truncate");
    CHECK(read_float(tensor->data, TENSOR_FLOATS - 1) == 0.0f, "a truncated page did not read as zero");
    CHECK(truncate(path, before.st_size) == 0, "truncate back");
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    CHECK(utimensat(AT_FDCWD, path, times, 0) == 0, "utimensat");
    CHECK(gguf_check_unchanged(file, &err) == STRATA_IO, "a repaired fault was not reported");
    CHECK(strstr(err.message, path) && strstr(err.message, "memory map"), "message: %s", err.message);
    gguf_close(file);
}

static void test_gguf_open_read_keeps_its_copy(void)
{
    char path[600];
    strata_error err = {0};
    temp_path(path, sizeof path, "copied.gguf");
    if (!write_test_gguf(path))
        return;
    gguf_file *file = NULL;
    if (gguf_open_read(path, &file, &err) != STRATA_OK) {
        CHECK(0, "open_read: %s", err.message);
        return;
    }
    CHECK(truncate(path, 0) == 0, "truncate");
    const gguf_tensor_info *tensor = gguf_find_tensor(file, "t");
    CHECK(tensor && read_float(tensor->data, 0) == 1.0f && read_float(tensor->data, TENSOR_FLOATS - 1) ==
                                                              (float)TENSOR_FLOATS,
          "the copy changed with the file");
    CHECK(gguf_check_unchanged(file, &err) == STRATA_OK, "a copy reported a change: %s", err.message);
    gguf_close(file);
}

/* --- paths that are not regular files ---------------------------------------- */

static void check_refused(const char *path, const char *kind)
{
    gguf_file *file = NULL;
    strata_error err = {0};
    CHECK(gguf_open(path, &file, &err) == STRATA_INVALID_INPUT, "%s was not refused", path);
    CHECK(strstr(err.message, path) && strstr(err.message, kind), "%s: message: %s", path, err.message);
    gguf_close(file);
    CHECK(gguf_open_read(path, &file, &err) == STRATA_INVALID_INPUT, "%s was not refused by open_read", path);
    gguf_close(file);
}

static void test_special_files(void)
{
    char fifo[600];
    temp_path(fifo, sizeof fifo, "model.fifo");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    /* a FIFO without a writer blocked open() forever: the alarm set in
     * main ends the test if it comes back */
    check_refused(fifo, "FIFO");
    check_refused(temp_dir, "directory");
    check_refused("/dev/null", "character device");
}

int main(void)
{
    page_bytes = (size_t)sysconf(_SC_PAGESIZE);
    alarm(TEST_TIME_LIMIT_S);
    if (!test_make_temp_dir(temp_dir, sizeof temp_dir, "strata_fault_guard")) {
        printf("FAIL: cannot make a temporary directory\n");
        return 1;
    }
    strata_error err = {0};
    CHECK(strata_install_fault_guard(&err) == STRATA_OK, "install: %s", err.message);
    CHECK(strata_install_fault_guard(&err) == STRATA_OK, "a second install: %s", err.message);
    CHECK(fault_guard_installed(), "not installed");

    test_truncated_mapping_reads_zeros();
    test_foreign_sigbus_is_not_swallowed();
    test_gguf_changes();
    test_gguf_repaired_fault_alone();
    test_gguf_open_read_keeps_its_copy();
    test_special_files();

    static const char *const made[] = {"pattern.bin", "foreign.bin", "truncated.gguf", "overwritten.gguf",
                                       "restored.gguf", "copied.gguf", "model.fifo"};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        char path[600];
        temp_path(path, sizeof path, made[i]);
        remove(path);
    }
    rmdir(temp_dir);
    if (failures) {
        printf("test_fault_guard: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_fault_guard: all checks passed\n");
    return 0;
}
