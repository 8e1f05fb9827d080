/* worker: each child runs ThreadsPerChild pool threads and one listener (the
 * child's main thread). The listener accepts only while a pool thread is
 * idle, so an accepted connection never waits behind busy threads while
 * another child has idle ones; each thread then serves its connection to the
 * end, keep-alive waits included: a kept-alive connection holds its thread,
 * which is this strategy's trade-off. */
#include "core/fdreg.h"
#include "core/internal.h"
#include "core/pool.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static int serve_connection(mpm__pool_t *pool, mpm__sb_worker_t *unit, const mpm__accepted_t *a)
{
    /* The connection is this thread's for life: the kernel's slice
     * (sched_slice.c). */
    mpm__thread_use_slice(pool->srv, 0);
    mpm__conn_serve(pool->srv, a, unit);
    mpm__sb_set_worker_state(unit, MPM__SB_READY);
    return 0; /* the pool closes the fd */
}

/* Epoll data tags: listeners carry their index; these come after them. */
enum { TAG_WAKE = 1000, TAG_IDLE = 1001 };

static int listener_epoll(mpm_server_t *srv, mpm__pool_t *pool)
{
    mpm__fdreg_lock();
    int ep = mpm__fdreg_keep(srv, epoll_create1(EPOLL_CLOEXEC));
    if (ep < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TAG_IDLE};
    int rc = epoll_ctl(ep, EPOLL_CTL_ADD, pool->idle_efd, &ev);
    for (unsigned i = 0; rc == 0 && i < srv->nwake; i++) {
        ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = TAG_WAKE};
        rc = epoll_ctl(ep, EPOLL_CTL_ADD, srv->wake_fds[i], &ev);
    }
    if (rc != 0) {
        rc = -errno;
        mpm__fdreg_close(ep);
        return rc;
    }
    atomic_store(&srv->ctl_watched, 1);
    return ep;
}

/* Listeners are in the epoll set only while a thread is idle: a busy child
 * leaves new connections to its siblings. Unlike prefork, no
 * EPOLLEXCLUSIVE: a child woken alone could turn busy and deregister before
 * accepting, stranding the connection while other children sit idle; with
 * at most ServerLimit listener threads the herd is small. */
static int set_listening(mpm_server_t *srv, int ep, int on)
{
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        int fd = srv->listeners[i].fd;
        if (epoll_ctl(ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) != 0)
            return -errno;
    }
    return 0;
}

/* Accepts only if a thread is idle to take the connection at once. A child
 * that reached MaxConnectionsPerChild stops as in a graceful stop: its
 * threads finish their connections, then it exits and the master decides
 * whether to replace it. */
static void accept_and_hand_off(mpm_server_t *srv, mpm__pool_t *pool, unsigned li, int *backoff_ms,
                                unsigned *accepted, int *spent)
{
    if (mpm__pool_idle(pool) == 0)
        return;
    mpm__accepted_t a;
    int fd = mpm__accept(srv, li, backoff_ms, &a);
    *spent |= fd == MPM_ECLOSED; /* the listeners shut: accept no more */
    if (fd < 0)
        return;
    if (mpm__pool_push(pool, &a) < 0)
        mpm__fdreg_close(fd); /* cannot happen: only this thread takes idle threads */
    unsigned max = srv->cfg.s.max_connections_per_child;
    if (max && ++*accepted >= max) {
        *spent = 1;
        mpm__server_stop_local(srv, 1);
    }
}

/* Handles one round of events; returns 0 or a negative error. */
typedef struct listener_state {
    int ep;
    int listening;
    int backoff_ms;
    unsigned accepted;
    int timeout_ms;      /* bound on the next wait (drain window), -1 = none */
    int64_t drain_until;
    int wake_watched;
    int spent;           /* MaxConnectionsPerChild reached or listeners shut */
} listener_state_t;


static int listener_round(mpm_server_t *srv, mpm__pool_t *pool, listener_state_t *ls)
{
    int ep = ls->ep, *listening = &ls->listening, *backoff_ms = &ls->backoff_ms;
    if (*backoff_ms)
        mpm__accept_backoff(srv, *backoff_ms);
    int want = mpm__pool_idle(pool) > 0;
    if (want != *listening) {
        int rc = set_listening(srv, ep, want);
        if (rc < 0)
            return rc;
        *listening = want;
    }
    if (!want)
        mpm__pool_want_idle(pool);
    struct epoll_event evs[MPM__MAX_LISTENERS + 4];
    if (ls->drain_until && ls->wake_watched)
        ls->wake_watched = mpm__unwatch_wake_fds(srv, ls->ep);
    int n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), ls->timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n && !ls->spent && mpm__server_stopping(srv) != MPM__STOP_NOW; i++) {
        if (evs[i].data.u32 == TAG_WAKE)
            mpm__server_check_wake(srv);
        else if (evs[i].data.u32 == TAG_IDLE)
            mpm__pool_idle_seen(pool);
        else if (evs[i].data.u32 < srv->nlisteners && *listening)
            accept_and_hand_off(srv, pool, evs[i].data.u32, backoff_ms,
                                &ls->accepted, &ls->spent);
    }
    return 0;
}


/* How often the listener looks whether the thread init hooks are done. */
#define WORKER_INIT_POLL_MS 10

/* The master takes a READY child as proof that its generation can start,
 * so a child is READY only once every thread's init hook returned 0: a hook
 * failing later must not hide a fatal start-up failure. A failed hook stops
 * the process, which wakes this wait; threads that became idle are seen
 * within a poll. Returns 1 (ready), 0 (a hook failed, or a stop came
 * first) or a negative error. */
static int wait_threads_ready(mpm_server_t *srv, int ep, mpm__pool_t *pool)
{
    int r;
    while ((r = mpm__pool_ready(pool)) == 0 && mpm__server_stopping(srv) == MPM__STOP_NONE) {
        struct epoll_event evs[4];
        int n = epoll_wait(ep, evs, 4, WORKER_INIT_POLL_MS);
        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u32 == TAG_WAKE)
                mpm__server_check_wake(srv);
            else if (evs[i].data.u32 == TAG_IDLE)
                mpm__pool_idle_seen(pool);
        }
    }
    return r > 0;
}

static int worker_serve(mpm_server_t *srv)
{
    mpm__pool_t *pool;
    int rc = mpm__pool_start(&pool, srv, srv->cfg.s.threads_per_child, serve_connection);
    if (rc < 0)
        return rc;
    listener_state_t ls = {.ep = listener_epoll(srv, pool), .wake_watched = 1};
    int ep = ls.ep;
    rc = ep < 0 ? ep : wait_threads_ready(srv, ep, pool);
    if (rc == 1)
        mpm__sb_set_state(srv->slot, MPM__SB_READY);
    rc = rc < 0 ? rc : 0;
    while (rc == 0 && !pool->init_failed && !ls.spent &&
           mpm__accepting(srv, &ls.drain_until, &ls.timeout_ms))
        rc = listener_round(srv, pool, &ls);
    if (rc < 0)
        mpm__log(srv, MPM_LOG_ERROR, "worker listener: %s", strerror(-rc));
    mpm__sb_set_state(srv->slot, MPM__SB_GRACEFUL);
    atomic_store(&srv->ctl_watched, 0);
    if (ep >= 0)
        mpm__fdreg_close(ep);
    int stopped = mpm__pool_stop(pool, mpm__pool_stop_deadline(srv));
    return stopped < 0 ? stopped : rc;
}

const mpm__strategy_t mpm__worker_strategy = {
    .name = "worker",
    .check = mpm__threaded_check,
    .pool_limits = mpm__threaded_pool_limits,
    .serve = worker_serve,
    .wake = NULL,
};
