// Warm reads that reach the daemon: drop the file's pages from the kernel's page cache, then
// open, read and close it, N times. The content is in akvfs's memory, so each read is answered
// by the daemon without Key Vault: the path a read takes after a rotation or memory pressure.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: pagedread FILE ITERATIONS\n"); return 2; }
    long iterations = atol(argv[2]);
    char buffer[65536];
    for (long i = 0; i < iterations; i++) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) { perror(argv[1]); return 1; }
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        if (read(fd, buffer, sizeof buffer) <= 0) { perror("read"); return 1; }
        close(fd);
    }
    return 0;
}
