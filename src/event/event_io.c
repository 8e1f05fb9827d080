/* The connections' readiness: one epoll set of the child's own, nested in
 * the libuv loop (one uv_poll on the set), with every connection's fd in it
 * edge-triggered from accept to close. libuv's uv_poll would cost two or
 * three epoll_ctl calls per request (stop when a thread takes the
 * connection, start when it comes back); here the loop keeps an edge flag
 * per direction, the transports say when a direction ran dry
 * (mpm__conn_saw), and a connection waits for an edge only while dry. */
#include "event.h"
#include "core/fdreg.h"

#include <errno.h>
#include <string.h>

#define EV_IO_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

/* Edges a connection may raise while a thread has it before it is
 * disarmed: the usual one is the client's next request arriving just
 * before the hand-back, which costs nothing to note. */
#define EV_IO_WORKER_EDGES 2

static void on_io(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    ev_child_t *ev = h->data;
    int n = epoll_wait(ev->io_ep, ev->io_batch, EV_IO_BATCH, 0);
    ev->io_n = n > 0 ? n : 0;
    for (ev->io_i = 0; ev->io_i < ev->io_n; ev->io_i++) {
        struct epoll_event *ep = &ev->io_batch[ev->io_i];
        ev_conn_t *e = ep->data.ptr;
        if (!e)
            continue; /* closed by an earlier event of this batch */
        if (ep->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            e->rd_edge = 1;
        if (ep->events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            e->wr_edge = 1;
        ev_conn_io(e);
    }
    ev->io_n = 0; /* a set with more than a batch ready stays readable */
}

int ev_io_open(ev_child_t *ev)
{
    mpm__fdreg_lock();
    int ep = mpm__fdreg_keep(ev->srv, epoll_create1(EPOLL_CLOEXEC));
    if (ep < 0)
        return -errno;
    int rc = uv_poll_init(&ev->loop, &ev->io_poll, ep);
    if (rc < 0) {
        mpm__fdreg_close(ep);
        return rc;
    }
    ev->io_ep = ep;
    ev->io_poll.data = ev;
    return uv_poll_start(&ev->io_poll, UV_READABLE, on_io);
}

void ev_io_close(ev_child_t *ev)
{
    if (ev->io_ep >= 0)
        uv_close((uv_handle_t *)&ev->io_poll, NULL);
}

static int io_ctl(ev_child_t *ev, ev_conn_t *e, int op, uint32_t events)
{
    struct epoll_event ee = {.events = events, .data.ptr = e};
    return epoll_ctl(ev->io_ep, op, e->c->fd, &ee) == 0 ? 0 : -errno;
}

int ev_io_add(ev_child_t *ev, ev_conn_t *e)
{
    int rc = io_ctl(ev, e, EPOLL_CTL_ADD, EV_IO_EVENTS);
    if (rc < 0)
        return rc;
    e->io_state = EV_IO_ARMED;
    e->c->in_dry = e->c->out_dry = 1;
    return 0;
}

void ev_io_remove(ev_child_t *ev, ev_conn_t *e)
{
    /* Explicitly: a close would leave the fd in the set while a process
     * the host forked still holds it. */
    if (e->io_state != EV_IO_NONE)
        (void)io_ctl(ev, e, EPOLL_CTL_DEL, 0);
    e->io_state = EV_IO_NONE;
    for (int i = ev->io_i + 1; i < ev->io_n; i++)
        if (ev->io_batch[i].data.ptr == e)
            ev->io_batch[i].data.ptr = NULL;
}

void ev_io_to_thread(ev_child_t *ev, ev_conn_t *e)
{
    e->worker_edges = 0;
    if (e->pinned)
        ev_io_remove(ev, e);
}

/* An edge for a connection a thread has. */
static void io_edge_in_thread(ev_child_t *ev, ev_conn_t *e)
{
    if (e->io_state != EV_IO_ARMED || ++e->worker_edges < EV_IO_WORKER_EDGES)
        return;
    if (io_ctl(ev, e, EPOLL_CTL_MOD, EPOLLET) == 0)
        e->io_state = EV_IO_DISARMED;
}

int ev_io_from_thread(ev_child_t *ev, ev_conn_t *e)
{
    if (e->io_state != EV_IO_DISARMED)
        return 0;
    /* Edges may have been missed meanwhile: both ways count as ready. */
    e->rd_edge = e->wr_edge = 1;
    int rc = io_ctl(ev, e, EPOLL_CTL_MOD, EV_IO_EVENTS);
    if (rc == 0)
        e->io_state = EV_IO_ARMED;
    return rc;
}

int ev_io_ready(const ev_conn_t *e)
{
    if (e->c->wait_events & POLLOUT)
        return e->wr_edge || !e->c->out_dry;
    return e->rd_edge || !e->c->in_dry;
}

void ev_io_consume(ev_conn_t *e)
{
    if (e->c->wait_events & POLLOUT)
        e->wr_edge = 0;
    else
        e->rd_edge = 0;
}

void ev_conn_io(ev_conn_t *e)
{
    if (e->in_worker) {
        io_edge_in_thread(e->ev, e);
        return;
    }
    if (e->in_ready)
        return; /* its thread will read what came (the edge stays noted) */
    if (ev_io_ready(e))
        ev_conn_settle(e, e->c->state);
}
