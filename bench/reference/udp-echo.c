/*
 * The plain UDP echo server the benchmark measures muxnet against: one
 * non-blocking socket, epoll, and on each wake-up recvfrom/sendto one
 * datagram at a time until EAGAIN. No batching (recvmmsg/sendmmsg), no
 * GSO/GRO: the classic server, so a ratio to it says what batching and
 * muxnet's own work add or cost.
 *
 *   udp-echo --host 127.0.0.1 --port 0
 *
 * Prints `listening on udp HOST:PORT` once bound; runs until killed.
 * Built by the bench harness (src/bench/servers.ts) with `cc -O2`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0) host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
    }

    struct sockaddr_storage addr;
    socklen_t addr_len;
    memset(&addr, 0, sizeof addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        addr_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        addr_len = sizeof *v6;
    } else {
        fprintf(stderr, "udp-echo: --host must be an IP address, not %s\n", host);
        return 2;
    }

    int fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (bind(fd, (struct sockaddr *)&addr, addr_len) < 0) die("bind");
    if (getsockname(fd, (struct sockaddr *)&addr, &addr_len) < 0) die("getsockname");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");

    int bound = addr.ss_family == AF_INET ? ntohs(v4->sin_port) : ntohs(v6->sin6_port);
    printf(addr.ss_family == AF_INET ? "listening on udp %s:%d\n" : "listening on udp [%s]:%d\n", host, bound);
    fflush(stdout);

    static char buf[65536];
    for (;;) {
        struct epoll_event ready;
        int n = epoll_wait(ep, &ready, 1, -1);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (;;) {
            struct sockaddr_storage from;
            socklen_t from_len = sizeof from;
            ssize_t len = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
            if (len < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR) continue;
                /* An ICMP error queued on the socket: spent by this call; go on. */
                continue;
            }
            /* A full send buffer drops the reply, as UDP may. */
            (void)sendto(fd, buf, (size_t)len, 0, (struct sockaddr *)&from, from_len);
        }
    }
}
