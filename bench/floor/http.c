/*
 * The floor of answering `GET /` on this machine: a C server that answers every request
 * read on a connection with the same bytes (a whole HTTP response, read from a file) and
 * does nothing else: no parsing, no routing, no allocation. What `wrk` measures against it
 * is the kernel's TCP path and wrk's own cost on the same cores; a real server's ratio to
 * it says how much of its cost is its own.
 *
 *   http PORT THREADS RESPONSE-FILE
 *
 * Each thread has its own listening socket on PORT (SO_REUSEPORT) and its own epoll loop.
 * Prints "ready" once every thread listens. Built by bench/run.py with `cc -O2`.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static char response[1 << 20];
static size_t response_len;
static int port;
static pthread_barrier_t listening;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void *serve(void *unused) {
    (void)unused;
    int one = 1;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l < 0)
        die("socket");
    setsockopt(l, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(l, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    if (listen(l, 1024) < 0)
        die("listen");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    pthread_barrier_wait(&listening);
    struct epoll_event evs[64];
    char buf[16384];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                int c;
                while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                }
                continue;
            }
            ssize_t k = recv(fd, buf, sizeof buf, 0);
            if (k <= 0) {
                close(fd);
                continue;
            }
            if (send(fd, response, response_len, MSG_NOSIGNAL) < 0)
                close(fd);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: http PORT THREADS RESPONSE-FILE\n");
        return 2;
    }
    port = atoi(argv[1]);
    int threads = atoi(argv[2]);
    FILE *f = fopen(argv[3], "rb");
    if (!f)
        die(argv[3]);
    response_len = fread(response, 1, sizeof response, f);
    fclose(f);
    pthread_barrier_init(&listening, NULL, threads + 1);
    pthread_t t;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t, NULL, serve, NULL) != 0)
            die("pthread_create");
    pthread_barrier_wait(&listening);
    printf("ready\n");
    fflush(stdout);
    pthread_join(t, NULL);
    return 0;
}
