/* Worker thread pool: a mutex, one condition variable and a ring of fds
 * bounded by the number of threads. */
#include "pool.h"
#include "fdreg.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct pool_thread_arg {
    mpm__pool_t *pool;
    unsigned index;
} pool_thread_arg_t;

static void publish_counts(mpm__pool_t *pool)
{
    mpm__sb_slot_t *slot = pool->srv->slot;
    atomic_store_explicit(&slot->idle, pool->idle, memory_order_relaxed);
    atomic_store_explicit(&slot->busy, pool->started - pool->idle - pool->exited,
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

/* Waits for the next fd; -1 when the pool stops. Called with the lock held. */
static int take_work(mpm__pool_t *pool, mpm__sb_worker_t *unit)
{
    pool->idle++;
    publish_counts(pool);
    mpm__sb_set_worker_state(unit, MPM__SB_READY);
    notify_listener(pool);
    while (pool->len == 0 && !pool->stopping)
        pthread_cond_wait(&pool->work_ready, &pool->lock);
    if (pool->len == 0) {
        pool->idle--;
        return -1;
    }
    int fd = pool->queue[pool->head];
    pool->head = (pool->head + 1) % pool->nthreads;
    pool->len--;
    return fd; /* idle was already decremented by the push */
}

static void *pool_thread(void *p)
{
    pool_thread_arg_t arg = *(pool_thread_arg_t *)p;
    free(p);
    mpm__pool_t *pool = arg.pool;
    mpm__sb_worker_t *unit = mpm__sb_worker(pool->srv->sb, pool->srv->slot_index, arg.index);
    if (mpm__hooks_thread_init(pool->srv, arg.index) != 0) {
        mpm__log(pool->srv, MPM_LOG_ERROR, "thread init hook failed");
        mpm__sb_set_worker_state(unit, MPM__SB_DEAD);
        pthread_mutex_lock(&pool->lock);
        pool->init_failed = 1;
        pool->exited++;
        publish_counts(pool);
        pthread_mutex_unlock(&pool->lock);
        mpm__server_stop_local(pool->srv, 0);
        return NULL;
    }
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        int fd = take_work(pool, unit);
        if (fd < 0)
            break;
        publish_counts(pool);
        pthread_mutex_unlock(&pool->lock);
        pool->work(pool, unit, fd);
        pthread_mutex_lock(&pool->lock);
    }
    pool->exited++;
    publish_counts(pool);
    pthread_mutex_unlock(&pool->lock);
    mpm__sb_set_worker_state(unit, MPM__SB_DEAD);
    mpm__hooks_thread_exit(pool->srv, arg.index);
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

static int pool_alloc(mpm__pool_t *pool, mpm_server_t *srv, unsigned n, mpm__pool_work_fn work)
{
    memset(pool, 0, sizeof(*pool));
    pool->srv = srv;
    pool->work = work;
    pool->nthreads = n;
    pool->idle_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pool->threads = calloc(n, sizeof(*pool->threads));
    pool->queue = calloc(n, sizeof(*pool->queue));
    if (pool->idle_efd < 0 || !pool->threads || !pool->queue) {
        if (pool->idle_efd >= 0)
            close(pool->idle_efd);
        free(pool->threads);
        free(pool->queue);
        return pool->idle_efd < 0 ? -errno : MPM_ENOMEM;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    return 0;
}

int mpm__pool_start(mpm__pool_t *pool, mpm_server_t *srv, unsigned nthreads, mpm__pool_work_fn work)
{
    int rc = pool_alloc(pool, srv, nthreads, work);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_mutex_lock(&pool->lock);
        rc = spawn_thread(pool, i);
        if (rc == 0)
            pool->started++;
        pthread_mutex_unlock(&pool->lock);
        if (rc < 0) {
            mpm__log(srv, MPM_LOG_ERROR, "pthread_create: %s", strerror(-rc));
            mpm__pool_stop(pool);
            return rc;
        }
    }
    return 0;
}

unsigned mpm__pool_idle(mpm__pool_t *pool)
{
    pthread_mutex_lock(&pool->lock);
    unsigned idle = pool->idle;
    pthread_mutex_unlock(&pool->lock);
    return idle;
}

int mpm__pool_push(mpm__pool_t *pool, int fd)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->idle == 0 || pool->stopping) {
        pthread_mutex_unlock(&pool->lock);
        return MPM_EAGAIN;
    }
    pool->queue[(pool->head + pool->len) % pool->nthreads] = fd;
    pool->len++;
    pool->idle--; /* taken now, so the listener never over-commits */
    publish_counts(pool);
    pthread_cond_signal(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
    return 0;
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

void mpm__pool_stop(mpm__pool_t *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work_ready);
    unsigned started = pool->started;
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < started; i++)
        pthread_join(pool->threads[i], NULL);
    while (pool->len > 0) {
        mpm__fdreg_close(pool->queue[pool->head]);
        pool->head = (pool->head + 1) % pool->nthreads;
        pool->len--;
    }
    close(pool->idle_efd);
    free(pool->threads);
    free(pool->queue);
    pthread_cond_destroy(&pool->work_ready);
    pthread_mutex_destroy(&pool->lock);
}
