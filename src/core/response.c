/* The response as the handler writes it: status, headers, then a whole body,
 * a stream, or a file. Heads and bodies go out in one sendmsg where they can. */
#include "conn.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Response heads are formatted on the stack up to this size, else on the
 * heap (handlers with very large headers). */
#define MPM__HEAD_STACK 2048
#define MPM__HEAD_MAX (1024 * 1024)
#define MPM__RESP_STRINGS_MAX (256 * 1024)

static const char *const managed_headers[] = {"date", "content-length", "transfer-encoding",
                                              "connection"};

static int header_text_ok(const char *s, int is_name)
{
    if (!s || (is_name && !*s))
        return 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\r' || ch == '\n' || (is_name && (ch <= ' ' || ch == ':' || ch >= 0x7f)))
            return 0;
    }
    return 1;
}

static int header_is_managed(const char *name)
{
    for (size_t i = 0; i < sizeof(managed_headers) / sizeof(managed_headers[0]); i++)
        if (strcasecmp(name, managed_headers[i]) == 0)
            return 1;
    return 0;
}

static int grow_headers(mpm__resp_headers_t *h, size_t need)
{
    if (h->n == h->cap) {
        unsigned ncap = h->cap ? h->cap * 2 : 8;
        mpm__h1_header_t *l = realloc(h->list, ncap * sizeof(*l));
        if (!l)
            return MPM_ENOMEM;
        h->list = l;
        h->cap = ncap;
    }
    if (h->used + need > h->size) {
        size_t nsize = h->size ? h->size : 512;
        while (nsize < h->used + need)
            nsize *= 2;
        if (nsize > MPM__RESP_STRINGS_MAX)
            return MPM_ENOMEM;
        char *p = realloc(h->strings, nsize);
        if (!p)
            return MPM_ENOMEM;
        /* Entries point into the old block: rebase them. */
        for (unsigned i = 0; i < h->n; i++) {
            h->list[i].name = p + (h->list[i].name - h->strings);
            h->list[i].value = p + (h->list[i].value - h->strings);
        }
        h->strings = p;
        h->size = nsize;
    }
    return 0;
}

/* "Connection: close" is the handler asking to end the connection after
 * this response: a keep-alive decision, not a header to copy. */
static int is_connection_close(const char *name, const char *value)
{
    return strcasecmp(name, "connection") == 0 && strcasecmp(value, "close") == 0;
}

int mpm_response_add_header(mpm_request_t *req, const char *name, const char *value)
{
    if (!header_text_ok(name, 1) || !header_text_ok(value, 0))
        return MPM_EINVAL;
    int close_it = is_connection_close(name, value);
    if (header_is_managed(name) && !close_it)
        return MPM_EINVAL;
    if (req->head_sent)
        return MPM_ESTATE;
    if (close_it) {
        req->keepalive = 0;
        return 0;
    }
    size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
    mpm__resp_headers_t *h = req->headers;
    int rc = grow_headers(h, nl + vl);
    if (rc < 0)
        return rc;
    char *p = h->strings + h->used;
    memcpy(p, name, nl);
    memcpy(p + nl, value, vl);
    h->list[h->n].name = p;
    h->list[h->n].value = p + nl;
    h->n++;
    h->used += nl + vl;
    return 0;
}

void mpm__resp_headers_free(mpm__resp_headers_t *h)
{
    free(h->list);
    free(h->strings);
    memset(h, 0, sizeof(*h));
}

int mpm_response_set_status(mpm_request_t *req, int status)
{
    if (status < 200 || status > 599)
        return MPM_EINVAL;
    if (req->head_sent)
        return MPM_ESTATE;
    req->status = status;
    return 0;
}

/* Keep-alive needs the rest of the request body read; if that is too much to
 * discard (or the client waits for 100-continue), close after this response.
 * A stop that began while the handler ran also closes (DESIGN §4): decided
 * now, as the head goes out, not when the request came in. */
static void settle_keepalive(mpm_request_t *req)
{
    if (req->keepalive && mpm__server_poll_stop(req->conn->srv) != MPM__STOP_NONE)
        req->keepalive = 0;
    if (!mpm__request_body_pending(req))
        return;
    const mpm__h1_head_t *hd = req->head;
    if (hd->expect_continue && !req->continue_sent)
        req->keepalive = 0;
    else if (!hd->chunked &&
             (uint64_t)hd->content_length - req->body_received > MPM__CONN_DISCARD_MAX)
        req->keepalive = 0; /* a chunked rest is discarded, or the connection closed, later */
}

/* Formats the head into stack (or a heap block returned in *heap). */
static int format_head(mpm_request_t *req, int64_t content_length, char *stack, char **heap)
{
    settle_keepalive(req);
    mpm__h1_response_t r = {
        .status = req->status,
        .headers = req->headers->list,
        .nheaders = req->headers->n,
        .content_length = content_length,
        .keepalive = req->keepalive,
    };
    char *buf = stack;
    size_t cap = MPM__HEAD_STACK;
    *heap = NULL;
    for (;;) {
        int len = mpm__h1_format_head(req->conn->h1, &r, buf, cap, &req->framing, &req->keepalive);
        if (len != MPM_ERANGE || cap >= MPM__HEAD_MAX)
            return len;
        cap *= 2;
        char *p = realloc(*heap, cap);
        if (!p)
            return MPM_ENOMEM;
        *heap = buf = p;
    }
}

/* Sends the head plus up to three body pieces in one call. */
static int send_with_head(mpm_request_t *req, int64_t content_length, struct iovec *body, int nbody)
{
    char stack[MPM__HEAD_STACK], *heap;
    int len = format_head(req, content_length, stack, &heap);
    if (len < 0) {
        free(heap);
        return len;
    }
    req->head_sent = 1;
    struct iovec iov[4] = {{.iov_base = heap ? heap : stack, .iov_len = (size_t)len}};
    int n = 1;
    for (int i = 0; i < nbody && req->framing != MPM__H1_NO_BODY; i++)
        iov[n++] = body[i];
    int rc = mpm__conn_sendv_all(req->conn, iov, n);
    free(heap);
    return rc;
}

static void count_sent(mpm_request_t *req, size_t n)
{
    if (req->framing != MPM__H1_NO_BODY)
        req->bytes_sent += n;
}

int mpm_response_send(mpm_request_t *req, const void *body, size_t len)
{
    if (req->head_sent)
        return MPM_ESTATE;
    struct iovec b = {.iov_base = (void *)body, .iov_len = body ? len : 0};
    req->finished = 1;
    int rc = send_with_head(req, (int64_t)b.iov_len, &b, 1);
    count_sent(req, b.iov_len);
    return rc;
}

/* One piece of a streamed body in the framing chosen at head time. */
static int frame_chunk(mpm_request_t *req, const void *data, size_t len, char *sizebuf,
                       struct iovec *out)
{
    out[0] = (struct iovec){.iov_base = (void *)data, .iov_len = len};
    if (req->framing != MPM__H1_CHUNKED)
        return 1;
    int sl = mpm__h1_format_chunk_size(len, sizebuf);
    out[0] = (struct iovec){.iov_base = sizebuf, .iov_len = (size_t)sl};
    out[1] = (struct iovec){.iov_base = (void *)data, .iov_len = len};
    out[2] = (struct iovec){.iov_base = "\r\n", .iov_len = 2};
    return 3;
}

int mpm_response_write(mpm_request_t *req, const void *data, size_t len)
{
    if (req->finished)
        return MPM_ESTATE;
    char sizebuf[24];
    struct iovec body[3];
    int n = 0;
    if (!req->head_sent) {
        /* The framing is only known once the head is formatted. */
        req->framing = req->head->version >= 11 ? MPM__H1_CHUNKED : MPM__H1_UNTIL_CLOSE;
        if (len)
            n = frame_chunk(req, data, len, sizebuf, body);
        int rc = send_with_head(req, -1, body, n);
        count_sent(req, len);
        return rc;
    }
    if (len == 0 || req->framing == MPM__H1_NO_BODY)
        return 0;
    n = frame_chunk(req, data, len, sizebuf, body);
    count_sent(req, len);
    return mpm__conn_sendv_all(req->conn, body, n);
}

int mpm_response_end(mpm_request_t *req)
{
    if (req->finished)
        return MPM_ESTATE;
    if (!req->head_sent) {
        int rc = mpm_response_write(req, NULL, 0);
        if (rc < 0)
            return rc;
    }
    req->finished = 1;
    if (req->framing != MPM__H1_CHUNKED)
        return 0;
    struct iovec last = {.iov_base = MPM__H1_LAST_CHUNK, .iov_len = sizeof(MPM__H1_LAST_CHUNK) - 1};
    return mpm__conn_sendv_all(req->conn, &last, 1);
}

/* Emulates sendfile with read+send for transports without it (TLS). */
static ssize_t copy_file_piece(mpm__conn_t *c, int fd, off_t *off, size_t len)
{
    char buf[16384];
    ssize_t n = pread(fd, buf, len < sizeof(buf) ? len : sizeof(buf), *off);
    if (n <= 0)
        return n < 0 ? -errno : 0;
    struct iovec iov = {.iov_base = buf, .iov_len = (size_t)n};
    int rc = mpm__conn_sendv_all(c, &iov, 1);
    if (rc < 0)
        return rc;
    *off += n;
    return n;
}

static int send_file_body(mpm_request_t *req, int fd, off_t off, size_t len)
{
    mpm__conn_t *c = req->conn;
    while (len > 0) {
        ssize_t n = mpm__conn_out_pending(c) ? MPM__WANT_WRITE
                    : c->tp->sendfile       ? c->tp->sendfile(c, fd, &off, len)
                                            : copy_file_piece(c, fd, &off, len);
        if (mpm__would_block(n)) {
            /* The rest is left to whoever drives the connection next when
             * the strategy finishes writes itself (the handler's fd is
             * duplicated); else the queued head goes first, or we wait. */
            if (mpm__conn_file_defer(c, fd, off, len) == 0) {
                req->bytes_sent += (uint64_t)len;
                return 0;
            }
            int rc = mpm__conn_out_pending(c) ? mpm__conn_out_flush(c) : mpm__conn_wait_writable(c, n);
            if (rc < 0)
                return rc;
            continue;
        }
        if (n <= 0) {
            /* The file shrank or failed under us: the promised length cannot
             * be delivered, so the connection must not carry another reply. */
            c->broken = 1;
            return n < 0 ? (int)n : MPM_EPROTO;
        }
        mpm__conn_wrote(c);
        req->bytes_sent += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* The range must be inside a regular file before anything is sent: once the
 * head promised len bytes, a short file could only end in a broken
 * connection. */
static int check_file_range(int fd, off_t offset, size_t len)
{
    struct stat st;
    if (fd < 0 || offset < 0)
        return MPM_EINVAL;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return MPM_EINVAL;
    if (offset > st.st_size || len > (uint64_t)(st.st_size - offset))
        return MPM_ERANGE;
    return 0;
}

int mpm_response_send_file(mpm_request_t *req, int fd, off_t offset, size_t len)
{
    if (req->head_sent)
        return MPM_ESTATE;
    int rc = check_file_range(fd, offset, len);
    if (rc < 0)
        return rc;
    req->finished = 1;
    rc = send_with_head(req, (int64_t)len, NULL, 0);
    if (rc < 0 || req->framing == MPM__H1_NO_BODY)
        return rc;
    return send_file_body(req, fd, offset, len);
}

int mpm_response_started(const mpm_request_t *req)
{
    return req->head_sent ? 1 : 0;
}

/* The library's 500 in place of the handler's response: the host's error
 * page, or a plain text one. */
static void send_library_500(mpm_request_t *req)
{
    char body[MPM__ERROR_BODY_MAX];
    size_t len = 0;
    const char *type;
    req->status = 500;
    req->headers->n = 0;
    req->headers->used = 0;
    (void)mpm__error_page(req->conn, 500, req, req->id, body, &len, &type);
    (void)mpm_response_add_header(req, "Content-Type", type);
    (void)mpm_response_send(req, body, len);
}

int mpm_response_abort(mpm_request_t *req)
{
    if (req->finished || req->aborted)
        return MPM_ESTATE;
    req->aborted = 1;
    if (!req->head_sent) {
        req->keepalive = 0;
        send_library_500(req);
        return 0;
    }
    mpm__conn_t *c = req->conn;
    req->finished = 1;
    req->keepalive = 0;
    c->broken = 1; /* nothing more goes out: no last chunk, no lingering */
    if (req->framing == MPM__H1_UNTIL_CLOSE)
        c->reset_on_close = 1;
    return 0;
}

void mpm__response_complete(mpm_request_t *req)
{
    if (req->finished)
        return;
    if (!req->head_sent) {
        mpm__log(req->conn->srv, MPM_LOG_ERROR, "handler returned without responding to %s %s",
                 req->head->method, req->head->target);
        send_library_500(req);
        return;
    }
    (void)mpm_response_end(req);
}
