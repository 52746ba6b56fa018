/* Internal: the table of file mappings that strata_install_fault_guard's
 * SIGBUS handler protects (runtime/fault_guard.c).
 *
 * A read of a memory-mapped file raises SIGBUS when the page lies past the
 * file's end (the file was truncated after it was mapped) or cannot be read
 * (an I/O error). With the guard installed, such a fault inside a registered
 * range is repaired: the handler maps zero pages from the faulting page to
 * the end of the range, so the computation that touched it finishes (with
 * zeros instead of weights), and marks the range as hit. Whoever owns the
 * mapping asks fault_guard_was_hit afterwards and turns it into an error.
 *
 * The table is lock-free (the handler may run in any thread at any moment)
 * and always kept, installed or not, so a guard installed later protects
 * mappings made earlier. */
#ifndef STRATA_FAULT_GUARD_H
#define STRATA_FAULT_GUARD_H

#include <stdbool.h>
#include <stddef.h>

/* A slot number when no slot could be had (all in use): the range is then
 * not protected, and a fault in it is fatal as it would be without guard. */
#define FAULT_GUARD_NO_SLOT (-1)

/* Registers [begin, begin + bytes), a read-only mapping made by mmap (begin
 * is page-aligned). Returns its slot, or FAULT_GUARD_NO_SLOT. Thread-safe. */
int fault_guard_register(const void *begin, size_t bytes);

/* Forgets slot (FAULT_GUARD_NO_SLOT is fine). Call it before munmap, so the
 * handler never patches an address that has been handed out again. */
void fault_guard_unregister(int slot);

/* Whether a fault inside slot's range was repaired since it was
 * registered: what was read from the range since then may be zeros. */
bool fault_guard_was_hit(int slot);

/* Whether strata_install_fault_guard has installed the handler. */
bool fault_guard_installed(void);

#endif
