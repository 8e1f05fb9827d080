/* Forking, telling and reaping children. The master waits only for pids it
 * forked (pidfds, waitpid(pid)), never waitpid(-1): the host may have
 * children of its own (DESIGN §8). */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int open_pidfd(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int mpm__master_spawn(mpm__master_t *m, unsigned i)
{
    /* A socketpair rather than a pipe: send() with MSG_NOSIGNAL to a child
     * that just died gives EPIPE, not a SIGPIPE in the host. */
    int ctl[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) != 0)
        return -errno;
    mpm__sb_slot_init(m->srv->sb, i, m->generation);
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(ctl[0]);
        close(ctl[1]);
        mpm__sb_set_state(&m->srv->sb->slot[i], MPM__SB_DEAD);
        return err;
    }
    if (pid == 0) {
        close(ctl[1]);
        mpm__child_main(m, i, ctl[0]);
    }
    close(ctl[0]);
    (void)fcntl(ctl[1], F_SETFL, O_NONBLOCK);
    atomic_store(&m->srv->sb->slot[i].pid, (int)pid);
    m->kids[i] = (mpm__child_t){.pid = pid, .ctl = ctl[1], .generation = m->generation,
                                .pidfd = open_pidfd(pid)};
    if (m->kids[i].pidfd >= 0)
        (void)fcntl(m->kids[i].pidfd, F_SETFD, FD_CLOEXEC);
    return 0;
}

void mpm__master_tell(mpm__master_t *m, unsigned i, char cmd)
{
    mpm__child_t *k = &m->kids[i];
    if (!k->pid || k->ctl < 0)
        return;
    if (cmd == 'g')
        k->retiring = 1;
    /* Failure means the child is gone or its buffer is full of earlier
     * commands; either way its pidfd will tell us the rest. */
    (void)send(k->ctl, &cmd, 1, MSG_NOSIGNAL);
}

static void log_exit(mpm__master_t *m, pid_t pid, int status)
{
    if (WIFSIGNALED(status)) {
        mpm__log(m->srv, MPM_LOG_WARN, "child pid %d exited on signal %d (%s)%s", (int)pid,
                 WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
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
        m->spawn_blocked_until_ms = mpm__now_ms() + 1500; /* skips the next 1 s pass */
    if (k->pidfd >= 0)
        close(k->pidfd);
    if (k->ctl >= 0)
        close(k->ctl);
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
