// stallreader OUT FILE...: reads the files in a loop until SIGTERM, like an application that
// keeps rereading its secrets, pausing 1 ms between reads (PAUSE_US) so that readers do not take
// every core and a slow read means a slow filesystem, not a busy scheduler. A FILE that ends in
// "/" is a directory, listed each time (opendir, readdir to the end, closedir), as ls does. Each read that took over 1 ms, or failed, is written to OUT as
// "<end, ns since the epoch> <duration ns> <errno, 0 if it worked>"; the last line is the count
// of reads. benchmarks/restart matches the slow reads to its restart cycles.
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping = 0;
static void stop(int signal) { (void)signal; stopping = 1; }

static long long now(clockid_t clock) {
    struct timespec time;
    clock_gettime(clock, &time);
    return time.tv_sec * 1000000000LL + time.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: stallreader OUT FILE...\n"); return 2; }
    FILE *out = fopen(argv[1], "w");
    if (!out) { perror(argv[1]); return 2; }
    // No SA_RESTART needed: the loop only stops between reads.
    struct sigaction action = { .sa_handler = stop };
    sigaction(SIGTERM, &action, NULL);
    const char *pause_text = getenv("PAUSE_US");
    useconds_t pause = pause_text ? (useconds_t)atoi(pause_text) : 1000;
    char buffer[65536];
    long long reads = 0;
    while (!stopping) {
        for (int index = 2; index < argc && !stopping; index++) {
            long long started = now(CLOCK_MONOTONIC);
            int failure = 0;
            size_t length_of_name = strlen(argv[index]);
            if (length_of_name > 0 && argv[index][length_of_name - 1] == '/') {
                DIR *directory = opendir(argv[index]);
                if (!directory) {
                    failure = errno;
                } else {
                    errno = 0;
                    while (readdir(directory)) {}
                    failure = errno;
                    closedir(directory);
                }
                goto measured;
            }
            int fd = open(argv[index], O_RDONLY);
            if (fd < 0) {
                failure = errno;
            } else {
                ssize_t length;
                while ((length = read(fd, buffer, sizeof buffer)) > 0) {}
                if (length < 0) failure = errno;
                close(fd);
            }
        measured:;
            long long took = now(CLOCK_MONOTONIC) - started;
            reads++;
            if (failure == EINTR && stopping) break;
            if (took > 1000000 || failure) fprintf(out, "%lld %lld %d\n", now(CLOCK_REALTIME), took, failure);
            if (pause) usleep(pause);
        }
    }
    fprintf(out, "reads %lld\n", reads);
    fclose(out);
    return 0;
}
