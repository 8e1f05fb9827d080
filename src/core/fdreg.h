/* The library's fds, process-wide, by owner (DESIGN §8: a forked child
 * keeps only its own server's fds).
 *
 * Two servers in one process must not leak into each other's children: when
 * one server's master forks, the child closes every fd that belongs to any
 * other owner (another server's listeners, connections, wake pipe, epoll
 * set, another master's pidfds and control channels). The registry is the
 * one piece of process-wide mutable state the library keeps, under one
 * mutex.
 *
 * An fd is created and registered with the lock held, and unregistered and
 * closed with it held, and the master forks with it held: so a child never
 * sees an fd of ours that the registry does not know, nor an entry whose fd
 * number was already reused. Any other fork in the process (the host's,
 * from any thread) takes the lock too (pthread_atfork), so no child inherits
 * it held by a thread that does not exist there. Fds the host hands in are never registered:
 * they stay the host's. An owner is any stable address (a server, a
 * master). */
#ifndef MPM_CORE_FDREG_H
#define MPM_CORE_FDREG_H

void mpm__fdreg_lock(void);
void mpm__fdreg_unlock(void);

/* With the lock held: registers fd for owner and unlocks. fd < 0 (the
 * result of a failed creation call) passes through with errno kept. If the
 * registry cannot grow, closes fd and returns -1 with errno ENOMEM. So:
 *     mpm__fdreg_lock();
 *     int fd = mpm__fdreg_keep(owner, socket(...));                     */
int mpm__fdreg_keep(const void *owner, int fd);

/* The same for a pipe2()/socketpair() result rc and its two fds: returns rc
 * (0, or -1 with errno); on registry failure both fds are closed. */
int mpm__fdreg_keep_pair(const void *owner, int rc, int fds[2]);

/* With the lock held: registers fd for owner (or moves it to owner).
 * Returns 0 or -ENOMEM. */
int mpm__fdreg_add_locked(const void *owner, int fd);

/* Unregisters and closes fd (ignored if < 0). Returns close()'s result. */
int mpm__fdreg_close(int fd);
/* The same with the lock already held. */
int mpm__fdreg_close_locked(int fd);

/* In a child right after fork (the lock held since before fork): closes and
 * forgets every registered fd whose owner is not `keep`. Async-signal-safe
 * (no allocation). */
void mpm__fdreg_close_others_locked(const void *keep);

#endif
