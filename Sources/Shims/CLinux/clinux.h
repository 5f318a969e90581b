// CLinux: Linux calls Swift cannot import as they are.
//
// prctl is variadic, and Swift imports variadic C functions as unavailable; each wrapper below
// fixes one option and passes the unused arguments as zero, as the man page asks.
#ifndef CLINUX_H
#define CLINUX_H

#include <sys/prctl.h>

// Not dumpable: the kernel writes no core file and feeds no core-dump helper with this
// process's memory, and processes of the same user can neither ptrace it nor read its memory
// through /proc. exec resets the flag, so every akvfs executable sets it for itself.
static inline int clinux_set_not_dumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L);
}

// 1 when dumpable, 0 when not, -1 with errno on failure.
static inline int clinux_get_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0L, 0L, 0L, 0L);
}

#endif
