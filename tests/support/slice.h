/* The scheduler's time slice of this process's threads, as Linux shows it
 * in /proc/self/task/TID/sched (se.slice, in ns): for the SchedulerSlice
 * tests. */
#ifndef MPM_TEST_SLICE_H
#define MPM_TEST_SLICE_H

/* Whether this kernel grants a thread a slice of its own (Linux 6.12+):
 * tried on a short-lived thread of its own. */
int tslice_supported(void);

/* The calling thread's slice in ns; -1 when the kernel shows none. */
long long tslice_own_ns(void);

/* For th_wait_for: true once exactly `threads` threads have `ns`. */
typedef struct tslice_wait {
    long long ns;
    int threads;
} tslice_wait_t;
int tslice_threads_are(void *tslice_wait);

#endif
