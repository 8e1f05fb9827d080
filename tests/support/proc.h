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

#endif
