/* Forking, telling and reaping children. The master waits only for pids it
 * forked (pidfds, waitpid(pid)), never waitpid(-1): the host may have
 * children of its own (DESIGN §8). */
#include "fdreg.h"
#include "master.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* The control channel, registered before fork: the master's end for the
 * master, the child's end for the server (it becomes the child's). A
 * socketpair rather than a pipe: send() with MSG_NOSIGNAL to a child that
 * just died gives EPIPE, not a SIGPIPE in the host. Lock held. */
static int open_ctl_locked(mpm__master_t *m, int ctl[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) != 0)
        return -errno;
    if (mpm__fdreg_add_locked(m->srv, ctl[0]) < 0 || mpm__fdreg_add_locked(m, ctl[1]) < 0) {
        mpm__fdreg_close_locked(ctl[0]);
        mpm__fdreg_close_locked(ctl[1]);
        return -ENOMEM;
    }
    return 0;
}

/* Forks with the fd registry locked (so the child sees a consistent one,
 * whatever other threads of the host are doing) and every signal blocked
 * (so the child never runs the master's handlers: it installs its own
 * before unblocking). */
static pid_t fork_child(mpm__master_t *m, unsigned i, int ctl[2])
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        /* The master's fds (ctl[1] among them) and other servers' go. */
        mpm__fdreg_close_others_locked(m->srv);
        mpm__fdreg_unlock();
        mpm__child_main(m, i, ctl[0], &old);
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return pid;
}

/* Watches the child's requests (mpm_server_stop()/restart() in a handler)
 * on its control channel; and its exit through its pidfd in the master's
 * epoll set; without one (old kernel) the master checks it with waitpid. */
static void watch_child(mpm__master_t *m, unsigned i)
{
    mpm__child_t *k = &m->kids[i];
    struct epoll_event cev = {.events = EPOLLIN, .data.u64 = MPM__MASTER_TAG_CTL + i};
    k->ctl_watched = epoll_ctl(m->ep, EPOLL_CTL_ADD, k->ctl, &cev) == 0;
    if (!k->ctl_watched)
        mpm__log(m->srv, MPM_LOG_WARN, "epoll_ctl: %s; stop requests from child pid %d not heard",
                 strerror(errno), (int)k->pid);
    mpm__fdreg_lock();
    k->pidfd = mpm__fdreg_keep(m, open_pidfd(k->pid));
    if (k->pidfd < 0)
        return;
    (void)fcntl(k->pidfd, F_SETFD, FD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
    k->watched = epoll_ctl(m->ep, EPOLL_CTL_ADD, k->pidfd, &ev) == 0;
}

int mpm__master_spawn(mpm__master_t *m, unsigned i)
{
    int ctl[2];
    mpm__fdreg_lock();
    int rc = open_ctl_locked(m, ctl);
    if (rc < 0) {
        mpm__fdreg_unlock();
        return rc;
    }
    mpm__sb_slot_init(m->srv->sb, i, m->generation);
    pid_t pid = fork_child(m, i, ctl);
    rc = pid < 0 ? -errno : 0;
    mpm__fdreg_close_locked(ctl[0]);
    if (pid < 0)
        mpm__fdreg_close_locked(ctl[1]);
    mpm__fdreg_unlock();
    if (pid < 0) {
        mpm__sb_set_state(&m->srv->sb->slot[i], MPM__SB_DEAD);
        return rc;
    }
    (void)fcntl(ctl[1], F_SETFL, O_NONBLOCK);
    atomic_store(&m->srv->sb->slot[i].pid, (int)pid);
    m->kids[i] = (mpm__child_t){.pid = pid, .ctl = ctl[1], .generation = m->generation,
                                .pidfd = -1};
    watch_child(m, i);
    return 0;
}

void mpm__master_signal(mpm__master_t *m, unsigned i, int sig)
{
    mpm__child_t *k = &m->kids[i];
    if (!k->pid)
        return;
#ifdef SYS_pidfd_send_signal
    /* Any failure but ENOSYS means the process is gone (ESRCH): its pid
     * may already belong to someone else, so no kill() then. */
    if (k->pidfd >= 0 &&
        (syscall(SYS_pidfd_send_signal, k->pidfd, sig, NULL, 0) == 0 || errno != ENOSYS))
        return;
#endif
    (void)kill(k->pid, sig);
}

void mpm__master_tell(mpm__master_t *m, unsigned i, char cmd)
{
    mpm__child_t *k = &m->kids[i];
    if (!k->pid || k->ctl < 0)
        return;
    if (cmd == 'g' && !k->retiring) {
        int64_t bound = m->srv->cfg.s.graceful_shutdown_timeout_ms;
        k->retiring = 1;
        k->retire_by_ms = bound > 0 ? mpm__now_ms() + bound : 0;
    }
    /* Failure means the child is gone or its buffer is full of earlier
     * commands; either way its pidfd will tell us the rest. */
    (void)send(k->ctl, &cmd, 1, MSG_NOSIGNAL);
}

static void child_unwatch_ctl(mpm__master_t *m, mpm__child_t *k)
{
    if (k->ctl_watched)
        (void)epoll_ctl(m->ep, EPOLL_CTL_DEL, k->ctl, NULL);
    k->ctl_watched = 0;
}

/* What a child asks for is what the host could ask the master for. */
static void take_request(mpm__master_t *m, mpm__child_t *k, char cmd)
{
    static const struct {
        char cmd;
        int restart, graceful;
        const char *what;
    } reqs[] = {{'S', 0, 0, "stop"},
                {'G', 0, 1, "graceful stop"},
                {'R', 1, 0, "restart"},
                {'U', 1, 1, "graceful restart"}};
    for (size_t r = 0; r < sizeof(reqs) / sizeof(reqs[0]); r++) {
        if (reqs[r].cmd != cmd)
            continue;
        mpm__log(m->srv, MPM_LOG_NOTICE, "child pid %d asked for a %s", (int)k->pid,
                 reqs[r].what);
        if (reqs[r].restart)
            mpm_server_restart(m->srv, reqs[r].graceful);
        else
            mpm_server_stop(m->srv, reqs[r].graceful);
        return;
    }
}

void mpm__master_hear(mpm__master_t *m, unsigned i)
{
    mpm__child_t *k = &m->kids[i];
    if (!k->pid || k->ctl < 0)
        return;
    char cmds[16];
    ssize_t n;
    while ((n = recv(k->ctl, cmds, sizeof(cmds), MSG_DONTWAIT)) > 0)
        for (ssize_t c = 0; c < n; c++)
            take_request(m, k, cmds[c]);
    /* End of file (the child is on its way out) or a broken channel: stop
     * watching, or the level-triggered event would spin until the reap. */
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        child_unwatch_ctl(m, k);
}

static void log_exit(mpm__master_t *m, pid_t pid, int status)
{
    if (WIFSIGNALED(status)) {
        mpm__log(m->srv, MPM_LOG_WARN, "child pid %d exited on signal %d (%s)%s", (int)pid,
                 WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == MPM__EXIT_FATAL) {
        /* Not "status 15": that reads like SIGTERM. */
        mpm__log(m->srv, MPM_LOG_WARN, "child pid %d could not start: child init failed (a child "
                                       "or thread init hook returned non-zero)", (int)pid);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == MPM__EXIT_SICK) {
        mpm__log(m->srv, MPM_LOG_WARN, "child pid %d exited: could not go on serving (see its "
                                       "earlier messages)", (int)pid);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != MPM__EXIT_NORMAL) {
        mpm__log(m->srv, MPM_LOG_WARN, "child pid %d exited with status %d", (int)pid,
                 WEXITSTATUS(status));
    }
}

/* Folds the dead child's counters into the scoreboard totals, frees the
 * slot, and takes note of a sick or fatal exit. */
static void release_slot(mpm__master_t *m, unsigned i, int status)
{
    mpm__child_t *k = &m->kids[i];
    mpm__scoreboard_t *sb = m->srv->sb;
    mpm__sb_slot_t *sl = &sb->slot[i];
    uint64_t conns, reqs;
    int64_t used;
    mpm__sb_slot_totals(sb, i, &conns, &reqs, &used);
    atomic_fetch_add(&sb->retired_connections, conns);
    atomic_fetch_add(&sb->retired_requests, reqs);
    mpm__sb_slot_init(sb, i, 0);
    mpm__sb_set_state(sl, MPM__SB_DEAD);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == MPM__EXIT_FATAL && k->generation == m->generation && !m->gen_ready)
        m->fatal = 1;
    if (code == MPM__EXIT_SICK || code == MPM__EXIT_FATAL)
        m->spawn_blocked_until_ms = mpm__now_ms() + MPM__SPAWN_PAUSE_MS;
    if (k->watched)
        (void)epoll_ctl(m->ep, EPOLL_CTL_DEL, k->pidfd, NULL);
    /* A request the child sent just before it exited is still heard. */
    mpm__master_hear(m, i);
    child_unwatch_ctl(m, k);
    mpm__fdreg_close(k->pidfd);
    mpm__fdreg_close(k->ctl);
    *k = (mpm__child_t){.pidfd = -1, .ctl = -1};
}

int mpm__master_reap(mpm__master_t *m, unsigned i)
{
    mpm__child_t *k = &m->kids[i];
    if (!k->pid)
        return 0;
    int status = 0;
    pid_t r = waitpid(k->pid, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR))
        return 0;
    if (r > 0)
        log_exit(m, k->pid, status);
    release_slot(m, i, r > 0 ? status : 0);
    return 1;
}

unsigned mpm__master_live(const mpm__master_t *m)
{
    unsigned n = 0;
    for (unsigned i = 0; i < m->lim.server_limit; i++)
        n += m->kids[i].pid != 0;
    return n;
}
