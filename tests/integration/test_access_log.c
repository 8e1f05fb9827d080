/* The access log as a host sees it: one entry per response the library
 * sends (the handler's and its own answers), with the peer taken when the
 * connection was accepted, microsecond durations and request ids that match
 * what the handler saw; and whole Combined lines from mpmserve
 * --access-log in multi-process mode. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "harness.h"

/* ---- a recording access-log callback (in-process servers) ---- */

#define MAX_ENTRIES 256

typedef struct entry {
    char remote[64];
    int remote_port;
    int has_method;
    char method[16];
    char target[128];
    int status;
    uint64_t bytes, duration_us, id;
    int64_t time_us;
    char referer[64], user_agent[64];
} entry_t;

static struct {
    pthread_mutex_t lock;
    entry_t e[MAX_ENTRIES];
    size_t n;
} rec = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void copy_str(char *dst, size_t len, const char *s)
{
    snprintf(dst, len, "%s", s ? s : "(null)");
}

static void on_access(const mpm_access_entry_t *e, void *data)
{
    (void)data;
    pthread_mutex_lock(&rec.lock);
    if (rec.n < MAX_ENTRIES && e->size >= sizeof(*e)) {
        entry_t *r = &rec.e[rec.n++];
        copy_str(r->remote, sizeof r->remote, e->remote_addr);
        r->remote_port = e->remote_port;
        r->has_method = e->method != NULL;
        copy_str(r->method, sizeof r->method, e->method);
        copy_str(r->target, sizeof r->target, e->target);
        r->status = e->status;
        r->bytes = e->bytes_sent;
        r->duration_us = e->duration_us;
        r->id = e->request_id;
        r->time_us = e->time_us;
        copy_str(r->referer, sizeof r->referer, e->referer);
        copy_str(r->user_agent, sizeof r->user_agent, e->user_agent);
    }
    pthread_mutex_unlock(&rec.lock);
}

static size_t rec_count(void)
{
    pthread_mutex_lock(&rec.lock);
    size_t n = rec.n;
    pthread_mutex_unlock(&rec.lock);
    return n;
}

static entry_t rec_at(size_t i)
{
    pthread_mutex_lock(&rec.lock);
    entry_t e = rec.e[i];
    pthread_mutex_unlock(&rec.lock);
    return e;
}

/* The entry with this request id: entries arrive in the order responses
 * finish, which under worker need not be the order the client read them. */
static entry_t rec_by_id(uint64_t id)
{
    for (size_t i = 0; i < rec_count(); i++) {
        entry_t e = rec_at(i);
        if (e.id == id)
            return e;
    }
    fail_msg("no access-log entry with request id %llu", (unsigned long long)id);
    return (entry_t){0};
}

static int rec_has(void *arg)
{
    return rec_count() >= *(size_t *)arg;
}

/* Waits until n entries were logged (the line is written after the
 * response went out, so the client may see the response first). */
static void wait_entries(size_t n)
{
    assert_true(th_wait_for(rec_has, &n, 10000));
}

/* /id answers the request id the handler sees; the rest is the harness's. */
static void id_handler(mpm_request_t *req, void *data)
{
    if (strcmp(mpm_request_path(req), "/id") == 0) {
        char body[32];
        snprintf(body, sizeof body, "%llu", (unsigned long long)mpm_request_id(req));
        mpm_response_send(req, body, strlen(body));
        return;
    }
    th_handler(req, data);
}

/* A server of the case's strategy with the recorder and the /id route. */
static th_server_t *start_logged(th_fixture_t *fx, const char *const *dirs)
{
    pthread_mutex_lock(&rec.lock);
    rec.n = 0;
    pthread_mutex_unlock(&rec.lock);
    th_server_t *s = th_new_server(fx);
    for (size_t i = 0; dirs && dirs[i]; i += 2)
        assert_int_equal(th_server_set(s, dirs[i], dirs[i + 1]), 0);
    mpm_config_set_access_log_cb(th_server_config(s), on_access, NULL);
    mpm_config_set_handler(th_server_config(s), id_handler, s);
    assert_int_equal(th_server_start(s), 0);
    return s;
}

/* The client side's port of a connection: what the server must log. */
static int local_port_of(const tc_conn_t *c)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(c->fd, (struct sockaddr *)&sa, &sl), 0);
    return ntohs(sa.sin_port);
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- in-process cases ---- */

static void head_timeout_logged_with_real_peer(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"RequestReadTimeout", "header=1", NULL};
    th_server_t *s = start_logged(fx, dirs);
    tc_conn_t *c = th_connect(fx, s->port);
    int port = local_port_of(c);
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\n"); /* never finished */
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 408);
    size_t body_len = r.body_len;
    tc_response_free(&r);
    wait_entries(1);
    entry_t e = rec_at(0);
    assert_int_equal(e.status, 408);
    assert_string_equal(e.remote, "127.0.0.1");
    assert_int_equal(e.remote_port, port);
    assert_false(e.has_method); /* no complete request line to name */
    assert_int_equal(e.bytes, body_len);
    assert_true(e.id > 0);
    /* Timed from the accept: about the 1 s header timeout, in µs. */
    assert_true(e.duration_us >= 500000);
    assert_true(e.duration_us < 30000000);
}

static void rejected_heads_are_logged(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"LimitRequestLine", "200", NULL};
    th_server_t *s = start_logged(fx, dirs);
    static const struct {
        const char *raw;
        int status;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n", 400},
        {"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: t\r\n\r\n",
         414},
        {"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        tc_conn_t *c = th_connect(fx, s->port);
        int port = local_port_of(c);
        th_send(c, cases[i].raw);
        tc_response_t r;
        th_read(c, &r, 0);
        assert_int_equal(r.status, cases[i].status);
        tc_response_free(&r);
        wait_entries(i + 1);
        entry_t e = rec_at(i);
        assert_int_equal(e.status, cases[i].status);
        assert_string_equal(e.remote, "127.0.0.1");
        assert_int_equal(e.remote_port, port);
        assert_false(e.has_method);
        assert_true(e.id > 0);
        assert_true(e.time_us > 0);
    }
}

static void body_too_large_is_logged(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"LimitRequestBody", "10", NULL};
    th_server_t *s = start_logged(fx, dirs);
    tc_conn_t *c = th_connect(fx, s->port);
    int port = local_port_of(c);
    th_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 413);
    tc_response_free(&r);
    wait_entries(1);
    entry_t e = rec_at(0);
    assert_int_equal(e.status, 413);
    assert_string_equal(e.remote, "127.0.0.1");
    assert_int_equal(e.remote_port, port);
}

static int handler_entered(void *arg)
{
    return atomic_load(&((th_server_t *)arg)->handler_calls) > 0;
}

/* A client that resets while its request runs: the peer was taken at
 * accept, so the log still names it. */
static void reset_client_keeps_its_address(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start_logged(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    int port = local_port_of(c);
    th_send(c, "GET /sleep?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(th_wait_for(handler_entered, s, 10000));
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
    th_disconnect(c); /* RST while the handler sleeps */
    wait_entries(1);
    entry_t e = rec_at(0);
    assert_string_equal(e.target, "/sleep?ms=300");
    assert_string_equal(e.remote, "127.0.0.1");
    assert_int_equal(e.remote_port, port);
}

/* The entry for target t (fails the case if none). */
static entry_t entry_for(const char *target)
{
    for (size_t i = 0; i < rec_count(); i++) {
        entry_t e = rec_at(i);
        if (strcmp(e.target, target) == 0)
            return e;
    }
    fail_msg("no access-log entry for %s", target);
    return rec_at(0);
}

/* A client that sends its request and resets before any unit took its
 * connection (the only one is busy): the peer's address came with the
 * accept, so its entry names it although getpeername() no longer could. */
static void reset_before_serving_keeps_its_address(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"ThreadsPerChild", "1", NULL};
    th_server_t *s = start_logged(fx, dirs);
    tc_conn_t *busy = th_connect(fx, s->port);
    th_send(busy, "GET /sleep?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(th_wait_for(handler_entered, s, 10000));
    tc_conn_t *c = th_connect(fx, s->port);
    int port = local_port_of(c);
    th_send(c, "GET /id HTTP/1.1\r\nHost: t\r\n\r\n");
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
    th_disconnect(c); /* RST while it waits in the backlog */
    wait_entries(2);
    entry_t e = entry_for("/id");
    assert_string_equal(e.remote, "127.0.0.1");
    assert_int_equal(e.remote_port, port);
}

static void durations_are_microseconds(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start_logged(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "GET /sleep?ms=20 HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    enum { FAST = 20 };
    for (int i = 0; i < FAST; i++) {
        th_send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        th_read(c, &r, 0);
        assert_int_equal(r.status, 200);
        tc_response_free(&r);
    }
    wait_entries(1 + FAST);
    entry_t slow = rec_at(0);
    assert_string_equal(slow.target, "/sleep?ms=20");
    assert_true(slow.duration_us >= 20000);
    assert_true(slow.duration_us < 20000000);
    /* Milliseconds times 1000 would make every fast request 0 or a
     * multiple of 1000: microseconds cannot all be. */
    int fine = 0;
    for (int i = 1; i <= FAST; i++) {
        entry_t e = rec_at((size_t)i);
        fine += e.duration_us > 0 && e.duration_us % 1000 != 0;
    }
    assert_true(fine > 0);
}

/* Ids are distinct and the ones the handler saw; the other new fields
 * (port, wall-clock time, Referer, User-Agent) are filled. */
static void ids_and_fields_match_the_handler(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start_logged(fx, NULL);
    enum { N = 8 };
    uint64_t seen[N];
    int ports[N];
    int64_t before = wall_us();
    for (int i = 0; i < N; i++) {
        tc_conn_t *c = th_connect(fx, s->port);
        ports[i] = local_port_of(c);
        th_send(c, "GET /id HTTP/1.1\r\nHost: t\r\nReferer: http://ref.test/x\r\n"
                   "User-Agent: tester/1.0\r\n\r\n");
        tc_response_t r;
        th_read(c, &r, 0);
        assert_int_equal(r.status, 200);
        seen[i] = strtoull(r.body, NULL, 10);
        tc_response_free(&r);
        th_disconnect(c);
    }
    wait_entries(N);
    int64_t after = wall_us();
    for (int i = 0; i < N; i++) {
        assert_true(seen[i] > 0);
        for (int j = 0; j < i; j++)
            assert_true(seen[i] != seen[j]);
        entry_t e = rec_by_id(seen[i]);
        assert_string_equal(e.target, "/id");
        assert_int_equal(e.remote_port, ports[i]);
        assert_string_equal(e.referer, "http://ref.test/x");
        assert_string_equal(e.user_agent, "tester/1.0");
        assert_true(e.time_us >= before - 1000000 && e.time_us <= after + 1000000);
    }
}

/* ---- multi-process ---- */

/* Ids stay unique when several children serve: two kept-alive connections
 * hold two serving units (two prefork children). */
static void ids_unique_across_processes(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx);
    mpm_config_set_handler(th_server_config(s), id_handler, s);
    assert_int_equal(th_server_start(s), 0);
    tc_conn_t *a = th_connect(fx, s->port), *b = th_connect(fx, s->port);
    enum { ROUNDS = 10 };
    uint64_t ids[2 * ROUNDS];
    size_t n = 0;
    for (int i = 0; i < ROUNDS; i++) {
        tc_conn_t *cs[2] = {a, b};
        for (int k = 0; k < 2; k++) {
            tc_response_t r;
            th_send(cs[k], "GET /id HTTP/1.1\r\nHost: t\r\n\r\n");
            th_read(cs[k], &r, 0);
            assert_int_equal(r.status, 200);
            ids[n++] = strtoull(r.body, NULL, 10);
            tc_response_free(&r);
        }
    }
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] > 0);
        for (size_t j = 0; j < i; j++)
            assert_true(ids[i] != ids[j]);
    }
}

static char *read_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len)) > 0) {
        len += (size_t)n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
    }
    close(fd);
    buf[len] = '\0';
    return buf;
}

/* One Combined line: the status after the quoted request line, and the
 * Referer/User-Agent pair at the end. Returns the status or -1. */
static int combined_status(const char *line)
{
    const char *req = strstr(line, " \"");
    if (strncmp(line, "127.0.0.1 - - [", 15) != 0 || !req)
        return -1;
    const char *end = strstr(req + 2, "\" ");
    int status = end ? atoi(end + 2) : -1;
    size_t len = strlen(line);
    if (len < 2 || line[len - 1] != '"')
        return -1;
    return status;
}

static void mpmserve_access_log_file(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    char path[] = "/tmp/mpm-access-log.XXXXXX";
    int tfd = mkstemp(path);
    assert_true(tfd >= 0);
    close(tfd);
    const char *args[] = {"--mpm", fx->strategy, "--listen",       "127.0.0.1:0", "--access-log",
                          path,    "--set",      "StartServers=2", NULL};
    th_process_t *p = th_start_mpmserve(fx, args);
    /* Several connections at once, each several requests, plus answers the
     * library itself sends (a bad head, a missing route). */
    enum { CONNS = 4, PER = 5 };
    tc_conn_t *cs[CONNS];
    for (int i = 0; i < CONNS; i++)
        cs[i] = th_connect(fx, p->port);
    for (int k = 0; k < PER; k++) {
        for (int i = 0; i < CONNS; i++) {
            tc_response_t r;
            th_send(cs[i], k == PER - 1 ? "GET /nothing-here HTTP/1.1\r\nHost: t\r\n\r\n"
                                        : "GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: ua\r\n\r\n");
            th_read(cs[i], &r, 0);
            assert_int_equal(r.status, k == PER - 1 ? 404 : 200);
            tc_response_free(&r);
        }
    }
    tc_response_t r;
    th_request(p->port, "GET / HTTP/1.1\r\nHost: t\r\nbad header line\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    tc_response_free(&r);
    /* A line longer than mpmserve's first buffer (a long User-Agent) is
     * still written whole. */
    static char long_ua[3001], raw[3200];
    memset(long_ua, 'u', sizeof long_ua - 1);
    snprintf(raw, sizeof raw, "GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: %s\r\n\r\n", long_ua);
    th_request(p->port, raw, &r);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    for (int i = 0; i < CONNS; i++)
        th_disconnect(cs[i]);
    /* A graceful stop: every line written after its response is in. */
    assert_int_equal(th_process_stop(p, SIGWINCH, 30000), 0);

    char *text = read_file(path);
    unlink(path);
    if (!strstr(text, long_ua))
        fail_msg("the line with a %zu-byte User-Agent is missing or cut", strlen(long_ua));
    int n200 = 0, n404 = 0, n400 = 0, lines = 0;
    char *save = NULL;
    size_t total = strlen(text);
    assert_true(total > 0 && text[total - 1] == '\n'); /* only whole lines */
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lines++;
        int st = combined_status(line);
        if (st < 0)
            fail_msg("not a Combined line: %s", line);
        n200 += st == 200;
        n404 += st == 404;
        n400 += st == 400;
        if (st == 400)
            assert_non_null(strstr(line, "\"-\" 400 ")); /* no request line */
    }
    free(text);
    assert_int_equal(lines, CONNS * PER + 2);
    assert_int_equal(n200, CONNS * (PER - 1) + 1);
    assert_int_equal(n404, CONNS);
    assert_int_equal(n400, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_MATRIX(head_timeout_logged_with_real_peer),
        TH_MATRIX(rejected_heads_are_logged),
        TH_MATRIX(body_too_large_is_logged),
        TH_MATRIX(reset_client_keeps_its_address),
        TH_MATRIX(reset_before_serving_keeps_its_address),
        TH_MATRIX(durations_are_microseconds),
        TH_MATRIX(ids_and_fields_match_the_handler),
        TH_CASE(ids_unique_across_processes, "prefork-mp"),
        TH_CASE(ids_unique_across_processes, "worker-mp"),
        TH_CASE(mpmserve_access_log_file, "prefork"),
        TH_CASE(mpmserve_access_log_file, "worker"),
        TH_CASE(mpmserve_access_log_file, "event"),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
