/* The master's signal handlers (DESIGN §8: signals belong to the host).
 * Installed only while a server runs as master with HandleSignals On, and the
 * host's previous actions are restored afterwards. A handler only writes the
 * signal number to the master's pipe; the master loop acts on it. */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static const int handled[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGWINCH};
#define NHANDLED (sizeof(handled) / sizeof(handled[0]))

/* Signals are process-wide, so only one master per process can own them:
 * this is the write end of that master's pipe, or -1. */
static atomic_int signal_pipe = -1;
static struct sigaction saved[NHANDLED];

static void on_signal(int sig)
{
    int saved_errno = errno;
    unsigned char b = (unsigned char)sig;
    int fd = atomic_load(&signal_pipe);
    if (fd >= 0)
        (void)!write(fd, &b, 1);
    errno = saved_errno;
}

int mpm__master_signals_install(mpm__master_t *m)
{
    int expected = -1;
    if (!atomic_compare_exchange_strong(&signal_pipe, &expected, m->sigpipe[1])) {
        mpm__server_fail(m->srv, "another server in this process already handles signals: "
                                 "set HandleSignals Off for this one");
        return MPM_ESTATE;
    }
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NHANDLED; i++)
        sigaction(handled[i], &sa, &saved[i]);
    m->signals_installed = 1;
    return 0;
}

void mpm__master_signals_restore(mpm__master_t *m)
{
    if (!m->signals_installed)
        return;
    for (size_t i = 0; i < NHANDLED; i++)
        sigaction(handled[i], &saved[i], NULL);
    atomic_store(&signal_pipe, -1);
    m->signals_installed = 0;
}
