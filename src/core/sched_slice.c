/* SchedulerSlice: a short time slice for the library's own threads, which
 * Linux grants since 6.12 (EEVDF's custom slices; older kernels ignore the
 * field). Several children sharing a core otherwise take turns every few
 * milliseconds (the default slice, 0.75 ms times a factor for the CPU
 * count), and a request whose child waits behind another child's busy
 * thread waits that long: with two event children on one core this moved
 * wrk's p99 from about 2 ms to under 1 ms. Only the slice changes: the
 * policy, the nice value and so the CPU share stay the host's. It is a
 * hint: a kernel that refuses it changes nothing. */
#include "internal.h"

#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__linux__) && defined(SYS_sched_getattr) && defined(SYS_sched_setattr)
/* The kernel's struct sched_attr (first version); glibc 2.36 has no
 * wrapper for these calls. */
typedef struct sched_attr_v0 {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
} sched_attr_v0_t;

#define MPM__SCHED_FLAG_RESET_ON_FORK 0x01

void mpm__thread_set_slice(const mpm_server_t *srv)
{
    unsigned us = srv->cfg.s.scheduler_slice_us;
    if (!us)
        return;
    sched_attr_v0_t a;
    memset(&a, 0, sizeof a);
    if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0) != 0)
        return;
    if (a.policy != SCHED_OTHER && a.policy != SCHED_BATCH)
        return; /* a real-time host thread is not ours to change */
    a.size = sizeof a;
    a.flags &= MPM__SCHED_FLAG_RESET_ON_FORK;
    a.runtime = (uint64_t)us * 1000u;
    (void)syscall(SYS_sched_setattr, 0, &a, 0);
}
#else
void mpm__thread_set_slice(const mpm_server_t *srv)
{
    (void)srv;
}
#endif
