// A point-to-point IP link with a fixed one-way delay between two network namespaces, for
// benchmarks that must pay round trips as they do against Azure.
//
// tc netem would do this in the kernel, but the kernels these benchmarks run on are built
// without it (CONFIG_NET_SCH_NETEM unset), so the delay is applied here: one TUN device in
// each namespace, every packet read from one is written to the other DELAY_US later, in
// order. Whole packets are delayed, not byte streams, so TCP's handshake, slow start and
// acknowledgements behave as on a real link.
//
//   delaylink CLIENT_NETNS SERVER_NETNS DEVICE DELAY_US
//
// CLIENT_NETNS and SERVER_NETNS are namespace files (/run/netns/NAME). DEVICE is the name the
// TUN device gets in both. Addresses and routes are the caller's job; the link runs until
// SIGTERM or SIGINT.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

enum { SLOTS = 16384, PACKET = 2048 };

// Packets in flight one way, oldest first.
struct queue {
    uint64_t due[SLOTS];
    uint16_t length[SLOTS];
    unsigned char (*bytes)[PACKET];
    unsigned head, count;
};

static volatile sig_atomic_t stopping;

static void stop(int signal) { (void)signal; stopping = 1; }

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void fail(const char *what) {
    fprintf(stderr, "delaylink: %s: %s\n", what, strerror(errno));
    exit(1);
}

// A TUN device named `name` in the namespace at `netns`; the descriptor keeps it alive.
static int open_tun(const char *netns, const char *name) {
    int ns = open(netns, O_RDONLY | O_CLOEXEC);
    if (ns < 0) fail(netns);
    if (setns(ns, CLONE_NEWNET) != 0) fail("setns");
    close(ns);
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail("/dev/net/tun");
    struct ifreq request = {0};
    request.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(request.ifr_name, IFNAMSIZ, "%s", name);
    if (ioctl(fd, TUNSETIFF, &request) != 0) fail("TUNSETIFF");
    return fd;
}

// Reads every packet waiting on `from` into `queue`, due `delay` from now. A full queue drops,
// as a full router buffer would.
static void take(int from, struct queue *queue, uint64_t delay) {
    for (;;) {
        unsigned char scratch[PACKET];
        unsigned slot = (queue->head + queue->count) % SLOTS;
        unsigned char *target = queue->count < SLOTS ? queue->bytes[slot] : scratch;
        ssize_t length = read(from, target, PACKET);
        if (length < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            fail("read");
        }
        if (queue->count == SLOTS) continue;
        queue->due[slot] = now_ns() + delay;
        queue->length[slot] = (uint16_t)length;
        queue->count++;
    }
}

// Writes every packet of `queue` that is due to `to`.
static void deliver(int to, struct queue *queue) {
    uint64_t now = now_ns();
    while (queue->count > 0 && queue->due[queue->head] <= now) {
        if (write(to, queue->bytes[queue->head], queue->length[queue->head]) < 0 && errno == EAGAIN) return;
        queue->head = (queue->head + 1) % SLOTS;
        queue->count--;
    }
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: delaylink CLIENT_NETNS SERVER_NETNS DEVICE DELAY_US\n");
        return 2;
    }
    uint64_t delay = strtoull(argv[4], NULL, 10) * 1000u;
    int client = open_tun(argv[1], argv[3]);
    int server = open_tun(argv[2], argv[3]);
    struct queue *upstream = calloc(1, sizeof *upstream), *downstream = calloc(1, sizeof *downstream);
    if (!upstream || !downstream) fail("calloc");
    upstream->bytes = calloc(SLOTS, PACKET);
    downstream->bytes = calloc(SLOTS, PACKET);
    if (!upstream->bytes || !downstream->bytes) fail("calloc");
    signal(SIGTERM, stop);
    signal(SIGINT, stop);
    printf("ready\n");
    fflush(stdout);

    while (!stopping) {
        // Sleep until a packet arrives or the next one in flight is due.
        uint64_t next = UINT64_MAX;
        if (upstream->count) next = upstream->due[upstream->head];
        if (downstream->count && downstream->due[downstream->head] < next) next = downstream->due[downstream->head];
        struct timespec wait = {1, 0};
        if (next != UINT64_MAX) {
            uint64_t now = now_ns(), left = next > now ? next - now : 0;
            wait.tv_sec = (time_t)(left / 1000000000u);
            wait.tv_nsec = (long)(left % 1000000000u);
        }
        struct pollfd ready[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
        if (ppoll(ready, 2, &wait, NULL) < 0 && errno != EINTR) fail("ppoll");
        if (ready[0].revents & POLLIN) take(client, upstream, delay);
        if (ready[1].revents & POLLIN) take(server, downstream, delay);
        deliver(server, upstream);
        deliver(client, downstream);
    }
    return 0;
}
