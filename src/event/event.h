/* The event child: one libuv loop thread that owns every connection not in
 * a handler (accept, head reading, parking, write completion, lingering
 * close) and core's thread pool for the handlers. Private to src/event/. */
#ifndef MPM_EVENT_EVENT_H
#define MPM_EVENT_EVENT_H

#include "core/conn.h"
#include "core/pool.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <uv.h>

/* Timeout queues: FIFO lists, one per timeout value, driven by one timer.
 * The values are powers of two (1 ms .. 2^EV_TQ_TOP ms): a connection waits
 * in the queue of the largest value not past its deadline and is checked
 * when that runs out; if its deadline is still ahead (RequestReadTimeout's
 * MinRate moves it) it moves on to a shorter queue. Every queue's entries
 * are in check order, so insert, remove and expiry are O(1). */
#define EV_TQ_TOP 21
#define EV_TQ_COUNT (EV_TQ_TOP + 1)

typedef struct ev_conn ev_conn_t;

/* A connection in the loop's epoll set (event_io.c). */
typedef enum ev_io_state { EV_IO_NONE, EV_IO_ARMED, EV_IO_DISARMED } ev_io_state_t;

/* Readiness events taken per wake-up. */
#define EV_IO_BATCH 256

typedef struct ev_tq {
    ev_conn_t *head, *tail;
} ev_tq_t;

/* Which scoreboard count a connection is in. */
typedef enum ev_count { EV_COUNT_NONE, EV_COUNT_READING, EV_COUNT_PARKED, EV_COUNT_WRITING,
                        EV_COUNT_LINGERING } ev_count_t;

struct ev_conn {
    mpm__conn_t *c;
    struct ev_child *ev;
    ev_conn_t *tq_prev, *tq_next; /* in a timeout queue */
    int64_t check_ms;             /* when its queue looks at it again */
    int64_t deadline_ms;          /* what it waits until (ev_tq_add) */
    ev_conn_t *next;              /* ready queue, hand-back list */
    ev_conn_t *all_prev, *all_next; /* every connection, oldest first */
    signed char tq;               /* queue index, -1: in none */
    unsigned char count;          /* ev_count_t */
    unsigned char in_worker;      /* a pool thread has it */
    unsigned char in_ready;       /* in the ready queue: waits for a thread */
    unsigned char pinned;         /* its transport keeps it on one thread for life */
    unsigned char park_pending;   /* parked, buffers not yet given back */
    /* Readiness (event_io.c), the loop's alone: an edge came since the
     * loop last did I/O that way; with c->in_dry / c->out_dry it tells
     * whether to try now or wait for the next edge. */
    unsigned char rd_edge, wr_edge;
    unsigned char io_state;       /* ev_io_state_t */
    unsigned char worker_edges;   /* edges while a thread had it */
    unsigned char reserving;      /* pinned, first bytes awaited: a thread is promised */
};

typedef struct ev_child {
    mpm_server_t *srv;
    mpm__pool_t *pool;
    uv_loop_t loop;
    uv_timer_t timer;             /* the timeout queues' one timer */
    int64_t timer_at;             /* armed for (0: not) */
    uv_async_t handback;          /* pool threads hand connections back */
    uv_prepare_t prepare;         /* before the loop sleeps: hand-backs, thread wake-ups */
    uv_timer_t watch;             /* while items are out: stalls, deferred hand-backs */
    unsigned holders;             /* pushed since the last kick, holding a thread for long */
    uv_poll_t wake[2];            /* the server's wake fds */
    unsigned nwake_watched;
    uv_poll_t io_poll;            /* the connections' epoll set (event_io.c) */
    int io_ep;
    struct epoll_event io_batch[EV_IO_BATCH]; /* the events being handled */
    int io_n, io_i;               /* how many, which one */
    int accept_ep;                /* the listeners and libuv's set: the loop sleeps here */
    unsigned accepting;           /* bit i: listener i is watched */
    uv_poll_t idle_poll;          /* the pool's idle eventfd */
    int idle_watched;
    uv_timer_t tick;              /* start-up and drain rechecks */
    uv_check_t check;             /* admission, after each loop iteration */
    ev_tq_t tq[EV_TQ_COUNT];
    ev_conn_t *ready_head, *ready_tail; /* complete heads waiting for a thread */
    unsigned nready;
    ev_conn_t *all_head, *all_tail;
    unsigned nconns;              /* every live connection of the child */
    unsigned in_workers;          /* of which pool threads hold */
    unsigned nparked;
    unsigned nwarm;               /* parked, buffers not yet given back */
    unsigned pinned_reserved;     /* pinned connections holding a thread's promise */
    unsigned parks_since_trim;    /* buffers given back since the last malloc_trim */
    int64_t last_trim_ms;
    /* Admission (httpd's AsyncRequestWorkerFactor, in thousandths). */
    unsigned factor_milli;
    unsigned conn_limit;
    int over_limit;               /* stopped accepting for conn_limit */
    int over_threads;             /* stopped accepting: no thread to spare */
    int64_t backoff_until;        /* out of fds: accept again then */
    /* The hand-back list, filled by pool threads under its lock. */
    pthread_mutex_t lock;
    ev_conn_t *back_head, *back_tail;
    int loop_sleeping;            /* the loop may be asleep: a hand-back must wake it */
    int loop_closed;              /* threads free what they hand back */
    int orphaned;                 /* run() returned: the last such thread frees ev */
    atomic_uint outstanding;      /* connections in threads */
    atomic_uint waking;           /* threads about to uv_async_send */
    int loop_open;
    int loop_ended;               /* ev_loop_end() was called */
    /* Stop. */
    int ready;                    /* threads came through their init hooks */
    int stopping;                 /* MPM__STOP_* seen by the loop */
    int64_t drain_until;
    int64_t bound_passed_ms;      /* GracefulShutdownTimeout ended the loop */
    unsigned accepted;
    int spent;                    /* MaxConnectionsPerChild reached or listeners shut */
    int rc;                       /* the child's result */
} ev_child_t;

/* event_timeq.c */
void ev_tq_init(ev_child_t *ev);
void ev_tq_add(ev_child_t *ev, ev_conn_t *e, int64_t deadline_ms);
void ev_tq_remove(ev_child_t *ev, ev_conn_t *e);
/* The connections whose deadline passed are handed to ev_conn_timed_out;
 * the timer is re-armed for the next check. */
void ev_tq_run(ev_child_t *ev);
void ev_tq_arm(ev_child_t *ev);
/* Gives memory freed by parking back to the system (malloc_trim), at most
 * once a second, after EV_TRIM_AFTER_PARKS parks. */
#define EV_TRIM_AFTER_PARKS 64
#define EV_TRIM_EVERY_MS 1000
void ev_trim_after_parking(ev_child_t *ev, int64_t now);

/* event_io.c: every connection's fd sits in one epoll set of the loop's,
 * edge-triggered, from accept to close: no epoll_ctl per request. */
int ev_io_open(ev_child_t *ev);
void ev_io_close(ev_child_t *ev);
/* Registers e (both directions); its fd counts as dry until its first
 * edges, which the kernel sends at once for what is ready. */
int ev_io_add(ev_child_t *ev, ev_conn_t *e);
/* Out of the set (and out of the events being handled). */
void ev_io_remove(ev_child_t *ev, ev_conn_t *e);
/* A thread took e: edges are only noted, and after a few the fd is
 * disarmed so that a handler reading its body does not keep waking the
 * loop. A thread that keeps e for life (pinned) takes it out. */
void ev_io_to_thread(ev_child_t *ev, ev_conn_t *e);
/* e came back from its thread: re-armed if it was disarmed; a negative
 * error if it cannot be watched again (close it). */
int ev_io_from_thread(ev_child_t *ev, ev_conn_t *e);
/* Whether what e's state waits for may be there now (no edge needed). */
int ev_io_ready(const ev_conn_t *e);
/* The loop is about to do I/O the way e waits: edges before it are spent. */
void ev_io_consume(ev_conn_t *e);
/* An edge came for e: stepped if the loop has it and it is ready. */
void ev_conn_io(ev_conn_t *e);

/* event_conn.c */
/* 0, or -1 when it could not be opened (the caller closes a->fd). */
int ev_conn_open(ev_child_t *ev, const mpm__accepted_t *a);
/* The connection reached state st (in the loop): watch, queue, count or
 * dispatch it accordingly. */
void ev_conn_settle(ev_conn_t *e, mpm__conn_state_t st);
void ev_conn_timed_out(ev_conn_t *e);
void ev_conn_close(ev_conn_t *e);
/* Frees e and closes its fd, nothing else: for a connection no list,
 * queue or epoll set holds (ev_conn_close's end; after the loop is gone a
 * thread frees what it would hand back). */
void ev_conn_free(ev_conn_t *e);
/* A graceful stop began: idle connections get the drain window. */
void ev_conn_drain_all(ev_child_t *ev);
/* Hard stop: every connection the loop holds is closed. */
void ev_conn_close_all(ev_child_t *ev);
/* Closes the oldest parked connection; 0 if none was parked. */
int ev_conn_close_oldest_parked(ev_child_t *ev);
/* How long a pinned connection that awaits its first bytes counts against
 * the child's free threads: a real client sends its ClientHello at once;
 * a silent one stops blocking admission after this. */
#define EV_PIN_RESERVE_MS 1000

/* event_handoff.c */
/* Gives connections with a complete head to idle pool threads, oldest
 * first; the rest wait in the ready queue. */
void ev_dispatch(ev_child_t *ev);
void ev_ready_push(ev_child_t *ev, ev_conn_t *e);
void ev_ready_remove(ev_child_t *ev, ev_conn_t *e);
int ev_work(mpm__pool_t *pool, mpm__sb_worker_t *unit, const mpm__accepted_t *a);
void ev_handback_cb(uv_async_t *h);
/* Just before libuv polls: takes what threads handed back meanwhile
 * (they send no wake-up while the loop is awake), wakes threads for the
 * iteration's ready heads and keeps the watch timer while items are out. */
void ev_handback_prepare(uv_prepare_t *h);
/* The same just before the loop sleeps in ev_accept_wait: 1 if nothing
 * came back (from now on a hand-back wakes the loop), 0 if something did
 * (the loop runs again before it sleeps). */
int ev_handback_before_sleep(ev_child_t *ev);
/* After the loop's poll: it is awake, hand-backs need not wake it. */
void ev_handback_awake(ev_child_t *ev);
/* The watch timer's period: how long a stalled queue or a deferred
 * hand-back may wait at most. */
#define EV_WATCH_MS 10
/* The loop is ending: from now on threads free what they would hand back;
 * returns what they handed back before (free it once the loop's close
 * callbacks ran). */
ev_conn_t *ev_handback_stop(ev_child_t *ev);
void ev_handback_free(ev_conn_t *list);
/* After the pool stopped: 0 when no connection is left in a thread (the
 * caller frees the child), 1 when abandoned threads still hold some: the
 * last of them frees the child (ev_child_free) when it hands back. */
int ev_handback_release(ev_child_t *ev);
void ev_child_free(ev_child_t *ev);

/* event.c: the periodic check a graceful stop or an accept backoff needs. */
void ev_tick_need(ev_child_t *ev);
/* Connections moved between states: admission, and the end of a stop. */
void ev_moved(ev_child_t *ev);
/* The loop ends after this iteration. */
void ev_loop_end(ev_child_t *ev);

/* event_accept.c */
int ev_accept_open(ev_child_t *ev);
/* The loop's sleep: up to timeout_ms (-1: no bound) in the listeners' set,
 * where libuv's set is nested; accepts what admission lets in. 0, or a
 * negative errno when the set fails. */
int ev_accept_wait(ev_child_t *ev, int timeout_ms);
/* Watches the listeners or stops, per admission; call after state changes. */
void ev_admission(ev_child_t *ev);

#endif
