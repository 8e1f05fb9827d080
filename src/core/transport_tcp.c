/* Plain TCP (and unix socket) transport. */
#include "conn.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

static ssize_t tcp_recv(mpm__conn_t *c, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0) {
            /* A stream socket returns less only when it had no more. */
            c->in_dry = (size_t)n < len;
            return n;
        }
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? mpm__conn_saw(c, MPM__WANT_READ) : -errno;
    }
}

/* MSG_NOSIGNAL: a client that went away must not raise SIGPIPE in a host
 * whose signals are its own (DESIGN §8). */
static ssize_t tcp_sendv(mpm__conn_t *c, const struct iovec *iov, int iovcnt)
{
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    for (;;) {
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n >= 0) {
            c->out_dry = 0;
            return n;
        }
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? mpm__conn_saw(c, MPM__WANT_WRITE) : -errno;
    }
}

static ssize_t sendfile_retrying(int sock, int fd, off_t *off, size_t len)
{
    for (;;) {
        ssize_t n = sendfile(sock, fd, off, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? MPM__WANT_WRITE : -errno;
    }
}

/* sendfile() cannot take MSG_NOSIGNAL, and the host's SIGPIPE disposition is
 * its own (DESIGN §8): block SIGPIPE in this thread around the call, take
 * back the one the call raised (thread-directed, so it is ours) unless one
 * was already pending before, which belongs to someone else, then restore
 * the thread's mask. */
static ssize_t tcp_sendfile(mpm__conn_t *c, int fd, off_t *off, size_t len)
{
    sigset_t pipe_only, old, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    int rc = pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    if (rc != 0)
        return -rc;
    int was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    ssize_t n = sendfile_retrying(c->fd, fd, off, len);
    /* Not only on -EPIPE: a sendfile that moved some bytes before the peer
     * vanished returns their count and leaves the signal behind. */
    if (!was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        static const struct timespec no_wait = {0, 0};
        while (sigtimedwait(&pipe_only, NULL, &no_wait) < 0 && errno == EINTR)
            ;
    }
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (n > 0)
        c->out_dry = 0;
    return mpm__conn_saw(c, n);
}

static void tcp_shutdown_write(mpm__conn_t *c)
{
    (void)shutdown(c->fd, SHUT_WR);
}

/* Plain TCP keeps no state of its own, has no handshake past the kernel's,
 * and holds no bytes the socket does not. */
static int tcp_open(mpm__conn_t *c)
{
    c->tp_state = NULL;
    return 0;
}

static int tcp_handshake(mpm__conn_t *c)
{
    (void)c;
    return 0;
}

static size_t tcp_pending(const mpm__conn_t *c)
{
    (void)c;
    return 0;
}

static void tcp_close(mpm__conn_t *c)
{
    (void)c;
}

const mpm__transport_t mpm__transport_tcp = {
    .name = "tcp",
    .open = tcp_open,
    .handshake = tcp_handshake,
    .recv = tcp_recv,
    .sendv = tcp_sendv,
    .sendfile = tcp_sendfile,
    .pending = tcp_pending,
    .shutdown_write = tcp_shutdown_write,
    .close = tcp_close,
};
