/* Hostile and broken clients that must not cost the server a process, its
 * memory or a serving unit, and stops that must end on time:
 * - a client that resets the connection in the middle of a sendfile() body
 *   (SIGPIPE must not kill the host in one-process mode, nor a child);
 * - a client that declares a huge body and sends nothing (no allocation of
 *   the declared size);
 * - a client that stops reading a large response (freed after Timeout);
 * - a handler that never returns during a graceful stop or restart
 *   (GracefulShutdownTimeout bounds it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "proc.h"

/* Larger than any socket buffers on loopback, so the sender always blocks. */
#define BIG_LEN (64L * 1024 * 1024)

/* A directory holding big.bin (sparse, BIG_LEN bytes): /files/big.bin for
 * mpmserve --root, and the file our own handler sends. */
static char big_dir[64];
static char big_path[96];

static int group_setup(void **state)
{
    (void)state;
    /* The default disposition: a SIGPIPE raised in a serving thread of this
     * process would kill it, which is what the SIGPIPE cases check. */
    signal(SIGPIPE, SIG_DFL);
    snprintf(big_dir, sizeof big_dir, "/tmp/mpmlib-robust-XXXXXX");
    if (!mkdtemp(big_dir))
        return -1;
    snprintf(big_path, sizeof big_path, "%s/big.bin", big_dir);
    int fd = open(big_path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = ftruncate(fd, BIG_LEN);
    close(fd);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(big_path);
    rmdir(big_dir);
    return 0;
}

/* ---- a handler with extra routes around the harness's ---- */

/* A body whose every byte says where it is, so a byte lost, repeated or
 * out of place is seen. */
#define PATTERN_LEN (24L * 1024 * 1024)

static unsigned char pattern_at(long i)
{
    return (unsigned char)(i * 7 + i / 4093);
}

/* The whole pattern in one mpm_response_send() from a heap block the
 * handler scribbles over and frees as soon as the call returns. */
static void send_pattern(mpm_request_t *req)
{
    unsigned char *body = malloc((size_t)PATTERN_LEN);
    if (!body) {
        mpm_response_set_status(req, 500);
        mpm_response_send(req, "no memory", 9);
        return;
    }
    for (long i = 0; i < PATTERN_LEN; i++)
        body[i] = pattern_at(i);
    mpm_response_send(req, body, (size_t)PATTERN_LEN);
    memset(body, 0xee, (size_t)PATTERN_LEN);
    free(body);
}

/* The same pattern streamed from one stack buffer, refilled after each
 * write (HTTP/1.0: the body runs until the close). */
static void stream_pattern(mpm_request_t *req)
{
    unsigned char piece[8192];
    for (long off = 0; off < PATTERN_LEN; off += (long)sizeof piece) {
        for (size_t i = 0; i < sizeof piece; i++)
            piece[i] = pattern_at(off + (long)i);
        if (mpm_response_write(req, piece, sizeof piece) != 0)
            return;
        memset(piece, 0xee, sizeof piece);
    }
    mpm_response_end(req);
}

/* /big: the big file by sendfile; /flood: as much by writes;
 * /mask: the serving thread's SIGPIPE state; the rest: th_handler. */
static void robust_handler(mpm_request_t *req, void *data)
{
    const char *path = mpm_request_path(req);
    if (strcmp(path, "/big") == 0) {
        int fd = open(big_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            mpm_response_set_status(req, 500);
            mpm_response_send(req, "no file", 7);
            return;
        }
        mpm_response_send_file(req, fd, 0, (size_t)BIG_LEN);
        close(fd);
    } else if (strcmp(path, "/flood") == 0) {
        static const char block[65536];
        for (long sent = 0; sent < BIG_LEN; sent += (long)sizeof block)
            if (mpm_response_write(req, block, sizeof block) != 0)
                return;
        mpm_response_end(req);
    } else if (strcmp(path, "/pattern") == 0) {
        send_pattern(req);
    } else if (strcmp(path, "/pattern-stream") == 0) {
        stream_pattern(req);
    } else if (strcmp(path, "/mask") == 0) {
        sigset_t cur, pending;
        pthread_sigmask(SIG_SETMASK, NULL, &cur);
        sigpending(&pending);
        char out[64];
        int n = snprintf(out, sizeof out, "blocked=%d pending=%d", sigismember(&cur, SIGPIPE),
                         sigismember(&pending, SIGPIPE));
        mpm_response_send(req, out, (size_t)n);
    } else {
        th_handler(req, data);
    }
}

static th_server_t *start_robust(th_fixture_t *fx, const char *const *dirs)
{
    th_server_t *s = th_new_server(fx);
    for (size_t i = 0; dirs && dirs[i]; i += 2)
        if (th_server_set(s, dirs[i], dirs[i + 1]) != 0)
            fail_msg("config: %s", s->errmsg);
    mpm_config_set_handler(th_server_config(s), robust_handler, s);
    if (th_server_start(s) != 0)
        fail_msg("start: %s", s->errmsg);
    return s;
}

static char *get_body(int port, const char *target)
{
    char raw[256];
    tc_response_t r;
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target);
    th_request(port, raw, &r);
    assert_int_equal(r.status, 200);
    char *body = strdup(r.body);
    tc_response_free(&r);
    return body;
}

/* ---- SIGPIPE from sendfile ---- */

/* Asks for target, half-closes, reads 64 KiB and resets: the server's next
 * sendfile() meets EPIPE. Returns once the server has closed its side
 * (a fresh connection answers then). */
static void reset_midway(int port, const char *target)
{
    tc_conn_t c;
    assert_int_equal(tc_connect(&c, port, TC_DEFAULT_TIMEOUT_MS), TC_OK);
    char raw[256];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    assert_int_equal(tc_send_str(&c, raw), TC_OK);
    assert_int_equal(shutdown(c.fd, SHUT_WR), 0);
    char buf[16384];
    size_t got = 0;
    while (got < 65536) {
        if (!tc_readable(&c, TC_DEFAULT_TIMEOUT_MS))
            fail_msg("no response body after %zu bytes", got);
        ssize_t n = read(c.fd, buf, sizeof buf);
        if (n <= 0)
            fail_msg("the response ended after %zu bytes", got);
        got += (size_t)n;
    }
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
    tc_close(&c);
}

/* One-process: this test program is the host. SIGPIPE's default action
 * would kill it; it must survive, keep serving, and the serving thread's
 * signal mask and pending set must be as before. ThreadsPerChild=1 so that
 * the same worker thread answers /mask. */
static void sendfile_reset_does_not_kill_host(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"ThreadsPerChild",
                                "1",
                                "MinSpareThreads",
                                "1",
                                "MaxSpareThreads",
                                "2",
                                "Timeout",
                                "5",
                                NULL};
    int port = start_robust(fx, dirs)->port;
    char *before = get_body(port, "/mask");
    for (int i = 0; i < 3; i++)
        reset_midway(port, "/big");
    char *after = get_body(port, "/mask");
    assert_string_equal(after, before);
    assert_non_null(strstr(after, "pending=0"));
    free(before);
    free(after);
    th_expect_serving(port);
}

static int pid_of_server(int port)
{
    char *body = get_body(port, "/pid");
    int pid = atoi(body);
    free(body);
    return pid;
}

/* Multi-process: the child that served the reset survives (the same pid
 * answers afterwards: one child only). */
static void sendfile_reset_does_not_kill_child(void **state)
{
    th_fixture_t *fx = *state;
    if (strcmp(fx->strategy, "event") == 0 && !th_strategy_built("event"))
        skip();
    const char *const args[] = {"--mpm",
                                fx->strategy,
                                "--listen",
                                "127.0.0.1:0",
                                "--root",
                                big_dir,
                                "--test-routes",
                                "--set",
                                "ServerLimit=1",
                                "--set",
                                "StartServers=1",
                                "--set",
                                "MaxRequestWorkers=1",
                                "--set",
                                "ThreadsPerChild=1",
                                "--set",
                                "MinSpareThreads=1",
                                "--set",
                                "MaxSpareThreads=2",
                                "--set",
                                "MinSpareServers=1",
                                "--set",
                                "MaxSpareServers=1",
                                "--set",
                                "Timeout=5",
                                NULL};
    int port = th_start_mpmserve(fx, args)->port;
    int pid = pid_of_server(port);
    for (int i = 0; i < 3; i++)
        reset_midway(port, "/files/big.bin");
    assert_int_equal(pid_of_server(port), pid);
    assert_int_equal(kill(pid, 0), 0);
}

/* ---- a declared body is not an allocation ---- */

static long vm_data_kb(void)
{
    return tp_status_number("/proc/self/status", "VmData");
}

static int handler_called(void *arg)
{
    return atomic_load(&((th_server_t *)arg)->handler_calls) > 0;
}

/* 900 MB declared, 10 bytes sent: mpm_request_read_body() must not reserve
 * the declared size up front (this process is the server). */
static void read_body_grows_with_the_bytes(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    th_expect_serving(s->port); /* the serving threads (and their stacks) exist */
    long before = vm_data_kb();
    assert_true(before > 0);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 900000000\r\n\r\n"
               "0123456789");
    assert_true(th_wait_for(handler_called, s, TC_DEFAULT_TIMEOUT_MS));
    /* The old code allocated right after the handler began: give it time. */
    int64_t until = tc_now_ms() + 500;
    long peak = before;
    while (tc_now_ms() < until) {
        long now = vm_data_kb();
        peak = now > peak ? now : peak;
        tc_readable(c, 20);
    }
    /* Slack for thread arenas; the declared size is 880000 kB. */
    if (peak - before > 300 * 1024)
        fail_msg("VmData grew by %ld kB for a 10-byte body", peak - before);
    th_disconnect(c);
    th_expect_serving(s->port);
}

/* ---- Timeout on writes ---- */

/* A client asks for a large response and never reads. Prefork in one
 * process has one serving unit: the next client is answered only once the
 * stalled one is given up, which must happen after Timeout (1 s), not
 * never. */
static void stalled_reader_released_after_timeout(const char *target, th_fixture_t *fx)
{
    const char *const dirs[] = {"Timeout", "1", NULL};
    int port = start_robust(fx, dirs)->port;
    tc_conn_t *stalled = th_connect(fx, port);
    char raw[128];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    th_send(stalled, raw);
    assert_true(tc_readable(stalled, TC_DEFAULT_TIMEOUT_MS)); /* it began */
    int64_t start = tc_now_ms();
    tc_response_t r;
    int rc = tc_exchange(port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r, 8000);
    int status = r.status;
    tc_response_free(&r);
    int64_t took = tc_now_ms() - start;
    if (rc != TC_OK)
        fail_msg("the next client got %s after %lld ms: the stalled one still holds the unit",
                 tc_result_name(rc), (long long)took);
    assert_int_equal(status, 200);
    if (strcmp(fx->strategy, "prefork") == 0 && took < 500)
        fail_msg("answered after %lld ms: the stalled response was not stalled", (long long)took);
    size_t extra = 0;
    rc = tc_wait_close(stalled, TC_DEFAULT_TIMEOUT_MS, &extra);
    if (rc != TC_CLOSED && rc != TC_RESET)
        fail_msg("the stalled connection is still open (%s)", tc_result_name(rc));
    if (extra >= (size_t)BIG_LEN)
        fail_msg("the whole response arrived: nothing was stalled");
}

static void stalled_sendfile_released_after_timeout(void **state)
{
    th_fixture_t *fx = *state;
    if (strcmp(fx->strategy, "prefork") != 0)
        skip(); /* one unit only in prefork's one-process mode */
    stalled_reader_released_after_timeout("/big", fx);
}

static void stalled_stream_released_after_timeout(void **state)
{
    th_fixture_t *fx = *state;
    if (strcmp(fx->strategy, "prefork") != 0)
        skip();
    stalled_reader_released_after_timeout("/flood", fx);
}

/* Reads the response to `raw` slowly (64 KiB at most, then a 5 ms pause:
 * at least 1.9 s for the pattern), checking every body byte against it.
 * Slow, but each pause is far shorter than Timeout: the socket keeps
 * taking bytes. Returns the body bytes read; the response must end
 * (length or close) intact. */
static long read_pattern_slowly(th_fixture_t *fx, int port, const char *raw)
{
    tc_conn_t *c = th_connect(fx, port);
    th_send(c, raw);
    static char buf[65536];
    char head[4096];
    size_t head_len = 0;
    long body = 0, expect = -1;
    struct timespec pause = {0, 5 * 1000 * 1000};
    for (;;) {
        if (!tc_readable(c, 10000))
            fail_msg("the response stalled after %ld body bytes", body);
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n < 0)
            fail_msg("read: %s after %ld body bytes", strerror(errno), body);
        if (n == 0)
            break;
        size_t at = 0;
        while (expect < 0 && at < (size_t)n) {
            assert_true(head_len < sizeof head - 1);
            head[head_len++] = buf[at++];
            head[head_len] = '\0';
            char *end = strstr(head, "\r\n\r\n");
            if (!end)
                continue;
            assert_non_null(strstr(head, " 200 "));
            char *cl = strstr(head, "Content-Length: ");
            expect = cl ? atol(cl + 16) : PATTERN_LEN;
        }
        for (; at < (size_t)n; at++, body++)
            if ((unsigned char)buf[at] != pattern_at(body))
                fail_msg("body byte %ld is %u, not %u", body, (unsigned char)buf[at],
                         pattern_at(body));
        if (expect >= 0 && body >= expect)
            break;
        nanosleep(&pause, NULL);
    }
    assert_int_equal(body, PATTERN_LEN);
    th_disconnect(c);
    return body;
}

/* A reader slower than the server, for longer than Timeout in all: the
 * whole response arrives intact, both from one big buffer and streamed
 * from a reused one. Timeout bounds a stall (no byte taken), not the
 * response. */
static void slow_reader_gets_whole_response(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"Timeout", "1", NULL};
    int port = start_robust(fx, dirs)->port;
    int64_t start = tc_now_ms();
    read_pattern_slowly(fx, port, "GET /pattern HTTP/1.1\r\nHost: t\r\n\r\n");
    int64_t took = tc_now_ms() - start;
    if (took < 1200)
        fail_msg("read in %lld ms: not slower than Timeout, proves nothing", (long long)took);
    read_pattern_slowly(fx, port, "GET /pattern-stream HTTP/1.0\r\nHost: t\r\n\r\n");
    th_expect_serving(port);
}

static int access_logged(void *arg)
{
    return th_server_access_count(arg) > 0;
}

/* A client that reads nothing of a large response: the server gives up at
 * Timeout (1 s) after the socket stopped taking bytes, with every
 * strategy (the handler's call returns, so its access-log entry comes). */
static void non_reader_closed_at_timeout(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"Timeout", "1", NULL};
    th_server_t *s = start_robust(fx, dirs);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "GET /pattern HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(tc_readable(c, TC_DEFAULT_TIMEOUT_MS)); /* it began */
    int64_t start = tc_now_ms();
    if (!th_wait_for(access_logged, s, 8000))
        fail_msg("the response to a client that reads nothing still runs after 8 s");
    int64_t took = tc_now_ms() - start;
    if (took < 700)
        fail_msg("given up after %lld ms, before Timeout (1 s)", (long long)took);
    th_access_t e = th_server_access_at(s, 0);
    assert_string_equal(e.target, "/pattern");
    th_expect_serving(s->port);
}

/* ---- GracefulShutdownTimeout ---- */

static int64_t stop_and_time_run(th_server_t *s, int limit_ms)
{
    int64_t start = tc_now_ms();
    assert_int_equal(mpm_server_stop(s->srv, 1), 0);
    if (!th_server_wait_run(s, limit_ms))
        fail_msg("run() still running %d ms after a graceful stop bounded at 1 s", limit_ms);
    return tc_now_ms() - start;
}

/* One process, worker: a handler that sleeps 6 s is abandoned at the bound.
 * run() returns soon after it, the client sees its connection closed; the
 * thread finishes on its own and mpm_server_free() (in teardown) waits for
 * it. Prefork runs the handler on run()'s own thread: it cannot return
 * before the handler does, so only the I/O case below applies to it. */
static void graceful_bound_abandons_hung_handler(void **state)
{
    th_fixture_t *fx = *state;
    if (strcmp(fx->strategy, "prefork") == 0)
        skip();
    const char *const dirs[] = {"GracefulShutdownTimeout", "1", NULL};
    th_server_t *s = th_start_server(fx, dirs);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "GET /sleep?ms=6000 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(th_wait_for(handler_called, s, TC_DEFAULT_TIMEOUT_MS));
    int64_t took = stop_and_time_run(s, 4500);
    if (took < 700)
        fail_msg("run() returned after %lld ms, before the bound", (long long)took);
    /* The connection was shut down at the bound: not left waiting for a
     * response that can no longer come. */
    int64_t start = tc_now_ms();
    int rc = tc_wait_close(c, 3000, NULL);
    if (rc != TC_CLOSED && rc != TC_RESET)
        fail_msg("the abandoned connection is still open (%s)", tc_result_name(rc));
    assert_true(tc_now_ms() - start < 3000);
}

/* Both strategies: a connection stuck in the library's own I/O (a client
 * that stops reading, Timeout 60 s) does not hold a graceful stop past the
 * bound. */
static void graceful_bound_ends_stalled_io(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"GracefulShutdownTimeout", "1", "Timeout", "60", NULL};
    th_server_t *s = start_robust(fx, dirs);
    tc_conn_t *stalled = th_connect(fx, s->port);
    th_send(stalled, "GET /flood HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(tc_readable(stalled, TC_DEFAULT_TIMEOUT_MS));
    int64_t took = stop_and_time_run(s, 4500);
    if (took < 700)
        fail_msg("run() returned after %lld ms, before the bound", (long long)took);
}

/* ---- GracefulShutdownTimeout with a master ---- */

static th_process_t *start_bounded_mpmserve(th_fixture_t *fx)
{
    if (strcmp(fx->strategy, "event") == 0 && !th_strategy_built("event"))
        skip();
    const char *const args[] = {"--mpm",
                                fx->strategy,
                                "--listen",
                                "127.0.0.1:0",
                                "--test-routes",
                                "--set",
                                "GracefulShutdownTimeout=1",
                                NULL};
    return th_start_mpmserve(fx, args);
}

/* A kept-alive connection whose second request hangs in its handler for a
 * minute. Returns the pid of the process serving it. */
static int hang_a_handler(th_fixture_t *fx, int port)
{
    tc_conn_t *c = th_connect(fx, port);
    tc_response_t r;
    th_send(c, "GET /pid HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    int pid = atoi(r.body);
    tc_response_free(&r);
    th_send(c, "GET /hang?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_false(tc_readable(c, 300)); /* it is sleeping, not answered */
    return pid;
}

static int process_gone(void *arg)
{
    tp_stat_t st;
    return tp_stat(*(pid_t *)arg, &st) != 0 || st.state == 'Z';
}

/* SIGWINCH: the master exits within the bound plus its SIGTERM-to-SIGKILL
 * grace (3 s), not after the minute the handler wants. */
static void graceful_stop_bounded_with_master(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = start_bounded_mpmserve(fx);
    pid_t child = hang_a_handler(fx, p->port);
    int64_t start = tc_now_ms();
    int rc = th_process_stop(p, SIGWINCH, 9000);
    int64_t took = tc_now_ms() - start;
    if (rc != 0)
        fail_msg("the master was still running %lld ms after SIGWINCH", (long long)took);
    assert_true(WIFEXITED(p->status));
    assert_true(th_wait_for(process_gone, &child, 5000));
}

/* SIGUSR1: the old child serving the hung handler is gone within the bound
 * plus the grace; the new generation serves. */
static void graceful_restart_bounded_with_master(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = start_bounded_mpmserve(fx);
    pid_t child = hang_a_handler(fx, p->port);
    int64_t start = tc_now_ms();
    assert_int_equal(kill(p->pid, SIGUSR1), 0);
    if (!th_wait_for(process_gone, &child, 9000))
        fail_msg("the old child %d still runs %lld ms after a graceful restart", (int)child,
                 (long long)(tc_now_ms() - start));
    th_expect_serving(p->port);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_MATRIX(sendfile_reset_does_not_kill_host),
        TH_MATRIX(sendfile_reset_does_not_kill_child),
        TH_MATRIX(read_body_grows_with_the_bytes),
        TH_MATRIX(stalled_sendfile_released_after_timeout),
        TH_MATRIX(stalled_stream_released_after_timeout),
        TH_MATRIX(slow_reader_gets_whole_response),
        TH_MATRIX(non_reader_closed_at_timeout),
        TH_MATRIX(graceful_bound_abandons_hung_handler),
        TH_MATRIX(graceful_bound_ends_stalled_io),
        TH_MATRIX(graceful_stop_bounded_with_master),
        TH_MATRIX(graceful_restart_bounded_with_master),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
