/* Accepting, and when to: the listeners sit in an epoll set of the child's
 * own with EPOLLEXCLUSIVE, and the loop thread sleeps in that set, with
 * libuv's own set nested in it (not the other way round). The kernel stops
 * at the first exclusive waiter it wakes only when a thread sleeps in that
 * very set: nested under libuv's, every idle child woke for every new
 * connection and all but one found nothing to accept (with 8 children
 * that cost 1.6-2x the CPU per connection-per-request, bench/RESULTS.md). */
#include "event.h"
#include "core/fdreg.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>

/* Accepts taken per wake-up and listener, so one busy port cannot starve
 * the connections the loop already holds. */
#define EV_ACCEPT_BATCH 32

/* A child that does not accept now leaves the listeners' set: with
 * EPOLLEXCLUSIVE the kernel wakes one sleeping waiter per connection, and a
 * waiter that would not accept would strand it while other children sit
 * idle. */
static int set_listening(ev_child_t *ev, unsigned li, int on)
{
    struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = li};
    int rc = epoll_ctl(ev->accept_ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
                       ev->srv->listeners[li].fd, &e);
    if (rc != 0 && errno != (on ? EEXIST : ENOENT))
        return -errno;
    return 0;
}

/* The token of libuv's own set among the listeners' indexes. */
#define EV_LOOP_TOKEN UINT32_MAX

int ev_accept_open(ev_child_t *ev)
{
    mpm_server_t *srv = ev->srv;
    mpm__fdreg_lock();
    int ep = mpm__fdreg_keep(srv, epoll_create1(EPOLL_CLOEXEC));
    if (ep < 0)
        return -errno;
    ev->accept_ep = ep;
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = EV_LOOP_TOKEN};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, uv_backend_fd(&ev->loop), &e) != 0)
        return -errno; /* the loop's close closes ep */
    return 0;
}

/* At AsyncConnectionLimit a new connection takes the place of the oldest
 * parked one (its client reconnects, as after a keep-alive timeout); with
 * none parked the child stops accepting until it is an eighth below the
 * limit. */
static int limit_reached(ev_child_t *ev)
{
    if (ev->over_limit)
        return ev->over_limit = ev->nconns > ev->conn_limit - ev->conn_limit / 8;
    return ev->over_limit = ev->nconns >= ev->conn_limit && ev->nparked == 0;
}

static void make_room(ev_child_t *ev)
{
    while (ev->nconns > ev->conn_limit && ev_conn_close_oldest_parked(ev))
        ;
}

/* httpd's AsyncRequestWorkerFactor, in exact fixed point: a child takes
 * new connections while the requests that need or hold a thread (in
 * threads, or waiting in the ready queue) stay under ThreadsPerChild plus
 * factor per idle thread. Heads still arriving and parked connections hold
 * no thread here, so they do not count (httpd counts every connection). */
static int threads_to_spare(ev_child_t *ev)
{
    uint64_t tpc = ev->srv->cfg.s.threads_per_child;
    uint64_t idle = mpm__pool_idle(ev->pool);
    uint64_t load = (uint64_t)ev->in_workers + ev->nready;
    uint64_t limit = tpc * 1000 + idle * ev->factor_milli;
    /* Hysteresis: once over, accept again a quarter of ThreadsPerChild
     * below, so the listeners do not flap in and out of the set. */
    uint64_t margin = tpc * 250;
    if (ev->over_threads)
        limit = limit > margin ? limit - margin : 0;
    ev->over_threads = !(load * 1000 < limit);
    return !ev->over_threads;
}

/* A pinned connection (TLS with TLSPinning On) holds its thread to the
 * end, as under worker, so it is taken only by a child with a thread free
 * for it now: one queued behind pinned keep-alive connections could wait
 * for their whole keep-alive. */
static int thread_free_now(ev_child_t *ev)
{
    /* Pinned connections accepted a moment ago send their first bytes any
     * moment: each already has a thread promised (else a child with one
     * free thread would take a whole burst, and all but one would wait
     * for a thread behind connections kept alive for minutes). */
    return mpm__pool_idle(ev->pool) > ev->nready + ev->pinned_reserved;
}

static int admit(ev_child_t *ev)
{
    if (!ev->ready || ev->spent || ev->stopping == MPM__STOP_NOW)
        return 0;
    if (ev->stopping == MPM__STOP_GRACEFUL && mpm__now_ms() >= ev->drain_until)
        return 0;
    if (ev->backoff_until && mpm__now_ms() < ev->backoff_until)
        return 0;
    return threads_to_spare(ev) && !limit_reached(ev);
}

static int admit_on(ev_child_t *ev, unsigned li)
{
    return admit(ev) && (!ev->srv->listeners[li].tp->pinned || thread_free_now(ev));
}

/* The listeners admission lets in now, as a mask: admit() once, not once
 * per listener (it moves the hysteresis and takes the pool's lock). */
static unsigned admitted_listeners(ev_child_t *ev)
{
    if (!admit(ev))
        return 0;
    int free_now = -1; /* asked only if a pinned listener needs it */
    unsigned mask = 0;
    for (unsigned i = 0; i < ev->srv->nlisteners; i++) {
        if (ev->srv->listeners[i].tp->pinned && free_now < 0)
            free_now = thread_free_now(ev);
        if (!ev->srv->listeners[i].tp->pinned || free_now)
            mask |= 1u << i;
    }
    return mask;
}

/* The connection that woke this child is taken even if admission closed
 * since: the kernel woke no other child for it (the ready queue holds it
 * until a thread is free). */
static void accept_from(ev_child_t *ev, unsigned li)
{
    mpm_server_t *srv = ev->srv;
    for (int i = 0; i < EV_ACCEPT_BATCH && (i == 0 || admit_on(ev, li)); i++) {
        mpm__accepted_t a;
        int backoff = 0;
        int fd = mpm__accept(srv, li, &backoff, &a);
        if (fd == MPM_ECLOSED)
            ev->spent = 1; /* the listeners shut: accept no more */
        if (backoff) {
            /* The tick ends the pause and lets accepts in again: an idle
             * child has nothing else that would. */
            ev->backoff_until = mpm__now_ms() + backoff;
            ev_tick_need(ev);
        }
        if (fd < 0)
            return;
        if (ev_conn_open(ev, &a) < 0)
            mpm__fdreg_close(fd);
        make_room(ev);
        unsigned max = srv->cfg.s.max_connections_per_child;
        if (max && ++ev->accepted >= max) {
            ev->spent = 1;
            mpm__server_stop_local(srv, 1);
        }
    }
}

int ev_accept_wait(ev_child_t *ev, int timeout_ms)
{
    struct epoll_event evs[MPM__MAX_LISTENERS + 1];
    int n = epoll_wait(ev->accept_ep, evs, MPM__MAX_LISTENERS + 1, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    int listeners = 0;
    for (int i = 0; i < n; i++) {
        uint32_t li = evs[i].data.u32;
        if (li < ev->srv->nlisteners) {
            accept_from(ev, li);
            listeners = 1;
        }
    }
    if (listeners)
        ev_admission(ev);
    return 0;
}

void ev_admission(ev_child_t *ev)
{
    if (ev->accept_ep < 0)
        return;
    unsigned want = admitted_listeners(ev);
    if (want == ev->accepting)
        return;
    for (unsigned i = 0; i < ev->srv->nlisteners; i++) {
        unsigned bit = 1u << i;
        if ((want & bit) == (ev->accepting & bit))
            continue;
        int rc = set_listening(ev, i, (want & bit) != 0);
        if (rc < 0) {
            mpm__log(ev->srv, MPM_LOG_ERROR, "event listeners: %s", strerror(-rc));
            want ^= bit; /* as it is */
        }
    }
    ev->accepting = want;
}
