/* What a host program needs from the API, driven as a host drives it: an
 * admin route that stops or restarts the whole server from inside a handler,
 * a long handler that polls for draining, listeners that close when run()
 * returns, hooks that know their server, slot and thread (and per-thread
 * data for the requests), and the small promises: a failing child init
 * reported as such, the same stats after run() in every strategy, the spare
 * pool's size logged. In one process and with a master (the "-mp" cases). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define RUN_BOUND_MS 30000
/* How long /drain waits for the server to say it is draining (under the
 * client's read bound, so a broken flag shows as "never drained"): long enough
 * for a loaded box, short enough that a broken draining flag fails fast. */
#define DRAIN_BOUND_MS 8000

/* What handlers and hooks report, from every process of a server: a page
 * mapped MAP_SHARED before any fork. */
typedef struct host_shared {
    atomic_int drain_entered;   /* /drain requests inside the handler */
    atomic_int thread_inits;    /* _ex thread init calls that stored data */
    atomic_int thread_exits_with_data; /* _ex thread exit calls that got it back */
    atomic_int child_inits;     /* _ex child init calls with a sane context */
    atomic_int bad_context;     /* a hook or handler saw a wrong context */
} host_shared_t;

static host_shared_t *shared;

static void reply(mpm_request_t *req, int status, const char *fmt, ...)
{
    char body[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    mpm_response_set_status(req, status);
    mpm_response_send(req, body, strlen(body));
}

static void nap_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Loops until the server drains (bounded), as a long-running handler would;
 * with ?self=1 it asks for the graceful stop itself first. */
static void route_drain(mpm_request_t *req)
{
    if (strcmp(mpm_request_query(req), "self=1") == 0)
        mpm_server_stop(mpm_request_server(req), 1);
    atomic_fetch_add(&shared->drain_entered, 1);
    for (int waited = 0; waited < DRAIN_BOUND_MS; waited += 10) {
        if (mpm_request_server_draining(req)) {
            reply(req, 200, "drained");
            return;
        }
        nap_ms(10);
    }
    reply(req, 200, "never drained");
}

/* Per-thread data as the _ex thread init hook stores it. */
typedef struct thread_note {
    mpm_server_t *server;
    unsigned slot, thread_index;
    pid_t pid;
} thread_note_t;

static void route_thread(mpm_request_t *req)
{
    /* "?hold" keeps the thread a moment, so that requests sent together
     * need several threads, and in multi-process mode several children. */
    const char *query = mpm_request_query(req);
    if (query && strcmp(query, "hold") == 0)
        nanosleep(&(struct timespec){.tv_nsec = 150 * 1000 * 1000}, NULL);
    thread_note_t *note = mpm_request_thread_data(req);
    if (!note) {
        reply(req, 200, "none");
        return;
    }
    int same_server = note->server == mpm_request_server(req) && note->pid == getpid();
    reply(req, 200, "slot=%u thread=%u pid=%d same=%d", note->slot, note->thread_index,
          (int)note->pid, same_server);
}

static const char *rc_name(int rc)
{
    return rc == 0 ? "OK" : mpm_err_name(rc);
}

static void host_handler(mpm_request_t *req, void *data)
{
    (void)data;
    const char *path = mpm_request_path(req);
    mpm_server_t *srv = mpm_request_server(req);
    if (strcmp(path, "/admin/stop") == 0)
        reply(req, 200, "stop: %s", rc_name(mpm_server_stop(srv, 1)));
    else if (strcmp(path, "/admin/stop-now") == 0)
        reply(req, 200, "stop: %s", rc_name(mpm_server_stop(srv, 0)));
    else if (strcmp(path, "/admin/restart") == 0)
        reply(req, 200, "restart: %s", rc_name(mpm_server_restart(srv, 1)));
    else if (strcmp(path, "/drain") == 0)
        route_drain(req);
    else if (strcmp(path, "/thread") == 0)
        route_thread(req);
    else
        reply(req, 200, "hello");
}

/* ---- hooks with context ---- */

static int child_init_ex(mpm_hook_ctx_t *ctx, void *data)
{
    th_server_t *s = data;
    pthread_mutex_init(&s->lock, NULL); /* as the harness's own child hook does */
    if (ctx->size < sizeof(*ctx) || !ctx->server || ctx->thread_index != 0)
        atomic_fetch_add(&shared->bad_context, 1);
    else
        atomic_fetch_add(&shared->child_inits, 1);
    return 0;
}

static int thread_init_ex(mpm_hook_ctx_t *ctx, void *data)
{
    (void)data;
    thread_note_t *note = malloc(sizeof(*note));
    if (!note)
        return -1;
    *note = (thread_note_t){.server = ctx->server, .slot = ctx->slot,
                            .thread_index = ctx->thread_index, .pid = getpid()};
    ctx->thread_data = note;
    atomic_fetch_add(&shared->thread_inits, 1);
    return 0;
}

static void thread_exit_ex(mpm_hook_ctx_t *ctx, void *data)
{
    (void)data;
    thread_note_t *note = ctx->thread_data;
    if (note && note->thread_index == ctx->thread_index && note->slot == ctx->slot)
        atomic_fetch_add(&shared->thread_exits_with_data, 1);
    free(note);
}

/* ---- helpers ---- */

static void reset_shared(void)
{
    memset(shared, 0, sizeof(*shared));
}

/* A server of the case's strategy with the host handler; not started. */
static th_server_t *host_server(th_fixture_t *fx)
{
    reset_shared();
    th_server_t *s = th_new_server(fx);
    mpm_config_set_handler(th_server_config(s), host_handler, s);
    if (s->multi_process)
        mpm_config_set_child_hooks_ex(th_server_config(s), child_init_ex, NULL, s);
    return s;
}

static void start(th_server_t *s)
{
    if (th_server_start(s) != 0)
        fail_msg("start: %s", s->errmsg);
}

static mpm_stats_t stats(th_server_t *s)
{
    mpm_stats_t st = {.size = sizeof(st)};
    assert_int_equal(mpm_server_stats(s->srv, &st), 0);
    return st;
}

static void get(int port, const char *path, const char *want_body)
{
    char raw[256];
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    tc_response_t r;
    th_request(port, raw, &r);
    assert_int_equal(r.status, 200);
    if (want_body)
        assert_string_equal(r.body, want_body);
    tc_response_free(&r);
}

static int run_returned(th_server_t *s)
{
    if (!th_server_wait_run(s, RUN_BOUND_MS))
        return 0;
    if (s->run_rc != 0)
        fail_msg("run returned %s: %s", mpm_err_name(s->run_rc), mpm_server_errmsg(s->srv));
    return 1;
}

/* ---- stop and restart from a handler ---- */

static void handler_stops_the_whole_server(void **state)
{
    th_server_t *s = host_server(*state);
    start(s);
    get(s->port, "/", "hello");
    get(s->port, "/admin/stop", "stop: OK");
    /* The master's run() returns: the stop reached it, not just one child. */
    assert_true(run_returned(s));
    assert_int_equal(stats(s).processes, 0);
}

/* A hard stop from a handler: the response may or may not get out (every
 * connection closes now, this one too); the whole server stops. */
static void handler_stops_the_whole_server_now(void **state)
{
    th_server_t *s = host_server(*state);
    start(s);
    tc_response_t r;
    (void)tc_exchange(s->port, "GET /admin/stop-now HTTP/1.1\r\nHost: t\r\n\r\n", &r,
                      TC_DEFAULT_TIMEOUT_MS);
    tc_response_free(&r);
    assert_true(run_returned(s));
    assert_int_equal(stats(s).processes, 0);
}

static int generation_one(void *arg)
{
    return stats(arg).generation == 1;
}

static void handler_restarts_the_whole_server(void **state)
{
    th_server_t *s = host_server(*state);
    assert_int_equal(th_server_set(s, "LogLevel", "notice"), 0);
    start(s);
    get(s->port, "/admin/restart", "restart: OK");
    assert_true(th_wait_for(generation_one, s, RUN_BOUND_MS));
    get(s->port, "/", "hello");
    assert_true(th_server_log_contains(s, "asked for a graceful restart"));
    assert_int_equal(th_server_stop(s, 1), 0);
}

static void restart_is_not_supported_in_one_process(void **state)
{
    th_server_t *s = host_server(*state);
    start(s);
    get(s->port, "/admin/restart", "restart: ENOTSUP");
    assert_int_equal(th_server_stop(s, 1), 0);
}

/* ---- draining ---- */

static int drain_entered(void *arg)
{
    (void)arg;
    return atomic_load(&shared->drain_entered) > 0;
}

/* A handler polling mpm_request_server_draining() sees the graceful stop
 * the host asked for (the master's SIGWINCH does the same call) or that it
 * asked for itself. */
enum { HANDLER_STOPS, HOST_STOPS, SIGWINCH_STOPS };

static void draining_seen_by_handler(th_fixture_t *fx, const char *path, int how)
{
    th_server_t *s = host_server(fx);
    if (how == SIGWINCH_STOPS)
        assert_int_equal(th_server_set(s, "HandleSignals", "On"), 0);
    start(s);
    tc_conn_t *c = th_connect(fx, s->port);
    char raw[128];
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    th_send(c, raw);
    assert_true(th_wait_for(drain_entered, NULL, RUN_BOUND_MS));
    if (how == HOST_STOPS)
        assert_int_equal(mpm_server_stop(s->srv, 1), 0);
    else if (how == SIGWINCH_STOPS)
        assert_int_equal(kill(getpid(), SIGWINCH), 0); /* the master's graceful stop */
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "drained");
    tc_response_free(&r);
    assert_true(run_returned(s));
}

static void draining_after_host_stop(void **state)
{
    draining_seen_by_handler(*state, "/drain", HOST_STOPS);
}

static void draining_after_sigwinch(void **state)
{
    draining_seen_by_handler(*state, "/drain", SIGWINCH_STOPS);
}

static void draining_after_handler_stop(void **state)
{
    draining_seen_by_handler(*state, "/drain?self=1", HANDLER_STOPS);
}

/* ---- listeners close when run() returns ---- */

static int connect_refused(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int err = errno;
    close(fd);
    return rc != 0 && err == ECONNREFUSED;
}

static void listeners_closed_when_run_returns(th_fixture_t *fx, int graceful)
{
    th_server_t *s = host_server(fx);
    start(s);
    get(s->port, "/", "hello");
    assert_int_equal(mpm_server_stop(s->srv, graceful), 0);
    assert_true(run_returned(s));
    /* Not free()d yet: a new client is refused, not left in a backlog. */
    assert_true(connect_refused(s->port));
    assert_int_equal(mpm_server_port(s->srv, 0), s->port);
    /* A server runs once. */
    assert_int_equal(mpm_server_run(s->srv), MPM_ESTATE);
}

static void listeners_closed_after_stop(void **state)
{
    listeners_closed_when_run_returns(*state, 0);
}

static void listeners_closed_after_graceful_stop(void **state)
{
    listeners_closed_when_run_returns(*state, 1);
}

/* ---- hooks with context, per-thread data ---- */

/* Checks one /thread answer: the thread's data came from its own init
 * hook, and the slot is the serving process's row. Returns the slot. */
static unsigned check_thread_answer(th_server_t *s, const tc_response_t *r, unsigned threads)
{
    assert_int_equal(r->status, 200);
    unsigned slot, thread;
    int pid, same;
    if (sscanf(r->body, "slot=%u thread=%u pid=%d same=%d", &slot, &thread, &pid, &same) != 4)
        fail_msg("no thread data: '%s'", r->body);
    assert_int_equal(same, 1);
    assert_true(thread < threads);
    mpm_child_stats_t c = {.size = sizeof(c)};
    assert_int_equal(mpm_server_child_stats(s->srv, slot, &c), 0);
    assert_int_equal(c.pid, pid);
    if (!s->multi_process)
        assert_int_equal(pid, getpid());
    return slot;
}

#define HOLD_BATCH 12 /* three children's worth of 4 threads */

/* Sends HOLD_BATCH held requests at once; returns the highest slot seen. */
static unsigned thread_batch_highest_slot(th_fixture_t *fx, th_server_t *s, unsigned threads)
{
    tc_conn_t *conns[HOLD_BATCH];
    for (int i = 0; i < HOLD_BATCH; i++) {
        conns[i] = th_connect(fx, s->port);
        th_send(conns[i], "GET /thread?hold HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    unsigned highest = 0;
    for (int i = 0; i < HOLD_BATCH; i++) {
        tc_response_t r;
        th_read(conns[i], &r, 0);
        unsigned slot = check_thread_answer(s, &r, threads);
        highest = slot > highest ? slot : highest;
        tc_response_free(&r);
    }
    return highest;
}

static void thread_hooks_get_context_and_data(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = host_server(fx);
    mpm_config_t *cfg = th_server_config(s);
    assert_int_equal(mpm_config_set_thread_hooks_ex(cfg, thread_init_ex, thread_exit_ex, NULL), 0);
    assert_int_equal(th_server_set(s, "ThreadsPerChild", "4"), 0);
    start(s);
    unsigned threads = strcmp(s->strategy, "prefork") == 0 ? 1 : 4;
    for (int i = 0; i < 4; i++) {
        char raw[] = "GET /thread HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        tc_response_t r;
        th_request(s->port, raw, &r);
        check_thread_answer(s, &r, threads);
        tc_response_free(&r);
    }
    if (s->multi_process) {
        /* A child other than slot 0's must report its own slot: requests
         * held together outnumber one child's threads. */
        unsigned highest = 0;
        for (int round = 0; round < 5 && highest == 0; round++)
            highest = thread_batch_highest_slot(fx, s, threads);
        assert_true(highest > 0);
    }
    assert_int_equal(th_server_stop(s, 1), 0);
    assert_int_equal(atomic_load(&shared->bad_context), 0);
    /* Every thread's exit hook got back what its init hook stored. */
    assert_true(atomic_load(&shared->thread_inits) >= (int)threads);
    assert_int_equal(atomic_load(&shared->thread_exits_with_data),
                     atomic_load(&shared->thread_inits));
    if (s->multi_process)
        assert_true(atomic_load(&shared->child_inits) >= 2);
}

/* Two connections held at once are served by two threads of the one
 * process: each request sees its own thread's index and data. */
static void threads_have_their_own_index_and_data(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = host_server(fx);
    mpm_config_t *cfg = th_server_config(s);
    assert_int_equal(mpm_config_set_thread_hooks_ex(cfg, thread_init_ex, thread_exit_ex, NULL), 0);
    assert_int_equal(th_server_set(s, "ThreadsPerChild", "4"), 0);
    start(s);
    tc_conn_t *a = th_hold_connection(fx, s->port);
    tc_conn_t *b = th_hold_connection(fx, s->port);
    unsigned index[2];
    tc_conn_t *conns[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        th_send(conns[i], "GET /thread HTTP/1.1\r\nHost: t\r\n\r\n");
        tc_response_t r;
        th_read(conns[i], &r, 0);
        unsigned slot;
        int pid, same;
        if (sscanf(r.body, "slot=%u thread=%u pid=%d same=%d", &slot, &index[i], &pid,
                   &same) != 4)
            fail_msg("no thread data: '%s'", r.body);
        tc_response_free(&r);
        assert_int_equal(same, 1);
        assert_true(index[i] < 4);
    }
    assert_int_not_equal(index[0], index[1]);
    th_disconnect(a);
    th_disconnect(b);
    assert_int_equal(th_server_stop(s, 1), 0);
}

static int plain_thread_init(void *data)
{
    (void)data;
    return 0;
}

static void plain_hooks_leave_no_thread_data(void **state)
{
    th_server_t *s = host_server(*state);
    mpm_config_t *cfg = th_server_config(s);
    /* The plain setter replaces the _ex one. */
    assert_int_equal(mpm_config_set_thread_hooks_ex(cfg, thread_init_ex, thread_exit_ex, NULL), 0);
    assert_int_equal(mpm_config_set_thread_hooks(cfg, plain_thread_init, NULL, NULL), 0);
    start(s);
    get(s->port, "/thread", "none");
    assert_int_equal(th_server_stop(s, 1), 0);
    assert_int_equal(atomic_load(&shared->thread_inits), 0);
}

/* ---- small ones ---- */

static int failing_child_init(mpm_hook_ctx_t *ctx, void *data)
{
    (void)ctx;
    (void)data;
    return -1;
}

static void failing_child_init_is_named(void **state)
{
    th_server_t *s = host_server(*state);
    mpm_config_set_child_hooks_ex(th_server_config(s), failing_child_init, NULL, s);
    assert_int_equal(th_server_launch(s), 0);
    assert_true(th_server_wait_run(s, RUN_BOUND_MS));
    assert_int_equal(s->run_rc, MPM_ECHILD);
    assert_true(th_server_log_contains(s, "child init failed"));
    assert_false(th_server_log_contains(s, "status 15"));
}

/* After run() returns every strategy and mode reads the same: no process,
 * no unit busy or idle, the totals kept. */
static void stats_after_run_are_the_same(void **state)
{
    th_server_t *s = host_server(*state);
    start(s);
    get(s->port, "/", "hello");
    get(s->port, "/", "hello");
    assert_int_equal(th_server_stop(s, 1), 0);
    mpm_stats_t st = stats(s);
    assert_int_equal(st.processes, 0);
    assert_int_equal(st.busy_workers, 0);
    assert_int_equal(st.idle_workers, 0);
    assert_int_equal(st.parked_connections, 0);
    assert_int_equal(st.reading_connections, 0);
    assert_int_equal(st.writing_connections, 0);
    assert_int_equal(st.lingering_connections, 0);
    assert_true(st.requests_served >= 2);
    assert_true(st.connections_served >= 2);
    mpm_child_stats_t c = {.size = sizeof(c)};
    for (unsigned i = 0; i < st.slots; i++)
        assert_int_equal(mpm_server_child_stats(s->srv, i, &c), MPM_ENOENT);
}

/* Under prefork and worker no listener loop holds a connection: the event
 * counts read 0 in the summary and in every child's row. */
static void no_loop_connections_without_event(void **state)
{
    th_server_t *s = host_server(*state);
    start(s);
    get(s->port, "/", "hello"); /* a child surely serving; its connection closed */
    mpm_stats_t st = stats(s);
    assert_int_equal(st.parked_connections, 0);
    assert_int_equal(st.reading_connections, 0);
    assert_int_equal(st.writing_connections, 0);
    assert_int_equal(st.lingering_connections, 0);
    unsigned rows = 0;
    for (unsigned i = 0; i < st.slots; i++) {
        mpm_child_stats_t c;
        memset(&c, 0xff, sizeof c);
        c.size = sizeof c;
        if (mpm_server_child_stats(s->srv, i, &c) != 0)
            continue;
        rows++;
        assert_int_equal(c.reading_connections, 0);
        assert_int_equal(c.writing_connections, 0);
        assert_int_equal(c.lingering_connections, 0);
    }
    assert_true(rows >= 1);
    assert_int_equal(th_server_stop(s, 1), 0);
}

/* A caller built against the structs before the event counts were appended
 * passes the older, smaller size: its fields are filled, nothing past its
 * size is written. */
static void older_stats_sizes_still_work(void **state)
{
    th_server_t *s = host_server(*state);
    start(s);
    get(s->port, "/", "hello");
    const size_t old = offsetof(mpm_stats_t, reading_connections);
    unsigned char raw[sizeof(mpm_stats_t) + 16];
    memset(raw, 0xa5, sizeof raw);
    mpm_stats_t st;
    memcpy(&st, raw, sizeof st);
    st.size = old;
    assert_int_equal(mpm_server_stats(s->srv, &st), 0);
    assert_string_equal(st.strategy, s->strategy);
    assert_true(st.processes >= 1);
    assert_true(st.slots >= 1);
    assert_memory_equal((unsigned char *)&st + old, raw + old, sizeof st - old);

    const size_t old_child = offsetof(mpm_child_stats_t, reading_connections);
    unsigned rows = 0;
    for (unsigned i = 0; i < st.slots; i++) {
        mpm_child_stats_t c;
        memcpy(&c, raw, sizeof c);
        c.size = old_child;
        if (mpm_server_child_stats(s->srv, i, &c) != 0)
            continue;
        rows++;
        assert_true(c.pid > 0);
        assert_non_null(c.state);
        assert_memory_equal((unsigned char *)&c + old_child, raw + old_child,
                            sizeof c - old_child);
    }
    assert_true(rows >= 1);
    assert_int_equal(th_server_stop(s, 1), 0);
}

static int plan_logged(void *arg)
{
    return th_server_log_contains(arg, "MinSpareThreads 5 is more than ThreadsPerChild 2");
}

static void spare_minimum_above_one_child_is_logged(void **state)
{
    th_server_t *s = host_server(*state);
    static const char *const dirs[] = {"ThreadsPerChild", "2", "MinSpareThreads", "5",
                                       "MaxSpareThreads", "20", "LogLevel", "notice", NULL};
    for (size_t i = 0; dirs[i]; i += 2)
        assert_int_equal(th_server_set(s, dirs[i], dirs[i + 1]), 0);
    start(s);
    assert_true(th_wait_for(plan_logged, s, RUN_BOUND_MS));
    assert_true(th_server_log_contains(s, "keeps 3 children"));
    assert_int_equal(th_server_stop(s, 1), 0);
}

#define ONE(f) TH_CASE(f, "prefork"), TH_CASE(f, "worker")
#define MP(f) TH_CASE(f, "prefork-mp"), TH_CASE(f, "worker-mp")
#define ALL(f) ONE(f), MP(f)

int main(void)
{
    shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
                  0);
    if (shared == MAP_FAILED)
        return 1;
    const struct CMUnitTest tests[] = {
        ALL(handler_stops_the_whole_server),
        ALL(handler_stops_the_whole_server_now),
        MP(handler_restarts_the_whole_server),
        ONE(restart_is_not_supported_in_one_process),
        ALL(draining_after_host_stop),
        ALL(draining_after_handler_stop),
        MP(draining_after_sigwinch),
        ALL(listeners_closed_after_stop),
        ALL(listeners_closed_after_graceful_stop),
        ALL(thread_hooks_get_context_and_data),
        TH_CASE(threads_have_their_own_index_and_data, "worker"),
        ONE(plain_hooks_leave_no_thread_data),
        MP(failing_child_init_is_named),
        ALL(stats_after_run_are_the_same),
        ALL(no_loop_connections_without_event),
        ALL(older_stats_sizes_still_work),
        TH_CASE(spare_minimum_above_one_child_is_logged, "worker-mp"),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
