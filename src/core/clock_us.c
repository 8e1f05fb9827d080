/* Microsecond clocks for the access log: monotonic for durations (a fast
 * request takes far less than a millisecond), wall clock for the time a
 * request arrived. */
#include "conn.h"

#include <time.h>

int64_t mpm__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mpm__wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t mpm__request_id_next(mpm_server_t *srv)
{
    return atomic_fetch_add_explicit(&srv->sb->last_request_id, 1, memory_order_relaxed) + 1;
}
