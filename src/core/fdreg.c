/* Process-wide registry of the library's fds (see fdreg.h). A table indexed
 * by fd number: registering, unregistering and the child's sweep are all
 * O(1) per fd, and the sweep needs no allocation after fork. */
#include "fdreg.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static const void **owners; /* owners[fd], NULL: not ours */
static size_t cap;
static _Thread_local int held_here; /* this thread holds reg_lock */

/* The host may fork too, from any thread, while another thread holds the
 * lock: its child would inherit a lock nobody can release, and a registry
 * caught half-way. So every fork takes the lock first (unless the forking
 * thread holds it already: the master forks with it held). */
static int taken_for_fork;

static void before_fork(void)
{
    if (!held_here) {
        pthread_mutex_lock(&reg_lock);
        taken_for_fork = 1;
    }
}

static void after_fork(void)
{
    if (taken_for_fork) {
        taken_for_fork = 0;
        pthread_mutex_unlock(&reg_lock);
    }
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void install_atfork(void)
{
    (void)pthread_atfork(before_fork, after_fork, after_fork);
}

void mpm__fdreg_lock(void)
{
    pthread_once(&atfork_once, install_atfork);
    pthread_mutex_lock(&reg_lock);
    held_here = 1;
}

void mpm__fdreg_unlock(void)
{
    int saved = errno;
    held_here = 0;
    pthread_mutex_unlock(&reg_lock);
    errno = saved;
}

static int grow(size_t need)
{
    size_t n = cap ? cap : 64;
    while (n < need)
        n *= 2;
    const void **p = realloc(owners, n * sizeof(*p));
    if (!p)
        return -ENOMEM;
    for (size_t i = cap; i < n; i++)
        p[i] = NULL;
    owners = p;
    cap = n;
    return 0;
}

int mpm__fdreg_add_locked(const void *owner, int fd)
{
    if (fd < 0)
        return 0;
    if ((size_t)fd >= cap && grow((size_t)fd + 1) < 0)
        return -ENOMEM;
    owners[fd] = owner;
    return 0;
}

int mpm__fdreg_keep(const void *owner, int fd)
{
    if (fd >= 0 && mpm__fdreg_add_locked(owner, fd) < 0) {
        close(fd);
        fd = -1;
        errno = ENOMEM;
    }
    mpm__fdreg_unlock();
    return fd;
}

int mpm__fdreg_keep_pair(const void *owner, int rc, int fds[2])
{
    if (rc == 0 && (mpm__fdreg_add_locked(owner, fds[0]) < 0 ||
                    mpm__fdreg_add_locked(owner, fds[1]) < 0)) {
        mpm__fdreg_close_locked(fds[0]);
        mpm__fdreg_close_locked(fds[1]);
        rc = -1;
        errno = ENOMEM;
    }
    mpm__fdreg_unlock();
    return rc;
}

int mpm__fdreg_close_locked(int fd)
{
    if (fd < 0)
        return 0;
    if ((size_t)fd < cap)
        owners[fd] = NULL;
    return close(fd);
}

int mpm__fdreg_close(int fd)
{
    if (fd < 0)
        return 0;
    mpm__fdreg_lock();
    int rc = mpm__fdreg_close_locked(fd);
    mpm__fdreg_unlock();
    return rc;
}

void mpm__fdreg_close_others_locked(const void *keep)
{
    for (size_t fd = 0; fd < cap; fd++) {
        if (owners[fd] && owners[fd] != keep) {
            owners[fd] = NULL;
            (void)close((int)fd);
        }
    }
}
