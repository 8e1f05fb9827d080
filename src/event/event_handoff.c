/* Between the loop and the pool, both ways batched, since each crossing
 * that wakes a thread costs two context switches. Complete heads go to the
 * pool's queue as they come (or wait in the ready queue when no thread is
 * free, never dropped) and the loop wakes threads once per iteration, just
 * before it sleeps; a thread takes queued items one after the other. Threads
 * hand connections back on one locked list, and wake the loop (one
 * uv_async_t) only when it may be asleep and they have no queued item to go
 * on with: the loop takes the list before it sleeps anyway. Nothing here
 * allocates. */
#include "event.h"
#include "core/fdreg.h"

#include <sched.h>
#include <stdlib.h>

void ev_ready_push(ev_child_t *ev, ev_conn_t *e)
{
    e->next = NULL;
    if (ev->ready_tail)
        ev->ready_tail->next = e;
    else
        ev->ready_head = e;
    ev->ready_tail = e;
    ev->nready++;
    e->in_ready = 1;
}

void ev_ready_remove(ev_child_t *ev, ev_conn_t *e)
{
    ev_conn_t **p = &ev->ready_head, *prev = NULL;
    while (*p && *p != e) {
        prev = *p;
        p = &(*p)->next;
    }
    if (!*p)
        return;
    *p = e->next;
    if (ev->ready_tail == e)
        ev->ready_tail = prev;
    e->next = NULL;
    e->in_ready = 0;
    ev->nready--;
}

static void on_idle_thread(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    ev_child_t *ev = h->data;
    mpm__pool_idle_seen(ev->pool);
    ev_dispatch(ev);
}

/* Every thread is busy: be woken when one is idle again. The pool's
 * notice is one-shot, so it is asked for again each time. */
static void want_idle_thread(ev_child_t *ev, int on)
{
    if (on)
        mpm__pool_want_idle(ev->pool);
    if (on == ev->idle_watched)
        return;
    if (on)
        uv_poll_start(&ev->idle_poll, UV_READABLE, on_idle_thread);
    else
        uv_poll_stop(&ev->idle_poll);
    ev->idle_watched = on;
}

void ev_dispatch(ev_child_t *ev)
{
    while (ev->ready_head) {
        ev_conn_t *e = ev->ready_head;
        mpm__accepted_t a = {.fd = e->c->fd, .conn = e};
        /* Off the queue and marked before the push: from the push on, its
         * thread may hand it back (and use e->next) at any moment. */
        ev->ready_head = e->next;
        e->next = NULL;
        e->in_ready = 0;
        e->in_worker = 1;
        unsigned holds = e->pinned; /* a thread of its own, on the kick */
        atomic_fetch_add_explicit(&ev->outstanding, 1, memory_order_relaxed);
        if (mpm__pool_push(ev->pool, &a) < 0) {
            atomic_fetch_sub_explicit(&ev->outstanding, 1, memory_order_relaxed);
            e->in_worker = 0;
            e->in_ready = 1;
            e->next = ev->ready_head;
            ev->ready_head = e;
            want_idle_thread(ev, 1);
            return;
        }
        /* Only the loop touches the timeout queues, thread or not; a
         * thread keeps the connection's deadlines from here on. */
        ev_tq_remove(ev, e);
        ev_io_to_thread(ev, e);
        if (!ev->ready_head)
            ev->ready_tail = NULL;
        ev->nready--;
        ev->in_workers++;
        ev->holders += holds;
    }
    want_idle_thread(ev, 0);
}

/* With `defer`, the thread goes on with a queued item and the loop hears
 * of the connection when it next wakes (at the latest on its watch timer,
 * should that item block). */
static void hand_back(ev_child_t *ev, ev_conn_t *e, int defer)
{
    pthread_mutex_lock(&ev->lock);
    if (ev->loop_closed) {
        /* The last thread of a child that gave up waiting frees it. */
        unsigned left = atomic_fetch_sub_explicit(&ev->outstanding, 1, memory_order_relaxed) - 1;
        int last = ev->orphaned && left == 0;
        pthread_mutex_unlock(&ev->lock);
        ev_conn_free(e);
        if (last)
            ev_child_free(ev);
        return;
    }
    e->next = NULL;
    if (ev->back_tail)
        ev->back_tail->next = e;
    else
        ev->back_head = e;
    ev->back_tail = e;
    /* One wake per sleep: whoever sends it clears the flag. Deferred
     * hand-backs before this one ride on it too. */
    int wake = !defer && ev->loop_sleeping;
    if (wake) {
        ev->loop_sleeping = 0;
        atomic_fetch_add_explicit(&ev->waking, 1, memory_order_acquire);
    }
    pthread_mutex_unlock(&ev->lock);
    /* Outside the lock, so the loop it wakes does not block on it; the
     * loop closes the handle only once no thread is here (ev->waking). */
    if (wake) {
        uv_async_send(&ev->handback);
        atomic_fetch_sub_explicit(&ev->waking, 1, memory_order_release);
    }
}

int ev_work(mpm__pool_t *pool, mpm__sb_worker_t *unit, const mpm__accepted_t *a)
{
    ev_conn_t *e = a->conn;
    mpm__conn_state_t st = e->c->state;
    /* A pinned connection is this thread's for life: the kernel's slice
     * (sched_slice.c); a request at a time: SchedulerSlice. */
    mpm__thread_use_slice(pool->srv, !e->pinned);
    if (e->pinned) {
        mpm__conn_serve_pinned(e->c, unit); /* comes back closed */
        st = e->c->state;
    }
    /* Pipelined requests already buffered are served here, in order. */
    while (st == MPM__CONN_HANDLER)
        st = mpm__conn_run_request(e->c, unit);
    mpm__sb_set_worker_state(unit, MPM__SB_READY);
    hand_back(pool->user, e, mpm__pool_queued(pool) > 0);
    return 1; /* the loop owns the fd again */
}

/* Takes the hand-back list; `sleeping`: the loop is about to sleep if it
 * is empty, so from now on a hand-back must wake it. */
static ev_conn_t *take_back(ev_child_t *ev, int sleeping)
{
    pthread_mutex_lock(&ev->lock);
    ev_conn_t *e = ev->back_head;
    ev->back_head = ev->back_tail = NULL;
    if (!e && sleeping)
        ev->loop_sleeping = 1;
    pthread_mutex_unlock(&ev->lock);
    return e;
}

static void settle_back(ev_child_t *ev, ev_conn_t *e)
{
    for (ev_conn_t *p = e; p; p = p->next)
        atomic_fetch_sub_explicit(&ev->outstanding, 1, memory_order_relaxed);
    while (e) {
        ev_conn_t *next = e->next;
        e->next = NULL;
        e->in_worker = 0;
        ev->in_workers--;
        /* A graceful stop that began while a thread had it: ev_conn_drain_all
         * passed it by, and its thread may not have seen the stop yet. */
        if (ev->stopping == MPM__STOP_GRACEFUL)
            mpm__conn_drain(e->c);
        /* Ending: no point re-arming what is removed next. */
        if (e->c->state == MPM__CONN_CLOSE || ev_io_from_thread(ev, e) < 0)
            ev_conn_close(e);
        else
            ev_conn_settle(e, e->c->state);
        e = next;
    }
}

void ev_handback_cb(uv_async_t *h)
{
    ev_child_t *ev = h->data;
    settle_back(ev, take_back(ev, 0));
    ev_dispatch(ev);
}

void ev_handback_awake(ev_child_t *ev)
{
    pthread_mutex_lock(&ev->lock);
    ev->loop_sleeping = 0;
    pthread_mutex_unlock(&ev->lock);
}

static void on_watch(uv_timer_t *t)
{
    ev_child_t *ev = t->data;
    if (ev->in_workers == 0) {
        uv_timer_stop(t);
        return;
    }
    mpm__pool_watch(ev->pool);
}

int ev_handback_before_sleep(ev_child_t *ev)
{
    int moved = 0;
    for (ev_conn_t *e; (e = take_back(ev, 1)) != NULL; moved = 1)
        settle_back(ev, e);
    if (moved) {
        ev_dispatch(ev);
        ev_moved(ev);
    }
    mpm__pool_kick(ev->pool, ev->holders);
    ev->holders = 0;
    if (ev->in_workers > 0 && !uv_is_active((uv_handle_t *)&ev->watch))
        uv_timer_start(&ev->watch, on_watch, EV_WATCH_MS, EV_WATCH_MS);
    return !moved;
}

void ev_handback_prepare(uv_prepare_t *h)
{
    (void)ev_handback_before_sleep(h->data);
}

ev_conn_t *ev_handback_stop(ev_child_t *ev)
{
    pthread_mutex_lock(&ev->lock);
    ev->loop_closed = 1;
    ev_conn_t *list = ev->back_head;
    ev->back_head = ev->back_tail = NULL;
    pthread_mutex_unlock(&ev->lock);
    while (atomic_load_explicit(&ev->waking, memory_order_acquire) != 0)
        sched_yield(); /* a thread between its unlock and uv_async_send */
    for (ev_conn_t *e = list; e; e = e->next)
        atomic_fetch_sub_explicit(&ev->outstanding, 1, memory_order_relaxed);
    return list;
}

void ev_handback_free(ev_conn_t *list)
{
    while (list) {
        ev_conn_t *next = list->next;
        ev_conn_free(list);
        list = next;
    }
}

int ev_handback_release(ev_child_t *ev)
{
    pthread_mutex_lock(&ev->lock);
    int left = atomic_load(&ev->outstanding) != 0;
    ev->orphaned = left;
    pthread_mutex_unlock(&ev->lock);
    return left;
}
