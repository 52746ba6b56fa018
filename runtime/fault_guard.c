/* The opt-in SIGBUS guard over model file mappings: a fixed table of ranges
 * and a handler that repairs faults inside them (see fault_guard.h and
 * strata_install_fault_guard in strata.h).
 *
 * Everything the handler touches is a lock-free atomic or was written before
 * the handler was installed; the only calls it makes are mmap, sigaction and
 * raise, which are system calls (sigaction and raise are async-signal-safe;
 * mmap is not in POSIX's list, but on Linux and the BSDs it is a plain system
 * call with no user-space state). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fault_guard.h"
#include "strata.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_POINTER_LOCK_FREE == 2 && ATOMIC_BOOL_LOCK_FREE == 2,
               "the SIGBUS handler needs lock-free atomics");

/* Open model files at once, per process: each gguf_open of a mapped file
 * takes one while the file is open. */
#define FAULT_GUARD_SLOTS 64

enum { SLOT_FREE, SLOT_CLAIMED, SLOT_ACTIVE };

typedef struct guarded_range {
    atomic_int state;       /* SLOT_*: the handler reads only ACTIVE slots */
    atomic_uintptr_t begin; /* page-aligned */
    atomic_uintptr_t end;   /* rounded up to a page: the mapping's last page */
    atomic_bool hit;
} guarded_range;

static guarded_range ranges[FAULT_GUARD_SLOTS];

static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static atomic_bool guard_installed;
static int install_errno; /* why sigaction failed, 0 when it did not */
/* Written once, before the handler is installed; read by the handler. */
static struct sigaction previous_action;
static uintptr_t page_size;

static uintptr_t system_page_size(void)
{
    long size = sysconf(_SC_PAGESIZE);
    return size > 0 ? (uintptr_t)size : 4096;
}

int fault_guard_register(const void *begin, size_t bytes)
{
    uintptr_t page = system_page_size();
    uintptr_t start = (uintptr_t)begin;
    if (bytes == 0 || bytes > UINTPTR_MAX - start - page)
        return FAULT_GUARD_NO_SLOT;
    for (int slot = 0; slot < FAULT_GUARD_SLOTS; slot++) {
        int expected = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&ranges[slot].state, &expected, SLOT_CLAIMED))
            continue;
        atomic_store(&ranges[slot].begin, start);
        atomic_store(&ranges[slot].end, (start + bytes + page - 1) / page * page);
        atomic_store(&ranges[slot].hit, false);
        atomic_store(&ranges[slot].state, SLOT_ACTIVE);
        return slot;
    }
    return FAULT_GUARD_NO_SLOT;
}

void fault_guard_unregister(int slot)
{
    if (slot >= 0 && slot < FAULT_GUARD_SLOTS)
        atomic_store(&ranges[slot].state, SLOT_FREE);
}

bool fault_guard_was_hit(int slot)
{
    if (slot < 0 || slot >= FAULT_GUARD_SLOTS)
        return false;
    return atomic_load(&ranges[slot].hit);
}

bool fault_guard_installed(void)
{
    return atomic_load(&guard_installed);
}

/* Maps zero pages over [the page of address, end of its range) when address
 * lies in a registered range, and marks the range. Returns whether it did. */
static bool repair_fault(uintptr_t address)
{
    for (int slot = 0; slot < FAULT_GUARD_SLOTS; slot++) {
        guarded_range *range = &ranges[slot];
        if (atomic_load(&range->state) != SLOT_ACTIVE)
            continue;
        uintptr_t begin = atomic_load(&range->begin), end = atomic_load(&range->end);
        if (address < begin || address >= end)
            continue;
        /* Everything past a truncation point faults, so the rest of the
         * range is patched at once: one signal per truncation, not one per
         * page. Pages before the faulting one still show the file. */
        uintptr_t first = address & ~(page_size - 1);
        void *patched = mmap((void *)first, end - first, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (patched == MAP_FAILED)
            return false;
        atomic_store(&range->hit, true);
        return true;
    }
    return false;
}

/* A SIGBUS that is not ours goes where it would have gone without the guard:
 * to the handler installed before it, or to the default action (the process
 * ends, killed by SIGBUS, as before). */
static void pass_on(int signal_number, siginfo_t *info, void *ucontext)
{
    if (previous_action.sa_flags & SA_SIGINFO) {
        if (previous_action.sa_sigaction) {
            previous_action.sa_sigaction(signal_number, info, ucontext);
            return;
        }
    } else if (previous_action.sa_handler == SIG_IGN) {
        if (info->si_code <= 0)
            return; /* sent by kill() and ignored before: ignore it still */
    } else if (previous_action.sa_handler != SIG_DFL) {
        previous_action.sa_handler(signal_number);
        return;
    }
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(signal_number, &fallback, NULL);
    /* A fault runs its instruction again on return and now ends the process;
     * a signal sent by kill() has to be sent again (it stays blocked until
     * this handler returns). */
    if (info->si_code <= 0)
        raise(signal_number);
}

static void on_sigbus(int signal_number, siginfo_t *info, void *ucontext)
{
    int saved_errno = errno;
    /* si_code > 0: raised by the kernel for a fault at si_addr */
    bool repaired = info->si_code > 0 && repair_fault((uintptr_t)info->si_addr);
    if (!repaired)
        pass_on(signal_number, info, ucontext);
    errno = saved_errno;
}

static void install_handler(void)
{
    page_size = system_page_size();
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &previous_action) != 0)
        install_errno = errno;
    else
        atomic_store(&guard_installed, true);
}

strata_status strata_install_fault_guard(strata_error *err)
{
    int once_error = pthread_once(&install_once, install_handler);
    if (once_error != 0 || install_errno != 0)
        return strata_fail(err, STRATA_IO, "cannot install the SIGBUS handler of the fault guard: %s",
                           strerror(once_error ? once_error : install_errno));
    return STRATA_OK;
}
