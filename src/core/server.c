/* The server object: creation from a config snapshot, bind, run, stop. */
#include "fdreg.h"
#include "internal.h"
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void mpm__server_fail(mpm_server_t *srv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(srv->errmsg, sizeof(srv->errmsg), fmt, ap);
    va_end(ap);
    /* The caller gets this back from run(); logging it as an error too would
     * print every start-up failure twice. */
    mpm__log(srv, MPM_LOG_DEBUG, "%s", srv->errmsg);
}

static int config_fail(const mpm_config_t *cfg, const char *msg)
{
    snprintf(((mpm_config_t *)cfg)->errmsg, sizeof(cfg->errmsg), "%s", msg);
    return MPM_ECONFIG;
}

/* Whole-config checks; the message lands in cfg's errmsg, as for a bad
 * directive, so the host reads one place for configuration errors. */
static int check_config(const mpm_config_t *cfg, const mpm__strategy_t **strategy)
{
    char err[256] = "";
    if (!cfg->handler)
        return config_fail(cfg, "no request handler: call mpm_config_set_handler()");
    if (mpm__settings_check(&cfg->s, err, sizeof(err)) < 0)
        return config_fail(cfg, err);
    *strategy = mpm__strategy_find(cfg->s.mpm, err, sizeof(err));
    if (!*strategy) {
        config_fail(cfg, err);
        return strstr(err, "not available") ? MPM_ENOTSUP : MPM_ECONFIG;
    }
    if ((*strategy)->check(&cfg->s, err, sizeof(err)) < 0)
        return config_fail(cfg, err);
    return 0;
}

int mpm_server_new(const mpm_config_t *cfg, mpm_server_t **out)
{
    if (!cfg || !out)
        return MPM_EINVAL;
    *out = NULL;
    const mpm__strategy_t *strategy;
    int rc = check_config(cfg, &strategy);
    if (rc < 0)
        return rc;
    mpm_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return MPM_ENOMEM;
    srv->cfg = *cfg;
    srv->strategy = strategy;
    /* The scoreboard exists from the start, so mpm_server_stats() can run on
     * any thread at any time without racing its creation. */
    mpm__pool_limits_t lim;
    strategy->pool_limits(&cfg->s, &lim);
    unsigned slots = cfg->s.one_process ? 1 : lim.server_limit;
    srv->sb = mpm__sb_create(slots, lim.units_per_child);
    srv->thread_data = calloc(lim.units_per_child, sizeof(*srv->thread_data));
    srv->nthread_data = lim.units_per_child;
    int piped = -1;
    if (srv->sb && srv->thread_data) {
        mpm__fdreg_lock();
        piped = mpm__fdreg_keep_pair(srv, pipe2(srv->wake_pipe, O_CLOEXEC | O_NONBLOCK),
                                     srv->wake_pipe);
    }
    if (piped != 0) {
        rc = srv->sb && srv->thread_data ? -errno : MPM_ENOMEM;
        mpm__sb_destroy(srv->sb);
        free(srv->thread_data);
        free(srv);
        return rc;
    }
    srv->wake_fds[0] = srv->wake_pipe[0];
    srv->nwake = 1;
    pthread_mutex_init(&srv->orphan_lock, NULL);
    pthread_cond_init(&srv->orphans_gone, NULL);
    srv->ctl_fd = -1;
    atomic_init(&srv->state, MPM__SRV_NEW);
    atomic_init(&srv->stop, MPM__STOP_NONE);
    atomic_init(&srv->restart, 0);
    atomic_init(&srv->graceful_since_ms, 0);
    *out = srv;
    return 0;
}

void mpm__server_orphans_hold(mpm_server_t *srv)
{
    pthread_mutex_lock(&srv->orphan_lock);
    srv->orphans++;
    pthread_mutex_unlock(&srv->orphan_lock);
}

void mpm__server_orphans_release(mpm_server_t *srv)
{
    pthread_mutex_lock(&srv->orphan_lock);
    srv->orphans--;
    pthread_cond_broadcast(&srv->orphans_gone);
    pthread_mutex_unlock(&srv->orphan_lock);
}

/* Handler threads abandoned at GracefulShutdownTimeout still use the server
 * (its configuration, scoreboard and wake pipe) until they return. */
static void wait_for_orphans(mpm_server_t *srv)
{
    pthread_mutex_lock(&srv->orphan_lock);
    if (srv->orphans)
        mpm__log(srv, MPM_LOG_NOTICE, "waiting for abandoned handlers to return");
    while (srv->orphans)
        pthread_cond_wait(&srv->orphans_gone, &srv->orphan_lock);
    pthread_mutex_unlock(&srv->orphan_lock);
}

void mpm_server_free(mpm_server_t *srv)
{
    if (!srv)
        return;
    wait_for_orphans(srv);
    pthread_cond_destroy(&srv->orphans_gone);
    pthread_mutex_destroy(&srv->orphan_lock);
    if (srv->bound)
        mpm__listeners_close(srv->listeners, srv->nlisteners);
    mpm__fdreg_close(srv->wake_pipe[0]);
    mpm__fdreg_close(srv->wake_pipe[1]);
    mpm__sb_destroy(srv->sb);
    mpm__tls_free(srv);
    free(srv->thread_data);
    free(srv);
}

static int bind_listeners(mpm_server_t *srv)
{
    char err[256] = "";
    int rc = mpm__listeners_open_owned(srv, &srv->cfg.s, srv->listeners, &srv->nlisteners, err,
                                       sizeof(err));
    if (rc < 0) {
        mpm__server_fail(srv, "%s", err);
        return rc;
    }
    /* The certificates are read with the sockets, so that a host that
     * announces its ports after mpm_server_bind() has also seen a bad
     * certificate fail by then. */
    rc = mpm__tls_start(srv);
    if (rc < 0) {
        mpm__listeners_close(srv->listeners, srv->nlisteners);
        return rc;
    }
    srv->bound = 1;
    return 0;
}

int mpm_server_bind(mpm_server_t *srv)
{
    if (!srv)
        return MPM_EINVAL;
    if (srv->bound || atomic_load(&srv->state) != MPM__SRV_NEW)
        return MPM_ESTATE;
    return bind_listeners(srv);
}

int mpm_server_port(const mpm_server_t *srv, size_t i)
{
    if (!srv)
        return MPM_EINVAL;
    if (!srv->bound)
        return MPM_ESTATE;
    if (i >= srv->nlisteners)
        return MPM_EINVAL;
    return srv->listeners[i].port;
}

const char *mpm_server_errmsg(const mpm_server_t *srv)
{
    return srv ? srv->errmsg : "";
}

/* One-process mode: the calling process serves, with the child hooks run
 * around it as they would be in a forked child. */
/* The serving process is gone: its counters join the totals and its row is
 * freed, as the master does for a child that exited, so that the stats after
 * run() read the same in every strategy and mode (no process, no unit busy
 * or idle, the totals kept). */
static void retire_one_process(mpm_server_t *srv)
{
    mpm__scoreboard_t *sb = srv->sb;
    uint64_t conns, reqs;
    int64_t used;
    mpm__sb_slot_totals(sb, 0, &conns, &reqs, &used);
    atomic_fetch_add(&sb->retired_connections, conns);
    atomic_fetch_add(&sb->retired_requests, reqs);
    mpm__sb_slot_init(sb, 0, 0);
    mpm__sb_set_state(&sb->slot[0], MPM__SB_DEAD);
}

static int run_one_process(mpm_server_t *srv)
{
    srv->slot = &srv->sb->slot[0];
    srv->slot_index = 0;
    mpm__sb_slot_init(srv->sb, 0, 0);
    atomic_store(&srv->slot->pid, (int)getpid());
    int rc = 0;
    if (mpm__hooks_child_init(srv) != 0) {
        mpm__server_fail(srv, "child init hook failed");
        rc = MPM_ECHILD;
    } else {
        rc = srv->strategy->serve(srv);
        if (rc == MPM_ECHILD)
            mpm__server_fail(srv, "thread init hook failed");
        mpm__hooks_child_exit(srv);
    }
    retire_one_process(srv);
    return rc;
}

static int run_serving(mpm_server_t *srv)
{
    if (!srv->cfg.s.one_process) {
        int rc = mpm__master_check_fd_limit(srv);
        if (rc < 0)
            return rc;
    }
    if (!srv->bound) {
        int rc = bind_listeners(srv);
        if (rc < 0)
            return rc;
    }
    srv->started_ms = mpm__now_ms();
    if (srv->cfg.s.one_process)
        return run_one_process(srv);
    return mpm__master_run(srv);
}

int mpm_server_run(mpm_server_t *srv)
{
    if (!srv)
        return MPM_EINVAL;
    int expected = MPM__SRV_NEW;
    if (!atomic_compare_exchange_strong(&srv->state, &expected, MPM__SRV_RUNNING))
        return MPM_ESTATE;
    srv->errmsg[0] = '\0';
    int rc = 0;
    if (!mpm__server_stopping(srv))
        rc = run_serving(srv);
    /* Nobody accepts any more: refuse new clients rather than let them
     * wait in a backlog (host fds stay the host's). */
    mpm__listeners_close(srv->listeners, srv->nlisteners);
    atomic_store(&srv->state, MPM__SRV_DONE);
    return rc;
}

/* Async-signal-safe: atomics and write(2) only, errno preserved. */
void mpm__server_stop_local(mpm_server_t *srv, int graceful)
{
    int want = graceful ? MPM__STOP_GRACEFUL : MPM__STOP_NOW;
    int cur = atomic_load(&srv->stop);
    /* clock_gettime is async-signal-safe. Readers seeing the stop before its
     * time treat the bound as not started yet. */
    int64_t now = mpm__now_ms();
    while (cur < want) {
        if (atomic_compare_exchange_weak(&srv->stop, &cur, want)) {
            if (cur == MPM__STOP_NONE && want == MPM__STOP_GRACEFUL)
                atomic_store(&srv->graceful_since_ms, now);
            break;
        }
    }
    int saved = errno;
    (void)!write(srv->wake_pipe[1], "x", 1);
    if (srv->strategy->wake)
        srv->strategy->wake(srv);
    errno = saved;
}

/* In a child, the server's stop and restart are the master's business: the
 * request goes up the control channel ('S' stop, 'G' graceful stop, 'R'
 * restart, 'U' graceful restart; the master's own commands down the same
 * channel are lower case). One byte, non-blocking, no SIGPIPE:
 * async-signal-safe. Returns 0 if the master will hear it. */
static int tell_master(mpm_server_t *srv, char cmd)
{
    if (srv->ctl_fd < 0)
        return MPM_ESTATE;
    int saved = errno;
    ssize_t n = send(srv->ctl_fd, &cmd, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    errno = saved;
    return n == 1 ? 0 : MPM_ECLOSED;
}

int mpm_server_stop(mpm_server_t *srv, int graceful)
{
    if (!srv)
        return MPM_EINVAL;
    if (tell_master(srv, graceful ? 'G' : 'S') != 0)
        mpm__server_stop_local(srv, graceful);
    return 0;
}

int mpm_server_restart(mpm_server_t *srv, int graceful)
{
    if (!srv)
        return MPM_EINVAL;
    if (srv->cfg.s.one_process)
        return MPM_ENOTSUP;
    if (srv->ctl_fd >= 0)
        return tell_master(srv, graceful ? 'U' : 'R');
    int saved = errno;
    atomic_store(&srv->restart, graceful ? 2 : 1);
    (void)!write(srv->wake_pipe[1], "r", 1);
    errno = saved;
    return 0;
}

/* What the window lets in (a kept-alive client's next request, a connection
 * a retiring child accepts at its very end) must still have time to be
 * answered before GracefulShutdownTimeout turns the stop hard and drops it:
 * so the window takes at most half of that bound. */
int64_t mpm__drain_window_ms(const mpm_server_t *srv)
{
    const mpm__settings_t *s = &srv->cfg.s;
    int64_t w = s->drain_window_ms < s->keepalive_timeout_ms ? s->drain_window_ms
                                                              : s->keepalive_timeout_ms;
    int64_t half_bound = s->graceful_shutdown_timeout_ms / 2;
    if (s->graceful_shutdown_timeout_ms > 0 && half_bound < w)
        w = half_bound;
    return w;
}

int64_t mpm__graceful_deadline(const mpm_server_t *srv)
{
    int64_t bound = srv->cfg.s.graceful_shutdown_timeout_ms;
    int64_t since = atomic_load(&((mpm_server_t *)srv)->graceful_since_ms);
    return bound > 0 && since > 0 ? since + bound : 0;
}

/* Commands from the master: 'g' graceful stop, 's' stop now; end of file
 * means the master is gone, which is a graceful stop too. */
int mpm__server_check_wake(mpm_server_t *srv)
{
    if (srv->ctl_fd >= 0) {
        char cmd[16];
        ssize_t n = read(srv->ctl_fd, cmd, sizeof(cmd));
        if (n == 0)
            mpm__server_stop_local(srv, 1);
        for (ssize_t i = 0; i < n; i++)
            mpm__server_stop_local(srv, cmd[i] == 'g');
    }
    return mpm__server_stopping(srv);
}

/* A serving loop takes in its master's commands only while it waits (a
 * prefork child: between connections), so code running mid-request takes
 * in what is pending itself: a non-blocking read of the control channel,
 * never a wait (nothing to read in a master or one process), unless
 * another thread watches the channel all along (ctl_watched: a syscall
 * per response saved). Past
 * GracefulShutdownTimeout a graceful stop is a hard one for the whole
 * serving process, as the connection I/O would find at its next wait. */
int mpm__server_poll_stop(mpm_server_t *srv)
{
    if (mpm__server_stopping(srv) != MPM__STOP_NOW && srv->ctl_fd >= 0 &&
        !atomic_load_explicit(&srv->ctl_watched, memory_order_relaxed))
        mpm__server_check_wake(srv);
    int stop = mpm__server_stopping(srv);
    if (stop == MPM__STOP_GRACEFUL) {
        int64_t bound = mpm__graceful_deadline(srv);
        if (bound && mpm__now_ms() >= bound) {
            mpm__server_stop_local(srv, 0);
            stop = MPM__STOP_NOW;
        }
    }
    return stop;
}

/* Sums of up to ServerLimit x ThreadsPerChild units: saturate, never wrap. */
static void add_units(unsigned *sum, unsigned n)
{
    *sum = *sum > UINT_MAX - n ? UINT_MAX : *sum + n;
}

static void add_slot(mpm_stats_t *st, mpm__scoreboard_t *sb, unsigned i)
{
    mpm__sb_slot_t *sl = &sb->slot[i];
    if (atomic_load_explicit(&sl->state, memory_order_relaxed) == MPM__SB_DEAD)
        return;
    uint64_t conns, reqs;
    int64_t used;
    mpm__sb_slot_totals(sb, i, &conns, &reqs, &used);
    st->processes++;
    add_units(&st->busy_workers, atomic_load_explicit(&sl->busy, memory_order_relaxed));
    add_units(&st->idle_workers, atomic_load_explicit(&sl->idle, memory_order_relaxed));
    add_units(&st->parked_connections, atomic_load_explicit(&sl->parked, memory_order_relaxed));
    add_units(&st->reading_connections, atomic_load_explicit(&sl->reading, memory_order_relaxed));
    add_units(&st->writing_connections, atomic_load_explicit(&sl->writing, memory_order_relaxed));
    add_units(&st->lingering_connections,
              atomic_load_explicit(&sl->lingering, memory_order_relaxed));
    st->connections_served += conns;
    st->requests_served += reqs;
}

int mpm_server_stats(const mpm_server_t *srv, mpm_stats_t *st)
{
    if (!srv || !st || st->size < offsetof(mpm_stats_t, generation))
        return MPM_EINVAL;
    mpm_stats_t s = {0};
    s.size = st->size < sizeof(s) ? st->size : sizeof(s);
    s.strategy = srv->strategy->name;
    mpm__scoreboard_t *sb = srv->sb;
    if (sb) {
        s.generation = atomic_load(&sb->generation);
        s.slots = sb->nslots;
        s.connections_served = atomic_load(&sb->retired_connections);
        s.requests_served = atomic_load(&sb->retired_requests);
        for (unsigned i = 0; i < sb->nslots; i++)
            add_slot(&s, sb, i);
    }
    s.uptime_ms = srv->started_ms ? (uint64_t)(mpm__now_ms() - srv->started_ms) : 0;
    memcpy(st, &s, s.size);
    return 0;
}

int mpm_server_child_stats(const mpm_server_t *srv, unsigned i, mpm_child_stats_t *out)
{
    if (!srv || !out || out->size < offsetof(mpm_child_stats_t, pid))
        return MPM_EINVAL;
    if (!srv->sb || i >= srv->sb->nslots)
        return MPM_ERANGE;
    mpm__sb_slot_t *sl = &srv->sb->slot[i];
    int state = atomic_load(&sl->state);
    /* The master publishes a slot before fork() returns its pid: until the
     * pid is stored there is no process to describe. */
    int pid = atomic_load(&sl->pid);
    if (state == MPM__SB_DEAD || pid <= 0)
        return MPM_ENOENT;
    uint64_t conns, reqs;
    int64_t last;
    mpm__sb_slot_totals(srv->sb, i, &conns, &reqs, &last);
    /* A single-unit process is best described by its unit's state. */
    if (srv->sb->workers_per_slot == 1 && state != MPM__SB_STARTING)
        state = atomic_load(&mpm__sb_worker(srv->sb, i, 0)->state);
    mpm_child_stats_t c = {
        .size = out->size < sizeof(c) ? out->size : sizeof(c),
        .pid = pid,
        .generation = atomic_load(&sl->generation),
        .state = mpm__sb_state_name(state),
        .busy_workers = atomic_load(&sl->busy),
        .idle_workers = atomic_load(&sl->idle),
        .parked_connections = atomic_load(&sl->parked),
        .connections_served = conns,
        .requests_served = reqs,
        .idle_ms = last ? (uint64_t)(mpm__now_ms() - last) : 0,
        .reading_connections = atomic_load(&sl->reading),
        .writing_connections = atomic_load(&sl->writing),
        .lingering_connections = atomic_load(&sl->lingering),
    };
    memcpy(out, &c, c.size);
    return 0;
}
