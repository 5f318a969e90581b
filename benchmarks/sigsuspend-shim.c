// Preloaded into akvfs under valgrind only (benchmarks/instructions). Swift's async main ends in
// libdispatch's dispatch_main, which calls sigsuspend with a signal mask in read-only memory;
// valgrind 3.19 writes to the mask it is given and dies of SIGSEGV there. This passes a copy.
#define _GNU_SOURCE
#include <signal.h>

extern int __sigsuspend(const sigset_t *mask);

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return __sigsuspend(&copy);
}
