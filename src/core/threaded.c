/* Limits shared by the threaded strategies (worker, event): httpd's
 * ServerLimit x ThreadsPerChild arithmetic and its defaults. */
#include "internal.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#define THREADED_DEFAULT_START 3
#define THREADED_DEFAULT_LIMIT 16
#define THREADED_DEFAULT_MAX_WORKERS 400

static unsigned or_default(unsigned v, unsigned dflt)
{
    return v ? v : dflt;
}

/* ServerLimit x ThreadsPerChild: up to 200000 x 100000, so 64 bits. */
static uint64_t thread_capacity(const mpm__settings_t *s)
{
    return (uint64_t)or_default(s->server_limit, THREADED_DEFAULT_LIMIT) * s->threads_per_child;
}

/* MaxRequestWorkers left at its default follows ServerLimit x
 * ThreadsPerChild down, as httpd does, rather than failing. */
static unsigned max_workers(const mpm__settings_t *s)
{
    if (s->max_request_workers)
        return s->max_request_workers;
    uint64_t cap = thread_capacity(s);
    return cap < THREADED_DEFAULT_MAX_WORKERS ? (unsigned)cap : THREADED_DEFAULT_MAX_WORKERS;
}

void mpm__threaded_pool_limits(const mpm__settings_t *s, mpm__pool_limits_t *out)
{
    unsigned tpc = s->threads_per_child;
    out->units_per_child = tpc;
    out->server_limit = or_default(s->server_limit, THREADED_DEFAULT_LIMIT);
    unsigned max_workers_n = max_workers(s);
    out->max_children = max_workers_n / tpc;
    out->start_children = or_default(s->start_servers, THREADED_DEFAULT_START);
    mpm__pool_limits_clamp(out);
    out->min_spare_units = s->min_spare_threads;
    out->max_spare_units = s->max_spare_threads;
    /* httpd's rule: otherwise the master would retire a child only to find
     * itself short of spares and fork it again (64 bits: MinSpareThreads
     * goes up to INT_MAX). */
    uint64_t least = (uint64_t)out->min_spare_units + tpc;
    if (out->max_spare_units < least)
        out->max_spare_units = least < UINT_MAX ? (unsigned)least : UINT_MAX;
}

int mpm__threaded_check(const mpm__settings_t *s, char *err, size_t errlen)
{
    if (s->threads_per_child > s->thread_limit) {
        snprintf(err, errlen, "ThreadsPerChild %u exceeds ThreadLimit %u", s->threads_per_child,
                 s->thread_limit);
        return MPM_ECONFIG;
    }
    unsigned limit = or_default(s->server_limit, THREADED_DEFAULT_LIMIT);
    if (max_workers(s) > thread_capacity(s)) {
        snprintf(err, errlen, "MaxRequestWorkers %u exceeds ServerLimit %u x ThreadsPerChild %u",
                 max_workers(s), limit, s->threads_per_child);
        return MPM_ECONFIG;
    }
    return 0;
}

