/* A connection while the loop holds it: watched for what its state waits
 * for, queued for its deadline, counted on the scoreboard. */
#include "event.h"
#include "core/fdreg.h"

#include <stdlib.h>

/* A response tail a handler may leave to the loop (write completion),
 * copied: bounded like httpd's, so a big body written from memory waits in
 * its thread until this much is left; file bodies are never copied. */
#define EV_ASYNC_OUT_MAX (256 * 1024)

static atomic_uint *slot_count(ev_child_t *ev, ev_count_t which)
{
    mpm__sb_slot_t *s = ev->srv->slot;
    switch (which) {
    case EV_COUNT_READING:
        return &s->reading;
    case EV_COUNT_PARKED:
        return &s->parked;
    case EV_COUNT_WRITING:
        return &s->writing;
    case EV_COUNT_LINGERING:
        return &s->lingering;
    default:
        return NULL;
    }
}

static void set_count(ev_conn_t *e, ev_count_t which)
{
    if (e->count == which)
        return;
    atomic_uint *old = slot_count(e->ev, (ev_count_t)e->count);
    atomic_uint *cur = slot_count(e->ev, which);
    if (old)
        atomic_fetch_sub_explicit(old, 1, memory_order_relaxed);
    if (cur)
        atomic_fetch_add_explicit(cur, 1, memory_order_relaxed);
    e->ev->nparked += (which == EV_COUNT_PARKED) - (e->count == EV_COUNT_PARKED);
    e->count = (unsigned char)which;
}

static void on_ready(uv_poll_t *h, int status, int events)
{
    (void)status; /* an error shows in the step's own I/O */
    (void)events;
    ev_conn_t *e = h->data;
    if (e->pinned) {
        /* Its first bytes are here: its thread takes it from the handshake
         * on (ev_conn_open). */
        ev_conn_settle(e, MPM__CONN_HANDLER);
        return;
    }
    ev_conn_settle(e, mpm__conn_step(e->c));
}

static void watch(ev_conn_t *e, short wait_events)
{
    int want = wait_events & POLLOUT ? UV_WRITABLE : UV_READABLE;
    if (e->polling && e->poll_events == want)
        return;
    if (uv_poll_start(&e->poll, want, on_ready) != 0) {
        ev_conn_close(e);
        return;
    }
    e->polling = 1;
    e->poll_events = want;
}

static void unwatch(ev_conn_t *e)
{
    if (e->polling)
        uv_poll_stop(&e->poll);
    e->polling = 0;
}

static ev_count_t count_for(mpm__conn_state_t st)
{
    switch (st) {
    case MPM__CONN_PARK:
        return EV_COUNT_PARKED;
    case MPM__CONN_WRITE:
        return EV_COUNT_WRITING;
    case MPM__CONN_LINGER:
        return EV_COUNT_LINGERING;
    default:
        return EV_COUNT_READING;
    }
}

/* A connection parked with its buffers still held ("warm"): at most
 * EV_WARM_MAX at a time, so a burst of connections going idle together
 * gives its memory back at once instead of all holding it for a moment. */
#define EV_WARM_MAX 64

static void set_park_pending(ev_conn_t *e, int on)
{
    e->ev->nwarm += (unsigned)on - (unsigned)e->park_pending;
    e->park_pending = (unsigned char)on;
}

void ev_conn_settle(ev_conn_t *e, mpm__conn_state_t st)
{
    ev_child_t *ev = e->ev;
    if (st == MPM__CONN_CLOSE || ev->stopping == MPM__STOP_NOW) {
        ev_conn_close(e);
        return;
    }
    if (st == MPM__CONN_HANDLER) {
        unwatch(e);
        ev_tq_remove(ev, e);
        set_count(e, EV_COUNT_NONE);
        ev_ready_push(ev, e);
        ev_dispatch(ev);
        return;
    }
    set_count(e, count_for(st));
    int64_t deadline = mpm__conn_deadline(e->c);
    /* A client that sends its next request at once finds its buffers
     * still there: they are given back only after a moment of silence,
     * not after every response (no allocation per kept-alive request). */
    set_park_pending(e, st == MPM__CONN_PARK && e->c->in && ev->nwarm < EV_WARM_MAX);
    if (st == MPM__CONN_PARK && !e->park_pending)
        mpm__conn_park(e->c);
    if (e->park_pending) {
        int64_t soon = mpm__now_ms() + MPM__CONN_PARK_AFTER_MS;
        deadline = soon < deadline ? soon : deadline;
    }
    ev_tq_add(ev, e, deadline);
    watch(e, e->c->wait_events);
}

void ev_conn_timed_out(ev_conn_t *e)
{
    if (e->park_pending && mpm__now_ms() < mpm__conn_deadline(e->c)) {
        set_park_pending(e, 0);
        mpm__conn_park(e->c);
        e->ev->parks_since_trim++;
        ev_tq_add(e->ev, e, mpm__conn_deadline(e->c));
        return;
    }
    ev_conn_settle(e, mpm__conn_timed_out(e->c));
}

static void unlink_all(ev_child_t *ev, ev_conn_t *e)
{
    if (e->all_prev)
        e->all_prev->all_next = e->all_next;
    else
        ev->all_head = e->all_next;
    if (e->all_next)
        e->all_next->all_prev = e->all_prev;
    else
        ev->all_tail = e->all_prev;
    e->all_prev = e->all_next = NULL;
    ev->nconns--;
}

static void on_closed(uv_handle_t *h)
{
    ev_conn_t *e = h->data;
    int fd = e->c->fd;
    mpm__conn_free(e->c);
    mpm__fdreg_close(fd);
    free(e);
}

void ev_conn_close(ev_conn_t *e)
{
    ev_child_t *ev = e->ev;
    ev_tq_remove(ev, e);
    ev_ready_remove(ev, e);
    set_count(e, EV_COUNT_NONE);
    set_park_pending(e, 0);
    unlink_all(ev, e);
    e->polling = 0;
    uv_close((uv_handle_t *)&e->poll, on_closed);
}

ev_conn_t *ev_conn_open(ev_child_t *ev, const mpm__accepted_t *a)
{
    ev_conn_t *e = calloc(1, sizeof(*e));
    mpm__conn_t *c = e ? mpm__conn_new(ev->srv, a) : NULL;
    if (!c || uv_poll_init(&ev->loop, &e->poll, a->fd) != 0) {
        mpm__conn_free(c);
        free(e);
        return NULL;
    }
    e->c = c;
    e->ev = ev;
    e->tq = -1;
    e->poll.data = e;
    c->owner = e;
    c->async_out_max = EV_ASYNC_OUT_MAX;
    c->prefetch_max = ev->srv->cfg.s.request_body_prefetch;
    e->all_prev = ev->all_tail;
    if (ev->all_tail)
        ev->all_tail->all_next = e;
    else
        ev->all_head = e;
    ev->all_tail = e;
    ev->nconns++;
    if (c->tp->pinned) {
        /* Its thread takes it from the handshake on and keeps it, but only
         * once the client's first bytes are here: a client that connects
         * and sends nothing holds no thread, and meets the handshake's
         * deadline (the first head's) on the loop. */
        e->pinned = 1;
        c->state = MPM__CONN_HANDSHAKE;
        c->wait_events = POLLIN;
        c->handshake_deadline =
            mpm__read_deadline(c, &ev->srv->cfg.s.header_timeout, c->accepted_ms, 0);
        ev_conn_settle(e, MPM__CONN_HANDSHAKE);
        return e;
    }
    if (ev->stopping == MPM__STOP_GRACEFUL)
        mpm__conn_start_draining(c);
    ev_conn_settle(e, mpm__conn_begin(c));
    return e;
}

void ev_conn_drain_all(ev_child_t *ev)
{
    for (ev_conn_t *e = ev->all_head; e; e = e->all_next) {
        if (e->in_worker)
            continue; /* its thread sees the stop when the response is done */
        mpm__conn_drain(e->c);
        if (e->tq >= 0 && !e->park_pending)
            ev_tq_add(ev, e, mpm__conn_deadline(e->c));
    }
}

void ev_conn_close_all(ev_child_t *ev)
{
    ev_conn_t *e = ev->all_head;
    while (e) {
        ev_conn_t *next = e->all_next;
        if (!e->in_worker)
            ev_conn_close(e);
        e = next;
    }
}

int ev_conn_close_oldest_parked(ev_child_t *ev)
{
    if (!ev->nparked)
        return 0;
    for (ev_conn_t *e = ev->all_head; e; e = e->all_next) {
        if (e->count == EV_COUNT_PARKED) {
            ev_conn_close(e);
            return 1;
        }
    }
    return 0;
}
