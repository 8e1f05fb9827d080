/* The request side of the HTTP/1.1 engine: the driver.
 *
 * The engine reads the request line itself (http1_line.c), lets llhttp read
 * the field lines behind a strict grammar scan (http1_fields.c), and frames
 * the body itself (a count for Content-Length, http1_chunk.c for chunked).
 * This file adds what a server needs around that: limits checked while the
 * bytes arrive (never after buffering a whole line), the request-smuggling
 * rules for the framing headers, a copy of the head in an arena that is
 * reused across requests, and exactly one event per mpm__h1_feed() call.
 *
 * Bare LF policy: a line end is CRLF everywhere (request line, fields,
 * chunk lines, trailers); a bare LF or bare CR is answered 400. RFC 9112
 * §2.2 allows either that or accepting LF; refusing it means no peer can
 * read our line ends differently. */
#include "http1_impl.h"

#include <mpmlib/errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    ST_IDLE = MPM__H1_ST_IDLE,
    ST_HEAD = MPM__H1_ST_HEAD,
    ST_BODY = MPM__H1_ST_BODY,
    ST_DONE = MPM__H1_ST_DONE,
    ST_DEAD = MPM__H1_ST_DEAD
};
enum { SPAN_NONE, SPAN_NAME, SPAN_VALUE }; /* h->msg.span */

#define ARENA_FIRST 2048u /* most request heads fit: one allocation */
#define HDRS_FIRST 16u
/* What llhttp is given in place of the request line the engine read. */
static const char canned_line[] = "GET / HTTP/1.1\r\n";

static mpm__h1_t *self(llhttp_t *p)
{
    return p->data;
}

/* Records the answer for the first problem found; the nonzero return makes
 * llhttp stop with an error. */
int mpm__h1_fail(mpm__h1_t *h, int status, const char *why)
{
    if (!h->error_status) {
        h->error_status = status;
        h->error_why = why;
    }
    return HPE_USER;
}

static int fail(mpm__h1_t *h, int status, const char *why)
{
    return mpm__h1_fail(h, status, why);
}

/* ---- the arena: the head's strings, NUL-terminated ---- */

/* Makes room for `more` bytes. Doubling keeps appends amortized O(1); the
 * cap derived from the limits means a client can never make it grow past
 * what a maximal legal head needs. */
static int arena_reserve(mpm__h1_t *h, size_t more)
{
    size_t want = h->arena_len + more;
    if (want <= h->arena_cap)
        return 0;
    if (want > h->arena_max)
        return MPM_ERANGE;
    size_t cap = h->arena_cap ? h->arena_cap : ARENA_FIRST;
    while (cap < want)
        cap *= 2;
    if (cap > h->arena_max)
        cap = h->arena_max;
    char *p = realloc(h->arena, cap);
    if (!p)
        return MPM_ENOMEM;
    h->arena = p;
    h->arena_cap = cap;
    return 0;
}

static int arena_fail(mpm__h1_t *h, int rc)
{
    return rc == MPM_ENOMEM ? fail(h, 500, "out of memory")
                            : fail(h, 431, "request head too large");
}

/* Appends bytes, always leaving room for the terminating NUL. */
int mpm__h1_arena_put(mpm__h1_t *h, const char *at, size_t len)
{
    int rc = arena_reserve(h, len + 1);
    if (rc)
        return arena_fail(h, rc);
    memcpy(h->arena + h->arena_len, at, len);
    h->arena_len += len;
    return 0;
}

int mpm__h1_arena_end_string(mpm__h1_t *h)
{
    int rc = arena_reserve(h, 1);
    if (rc)
        return arena_fail(h, rc);
    h->arena[h->arena_len++] = '\0';
    return 0;
}

int mpm__h1_arena_copy(mpm__h1_t *h, size_t off, size_t n, size_t *at)
{
    int rc = arena_reserve(h, n + 1); /* first: the source may move */
    if (rc)
        return arena_fail(h, rc);
    *at = h->arena_len;
    memcpy(h->arena + h->arena_len, h->arena + off, n);
    h->arena_len += n;
    h->arena[h->arena_len++] = '\0';
    return 0;
}

/* The largest arena a legal head needs: method, target, the path and
 * authority copies (each bounded by the request line), a Host name, and
 * every header's name and value. */
static size_t arena_max_for(const mpm__h1_limits_t *lim)
{
    return 3 * lim->request_line + 32 + (size_t)lim->fields * (lim->field_size + 4);
}

/* Room for one more header entry, growing by doubling up to limits.fields
 * plus one (the Host an absolute-form target may add). */
static int hdrs_reserve(mpm__h1_t *h)
{
    if (h->head.nheaders < h->hdr_cap)
        return 0;
    unsigned cap = h->hdr_cap ? h->hdr_cap * 2 : HDRS_FIRST;
    if (cap > h->limits.fields + 1)
        cap = h->limits.fields + 1;
    mpm__h1_header_t *hdrs = realloc(h->hdrs, cap * sizeof(*hdrs));
    if (!hdrs)
        return fail(h, 500, "out of memory");
    h->hdrs = hdrs;
    size_t *off = realloc(h->hdr_off, 2 * (size_t)cap * sizeof(*off));
    if (!off)
        return fail(h, 500, "out of memory");
    h->hdr_off = off;
    h->hdr_cap = cap;
    return 0;
}

/* ---- header lines (llhttp reads them; trailers never reach it) ---- */

/* One header line is measured as "name: value", however it was spaced. */
static int field_grow(mpm__h1_t *h, size_t len)
{
    h->msg.field_len += len;
    if (h->msg.field_len + 2 > h->limits.field_size)
        return fail(h, 431, "header field too long");
    return 0;
}

static int header_begin(mpm__h1_t *h)
{
    mpm__h1_msg_t *m = &h->msg;
    if (m->nfields >= h->limits.fields)
        return fail(h, 431, "too many header fields");
    m->nfields++;
    m->field_len = 0;
    m->span = SPAN_NAME;
    m->name_off = h->arena_len;
    return hdrs_reserve(h);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    mpm__h1_t *h = self(p);
    int rc = 0;
    if (h->msg.span != SPAN_NAME)
        rc = header_begin(h);
    if (!rc)
        rc = field_grow(h, len);
    return rc ? rc : mpm__h1_arena_put(h, at, len);
}

static int on_header_field_complete(llhttp_t *p)
{
    mpm__h1_t *h = self(p);
    h->msg.span = SPAN_NONE;
    return mpm__h1_arena_end_string(h);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    mpm__h1_t *h = self(p);
    if (h->msg.span != SPAN_VALUE) {
        h->msg.span = SPAN_VALUE;
        h->msg.value_off = h->arena_len;
    }
    int rc = field_grow(h, len);
    return rc ? rc : mpm__h1_arena_put(h, at, len);
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Records the finished value: OWS stripped at both ends, NUL-terminated. */
static int value_store(mpm__h1_t *h)
{
    mpm__h1_msg_t *m = &h->msg;
    while (h->arena_len > m->value_off && is_ows(h->arena[h->arena_len - 1]))
        h->arena_len--;
    while (m->value_off < h->arena_len && is_ows(h->arena[m->value_off]))
        m->value_off++;
    int rc = mpm__h1_arena_end_string(h);
    if (rc)
        return rc;
    unsigned i = h->head.nheaders++;
    h->hdr_off[2 * i] = m->name_off;
    h->hdr_off[2 * i + 1] = m->value_off;
    return 0;
}

/* Connection is a comma-separated token list; only two tokens matter. */
static void note_connection(mpm__h1_msg_t *m, const char *v)
{
    while (*v) {
        v += strspn(v, " \t,");
        size_t n = strcspn(v, " \t,");
        if (n == 5 && !strncasecmp(v, "close", n))
            m->conn_close = 1;
        else if (n == 10 && !strncasecmp(v, "keep-alive", n))
            m->conn_keepalive = 1;
        v += n;
    }
}

/* Content-Length = 1*DIGIT (RFC 9110 §8.6): no sign, no list, no blank. */
static int note_length(mpm__h1_t *h, const char *v)
{
    mpm__h1_msg_t *m = &h->msg;
    if (m->lengths++)
        return fail(h, 400, "more than one Content-Length");
    if (m->encodings)
        return fail(h, 400, "Content-Length with Transfer-Encoding");
    if (!*v)
        return fail(h, 400, "empty Content-Length");
    uint64_t n = 0;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return fail(h, 400, "Content-Length is not a number");
        if (n > ((uint64_t)INT64_MAX - 9) / 10)
            return fail(h, 400, "Content-Length too large");
        n = n * 10 + (uint64_t)(*v - '0');
    }
    m->content_length = (int64_t)n;
    return 0;
}

/* One transfer-coding of the list (RFC 9112 §6.1, §7): chunked must be
 * the last and appear once; any other coding is one we do not implement. */
static int note_coding(mpm__h1_t *h, const char *c, size_t n)
{
    mpm__h1_msg_t *m = &h->msg;
    for (size_t i = 0; i < n; i++)
        if (!mpm__h1_is_tchar((unsigned char)c[i]))
            return fail(h, 400, "malformed Transfer-Encoding");
    if (m->te_chunked_last)
        return fail(h, 400, "chunked is not the last transfer coding");
    if (n == 7 && !strncasecmp(c, "chunked", 7))
        m->te_chunked_last = 1;
    else
        m->te_other = 1;
    return 0;
}

static int note_encoding(mpm__h1_t *h, const char *v)
{
    mpm__h1_msg_t *m = &h->msg;
    m->encodings++;
    if (m->lengths)
        return fail(h, 400, "Content-Length with Transfer-Encoding");
    if (m->minor == 0) /* RFC 9112 §6.1: the framing of a 1.0 message with TE is faulty */
        return fail(h, 400, "Transfer-Encoding in an HTTP/1.0 request");
    for (;;) { /* #element list: empty elements are allowed */
        v += strspn(v, " \t,");
        if (!*v)
            return 0;
        size_t n = strcspn(v, ",");
        size_t t = n;
        while (t && is_ows(v[t - 1]))
            t--;
        int rc = note_coding(h, v, t);
        if (rc)
            return rc;
        v += n;
    }
}

static int note_host(mpm__h1_t *h, const char *v)
{
    if (h->msg.hosts++)
        return fail(h, 400, "more than one Host");
    if (!mpm__h1_authority_ok(v, strlen(v), 0, 0))
        return fail(h, 400, "invalid Host");
    return 0;
}

/* Headers that shape the request are checked as they arrive: any request
 * that two parties could frame differently (CL + TE, two CLs, a coding
 * list not ending in chunked) is refused before its body is read. */
static int note_header(mpm__h1_t *h, const char *name, const char *value)
{
    mpm__h1_msg_t *m = &h->msg;
    if (!strcasecmp(name, "host"))
        return note_host(h, value);
    if (!strcasecmp(name, "content-length"))
        return note_length(h, value);
    if (!strcasecmp(name, "transfer-encoding"))
        return note_encoding(h, value);
    if (!strcasecmp(name, "connection"))
        note_connection(m, value);
    else if (!strcasecmp(name, "expect") && *value) {
        if (!strcasecmp(value, "100-continue"))
            m->expect_100 = 1;
        else
            m->expect_other = 1;
    }
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    mpm__h1_t *h = self(p);
    mpm__h1_msg_t *m = &h->msg;
    if (m->span != SPAN_VALUE) /* empty value: no span was reported */
        m->value_off = h->arena_len;
    m->span = SPAN_NONE;
    int rc = value_store(h);
    if (rc)
        return rc;
    return note_header(h, h->arena + m->name_off, h->arena + m->value_off);
}

/* ---- the end of the head ---- */

/* The checks that need the whole head. */
static int head_check(mpm__h1_t *h)
{
    const mpm__h1_msg_t *m = &h->msg;
    if (m->minor >= 1 && m->hosts == 0)
        return fail(h, 400, "HTTP/1.1 request without Host");
    if (m->encodings && !m->te_chunked_last)
        return fail(h, 400, "chunked is not the last transfer coding");
    if (m->te_other)
        return fail(h, 501, "unsupported transfer coding");
    if (m->expect_other)
        return fail(h, 417, "unsupported Expect");
    if (m->lengths && h->limits.body && (uint64_t)m->content_length > h->limits.body)
        return fail(h, 413, "request body too large");
    return 0;
}

/* RFC 9112 §3.2.2: with an absolute-form target, the host is the target's
 * authority and a Host field is ignored; handlers see it as Host. */
static int host_from_target(mpm__h1_t *h)
{
    mpm__h1_msg_t *m = &h->msg;
    for (unsigned i = 0; i < h->head.nheaders; i++) {
        if (!strcasecmp(h->arena + h->hdr_off[2 * i], "host")) {
            h->hdr_off[2 * i + 1] = m->host_off;
            return 0;
        }
    }
    int rc = hdrs_reserve(h); /* a 1.0 request without Host */
    size_t name_off = h->arena_len;
    if (!rc)
        rc = mpm__h1_arena_put(h, "Host", 4);
    if (!rc)
        rc = mpm__h1_arena_end_string(h);
    if (rc)
        return rc;
    unsigned i = h->head.nheaders++;
    h->hdr_off[2 * i] = name_off;
    h->hdr_off[2 * i + 1] = m->host_off;
    return 0;
}

static int client_keepalive(const mpm__h1_msg_t *m, int version)
{
    if (m->conn_close)
        return 0;
    return version == 11 || m->conn_keepalive;
}

/* Turns offsets into the pointers the caller sees; the arena stops moving
 * here (trailers are not stored). */
static int head_build(mpm__h1_t *h)
{
    const mpm__h1_msg_t *m = &h->msg;
    mpm__h1_head_t *hd = &h->head;
    if (m->absolute) {
        int rc = host_from_target(h);
        if (rc)
            return rc;
    }
    char *a = h->arena;
    hd->method = a + m->method_off;
    hd->target = a + m->target_off;
    hd->path = a + m->path_off;
    hd->query = hd->target[m->qpos] ? hd->target + m->qpos + 1 : hd->target + m->qpos;
    for (unsigned i = 0; i < hd->nheaders; i++) {
        h->hdrs[i].name = a + h->hdr_off[2 * i];
        h->hdrs[i].value = a + h->hdr_off[2 * i + 1];
    }
    hd->headers = h->hdrs;
    hd->version = m->minor ? 11 : 10;
    hd->is_head = m->method == HTTP_HEAD;
    hd->client_keepalive = client_keepalive(m, hd->version);
    hd->expect_continue = m->expect_100 && hd->version == 11;
    hd->chunked = m->encodings != 0;
    hd->content_length = hd->chunked ? -1 : m->lengths ? m->content_length : 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    mpm__h1_t *h = self(p);
    int rc = head_check(h);
    if (!rc)
        rc = head_build(h);
    if (rc)
        return rc;
    h->paused_at_head = 1; /* llhttp sees nothing more of this request */
    return HPE_PAUSED;
}

static const llhttp_settings_t h1_settings = {
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
};

/* ---- the public side ---- */

int mpm__h1_init(mpm__h1_t *h, const mpm__h1_limits_t *lim)
{
    if (!h || !lim)
        return MPM_EINVAL;
    memset(h, 0, sizeof(*h));
    h->limits = *lim;
    h->arena_max = arena_max_for(lim);
    llhttp_init(&h->parser, HTTP_REQUEST, &h1_settings);
    h->parser.data = h;
    return 0;
}

void mpm__h1_free(mpm__h1_t *h)
{
    free(h->arena);
    free(h->hdrs);
    free(h->hdr_off);
    h->arena = NULL;
    h->hdrs = NULL;
    h->hdr_off = NULL;
    h->arena_cap = h->arena_len = 0;
    h->hdr_cap = 0;
    memset(&h->head, 0, sizeof(h->head)); /* its strings were in the arena */
}

static void error_event(const mpm__h1_t *h, mpm__h1_event_t *ev)
{
    ev->type = MPM__H1_ERROR;
    ev->status = h->error_status;
    ev->why = h->error_why;
}

/* The engine dies here: the error is reported now and on every later call. */
static size_t die(mpm__h1_t *h, mpm__h1_event_t *ev)
{
    if (!h->error_status)
        fail(h, 400, "malformed request");
    h->state = ST_DEAD;
    error_event(h, ev);
    return 0;
}

/* The request line: the engine's own scan, then llhttp gets a canned line
 * so that it starts reading field lines. */
static size_t line_feed(mpm__h1_t *h, const char *data, size_t len)
{
    size_t used = mpm__h1_line_scan(h, data, len);
    if (h->error_status || !mpm__h1_line_done(h))
        return used;
    if (mpm__h1_line_finish(h))
        return used;
    if (llhttp_execute(&h->parser, canned_line, sizeof(canned_line) - 1) != HPE_OK)
        fail(h, 500, "parser refused the request line");
    return used;
}

/* The field lines: the grammar scan finds how far the bytes are good,
 * llhttp reads that far, pausing at the end of the head. */
static size_t fields_feed(mpm__h1_t *h, const char *data, size_t len, mpm__h1_event_t *ev)
{
    int status = 400;
    const char *why = NULL;
    size_t end = mpm__h1_fields_scan(h, data, len, 0, &status, &why);
    llhttp_errno_t err = llhttp_execute(&h->parser, data, end);
    if (err == HPE_PAUSED && h->paused_at_head) {
        h->state = ST_BODY;
        ev->type = MPM__H1_HEAD;
        return end; /* the scan stopped right after the empty line */
    }
    if (err != HPE_OK) {
        const char *reason = llhttp_get_error_reason(&h->parser);
        return fail(h, 400, reason ? reason : "malformed header field"), 0;
    }
    if (why) /* llhttp found nothing earlier: report the scan's find */
        fail(h, status, why);
    else if (h->msg.fs_done) /* the two disagree on where the head ends */
        fail(h, 400, "malformed header section");
    return end;
}

/* A Content-Length body: counted down, END once all of it was delivered. */
static size_t length_feed(mpm__h1_t *h, const char *data, size_t len, mpm__h1_event_t *ev)
{
    mpm__h1_msg_t *m = &h->msg;
    uint64_t left = (uint64_t)h->head.content_length - m->body_seen;
    if (left == 0) {
        ev->type = MPM__H1_END;
        return 0;
    }
    size_t n = left < len ? (size_t)left : len;
    if (n) {
        m->body_seen += n;
        ev->type = MPM__H1_BODY;
        ev->data = data;
        ev->len = n;
    }
    return n;
}

static size_t run(mpm__h1_t *h, const char *data, size_t len, mpm__h1_event_t *ev)
{
    size_t used = 0;
    if (h->state == ST_IDLE || (h->state == ST_HEAD && !mpm__h1_line_done(h)))
        used = line_feed(h, data, len);
    if (!h->error_status && h->state == ST_HEAD && mpm__h1_line_done(h))
        used += fields_feed(h, data + used, len - used, ev);
    else if (!h->error_status && h->state == ST_BODY)
        used =
            h->head.chunked ? mpm__h1_chunk_feed(h, data, len, ev) : length_feed(h, data, len, ev);
    if (h->error_status)
        return die(h, ev);
    if (ev->type == MPM__H1_END)
        h->state = ST_DONE;
    return used;
}

size_t mpm__h1_feed(mpm__h1_t *h, const char *data, size_t len, mpm__h1_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = MPM__H1_NEED_MORE;
    if (h->state == ST_DEAD) {
        error_event(h, ev);
        return 0;
    }
    if (h->state == ST_DONE)
        return 0; /* pipelined bytes wait for mpm__h1_next() */
    if (!data) {
        data = "";
        len = 0;
    }
    return run(h, data, len, ev);
}

/* True while the current request still expects body bytes. */
static int body_incomplete(const mpm__h1_t *h)
{
    if (h->head.chunked)
        return 1;
    return h->msg.body_seen < (uint64_t)h->head.content_length;
}

int mpm__h1_eof(mpm__h1_t *h)
{
    if (h->state == ST_HEAD)
        return 1;
    if (h->state == ST_BODY)
        return body_incomplete(h);
    return 0;
}

int mpm__h1_idle(const mpm__h1_t *h)
{
    return h->state == ST_IDLE;
}

const mpm__h1_head_t *mpm__h1_head(const mpm__h1_t *h)
{
    return &h->head;
}

int mpm__h1_is_head_request(const mpm__h1_t *h)
{
    if (!h)
        return 0;
    return h->head.method ? h->head.is_head : h->msg.method == HTTP_HEAD;
}

void mpm__h1_next(mpm__h1_t *h)
{
    if (h->state == ST_DEAD)
        return;
    /* A fresh llhttp state: nothing of the previous message may leak into
     * the next one. */
    llhttp_reset(&h->parser);
    memset(&h->msg, 0, sizeof(h->msg));
    memset(&h->head, 0, sizeof(h->head));
    h->arena_len = 0;
    h->state = ST_IDLE;
    h->paused_at_head = 0;
}
