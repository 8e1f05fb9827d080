/* Helpers for the tests that drive mpmserve's master and process pool
 * (test_pool*.c): starting a small pool, one-shot requests, /status numbers,
 * and steady background load. */
#ifndef MPM_TEST_POOL_H
#define MPM_TEST_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "harness.h"

#define TPOOL_MAX_KIDS 256

/* mpmserve --mpm fx->strategy --test-routes with a pool small enough that
 * growth and shrinking show within seconds (prefork: 2 to 4 idle children;
 * worker: 4 threads a child, 8 to 12 idle threads), then the extra
 * arguments. Skips the case when the strategy is not built. */
th_process_t *tpool_start(th_fixture_t *fx, const char *const *extra);
/* The same, with mpmserve's stderr kept in p->log once stopped. */
th_process_t *tpool_start_logged(th_fixture_t *fx, const char *const *extra);

/* GET target on a fresh connection: whether it answered 200. */
int tpool_get_ok(int port, const char *target);
/* The body of GET target (caller frees), or NULL unless 200. */
char *tpool_get_body(int port, const char *target);
/* A number of GET /status's summary ("generation", "busy_workers" ...), or -1. */
long tpool_status_number(int port, const char *key);
/* GET /pid on an open kept-alive connection: the pid of the process that
 * serves it; fails the case on any error. */
pid_t tpool_conn_pid(tc_conn_t *c);

/* Live children of master / waits until their number is within bounds. */
int tpool_children(pid_t master, pid_t *kids, int max);
int tpool_wait_children(pid_t master, int at_least, int at_most, int timeout_ms);

/* Clients sending requests back to back on their own threads. */
typedef struct tpool_load {
    int port;
    const char *target;
    int keepalive;
    int until_close; /* stop at the server's Connection: close or refusal */
    atomic_int stop;
    atomic_int ok, failed;
    pthread_t threads[32];
    int nthreads;
} tpool_load_t;

void tpool_load_start(tpool_load_t *l, int port, const char *target, int nthreads, int keepalive,
                      int until_close);
void tpool_load_stop(tpool_load_t *l);

#endif
