/* The worker thread pool and its bounded hand-off queue, shared by the
 * threaded strategies. A listener hands accepted connections to idle
 * threads; each thread serves what it is handed to the end. */
#ifndef MPM_CORE_POOL_H
#define MPM_CORE_POOL_H

#include "internal.h"

#include <pthread.h>

typedef struct mpm__pool mpm__pool_t;

/* What a pool thread runs for one hand-off. `unit` is the thread's own
 * scoreboard entry; `a` (the fd, its listener and peer) is borrowed for the
 * call. It must not close a->fd: it returns 0 and the pool closes it
 * afterwards, so that a stop past its bound can shut the connection down
 * without racing the fd's reuse; or it returns 1 when the connection went
 * on elsewhere (handed back to the event loop), and the fd stays open. */
typedef int (*mpm__pool_work_fn)(mpm__pool_t *pool, mpm__sb_worker_t *unit,
                                 const mpm__accepted_t *a);

/* Batch mode (mpm__pool_batch): queued items wait for whichever thread
 * comes next, so a push wakes no thread; mpm__pool_kick wakes one per
 * queued item up to the CPUs the process may run on (more could not run
 * at once: they would only switch), and a thread that finishes an item
 * takes the next one itself before it sleeps. */

struct mpm__pool {
    mpm_server_t *srv;
    mpm__pool_work_fn work;
    pthread_t *threads;
    unsigned nthreads, started;
    unsigned exited;        /* started threads that have ended: neither busy nor idle */
    unsigned starting;      /* started threads not yet at their first wait: not busy */
    unsigned live;          /* threads started and not yet finished */
    int *busy_fd;           /* per thread: the connection it serves, or -1 */
    unsigned char *finished;/* per thread: returned (joinable at once) */
    int abandoned;          /* stop gave up waiting: the last thread frees the pool */
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    pthread_cond_t thread_done;
    mpm__accepted_t *queue; /* ring of nthreads hand-offs: never more waiting than threads */
    unsigned head, len;
    unsigned idle;          /* threads waiting for work, not yet handed any */
    int stopping;
    int idle_efd;           /* eventfd: a thread became idle while the listener waited */
    int listener_waiting;
    int init_failed;        /* a thread init hook failed */
    void *user;             /* the strategy's, set before the first push */
    /* Batch mode: who will look at the queue without being signalled. */
    int batch;
    unsigned sleeping;      /* threads in the condition wait */
    unsigned waking;        /* of which signalled, not yet back */
    unsigned running;       /* threads in an item */
    unsigned long taken;    /* items taken so far: progress */
    unsigned long kick_seen, watch_seen; /* `taken` at the last kick, watch */
    unsigned ncpu;          /* CPUs this process may run on (at batch start) */
};

/* Allocates a pool and starts nthreads threads (thread init hooks run in
 * each) into *out. Returns 0 or a negative code; on failure no thread is
 * left running and nothing is allocated. */
int mpm__pool_start(mpm__pool_t **out, mpm_server_t *srv, unsigned nthreads,
                    mpm__pool_work_fn work);

/* Before the first hand-off, whether every thread came through its init
 * hook: 1 all of them, 0 not yet, -1 a hook failed. */
int mpm__pool_ready(mpm__pool_t *pool);

/* Threads that are idle and not yet handed a connection. */
unsigned mpm__pool_idle(mpm__pool_t *pool);

/* Hands an accepted connection (copied) to an idle thread. Returns 0, or
 * MPM_EAGAIN if none is idle (the caller keeps the fd). In batch mode the
 * item is queued for the next thread free and no thread is woken: the
 * caller calls mpm__pool_kick once it pushed what it had. */
int mpm__pool_push(mpm__pool_t *pool, const mpm__accepted_t *a);

/* Puts the pool in batch mode, before the first push. */
void mpm__pool_batch(mpm__pool_t *pool);

/* Batch mode, after a round of pushes: wakes threads for the queue, one
 * per item queued up to the CPU count, counting those already coming (woken,
 * or running items while items were taken since the last kick), plus one
 * for each of `holders` items just pushed that hold their thread for long.
 * Call it before the caller sleeps. */
void mpm__pool_kick(mpm__pool_t *pool, unsigned holders);

/* Batch mode, on a timer while items are out: if items are queued and no
 * thread took one since the last call, every queued item gets a thread of
 * its own (handlers that block must not hold up the queue). */
void mpm__pool_watch(mpm__pool_t *pool);

/* Items queued and not yet taken by a thread. */
unsigned mpm__pool_queued(mpm__pool_t *pool);

/* Arms idle_efd: it becomes readable as soon as a thread is idle (at once if
 * one already is). Lets the listener wait for a thread and for a stop in one
 * poll. */
void mpm__pool_want_idle(mpm__pool_t *pool);

/* Drains idle_efd after it fired. */
void mpm__pool_idle_seen(mpm__pool_t *pool);

/* Asks every thread to exit once its current connection is done (the
 * connection itself follows the server's stop state), waits for them until
 * deadline_ms (monotonic; 0 = for as long as it takes) and frees the pool.
 * Queued, not yet served fds are closed.
 *
 * Past the deadline the threads still serving are abandoned: the server is
 * stopped hard, their connections are shut down (so the library's I/O for
 * them fails at once and their clients see the close), and the threads are
 * detached: a handler blocked in its own code cannot be interrupted. The
 * last of them frees the pool and releases the server (see
 * mpm__server_orphans_*), so mpm_server_free() waits for them.
 * Returns MPM_ECHILD if a thread init hook failed, else 0. */
int mpm__pool_stop(mpm__pool_t *pool, int64_t deadline_ms);

/* The deadline a strategy gives mpm__pool_stop(): a graceful stop is
 * bounded by GracefulShutdownTimeout (0: no bound), counted from when it
 * began; a hard one waits for the handlers. */
int64_t mpm__pool_stop_deadline(mpm_server_t *srv);

#endif
