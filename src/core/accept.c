/* Accepting connections, shared by every strategy's listener: transient
 * failures are ignored, and fd exhaustion backs off instead of spinning on
 * a listener that stays readable (DESIGN §4). */
#include "fdreg.h"
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MPM__ACCEPT_BACKOFF_MIN_MS 10
#define MPM__ACCEPT_BACKOFF_MAX_MS 1000

static int failure_is_exhaustion(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static int failure_is_transient(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED ||
           err == EPROTO || err == EPERM;
}

int mpm__accept(mpm_server_t *srv, unsigned li, int *backoff_ms, mpm__accepted_t *out)
{
    /* The peer's address comes with the accept itself: the kernel gives it
     * even for a client that already reset, when getpeername() no longer
     * would. A unix peer's longer address is cut to its family. */
    memset(out, 0, sizeof(*out));
    out->listener = li;
    out->conn = NULL;
    out->peer_len = sizeof(out->peer);
    /* Registered before any fork can copy it: the connection belongs to this
     * server, and other servers' children must not hold it open. */
    mpm__fdreg_lock();
    int fd = mpm__fdreg_keep(srv, accept4(srv->listeners[li].fd, &out->peer.sa, &out->peer_len,
                                          SOCK_NONBLOCK | SOCK_CLOEXEC));
    out->fd = fd;
    if (fd >= 0) {
        if (out->peer_len > sizeof(out->peer))
            out->peer_len = sizeof(out->peer);
        *backoff_ms = 0;
        return fd;
    }
    out->peer_len = 0;
    int err = errno;
    if (failure_is_exhaustion(err)) {
        int b = *backoff_ms ? *backoff_ms * 2 : MPM__ACCEPT_BACKOFF_MIN_MS;
        *backoff_ms = b > MPM__ACCEPT_BACKOFF_MAX_MS ? MPM__ACCEPT_BACKOFF_MAX_MS : b;
        mpm__log(srv, MPM_LOG_WARN, "accept: %s; pausing accepts for %d ms", strerror(err),
                 *backoff_ms);
    } else if (err == EINVAL) {
        /* The listener was shut down: the master is stopping gracefully.
         * Stop accepting here too rather than spin on its hang-up. */
        mpm__server_stop_local(srv, 1);
        return MPM_ECLOSED;
    } else if (!failure_is_transient(err)) {
        mpm__log(srv, MPM_LOG_ERROR, "accept: %s", strerror(err));
    }
    return -1;
}

int mpm__accepting(mpm_server_t *srv, int64_t *drain_until, int *timeout_ms)
{
    int stop = mpm__server_stopping(srv);
    *timeout_ms = -1;
    if (stop == MPM__STOP_NONE)
        return 1;
    if (stop == MPM__STOP_NOW)
        return 0;
    int64_t now = mpm__now_ms();
    if (!*drain_until)
        *drain_until = now + mpm__drain_window_ms(srv);
    if (now >= *drain_until)
        return 0;
    *timeout_ms = (int)(*drain_until - now);
    return 1;
}

int mpm__unwatch_wake_fds(mpm_server_t *srv, int ep)
{
    for (unsigned i = 0; i < srv->nwake; i++)
        (void)epoll_ctl(ep, EPOLL_CTL_DEL, srv->wake_fds[i], NULL);
    atomic_store(&srv->ctl_watched, 0);
    return 0;
}

void mpm__accept_backoff(mpm_server_t *srv, int backoff_ms)
{
    struct pollfd p[2];
    for (unsigned i = 0; i < srv->nwake; i++)
        p[i] = (struct pollfd){.fd = srv->wake_fds[i], .events = POLLIN};
    if (poll(p, srv->nwake, backoff_ms) > 0)
        mpm__server_check_wake(srv);
}
