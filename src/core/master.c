/* The master: forks children, watches them, keeps the number of idle units
 * between the spare bounds, and carries out stop / graceful stop / restart /
 * graceful restart. Strategy-neutral: what a unit is (a process, a thread)
 * comes from the strategy's pool limits. */
#include "fdreg.h"
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MPM__MAINTENANCE_MS 1000
#define MPM__MAX_SPAWN_RATE 32
/* After SIGTERM, children get this long before SIGKILL. */
#define MPM__KILL_GRACE_MS 3000

/* ---- waiting for events ---- */

static void drain_fd(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

/* Signal numbers from the handler become the same requests the API makes. */
static void take_signals(mpm__master_t *m)
{
    unsigned char sigs[32];
    ssize_t n;
    while ((n = read(m->sigpipe[0], sigs, sizeof(sigs))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            int sig = sigs[i];
            if (sig == SIGTERM || sig == SIGINT)
                mpm_server_stop(m->srv, 0);
            else if (sig == SIGWINCH)
                mpm_server_stop(m->srv, 1);
            else if (sig == SIGHUP)
                mpm_server_restart(m->srv, 0);
            else if (sig == SIGUSR1)
                mpm_server_restart(m->srv, 1);
        }
    }
}

/* epoll data of the master's own fds; a pidfd's is its slot index. */
#define TAG_WAKE UINT64_MAX
#define TAG_SIGNAL (UINT64_MAX - 1)
/* How long a master whose epoll_wait fails waits between checks. */
#define MPM__WAIT_FAILED_MS 100

/* Children without a watched pidfd (old kernel) are checked by waitpid. */
static int reap_unwatched(mpm__master_t *m)
{
    int unwatched = 0;
    for (unsigned i = 0; i < m->lim.server_limit; i++) {
        if (m->kids[i].pid && !m->kids[i].watched) {
            unwatched = 1;
            mpm__master_reap(m, i);
        }
    }
    return unwatched;
}

/* epoll_wait failed for a reason other than a signal: say so once, then
 * keep the master working without it, by polling (wake pipe, signal pipe,
 * every child with waitpid) at a slow pace, never a spin. */
static void wait_failed(mpm__master_t *m, int err)
{
    if (!m->wait_failing)
        mpm__log(m->srv, MPM_LOG_ERROR, "epoll_wait: %s; watching children by polling",
                 strerror(err));
    m->wait_failing = 1;
    struct timespec nap = {.tv_nsec = MPM__WAIT_FAILED_MS * 1000000L};
    (void)nanosleep(&nap, NULL);
    drain_fd(m->srv->wake_pipe[0]);
    take_signals(m);
    for (unsigned i = 0; i < m->lim.server_limit; i++) {
        mpm__master_hear(m, i);
        mpm__master_reap(m, i);
    }
}

/* Waits on the master's epoll set (wake pipe, signal pipe, every watched
 * child's pidfd) until timeout_ms; reaps children that exited. */
static void wait_events(mpm__master_t *m, int timeout_ms)
{
    int unwatched = reap_unwatched(m);
    if (unwatched && timeout_ms > 100)
        timeout_ms = 100;
    struct epoll_event evs[64];
    int n = epoll_wait(m->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout_ms);
    if (n < 0) {
        if (errno != EINTR)
            wait_failed(m, errno);
        return;
    }
    m->wait_failing = 0;
    for (int e = 0; e < n; e++) {
        uint64_t tag = evs[e].data.u64;
        if (tag == TAG_WAKE)
            drain_fd(m->srv->wake_pipe[0]);
        else if (tag == TAG_SIGNAL)
            take_signals(m);
        else if (tag < m->lim.server_limit)
            mpm__master_reap(m, (unsigned)tag);
        else if (tag - MPM__MASTER_TAG_CTL < m->lim.server_limit)
            mpm__master_hear(m, (unsigned)(tag - MPM__MASTER_TAG_CTL));
    }
}

/* Waits until every child is gone or the deadline passes (0 = none).
 * Returns early (0) if a hard stop arrives while waiting gracefully. */
static int wait_children(mpm__master_t *m, int64_t deadline, int graceful)
{
    while (mpm__master_live(m) > 0) {
        int64_t left = deadline ? deadline - mpm__now_ms() : 1000;
        if (left <= 0)
            return 0;
        wait_events(m, left > 1000 ? 1000 : (int)left);
        if (graceful && mpm__server_stopping(m->srv) == MPM__STOP_NOW)
            return 0;
    }
    return 1;
}

/* ---- stopping and restarting ---- */

static void signal_generation(mpm__master_t *m, int sig, int only_old)
{
    for (unsigned i = 0; i < m->lim.server_limit; i++) {
        mpm__child_t *k = &m->kids[i];
        if (k->pid && (!only_old || k->generation != m->generation))
            mpm__master_signal(m, i, sig);
    }
}

/* TERM, then KILL what is left after the grace period; returns when every
 * targeted child is reaped. */
static void stop_children_now(mpm__master_t *m, int only_old)
{
    signal_generation(m, SIGTERM, only_old);
    int64_t deadline = mpm__now_ms() + MPM__KILL_GRACE_MS;
    for (;;) {
        int left = 0;
        for (unsigned i = 0; i < m->lim.server_limit; i++)
            left += m->kids[i].pid && (!only_old || m->kids[i].generation != m->generation);
        if (!left)
            return;
        if (mpm__now_ms() >= deadline) {
            signal_generation(m, SIGKILL, only_old);
            deadline = mpm__now_ms() + 60000;
        }
        wait_events(m, 100);
    }
}

static void tell_all(mpm__master_t *m, char cmd)
{
    for (unsigned i = 0; i < m->lim.server_limit; i++)
        if (m->kids[i].pid && (cmd != 'g' || !m->kids[i].retiring))
            mpm__master_tell(m, i, cmd);
}

/* Children finishing their requests still hold copies of the listening
 * sockets, which would keep accepting connections into a backlog nobody
 * serves any more (reset when the last copy closes). shutdown() on a
 * listening socket stops it for every process at once: new clients are
 * refused instead (connections already queued but not yet accepted are
 * reset: the inherent race of any stop). Sockets the host handed in are
 * left alone. */
static void refuse_new_connections(mpm_server_t *srv)
{
    for (unsigned i = 0; i < srv->nlisteners; i++)
        if (srv->listeners[i].owned)
            (void)shutdown(srv->listeners[i].fd, SHUT_RDWR);
}

static void stop_gracefully(mpm__master_t *m)
{
    mpm__log(m->srv, MPM_LOG_NOTICE, "graceful stop: waiting for %u children",
             mpm__master_live(m));
    /* Children go on accepting through the drain window, so the connections
     * already queued are served (with Connection: close); then the listeners
     * shut for every process at once and new clients are refused. */
    int64_t start = mpm__now_ms();
    tell_all(m, 'g');
    wait_children(m, start + mpm__drain_window_ms(m->srv), 1);
    refuse_new_connections(m->srv);
    int64_t bound = m->srv->cfg.s.graceful_shutdown_timeout_ms;
    if (mpm__server_stopping(m->srv) == MPM__STOP_NOW ||
        !wait_children(m, bound ? start + bound : 0, 1))
        stop_children_now(m, 0);
}

/* GracefulShutdownTimeout bounds every child told to finish (a graceful
 * restart's old generation, a retired spare) as it bounds a graceful stop:
 * past it, SIGTERM, then SIGKILL after the usual grace. */
static void bound_retiring(mpm__master_t *m)
{
    int64_t now = mpm__now_ms();
    for (unsigned i = 0; i < m->lim.server_limit; i++) {
        mpm__child_t *k = &m->kids[i];
        if (!k->pid || !k->retiring || !k->retire_by_ms || now < k->retire_by_ms)
            continue;
        mpm__master_signal(m, i, k->terminated ? SIGKILL : SIGTERM);
        k->retire_by_ms = now + (k->terminated ? 60000 : MPM__KILL_GRACE_MS);
        k->terminated = 1;
    }
}

static void spawn_children(mpm__master_t *m, unsigned n);

static void new_generation(mpm__master_t *m)
{
    m->generation++;
    m->gen_ready = 0;
    m->spawn_rate = 1;
    atomic_store(&m->srv->sb->generation, m->generation);
}

static void restart(mpm__master_t *m, int graceful)
{
    new_generation(m);
    mpm__tls_reload(m->srv);
    mpm__log(m->srv, MPM_LOG_NOTICE, "%srestart: generation %u", graceful ? "graceful " : "",
             m->generation);
    if (graceful) {
        for (unsigned i = 0; i < m->lim.server_limit; i++)
            if (m->kids[i].pid && m->kids[i].generation != m->generation)
                mpm__master_tell(m, i, 'g');
    } else {
        stop_children_now(m, 1);
    }
    spawn_children(m, m->lim.start_children);
}

/* ---- keeping the pool sized ---- */

static int free_slot(const mpm__master_t *m)
{
    for (unsigned i = 0; i < m->lim.server_limit; i++)
        if (!m->kids[i].pid)
            return (int)i;
    return -1;
}

static void spawn_children(mpm__master_t *m, unsigned n)
{
    for (unsigned done = 0; done < n; done++) {
        int slot = free_slot(m);
        if (slot < 0)
            return;
        int rc = mpm__master_spawn(m, (unsigned)slot);
        if (rc < 0) {
            mpm__log(m->srv, MPM_LOG_ERROR, "fork: %s; spawning paused", strerror(-rc));
            m->spawn_blocked_until_ms = mpm__now_ms() + MPM__SPAWN_PAUSE_MS;
            m->spawn_rate = 1;
            return;
        }
    }
}

/* The current generation's idle units, clamped to what a child can have
 * (the scoreboard is child-written), and the idlest fully idle child. */
typedef struct pool_census {
    unsigned children;
    uint64_t idle_units; /* up to ServerLimit x ThreadsPerChild */
    int idlest;
    int64_t idlest_used;
} pool_census_t;

static void count_child(mpm__master_t *m, unsigned i, pool_census_t *c)
{
    mpm__sb_slot_t *sl = &m->srv->sb->slot[i];
    int state = atomic_load_explicit(&sl->state, memory_order_relaxed);
    unsigned idle = atomic_load_explicit(&sl->idle, memory_order_relaxed);
    if (idle > m->lim.units_per_child)
        idle = m->lim.units_per_child;
    /* Only a child that reached READY (or went on to serve) shows that this
     * generation can start; a DEAD row is one that never got there, or is
     * on its way out, and must not hide a fatal child-init failure. */
    if (state != MPM__SB_STARTING && state != MPM__SB_DEAD)
        m->gen_ready = 1;
    c->children++;
    c->idle_units += idle;
    uint64_t conns, reqs;
    int64_t used;
    mpm__sb_slot_totals(m->srv->sb, i, &conns, &reqs, &used);
    if (state == MPM__SB_READY && idle == m->lim.units_per_child &&
        (c->idlest < 0 || used < c->idlest_used)) {
        c->idlest = (int)i;
        c->idlest_used = used;
    }
}

static void take_census(mpm__master_t *m, pool_census_t *c)
{
    *c = (pool_census_t){.idlest = -1};
    for (unsigned i = 0; i < m->lim.server_limit; i++) {
        mpm__child_t *k = &m->kids[i];
        if (k->pid && !k->retiring && k->generation == m->generation)
            count_child(m, i, c);
    }
}

static void grow_pool(mpm__master_t *m, const pool_census_t *c)
{
    if (c->children >= m->lim.max_children) {
        if (!m->max_workers_logged)
            mpm__log(m->srv, MPM_LOG_WARN, "server reached MaxRequestWorkers setting, "
                                           "consider raising it");
        m->max_workers_logged = 1;
        return;
    }
    if (mpm__now_ms() < m->spawn_blocked_until_ms)
        return;
    /* As httpd: the whole current rate, not just the shortfall, so that a
     * burst of load is met within a few passes. */
    unsigned room = m->lim.max_children - c->children;
    spawn_children(m, m->spawn_rate < room ? m->spawn_rate : room);
    if (m->spawn_rate < MPM__MAX_SPAWN_RATE)
        m->spawn_rate *= 2;
}

static void maintain(mpm__master_t *m)
{
    pool_census_t c;
    take_census(m, &c);
    if (c.idle_units < m->lim.min_spare_units) {
        grow_pool(m, &c);
        return;
    }
    m->spawn_rate = 1;
    m->max_workers_logged = 0;
    if (c.idle_units > m->lim.max_spare_units && c.idlest >= 0)
        mpm__master_tell(m, (unsigned)c.idlest, 'g');
}

/* ---- the loop ---- */

/* A spare minimum above one child's units makes the master keep several
 * children even when idle: say what it decided, once, so a pool bigger than
 * StartServers is no surprise. */
static void log_pool_plan(mpm__master_t *m)
{
    const mpm__pool_limits_t *l = &m->lim;
    if (l->units_per_child <= 1 || l->min_spare_units <= l->units_per_child)
        return;
    uint64_t need = ((uint64_t)l->min_spare_units + l->units_per_child - 1) / l->units_per_child;
    unsigned kept = need < l->max_children ? (unsigned)need : l->max_children;
    mpm__log(m->srv, MPM_LOG_NOTICE,
             "MinSpareThreads %u is more than ThreadsPerChild %u: the master keeps %u children "
             "(%llu threads) even when idle (StartServers %u, MaxSpareThreads %u, at most %u "
             "children)",
             l->min_spare_units, l->units_per_child, kept,
             (unsigned long long)kept * l->units_per_child, l->start_children,
             l->max_spare_units, l->max_children);
}

static int master_loop(mpm__master_t *m)
{
    log_pool_plan(m);
    spawn_children(m, m->lim.start_children);
    int64_t next = mpm__now_ms() + MPM__MAINTENANCE_MS;
    for (;;) {
        int64_t left = next - mpm__now_ms();
        wait_events(m, left > 0 ? (int)left : 0);
        if (m->fatal) {
            mpm__server_fail(m->srv, "children cannot start (child init failed); stopping");
            stop_children_now(m, 0);
            return MPM_ECHILD;
        }
        int stop = mpm__server_stopping(m->srv);
        if (stop == MPM__STOP_NOW) {
            stop_children_now(m, 0);
            return 0;
        }
        if (stop == MPM__STOP_GRACEFUL) {
            stop_gracefully(m);
            return 0;
        }
        int r = atomic_exchange(&m->srv->restart, 0);
        if (r)
            restart(m, r == 2);
        bound_retiring(m);
        if (mpm__now_ms() >= next) {
            maintain(m);
            next = mpm__now_ms() + MPM__MAINTENANCE_MS;
        }
    }
}

static int watch_fd(mpm__master_t *m, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    return epoll_ctl(m->ep, EPOLL_CTL_ADD, fd, &ev);
}

/* The master's own fds belong to m in the fd registry: its children close
 * them right after fork. */
static int master_setup(mpm__master_t *m, mpm_server_t *srv)
{
    m->srv = srv;
    m->pid = getpid();
    m->spawn_rate = 1;
    m->sigpipe[0] = m->sigpipe[1] = -1;
    srv->strategy->pool_limits(&srv->cfg.s, &m->lim);
    m->kids = calloc(m->lim.server_limit, sizeof(*m->kids));
    mpm__fdreg_lock();
    m->ep = mpm__fdreg_keep(m, epoll_create1(EPOLL_CLOEXEC));
    mpm__fdreg_lock();
    int piped = mpm__fdreg_keep_pair(m, pipe2(m->sigpipe, O_CLOEXEC | O_NONBLOCK), m->sigpipe);
    if (piped != 0)
        m->sigpipe[0] = m->sigpipe[1] = -1;
    if (!m->kids || m->ep < 0 || piped != 0 || watch_fd(m, srv->wake_pipe[0], TAG_WAKE) != 0 ||
        watch_fd(m, m->sigpipe[0], TAG_SIGNAL) != 0) {
        int err = m->kids ? errno : ENOMEM;
        mpm__server_fail(srv, "master set-up: %s", strerror(err));
        return -err;
    }
    for (unsigned i = 0; i < m->lim.server_limit; i++)
        m->kids[i].pidfd = m->kids[i].ctl = -1;
    if (srv->cfg.s.handle_signals)
        return mpm__master_signals_install(m);
    return 0;
}

static void master_teardown(mpm__master_t *m)
{
    mpm__master_signals_restore(m);
    mpm__fdreg_close(m->sigpipe[0]);
    mpm__fdreg_close(m->sigpipe[1]);
    mpm__fdreg_close(m->ep);
    free(m->kids);
}

/* What the master holds open: per child its pidfd and the control channel,
 * plus its own (standard streams, wake and signal pipes, epoll set, the
 * child's end of a control channel during a fork, listeners). */
#define MPM__FDS_PER_CHILD 2u
#define MPM__MASTER_OWN_FDS 11u

int mpm__master_check_fd_limit(mpm_server_t *srv)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    mpm__pool_limits_t lim;
    srv->strategy->pool_limits(&srv->cfg.s, &lim);
    /* Every slot can hold a live child (old generations finishing during
     * graceful restarts). 64-bit: no overflow for any ServerLimit. */
    uint64_t need = (uint64_t)lim.server_limit * MPM__FDS_PER_CHILD + MPM__MASTER_OWN_FDS +
                    srv->cfg.s.nlisten;
    if (need <= (uint64_t)rl.rlim_cur)
        return 0;
    mpm__server_fail(srv, "ServerLimit %u needs about %llu file descriptors; RLIMIT_NOFILE is %llu "
                          "(raise it, e.g. ulimit -n, or lower ServerLimit)",
                     lim.server_limit, (unsigned long long)need, (unsigned long long)rl.rlim_cur);
    return MPM_ECONFIG;
}

int mpm__master_run(mpm_server_t *srv)
{
    mpm__master_t m = {.ep = -1};
    int rc = master_setup(&m, srv);
    if (rc == 0)
        rc = master_loop(&m);
    master_teardown(&m);
    return rc;
}
