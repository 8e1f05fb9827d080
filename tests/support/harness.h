/* Starts real servers for integration tests: in-process (one-process mode,
 * mpm_server_run() on a pthread) or the mpmserve binary as a child process.
 *
 * Strategy matrix: each test case is a function of the strategy. TH_MATRIX(f)
 * expands to one cmocka test per strategy ("f[prefork]", "f[worker]",
 * "f[event]") with th_setup/th_teardown; a case asks its fixture for a server
 * (th_start_server) and is skipped when that strategy is not built. Everything
 * a case starts through the fixture (servers, processes, connections) is
 * cleaned up by th_teardown, also when an assertion failed.
 *
 * Multi-process variants: a strategy name with the suffix "-mp" ("prefork-mp",
 * "worker-mp", "event-mp") runs the same server with OneProcess Off: a master
 * (on the test's thread, HandleSignals Off) forks children that serve, so a
 * suite checks its answers where they matter in production. TH_MATRIX_MP(f)
 * adds those cases to TH_MATRIX(f). The callbacks then run in the children:
 * the log and access log a test sees are the master's only; what the handler
 * must report across processes goes through th_server_t.shared. */
#ifndef MPM_TEST_HARNESS_H
#define MPM_TEST_HARNESS_H

#include <mpmlib/mpmlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "client.h"

#define TH_NSTRATEGIES 3
extern const char *const th_strategies[TH_NSTRATEGIES];

/* Whether this build has the strategy (mpm_server_new with MPM=name does not
 * give MPM_ENOTSUP). Cached. A "-mp" name asks about its base strategy. */
int th_strategy_built(const char *name);
/* Whether a strategy name is a multi-process variant ("...-mp"). */
int th_strategy_is_mp(const char *name);

/* What the test handler records where every process of a server can write
 * it (a MAP_SHARED page made before any fork). */
typedef struct th_shared {
    /* tc_now_ms() when /echo last began reading the body (after its
     * ?delay_ms=N pause), for ordering checks such as 100-continue. */
    atomic_llong echo_read_start_ms;
    atomic_int naps_started; /* /nap requests that entered the handler */
    atomic_int naps_cut;     /* ... that ended early because the server stopped */
} th_shared_t;

/* ---- in-process server ---- */

#define TH_MAX_ACCESS 512

typedef struct th_access {
    char remote[64];
    char method[16];
    char target[256];
    int version;
    int status;
    uint64_t bytes;
} th_access_t;

typedef struct th_server {
    const char *strategy; /* the base strategy ("worker" for "worker-mp") */
    int multi_process;    /* a "-mp" variant: OneProcess Off */
    mpm_config_t *cfg;  /* until started; th_server_config() gives it */
    mpm_server_t *srv;
    int port;
    char errmsg[512];   /* why start failed / what run returned */

    pthread_t thread;
    int thread_started;
    int joined;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int run_done;       /* under lock */
    int run_rc;

    /* What the callbacks saw (under lock). */
    char *log;          /* "LEVEL message\n" lines */
    size_t log_len;
    th_access_t access[TH_MAX_ACCESS];
    size_t naccess;
    atomic_int handler_calls;   /* in-process servers only */
    th_shared_t *shared;        /* seen by every process of the server */

    /* The file /file sends: path, length and content. */
    char file_path[64];
    unsigned char *file_data;
    size_t file_len;
} th_server_t;

/* A configuration with Listen 127.0.0.1:0, OneProcess On, MPM=strategy, the
 * test handler, and capturing log and access-log callbacks. NULL on failure.
 * A "-mp" strategy gets OneProcess Off, HandleSignals Off and a small pool
 * (StartServers 2, few spares) instead. */
th_server_t *th_server_create(const char *strategy);
/* The same without the Listen directive (the test adds its own listener). */
th_server_t *th_server_create_bare(const char *strategy);
/* mpm_config_set on the server's configuration (before start). */
int th_server_set(th_server_t *s, const char *key, const char *value);
mpm_config_t *th_server_config(th_server_t *s);
/* mpm_server_new, mpm_server_bind, port of listener 0, run on a thread.
 * Returns 0 or the failing MPM_E* code (reason in s->errmsg). */
int th_server_start(th_server_t *s);
/* mpm_server_new and run on a thread without binding first (for start-up
 * failures that run() must report). */
int th_server_launch(th_server_t *s);
/* The two halves of th_server_launch: mpm_server_new into s->srv, and
 * mpm_server_run on a thread (for calls in between, e.g. stop before run). */
int th_server_new(th_server_t *s);
int th_server_run_async(th_server_t *s);
/* Multi-process: waits (bounded, allocating nothing) until the master's
 * first StartServers children are up. A fork while this thread holds a
 * lock the child needs (ASan's allocator, OpenSSL's method store while
 * this thread is in a TLS handshake) leaves that child stuck for good, so
 * a test does such work only once the forks are done and the pool is
 * sized to need no more (th_start_server waits by itself). */
void th_server_wait_children(th_server_t *s);
/* Waits up to timeout_ms for mpm_server_run() to return; 1 if it did. */
int th_server_wait_run(th_server_t *s, int timeout_ms);
/* mpm_server_stop, then waits (bounded) for run to return and joins.
 * Returns 0, or -1 if run did not return in time. */
int th_server_stop(th_server_t *s, int graceful);
/* Stops if needed and frees everything (leaks the server, with a message, if
 * its thread did not finish). */
void th_server_destroy(th_server_t *s);
/* Number of access-log entries so far / a copy of entry i. */
size_t th_server_access_count(th_server_t *s);
th_access_t th_server_access_at(th_server_t *s, size_t i);
/* Whether the captured log contains the text. */
int th_server_log_contains(th_server_t *s, const char *text);
size_t th_server_log_length(th_server_t *s);

/* The test handler (exported so tests can build their own configs). `data`
 * must be a th_server_t. Routes: / /echo /echo-whole /count /stream?n=K
 * /sleep?ms=N /file /noresponse /status/N /headers /info, /pid (the serving
 * process's pid), /nap?ms=N (sleeps like /sleep but ends early, with 200
 * "cut", once the server is stopping, e.g. a child that got SIGTERM) and
 * /bytes?n=N (N bytes of th_pattern_byte() in one mpm_response_send()),
 * /file-bytes?n=N (the same bytes from a file, by mpm_response_send_file()). */
void th_handler(mpm_request_t *req, void *data);
/* Byte i of what /bytes sends. */
unsigned char th_pattern_byte(size_t i);

/* ---- mpmserve child process ---- */

typedef struct th_process {
    pid_t pid;    /* 0 when none / reaped */
    int out_fd;   /* read end of its stdout */
    int port;
    int status;   /* waitpid status once reaped */
    int err_fd;   /* started logged: its stderr (a memfd), until stopped */
    char *log;    /* started logged: its whole stderr once stopped (freed by
                   * the fixture's teardown, or by the caller) */
} th_process_t;

/* Path of the mpmserve binary from MPMSERVE_BIN, or NULL. */
const char *th_mpmserve_path(void);
/* Forks and execs mpmserve with args (NULL-terminated), its stdout into
 * out_fd and its stderr into err_fd (-1: the test's), with no other
 * descriptor open. Returns the pid (the caller waits for it), or -1. */
pid_t th_spawn_mpmserve(const char *const *args, int out_fd, int err_fd);
/* fork+exec mpmserve with args (NULL-terminated) and waits (bounded) for its
 * "mpmserve: listening on 127.0.0.1:PORT" line. Returns 0, or -1 with the
 * process cleaned up. */
int th_process_start(th_process_t *p, const char *const *args, int timeout_ms);
/* The same, keeping its stderr: th_process_stop() puts it in p->log (and
 * echoes it to the test's stderr). */
int th_process_start_logged(th_process_t *p, const char *const *args, int timeout_ms);
/* Sends sig, waits up to timeout_ms for exit, then SIGKILLs and reaps.
 * Returns 0 if it exited in time (status in p->status), -1 if it had to be
 * killed. */
int th_process_stop(th_process_t *p, int sig, int timeout_ms);

/* ---- fixture for the strategy matrix ---- */

#define TH_MAX_SERVERS 4
#define TH_MAX_PROCS 2
#define TH_MAX_CONNS 16

typedef struct th_fixture {
    const char *strategy;
    th_server_t *servers[TH_MAX_SERVERS];
    size_t nservers;
    th_process_t procs[TH_MAX_PROCS];
    size_t nprocs;
    tc_conn_t conns[TH_MAX_CONNS];
    size_t nconns;
} th_fixture_t;

int th_setup(void **state);
int th_teardown(void **state);

/* A server for this case's strategy, not started (skips the case when the
 * strategy is not built; fails it on other errors). Owned by the fixture. */
th_server_t *th_new_server(th_fixture_t *fx);
/* th_new_server without the default Listen. */
th_server_t *th_new_bare_server(th_fixture_t *fx);
/* th_new_server + th_server_set for each (key, value) pair of the
 * NULL-terminated list + th_server_start; fails the case on error. */
th_server_t *th_start_server(th_fixture_t *fx, const char *const *directives);
/* A connection to 127.0.0.1:port owned by the fixture; fails the case if it
 * does not connect within the default bound. */
tc_conn_t *th_connect(th_fixture_t *fx, int port);
/* A fixture connection that has completed one GET / (200) and is left open,
 * kept alive: it holds whatever serves it (a prefork child, a worker thread). */
tc_conn_t *th_hold_connection(th_fixture_t *fx, int port);
/* Closes a fixture connection early (it is skipped by teardown). */
void th_disconnect(tc_conn_t *c);
/* An mpmserve process owned by the fixture (skips if MPMSERVE_BIN unset). */
th_process_t *th_start_mpmserve(th_fixture_t *fx, const char *const *args);
/* The same, started logged (th_process_start_logged). */
th_process_t *th_start_mpmserve_logged(th_fixture_t *fx, const char *const *args);

/* One request on a fresh connection; fails the case unless a full response
 * arrives. The caller frees r. */
void th_request(int port, const char *raw, tc_response_t *r);

/* Reads one response on c; fails the case unless it arrives complete. */
void th_read(tc_conn_t *c, tc_response_t *r, int head_request);
/* Sends raw on c; fails the case on a send error. */
void th_send(tc_conn_t *c, const char *raw);
/* Fails the case unless the server closes c (clean EOF) within the default
 * bound. */
void th_expect_closed(tc_conn_t *c);
/* Fails the case unless GET / on a fresh connection answers 200. */
void th_expect_serving(int port);

/* Polls cond(arg) until it is true or timeout_ms passes (short naps between
 * checks; for conditions that have no event to wait on). */
int th_wait_for(int (*cond)(void *arg), void *arg, int timeout_ms);

/* Runs only the cases matching the TH_FILTER environment variable (a cmocka
 * pattern such as "*[worker]"), when it is set. Call before running. */
void th_apply_filter(void);

#define TH_CASE(f, strategy) {#f "[" strategy "]", f, th_setup, th_teardown, (void *)strategy}
#define TH_MATRIX(f) TH_CASE(f, "prefork"), TH_CASE(f, "worker"), TH_CASE(f, "event")
/* TH_MATRIX plus the multi-process variants. */
#define TH_MATRIX_MP(f)                                                                            \
    TH_MATRIX(f), TH_CASE(f, "prefork-mp"), TH_CASE(f, "worker-mp"), TH_CASE(f, "event-mp")

/* The exit status that tells ctest a whole program was skipped (see
 * SKIP_RETURN_CODE in tests/CMakeLists.txt). */
#define TH_SKIP_EXIT 77
/* For programs that need mpmserve: exits TH_SKIP_EXIT, with a message, when
 * MPMSERVE_BIN is not set, so that the skip shows in ctest's summary. */
void th_require_mpmserve(void);

#endif
