/* Blocking-with-deadline I/O on a non-blocking socket: every wait is a poll()
 * bounded by a deadline and interruptible by a hard stop, so a slow or silent
 * client can never hold a thread past its timeout. */
#include "conn.h"
#include "fdreg.h"

#include <fcntl.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* While a graceful stop is in progress the wake pipe stays readable, so it
 * cannot be polled; re-check the stop state at this interval instead. */
#define MPM__GRACEFUL_RECHECK_MS 200
#define MPM__DAY_MS (86400 * 1000)

static int wait_timeout(int64_t deadline_ms, int capped)
{
    int64_t left = deadline_ms - mpm__now_ms();
    if (left < 0)
        left = 0;
    if (capped && left > MPM__GRACEFUL_RECHECK_MS)
        left = MPM__GRACEFUL_RECHECK_MS;
    return (int)left;
}

/* Polls the connection and, while no stop is in progress, the server's wake
 * fds. Returns poll's result; p[0] is the connection. */
static int poll_conn(mpm__conn_t *c, short events, int64_t deadline_ms, int stop, struct pollfd *p,
                     nfds_t *n)
{
    mpm_server_t *srv = c->srv;
    p[0] = (struct pollfd){.fd = c->fd, .events = events};
    *n = 1;
    for (unsigned i = 0; stop == MPM__STOP_NONE && i < srv->nwake; i++)
        p[(*n)++] = (struct pollfd){.fd = srv->wake_fds[i], .events = POLLIN};
    return poll(p, *n, wait_timeout(deadline_ms, stop != MPM__STOP_NONE));
}

/* GracefulShutdownTimeout is over: the graceful stop turns into a hard one
 * for the whole serving process, so every connection ends now. (While a
 * graceful stop runs, waits are sliced at MPM__GRACEFUL_RECHECK_MS, so
 * this is seen in time.) */
static int graceful_bound_passed(mpm_server_t *srv)
{
    int64_t bound = mpm__graceful_deadline(srv);
    if (!bound || mpm__now_ms() < bound)
        return 0;
    mpm__log(srv, MPM_LOG_INFO, "GracefulShutdownTimeout reached: closing connections");
    mpm__server_stop_local(srv, 0);
    return 1;
}

int mpm__conn_wait(mpm__conn_t *c, short events, int64_t deadline_ms)
{
    for (;;) {
        int stop = mpm__server_stopping(c->srv);
        if (stop == MPM__STOP_GRACEFUL && graceful_bound_passed(c->srv))
            stop = MPM__STOP_NOW;
        if (stop == MPM__STOP_NOW)
            return MPM__WAIT_STOP;
        struct pollfd p[3];
        nfds_t n;
        int r = poll_conn(c, events, deadline_ms, stop, p, &n);
        if (r < 0 && errno != EINTR)
            return MPM__WAIT_STOP;
        if (r > 0 && p[0].revents)
            return MPM__WAIT_READY;
        if (r > 0 && n > 1) {
            /* A wake fd: the stop state may have changed. A graceful stop
             * starts this connection's drain window; the caller re-plans. */
            int now = mpm__server_check_wake(c->srv);
            if (now == MPM__STOP_GRACEFUL && !c->draining) {
                mpm__conn_start_draining(c);
                return MPM__WAIT_DRAIN;
            }
            continue;
        }
        if (mpm__now_ms() >= deadline_ms)
            return MPM__WAIT_TIMEOUT;
    }
}

static void compact_input(mpm__conn_t *c)
{
    if (c->in_start == c->in_end) {
        c->in_start = c->in_end = 0;
    } else if (c->in_end == c->in_cap && c->in_start > 0) {
        memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
        c->in_end -= c->in_start;
        c->in_start = 0;
    }
}

/* Only once bytes are there: a parked connection waits without a buffer. */
static int input_buffer(mpm__conn_t *c)
{
    if (c->in)
        return 0;
    c->in = malloc(MPM__CONN_INBUF_START);
    if (!c->in) {
        mpm__log(c->srv, MPM_LOG_ERROR, "out of memory for a connection's input");
        c->broken = 1;
        return MPM_ECLOSED;
    }
    c->in_cap = MPM__CONN_INBUF_START;
    return 0;
}

/* Less than a quarter free: double, up to MPM__CONN_INBUF. Not while body
 * bytes handed out point into the buffer. */
static void input_grow(mpm__conn_t *c)
{
    if (c->pending_len || c->in_cap >= MPM__CONN_INBUF || c->in_cap - c->in_end >= c->in_cap / 4)
        return;
    char *p = realloc(c->in, c->in_cap * 2);
    if (!p)
        return; /* reads go on in the room there is */
    c->in = p;
    c->in_cap *= 2;
}

int mpm__conn_reserve_input(mpm__conn_t *c, size_t n)
{
    if (c->pending_len)
        return MPM_ESTATE;
    int rc = input_buffer(c);
    if (rc < 0)
        return rc;
    size_t have = c->in_end - c->in_start;
    if (c->in_start > 0) {
        memmove(c->in, c->in + c->in_start, have);
        c->in_start = 0;
        c->in_end = have;
    }
    if (c->in_cap >= n)
        return 0;
    char *p = realloc(c->in, n);
    if (!p)
        return MPM_ENOMEM;
    c->in = p;
    c->in_cap = n;
    return 0;
}

ssize_t mpm__conn_try_fill(mpm__conn_t *c)
{
    if (c->pending_len == 0)
        compact_input(c);
    if (c->in)
        input_grow(c);
    if (c->in && c->in_end == c->in_cap)
        return MPM_ERANGE; /* caller must consume first */
    int rc = input_buffer(c);
    if (rc < 0)
        return rc;
    ssize_t n = c->tp->recv(c, c->in + c->in_end, c->in_cap - c->in_end);
    if (n > 0)
        c->in_end += (size_t)n;
    else if (n < 0 && !mpm__would_block(n))
        c->broken = 1;
    return n < 0 && !mpm__would_block(n) ? MPM_ECLOSED : n;
}

/* Waits until the socket is ready for what the transport wants (readable
 * for plain input; a TLS read may want it writable); 0 when ready, else
 * what mpm__conn_fill() returns. */
static int wait_for_input(mpm__conn_t *c, short events, int64_t deadline_ms)
{
    int w = mpm__conn_wait(c, events, deadline_ms);
    if (w == MPM__WAIT_READY)
        return 0;
    if (w == MPM__WAIT_TIMEOUT)
        return MPM_ETIMEDOUT;
    if (w == MPM__WAIT_DRAIN)
        return MPM_EAGAIN;
    c->broken = 1;
    return MPM_ECLOSED;
}

ssize_t mpm__conn_fill(mpm__conn_t *c, int64_t deadline_ms)
{
    for (;;) {
        ssize_t n = mpm__conn_try_fill(c);
        if (!mpm__would_block(n))
            return n;
        int rc = wait_for_input(c, mpm__want_events(n), deadline_ms);
        if (rc < 0)
            return rc;
    }
}

int64_t mpm__read_deadline(const mpm__conn_t *c, const mpm__read_timeout_t *t, int64_t start_ms,
                           uint64_t bytes)
{
    int64_t now = mpm__now_ms();
    int64_t per_read = now + c->srv->cfg.s.timeout_ms;
    if (t->timeout_ms == 0)
        return per_read;
    int64_t d = start_ms + t->timeout_ms;
    if (t->min_rate) {
        /* A second per min_rate bytes; more than a day's worth changes nothing. */
        uint64_t extra = bytes > UINT64_MAX / 1000 ? UINT64_MAX : bytes * 1000 / t->min_rate;
        d += extra > MPM__DAY_MS ? MPM__DAY_MS : (int64_t)extra;
    }
    if (t->max_ms && d > start_ms + t->max_ms)
        d = start_ms + t->max_ms;
    return d < per_read ? d : per_read;
}

static int engine_new(mpm__conn_t *c)
{
    const mpm__settings_t *s = &c->srv->cfg.s;
    mpm__h1_limits_t lim = {
        .request_line = s->limit_request_line,
        .field_size = s->limit_request_field_size,
        .fields = s->limit_request_fields,
        .body = s->limit_request_body,
    };
    c->h1 = malloc(sizeof(*c->h1));
    if (!c->h1)
        return MPM_ENOMEM;
    int rc = mpm__h1_init(c->h1, &lim);
    if (rc < 0) {
        free(c->h1);
        c->h1 = NULL;
    }
    return rc;
}

void mpm__conn_engine_free(mpm__conn_t *c)
{
    if (!c->h1)
        return;
    mpm__h1_free(c->h1);
    free(c->h1);
    c->h1 = NULL;
}

void mpm__conn_next_event(mpm__conn_t *c, mpm__h1_event_t *ev)
{
    if (!c->h1 && engine_new(c) < 0) {
        mpm__log(c->srv, MPM_LOG_ERROR, "out of memory for a connection's parser");
        *ev = (mpm__h1_event_t){.type = MPM__H1_ERROR, .status = 500, .why = "out of memory"};
        return;
    }
    /* A parked connection has no buffer; the engine may still owe an
     * event for zero bytes. */
    const char *at = c->in ? c->in + c->in_start : "";
    size_t used = mpm__h1_feed(c->h1, at, c->in_end - c->in_start, ev);
    c->in_start += used;
}

void mpm__conn_park(mpm__conn_t *c)
{
    if (c->in_start != c->in_end || c->pending_len)
        return;
    free(c->in);
    c->in = NULL;
    c->in_start = c->in_end = 0;
    mpm__conn_engine_free(c); /* made again at the next byte */
    mpm__resp_headers_free(&c->resp_headers);
    mpm__conn_out_release(c);
    c->in_cap = 0;
}

static void advance_iov(struct iovec **iov, int *iovcnt, size_t n)
{
    while (*iovcnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*iovcnt)--;
    }
    if (*iovcnt > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

/* How much of a blocked write the blocking path copies at a time: the
 * queue is flushed before more is copied, so a large body to a slow
 * reader costs this much memory, not its size. */
#define MPM__OUTQ_CHUNK (64 * 1024)

static int io_error(mpm__conn_t *c, ssize_t n)
{
    c->broken = 1;
    return n == -EPIPE || n == -ECONNRESET ? MPM_ECLOSED : (int)n;
}

int mpm__conn_wait_writable(mpm__conn_t *c, ssize_t want)
{
    if (!c->write_stall_deadline)
        c->write_stall_deadline = mpm__now_ms() + c->srv->cfg.s.timeout_ms;
    int w = mpm__conn_wait(c, mpm__want_events(want), c->write_stall_deadline);
    if (w == MPM__WAIT_READY || w == MPM__WAIT_DRAIN)
        return 0;
    c->broken = 1;
    return w == MPM__WAIT_TIMEOUT ? MPM_ETIMEDOUT : MPM_ECLOSED;
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t n = 0;
    for (int i = 0; i < iovcnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* Copies up to `limit` bytes of iov (advanced past them) to the end of the
 * output queue. 0 or MPM_ENOMEM. */
static int out_queue(mpm__conn_t *c, struct iovec **iov, int *iovcnt, size_t limit)
{
    size_t want = iov_total(*iov, *iovcnt);
    if (want > limit)
        want = limit;
    if (c->out_start == c->out_end)
        c->out_start = c->out_end = 0;
    if (c->out_cap - c->out_end < want) {
        size_t cap = c->out_end + want;
        char *p = realloc(c->out, cap);
        if (!p)
            return MPM_ENOMEM;
        c->out = p;
        c->out_cap = cap;
    }
    size_t left = want;
    while (left > 0) {
        size_t n = (*iov)->iov_len < left ? (*iov)->iov_len : left;
        memcpy(c->out + c->out_end, (*iov)->iov_base, n);
        c->out_end += n;
        left -= n;
        advance_iov(iov, iovcnt, n);
    }
    return 0;
}

/* A file body's unsent rest, after the queued bytes. */
static ssize_t file_write(mpm__conn_t *c)
{
    while (c->file_left > 0) {
        ssize_t n = c->tp->sendfile(c, c->file_fd, &c->file_off, c->file_left);
        if (n < 0)
            return n;
        if (n == 0)
            return MPM_EPROTO; /* the file shrank under us */
        c->file_left -= (size_t)n;
        mpm__conn_wrote(c);
    }
    mpm__conn_file_drop(c);
    return 0;
}

ssize_t mpm__conn_out_write(mpm__conn_t *c)
{
    while (c->out_start < c->out_end) {
        struct iovec v = {.iov_base = c->out + c->out_start, .iov_len = c->out_end - c->out_start};
        ssize_t n = c->tp->sendv(c, &v, 1);
        if (n < 0)
            return n;
        c->out_start += (size_t)n;
        mpm__conn_wrote(c);
    }
    c->out_start = c->out_end = 0;
    return file_write(c);
}

void mpm__conn_file_drop(mpm__conn_t *c)
{
    if (c->file_fd >= 0)
        mpm__fdreg_close(c->file_fd);
    c->file_fd = -1;
    c->file_left = 0;
}

int mpm__conn_file_defer(mpm__conn_t *c, int fd, off_t off, size_t len)
{
    if (!c->async_out_max || !c->tp->sendfile || c->file_left)
        return MPM_ENOTSUP;
    mpm__fdreg_lock();
    int dup = mpm__fdreg_keep(c->srv, fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (dup < 0)
        return -errno;
    c->file_fd = dup;
    c->file_off = off;
    c->file_left = len;
    return 0;
}

int mpm__conn_queue(mpm__conn_t *c, struct iovec *iov, int iovcnt)
{
    if (c->broken)
        return MPM_ECLOSED;
    advance_iov(&iov, &iovcnt, 0);
    while (iovcnt > 0 && !mpm__conn_out_pending(c)) {
        ssize_t n = c->tp->sendv(c, iov, iovcnt);
        if (n >= 0) {
            advance_iov(&iov, &iovcnt, (size_t)n);
            mpm__conn_wrote(c);
        } else if (!mpm__would_block(n)) {
            return io_error(c, n);
        } else {
            break;
        }
    }
    int rc = iovcnt > 0 ? out_queue(c, &iov, &iovcnt, SIZE_MAX) : 0;
    if (rc < 0)
        c->broken = 1;
    return rc;
}

/* Flushes the queue, waiting first if the last write said it would block
 * (want: MPM__WANT_*, or 0 to try at once). */
static int out_flush_after(mpm__conn_t *c, ssize_t want)
{
    for (;;) {
        ssize_t n = want ? want : mpm__conn_out_write(c);
        want = 0;
        if (n == 0)
            return 0;
        if (!mpm__would_block(n))
            return io_error(c, n);
        int rc = mpm__conn_wait_writable(c, n);
        if (rc < 0)
            return rc;
    }
}

int mpm__conn_out_flush(mpm__conn_t *c)
{
    if (c->broken)
        return MPM_ECLOSED;
    return out_flush_after(c, 0);
}

void mpm__conn_out_release(mpm__conn_t *c)
{
    if (c->out_start != c->out_end)
        return;
    free(c->out);
    c->out = NULL;
    c->out_start = c->out_end = c->out_cap = 0;
}

int mpm__conn_sendv_all(mpm__conn_t *c, struct iovec *iov, int iovcnt)
{
    int rc = mpm__conn_out_flush(c); /* queued bytes go first */
    if (rc < 0)
        return rc;
    advance_iov(&iov, &iovcnt, 0); /* skips empty entries */
    while (iovcnt > 0) {
        ssize_t n = c->tp->sendv(c, iov, iovcnt);
        if (n >= 0) {
            advance_iov(&iov, &iovcnt, (size_t)n);
            mpm__conn_wrote(c);
            continue;
        }
        if (!mpm__would_block(n))
            return io_error(c, n);
        /* What the socket did not take becomes the connection's own: a
         * tail small enough is left for the driver to write (the event
         * loop's write completion); else it goes out from here. */
        if (c->async_out_max && iov_total(iov, iovcnt) <= c->async_out_max)
            return out_queue(c, &iov, &iovcnt, SIZE_MAX) < 0 ? io_error(c, MPM_ENOMEM) : 0;
        rc = out_queue(c, &iov, &iovcnt, MPM__OUTQ_CHUNK);
        if (rc == 0)
            rc = out_flush_after(c, n);
        if (rc < 0) {
            c->broken = 1;
            return rc;
        }
    }
    return 0;
}
