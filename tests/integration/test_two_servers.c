/* DESIGN §8: "A forked child keeps only its own server's fds". Server B runs
 * in this process (one-process worker, a kept-alive client); server A, in
 * the same process, is a master that forks children. A's children must not
 * hold B's listener or B's connections: B's KeepAliveTimeout still closes
 * B's client, and once B is freed its port refuses connections instead of
 * queueing them in a backlog nobody serves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define RUN_BOUND_MS 30000
#define B_KEEPALIVE_S 8

/* B: a one-process worker in this process, whatever A's strategy. */
static th_server_t *start_b(th_fixture_t *fx)
{
    if (!th_strategy_built("worker") || fx->nservers >= TH_MAX_SERVERS)
        skip();
    th_server_t *b = th_server_create("worker");
    assert_non_null(b);
    fx->servers[fx->nservers++] = b; /* the fixture stops and frees it */
    char ka[16];
    snprintf(ka, sizeof(ka), "%d", B_KEEPALIVE_S);
    assert_int_equal(th_server_set(b, "KeepAliveTimeout", ka), 0);
    assert_int_equal(th_server_set(b, "ThreadsPerChild", "4"), 0);
    if (th_server_start(b) != 0)
        fail_msg("start B: %s", b->errmsg);
    return b;
}

/* A: a master forking StartServers 2 children, strategy of the case. */
static th_server_t *start_a(th_fixture_t *fx)
{
    static const char *const dirs[] = {"OneProcess",      "Off", "HandleSignals",   "Off",
                                       "StartServers",    "2",   "MinSpareServers", "1",
                                       "MaxSpareServers", "4",   "MinSpareThreads", "1",
                                       "MaxSpareThreads", "60",  NULL};
    th_server_t *a = th_new_server(fx);
    for (size_t i = 0; dirs[i]; i += 2)
        assert_int_equal(th_server_set(a, dirs[i], dirs[i + 1]), 0);
    if (th_server_start(a) != 0)
        fail_msg("start A: %s", a->errmsg);
    return a;
}

/* Both children past "starting", so past their fd sweep too: the master
 * publishes a child's pid as soon as fork returns, before the child has
 * closed what is not its own. */
static int two_children_ready(void *arg)
{
    th_server_t *a = arg;
    mpm_stats_t st = {.size = sizeof(st)};
    if (mpm_server_stats(a->srv, &st) != 0 || st.processes != 2)
        return 0;
    int ready = 0;
    for (unsigned i = 0; i < st.slots; i++) {
        mpm_child_stats_t c = {.size = sizeof(c)};
        if (mpm_server_child_stats(a->srv, i, &c) == 0 && c.pid > 0)
            ready += strcmp(c.state, "starting") != 0;
    }
    return ready == 2;
}

static int local_port(int fd, int peer)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int rc = peer ? getpeername(fd, (struct sockaddr *)&sin, &len)
                  : getsockname(fd, (struct sockaddr *)&sin, &len);
    if (rc != 0 || sin.sin_family != AF_INET)
        return -1;
    return ntohs(sin.sin_port);
}

/* Inodes of B's sockets in this process: its listener, and the server side
 * of the connection whose client end is client_fd. */
static void find_b_sockets(int b_port, int client_fd, ino_t *listener, ino_t *conn)
{
    int client_port = local_port(client_fd, 0);
    *listener = *conn = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        int fd = atoi(e->d_name);
        struct stat st;
        if (e->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        if (local_port(fd, 0) != b_port)
            continue;
        int acc = 0;
        socklen_t len = sizeof(acc);
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len);
        if (acc)
            *listener = st.st_ino;
        else if (local_port(fd, 1) == client_port)
            *conn = st.st_ino;
    }
    closedir(d);
    assert_true(*listener != 0);
    assert_true(*conn != 0);
}

/* Whether process pid holds a socket with this inode. */
static int holds_socket(pid_t pid, ino_t ino)
{
    char dir[64], want[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)ino);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        char path[320], link[128];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = '\0';
            found = strcmp(link, want) == 0;
        }
    }
    closedir(d);
    return found;
}

/* The eventfd ids (fdinfo's "eventfd-id") of process pid's eventfds ("self"
 * for this one); returns how many, at most max. */
static int eventfd_ids(const char *pid, long *ids, int max)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; n < max && (e = readdir(d)) != NULL;) {
        char path[320], link[128];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t len = readlink(path, link, sizeof(link) - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (strcmp(link, "anon_inode:[eventfd]") != 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%s/fdinfo/%s", pid, e->d_name);
        FILE *f = fopen(path, "r");
        char line[128];
        while (f && fgets(line, sizeof(line), f))
            if (sscanf(line, "eventfd-id: %ld", &ids[n]) == 1)
                n++;
        if (f)
            fclose(f);
    }
    closedir(d);
    return n;
}

static int children_of(th_server_t *a, pid_t *pids, int max)
{
    mpm_stats_t st = {.size = sizeof(st)};
    assert_int_equal(mpm_server_stats(a->srv, &st), 0);
    int n = 0;
    for (unsigned i = 0; i < st.slots && n < max; i++) {
        mpm_child_stats_t c = {.size = sizeof(c)};
        if (mpm_server_child_stats(a->srv, i, &c) == 0 && c.pid > 0)
            pids[n++] = c.pid;
    }
    return n;
}

/* Connects to 127.0.0.1:port without blocking: 0 connected, else errno
 * (ECONNREFUSED), ETIMEDOUT after timeout_ms. */
static int try_connect(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int err = 0;
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, timeout_ms) <= 0) {
                err = ETIMEDOUT;
            } else {
                socklen_t len = sizeof(err);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            }
        }
    }
    close(fd);
    return err;
}

static void stop_and_free(th_fixture_t *fx, th_server_t *s)
{
    for (size_t i = 0; i < fx->nservers; i++) {
        if (fx->servers[i] == s) {
            fx->servers[i] = fx->servers[--fx->nservers];
            break;
        }
    }
    assert_int_equal(th_server_stop(s, 0), 0);
    th_server_destroy(s);
}

static void forked_children_keep_no_fd_of_another_server(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *b = start_b(fx);
    tc_conn_t *client = th_hold_connection(fx, b->port);
    int64_t held_at = tc_now_ms();
    ino_t b_listener, b_conn;
    find_b_sockets(b->port, client->fd, &b_listener, &b_conn);
    /* B's thread pool wakes its listener through an eventfd: A's children
     * must not hold that either (no client sees it, but DESIGN §8 says
     * only their own server's fds). Every eventfd here now is B's. */
    long b_efds[16];
    int nb_efds = eventfd_ids("self", b_efds, 16);
    assert_true(nb_efds >= 1);

    th_server_t *a = start_a(fx);
    assert_true(th_wait_for(two_children_ready, a, RUN_BOUND_MS));
    /* The children forked while B's connection was open: otherwise this
     * case proves nothing. */
    if (tc_readable(client, 0))
        fail_msg("B's client closed before A's children started (loaded machine?)");

    pid_t pids[8];
    int n = children_of(a, pids, 8);
    assert_true(n >= 2);
    for (int i = 0; i < n; i++) {
        if (holds_socket(pids[i], b_listener))
            fail_msg("A's child %d holds B's listener", (int)pids[i]);
        if (holds_socket(pids[i], b_conn))
            fail_msg("A's child %d holds B's connection", (int)pids[i]);
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", (int)pids[i]);
        long ids[16];
        int nids = eventfd_ids(pid, ids, 16);
        for (int j = 0; j < nids; j++)
            for (int k = 0; k < nb_efds; k++)
                if (ids[j] == b_efds[k])
                    fail_msg("A's child %d holds B's eventfd", (int)pids[i]);
    }

    /* B's KeepAliveTimeout closes B's client: the end of file arrives. */
    int left = (int)(held_at + B_KEEPALIVE_S * 1000 + 10000 - tc_now_ms());
    assert_int_equal(tc_wait_close(client, left > 0 ? left : 1, NULL), TC_CLOSED);
    assert_true(tc_now_ms() - held_at >= B_KEEPALIVE_S * 1000 - 500);

    /* B gone: its port refuses, A's children do not keep its backlog. */
    int b_port = b->port;
    stop_and_free(fx, b);
    assert_int_equal(try_connect(b_port, 5000), ECONNREFUSED);
    th_expect_serving(a->port);
}

#define MASTER_CASE(f) TH_CASE(f, "prefork"), TH_CASE(f, "worker")

int main(void)
{
    const struct CMUnitTest tests[] = {
        MASTER_CASE(forked_children_keep_no_fd_of_another_server),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
