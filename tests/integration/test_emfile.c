/* DESIGN §4, "fd exhaustion (EMFILE) on accept: back off and keep serving;
 * never spin". A server runs in a forked child whose fd limit leaves no room
 * for an accepted socket; the test checks that it logs the exhaustion, burns
 * little CPU while exhausted, and serves the waiting client as soon as the
 * limit is raised from outside (prlimit). */
#include <mpmlib/mpmlib.h>

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "proc.h"

static int log_fd = -1;

static void child_log(mpm_log_level_t level, const char *msg, void *data)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%s\n", msg);
    if (n > 0)
        (void)!write(log_fd, line, (size_t)n);
}

static void hello(mpm_request_t *req, void *data)
{
    mpm_response_send(req, "Hello, World!", 13);
}

/* Lowest descriptor number free in process pid: an fd limit equal to it
 * makes that process's next accept() fail with EMFILE. */
static int lowest_free_fd(pid_t pid)
{
    char path[64];
    for (int fd = 0; fd < 4096; fd++) {
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
        if (access(path, F_OK) != 0)
            return fd;
    }
    return -1;
}

/* The server of the case, in this forked child. Under event it logs with
 * the library's own logger (no callback: lines on stderr, which goes to the
 * test's log pipe), so that the case checks that logger's lines too. */
static void run_child(int port_fd, const char *strategy)
{
    mpm_config_t *cfg;
    mpm_server_t *srv;
    int own_logger = strcmp(strategy, "event") == 0;
    if (own_logger && dup2(log_fd, STDERR_FILENO) < 0)
        _exit(3);
    if (mpm_config_new(&cfg) || mpm_config_set(cfg, "Listen", "127.0.0.1:0") ||
        mpm_config_set(cfg, "OneProcess", "On") || mpm_config_set(cfg, "LogLevel", "warn") ||
        mpm_config_set(cfg, "MPM", strategy) || mpm_config_set(cfg, "ThreadsPerChild", "2") ||
        mpm_config_set_handler(cfg, hello, NULL) ||
        (!own_logger && mpm_config_set_log_cb(cfg, child_log, NULL)) ||
        mpm_server_new(cfg, &srv) || mpm_server_bind(srv))
        _exit(3);
    mpm_config_free(cfg);
    int port = mpm_server_port(srv, 0);
    (void)!write(port_fd, &port, sizeof(port));
    close(port_fd);
    _exit(mpm_server_run(srv) == 0 ? 0 : 6);
}

/* Reads the child's log until a line contains `needle` or timeout_ms passes. */
static int wait_for_log(int fd, const char *needle, int timeout_ms)
{
    char buf[4096];
    size_t used = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        int left = timeout_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return 0;
        ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);
        if (n <= 0)
            return 0;
        used += (size_t)n;
        buf[used] = '\0';
        if (strstr(buf, needle))
            return 1;
        if (used > sizeof(buf) / 2) { /* keep the tail only */
            memmove(buf, buf + used - 256, 256);
            used = 256;
        }
    }
}

/* utime + stime of pid, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    tp_stat_t st;
    return tp_stat(pid, &st) == 0 ? st.cpu_ticks : -1;
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return -1;
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void stop_child(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void test_emfile_backs_off_and_recovers(void **state)
{
    const char *strategy = *state;
    int port_pipe[2], log_pipe[2];
    assert_int_equal(pipe(port_pipe), 0);
    assert_int_equal(pipe(log_pipe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(port_pipe[0]);
        close(log_pipe[0]);
        log_fd = log_pipe[1];
        run_child(port_pipe[1], strategy);
    }
    close(port_pipe[1]);
    close(log_pipe[1]);
    int port = 0;
    assert_int_equal(read(port_pipe[0], &port, sizeof(port)), (ssize_t)sizeof(port));
    close(port_pipe[0]);

    const char req[] = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char buf[1024];
    /* A first request proves the server is up with every fd it needs open;
     * then its fd limit is lowered to leave no room for another socket. */
    int fd = connect_port(port);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
    assert_true(recv(fd, buf, sizeof(buf), MSG_WAITALL) > 0);
    close(fd);
    struct rlimit low = {.rlim_cur = (rlim_t)lowest_free_fd(pid), .rlim_max = RLIM_INFINITY};
    struct rlimit old;
    assert_int_equal(prlimit(pid, RLIMIT_NOFILE, NULL, &old), 0);
    low.rlim_max = old.rlim_max;
    assert_int_equal(prlimit(pid, RLIMIT_NOFILE, &low, NULL), 0);

    fd = connect_port(port);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);

    /* The library's logger: one line, "mpmlib[PID] LEVEL: message". */
    char needle[64];
    if (strcmp(strategy, "event") == 0)
        snprintf(needle, sizeof needle, "mpmlib[%d] warn: accept: Too many open files", (int)pid);
    else
        snprintf(needle, sizeof needle, "accept: Too many open files");
    int exhausted = wait_for_log(log_pipe[0], needle, 20000);
    if (!exhausted)
        stop_child(pid);
    assert_true(exhausted);

    /* While exhausted, the child must sleep, not spin: over two seconds a
     * spinning accept loop would use ~200 ticks; allow 40. */
    long before = cpu_ticks(pid);
    struct timespec two = {.tv_sec = 2};
    nanosleep(&two, NULL);
    long used = cpu_ticks(pid) - before;
    int raised = prlimit(pid, RLIMIT_NOFILE, &old, NULL);

    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_WAITALL);
    close(fd);
    close(log_pipe[0]);
    stop_child(pid);
    assert_true(before >= 0);
    assert_true(used < 40);
    assert_int_equal(raised, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(strstr(buf, "Hello, World!"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_emfile_backs_off_and_recovers, (void *)"prefork"),
        cmocka_unit_test_prestate(test_emfile_backs_off_and_recovers, (void *)"worker"),
        cmocka_unit_test_prestate(test_emfile_backs_off_and_recovers, (void *)"event"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
