/*
 * The floor of starting N processes on this machine: a C program that starts N copies of
 * `sleep 100000` and prints "ready" once every one of them has called execve, then kills
 * and reaps them. No manager can start the same N faster, so its ratio to this says how
 * much of a manager's start-up is its own.
 *
 *   spawn N vfork [THREADS]
 *                   posix_spawn, one after another: each call returns once its child has
 *                   called execve (glibc clones with CLONE_VFORK), as a manager that
 *                   learns at once whether the exec failed does; with THREADS, that many
 *                   threads share the N starts, each waiting for its own children only
 *   spawn N fork    fork without waiting: each child's execve is confirmed later, by its
 *                   close-on-exec pipe reaching end of file (all pipes watched by epoll)
 *
 * Built by bench/run.py with `cc -O2`.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static char *args[] = {"sleep", "100000", NULL};
static pid_t *pids;
static int n, threads = 1;

/* Starts every THREADS-th child from `first` on, each waiting for its child's execve. */
static void *spawn_share(void *first) {
    for (int i = (int)(long)first; i < n; i += threads)
        if (posix_spawnp(&pids[i], "sleep", NULL, NULL, args, environ) != 0)
            die("posix_spawnp");
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: spawn N vfork [THREADS] | spawn N fork\n");
        return 2;
    }
    n = atoi(argv[1]);
    int forking = strcmp(argv[2], "fork") == 0;
    if (argc == 4)
        threads = atoi(argv[3]);
    if (threads < 1 || threads > 64)
        threads = 1;
    pids = calloc(n, sizeof *pids);
    if (!pids)
        die("calloc");
    if (!forking) {
        pthread_t t[64];
        for (long k = 1; k < threads; k++)
            if (pthread_create(&t[k], NULL, spawn_share, (void *)k) != 0)
                die("pthread_create");
        spawn_share((void *)0);
        for (int k = 1; k < threads; k++)
            pthread_join(t[k], NULL);
    } else {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
            die("epoll_create1");
        for (int i = 0; i < n; i++) {
            int p[2];
            if (pipe2(p, O_CLOEXEC) < 0)
                die("pipe2");
            pid_t c = fork();
            if (c < 0)
                die("fork");
            if (c == 0) {
                execvp("sleep", args);
                _exit(127);
            }
            pids[i] = c;
            close(p[1]);
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) < 0)
                die("epoll_ctl");
        }
        struct epoll_event evs[256];
        for (int left = n; left > 0;) {
            int k = epoll_wait(ep, evs, 256, -1);
            if (k < 0)
                die("epoll_wait");
            for (int j = 0; j < k; j++) {
                epoll_ctl(ep, EPOLL_CTL_DEL, evs[j].data.fd, NULL);
                close(evs[j].data.fd);
                left--;
            }
        }
    }
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        waitpid(pids[i], NULL, 0);
    return 0;
}
