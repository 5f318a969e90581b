// Cold reads: open, read and close each file given once; prints the median in nanoseconds.
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

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: coldread FILE...\n"); return 2; }
    int count = argc - 1;
    double *times = malloc(sizeof(double) * count);
    char buffer[65536];
    for (int i = 0; i < count; i++) {
        double start = now();
        int fd = open(argv[i + 1], O_RDONLY);
        if (fd < 0) { perror(argv[i + 1]); return 1; }
        if (read(fd, buffer, sizeof buffer) < 0) { perror("read"); return 1; }
        close(fd);
        times[i] = now() - start;
    }
    qsort(times, count, sizeof(double), compare);
    printf("%.1f\n", times[count / 2]);
    return 0;
}
