// Warm-read loop: open, read and close one file N times; prints nanoseconds per iteration.
// In C so the loop itself costs next to nothing next to the system calls it measures.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: readloop FILE ITERATIONS\n"); return 2; }
    long iterations = atol(argv[2]);
    char buffer[65536];
    double start = now();
    for (long i = 0; i < iterations; i++) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) { perror(argv[1]); return 1; }
        if (read(fd, buffer, sizeof buffer) < 0) { perror("read"); return 1; }
        close(fd);
    }
    printf("%.1f\n", (now() - start) / iterations);
    return 0;
}
