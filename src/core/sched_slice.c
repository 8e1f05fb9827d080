/* SchedulerSlice: a short time slice for the library's own threads, which
 * Linux grants since 6.12 (EEVDF's custom slices; older kernels ignore the
 * field). Several children sharing a core otherwise take turns every few
 * milliseconds (the default slice, 0.75 ms times a factor for the CPU
 * count), and a request whose child waits behind another child's busy
 * thread waits that long: with two event children on one core this moved
 * wrk's p99 from about 2 ms to under 1 ms. Only the slice changes: the
 * policy, the nice value and so the CPU share stay the host's. It is a
 * hint: a kernel that refuses it changes nothing.
 *
 * A thread that serves one connection for its whole life (worker's, and
 * event's while it holds a pinned TLS connection) goes back to the
 * kernel's slice: there a short slice only lets the next connection's
 * wake-up preempt a request or a TLS handshake mid-way: it cost worker's
 * kept-alive requests 11-13 % more CPU and a worse p99 (bench/RESULTS.md,
 * "SchedulerSlice and threads that own a connection"). */
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

/* What this thread last asked for: -1 nothing yet, else a use_slice flag;
 * a thread asks again only when it changes (once per thread under worker,
 * once per pinned connection under event). */
static _Thread_local signed char thread_short_slice = -1;

void mpm__thread_use_slice(const mpm_server_t *srv, int short_slice)
{
    unsigned us = srv->cfg.s.scheduler_slice_us;
    short_slice = short_slice != 0;
    if (!us || thread_short_slice == short_slice)
        return;
    thread_short_slice = (signed char)short_slice;
    sched_attr_v0_t a;
    memset(&a, 0, sizeof a);
    if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0) != 0)
        return;
    if (a.policy != SCHED_OTHER && a.policy != SCHED_BATCH)
        return; /* a real-time host thread is not ours to change */
    a.size = sizeof a;
    a.flags &= MPM__SCHED_FLAG_RESET_ON_FORK;
    a.runtime = short_slice ? (uint64_t)us * 1000u : 0; /* 0: the kernel's default */
    (void)syscall(SYS_sched_setattr, 0, &a, 0);
}
#else
void mpm__thread_use_slice(const mpm_server_t *srv, int short_slice)
{
    (void)srv;
    (void)short_slice;
}
#endif
