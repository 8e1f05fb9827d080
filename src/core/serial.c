/* The serial loop: one connection at a time on the calling thread.
 *
 * Accept without a thundering herd: every prefork child waits on the same
 * listeners. Each child has its own epoll set with the listeners registered
 * EPOLLEXCLUSIVE, so a new connection wakes one waiting child rather than
 * all of them, and this works the same for one listener or several, with no
 * accept mutex to hand around (and none left held by a child that died).
 * A child that wakes and loses the race to accept gets EAGAIN and waits
 * again. */
#include "fdreg.h"
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* The serial loop is its process's one unit. */
static mpm__sb_worker_t *serial_unit(mpm_server_t *srv)
{
    return mpm__sb_worker(srv->sb, srv->slot_index, 0);
}

static void set_idle(mpm_server_t *srv, int idle)
{
    atomic_store_explicit(&srv->slot->idle, idle ? 1u : 0u, memory_order_relaxed);
    atomic_store_explicit(&srv->slot->busy, idle ? 0u : 1u, memory_order_relaxed);
    mpm__sb_set_worker_state(serial_unit(srv), idle ? MPM__SB_READY : MPM__SB_READING);
}

/* Registers listeners (exclusive wake-ups) and wake fds (every waiter). A
 * listener's epoll data is its index; wake fds are tagged past the end. */
static int make_epoll(mpm_server_t *srv)
{
    mpm__fdreg_lock();
    int ep = mpm__fdreg_keep(srv, epoll_create1(EPOLL_CLOEXEC));
    if (ep < 0)
        return -errno;
    for (unsigned i = 0; i < srv->nlisteners + srv->nwake; i++) {
        int is_listener = i < srv->nlisteners;
        struct epoll_event ev = {.events = EPOLLIN | (is_listener ? EPOLLEXCLUSIVE : 0),
                                 .data.u32 = i};
        int fd = is_listener ? srv->listeners[i].fd : srv->wake_fds[i - srv->nlisteners];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            int err = -errno;
            mpm__fdreg_close(ep);
            return err;
        }
    }
    return ep;
}

static int child_is_spent(const mpm_server_t *srv, unsigned served)
{
    unsigned max = srv->cfg.s.max_connections_per_child;
    return max && served >= max;
}

/* Handles one epoll event. Returns 1 if a connection was served.
 *
 * A listener event is honoured even once a graceful stop has begun: with
 * EPOLLEXCLUSIVE this process may be the only one the kernel woke for that
 * connection, and dropping the event would strand it in the backlog until
 * the next connection wakes someone else. It is served, with
 * Connection: close, like any in-flight request. */
static int handle_ready(mpm_server_t *srv, const struct epoll_event *ev, int *backoff_ms,
                        int *shut)
{
    if (ev->data.u32 >= srv->nlisteners) {
        mpm__server_check_wake(srv);
        return 0;
    }
    if (mpm__server_stopping(srv) == MPM__STOP_NOW)
        return 0;
    mpm__accepted_t a;
    int fd = mpm__accept(srv, ev->data.u32, backoff_ms, &a);
    *shut |= fd == MPM_ECLOSED;
    if (fd < 0)
        return 0;
    set_idle(srv, 0);
    mpm__conn_serve(srv, &a, serial_unit(srv));
    mpm__fdreg_close(fd);
    set_idle(srv, 1);
    return 1;
}

static int serial_loop_run(mpm_server_t *srv);

/* The calling thread is prefork's one serving unit: the thread hooks run
 * around it. A failing init hook is MPM_ECHILD (the process cannot serve). */
int mpm__serial_loop(mpm_server_t *srv)
{
    if (mpm__hooks_thread_init(srv, 0) != 0) {
        mpm__log(srv, MPM_LOG_ERROR, "thread init hook failed");
        return MPM_ECHILD;
    }
    int rc = serial_loop_run(srv);
    mpm__hooks_thread_exit(srv, 0);
    return rc;
}

static int serial_loop_run(mpm_server_t *srv)
{
    int ep = make_epoll(srv);
    if (ep < 0) {
        mpm__log(srv, MPM_LOG_ERROR, "epoll: %s", strerror(-ep));
        return ep;
    }
    int backoff_ms = 0, rc = 0, timeout_ms, wake_watched = 1, shut = 0;
    int64_t drain_until = 0;
    unsigned served = 0;
    mpm__sb_set_state(srv->slot, MPM__SB_READY);
    set_idle(srv, 1);
    while (!shut && mpm__accepting(srv, &drain_until, &timeout_ms) &&
           !child_is_spent(srv, served)) {
        if (drain_until && wake_watched)
            wake_watched = mpm__unwatch_wake_fds(srv, ep);
        if (backoff_ms)
            mpm__accept_backoff(srv, backoff_ms);
        struct epoll_event evs[MPM__MAX_LISTENERS + 2];
        int n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout_ms);
        if (n < 0 && errno != EINTR) {
            rc = -errno;
            mpm__log(srv, MPM_LOG_ERROR, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n && !child_is_spent(srv, served); i++)
            served += (unsigned)handle_ready(srv, &evs[i], &backoff_ms, &shut);
    }
    atomic_store(&srv->slot->idle, 0u);
    mpm__sb_set_state(srv->slot, MPM__SB_GRACEFUL);
    mpm__sb_set_worker_state(serial_unit(srv), MPM__SB_GRACEFUL);
    mpm__fdreg_close(ep);
    return rc;
}
