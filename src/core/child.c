/* A forked child: shed the master's resources, take its own wake pipe and
 * control channel, run the host's hooks around the strategy's serve(). */
#include "fdreg.h"
#include "master.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

/* A child process runs exactly one server, so its signal handlers can find
 * it through this pointer; it is set once, after fork, in the child only. */
static mpm_server_t *child_server;

static void child_on_term(int sig)
{
    (void)sig;
    mpm__server_stop_local(child_server, 0);
}

/* TERM stops now (the master's hard stop). The master alone decides about
 * restarts and graceful stops, so a terminal's INT or a stray HUP/USR1/WINCH
 * sent to the whole process group is ignored here. Called with every signal
 * blocked (since before fork): the dispositions change before `mask`, the
 * master thread's, comes back, so the master's handlers never run here. */
static void child_signals(const sigset_t *mask)
{
    struct sigaction sa = {.sa_handler = child_on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    const int ignored[] = {SIGINT, SIGHUP, SIGUSR1, SIGWINCH};
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        sigaction(ignored[i], &sa, NULL);
    sigset_t serve = *mask;
    sigdelset(&serve, SIGTERM);
    pthread_sigmask(SIG_SETMASK, &serve, NULL);
}

/* The master's wake pipe came with the server: this child needs its own,
 * plus the control channel from its master. Every other fd of the master
 * was closed right after fork (fd registry). */
static int take_wake_fds(mpm_server_t *srv, int ctl_fd)
{
    mpm__fdreg_close(srv->wake_pipe[0]);
    mpm__fdreg_close(srv->wake_pipe[1]);
    mpm__fdreg_lock();
    if (mpm__fdreg_keep_pair(srv, pipe2(srv->wake_pipe, O_CLOEXEC | O_NONBLOCK), srv->wake_pipe))
        return -errno;
    (void)fcntl(ctl_fd, F_SETFL, O_NONBLOCK);
    srv->ctl_fd = ctl_fd;
    atomic_store(&srv->ctl_watched, 0); /* its serving thread says when */
    srv->wake_fds[0] = srv->wake_pipe[0];
    srv->wake_fds[1] = ctl_fd;
    srv->nwake = 2;
    atomic_store(&srv->stop, MPM__STOP_NONE);
    atomic_store(&srv->restart, 0);
    return 0;
}

static int run_hooks_and_serve(mpm_server_t *srv)
{
    mpm__thread_use_slice(srv, 1); /* the child is the library's, and its main thread */
    if (mpm__hooks_child_init(srv) != 0) {
        mpm__log(srv, MPM_LOG_ERROR, "child init hook failed");
        return MPM__EXIT_FATAL;
    }
    /* Thread hooks run in the serving units themselves (serve's business). */
    int rc = srv->strategy->serve(srv);
    int code = rc == MPM_ECHILD ? MPM__EXIT_FATAL : rc < 0 ? MPM__EXIT_SICK : MPM__EXIT_NORMAL;
    mpm__hooks_child_exit(srv);
    return code;
}

_Noreturn void mpm__child_main(mpm__master_t *m, unsigned slot, int ctl_fd, const sigset_t *mask)
{
    mpm_server_t *srv = m->srv;
    child_server = srv;
    if (take_wake_fds(srv, ctl_fd) < 0)
        _exit(MPM__EXIT_SICK);
    srv->slot = &srv->sb->slot[slot];
    srv->slot_index = slot;
    atomic_store(&srv->slot->pid, (int)getpid());
    child_signals(mask);
    /* If the master dies while this child is busy, the control channel's end
     * of file is only seen between connections; the death signal covers the
     * rest, so no child outlives its master. */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != m->pid) /* the master died before the death signal was set */
        _exit(MPM__EXIT_NORMAL);
    int code = run_hooks_and_serve(srv);
    mpm__sb_set_state(srv->slot, MPM__SB_DEAD);
    _exit(code);
}
