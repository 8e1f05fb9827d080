/* The response side of the HTTP/1.1 engine: status lines, response heads,
 * canned error responses and chunk framing, written into caller buffers. */
#include "http1.h"

#include <inttypes.h>
#include <mpmlib/errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *mpm__h1_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Requested Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Entity";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
    }
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

static void put_int(out_t *o, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRId64, v);
    put(o, num, (size_t)n);
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
        v.is_head = h->head.is_head;
    }
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
    int head_length = f == MPM__H1_NO_BODY && v->is_head && status_has_body(r->status) &&
                      r->content_length >= 0;
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

int mpm__h1_format_error(int status, char *buf, size_t cap)
{
    char body[64];
    int blen = snprintf(body, sizeof(body), "%d %s\n", status, mpm__h1_reason(status));
    out_t o = {buf, 0, cap, 0};
    put_status_and_date(&o, status);
    puts_(&o, "Content-Type: text/plain\r\nContent-Length: ");
    put_int(&o, blen);
    puts_(&o, "\r\nConnection: close\r\n\r\n");
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
