/* prefork: single-threaded units, one connection at a time each. A child
 * (or the calling process in one-process mode) runs the core's serial loop;
 * the master keeps idle processes between MinSpareServers and
 * MaxSpareServers. */
#include "core/internal.h"

#include <stdio.h>

#define PREFORK_DEFAULT_START 5
#define PREFORK_DEFAULT_LIMIT 256

static unsigned or_default(unsigned v, unsigned dflt)
{
    return v ? v : dflt;
}

static void prefork_pool_limits(const mpm__settings_t *s, mpm__pool_limits_t *out)
{
    out->units_per_child = 1;
    out->server_limit = or_default(s->server_limit, PREFORK_DEFAULT_LIMIT);
    out->max_children = or_default(s->max_request_workers, out->server_limit);
    out->start_children = or_default(s->start_servers, PREFORK_DEFAULT_START);
    out->min_spare_units = s->min_spare_servers;
    out->max_spare_units = s->max_spare_servers;
    mpm__pool_limits_clamp(out);
}

static int prefork_check(const mpm__settings_t *s, char *err, size_t errlen)
{
    unsigned limit = or_default(s->server_limit, PREFORK_DEFAULT_LIMIT);
    if (s->max_request_workers > limit) {
        snprintf(err, errlen, "MaxRequestWorkers %u exceeds ServerLimit %u", s->max_request_workers,
                 limit);
        return MPM_ECONFIG;
    }
    return 0;
}

const mpm__strategy_t mpm__prefork_strategy = {
    .name = "prefork",
    .check = prefork_check,
    .pool_limits = prefork_pool_limits,
    .serve = mpm__serial_loop,
    .wake = NULL,
};
