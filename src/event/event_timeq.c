/* Timeout queues (event.h): one timer for every connection's deadline. */
#include "event.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

void ev_tq_init(ev_child_t *ev)
{
    for (int i = 0; i < EV_TQ_COUNT; i++)
        ev->tq[i].head = ev->tq[i].tail = NULL;
}

/* The queue for `left` ms: the largest power of two not above it. */
static int queue_for(int64_t left)
{
    int q = 0;
    while (q < EV_TQ_TOP && ((int64_t)2 << q) <= left)
        q++;
    return q;
}

void ev_tq_remove(ev_child_t *ev, ev_conn_t *e)
{
    if (e->tq < 0)
        return;
    ev_tq_t *q = &ev->tq[e->tq];
    if (e->tq_prev)
        e->tq_prev->tq_next = e->tq_next;
    else
        q->head = e->tq_next;
    if (e->tq_next)
        e->tq_next->tq_prev = e->tq_prev;
    else
        q->tail = e->tq_prev;
    e->tq_prev = e->tq_next = NULL;
    e->tq = -1;
}

static void append(ev_child_t *ev, ev_conn_t *e, int q, int64_t now)
{
    ev_tq_t *tq = &ev->tq[q];
    e->tq = (signed char)q;
    e->check_ms = now + ((int64_t)1 << q);
    e->tq_next = NULL;
    e->tq_prev = tq->tail;
    if (tq->tail)
        tq->tail->tq_next = e;
    else
        tq->head = e;
    tq->tail = e;
    if (!ev->timer_at || e->check_ms < ev->timer_at)
        ev_tq_arm(ev);
}

void ev_tq_add(ev_child_t *ev, ev_conn_t *e, int64_t deadline_ms)
{
    ev_tq_remove(ev, e);
    e->deadline_ms = deadline_ms;
    int64_t now = mpm__now_ms();
    append(ev, e, queue_for(deadline_ms - now), now);
}

/* What the timeouts free (a pinned connection's promise of a thread, a
 * closed connection) reaches admission in the same pass: the loop's check
 * runs right after its timers, before it sleeps (event.c). */
static void on_timer(uv_timer_t *t)
{
    ev_tq_run(t->data);
}

void ev_tq_arm(ev_child_t *ev)
{
    int64_t first = 0;
    for (int i = 0; i < EV_TQ_COUNT; i++)
        if (ev->tq[i].head && (!first || ev->tq[i].head->check_ms < first))
            first = ev->tq[i].head->check_ms;
    ev->timer_at = first;
    if (!first) {
        uv_timer_stop(&ev->timer);
        return;
    }
    uv_update_time(&ev->loop);
    int64_t left = first - mpm__now_ms();
    uv_timer_start(&ev->timer, on_timer, left > 0 ? (uint64_t)left : 0, 0);
}

void ev_tq_run(ev_child_t *ev)
{
    int64_t now = mpm__now_ms();
    for (int i = 0; i < EV_TQ_COUNT; i++) {
        ev_conn_t *e;
        while ((e = ev->tq[i].head) != NULL && e->check_ms <= now) {
            int64_t deadline = e->deadline_ms;
            if (deadline > now) {
                ev_tq_remove(ev, e);
                append(ev, e, queue_for(deadline - now), now);
                continue;
            }
            ev_tq_remove(ev, e);
            ev_conn_timed_out(e);
        }
    }
    ev_trim_after_parking(ev, now);
    ev_tq_arm(ev);
}

/* Many connections parked: what their buffers took during a burst is free
 * again but still the process's; give it back to the system, at most once
 * a second, so that parked connections cost what they hold. */

void ev_trim_after_parking(ev_child_t *ev, int64_t now)
{
    if (ev->parks_since_trim < EV_TRIM_AFTER_PARKS)
        return;
    if (now - ev->last_trim_ms < EV_TRIM_EVERY_MS) {
        ev_tick_need(ev); /* the tick comes back for it */
        return;
    }
    ev->parks_since_trim = 0;
    ev->last_trim_ms = now;
#ifdef __GLIBC__
    (void)malloc_trim(0);
#endif
}
