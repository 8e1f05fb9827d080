/* See fleet.h. */
#include "fleet.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define TF_BATCH 128
#define TF_RECV_CHUNK 16384

long tf_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    return rl.rlim_cur == RLIM_INFINITY ? (long)1 << 30 : (long)rl.rlim_cur;
}

static int64_t left_ms(int64_t deadline)
{
    int64_t left = deadline - tc_now_ms();
    return left < 0 ? 0 : left;
}

/* ---- connecting ---- */

static int start_connect(tc_conn_t *c, int port)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS)
        return 0;
    tc_close(c);
    return -1;
}

static int connected_ok(int fd)
{
    int err = 0, one = 1;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
        return 0;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 1;
}

/* Connects members [from, to): returns how many did before the deadline;
 * the others are closed. */
static size_t connect_batch(tf_fleet_t *f, size_t from, size_t to, int port, int64_t deadline)
{
    struct pollfd p[TF_BATCH];
    size_t idx[TF_BATCH], pending = 0, ok = 0;
    for (size_t i = from; i < to; i++)
        if (start_connect(&f->conns[i], port) == 0) {
            p[pending] = (struct pollfd){.fd = f->conns[i].fd, .events = POLLOUT};
            idx[pending++] = i;
        }
    while (pending > 0 && left_ms(deadline) > 0) {
        int n = poll(p, pending, (int)left_ms(deadline));
        if (n < 0 && errno != EINTR)
            break;
        for (size_t k = 0; n > 0 && k < pending;) {
            if (p[k].revents == 0) {
                k++;
                continue;
            }
            if (connected_ok(p[k].fd))
                ok++;
            else
                tc_close(&f->conns[idx[k]]);
            p[k] = p[--pending];
            idx[k] = idx[pending];
        }
    }
    for (size_t k = 0; k < pending; k++)
        tc_close(&f->conns[idx[k]]);
    return ok;
}

size_t tf_open(tf_fleet_t *f, int port, size_t n, int timeout_ms)
{
    memset(f, 0, sizeof(*f));
    f->conns = calloc(n, sizeof(*f->conns));
    f->m = calloc(n, sizeof(*f->m));
    if (!f->conns || !f->m) {
        tf_free(f);
        return 0;
    }
    f->n = n;
    for (size_t i = 0; i < n; i++)
        f->conns[i].fd = -1;
    int64_t deadline = tc_now_ms() + timeout_ms;
    size_t ok = 0;
    for (size_t from = 0; from < n && left_ms(deadline) > 0; from += TF_BATCH)
        ok += connect_batch(f, from, from + TF_BATCH < n ? from + TF_BATCH : n, port, deadline);
    return ok;
}

void tf_free(tf_fleet_t *f)
{
    for (size_t i = 0; f->conns && i < f->n; i++)
        tc_close(&f->conns[i]);
    free(f->conns);
    free(f->m);
    memset(f, 0, sizeof(*f));
}

/* ---- taking in what the server sends ---- */

/* Reads everything available without waiting. 1: the server closed (EOF
 * or reset: *reset says which), 0: still open. */
static int drain_socket(tc_conn_t *c, int *reset)
{
    for (;;) {
        if (c->len + TF_RECV_CHUNK > c->cap) {
            size_t cap = c->cap ? c->cap * 2 : TF_RECV_CHUNK * 2;
            char *nb = realloc(c->buf, cap + 1);
            if (!nb)
                return 0; /* try again on the next round */
            c->buf = nb;
            c->cap = cap;
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (n > 0) {
            c->len += (size_t)n;
            c->buf[c->len] = '\0';
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        *reset = n < 0;
        c->eof = 1;
        return 1;
    }
}

/* Whether the buffer holds a whole response (Content-Length framing, or no
 * body for 1xx/204/304; anything else is whole at the server's close). */
static int response_complete(const tc_conn_t *c)
{
    if (!c->buf)
        return 0;
    const char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->buf) + 4;
    int status = c->len > 12 ? atoi(c->buf + 9) : 0;
    if (status < 200 || status == 204 || status == 304)
        return 1;
    for (const char *line = strstr(c->buf, "\r\n"); line && line < end;
         line = strstr(line + 2, "\r\n"))
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
            return c->len >= head + strtoull(line + 17, NULL, 10);
    return c->eof;
}

static void record_response(tc_conn_t *c, tf_member_t *m, int64_t now)
{
    tc_response_t r;
    int rc = tc_read_response(c, &r, 0, 0);
    m->status = rc == TC_OK ? r.status : -1;
    m->answered_ms = now;
    tc_response_free(&r);
}

enum tf_mode { TF_AWAIT_RESPONSE, TF_AWAIT_CLOSE };

static int member_waiting(const tf_fleet_t *f, size_t i, enum tf_mode mode)
{
    return f->conns[i].fd >= 0 && f->m[i].closed_ms == 0 &&
           (mode == TF_AWAIT_CLOSE || f->m[i].status == 0);
}

static void take_in(tf_fleet_t *f, size_t i, enum tf_mode mode)
{
    tc_conn_t *c = &f->conns[i];
    tf_member_t *m = &f->m[i];
    int reset = 0, closed = drain_socket(c, &reset);
    int64_t now = tc_now_ms();
    if (mode == TF_AWAIT_RESPONSE && m->status == 0 && response_complete(c))
        record_response(c, m, now);
    if (mode == TF_AWAIT_CLOSE) {
        m->extra += c->len;
        c->len = 0;
    }
    if (!closed)
        return;
    if (m->status == 0)
        m->status = -1;
    m->closed_ms = now;
    m->reset = reset;
    tc_close(c);
}

/* One poll() over the members still waiting, for at most wait_ms; takes in
 * what came. Returns how many are still waiting. */
static size_t pump(tf_fleet_t *f, struct pollfd *p, size_t *idx, enum tf_mode mode, int64_t wait_ms)
{
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++)
        if (member_waiting(f, i, mode)) {
            p[k] = (struct pollfd){.fd = f->conns[i].fd, .events = POLLIN};
            idx[k++] = i;
        }
    if (k == 0)
        return 0;
    int n = poll(p, k, (int)wait_ms);
    for (size_t j = 0; n > 0 && j < k; j++)
        if (p[j].revents != 0)
            take_in(f, idx[j], mode);
    size_t waiting = 0;
    for (size_t j = 0; j < k; j++)
        waiting += member_waiting(f, idx[j], mode);
    return waiting;
}

static size_t pump_until(tf_fleet_t *f, enum tf_mode mode, int64_t deadline)
{
    struct pollfd *p = calloc(f->n ? f->n : 1, sizeof(*p));
    size_t *idx = calloc(f->n ? f->n : 1, sizeof(*idx));
    size_t waiting = f->n;
    if (p && idx) {
        do
            waiting = pump(f, p, idx, mode, left_ms(deadline));
        while (waiting > 0 && left_ms(deadline) > 0);
    }
    free(p);
    free(idx);
    return waiting;
}

size_t tf_request_all(tf_fleet_t *f, const char *raw, int timeout_ms)
{
    int64_t now = tc_now_ms();
    for (size_t i = 0; i < f->n; i++) {
        tc_conn_t *c = &f->conns[i];
        if (c->fd < 0)
            continue;
        f->m[i].status = 0;
        f->m[i].started_ms = now;
        f->m[i].answered_ms = 0;
        if (tc_send(c, raw, strlen(raw), 2000) != TC_OK)
            f->m[i].status = -1;
    }
    pump_until(f, TF_AWAIT_RESPONSE, now + timeout_ms);
    size_t ok = 0;
    for (size_t i = 0; i < f->n; i++)
        ok += f->m[i].status == 200;
    return ok;
}

size_t tf_wait_closed(tf_fleet_t *f, int timeout_ms)
{
    pump_until(f, TF_AWAIT_CLOSE, tc_now_ms() + timeout_ms);
    size_t closed = 0;
    for (size_t i = 0; i < f->n; i++)
        closed += f->m[i].closed_ms != 0;
    return closed;
}

/* ---- slow clients ---- */

/* Sends one drip byte to every waiting member whose turn it is. */
static void drip_due(tf_fleet_t *f, int64_t *next, char drip, int interval_ms)
{
    int64_t now = tc_now_ms();
    for (size_t i = 0; i < f->n; i++) {
        if (!member_waiting(f, i, TF_AWAIT_RESPONSE) || next[i] > now)
            continue;
        next[i] = now + interval_ms;
        ssize_t w = send(f->conns[i].fd, &drip, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            take_in(f, i, TF_AWAIT_RESPONSE); /* it is gone: the read tells how */
    }
}

static int64_t earliest(const tf_fleet_t *f, const int64_t *next, int64_t bound)
{
    for (size_t i = 0; i < f->n; i++)
        if (member_waiting(f, i, TF_AWAIT_RESPONSE) && next[i] < bound)
            bound = next[i];
    return bound;
}

size_t tf_trickle(tf_fleet_t *f, const char *head, char drip, int interval_ms, int64_t give_up_ms)
{
    int64_t *next = calloc(f->n ? f->n : 1, sizeof(*next));
    struct pollfd *p = calloc(f->n ? f->n : 1, sizeof(*p));
    size_t *idx = calloc(f->n ? f->n : 1, sizeof(*idx));
    if (!next || !p || !idx) {
        free(next);
        free(p);
        free(idx);
        return 0;
    }
    for (size_t i = 0; i < f->n; i++) {
        if (f->conns[i].fd < 0)
            continue;
        f->m[i].status = 0;
        f->m[i].started_ms = tc_now_ms();
        next[i] = f->m[i].started_ms + interval_ms;
        if (tc_send(&f->conns[i], head, strlen(head), 2000) != TC_OK)
            take_in(f, i, TF_AWAIT_RESPONSE);
    }
    size_t waiting = f->n;
    while (waiting > 0 && tc_now_ms() < give_up_ms) {
        int64_t until = earliest(f, next, give_up_ms);
        waiting = pump(f, p, idx, TF_AWAIT_RESPONSE, left_ms(until));
        drip_due(f, next, drip, interval_ms);
    }
    free(next);
    free(p);
    free(idx);
    size_t ended = 0;
    for (size_t i = 0; i < f->n; i++)
        ended += f->m[i].status != 0;
    return ended;
}
