/* The event strategy's own promises: what a threaded strategy cannot do.
 * Idle kept-alive connections are parked, held by no thread, so thousands
 * of them leave a few threads free for new requests; slow clients (a head
 * or a body trickling in) wait in the listener loop until their deadline,
 * not in a thread; a large response goes out from the loop as the client
 * takes it (write completion), so a slow reader holds no thread either;
 * graceful restart under keep-alive load loses nothing.
 *
 * Every case runs with the event strategy and skips until it is built.
 * TEST_EVENT_STRATEGY=worker runs the same cases with worker (one thread per
 * connection), which breaks the cases about not holding threads: a way to
 * see that they can fail. Many connections are driven by poll() from one
 * thread (fleet.h), not by a thread each. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fleet.h"
#include "harness.h"
#include "pool.h"
#include "proc.h"

#include "core/internal.h" /* the transport table, to pin a listener */

/* The strategies the cases run with (see the top of the file). */
static char strategy_one[32] = "event";
static char strategy_mp[32] = "event-mp";

/* The fleets a case opened, closed by its teardown even when it failed. */
#define MAX_FLEETS 4
static tf_fleet_t *fleets[MAX_FLEETS];
static size_t nfleets;

static tf_fleet_t *tracked_fleet(tf_fleet_t *f)
{
    assert_true(nfleets < MAX_FLEETS);
    memset(f, 0, sizeof(*f));
    return fleets[nfleets++] = f;
}

static int ev_teardown(void **state)
{
    while (nfleets > 0)
        tf_free(fleets[--nfleets]);
    return th_teardown(state);
}

#define EV_CASE(f) {#f "[event]", f, th_setup, ev_teardown, strategy_one}
#define EV_CASE_MP(f) {#f "[event-mp]", f, th_setup, ev_teardown, strategy_mp}

#define GET_KEEP "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
#define GET_CLOSE "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

/* ------------------------------------------------------------------ */
/* Helpers                                                            */

static mpm_stats_t stats_of(th_server_t *s)
{
    mpm_stats_t st = {.size = sizeof(st)};
    assert_int_equal(mpm_server_stats(s->srv, &st), 0);
    return st;
}

/* Skips the case, saying why, unless `want` descriptors can be opened. */
static void need_fds(long want)
{
    long got = tf_raise_nofile();
    if (got >= want)
        return;
    fprintf(stderr, "skipping: this case needs %ld file descriptors, but the RLIMIT_NOFILE hard "
                    "limit allows %ld (raise it, e.g. ulimit -Hn %ld, as root)\n",
            want, got, want);
    skip();
}

/* Lets a multi-process server run exactly one child, of ThreadsPerChild
 * `threads`, as a one-process server does. */
static void one_child(th_server_t *s, const char *threads)
{
    if (!s->multi_process)
        return;
    const char *const dirs[] = {"StartServers", "1",      "ServerLimit",     "1",
                                "MinSpareThreads", "1",   "MaxSpareThreads", threads,
                                "MaxRequestWorkers", threads, NULL};
    for (size_t i = 0; dirs[i]; i += 2)
        if (th_server_set(s, dirs[i], dirs[i + 1]) != 0)
            fail_msg("config: %s", s->errmsg);
}

/* A server for the case with the directives (NULL-terminated pairs), one
 * child of `threads` threads when multi-process; needs `fds` descriptors. */
static th_server_t *start_with(th_fixture_t *fx, const char *const *dirs, const char *threads,
                               long fds)
{
    th_server_t *s = th_new_server(fx); /* skips when the strategy is not built */
    need_fds(fds);
    for (size_t i = 0; dirs && dirs[i]; i += 2)
        if (th_server_set(s, dirs[i], dirs[i + 1]) != 0)
            fail_msg("config: %s", s->errmsg);
    if (threads) {
        if (th_server_set(s, "ThreadsPerChild", threads) != 0)
            fail_msg("config: %s", s->errmsg);
        one_child(s, threads);
    }
    if (th_server_start(s) != 0)
        fail_msg("start %s server: %s", fx->strategy, s->errmsg);
    th_server_wait_children(s); /* no fork while this thread allocates */
    return s;
}

/* Fails the case unless every member of the fleet answered 200; names the
 * first that did not. */
static void expect_all_200(const tf_fleet_t *f, size_t ok, const char *what)
{
    if (ok == f->n)
        return;
    for (size_t i = 0; i < f->n; i++)
        if (f->m[i].status != 200)
            fail_msg("%s: %zu of %zu answered 200; connection %zu got %d (0: no answer in "
                     "time, -1: closed)",
                     what, ok, f->n, i, f->m[i].status);
}

/* GET / on a fresh connection, timed: its latency in ms, or -1 unless a
 * complete 200 came within bound_ms. */
static int64_t timed_get(int port, int bound_ms)
{
    tc_response_t r;
    int64_t t0 = tc_now_ms();
    int rc = tc_exchange(port, GET_CLOSE, &r, bound_ms);
    int64_t took = tc_now_ms() - t0;
    int good = rc == TC_OK && r.status == 200 && strcmp(r.body, "Hello, World!") == 0;
    tc_response_free(&r);
    return good ? took : -1;
}

/* ------------------------------------------------------------------ */
/* a. Thousands of idle kept-alive connections                        */

#define IDLE_CONNS 2000
#define IDLE_THREADS "4"
#define IDLE_FDS 8192
#define FRESH_REQUESTS 20

/* A wait condition: one counter of mpm_stats_t (by its offset) at least. */
typedef struct count_cond {
    th_server_t *s;
    size_t offset; /* offsetof(mpm_stats_t, ...) of an unsigned */
    unsigned at_least;
} count_cond_t;

static int count_at_least(void *arg)
{
    const count_cond_t *q = arg;
    mpm_stats_t st = stats_of(q->s);
    unsigned v;
    memcpy(&v, (const char *)&st + q->offset, sizeof v);
    return v >= q->at_least;
}

#define PARKED offsetof(mpm_stats_t, parked_connections)
#define READING offsetof(mpm_stats_t, reading_connections)

/* IDLE_CONNS connections to a server with IDLE_THREADS threads and the
 * given KeepAliveTimeout, each answered one request and now idle. */
static th_server_t *idle_fleet(th_fixture_t *fx, const char *keepalive, tf_fleet_t *f)
{
    const char *const dirs[] = {"KeepAliveTimeout", keepalive, "ListenBacklog", "2048", NULL};
    th_server_t *s = start_with(fx, dirs, IDLE_THREADS, IDLE_FDS);
    size_t n = tf_open(tracked_fleet(f), s->port, IDLE_CONNS, 30000);
    if (n != IDLE_CONNS)
        fail_msg("only %zu of %d connections were accepted", n, IDLE_CONNS);
    size_t ok = tf_request_all(f, GET_KEEP, 30000);
    expect_all_200(f, ok, "first request on each idle connection");
    return s;
}

/* 2,000 kept-alive connections, idle after one request each, with 4
 * threads: they stay open, fresh connections are served at once, the
 * scoreboard shows them parked, and each takes a second request. */
static void idle_connections_park_and_stay_usable(void **state)
{
    static tf_fleet_t f;
    th_server_t *s = idle_fleet(*state, "60", &f);

    for (int i = 0; i < FRESH_REQUESTS; i++) {
        int64_t took = timed_get(s->port, 10000);
        if (took < 0 || took >= 1000)
            fail_msg("with %d idle connections open, fresh request %d took %lld ms (-1: none)",
                     IDLE_CONNS, i, (long long)took);
    }
    count_cond_t pc = {s, PARKED, IDLE_CONNS};
    if (!th_wait_for(count_at_least, &pc, 10000))
        fail_msg("parked_connections is %u, expected at least %d",
                 stats_of(s).parked_connections, IDLE_CONNS);
    size_t closed = tf_wait_closed(&f, 0);
    if (closed != 0)
        fail_msg("%zu idle connections were closed within KeepAliveTimeout 60", closed);

    size_t ok = tf_request_all(&f, GET_KEEP, 30000);
    expect_all_200(&f, ok, "second request on each parked connection");
}

/* With KeepAliveTimeout 3 the server closes every one of 2,000 parked
 * connections, cleanly and without a word, about 3 s after its response. */
static void parked_connections_close_at_keepalive_timeout(void **state)
{
    static tf_fleet_t f;
    (void)idle_fleet(*state, "3", &f);
    size_t closed = tf_wait_closed(&f, 3000 + 20000);
    for (size_t i = 0; i < f.n; i++) {
        const tf_member_t *m = &f.m[i];
        int64_t after = m->closed_ms - m->answered_ms;
        if (m->closed_ms == 0)
            fail_msg("%zu of %d closed; connection %zu still open 23 s after its response",
                     closed, IDLE_CONNS, i);
        /* The client notes an answer only when it gets to it, which under
         * load can be late: the early bound counts from the request's
         * send, which the server's clock cannot precede. */
        int64_t since_sent = m->closed_ms - m->started_ms;
        if (since_sent < 2500 || after > 3000 + 12000)
            fail_msg("connection %zu closed %lld ms after its request, %lld ms after its "
                     "response (KeepAliveTimeout 3 s)",
                     i, (long long)since_sent, (long long)after);
        if (m->reset || m->extra != 0)
            fail_msg("connection %zu: %s after %zu unexpected bytes, not a clean close", i,
                     m->reset ? "reset" : "closed", m->extra);
    }
}

/* ------------------------------------------------------------------ */
/* b. Slow clients against the default RequestReadTimeout             */

#define SLOW_EACH 300
#define SLOW_DRIP_MS 2000
#define SLOW_GIVE_UP_MS 60000
/* The default deadlines: header=20-40,MinRate=500 and body=20,MinRate=500;
 * one byte every 2 s earns no extension. Wide windows around 20 s. */
/* The low end leaves room for the head clock starting at accept, before
 * the second group connects and the drips start. */
#define SLOW_DEADLINE_LO_MS 15000
#define SLOW_DEADLINE_HI_MS 38000
#define PROBE_EVERY_MS 1000
#define MAX_PROBES 128

typedef struct prober {
    int port;
    atomic_int stop;
    int64_t took[MAX_PROBES]; /* ms, -1 for a probe that got no 200 */
    int n;
    pthread_t thread;
} prober_t;

/* A normal client: GET / on a fresh connection once a second. */
static void *probe_loop(void *arg)
{
    prober_t *p = arg;
    while (!atomic_load(&p->stop) && p->n < MAX_PROBES) {
        int64_t t0 = tc_now_ms();
        p->took[p->n++] = timed_get(p->port, 10000);
        int64_t rest = t0 + PROBE_EVERY_MS - tc_now_ms();
        if (rest > 0) {
            struct timespec ts = {rest / 1000, (long)(rest % 1000) * 1000000L};
            nanosleep(&ts, NULL); /* the client's own pace */
        }
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Fails the case unless every probe got a 200 and all but the slowest one
 * took under a second: a few dozen probes make a p99 their maximum, and one
 * can meet the moment 600 deadlines fire at once on a loaded machine. */
static void expect_probes_prompt(prober_t *p, int64_t window_ms)
{
    if (p->n < window_ms / PROBE_EVERY_MS / 2)
        fail_msg("only %d probes in %lld ms: they were held up", p->n, (long long)window_ms);
    int64_t sorted[MAX_PROBES];
    memcpy(sorted, p->took, sizeof(int64_t) * (size_t)p->n);
    for (int i = 0; i < p->n; i++)
        if (sorted[i] < 0)
            fail_msg("probe %d (of %d) got no answer within 10 s", i, p->n);
    qsort(sorted, (size_t)p->n, sizeof(int64_t), cmp_i64);
    int64_t second_worst = sorted[p->n - 2];
    if (second_worst >= 1000)
        fail_msg("probes' second-worst latency %lld ms (max %lld ms, %d probes)",
                 (long long)second_worst, (long long)sorted[p->n - 1], p->n);
}

typedef struct slow_group {
    tf_fleet_t f;
    const char *head;
    char drip;
    int64_t give_up;
    size_t ended;
    pthread_t thread;
} slow_group_t;

static void *trickle_group(void *arg)
{
    slow_group_t *g = arg;
    g->ended = tf_trickle(&g->f, g->head, g->drip, SLOW_DRIP_MS, g->give_up);
    return NULL;
}

static size_t open_group(slow_group_t *g, int port, const char *head, char drip)
{
    g->head = head;
    g->drip = drip;
    return tf_open(tracked_fleet(&g->f), port, SLOW_EACH, 20000);
}

/* Every member ended `lo..hi` ms after it started, with one of the two
 * statuses (-1: closed without an answer). */
static void expect_ended(const slow_group_t *g, const char *what, int status, int alt)
{
    for (size_t i = 0; i < g->f.n; i++) {
        const tf_member_t *m = &g->f.m[i];
        int64_t at = m->status == -1 ? m->closed_ms : m->answered_ms;
        if (m->status != status && m->status != alt)
            fail_msg("%s %zu: got %d (0: nothing within %d s), expected %d", what, i, m->status,
                     SLOW_GIVE_UP_MS / 1000, status);
        if (at - m->started_ms < SLOW_DEADLINE_LO_MS || at - m->started_ms > SLOW_DEADLINE_HI_MS)
            fail_msg("%s %zu: ended %lld ms after it started, expected %d..%d", what, i,
                     (long long)(at - m->started_ms), SLOW_DEADLINE_LO_MS, SLOW_DEADLINE_HI_MS);
    }
}

/* 300 slowloris heads and 300 slow bodies with 25 threads: a normal client
 * keeps being answered within a second, and each slow client gets its 408
 * (a body: or a close) at its deadline, about 20 s after it began. */
static void slow_clients_leave_threads_free(void **state)
{
    th_fixture_t *fx = *state;
    /* Defaults otherwise (ThreadsPerChild 25, RequestReadTimeout); the
     * backlog only lets all 600 connect under a strategy that does not
     * accept them at once. */
    static const char *const dirs[] = {"ListenBacklog", "1024", NULL};
    th_server_t *s = start_with(fx, dirs, NULL, 4096);
    static prober_t probe;
    static slow_group_t loris, bodies;
    memset(&probe, 0, sizeof(probe));
    probe.port = s->port;
    memset(&loris, 0, sizeof(loris));
    memset(&bodies, 0, sizeof(bodies));
    int64_t start = tc_now_ms();
    size_t nl = open_group(&loris, s->port, "GET / HTTP/1.1\r\nHost: t\r\n", 'a');
    size_t nb = open_group(&bodies, s->port,
                           "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n", 'b');
    if (nl != SLOW_EACH || nb != SLOW_EACH)
        fail_msg("only %zu + %zu of %d + %d slow clients connected", nl, nb, SLOW_EACH, SLOW_EACH);
    /* No assertion from here until the threads are joined. */
    int probing = pthread_create(&probe.thread, NULL, probe_loop, &probe) == 0;
    loris.give_up = bodies.give_up = tc_now_ms() + SLOW_GIVE_UP_MS;
    int threaded = pthread_create(&bodies.thread, NULL, trickle_group, &bodies) == 0;
    trickle_group(&loris);
    if (!threaded)
        trickle_group(&bodies); /* late, and then its timing fails the case */
    if (threaded)
        pthread_join(bodies.thread, NULL);
    atomic_store(&probe.stop, 1);
    if (probing)
        pthread_join(probe.thread, NULL);
    assert_true(probing);
    int64_t window = tc_now_ms() - start;
    expect_probes_prompt(&probe, window);
    expect_ended(&loris, "slowloris", 408, 408);
    expect_ended(&bodies, "slow body", 408, -1);
    th_expect_serving(s->port);
}

/* ------------------------------------------------------------------ */
/* c. Large responses to slow readers                                 */

#define BIG_LEN (8u * 1024 * 1024)
#define GET_BIG_FILE "GET /file-bytes?n=8388608 HTTP/1.1\r\nHost: t\r\n\r\n"


/* A connection whose receive buffer stays small (no autotuning), so that
 * a big response waits on the client rather than in its kernel buffers. */
static tc_conn_t *connect_small_window(th_fixture_t *fx, int port)
{
    assert_true(fx->nconns < TH_MAX_CONNS);
    tc_conn_t *c = &fx->conns[fx->nconns];
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->fd >= 0);
    fx->nconns++;
    int small = 16384;
    assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        fail_msg("connect: %s", strerror(errno));
    return c;
}

static void expect_pattern_body(tc_conn_t *c, size_t len)
{
    tc_response_t r;
    int rc = tc_read_response(c, &r, 0, 60000);
    if (rc != TC_OK)
        fail_msg("reading the %zu-byte response: %s", len, tc_result_name(rc));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, len);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)r.body[i] != th_pattern_byte(i))
            fail_msg("byte %zu of the response is wrong", i);
    tc_response_free(&r);
}

static int writing_unheld(void *arg)
{
    mpm_stats_t st = stats_of(arg);
    return st.busy_workers == 0 && st.writing_connections >= 2;
}

/* Two clients that do not read a response hold neither of the two
 * threads: the loop writes as they read, another client is served
 * meanwhile, and both then get every byte. */
static void slow_readers_hold_no_thread(th_fixture_t *fx, const char *get, size_t len)
{
    th_server_t *s = start_with(fx, NULL, "2", 256);
    tc_conn_t *a = connect_small_window(fx, s->port);
    tc_conn_t *b = connect_small_window(fx, s->port);
    th_send(a, get);
    th_send(b, get);
    if (!th_wait_for(writing_unheld, s, 15000)) {
        mpm_stats_t st = stats_of(s);
        fail_msg("while 2 clients do not read: busy_workers %u, writing_connections %u "
                 "(expected 0 and >= 2)",
                 st.busy_workers, st.writing_connections);
    }
    int64_t took = timed_get(s->port, 10000);
    if (took < 0 || took >= 1000)
        fail_msg("a fresh request took %lld ms (-1: none) while 2 responses wait on their clients",
                 (long long)took);
    expect_pattern_body(a, len);
    expect_pattern_body(b, len);
}

/* 8 MiB from a file: the loop sends the rest of the file itself. (A body
 * from memory is copied for the loop only up to 256 KiB, which the
 * kernel's own buffers on loopback absorb whole: nothing to observe.) */
static void large_response_to_slow_reader_holds_no_thread(void **state)
{
    slow_readers_hold_no_thread(*state, GET_BIG_FILE, BIG_LEN);
}

/* The loop holds the tail, not the thread: the worker's hand-off to the
 * loop is not atomic on the scoreboard (busy falls before writing rises),
 * so a thread still writing is not yet the state this waits for. */
static int response_held_by_loop(void *arg)
{
    mpm_stats_t st = stats_of(arg);
    return st.writing_connections >= 1;
}

static int nothing_in_flight(void *arg)
{
    mpm_stats_t st = stats_of(arg);
    return st.busy_workers == 0 && st.writing_connections == 0;
}

/* A client that stops reading is let go about Timeout (2 s) after the last
 * byte it took: it finds the response cut short by the server's close. */
static void stalled_reader_closed_after_timeout(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"Timeout", "2", NULL};
    th_server_t *s = start_with(fx, dirs, "2", 256);
    tc_conn_t *c = connect_small_window(fx, s->port);
    /* The write clock starts at the first full buffer, moments after the
     * request: counting from the send, the close cannot come early. */
    int64_t stalled = tc_now_ms();
    th_send(c, GET_BIG_FILE); /* the loop holds the rest: its own write timeout */
    if (!th_wait_for(response_held_by_loop, s, 10000))
        fail_msg("the loop never held the response's tail");
    if (!th_wait_for(nothing_in_flight, s, 20000))
        fail_msg("the server still writes to a client that has read nothing for 20 s");
    int64_t after = tc_now_ms() - stalled;
    if (after < 1500 || after > 10000)
        fail_msg("the stalled response was dropped %lld ms after it stalled (Timeout 2 s)",
                 (long long)after);
    tc_response_t r;
    int rc = tc_read_response(c, &r, 0, 20000);
    size_t got = r.body_len;
    tc_response_free(&r);
    if (rc != TC_CLOSED && rc != TC_RESET)
        fail_msg("the client then read %s (%zu body bytes), expected a cut-short response",
                 tc_result_name(rc), got);
    th_expect_serving(s->port);
}

/* ------------------------------------------------------------------ */
/* d. Graceful restarts under keep-alive load                         */

#define LOAD_CLIENTS 4
#define RESTARTS 5
#define MAX_OLD 64

typedef struct ka_load {
    int port;
    atomic_int stop, ok, failed, reconnects;
    pthread_t threads[LOAD_CLIENTS];
    int nthreads;
} ka_load_t;

static void load_failure(ka_load_t *l, const char *what, int rc)
{
    atomic_fetch_add(&l->failed, 1);
    fprintf(stderr, "load: %s: %s, after %d ok\n", what, tc_result_name(rc), atomic_load(&l->ok));
}

/* Before a request goes out on a kept-alive connection: whatever the
 * server sent since the last response must be a clean close (then the
 * client reconnects, as any would). Returns 0 if the connection is usable
 * or was closed cleanly, -1 for anything else. */
static int check_idle_conn(ka_load_t *l, tc_conn_t *c)
{
    if (c->fd < 0 || !tc_readable(c, 0))
        return 0;
    size_t extra = 0;
    int rc = tc_wait_close(c, 5000, &extra);
    tc_close(c);
    atomic_fetch_add(&l->reconnects, 1);
    if (rc == TC_CLOSED && extra == 0)
        return 0;
    load_failure(l, extra ? "unasked-for bytes on an idle connection" : "idle connection", rc);
    return -1;
}

/* One keep-alive client: requests back to back on one connection, a new
 * connection after a Connection: close or a clean close between requests.
 * A request sent on a connection the server had not closed must get a
 * complete 200. */
static void *ka_client(void *arg)
{
    ka_load_t *l = arg;
    tc_conn_t c = {.fd = -1};
    while (!atomic_load(&l->stop)) {
        check_idle_conn(l, &c);
        int rc = c.fd >= 0 ? TC_OK : tc_connect(&c, l->port, 20000);
        if (rc != TC_OK) {
            load_failure(l, "connect", rc); /* listeners stay open across restarts */
            break;
        }
        tc_response_t r;
        memset(&r, 0, sizeof(r));
        rc = tc_send_str(&c, GET_KEEP);
        if (rc == TC_OK)
            rc = tc_read_response(&c, &r, 0, 30000);
        if (rc == TC_OK && r.status == 200 && strcmp(r.body, "Hello, World!") == 0)
            atomic_fetch_add(&l->ok, 1);
        else
            load_failure(l, "request", rc == TC_OK ? -r.status : rc);
        if (rc != TC_OK || tc_header_has_token(&r, "Connection", "close"))
            tc_close(&c);
        tc_response_free(&r);
    }
    tc_close(&c);
    return NULL;
}

static void ka_load_start(ka_load_t *l, int port)
{
    memset(l, 0, sizeof(*l));
    l->port = port;
    while (l->nthreads < LOAD_CLIENTS &&
           pthread_create(&l->threads[l->nthreads], NULL, ka_client, l) == 0)
        l->nthreads++;
}

static void ka_load_stop(ka_load_t *l)
{
    atomic_store(&l->stop, 1);
    for (int i = 0; i < l->nthreads; i++)
        pthread_join(l->threads[i], NULL);
}

typedef struct pid_set {
    const pid_t *pids;
    int n;
} pid_set_t;

static int all_gone(void *arg)
{
    pid_set_t *p = arg;
    for (int i = 0; i < p->n; i++)
        if (!tp_gone(p->pids[i]))
            return 0;
    return 1;
}

static void describe_survivor(const pid_set_t *set, int round, char *why, size_t len)
{
    for (int i = 0; i < set->n; i++) {
        tp_stat_t st;
        if (!tp_gone(set->pids[i]) && tp_stat(set->pids[i], &st) == 0) {
            snprintf(why, len, "round %d: old child %d (state %c) still alive 30 s later", round,
                     (int)set->pids[i], st.state);
            return;
        }
    }
    snprintf(why, len, "round %d: an old child stayed alive for 30 s", round);
}

typedef struct gen_cond {
    int port;
    long gen;
} gen_cond_t;

static int generation_reached(void *arg)
{
    gen_cond_t *g = arg;
    return tpool_status_number(g->port, "generation") >= g->gen;
}

typedef struct ok_cond {
    ka_load_t *l;
    int at_least;
} ok_cond_t;

static int load_ok_reached(void *arg)
{
    ok_cond_t *o = arg;
    return atomic_load(&o->l->ok) >= o->at_least || atomic_load(&o->l->failed) > 0;
}

/* One graceful restart (SIGUSR1, as mpm_server_restart(srv, 1) does): the
 * generation moves on, every child of the old one exits, the new one
 * serves. Leaves why[] empty when all went so, else says what did not. */
static void restart_once(th_process_t *p, ka_load_t *l, int round, char *why, size_t len)
{
    long gen = tpool_status_number(p->port, "generation");
    pid_t old[MAX_OLD];
    int nold = tpool_children(p->pid, old, MAX_OLD);
    gen_cond_t g = {p->port, gen + 1};
    pid_set_t set = {old, nold};
    ok_cond_t o = {l, 0};
    why[0] = '\0';
    if (gen < 0 || nold < 1)
        snprintf(why, len, "round %d: generation %ld, %d children", round, gen, nold);
    else if (kill(p->pid, SIGUSR1) != 0)
        snprintf(why, len, "round %d: SIGUSR1: %s", round, strerror(errno));
    else if (!th_wait_for(generation_reached, &g, 20000))
        snprintf(why, len, "round %d: generation stayed %ld", round, gen);
    else if (!th_wait_for(all_gone, &set, 30000))
        describe_survivor(&set, round, why, len);
    else if ((o.at_least = atomic_load(&l->ok) + 50, !th_wait_for(load_ok_reached, &o, 20000)))
        snprintf(why, len, "round %d: the new generation did not serve the load (%d ok)", round,
                 atomic_load(&l->ok));
}

/* Five graceful restarts of mpmserve's master (its own process, so that its
 * forks copy no thread of this test) while clients send back to back on
 * kept-alive connections: no request is lost, every old generation exits. */
static void graceful_restarts_under_keepalive_load(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start(fx, NULL); /* skips when the strategy is not built */
    assert_true(tpool_wait_children(p->pid, 2, TPOOL_MAX_KIDS, 20000));
    static ka_load_t l;
    ka_load_start(&l, p->port);
    /* No assertion from here until the load is stopped. */
    ok_cond_t warm = {&l, 50};
    char why[256] = "";
    if (l.nthreads < LOAD_CLIENTS)
        snprintf(why, sizeof(why), "started %d of %d load clients", l.nthreads, LOAD_CLIENTS);
    else if (!th_wait_for(load_ok_reached, &warm, 20000))
        snprintf(why, sizeof(why), "the load never got going (%d ok)", atomic_load(&l.ok));
    for (int round = 0; !why[0] && round < RESTARTS && atomic_load(&l.failed) == 0; round++)
        restart_once(p, &l, round, why, sizeof(why));
    ka_load_stop(&l);
    fprintf(stderr, "load: %d requests answered, %d reconnects after a clean close, %d failed\n",
            atomic_load(&l.ok), atomic_load(&l.reconnects), atomic_load(&l.failed));
    if (atomic_load(&l.failed) != 0)
        fail_msg("%d requests failed across %d graceful restarts (%d ok, %d reconnects)",
                 atomic_load(&l.failed), RESTARTS, atomic_load(&l.ok), atomic_load(&l.reconnects));
    if (why[0])
        fail_msg("%s", why);
    assert_true(tpool_status_number(p->port, "generation") >= RESTARTS);
    assert_true(tpool_get_ok(p->port, "/"));
}

/* ------------------------------------------------------------------ */
/* e. Slow but timely bodies, pipelining                              */

/* A 10-byte body at a byte every 300 ms (3 s, well within body=20) is read
 * whole and echoed; the connection then serves its next request. */
static void slow_small_body_is_echoed(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start_with(fx, NULL, NULL, 256);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n");
    assert_int_equal(tc_send_pieces(c, "0123456789", 10, 1, 300), TC_OK);
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 10);
    assert_memory_equal(r.body, "0123456789", 10);
    tc_response_free(&r);
    th_send(c, GET_KEEP);
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "Hello, World!");
    tc_response_free(&r);
}

/* Three requests in one packet, one with a body: three answers, in order. */
static void pipelined_burst_answered_in_order(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start_with(fx, NULL, NULL, 256);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "GET /info?n=1 HTTP/1.1\r\nHost: t\r\n\r\n"
               "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\ntwo"
               "GET /info?n=3 HTTP/1.1\r\nHost: t\r\n\r\n");
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "target=/info?n=1\n"));
    tc_response_free(&r);
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "two");
    tc_response_free(&r);
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "target=/info?n=3\n"));
    tc_response_free(&r);
}

/* Pipelined requests of 128 bytes each, far more than the input buffer
 * holds: reads fill the buffer to a request boundary with more waiting in
 * the socket, which an edge-triggered loop must still read after the
 * thread hands the connection back (no new edge comes for those bytes). */
#define PIPELINED_MANY 600
static void pipelined_past_the_buffer_all_answered(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"MaxKeepAliveRequests", "0", NULL};
    th_server_t *s = start_with(fx, dirs, NULL, 256);
    char one[129];
    int n = snprintf(one, sizeof one, "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: %0*d\r\n\r\n", 128 - 36,
                     0);
    assert_int_equal(n, 128);
    char *burst = malloc(128 * PIPELINED_MANY + 1);
    assert_non_null(burst);
    for (int i = 0; i < PIPELINED_MANY; i++)
        memcpy(burst + 128 * i, one, 128);
    burst[128 * PIPELINED_MANY] = 0;
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, burst);
    free(burst);
    for (int i = 0; i < PIPELINED_MANY; i++) {
        tc_response_t r;
        th_read(c, &r, 0);
        if (r.status != 200)
            fail_msg("response %d of %d: status %d", i + 1, PIPELINED_MANY, r.status);
        tc_response_free(&r);
    }
}

/* ------------------------------------------------------------------ */

static void choose_strategy(void)
{
    const char *as = getenv("TEST_EVENT_STRATEGY");
    if (!as || !*as)
        return;
    snprintf(strategy_one, sizeof(strategy_one), "%s", as);
    snprintf(strategy_mp, sizeof(strategy_mp), "%s-mp", as);
    fprintf(stderr, "test_event: running the event cases with %s / %s\n", strategy_one,
            strategy_mp);
}

/* ------------------------------------------------------------------ */
/* The ready queue                                                     */

/* With one thread busy, a complete head waits in the ready queue and runs
 * as soon as the thread is free, every time (the loop must hear of the
 * idle thread even when it frees up just after its hand-back). */
/* A connection waiting in the ready queue (both threads busy) that sends
 * more meanwhile (a pipelined request, in its own packet) stays queued
 * once: when the threads free, one of them serves it, each request once,
 * in order. */
typedef struct threads_cond {
    th_server_t *s;
    unsigned busy;   /* at least */
    unsigned parked; /* exactly */
} threads_cond_t;

static int threads_busy_parked(void *arg)
{
    threads_cond_t *q = arg;
    mpm_stats_t st = stats_of(q->s);
    return st.busy_workers >= q->busy && st.parked_connections == q->parked;
}

/* A kept-alive connection whose request waits in the ready queue (both
 * threads busy) receives its next request meanwhile: that edge must not
 * queue it a second time (one connection on two threads, or a ready queue
 * that loops on itself). Admission takes no new connection while every
 * thread is busy, so all three are kept-alive ones from before. */
static void queued_connection_sending_more_is_served_once(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start_with(fx, NULL, "2", 64);
    tc_conn_t c[3];
    tc_response_t r;
    for (int k = 0; k < 3; k++) {
        assert_int_equal(tc_connect(&c[k], s->port, TC_DEFAULT_TIMEOUT_MS), 0);
        th_send(&c[k], "GET /info HTTP/1.1\r\nHost: t\r\n\r\n");
        th_read(&c[k], &r, 0);
        assert_int_equal(r.status, 200);
        tc_response_free(&r);
    }
    count_cond_t pc = {s, PARKED, 3};
    if (!th_wait_for(count_at_least, &pc, 10000))
        fail_msg("parked_connections %u, expected 3", stats_of(s).parked_connections);
    for (int k = 0; k < 2; k++)
        th_send(&c[k], "GET /nap?ms=5000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    threads_cond_t naps = {s, 2, 1};
    if (!th_wait_for(threads_busy_parked, &naps, 3000)) /* well before the naps end */
        fail_msg("the naps do not hold both threads: busy_workers %u",
                 stats_of(s).busy_workers);
    th_send(&c[2], "GET /info?n=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    threads_cond_t queued = {s, 2, 0}; /* neither parked nor on a thread */
    if (!th_wait_for(threads_busy_parked, &queued, 1500))
        fail_msg("the third connection's request did not wait for a thread");
    th_send(&c[2], "GET /info?n=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    for (int k = 0; k < 2; k++) {
        th_read(&c[k], &r, 0);
        assert_int_equal(r.status, 200);
        tc_response_free(&r);
    }
    for (int n = 1; n <= 2; n++) {
        char want[32];
        snprintf(want, sizeof want, "target=/info?n=%d\n", n);
        th_read(&c[2], &r, 0);
        assert_int_equal(r.status, 200);
        if (!strstr(r.body, want))
            fail_msg("answer %d: %s", n, r.body);
        tc_response_free(&r);
    }
    th_expect_closed(&c[2]);
    th_expect_serving(s->port);
    for (int k = 0; k < 3; k++)
        tc_close(&c[k]);
}

/* Starts s with its listener li made pinned (a pinned copy of the TCP
 * transport: what TLS with TLSPinning On does, without TLS); s->port is
 * listener 0's. Returns listener li's port. */
static int run_with_pinned_listener(th_server_t *s, size_t li)
{
    static mpm__transport_t pinned_tcp;
    pinned_tcp = mpm__transport_tcp;
    pinned_tcp.pinned = 1;
    assert_int_equal(th_server_new(s), 0);
    assert_int_equal(mpm_server_bind(s->srv), 0);
    s->port = mpm_server_port(s->srv, 0);
    s->srv->listeners[li].tp = &pinned_tcp;
    assert_int_equal(th_server_run_async(s), 0);
    return mpm_server_port(s->srv, li);
}

/* A pinned connection whose first bytes come while every thread is busy
 * waits in the ready queue; its handshake deadline holds there too: it is
 * closed at that deadline, not only once a thread frees (here: when a
 * 10 s nap ends). The pinned listener is a pinned copy of TCP. */
static void queued_pinned_connection_meets_its_handshake_deadline(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx);
    const char *const dirs[] = {"ThreadsPerChild", "1", "Listen", "127.0.0.1:0",
                                "RequestReadTimeout", "header=2", NULL};
    for (size_t i = 0; dirs[i]; i += 2)
        if (th_server_set(s, dirs[i], dirs[i + 1]) != 0)
            fail_msg("config: %s", s->errmsg);
    one_child(s, "1");
    int pinned_port = run_with_pinned_listener(s, 1);

    tc_conn_t *napper = th_connect(fx, s->port);
    tc_response_t r;
    th_send(napper, GET_KEEP);
    th_read(napper, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    tc_conn_t *pinned = th_connect(fx, pinned_port); /* silent: admitted, a thread promised */
    count_cond_t accepted = {s, READING, 1};
    if (!th_wait_for(count_at_least, &accepted, 5000))
        fail_msg("the pinned connection was not accepted");
    th_send(napper, "GET /nap?ms=10000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    threads_cond_t napping = {s, 1, 0};
    if (!th_wait_for(threads_busy_parked, &napping, 3000))
        fail_msg("the nap does not hold the thread");
    int64_t sent = tc_now_ms();
    th_send(pinned, GET_CLOSE); /* its first bytes: it waits for the thread */
    size_t extra = 0;
    int rc = tc_wait_close(pinned, 6000, &extra);
    if ((rc != TC_CLOSED && rc != TC_RESET) || extra != 0) /* its bytes unread: maybe a reset */
        fail_msg("queued pinned connection: %s with %zu bytes after %lld ms (want closed at "
                 "its 2 s deadline, before the nap ends)",
                 tc_result_name(rc), extra, (long long)(tc_now_ms() - sent));
    th_read(napper, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    th_expect_serving(pinned_port);
}

static void ready_request_runs_when_thread_frees(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start_with(fx, NULL, "1", 64);
    for (int i = 0; i < 20; i++) {
        tc_conn_t c[2];
        for (int k = 0; k < 2; k++)
            assert_int_equal(tc_connect(&c[k], s->port, TC_DEFAULT_TIMEOUT_MS), 0);
        const char *nap = "GET /nap?ms=30 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        int rc = tc_send_str(&c[0], nap);
        if (rc == TC_OK)
            rc = tc_send_str(&c[1], GET_CLOSE);
        for (int k = 0; k < 2 && rc == TC_OK; k++) {
            tc_response_t r;
            rc = tc_read_response(&c[k], &r, 0, 10000);
            if (rc == TC_OK && r.status != 200)
                rc = TC_CLOSED;
            if (rc == TC_OK)
                tc_response_free(&r);
        }
        tc_close(&c[0]);
        tc_close(&c[1]);
        if (rc != TC_OK)
            fail_msg("round %d: %s (the request queued behind the nap was not run)", i,
                     tc_result_name(rc));
    }
}

/* Handlers that block hold up nobody else: with every thread but one
 * asleep in a handler, requests that arrive with them and after them are
 * answered at once. (Threads take queued requests one after the other,
 * woken once per batch; a queue that stops moving must wake more.) */
#define BLOCK_THREADS 8
#define BLOCK_NAP_MS 3000
#define BLOCK_BOUND_MS 1500

static void blocked_handlers_leave_the_queue_moving(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start_with(fx, NULL, "8", 64);
    tc_conn_t *nap[BLOCK_THREADS - 1];
    for (int i = 0; i < BLOCK_THREADS - 1; i++)
        nap[i] = th_connect(fx, s->port);
    tc_conn_t *quick = th_connect(fx, s->port);
    /* Back to back, so that they reach the child's queue together with
     * the quick request last. */
    char req[96];
    snprintf(req, sizeof(req), "GET /nap?ms=%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
             BLOCK_NAP_MS);
    for (int i = 0; i < BLOCK_THREADS - 1; i++)
        th_send(nap[i], req);
    int64_t t0 = tc_now_ms();
    th_send(quick, GET_CLOSE);
    tc_response_t r;
    int rc = tc_read_response(quick, &r, 0, 10000);
    int64_t took = tc_now_ms() - t0;
    if (rc != TC_OK || r.status != 200 || took >= BLOCK_BOUND_MS)
        fail_msg("the request sent with %d blocking ones took %lld ms (%s)", BLOCK_THREADS - 1,
                 (long long)took, tc_result_name(rc));
    tc_response_free(&r);
    for (int i = 0; i < 3; i++) {
        took = timed_get(s->port, 10000);
        if (took < 0 || took >= BLOCK_BOUND_MS)
            fail_msg("request %d took %lld ms (-1: none) while %d handlers block", i,
                     (long long)took, BLOCK_THREADS - 1);
    }
    for (int i = 0; i < BLOCK_THREADS - 1; i++) {
        th_read(nap[i], &r, 0);
        assert_int_equal(r.status, 200);
        tc_response_free(&r);
    }
}

/* ------------------------------------------------------------------ */
/* Admission: a busy child leaves new connections to the others          */

static int two_children_idle(void *arg)
{
    mpm_stats_t st = stats_of(arg);
    return st.processes == 2 && st.idle_workers == 2;
}

static int one_thread_busy(void *arg)
{
    return stats_of(arg).busy_workers == 1;
}

/* Two children of one thread each: while one naps in its handler, it stops
 * accepting (no thread to spare), so every new connection goes to the
 * other and is answered at once, none queued behind the nap. */
static void busy_child_leaves_connections_to_others(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"ThreadsPerChild", "1", "StartServers", "2",
                                       "ServerLimit", "2", "MinSpareThreads", "1",
                                       "MaxSpareThreads", "2", "MaxRequestWorkers", "2", NULL};
    th_server_t *s = start_with(fx, dirs, NULL, 0);
    if (!th_wait_for(two_children_idle, s, 20000))
        fail_msg("two children with an idle thread each never showed");
    tc_conn_t *nap = th_connect(fx, s->port);
    th_send(nap, "GET /nap?ms=4000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if (!th_wait_for(one_thread_busy, s, 10000))
        fail_msg("the nap never started");
    for (int i = 0; i < 6; i++) {
        int64_t took = timed_get(s->port, 10000);
        if (took < 0 || took >= 1500)
            fail_msg("request %d took %lld ms (-1: none) while one child naps", i,
                     (long long)took);
    }
    tc_response_t r;
    th_read(nap, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
}

/* How often a process's main thread (an event child's loop) went to
 * sleep and was woken: its voluntary context switches; -1 if unreadable. */
static long loop_wakeups(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, (int)pid);
    return tp_status_number(path, "voluntary_ctxt_switches");
}

/* Ready, not only idle: a child joins the listeners' set once its threads
 * came through their start. */
static int three_children_ready(void *arg)
{
    th_server_t *s = arg;
    if (stats_of(s).processes != 3)
        return 0;
    for (unsigned i = 0; i < 3; i++) {
        mpm_child_stats_t c = {.size = sizeof c};
        if (mpm_server_child_stats(s->srv, i, &c) != 0 || strcmp(c.state, "ready") != 0)
            return 0;
    }
    return 1;
}

#define HERD_CHILDREN 3
#define HERD_CONNECTIONS 30

/* Three idle children and one connection at a time: the kernel wakes one
 * child's loop per connection, not all three (EPOLLEXCLUSIVE only works for
 * a thread sleeping in the listeners' own set; when the loop slept in
 * libuv's, every child woke for every connection and all but one found
 * nothing to accept). */
static void idle_children_are_not_all_woken(void **state)
{
    static const char *const dirs[] = {"ThreadsPerChild", "2", "StartServers", "3",
                                       "ServerLimit", "3", "MinSpareThreads", "1",
                                       "MaxSpareThreads", "6", "MaxRequestWorkers", "6", NULL};
    th_server_t *s = start_with(*state, dirs, NULL, 0);
    if (!th_wait_for(three_children_ready, s, 20000))
        fail_msg("three ready children never showed");
    pid_t pid[HERD_CHILDREN];
    long before[HERD_CHILDREN];
    for (unsigned i = 0; i < HERD_CHILDREN; i++) {
        mpm_child_stats_t c = {.size = sizeof c};
        assert_int_equal(mpm_server_child_stats(s->srv, i, &c), 0);
        pid[i] = c.pid;
        before[i] = loop_wakeups(pid[i]);
        assert_true(before[i] >= 0);
    }
    for (int i = 0; i < HERD_CONNECTIONS; i++)
        if (timed_get(s->port, 10000) < 0)
            fail_msg("request %d got no answer", i);
    long woke[HERD_CHILDREN];
    int quiet = 0;
    for (unsigned i = 0; i < HERD_CHILDREN; i++) {
        woke[i] = loop_wakeups(pid[i]) - before[i];
        quiet += woke[i] < HERD_CONNECTIONS / 2;
    }
    if (quiet == 0)
        fail_msg("%d connections one at a time woke the children's loops %ld, %ld and %ld "
                 "times: every child woke for every connection",
                 HERD_CONNECTIONS, woke[0], woke[1], woke[2]);
}

/* ------------------------------------------------------------------ */
/* Admission: AsyncConnectionLimit                                    */

#define LIMIT_CONNS 8

/* A kept-alive GET on c, answered 200. */
static void get_ok(tc_conn_t *c)
{
    th_send(c, GET_KEEP);
    tc_response_t r;
    int rc = tc_read_response(c, &r, 0, TC_DEFAULT_TIMEOUT_MS);
    if (rc != TC_OK)
        fail_msg("no answer: %s", tc_result_name(rc));
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
}

static int all_parked(void *arg)
{
    return stats_of(arg).parked_connections == LIMIT_CONNS;
}

/* At AsyncConnectionLimit a new connection is taken, and the oldest parked
 * one makes way for it: closed cleanly, while the others stay usable. */
static void connection_limit_closes_oldest_parked(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"AsyncConnectionLimit", "8", "KeepAliveTimeout", "60",
                                       NULL};
    th_server_t *s = start_with(fx, dirs, NULL, 64);
    tc_conn_t *c[LIMIT_CONNS];
    for (int i = 0; i < LIMIT_CONNS; i++) {
        c[i] = th_connect(fx, s->port);
        get_ok(c[i]);
    }
    if (!th_wait_for(all_parked, s, 10000))
        fail_msg("parked_connections %u, expected %d", stats_of(s).parked_connections,
                 LIMIT_CONNS);
    tc_conn_t *extra = th_connect(fx, s->port);
    get_ok(extra);
    int rc = tc_wait_close(c[0], 10000, NULL);
    if (rc != TC_CLOSED)
        fail_msg("the oldest parked connection was not closed cleanly (%s)", tc_result_name(rc));
    for (int i = 1; i < LIMIT_CONNS; i++)
        get_ok(c[i]);
}

static int all_reading(void *arg)
{
    return stats_of(arg).reading_connections == LIMIT_CONNS;
}

/* At AsyncConnectionLimit with no connection parked (all are still sending
 * their heads) the child stops accepting: a new client waits in the
 * backlog, also once one of the eight is answered and parked (hysteresis),
 * until one of them closes (an eighth below the limit); then it is
 * served. */
static void connection_limit_without_parked_stops_accepting(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"AsyncConnectionLimit", "8", NULL};
    th_server_t *s = start_with(fx, dirs, NULL, 64);
    tc_conn_t *c[LIMIT_CONNS];
    for (int i = 0; i < LIMIT_CONNS; i++) {
        c[i] = th_connect(fx, s->port);
        th_send(c[i], "GET / HTTP/1.1\r\nHo"); /* a head still arriving */
    }
    if (!th_wait_for(all_reading, s, 10000))
        fail_msg("reading_connections %u, expected %d", stats_of(s).reading_connections,
                 LIMIT_CONNS);
    tc_conn_t *waiting = th_connect(fx, s->port); /* the kernel's backlog takes it */
    th_send(waiting, GET_KEEP);
    /* Proving that nothing happens takes a bounded wait. */
    if (tc_readable(waiting, 1500))
        fail_msg("a ninth connection was served at AsyncConnectionLimit 8 with none parked");
    /* One of them answered and parked: the child stopped accepting, so it
     * starts again only an eighth below the limit, not at once. */
    th_send(c[0], "st: t\r\n\r\n");
    tc_response_t r;
    th_read(c[0], &r, 0);
    tc_response_free(&r);
    if (tc_readable(waiting, 1500))
        fail_msg("accepting again at the limit, before it was an eighth below");
    tc_close(c[1]); /* 7 of 8: an eighth below */
    int rc = tc_read_response(waiting, &r, 0, TC_DEFAULT_TIMEOUT_MS);
    if (rc != TC_OK)
        fail_msg("the waiting client, 7 connections of 8: %s", tc_result_name(rc));
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
}

/* ------------------------------------------------------------------ */
/* Pinning: the hook TLS plugs into                                   */

/* Answers with the id of the thread that ran the handler. */
static void thread_id_handler(mpm_request_t *req, void *data)
{
    (void)data;
    char body[32];
    int n = snprintf(body, sizeof body, "%lu", (unsigned long)pthread_self());
    mpm_response_send(req, body, (size_t)n);
}

static unsigned long thread_of(tc_conn_t *c, const char *raw)
{
    th_send(c, raw);
    tc_response_t r;
    int rc = tc_read_response(c, &r, 0, TC_DEFAULT_TIMEOUT_MS);
    if (rc != TC_OK)
        fail_msg("no answer: %s", tc_result_name(rc));
    assert_int_equal(r.status, 200);
    unsigned long id = strtoul(r.body, NULL, 10);
    tc_response_free(&r);
    return id;
}

/* A connection whose transport says "pinned" (TLS, by default) keeps the
 * thread that took it, keep-alive waits included: with one thread, a second
 * client is answered only once the pinned connection is gone (unpinned, the
 * idle connection would be parked and the thread free at once). */
static void pinned_connection_keeps_its_thread(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx);
    if (th_server_set(s, "ThreadsPerChild", "1") != 0)
        fail_msg("config: %s", s->errmsg);
    mpm_config_set_handler(th_server_config(s), thread_id_handler, NULL);
    (void)run_with_pinned_listener(s, 0);
    tc_conn_t *a = th_connect(fx, s->port);
    unsigned long mine = thread_of(a, GET_KEEP);
    if (thread_of(a, GET_KEEP) != mine)
        fail_msg("the pinned connection's second request moved to another thread");
    tc_conn_t *b = th_connect(fx, s->port);
    th_send(b, GET_CLOSE);
    if (tc_readable(b, 1000))
        fail_msg("another client was answered while the pinned connection held the only thread");
    assert_int_equal(stats_of(s).parked_connections, 0);
    th_disconnect(a);
    tc_response_t r;
    int rc = tc_read_response(b, &r, 0, TC_DEFAULT_TIMEOUT_MS);
    if (rc != TC_OK)
        fail_msg("no answer once the pinned connection closed: %s", tc_result_name(rc));
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
}

int main(void)
{
    choose_strategy();
    const struct CMUnitTest tests[] = {
        EV_CASE(idle_connections_park_and_stay_usable),
        EV_CASE_MP(idle_connections_park_and_stay_usable),
        EV_CASE(parked_connections_close_at_keepalive_timeout),
        EV_CASE_MP(parked_connections_close_at_keepalive_timeout),
        EV_CASE(slow_clients_leave_threads_free),
        EV_CASE(large_response_to_slow_reader_holds_no_thread),
        EV_CASE(pinned_connection_keeps_its_thread),
        EV_CASE(connection_limit_closes_oldest_parked),
        EV_CASE(connection_limit_without_parked_stops_accepting),
        EV_CASE(ready_request_runs_when_thread_frees),
        EV_CASE(queued_connection_sending_more_is_served_once),
        EV_CASE(queued_pinned_connection_meets_its_handshake_deadline),
        EV_CASE(blocked_handlers_leave_the_queue_moving),
        EV_CASE_MP(blocked_handlers_leave_the_queue_moving),
        EV_CASE_MP(idle_children_are_not_all_woken),
        EV_CASE_MP(busy_child_leaves_connections_to_others),
        EV_CASE(stalled_reader_closed_after_timeout),
        EV_CASE(graceful_restarts_under_keepalive_load), /* mpmserve: a master */
        EV_CASE(slow_small_body_is_echoed),
        EV_CASE_MP(slow_small_body_is_echoed),
        EV_CASE(pipelined_burst_answered_in_order),
        EV_CASE_MP(pipelined_burst_answered_in_order),
        EV_CASE(pipelined_past_the_buffer_all_answered),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
