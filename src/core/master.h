/* The master process: private state shared by master*.c and child.c. */
#ifndef MPM_CORE_MASTER_H
#define MPM_CORE_MASTER_H

#include "internal.h"

#include <signal.h>
#include <sys/types.h>

/* Exit statuses a child reports (DESIGN: normal / sick / fatal). */
enum {
    MPM__EXIT_NORMAL = 0,
    MPM__EXIT_SICK = 3,  /* could not go on; the master throttles spawning */
    MPM__EXIT_FATAL = 15 /* could not start at all (child init hook failed) */
};

/* After a fork failure or a sick child, spawning pauses this long: more
 * than one maintenance pass (1 s), so that the next pass is skipped rather
 * than met a millisecond after the pause ends. */
#define MPM__SPAWN_PAUSE_MS 1500

/* What the master knows of one child: private memory, never the
 * scoreboard. Index = scoreboard slot. */
typedef struct mpm__child {
    pid_t pid;       /* 0: slot free */
    int pidfd;       /* pollable: readable when the child exits; -1 if none */
    int watched;     /* pidfd is in the master's epoll set */
    int ctl;         /* master's end of the child's control channel: commands
                        go down, the child's stop/restart requests come up */
    int ctl_watched; /* ctl is in the master's epoll set */
    unsigned generation;
    int retiring;    /* told to finish and exit */
    int64_t retire_by_ms; /* retiring: signalled if still alive then (0: no bound) */
    int terminated;  /* retiring past its bound: SIGTERM sent, SIGKILL next */
} mpm__child_t;

typedef struct mpm__master {
    mpm_server_t *srv;
    pid_t pid;               /* the master's, taken before any fork */
    int ep;                  /* epoll: wake pipe, signal pipe, children's pidfds */
    int wait_failing;        /* epoll_wait failed (logged once per streak) */
    mpm__pool_limits_t lim;
    mpm__child_t *kids;      /* lim.server_limit entries */
    unsigned generation;
    unsigned spawn_rate;     /* children per maintenance pass: 1, 2, 4 ... 32 */
    int64_t next_maintenance_ms;
    int64_t spawn_blocked_until_ms; /* after fork failure or sick children */
    int max_workers_logged;
    int fatal;               /* a child of this generation could not start */
    int gen_ready;           /* a child of this generation reached READY */
    int sigpipe[2];          /* signal handler -> master loop */
    int signals_installed;
} mpm__master_t;

/* Signals (master_signals.c): install TERM/INT/HUP/USR1/WINCH handlers that
 * write the signal number to m->sigpipe; restore the host's on exit. */
int mpm__master_signals_install(mpm__master_t *m);
void mpm__master_signals_restore(mpm__master_t *m);

/* Forks a child into slot i (master_spawn.c). Returns 0 or -errno. The
 * master's fds (owner m in the fd registry) and every other server's are
 * closed in the child; the master's signals are blocked around fork so the
 * child never runs the master's handlers. */
int mpm__master_spawn(mpm__master_t *m, unsigned i);
/* Sends sig to child i through its pidfd (a pid the host reaped may be
 * recycled); kill() only when there is no pidfd. */
void mpm__master_signal(mpm__master_t *m, unsigned i, int sig);
/* Sends a control command ('g' graceful, 's' stop) to child i. */
void mpm__master_tell(mpm__master_t *m, unsigned i, char cmd);
/* epoll data of child i's control channel; its pidfd's is i. */
#define MPM__MASTER_TAG_CTL ((uint64_t)1 << 32)
/* Takes in what child i asked for on its control channel (stop, restart),
 * as the host's own calls would. */
void mpm__master_hear(mpm__master_t *m, unsigned i);
/* Reaps child i if it exited (non-blocking); returns 1 if reaped. */
int mpm__master_reap(mpm__master_t *m, unsigned i);
/* Number of live children. */
unsigned mpm__master_live(const mpm__master_t *m);

/* The body of a forked child; never returns (child.c). Called with every
 * signal blocked; `mask` is the signal mask to serve with. */
_Noreturn void mpm__child_main(mpm__master_t *m, unsigned slot, int ctl_fd, const sigset_t *mask);

/* Before binding: whether this process's RLIMIT_NOFILE leaves room for the
 * master's fds (2 per child: pidfd and control channel, plus its own).
 * Returns 0, or MPM_ECONFIG with a message naming both numbers. */
int mpm__master_check_fd_limit(mpm_server_t *srv);

#endif
