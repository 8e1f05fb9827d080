/* Many client connections at once, driven by poll() from one thread: for
 * tests about what a server does with thousands of idle or slow clients,
 * where a thread per connection would make the test its own bottleneck.
 *
 * Each member is a tc_conn_t (client.h), so a test can also use it one at a
 * time with the blocking tc_* calls. Every wait takes a bound. Raise
 * RLIMIT_NOFILE first (tf_raise_nofile) when the fleet is large. */
#ifndef MPM_TEST_FLEET_H
#define MPM_TEST_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"

/* What happened to a member, as far as the client can tell. */
typedef struct tf_member {
    int status;          /* status of the last complete response; 0 when none
                            since the last send; -1 when the server closed or
                            reset instead of answering */
    int64_t started_ms;  /* tc_now_ms() of the last tf_request_all / trickle start */
    int64_t answered_ms; /* when that response was complete (0: not yet) */
    int64_t closed_ms;   /* when the server's close or reset was seen (0: open) */
    int reset;           /* the close was a reset */
    size_t extra;        /* bytes that came while waiting for a close */
} tf_member_t;

typedef struct tf_fleet {
    tc_conn_t *conns;
    tf_member_t *m;
    size_t n;
} tf_fleet_t;

/* Raises the soft RLIMIT_NOFILE to the hard limit. Returns the new soft
 * limit, or -1. */
long tf_raise_nofile(void);

/* Connects n sockets to 127.0.0.1:port, in batches, without waiting for
 * each in turn. Returns how many connected within timeout_ms; the fleet is
 * usable (and must be freed) whatever it returns. */
size_t tf_open(tf_fleet_t *f, int port, size_t n, int timeout_ms);
/* Closes every member and frees the fleet; safe on a zeroed one. */
void tf_free(tf_fleet_t *f);

/* Sends raw on every open member, then waits until each has a complete
 * response (Content-Length bodies only) or was closed. Fills m[i].status
 * and answered_ms. Returns how many answered 200 within timeout_ms. */
size_t tf_request_all(tf_fleet_t *f, const char *raw, int timeout_ms);

/* Waits up to timeout_ms until the server has closed every member (clean
 * EOF or reset), recording closed_ms. timeout_ms 0 just takes in what has
 * already happened. Returns how many are closed. Bytes that arrive meanwhile
 * are counted in m[i].extra and dropped. */
size_t tf_wait_closed(tf_fleet_t *f, int timeout_ms);

/* Slow clients: sends `head` on every open member, then one `drip` byte
 * on each every interval_ms, until the server answers (a complete
 * response: m[i].status, answered_ms) or closes (status -1, closed_ms).
 * Returns when every member has ended that way, or at give_up_ms
 * (tc_now_ms() clock). Returns how many ended. */
size_t tf_trickle(tf_fleet_t *f, const char *head, char drip, int interval_ms, int64_t give_up_ms);

#endif
