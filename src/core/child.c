/* A forked child: shed the master's resources, take its own wake pipe and
 * control channel, run the host's hooks around the strategy's serve(). */
#include "master.h"

#include <errno.h>
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
    mpm_server_stop(child_server, 0);
}

/* TERM stops now (the master's hard stop). The master alone decides about
 * restarts and graceful stops, so a terminal's INT or a stray HUP/USR1/WINCH
 * sent to the whole process group is ignored here. */
static void child_signals(void)
{
    struct sigaction sa = {.sa_handler = child_on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    const int ignored[] = {SIGINT, SIGHUP, SIGUSR1, SIGWINCH};
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        sigaction(ignored[i], &sa, NULL);
    sigset_t all;
    sigemptyset(&all);
    sigaddset(&all, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &all, NULL);
}

/* Closes the master's private fds that fork copied into this child. */
static void shed_master_fds(mpm__master_t *m)
{
    for (unsigned i = 0; i < m->lim.server_limit; i++) {
        if (m->kids[i].pid == 0)
            continue;
        close(m->kids[i].ctl);
        if (m->kids[i].pidfd >= 0)
            close(m->kids[i].pidfd);
    }
    close(m->sigpipe[0]);
    close(m->sigpipe[1]);
    close(m->srv->wake_pipe[0]);
    close(m->srv->wake_pipe[1]);
}

static int take_wake_fds(mpm_server_t *srv, int ctl_fd)
{
    if (pipe2(srv->wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -errno;
    (void)fcntl(ctl_fd, F_SETFL, O_NONBLOCK);
    srv->ctl_fd = ctl_fd;
    srv->wake_fds[0] = srv->wake_pipe[0];
    srv->wake_fds[1] = ctl_fd;
    srv->nwake = 2;
    atomic_store(&srv->stop, MPM__STOP_NONE);
    atomic_store(&srv->restart, 0);
    return 0;
}

static int run_hooks_and_serve(mpm_server_t *srv)
{
    const mpm_config_t *cfg = &srv->cfg;
    if (cfg->child_init && cfg->child_init(cfg->child_data) != 0) {
        mpm__log(srv, MPM_LOG_ERROR, "child init hook failed");
        return MPM__EXIT_FATAL;
    }
    /* Thread hooks run in the serving units themselves (serve's business). */
    int rc = srv->strategy->serve(srv);
    int code = rc == MPM_ECHILD ? MPM__EXIT_FATAL : rc < 0 ? MPM__EXIT_SICK : MPM__EXIT_NORMAL;
    if (cfg->child_exit)
        cfg->child_exit(cfg->child_data);
    return code;
}

_Noreturn void mpm__child_main(mpm__master_t *m, unsigned slot, int ctl_fd)
{
    mpm_server_t *srv = m->srv;
    pid_t master = getppid();
    child_server = srv;
    shed_master_fds(m);
    if (take_wake_fds(srv, ctl_fd) < 0)
        _exit(MPM__EXIT_SICK);
    srv->slot = &srv->sb->slot[slot];
    srv->slot_index = slot;
    atomic_store(&srv->slot->pid, (int)getpid());
    child_signals();
    /* If the master dies while this child is busy, the control channel's end
     * of file is only seen between connections; the death signal covers the
     * rest, so no child outlives its master. */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master)
        _exit(MPM__EXIT_NORMAL);
    int code = run_hooks_and_serve(srv);
    mpm__sb_set_state(srv->slot, MPM__SB_DEAD);
    _exit(code);
}
