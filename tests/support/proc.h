/* What /proc says about a process, for tests that watch servers the way an
 * operator would. */
#ifndef MPM_TEST_PROC_H
#define MPM_TEST_PROC_H

#include <sys/types.h>

typedef struct tp_stat {
    char state;      /* 'R', 'S', 'Z', ... */
    pid_t ppid;
    long cpu_ticks;  /* utime + stime, in clock ticks */
} tp_stat_t;

/* Reads /proc/PID/stat. Returns 0, or -1 if the process does not exist. */
int tp_stat(pid_t pid, tp_stat_t *out);

/* The parent of a live process; -1 for one that is gone or a zombie. */
pid_t tp_parent_of(pid_t pid);
/* Whether pid is gone (or a zombie nobody has reaped yet). */
int tp_gone(pid_t pid);
/* Live (non-zombie) children of parent, at most max into kids; returns how
 * many. */
int tp_children_of(pid_t parent, pid_t *kids, int max);
/* Waits up to timeout_ms for every pid of the list to be gone; 1 if so. */
int tp_wait_all_gone(const pid_t *pids, int n, int timeout_ms);

/* The number on the line "FIELD:" of a /proc status file (e.g.
 * "/proc/self/status", "VmData"); -1 if the file or the line is missing. */
long tp_status_number(const char *path, const char *field);

/* The open descriptors of pid (numbers, ascending) and their open flags
 * from /proc/PID/fdinfo (O_CLOEXEC included). Returns how many were found
 * (at most max), or -1 if the process cannot be read. */
typedef struct tp_fd {
    int fd;
    long flags;
    char target[128]; /* readlink of /proc/PID/fd/N: "socket:[123]", a path ... */
} tp_fd_t;
int tp_fds(pid_t pid, tp_fd_t *fds, int max);

#endif
