/* The response side of the HTTP/1.1 engine: status lines, response heads,
 * canned error responses and chunk framing, written into caller buffers. */
#include "http1.h"

#include <inttypes.h>
#include <mpmlib/errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Sorted by code. */
static const struct reason {
    int status;
    const char *text;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Request Entity Too Large"},
    {414, "Request-URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Requested Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Entity"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {506, "Variant Also Negotiates"},
    {507, "Insufficient Storage"},
    {508, "Loop Detected"},
    {510, "Not Extended"},
    {511, "Network Authentication Required"},
};

const char *mpm__h1_reason(int status)
{
    size_t lo = 0, hi = sizeof(reasons) / sizeof(reasons[0]);
    while (lo < hi) { /* binary search */
        size_t mid = (lo + hi) / 2;
        if (reasons[mid].status == status)
            return reasons[mid].text;
        if (reasons[mid].status < status)
            lo = mid + 1;
        else
            hi = mid;
    }
    return "Unknown";
}

/* An append-only writer over the caller's buffer. Overflow is sticky and
 * checked once at the end, which keeps the formatting code linear. */
typedef struct out {
    char *buf;
    size_t len, cap;
    int overflow;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Every response head has two numbers: by hand, since snprintf costs a
 * tenth of a small request's whole budget. */
static void put_int(out_t *o, int64_t v)
{
    char num[24];
    char *end = num + sizeof(num), *p = end;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(o, p, (size_t)(end - p));
}

static void put_header(out_t *o, const char *name, const char *value)
{
    puts_(o, name);
    put(o, ": ", 2);
    puts_(o, value);
    put(o, "\r\n", 2);
}

static void put_status_and_date(out_t *o, int status)
{
    char date[30];
    mpm__h1_date(date);
    put(o, "HTTP/1.1 ", 9);
    put_int(o, status);
    put(o, " ", 1);
    puts_(o, mpm__h1_reason(status));
    put(o, "\r\nDate: ", 8);
    put(o, date, 29);
    put(o, "\r\n", 2);
}

/* Returns the length written, or MPM_ERANGE. NUL-terminates when room is
 * left (not counted), which helps callers that log the head. */
static int finish(out_t *o)
{
    if (o->overflow || o->len > INT32_MAX)
        return MPM_ERANGE;
    if (o->len < o->cap)
        o->buf[o->len] = '\0';
    return (int)o->len;
}

/* ---- response heads ---- */

/* What the request side tells the response side. Without a complete head
 * (an error before it, or no engine at all) the answer is HTTP/1.1 and the
 * connection closes. */
typedef struct req_view {
    int version, client_keepalive, is_head;
} req_view_t;

static req_view_t req_view(const mpm__h1_t *h)
{
    req_view_t v = {11, 0, 0};
    if (h && h->head.method) {
        v.version = h->head.version;
        v.client_keepalive = h->head.client_keepalive;
    }
    v.is_head = mpm__h1_is_head_request(h);
    return v;
}

static int status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

static mpm__h1_framing_t decide_framing(const req_view_t *v, const mpm__h1_response_t *r)
{
    if (!status_has_body(r->status) || v->is_head)
        return MPM__H1_NO_BODY;
    if (r->content_length >= 0)
        return MPM__H1_LENGTH;
    return v->version == 11 ? MPM__H1_CHUNKED : MPM__H1_UNTIL_CLOSE;
}

/* Headers the engine writes itself: a handler's copy would contradict the
 * framing or the keep-alive decision taken here. */
static int engine_owned(const char *name)
{
    return !strcasecmp(name, "content-length") || !strcasecmp(name, "transfer-encoding") ||
           !strcasecmp(name, "connection") || !strcasecmp(name, "date");
}

/* A CR or LF in a handler's header would let it end the head early
 * (response splitting). */
static int header_unsafe(const mpm__h1_header_t *hd)
{
    return !hd->name || !hd->value || hd->name[strcspn(hd->name, "\r\n:")] ||
           hd->value[strcspn(hd->value, "\r\n")];
}

static int put_handler_headers(out_t *o, const mpm__h1_response_t *r)
{
    for (unsigned i = 0; i < r->nheaders; i++) {
        if (header_unsafe(&r->headers[i]))
            return MPM_EINVAL;
        if (!engine_owned(r->headers[i].name))
            put_header(o, r->headers[i].name, r->headers[i].value);
    }
    return 0;
}

static void put_framing(out_t *o, mpm__h1_framing_t f, const req_view_t *v,
                        const mpm__h1_response_t *r)
{
    int head_length =
        f == MPM__H1_NO_BODY && v->is_head && status_has_body(r->status) && r->content_length >= 0;
    if (f == MPM__H1_LENGTH || head_length) {
        put(o, "Content-Length: ", 16);
        put_int(o, r->content_length);
        put(o, "\r\n", 2);
    } else if (f == MPM__H1_CHUNKED) {
        puts_(o, "Transfer-Encoding: chunked\r\n");
    }
}

int mpm__h1_format_head(const mpm__h1_t *h, const mpm__h1_response_t *resp, char *buf, size_t cap,
                        mpm__h1_framing_t *framing, int *keepalive)
{
    req_view_t v = req_view(h);
    mpm__h1_framing_t f = decide_framing(&v, resp);
    int keep = resp->keepalive && v.client_keepalive && f != MPM__H1_UNTIL_CLOSE;
    out_t o = {buf, 0, cap, 0};
    put_status_and_date(&o, resp->status);
    int rc = put_handler_headers(&o, resp);
    if (rc)
        return rc;
    put_framing(&o, f, &v, resp);
    if (!keep)
        puts_(&o, "Connection: close\r\n");
    else if (v.version == 10)
        puts_(&o, "Connection: keep-alive\r\n");
    put(&o, "\r\n", 2);
    rc = finish(&o);
    if (rc >= 0) {
        *framing = f;
        *keepalive = keep;
    }
    return rc;
}

/* ---- canned responses ---- */

int mpm__h1_format_error(int status, int is_head, char *buf, size_t cap)
{
    char body[64];
    int blen = snprintf(body, sizeof(body), "%d %s\n", status, mpm__h1_reason(status));
    out_t o = {buf, 0, cap, 0};
    put_status_and_date(&o, status);
    puts_(&o, "Content-Type: text/plain\r\nContent-Length: ");
    put_int(&o, blen);
    puts_(&o, "\r\nConnection: close\r\n\r\n");
    if (!is_head)
        put(&o, body, (size_t)blen);
    return finish(&o);
}

int mpm__h1_format_chunk_size(size_t len, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[2 * sizeof(size_t)];
    int n = 0;
    do {
        tmp[n++] = hex[len & 0xf];
        len >>= 4;
    } while (len);
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\r';
    buf[n + 1] = '\n';
    buf[n + 2] = '\0';
    return n + 2;
}
