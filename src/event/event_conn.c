/* A connection while the loop holds it: watched for what its state waits
 * for, queued for its deadline, counted on the scoreboard. */
#include "event.h"
#include "core/fdreg.h"

#include <stdlib.h>
#include <sys/ioctl.h>

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

static void set_reserving(ev_conn_t *e, int on);

/* What e waits for may be there: the step the loop takes now. */
static mpm__conn_state_t step(ev_conn_t *e)
{
    ev_io_consume(e);
    if (e->pinned) {
        /* Its thread takes it from the handshake on (ev_conn_open), once
         * the client's first flight is here: until then it waits on the
         * loop for the next edge, holding no thread. */
        const mpm__transport_t *tp = e->c->tp;
        if (tp->first_flight_in && !tp->first_flight_in(e->c)) {
            /* It has spoken: what it still owes is not a reason to keep
             * new connections out (a stalled half hello would). */
            set_reserving(e, 0);
            e->c->in_dry = 1;
            return e->c->state;
        }
        return MPM__CONN_HANDLER;
    }
    return mpm__conn_step(e->c);
}

static int waits(mpm__conn_state_t st)
{
    return st != MPM__CONN_CLOSE && st != MPM__CONN_HANDLER;
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

static void set_reserving(ev_conn_t *e, int on)
{
    e->ev->pinned_reserved += (unsigned)on - (unsigned)e->reserving;
    e->reserving = (unsigned char)on;
}

void ev_conn_settle(ev_conn_t *e, mpm__conn_state_t st)
{
    ev_child_t *ev = e->ev;
    /* Each step that ends waiting again found its direction dry, or had
     * not tried it yet (a response just done): at most one more round. */
    while (waits(st) && ev->stopping != MPM__STOP_NOW && ev_io_ready(e))
        st = step(e);
    if (st == MPM__CONN_CLOSE || ev->stopping == MPM__STOP_NOW) {
        ev_conn_close(e);
        return;
    }
    if (st == MPM__CONN_HANDLER) {
        set_reserving(e, 0); /* counted in the ready queue from now */
        /* A pinned connection that waits for a thread has not begun its
         * handshake: its deadline holds in the queue too (ev_dispatch
         * takes it off when a thread takes the connection). */
        if (e->pinned)
            ev_tq_add(ev, e, mpm__conn_deadline(e->c));
        else
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
    if (e->reserving) {
        int64_t lapse = e->c->accepted_ms + EV_PIN_RESERVE_MS;
        deadline = lapse < deadline ? lapse : deadline;
    }
    ev_tq_add(ev, e, deadline);
}

void ev_conn_timed_out(ev_conn_t *e)
{
    if (e->reserving && mpm__now_ms() < mpm__conn_deadline(e->c)) {
        set_reserving(e, 0); /* silent: no longer a claim on a thread */
        ev_tq_add(e->ev, e, mpm__conn_deadline(e->c));
        return;
    }
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

void ev_conn_close(ev_conn_t *e)
{
    ev_child_t *ev = e->ev;
    ev_tq_remove(ev, e);
    ev_ready_remove(ev, e);
    set_count(e, EV_COUNT_NONE);
    set_park_pending(e, 0);
    set_reserving(e, 0);
    unlink_all(ev, e);
    ev_io_remove(ev, e);
    ev_conn_free(e);
}

void ev_conn_free(ev_conn_t *e)
{
    int fd = e->c->fd;
    mpm__conn_free(e->c);
    mpm__fdreg_close(fd);
    free(e);
}

/* Under TLSDeferAccept the kernel hands a connection over with its first
 * bytes; one that comes without them sat silent through the whole defer
 * and is no client about to send its ClientHello. It gets no thread's
 * promise: a flood of them must not stop the child from accepting. */
static int came_silent(const ev_child_t *ev, const mpm__accepted_t *a)
{
    int n = 0;
    return ev->srv->listeners[a->listener].deferred && ioctl(a->fd, FIONREAD, &n) == 0 && n == 0;
}

int ev_conn_open(ev_child_t *ev, const mpm__accepted_t *a)
{
    ev_conn_t *e = calloc(1, sizeof(*e));
    mpm__conn_t *c = e ? mpm__conn_new(ev->srv, a) : NULL;
    if (e)
        e->c = c;
    if (!c || ev_io_add(ev, e) < 0) {
        mpm__conn_free(c);
        free(e);
        return -1;
    }
    e->ev = ev;
    e->tq = -1;
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
        set_reserving(e, !came_silent(ev, a));
        c->state = MPM__CONN_HANDSHAKE;
        c->wait_events = POLLIN;
        c->handshake_deadline =
            mpm__read_deadline(c, &ev->srv->cfg.s.header_timeout, c->accepted_ms, 0);
        ev_conn_settle(e, MPM__CONN_HANDSHAKE);
        return 0;
    }
    if (ev->stopping == MPM__STOP_GRACEFUL)
        mpm__conn_start_draining(c);
    ev_conn_settle(e, mpm__conn_begin(c));
    return 0;
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
