/* event: each child runs one libuv loop thread that owns every connection
 * not in a handler, and ThreadsPerChild pool threads that run handlers. A
 * connection reaches a thread only with a complete request head (and a
 * small body, RequestBodyPrefetch), so idle and slow clients hold none; a
 * thread hands it back when the handler returns. */
#include "event.h"
#include "core/fdreg.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* While a graceful stop runs the wake fds stay readable, so the loop looks
 * at the stop state at this interval instead (the drain window's end, the
 * GracefulShutdownTimeout, a hard stop that follows). */
#define EV_TICK_MS 100
/* Fds a child keeps for itself besides connections. */
#define EV_FD_RESERVE 64

static unsigned default_conn_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 1000000;
    if (rl.rlim_cur <= 2 * EV_FD_RESERVE)
        return (unsigned)(rl.rlim_cur / 2);
    return rl.rlim_cur - EV_FD_RESERVE > 1000000 ? 1000000 : (unsigned)(rl.rlim_cur - EV_FD_RESERVE);
}

static void unwatch_wake(ev_child_t *ev)
{
    for (unsigned i = 0; i < ev->nwake_watched; i++)
        uv_poll_stop(&ev->wake[i]);
    atomic_store(&ev->srv->ctl_watched, 0);
}

static int all_done(ev_child_t *ev)
{
    return ev->nconns == 0 && !ev->accepting;
}

/* Takes in the stop state: a graceful stop drains, a hard one (or the
 * graceful bound passing) closes what the loop holds and ends it; threads
 * in handlers see the stop in their own waits. */
static void check_stop(ev_child_t *ev)
{
    mpm_server_t *srv = ev->srv;
    int stop = mpm__server_stopping(srv);
    int64_t bound = mpm__graceful_deadline(srv);
    if (stop == MPM__STOP_GRACEFUL && bound && mpm__now_ms() >= bound) {
        mpm__log(srv, MPM_LOG_INFO, "GracefulShutdownTimeout reached: closing connections");
        ev->bound_passed_ms = bound; /* handlers still running are abandoned */
        mpm__server_stop_local(srv, 0);
        stop = MPM__STOP_NOW;
    }
    if (ev->pool->init_failed && stop == MPM__STOP_NONE)
        stop = MPM__STOP_NOW;
    if (stop == MPM__STOP_GRACEFUL && ev->stopping == MPM__STOP_NONE) {
        ev->stopping = stop;
        ev->drain_until = mpm__now_ms() + mpm__drain_window_ms(srv);
        unwatch_wake(ev);
        ev_tick_need(ev);
        ev_conn_drain_all(ev);
    }
    if (stop == MPM__STOP_NOW && ev->stopping != MPM__STOP_NOW) {
        ev->stopping = stop;
        unwatch_wake(ev);
        ev_conn_close_all(ev);
    }
    ev_admission(ev);
    if (ev->stopping == MPM__STOP_NOW || (ev->stopping && all_done(ev)))
        ev_loop_end(ev);
}

static void on_tick(uv_timer_t *t)
{
    ev_child_t *ev = t->data;
    if (!ev->ready) {
        int r = mpm__pool_ready(ev->pool);
        if (r < 0)
            mpm__server_stop_local(ev->srv, 0);
        if (r > 0) {
            /* The master takes READY as proof the generation can start:
             * only once every thread's init hook returned 0. */
            ev->ready = 1;
            mpm__sb_set_state(ev->srv->slot, MPM__SB_READY);
        }
    }
    if (ev->backoff_until && mpm__now_ms() >= ev->backoff_until)
        ev->backoff_until = 0; /* check_stop() lets accepts in again */
    check_stop(ev);
    ev_trim_after_parking(ev, mpm__now_ms());
    if (ev->ready && !ev->stopping && !ev->backoff_until &&
        ev->parks_since_trim < EV_TRIM_AFTER_PARKS)
        uv_timer_stop(t);
}

void ev_tick_need(ev_child_t *ev)
{
    if (!uv_is_active((uv_handle_t *)&ev->tick))
        uv_timer_start(&ev->tick, on_tick, EV_TICK_MS, EV_TICK_MS);
}

static void on_wake(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    ev_child_t *ev = h->data;
    mpm__server_check_wake(ev->srv);
    check_stop(ev);
}

void ev_moved(ev_child_t *ev)
{
    ev_admission(ev);
    if (ev->stopping && all_done(ev))
        ev_loop_end(ev);
}

/* uv_stop as well: it also makes uv_backend_timeout() 0, so a loop ended
 * just before its sleep (ev_handback_before_sleep) does not sleep. */
void ev_loop_end(ev_child_t *ev)
{
    ev->loop_ended = 1;
    uv_stop(&ev->loop);
}

/* libuv runs what is ready without waiting; the loop then sleeps in the
 * listeners' set (event_accept.c says why there), as long as libuv's next
 * timer allows, unless threads handed connections back meanwhile. Every
 * pass looks at the listeners, so a busy child still accepts. */
static int run_loop(ev_child_t *ev)
{
    while (!ev->loop_ended) {
        if (uv_run(&ev->loop, UV_RUN_NOWAIT) == 0 || ev->loop_ended)
            break;
        int may_sleep = ev_handback_before_sleep(ev);
        int rc = ev_accept_wait(ev, may_sleep ? uv_backend_timeout(&ev->loop) : 0);
        ev_handback_awake(ev);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* After every loop iteration: connections moved, so may accepting. */
static void on_check(uv_check_t *h)
{
    ev_child_t *ev = h->data;
    ev_handback_awake(ev);
    ev_moved(ev);
}

static int loop_open(ev_child_t *ev)
{
    mpm_server_t *srv = ev->srv;
    int rc = uv_loop_init(&ev->loop);
    if (rc < 0)
        return rc;
    ev->loop_open = 1;
    uv_timer_init(&ev->loop, &ev->timer);
    uv_timer_init(&ev->loop, &ev->tick);
    uv_check_init(&ev->loop, &ev->check);
    uv_prepare_init(&ev->loop, &ev->prepare);
    uv_timer_init(&ev->loop, &ev->watch);
    ev->timer.data = ev->tick.data = ev->check.data = ev->handback.data = ev;
    ev->prepare.data = ev->watch.data = ev;
    if ((rc = uv_async_init(&ev->loop, &ev->handback, ev_handback_cb)) < 0)
        return rc;
    ev->handback.data = ev;
    if ((rc = uv_poll_init(&ev->loop, &ev->idle_poll, ev->pool->idle_efd)) < 0)
        return rc;
    ev->idle_poll.data = ev;
    for (unsigned i = 0; i < srv->nwake; i++) {
        if ((rc = uv_poll_init(&ev->loop, &ev->wake[i], srv->wake_fds[i])) < 0)
            return rc;
        ev->wake[i].data = ev;
        ev->nwake_watched++;
        uv_poll_start(&ev->wake[i], UV_READABLE, on_wake);
    }
    atomic_store(&srv->ctl_watched, 1);
    if ((rc = ev_io_open(ev)) < 0 || (rc = ev_accept_open(ev)) < 0)
        return rc;
    uv_check_start(&ev->check, on_check);
    uv_prepare_start(&ev->prepare, ev_handback_prepare);
    uv_timer_start(&ev->tick, on_tick, 0, 10); /* until the threads are ready */
    return 0;
}

/* Ends the loop's part: connections in threads are left to their threads
 * (they free them when done), the rest is closed; then the handles, and
 * the loop once their close callbacks ran. */
static void loop_close(ev_child_t *ev)
{
    if (!ev->loop_open)
        return;
    atomic_store(&ev->srv->ctl_watched, 0);
    ev_conn_close_all(ev);
    ev_conn_t *orphans = ev_handback_stop(ev);
    uv_handle_t *handles[] = {(uv_handle_t *)&ev->timer, (uv_handle_t *)&ev->tick,
                              (uv_handle_t *)&ev->check, (uv_handle_t *)&ev->handback,
                              (uv_handle_t *)&ev->idle_poll, (uv_handle_t *)&ev->prepare,
                              (uv_handle_t *)&ev->watch};
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++)
        if (uv_is_active(handles[i]) || handles[i]->loop == &ev->loop)
            if (!uv_is_closing(handles[i]))
                uv_close(handles[i], NULL);
    for (unsigned i = 0; i < ev->nwake_watched; i++)
        uv_close((uv_handle_t *)&ev->wake[i], NULL);
    ev_io_close(ev);
    uv_run(&ev->loop, UV_RUN_DEFAULT);
    ev_handback_free(orphans);
    if (uv_loop_close(&ev->loop) != 0)
        mpm__log(ev->srv, MPM_LOG_WARN, "event loop closed with handles left");
    if (ev->accept_ep >= 0)
        mpm__fdreg_close(ev->accept_ep);
    if (ev->io_ep >= 0)
        mpm__fdreg_close(ev->io_ep);
}


static ev_child_t *child_new(mpm_server_t *srv)
{
    ev_child_t *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return NULL;
    ev->srv = srv;
    ev->accept_ep = ev->io_ep = -1;
    ev->factor_milli = srv->cfg.s.async_worker_factor_milli;
    ev->conn_limit = srv->cfg.s.async_connection_limit ? srv->cfg.s.async_connection_limit
                                                       : default_conn_limit();
    ev_tq_init(ev);
    pthread_mutex_init(&ev->lock, NULL);
    return ev;
}

static int event_serve(mpm_server_t *srv)
{
    ev_child_t *ev = child_new(srv);
    if (!ev)
        return MPM_ENOMEM;
    int rc = mpm__pool_start(&ev->pool, srv, srv->cfg.s.threads_per_child, ev_work);
    if (rc < 0) {
        ev_child_free(ev);
        return rc;
    }
    ev->pool->user = ev;
    mpm__pool_batch(ev->pool);
    rc = loop_open(ev);
    if (rc == 0)
        rc = run_loop(ev);
    if (rc < 0)
        mpm__log(srv, MPM_LOG_ERROR, "event loop: %s", uv_strerror(rc));
    mpm__sb_set_state(srv->slot, MPM__SB_GRACEFUL);
    loop_close(ev);
    int stopped =
        mpm__pool_stop(ev->pool, ev->bound_passed_ms ? ev->bound_passed_ms : mpm__pool_stop_deadline(srv));
    /* Threads abandoned at the bound may still hand connections back. */
    if (!ev_handback_release(ev))
        ev_child_free(ev);
    return stopped < 0 ? stopped : rc < 0 ? rc : 0;
}

void ev_child_free(ev_child_t *ev)
{
    pthread_mutex_destroy(&ev->lock);
    free(ev);
}

const mpm__strategy_t mpm__event_strategy = {
    .name = "event",
    .check = mpm__threaded_check,
    .pool_limits = mpm__threaded_pool_limits,
    .serve = event_serve,
    .wake = NULL,
};
