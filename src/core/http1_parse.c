/* The request side of the HTTP/1.1 engine: glue over llhttp.
 *
 * llhttp does the byte-level grammar. This file adds what a server needs on
 * top of it: limits checked while the bytes arrive (never after buffering a
 * whole line), the request-smuggling rules, a copy of the head in an arena
 * that is reused across requests, and exactly one event per mpm__h1_feed()
 * call. llhttp pauses (HPE_PAUSED) at the head, at every chunk header and at
 * the end of the message; the pause position tells how much input belongs
 * to the event being reported. */
#include "http1.h"

#include <mpmlib/errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { ST_IDLE, ST_HEAD, ST_BODY, ST_DONE, ST_DEAD };    /* h->state */
enum { PAUSE_NONE, PAUSE_HEAD, PAUSE_CHUNK, PAUSE_END }; /* h->paused_for */
enum { SPAN_NONE, SPAN_NAME, SPAN_VALUE };               /* h->msg.span */

#define ARENA_FIRST 2048u /* most request heads fit: one allocation */
#define HDRS_FIRST 16u
#define HTTP_SLASH_LEN 5u /* "HTTP/" before the version digits */

static mpm__h1_t *self(llhttp_t *p)
{
    return p->data;
}

/* Records the answer for the first problem found; the nonzero return makes
 * llhttp stop with an error. */
static int fail(mpm__h1_t *h, int status, const char *why)
{
    if (!h->error_status) {
        h->error_status = status;
        h->error_why = why;
    }
    return HPE_USER;
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
static int arena_put(mpm__h1_t *h, const char *at, size_t len)
{
    int rc = arena_reserve(h, len + 1);
    if (rc)
        return arena_fail(h, rc);
    memcpy(h->arena + h->arena_len, at, len);
    h->arena_len += len;
    return 0;
}

static int arena_end_string(mpm__h1_t *h)
{
    int rc = arena_reserve(h, 1);
    if (rc)
        return arena_fail(h, rc);
    h->arena[h->arena_len++] = '\0';
    return 0;
}

/* The largest arena a legal head needs: method, target and the path copy
 * (each bounded by the request line), and every header's name and value. */
static size_t arena_max_for(const mpm__h1_limits_t *lim)
{
    return 2 * lim->request_line + 16 + (size_t)lim->fields * (lim->field_size + 4);
}

/* Room for one more header entry, growing by doubling up to limits.fields. */
static int hdrs_reserve(mpm__h1_t *h)
{
    if (h->head.nheaders < h->hdr_cap)
        return 0;
    unsigned cap = h->hdr_cap ? h->hdr_cap * 2 : HDRS_FIRST;
    if (cap > h->limits.fields)
        cap = h->limits.fields;
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

/* ---- the request line ---- */

/* Counts request-line bytes as llhttp hands them over, so an endless line
 * is refused as soon as it passes the limit. */
static int line_grow(mpm__h1_t *h, size_t len)
{
    h->msg.line_len += len;
    if (h->msg.line_len > h->limits.request_line)
        return fail(h, 414, "request line too long");
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    mpm__h1_t *h = self(p);
    h->state = ST_HEAD;
    h->msg.method_off = h->arena_len;
    return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len)
{
    mpm__h1_t *h = self(p);
    int rc = line_grow(h, len);
    return rc ? rc : arena_put(h, at, len);
}

static int on_method_complete(llhttp_t *p)
{
    mpm__h1_t *h = self(p);
    if (p->method == HTTP_CONNECT)
        return fail(h, 501, "CONNECT not supported");
    int rc = arena_end_string(h);
    if (!rc)
        rc = line_grow(h, 1); /* the SP */
    h->msg.target_off = h->arena_len;
    return rc;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    mpm__h1_t *h = self(p);
    int rc = line_grow(h, len);
    return rc ? rc : arena_put(h, at, len);
}

static int on_url_complete(llhttp_t *p)
{
    mpm__h1_t *h = self(p);
    int rc = arena_end_string(h);
    return rc ? rc : line_grow(h, 1 + HTTP_SLASH_LEN);
}

/* Keeps the first version bytes: when llhttp rejects the version we still
 * need to tell "HTTP/3.0" (505) from garbage (400). */
static int on_version(llhttp_t *p, const char *at, size_t len)
{
    mpm__h1_t *h = self(p);
    mpm__h1_msg_t *m = &h->msg;
    for (size_t i = 0; i < len && m->version_len < sizeof(m->version); i++)
        m->version[m->version_len++] = at[i];
    return line_grow(h, len);
}

static int on_version_complete(llhttp_t *p)
{
    if (p->http_major != 1) /* llhttp lets 0.9 and 2.0 through */
        return fail(self(p), 505, "HTTP version not supported");
    return 0;
}

/* ---- header lines (and trailers, which are counted but not kept) ---- */

/* Trailer lines arrive after the head was handed out: they are checked
 * against the limits but not stored, so the head's pointers stay valid. */
static int storing(const mpm__h1_t *h)
{
    return h->state == ST_HEAD;
}

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
    return storing(h) ? hdrs_reserve(h) : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    mpm__h1_t *h = self(p);
    int rc = 0;
    if (memchr(at, ' ', len) || memchr(at, '\t', len))
        return fail(h, 400, "whitespace in header name");
    if (h->msg.span != SPAN_NAME)
        rc = header_begin(h);
    if (!rc)
        rc = field_grow(h, len);
    if (!rc && storing(h))
        rc = arena_put(h, at, len);
    return rc;
}

static int on_header_field_complete(llhttp_t *p)
{
    mpm__h1_t *h = self(p);
    h->msg.span = SPAN_NONE;
    return storing(h) ? arena_end_string(h) : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    mpm__h1_t *h = self(p);
    if (h->msg.span != SPAN_VALUE) {
        h->msg.span = SPAN_VALUE;
        h->msg.value_off = h->arena_len;
    }
    int rc = field_grow(h, len);
    if (!rc && storing(h))
        rc = arena_put(h, at, len);
    return rc;
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
    int rc = arena_end_string(h);
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

/* Framing headers are checked as they arrive: any request that two parties
 * could frame differently (CL + TE, two CLs, a TE other than exactly
 * "chunked") is refused before its body is read. */
static int note_framing(mpm__h1_t *h, const char *name, const char *value)
{
    mpm__h1_msg_t *m = &h->msg;
    if (!strcasecmp(name, "content-length")) {
        if (m->lengths++)
            return fail(h, 400, "more than one Content-Length");
        if (m->encodings)
            return fail(h, 400, "Content-Length with Transfer-Encoding");
    } else if (!strcasecmp(name, "transfer-encoding")) {
        if (m->lengths)
            return fail(h, 400, "Content-Length with Transfer-Encoding");
        if (m->encodings++ || strcasecmp(value, "chunked"))
            return fail(h, 501, "unsupported Transfer-Encoding");
    }
    return 0;
}

static int note_header(mpm__h1_t *h, const char *name, const char *value)
{
    mpm__h1_msg_t *m = &h->msg;
    if (!strcasecmp(name, "host"))
        m->hosts++;
    else if (!strcasecmp(name, "connection"))
        note_connection(m, value);
    else if (!strcasecmp(name, "expect") && *value) {
        if (!strcasecmp(value, "100-continue"))
            m->expect_100 = 1;
        else
            m->expect_other = 1;
    }
    return note_framing(h, name, value);
}

static int on_header_value_complete(llhttp_t *p)
{
    mpm__h1_t *h = self(p);
    mpm__h1_msg_t *m = &h->msg;
    if (m->span != SPAN_VALUE) /* empty value: no span was reported */
        m->value_off = h->arena_len;
    m->span = SPAN_NONE;
    if (!storing(h))
        return 0;
    int rc = value_store(h);
    if (rc)
        return rc;
    return note_header(h, h->arena + m->name_off, h->arena + m->value_off);
}

/* ---- the end of the head ---- */

/* The checks that need the whole head. */
static int head_check(mpm__h1_t *h, const llhttp_t *p)
{
    const mpm__h1_msg_t *m = &h->msg;
    if (p->http_major != 1)
        return fail(h, 400, "HTTP/0.9 request line");
    if (p->http_minor == 1 && m->hosts == 0)
        return fail(h, 400, "HTTP/1.1 request without Host");
    if (m->hosts > 1)
        return fail(h, 400, "more than one Host");
    if (m->expect_other)
        return fail(h, 417, "unsupported Expect");
    if (m->lengths && p->content_length > (uint64_t)INT64_MAX)
        return fail(h, 413, "request body too large");
    if (m->lengths && h->limits.body && p->content_length > h->limits.body)
        return fail(h, 413, "request body too large");
    return 0;
}

/* Appends the path (target up to '?') as its own string. Room is reserved
 * first: the copy's source is in the arena, which may move. */
static int path_store(mpm__h1_t *h, size_t qpos)
{
    int rc = arena_reserve(h, qpos + 1);
    if (rc)
        return arena_fail(h, rc);
    memcpy(h->arena + h->arena_len, h->arena + h->msg.target_off, qpos);
    h->arena_len += qpos;
    h->arena[h->arena_len++] = '\0';
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
static int head_build(mpm__h1_t *h, const llhttp_t *p)
{
    const mpm__h1_msg_t *m = &h->msg;
    mpm__h1_head_t *hd = &h->head;
    size_t qpos = strcspn(h->arena + m->target_off, "?");
    size_t path_off = h->arena_len;
    int rc = path_store(h, qpos);
    if (rc)
        return rc;
    char *a = h->arena;
    hd->method = a + m->method_off;
    hd->target = a + m->target_off;
    hd->path = a + path_off;
    hd->query = hd->target[qpos] ? hd->target + qpos + 1 : hd->target + qpos;
    for (unsigned i = 0; i < hd->nheaders; i++) {
        h->hdrs[i].name = a + h->hdr_off[2 * i];
        h->hdrs[i].value = a + h->hdr_off[2 * i + 1];
    }
    hd->headers = h->hdrs;
    hd->version = p->http_minor ? 11 : 10;
    hd->is_head = p->method == HTTP_HEAD;
    hd->client_keepalive = client_keepalive(m, hd->version);
    hd->expect_continue = m->expect_100 && hd->version == 11;
    hd->chunked = m->encodings != 0;
    hd->content_length = hd->chunked ? -1 : m->lengths ? (int64_t)p->content_length : 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    mpm__h1_t *h = self(p);
    int rc = head_check(h, p);
    if (!rc)
        rc = head_build(h, p);
    if (rc)
        return rc;
    /* Upgrade is not offered: the request is served as plain HTTP/1.1 and
     * the bytes after it are the next request, not another protocol. */
    p->upgrade = 0;
    h->msg.nfields = 0; /* trailers get their own LimitRequestFields */
    h->state = ST_BODY;
    h->paused_for = PAUSE_HEAD;
    return HPE_PAUSED;
}

/* ---- the body ---- */

/* llhttp gives at most one span between two pauses (one per execute for a
 * Content-Length body; one per chunk, and we pause at every chunk header). */
static int on_body(llhttp_t *p, const char *at, size_t len)
{
    mpm__h1_t *h = self(p);
    if (len == 0) /* llhttp flushes an open span at the end of each execute */
        return 0;
    if (!h->body_at)
        h->body_at = at;
    h->body_len += len;
    h->msg.body_seen += len;
    return 0;
}

/* The chunk's size is known before its data: refuse a chunk that would
 * take the body past the limit, before reading it. */
static int on_chunk_header(llhttp_t *p)
{
    mpm__h1_t *h = self(p);
    mpm__h1_msg_t *m = &h->msg;
    uint64_t size = p->content_length;
    if (h->limits.body && size > h->limits.body - m->chunk_total)
        return fail(h, 413, "request body too large");
    m->chunk_total += size;
    m->chunk_left = size;
    m->crlf_left = size ? 2 : 0;
    if (size == 0) { /* the trailer section follows: scan it like a head */
        m->scan_done = m->scan_text = m->scan_cr = 0;
        m->scan_lines = 1;
    }
    h->paused_for = PAUSE_CHUNK;
    return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *p)
{
    self(p)->paused_for = PAUSE_END;
    return HPE_PAUSED;
}

static const llhttp_settings_t h1_settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_method_complete = on_method_complete,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_version = on_version,
    .on_version_complete = on_version_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
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

/* A version llhttp refused: 505 if it names another major version. */
static int version_status(const mpm__h1_msg_t *m)
{
    char c = m->version_len ? m->version[0] : '1';
    return c >= '0' && c <= '9' && c != '1' ? 505 : 400;
}

/* The answer for an error llhttp found on its own. */
static void llhttp_failure(mpm__h1_t *h, llhttp_errno_t err)
{
    const char *why = llhttp_get_error_reason(&h->parser);
    if (err == HPE_INVALID_TRANSFER_ENCODING)
        fail(h, 501, "unsupported Transfer-Encoding");
    else if (err == HPE_INVALID_VERSION && version_status(&h->msg) == 505)
        fail(h, 505, "HTTP version not supported");
    else if (err == HPE_PAUSED_H2_UPGRADE)
        fail(h, 505, "HTTP/2 connection preface");
    else
        fail(h, 400, why ? why : "malformed request");
}

/* The engine dies here. Body bytes that llhttp accepted before the error
 * are still reported first (the ERROR comes with the next call), so the
 * outcome does not depend on how the input was split. */
static size_t failed(mpm__h1_t *h, llhttp_errno_t err, const char *data, mpm__h1_event_t *ev)
{
    if (!h->error_status)
        llhttp_failure(h, err);
    h->state = ST_DEAD;
    if (h->body_at) {
        ev->type = MPM__H1_BODY;
        ev->data = h->body_at;
        ev->len = h->body_len;
        return (size_t)(h->body_at + h->body_len - data);
    }
    error_event(h, ev);
    return 0;
}

/* llhttp, as built here (without LLHTTP_STRICT_MODE), takes a bare CR for a
 * line end and joins obs-fold lines into the value; RFC 9112 wants both
 * refused (a peer that reads them differently frames requests differently).
 * One pass over the head's bytes (and the trailers'), stopping at the empty
 * line that ends them, finds them. llhttp only ever pauses at that line, so
 * no byte is scanned twice. Returns how far llhttp may parse: len if
 * nothing was found, else the offending byte's offset, with *why set. */
static size_t head_scan(mpm__h1_msg_t *m, const char *data, size_t len, const char **why)
{
    for (size_t i = 0; i < len && !m->scan_done; i++) {
        char c = data[i];
        if (m->scan_cr && c != '\n') {
            *why = "bare CR in request head";
            return i;
        }
        m->scan_cr = c == '\r';
        if (c == '\n') {
            m->scan_done = !m->scan_text && m->scan_lines; /* the empty line */
            m->scan_lines += m->scan_text;
            m->scan_text = 0;
        } else if (c != '\r') {
            if (!m->scan_text && m->scan_lines && is_ows(c)) {
                *why = "obs-fold in request head";
                return i;
            }
            m->scan_text = 1;
        }
    }
    return len;
}

/* llhttp 8.1 does not check the two bytes after a chunk's data; a peer that
 * does frames the body differently (request smuggling). The data is
 * skipped, the CRLF checked; llhttp pauses at every chunk header, which is
 * where on_chunk_header() arms this scan for the next chunk, so no byte is
 * scanned twice. Returns how far llhttp may parse, as head_scan(). */
static size_t chunk_scan(mpm__h1_msg_t *m, const char *data, size_t len, const char **why)
{
    size_t i = m->chunk_left < len ? (size_t)m->chunk_left : len;
    m->chunk_left -= i;
    for (; i < len && m->crlf_left && !m->chunk_left; i++, m->crlf_left--) {
        if (data[i] != (m->crlf_left == 2 ? '\r' : '\n')) {
            *why = "chunk data not followed by CRLF";
            return i;
        }
    }
    return len;
}

/* Turns where llhttp stopped into the one event to report. */
static void stopped_event(mpm__h1_t *h, mpm__h1_event_t *ev)
{
    if (h->paused_for == PAUSE_HEAD) {
        ev->type = MPM__H1_HEAD;
    } else if (h->body_at) {
        ev->type = MPM__H1_BODY;
        ev->data = h->body_at;
        ev->len = h->body_len;
        h->pending_end = h->paused_for == PAUSE_END;
    } else if (h->paused_for == PAUSE_END) {
        ev->type = MPM__H1_END;
        h->state = ST_DONE;
    }
}

/* Runs llhttp until it stops at something to report: the head, a body
 * span, the end, or the end of the input. A pause at a chunk header with no
 * body before it is not an event: parsing simply goes on. */
static size_t run_parser(mpm__h1_t *h, const char *data, size_t len, mpm__h1_event_t *ev)
{
    const char *bad = NULL;
    size_t used = 0, end = len;
    h->body_at = NULL;
    h->body_len = 0;
    for (;;) {
        if (!h->msg.scan_done && !bad)
            end = used + head_scan(&h->msg, data + used, len - used, &bad);
        else if ((h->msg.chunk_left || h->msg.crlf_left) && !bad)
            end = used + chunk_scan(&h->msg, data + used, len - used, &bad);
        h->paused_for = PAUSE_NONE;
        llhttp_resume(&h->parser);
        llhttp_errno_t err = llhttp_execute(&h->parser, data + used, end - used);
        if (err == HPE_OK) {
            used = end;
            break;
        }
        if (err != HPE_PAUSED)
            return failed(h, err, data, ev);
        used = (size_t)(llhttp_get_error_pos(&h->parser) - data);
        if (h->paused_for != PAUSE_CHUNK || h->body_at)
            break;
    }
    if (bad) { /* llhttp found nothing earlier: report the scan's find */
        fail(h, 400, bad);
        return failed(h, HPE_USER, data, ev);
    }
    stopped_event(h, ev);
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
    if (h->pending_end) {
        h->pending_end = 0;
        h->state = ST_DONE;
        ev->type = MPM__H1_END;
        return 0;
    }
    if (!data) { /* llhttp does pointer arithmetic on it */
        data = "";
        len = 0;
    }
    return run_parser(h, data, len, ev);
}

/* True while the current request still expects body bytes. */
static int body_incomplete(const mpm__h1_t *h)
{
    if (h->pending_end)
        return 0;
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

void mpm__h1_next(mpm__h1_t *h)
{
    if (h->state == ST_DEAD)
        return;
    /* A fresh llhttp state: its own keep-alive and upgrade decisions about
     * the previous message must not leak into the next one. */
    llhttp_reset(&h->parser);
    memset(&h->msg, 0, sizeof(h->msg));
    memset(&h->head, 0, sizeof(h->head));
    h->arena_len = 0;
    h->state = ST_IDLE;
    h->paused_for = PAUSE_NONE;
    h->pending_end = 0;
    h->body_at = NULL;
    h->body_len = 0;
}
