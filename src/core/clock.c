/* Monotonic time for deadlines: wall-clock jumps must not fire or stall
 * timeouts. */
#include "internal.h"

#include <time.h>

int64_t mpm__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
