/* Worker thread pool: a mutex, one condition variable and a ring of
 * accepted connections bounded by the number of threads. */
#include "pool.h"
#include "fdreg.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* After a stop's deadline, how long threads that serve nothing may take to
 * notice the stop and exit before they are left behind too. */
#define MPM__POOL_EXIT_GRACE_MS 1000

typedef struct pool_thread_arg {
    mpm__pool_t *pool;
    unsigned index;
} pool_thread_arg_t;

static void publish_counts(mpm__pool_t *pool)
{
    mpm__sb_slot_t *slot = pool->srv->slot;
    atomic_store_explicit(&slot->idle, pool->idle, memory_order_relaxed);
    atomic_store_explicit(&slot->busy,
                          pool->started - pool->starting - pool->idle - pool->exited,
                          memory_order_relaxed);
}

static void notify_listener(mpm__pool_t *pool)
{
    if (!pool->listener_waiting)
        return;
    pool->listener_waiting = 0;
    uint64_t one = 1;
    (void)!write(pool->idle_efd, &one, sizeof(one));
}

/* Waits for the next connection into *a; -1 when the pool stops. Called
 * with the lock held. */
static int take_work(mpm__pool_t *pool, mpm__sb_worker_t *unit, mpm__accepted_t *a)
{
    pool->idle++;
    publish_counts(pool);
    mpm__sb_set_worker_state(unit, MPM__SB_READY);
    notify_listener(pool);
    while (pool->len == 0 && !pool->stopping) {
        /* Counted so that a kick signals only threads that need it. */
        pool->sleeping++;
        pthread_cond_wait(&pool->work_ready, &pool->lock);
        pool->sleeping--;
        if (pool->waking > 0)
            pool->waking--;
    }
    if (pool->len == 0) {
        pool->idle--;
        return -1;
    }
    *a = pool->queue[pool->head];
    pool->head = (pool->head + 1) % pool->nthreads;
    pool->len--;
    pool->taken++;
    return a->fd; /* idle was already decremented by the push */
}

static void pool_free(mpm__pool_t *pool)
{
    mpm__fdreg_close(pool->idle_efd);
    free(pool->threads);
    free(pool->queue);
    free(pool->busy_fd);
    free(pool->finished);
    pthread_cond_destroy(&pool->work_ready);
    pthread_cond_destroy(&pool->thread_done);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

/* Serves connections until the pool stops. Called with the lock held;
 * returns with it held. */
static void serve_until_stop(mpm__pool_t *pool, unsigned index, mpm__sb_worker_t *unit)
{
    for (;;) {
        mpm__accepted_t a;
        int fd = take_work(pool, unit, &a);
        if (fd < 0)
            return;
        pool->busy_fd[index] = fd;
        pool->running++;
        publish_counts(pool);
        pthread_mutex_unlock(&pool->lock);
        int kept = pool->work(pool, unit, &a);
        pthread_mutex_lock(&pool->lock);
        /* Cleared before the close: a stop that shuts busy fds down never
         * reaches a number the process has reused. */
        pool->busy_fd[index] = -1;
        pool->running--;
        if (kept)
            continue;
        pthread_mutex_unlock(&pool->lock);
        mpm__fdreg_close(fd);
        pthread_mutex_lock(&pool->lock);
    }
}

/* The thread is done: tells the stopper; the last thread of an abandoned
 * pool frees it and releases the server, touching neither afterwards. */
static void thread_finished(mpm__pool_t *pool, unsigned index)
{
    pthread_mutex_lock(&pool->lock);
    pool->finished[index] = 1;
    pool->live--;
    int last_orphan = pool->abandoned && pool->live == 0;
    pthread_cond_broadcast(&pool->thread_done);
    pthread_mutex_unlock(&pool->lock);
    if (last_orphan) {
        mpm_server_t *srv = pool->srv;
        pool_free(pool);
        mpm__server_orphans_release(srv);
    }
}

static void *pool_thread(void *p)
{
    pool_thread_arg_t arg = *(pool_thread_arg_t *)p;
    free(p);
    mpm__pool_t *pool = arg.pool;
    mpm__sb_worker_t *unit = mpm__sb_worker(pool->srv->sb, pool->srv->slot_index, arg.index);
    mpm__thread_use_slice(pool->srv, 1);
    if (mpm__hooks_thread_init(pool->srv, arg.index) != 0) {
        mpm__log(pool->srv, MPM_LOG_ERROR, "thread init hook failed");
        mpm__sb_set_worker_state(unit, MPM__SB_DEAD);
        pthread_mutex_lock(&pool->lock);
        pool->init_failed = 1;
        pool->starting--;
        pool->exited++;
        publish_counts(pool);
        pthread_mutex_unlock(&pool->lock);
        mpm__server_stop_local(pool->srv, 0);
        thread_finished(pool, arg.index);
        return NULL;
    }
    pthread_mutex_lock(&pool->lock);
    pool->starting--; /* idle from its first wait on, in the same hold */
    serve_until_stop(pool, arg.index, unit);
    pool->exited++;
    publish_counts(pool);
    pthread_mutex_unlock(&pool->lock);
    mpm__sb_set_worker_state(unit, MPM__SB_DEAD);
    mpm__hooks_thread_exit(pool->srv, arg.index);
    thread_finished(pool, arg.index);
    return NULL;
}

/* Pool threads must not take the host's or the library's signals: the
 * process's signal handling stays with the thread that runs the listener. */
static int spawn_thread(mpm__pool_t *pool, unsigned i)
{
    pool_thread_arg_t *arg = malloc(sizeof(*arg));
    if (!arg)
        return MPM_ENOMEM;
    *arg = (pool_thread_arg_t){.pool = pool, .index = i};
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&pool->threads[i], NULL, pool_thread, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free(arg);
        return -rc;
    }
    return 0;
}

static mpm__pool_t *pool_alloc(mpm_server_t *srv, unsigned n, mpm__pool_work_fn work, int *err)
{
    mpm__pool_t *pool = calloc(1, sizeof(*pool));
    if (!pool) {
        *err = MPM_ENOMEM;
        return NULL;
    }
    pool->srv = srv;
    pool->work = work;
    pool->nthreads = n;
    mpm__fdreg_lock();
    pool->idle_efd = mpm__fdreg_keep(srv, eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    *err = pool->idle_efd < 0 ? -errno : MPM_ENOMEM;
    pool->threads = calloc(n, sizeof(*pool->threads));
    pool->queue = calloc(n, sizeof(*pool->queue));
    pool->busy_fd = malloc(n * sizeof(*pool->busy_fd));
    pool->finished = calloc(n, sizeof(*pool->finished));
    if (pool->idle_efd < 0 || !pool->threads || !pool->queue || !pool->busy_fd || !pool->finished) {
        mpm__fdreg_close(pool->idle_efd);
        free(pool->threads);
        free(pool->queue);
        free(pool->busy_fd);
        free(pool->finished);
        free(pool);
        return NULL;
    }
    for (unsigned i = 0; i < n; i++)
        pool->busy_fd[i] = -1;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->thread_done, &attr);
    pthread_condattr_destroy(&attr);
    return pool;
}

int mpm__pool_start(mpm__pool_t **out, mpm_server_t *srv, unsigned nthreads, mpm__pool_work_fn work)
{
    int rc;
    mpm__pool_t *pool = pool_alloc(srv, nthreads, work, &rc);
    *out = NULL;
    if (!pool)
        return rc;
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_mutex_lock(&pool->lock);
        rc = spawn_thread(pool, i);
        if (rc == 0) {
            pool->started++;
            pool->starting++;
            pool->live++;
        }
        pthread_mutex_unlock(&pool->lock);
        if (rc < 0) {
            mpm__log(srv, MPM_LOG_ERROR, "pthread_create: %s", strerror(-rc));
            mpm__pool_stop(pool, 0);
            return rc;
        }
    }
    *out = pool;
    return 0;
}

int mpm__pool_ready(mpm__pool_t *pool)
{
    pthread_mutex_lock(&pool->lock);
    int r = pool->init_failed ? -1 : pool->idle + pool->exited >= pool->started;
    pthread_mutex_unlock(&pool->lock);
    return r;
}

unsigned mpm__pool_idle(mpm__pool_t *pool)
{
    pthread_mutex_lock(&pool->lock);
    unsigned idle = pool->idle;
    pthread_mutex_unlock(&pool->lock);
    return idle;
}

int mpm__pool_push(mpm__pool_t *pool, const mpm__accepted_t *a)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->idle == 0 || pool->stopping) {
        pthread_mutex_unlock(&pool->lock);
        return MPM_EAGAIN;
    }
    pool->queue[(pool->head + pool->len) % pool->nthreads] = *a;
    pool->len++;
    pool->idle--; /* taken now, so the listener never over-commits */
    publish_counts(pool);
    int batch = pool->batch;
    pthread_mutex_unlock(&pool->lock);
    /* After the unlock: a thread woken while the lock is held would only
     * block on it again (on one core, two extra context switches). */
    if (!batch)
        pthread_cond_signal(&pool->work_ready);
    return 0;
}

/* The CPUs this process may run on (its affinity mask, as taskset or a
 * container sets it), at least 1. */
static unsigned usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

void mpm__pool_batch(mpm__pool_t *pool)
{
    unsigned ncpu = usable_cpus();
    pthread_mutex_lock(&pool->lock);
    pool->batch = 1;
    pool->ncpu = ncpu;
    pthread_mutex_unlock(&pool->lock);
}

/* Signals n more sleeping threads (lock held on entry, released). Past
 * the sleepers a signal would wake nobody, and be counted as coming. */
static void wake_threads(mpm__pool_t *pool, unsigned n)
{
    unsigned can = pool->sleeping - pool->waking;
    if (n > can)
        n = can;
    pool->waking += n;
    pthread_mutex_unlock(&pool->lock);
    while (n-- > 0)
        pthread_cond_signal(&pool->work_ready);
}

void mpm__pool_kick(mpm__pool_t *pool, unsigned holders)
{
    pthread_mutex_lock(&pool->lock);
    int progress = pool->taken != pool->kick_seen;
    pool->kick_seen = pool->taken;
    /* CPU-bound handlers on a many-core machine run in parallel; on one
     * core one thread drains the whole batch without a switch. */
    unsigned want = pool->len < pool->ncpu ? pool->len : pool->ncpu;
    /* A thread in an item comes back for the next one, unless it sits in
     * a handler that blocks: it counts only while items are being taken. */
    unsigned coming = pool->waking + (progress ? pool->running : 0);
    want = want > coming ? want - coming : 0;
    wake_threads(pool, want + holders);
}

void mpm__pool_watch(mpm__pool_t *pool)
{
    pthread_mutex_lock(&pool->lock);
    int stalled = pool->len > 0 && pool->taken == pool->watch_seen;
    pool->watch_seen = pool->taken;
    /* Signals sent but not taken up count for nothing here: the queue is
     * stuck whatever they were expected to do. */
    if (stalled)
        pool->waking = 0;
    wake_threads(pool, stalled ? pool->len : 0);
}

unsigned mpm__pool_queued(mpm__pool_t *pool)
{
    pthread_mutex_lock(&pool->lock);
    unsigned len = pool->len;
    pthread_mutex_unlock(&pool->lock);
    return len;
}

void mpm__pool_idle_seen(mpm__pool_t *pool)
{
    uint64_t drain;
    (void)!read(pool->idle_efd, &drain, sizeof(drain));
}

void mpm__pool_want_idle(mpm__pool_t *pool)
{
    mpm__pool_idle_seen(pool);
    pthread_mutex_lock(&pool->lock);
    pool->listener_waiting = 1;
    if (pool->idle > 0)
        notify_listener(pool);
    pthread_mutex_unlock(&pool->lock);
}

/* Threads serving a connection (lock held). */
static unsigned busy_threads(const mpm__pool_t *pool)
{
    unsigned n = 0;
    for (unsigned i = 0; i < pool->started; i++)
        n += pool->busy_fd[i] >= 0;
    return n;
}

static void timed_wait(mpm__pool_t *pool, int64_t until_ms)
{
    int64_t left = until_ms - mpm__now_ms();
    if (left <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = ts.tv_nsec + left % 1000 * 1000000;
    ts.tv_sec += (time_t)(left / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&pool->thread_done, &pool->lock, &ts);
}

/* Waits (lock held) until every thread finished, or the deadline passed
 * with a thread still serving. Threads that serve nothing are on their way
 * out and get a moment more (the deadline may be now: the drain window ends
 * with the bound). Returns 1 if they all finished. */
static int wait_threads(mpm__pool_t *pool, int64_t deadline_ms)
{
    while (pool->live > 0) {
        if (!deadline_ms) {
            pthread_cond_wait(&pool->thread_done, &pool->lock);
            continue;
        }
        int64_t now = mpm__now_ms();
        if (now < deadline_ms)
            timed_wait(pool, deadline_ms);
        else if (busy_threads(pool) == 0 && now < deadline_ms + MPM__POOL_EXIT_GRACE_MS)
            timed_wait(pool, deadline_ms + MPM__POOL_EXIT_GRACE_MS);
        else
            return 0;
    }
    return 1;
}

/* Past the bound (lock held): the connections still served are shut down
 * and their threads detached; the last one frees the pool. */
static void abandon_threads(mpm__pool_t *pool)
{
    mpm__log(pool->srv, MPM_LOG_WARN,
             "stop: %u handler(s) still running at GracefulShutdownTimeout; their "
             "connections are closed and their threads left to finish on their own",
             busy_threads(pool));
    pool->abandoned = 1;
    mpm__server_orphans_hold(pool->srv);
    for (unsigned i = 0; i < pool->started; i++) {
        if (pool->busy_fd[i] >= 0)
            (void)shutdown(pool->busy_fd[i], SHUT_RDWR);
        if (pool->finished[i])
            pthread_join(pool->threads[i], NULL);
        else
            pthread_detach(pool->threads[i]);
    }
}

static void close_queued(mpm__pool_t *pool)
{
    while (pool->len > 0) {
        mpm__fdreg_close(pool->queue[pool->head].fd);
        pool->head = (pool->head + 1) % pool->nthreads;
        pool->len--;
    }
}

int mpm__pool_stop(mpm__pool_t *pool, int64_t deadline_ms)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work_ready);
    int all_done = wait_threads(pool, deadline_ms);
    close_queued(pool); /* none are left unless threads were stuck */
    int rc = pool->init_failed ? MPM_ECHILD : 0;
    if (!all_done) {
        /* Library I/O of the abandoned connections must end now too. */
        mpm__server_stop_local(pool->srv, 0);
        abandon_threads(pool);
        pthread_mutex_unlock(&pool->lock);
        return rc;
    }
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->started; i++)
        pthread_join(pool->threads[i], NULL);
    pool_free(pool);
    return rc;
}

int64_t mpm__pool_stop_deadline(mpm_server_t *srv)
{
    if (mpm__server_stopping(srv) != MPM__STOP_GRACEFUL)
        return 0;
    return mpm__graceful_deadline(srv);
}
