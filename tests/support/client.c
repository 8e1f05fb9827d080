/* Blocking HTTP/1.1 test client: see client.h. */
#include "client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t tc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *tc_result_name(int rc)
{
    switch (rc) {
    case TC_OK: return "OK";
    case TC_CLOSED: return "CLOSED";
    case TC_RESET: return "RESET";
    case TC_TIMEOUT: return "TIMEOUT";
    case TC_PROTO: return "PROTO";
    case TC_SYSERR: return "SYSERR";
    default: return "?";
    }
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - tc_now_ms();
    return left < 0 ? 0 : (int)left;
}

static int errno_result(int err)
{
    if (err == ECONNRESET || err == EPIPE || err == ECONNABORTED)
        return TC_RESET;
    return TC_SYSERR;
}

/* ---- connection ---- */

static int wait_connected(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n;
    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n == 0)
        return TC_TIMEOUT;
    int err = 0;
    socklen_t len = sizeof(err);
    if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return TC_SYSERR;
    if (err != 0) {
        errno = err;
        return err == ECONNREFUSED ? TC_RESET : TC_SYSERR;
    }
    return TC_OK;
}

int tc_connect(tc_conn_t *c, int port, int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return TC_SYSERR;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = TC_OK;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == EINPROGRESS)
            rc = wait_connected(c->fd, timeout_ms);
        else
            rc = errno == ECONNREFUSED ? TC_RESET : TC_SYSERR;
    }
    if (rc != TC_OK) {
        close(c->fd);
        c->fd = -1;
        return rc;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return TC_OK;
}

void tc_close(tc_conn_t *c)
{
    if (c->fd > 0) /* a zeroed conn (fd 0) was never connected */
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

/* ---- sending ---- */

static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int n = poll(&p, 1, remaining_ms(deadline));
        if (n > 0)
            return TC_OK;
        if (n == 0)
            return TC_TIMEOUT;
        if (errno != EINTR)
            return TC_SYSERR;
    }
}

int tc_send(tc_conn_t *c, const void *data, size_t len, int timeout_ms)
{
    const char *p = data;
    int64_t deadline = tc_now_ms() + timeout_ms;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(c->fd, POLLOUT, deadline);
            if (rc != TC_OK)
                return rc;
            continue;
        }
        return errno_result(errno);
    }
    return TC_OK;
}

int tc_send_str(tc_conn_t *c, const char *s)
{
    return tc_send(c, s, strlen(s), TC_DEFAULT_TIMEOUT_MS);
}

static void pause_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int tc_send_pieces(tc_conn_t *c, const void *data, size_t len, size_t piece, int pause)
{
    const char *p = data;
    while (len > 0) {
        size_t n = len < piece ? len : piece;
        int rc = tc_send(c, p, n, TC_DEFAULT_TIMEOUT_MS);
        if (rc != TC_OK)
            return rc;
        p += n;
        len -= n;
        if (len > 0 && pause > 0)
            pause_ms(pause);
    }
    return TC_OK;
}

/* ---- receiving into the buffer ---- */

static int reserve(tc_conn_t *c, size_t extra)
{
    if (c->len + extra <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : 16384;
    while (cap < c->len + extra)
        cap *= 2;
    char *nb = realloc(c->buf, cap + 1);
    if (!nb)
        return -1;
    c->buf = nb;
    c->cap = cap;
    return 0;
}

/* One recv() into the buffer, without waiting. TC_OK (bytes or nothing yet:
 * *got says which), TC_CLOSED, TC_RESET, TC_SYSERR. */
static int recv_some(tc_conn_t *c, size_t *got)
{
    *got = 0;
    if (c->eof)
        return TC_CLOSED;
    if (reserve(c, 65536) < 0)
        return TC_SYSERR;
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
    if (n > 0) {
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
        *got = (size_t)n;
        return TC_OK;
    }
    if (n == 0) {
        c->eof = 1;
        return TC_CLOSED;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return TC_OK;
    return errno_result(errno);
}

/* Waits for and appends more bytes. TC_OK when some arrived. */
static int fill(tc_conn_t *c, int64_t deadline)
{
    for (;;) {
        size_t got;
        int rc = recv_some(c, &got);
        if (rc != TC_OK || got > 0)
            return rc;
        rc = wait_fd(c->fd, POLLIN, deadline);
        if (rc != TC_OK)
            return rc;
    }
}

/* Makes sure at least n bytes are buffered. */
static int need(tc_conn_t *c, size_t n, int64_t deadline)
{
    while (c->len < n) {
        int rc = fill(c, deadline);
        if (rc != TC_OK)
            return rc;
    }
    return TC_OK;
}

/* Finds "\r\n" at or after pos, reading more as needed; *eol = its offset. */
static int need_line(tc_conn_t *c, size_t pos, size_t *eol, int64_t deadline)
{
    size_t from = pos;
    for (;;) {
        for (size_t i = from; i + 1 < c->len; i++) {
            if (c->buf[i] == '\r' && c->buf[i + 1] == '\n') {
                *eol = i;
                return TC_OK;
            }
        }
        if (c->len > from + 1)
            from = c->len - 1; /* a '\r' at the end may pair with the next byte */
        int rc = fill(c, deadline);
        if (rc != TC_OK)
            return rc;
    }
}

static void consume(tc_conn_t *c, size_t n)
{
    if (!c->buf)
        return;
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->buf[c->len] = '\0';
}

int tc_send_while_reading(tc_conn_t *c, const void *data, size_t len, int timeout_ms)
{
    const char *p = data;
    int64_t deadline = tc_now_ms() + timeout_ms;
    while (len > 0) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT | (c->eof ? 0 : POLLIN)};
        int n = poll(&pfd, 1, remaining_ms(deadline));
        if (n == 0)
            return TC_TIMEOUT;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return TC_SYSERR;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            size_t got;
            int rc = recv_some(c, &got);
            if (rc == TC_RESET || rc == TC_SYSERR)
                return rc;
        }
        if (pfd.revents & (POLLOUT | POLLERR)) {
            ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                p += w;
                len -= (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                return errno_result(errno);
            }
        }
    }
    return TC_OK;
}

int tc_readable(tc_conn_t *c, int timeout_ms)
{
    if (c->len > 0 || c->eof)
        return 1;
    return wait_fd(c->fd, POLLIN, tc_now_ms() + timeout_ms) == TC_OK;
}

/* ---- response parsing ---- */

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void trim_range(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

int tc_parse_status_line(const char *line, size_t n, tc_response_t *r)
{
    char tmp[256];
    if (n >= sizeof(tmp) || n < 12)
        return TC_PROTO;
    memcpy(tmp, line, n);
    tmp[n] = '\0';
    if (strncmp(tmp, "HTTP/1.", 7) != 0 || (tmp[7] != '0' && tmp[7] != '1') || tmp[8] != ' ')
        return TC_PROTO;
    if (!isdigit((unsigned char)tmp[9]) || !isdigit((unsigned char)tmp[10]) ||
        !isdigit((unsigned char)tmp[11]) || (tmp[12] != ' ' && tmp[12] != '\0'))
        return TC_PROTO;
    r->version = tmp[7] == '1' ? 11 : 10;
    r->status = atoi(tmp + 9);
    snprintf(r->reason, sizeof(r->reason), "%.63s", tmp[12] ? tmp + 13 : "");
    return TC_OK;
}

int tc_add_header(tc_response_t *r, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line)
        return TC_PROTO;
    for (const char *q = line; q < colon; q++)
        if (*q == ' ' || *q == '\t')
            return TC_PROTO;
    const char *v = colon + 1;
    size_t vn = n - (size_t)(v - line);
    trim_range(&v, &vn);
    tc_header_t *nh = realloc(r->headers, (r->nheaders + 1) * sizeof(*nh));
    if (!nh)
        return TC_SYSERR;
    r->headers = nh;
    nh[r->nheaders].name = dup_range(line, (size_t)(colon - line));
    nh[r->nheaders].value = dup_range(v, vn);
    r->nheaders++;
    return TC_OK;
}

/* Reads the status line and headers; consumes them from the buffer. */
static int read_head(tc_conn_t *c, tc_response_t *r, int64_t deadline)
{
    size_t eol;
    int rc = need_line(c, 0, &eol, deadline);
    if (rc != TC_OK)
        return rc;
    rc = tc_parse_status_line(c->buf, eol, r);
    if (rc != TC_OK)
        return rc;
    size_t pos = eol + 2;
    for (;;) {
        rc = need_line(c, pos, &eol, deadline);
        if (rc != TC_OK)
            return rc;
        if (eol == pos)
            break;
        rc = tc_add_header(r, c->buf + pos, eol - pos);
        if (rc != TC_OK)
            return rc;
        pos = eol + 2;
    }
    consume(c, eol + 2);
    return TC_OK;
}

static int set_body(tc_response_t *r, const char *data, size_t n)
{
    free(r->body);
    r->body = dup_range(data ? data : "", n);
    r->body_len = n;
    return r->body ? TC_OK : TC_SYSERR;
}

static int read_length_body(tc_conn_t *c, tc_response_t *r, size_t n, int64_t deadline)
{
    int rc = need(c, n, deadline);
    if (rc != TC_OK)
        return rc;
    rc = set_body(r, c->buf, n);
    consume(c, n);
    return rc;
}

static int read_until_close(tc_conn_t *c, tc_response_t *r, int64_t deadline)
{
    int rc;
    do {
        rc = fill(c, deadline);
    } while (rc == TC_OK);
    if (rc != TC_CLOSED)
        return rc;
    r->close_delimited = 1;
    rc = set_body(r, c->buf, c->len);
    consume(c, c->len);
    return rc;
}

/* Appends to a growing body. */
static int append_body(tc_response_t *r, size_t *cap, const char *data, size_t n)
{
    if (r->body_len + n + 1 > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < r->body_len + n + 1)
            nc *= 2;
        char *nb = realloc(r->body, nc);
        if (!nb)
            return TC_SYSERR;
        r->body = nb;
        *cap = nc;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return TC_OK;
}

static int parse_chunk_size(const char *s, size_t n, size_t *size)
{
    size_t v = 0, i = 0;
    for (; i < n && isxdigit((unsigned char)s[i]); i++) {
        int d = isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower((unsigned char)s[i]) - 'a' + 10);
        if (v > (SIZE_MAX >> 4))
            return TC_PROTO;
        v = (v << 4) | (size_t)d;
    }
    if (i == 0 || (i < n && s[i] != ';' && s[i] != ' ' && s[i] != '\t'))
        return TC_PROTO;
    *size = v;
    return TC_OK;
}

static int read_trailers(tc_conn_t *c, tc_response_t *r, size_t pos, int64_t deadline)
{
    size_t start = pos, eol;
    for (;;) {
        int rc = need_line(c, pos, &eol, deadline);
        if (rc != TC_OK)
            return rc;
        if (eol == pos)
            break;
        pos = eol + 2;
    }
    free(r->trailers);
    r->trailers = dup_range(c->buf + start, pos - start);
    consume(c, eol + 2);
    return TC_OK;
}

static int read_chunked_body(tc_conn_t *c, tc_response_t *r, int64_t deadline)
{
    size_t cap = 0, pos = 0, eol, size;
    r->chunked = 1;
    if (set_body(r, "", 0) != TC_OK)
        return TC_SYSERR;
    cap = 1;
    for (;;) {
        int rc = need_line(c, pos, &eol, deadline);
        if (rc != TC_OK)
            return rc;
        rc = parse_chunk_size(c->buf + pos, eol - pos, &size);
        if (rc != TC_OK)
            return rc;
        pos = eol + 2;
        if (size == 0)
            return read_trailers(c, r, pos, deadline);
        rc = need(c, pos + size + 2, deadline);
        if (rc != TC_OK)
            return rc;
        if (c->buf[pos + size] != '\r' || c->buf[pos + size + 1] != '\n')
            return TC_PROTO;
        rc = append_body(r, &cap, c->buf + pos, size);
        if (rc != TC_OK)
            return rc;
        pos += size + 2; /* consumed at the end, with the trailers */
    }
}

static int parse_content_length(const char *v, size_t *n)
{
    if (!v || !*v)
        return TC_PROTO;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end != '\0' || !isdigit((unsigned char)*v))
        return TC_PROTO;
    *n = (size_t)x;
    return TC_OK;
}

static int has_no_body(const tc_response_t *r, int head_request)
{
    return head_request || r->status < 200 || r->status == 204 || r->status == 304;
}

int tc_read_response(tc_conn_t *c, tc_response_t *r, int head_request, int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    memset(r, 0, sizeof(*r));
    int rc = read_head(c, r, deadline);
    if (rc != TC_OK)
        return rc;
    if (has_no_body(r, head_request))
        return set_body(r, "", 0);
    if (tc_header_has_token(r, "Transfer-Encoding", "chunked"))
        return read_chunked_body(c, r, deadline);
    const char *cl = tc_header(r, "Content-Length");
    if (cl) {
        size_t n;
        rc = parse_content_length(cl, &n);
        return rc != TC_OK ? rc : read_length_body(c, r, n, deadline);
    }
    return read_until_close(c, r, deadline);
}

void tc_response_free(tc_response_t *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    free(r->trailers);
    memset(r, 0, sizeof(*r));
}

const char *tc_header(const tc_response_t *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

int tc_header_has_token(const tc_response_t *r, const char *name, const char *token)
{
    size_t tn = strlen(token);
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, name) != 0)
            continue;
        const char *p = r->headers[i].value;
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
            const char *end = p;
            while (*end && *end != ',')
                end++;
            size_t n = (size_t)(end - p);
            while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            if (n == tn && strncasecmp(p, token, tn) == 0)
                return 1;
            p = end;
        }
    }
    return 0;
}

int tc_wait_close(tc_conn_t *c, int timeout_ms, size_t *extra)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    size_t total = c->len;
    consume(c, c->len);
    int rc;
    do {
        rc = fill(c, deadline);
        total += c->len;
        consume(c, c->len);
    } while (rc == TC_OK);
    if (extra)
        *extra = total;
    return rc;
}

int tc_exchange(int port, const char *raw, tc_response_t *r, int timeout_ms)
{
    tc_conn_t c;
    memset(r, 0, sizeof(*r));
    int rc = tc_connect(&c, port, timeout_ms);
    if (rc != TC_OK)
        return rc;
    rc = tc_send_str(&c, raw);
    if (rc == TC_OK)
        rc = tc_read_response(&c, r, strncmp(raw, "HEAD ", 5) == 0, timeout_ms);
    tc_close(&c);
    return rc;
}
