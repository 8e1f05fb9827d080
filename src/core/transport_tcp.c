/* Plain TCP (and unix socket) transport. */
#include "conn.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

static ssize_t tcp_recv(mpm__conn_t *c, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

/* MSG_NOSIGNAL: a client that went away must not raise SIGPIPE in a host
 * whose signals are its own (DESIGN §8). */
static ssize_t tcp_sendv(mpm__conn_t *c, const struct iovec *iov, int iovcnt)
{
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    for (;;) {
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static ssize_t tcp_sendfile(mpm__conn_t *c, int fd, off_t *off, size_t len)
{
    for (;;) {
        ssize_t n = sendfile(c->fd, fd, off, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static void tcp_shutdown_write(mpm__conn_t *c)
{
    (void)shutdown(c->fd, SHUT_WR);
}

const mpm__transport_t mpm__transport_tcp = {
    .name = "tcp",
    .recv = tcp_recv,
    .sendv = tcp_sendv,
    .sendfile = tcp_sendfile,
    .shutdown_write = tcp_shutdown_write,
};
