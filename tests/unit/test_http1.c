/* The sans-I/O HTTP/1.1 engine: a table of good and bad requests, each fed
 * whole, split in two at every offset, and byte by byte, with the same
 * outcome required every way; then response heads, canned errors, chunk
 * framing, the Date cache, and reuse of one engine across requests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <mpmlib/errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/http1.h"

static const mpm__h1_limits_t default_limits = {8190, 8190, 100, 0};

/* ---- the transcript: what a connection saw, as one comparable string ---- */

typedef struct transcript {
    char text[8192];
    size_t len;
    char body[4096]; /* the current request's body, BODY events joined */
    size_t body_len;
} transcript_t;

static void say(transcript_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->text + t->len, sizeof(t->text) - t->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(t->text) - t->len);
    t->len += (size_t)n;
}

static void say_head(transcript_t *t, const mpm__h1_head_t *hd)
{
    say(t, "H %s %s %s|%s v%d ka%d ec%d ch%d hm%d cl%lld", hd->method, hd->target, hd->path,
        hd->query, hd->version, hd->client_keepalive, hd->expect_continue, hd->chunked, hd->is_head,
        (long long)hd->content_length);
    for (unsigned i = 0; i < hd->nheaders; i++)
        say(t, " [%s=%s]", hd->headers[i].name, hd->headers[i].value);
    say(t, " ");
}

static void flush_body(transcript_t *t)
{
    if (t->body_len)
        say(t, "B(%.*s) ", (int)t->body_len, t->body);
    t->body_len = 0;
}

static void add_body(transcript_t *t, const mpm__h1_event_t *ev)
{
    assert_true(ev->len > 0);
    assert_true(t->body_len + ev->len <= sizeof(t->body));
    memcpy(t->body + t->body_len, ev->data, ev->len);
    t->body_len += ev->len;
}

/* ---- a connection driven by a list of input pieces ---- */

typedef struct pieces {
    const char *data;
    size_t len;
    const size_t *cuts; /* ascending offsets where a new piece starts */
    size_t ncuts;
} pieces_t;

/* Handles one event; returns 0 when the connection is over. */
static int on_event(mpm__h1_t *h, transcript_t *t, const mpm__h1_event_t *ev, const char *at,
                    size_t used)
{
    switch (ev->type) {
    case MPM__H1_HEAD:
        say_head(t, mpm__h1_head(h));
        return 1;
    case MPM__H1_BODY:
        /* body bytes point into what was just consumed */
        assert_true(ev->data >= at && ev->data + ev->len <= at + used);
        add_body(t, ev);
        return 1;
    case MPM__H1_END:
        flush_body(t);
        say(t, "E ");
        mpm__h1_next(h);
        return 1;
    case MPM__H1_ERROR:
        flush_body(t);
        assert_non_null(ev->why);
        say(t, "X%d", ev->status);
        return 0;
    default:
        fail_msg("unexpected event %d", ev->type);
        return 0;
    }
}

static void run_pieces(const pieces_t *p, const mpm__h1_limits_t *lim, transcript_t *t)
{
    mpm__h1_t h;
    assert_int_equal(mpm__h1_init(&h, lim), 0);
    memset(t, 0, sizeof(*t));
    size_t start = 0, ci = 0, avail = p->ncuts ? p->cuts[0] : p->len;
    for (int guard = 0; guard < 100000; guard++) {
        mpm__h1_event_t ev;
        size_t used = mpm__h1_feed(&h, p->data + start, avail - start, &ev);
        assert_true(used <= avail - start);
        if (ev.type != MPM__H1_NEED_MORE) {
            const char *at = p->data + start;
            start += used;
            if (on_event(&h, t, &ev, at, used))
                continue;
            mpm__h1_free(&h);
            return;
        }
        assert_int_equal(used, avail - start); /* NEED_MORE consumes everything */
        start += used;
        if (avail == p->len)
            break;
        ci++; /* the next piece arrives */
        avail = ci < p->ncuts ? p->cuts[ci] : p->len;
    }
    flush_body(t);
    say(t, "eof%d idle%d", mpm__h1_eof(&h), mpm__h1_idle(&h));
    mpm__h1_free(&h);
}

/* ---- the table ---- */

typedef struct row {
    const char *name;
    const char *in;
    size_t len;
    mpm__h1_limits_t lim; /* all zero: default_limits */
    const char *want;
} row_t;

/* clang-format off */
#define IN(s) s, sizeof(s) - 1
#define NOLIM {0, 0, 0, 0}
#define LIM(line, field, n, body) {line, field, n, body}
/* clang-format on */

#define X16 "aaaaaaaaaaaaaaaa"
#define X256 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16 X16
#define X4080                                                                                      \
    X256 X256 X256 X256 X256 X256 X256 X256 X256 X256 X256 X256 X256 X256 X256 X16 X16 X16 X16 X16 \
        X16 X16 X16 X16 X16 X16 X16 X16 X16 X16

#define GET11 "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
#define H_GET11 "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] "
#define CHUNKED_POST "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
#define H_CHUNKED "H POST /up /up| v11 ka1 ec0 ch1 hm0 cl-1 [Host=a] [Transfer-Encoding=chunked] "

static const row_t rows[] = {
    /* ---- good requests ---- */
    {"get", IN(GET11), NOLIM, H_GET11 "E eof0 idle1"},
    {"get query", IN("GET /p/q?x=1&y HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H GET /p/q?x=1&y /p/q|x=1&y v11 ka1 ec0 ch0 hm0 cl0 [Host=a] E eof0 idle1"},
    {"get empty query", IN("GET /p? HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H GET /p? /p| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] E eof0 idle1"},
    {"head", IN("HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H HEAD /x /x| v11 ka1 ec0 ch0 hm1 cl0 [Host=a] E eof0 idle1"},
    {"options star", IN("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H OPTIONS * *| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] E eof0 idle1"},
    {"absolute form", IN("GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H GET http://a/b?c /b|c v11 ka1 ec0 ch0 hm0 cl0 [Host=a] E eof0 idle1"},
    {"post length", IN("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"), NOLIM,
     "H POST /p /p| v11 ka1 ec0 ch0 hm0 cl5 [Host=a] [Content-Length=5] B(hello) E eof0 idle1"},
    {"post length 0", IN("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), NOLIM,
     "H POST /p /p| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] [Content-Length=0] E eof0 idle1"},
    {"chunked ext trailers",
     IN(CHUNKED_POST
        "5;a=\"b\";c=d\r\nhello\r\nA;x\r\n0123456789\r\n0;z\r\nX-T: 1\r\nY: 2\r\n\r\n"),
     NOLIM, H_CHUNKED "B(hello0123456789) E eof0 idle1"},
    {"chunked upper hex", IN(CHUNKED_POST "1F\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n"),
     NOLIM, H_CHUNKED "B(0123456789abcdef0123456789abcde) E eof0 idle1"},
    {"chunked empty", IN(CHUNKED_POST "0\r\n\r\n"), NOLIM, H_CHUNKED "E eof0 idle1"},
    {"pipelined gets", IN(GET11 "GET /2 HTTP/1.1\r\nHost: b\r\n\r\n"), NOLIM,
     H_GET11 "E H GET /2 /2| v11 ka1 ec0 ch0 hm0 cl0 [Host=b] E eof0 idle1"},
    {"pipelined post get", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" GET11),
     NOLIM,
     "H POST / /| v11 ka1 ec0 ch0 hm0 cl3 [Host=a] [Content-Length=3] B(abc) E " H_GET11
     "E eof0 idle1"},
    {"pipelined chunked get", IN(CHUNKED_POST "3\r\nabc\r\n0\r\n\r\n" GET11), NOLIM,
     H_CHUNKED "B(abc) E " H_GET11 "E eof0 idle1"},
    {"http10", IN("GET / HTTP/1.0\r\n\r\n"), NOLIM,
     "H GET / /| v10 ka0 ec0 ch0 hm0 cl0 E eof0 idle1"},
    {"http10 keep-alive", IN("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), NOLIM,
     "H GET / /| v10 ka1 ec0 ch0 hm0 cl0 [Connection=keep-alive] E eof0 idle1"},
    {"http10 Keep-Alive case", IN("GET / HTTP/1.0\r\nconnection: Foo , Keep-Alive\r\n\r\n"), NOLIM,
     "H GET / /| v10 ka1 ec0 ch0 hm0 cl0 [connection=Foo , Keep-Alive] E eof0 idle1"},
    {"http10 keep-alive close", IN("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"),
     NOLIM, "H GET / /| v10 ka0 ec0 ch0 hm0 cl0 [Connection=keep-alive, close] E eof0 idle1"},
    {"http10 close", IN("GET / HTTP/1.0\r\nConnection: close\r\n\r\n"), NOLIM,
     "H GET / /| v10 ka0 ec0 ch0 hm0 cl0 [Connection=close] E eof0 idle1"},
    {"http11 close", IN("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), NOLIM,
     "H GET / /| v11 ka0 ec0 ch0 hm0 cl0 [Host=a] [Connection=close] E eof0 idle1"},
    {"http11 close token", IN("GET / HTTP/1.1\r\nHost: a\r\nConnection: TE,CLOSE\r\n\r\n"), NOLIM,
     "H GET / /| v11 ka0 ec0 ch0 hm0 cl0 [Host=a] [Connection=TE,CLOSE] E eof0 idle1"},
    {"http11 closed not token", IN("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"),
     NOLIM, "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] [Connection=closed] E eof0 idle1"},
    {"100-continue",
     IN("PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nhi"), NOLIM,
     "H PUT /f /f| v11 ka1 ec1 ch0 hm0 cl2 [Host=a] [Expect=100-Continue] [Content-Length=2] "
     "B(hi) E eof0 idle1"},
    {"100-continue http10", IN("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), NOLIM,
     "H GET / /| v10 ka0 ec0 ch0 hm0 cl0 [Expect=100-continue] E eof0 idle1"},
    {"leading crlf", IN("\r\n\r\n" GET11), NOLIM, H_GET11 "E eof0 idle1"},
    {"upgrade ignored",
     IN("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" GET11),
     NOLIM,
     "H GET /ws /ws| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] [Connection=Upgrade] [Upgrade=websocket] "
     "E " H_GET11 "E eof0 idle1"},
    {"upgrade with body",
     IN("POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: "
        "2\r\n\r\nok" GET11),
     NOLIM,
     "H POST / /| v11 ka1 ec0 ch0 hm0 cl2 [Host=a] [Connection=upgrade] [Upgrade=h2c] "
     "[Content-Length=2] B(ok) E " H_GET11 "E eof0 idle1"},
    {"value ows stripped", IN("GET / HTTP/1.1\r\nHost:a\r\nX-A: \t a b \t \r\nX-B:\r\n\r\n"), NOLIM,
     "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] [X-A=a b] [X-B=] E eof0 idle1"},
    {"http10 no host", IN("GET /x HTTP/1.0\r\nUser-Agent: t\r\n\r\n"), NOLIM,
     "H GET /x /x| v10 ka0 ec0 ch0 hm0 cl0 [User-Agent=t] E eof0 idle1"},
    {"partial head", IN("GET / HTTP/1.1\r\nHo"), NOLIM, "eof1 idle0"},
    {"only crlf", IN("\r\n\r\n"), NOLIM, "eof0 idle1"},
    {"partial body", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel"), NOLIM,
     "H POST / /| v11 ka1 ec0 ch0 hm0 cl5 [Host=a] [Content-Length=5] B(hel) eof1 idle0"},
    {"partial chunked", IN(CHUNKED_POST "3\r\nabc\r\n"), NOLIM, H_CHUNKED "B(abc) eof1 idle0"},
    {"get then partial", IN(GET11 "GET"), NOLIM, H_GET11 "E eof1 idle0"},

    /* ---- malformed: 400 ---- */
    {"bare CR", IN("GET / HTTP/1.1\rHost: a\r\n\r\n"), NOLIM, "X400"},
    {"bare CR end of head", IN("GET / HTTP/1.1\r\nHost: a\r\n\rX"), NOLIM, "X400"},
    {"bare CR in value", IN("GET / HTTP/1.1\r\nHost: a\r\nX: a\rY: b\r\n\r\n"), NOLIM, "X400"},
    {"bare CR before the request line", IN("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"bare LF in value", IN("GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n"), NOLIM, "X400"},
    {"obs-fold", IN("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), NOLIM, "X400"},
    {"obs-fold tab", IN("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n"), NOLIM, "X400"},
    {"space before colon", IN("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), NOLIM, "X400"},
    {"tab before colon", IN("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), NOLIM, "X400"},
    {"no colon", IN("GET / HTTP/1.1\r\nHost a\r\n\r\n"), NOLIM, "X400"},
    {"NUL in target", IN("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"NUL in value", IN("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n"), NOLIM, "X400"},
    {"CTL in value", IN("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n"), NOLIM, "X400"},
    {"space in target", IN("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"method not a token", IN("G(ET / HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"method then tab", IN("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"http09", IN("GET /\r\n\r\n"), NOLIM, "X400"},
    {"bad version text", IN("GET / HTTP/x.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"no host", IN("GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n"), NOLIM, "X400"},
    {"two hosts", IN("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), NOLIM, "X400"},
    {"cl and te",
     IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
     NOLIM, "X400"},
    {"te and cl",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
     NOLIM, "X400"},
    {"two cl same",
     IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"), NOLIM,
     "X400"},
    {"two cl differ",
     IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), NOLIM,
     "X400"},
    {"cl list", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n"), NOLIM, "X400"},
    {"cl overflow",
     IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n"), NOLIM,
     "X400"},
    {"cl negative", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), NOLIM, "X400"},
    {"cl junk", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n"), NOLIM, "X400"},
    {"bad chunk size", IN(CHUNKED_POST "zz\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk data too long", IN(CHUNKED_POST "3\r\nabcd\r\n0\r\n\r\n"), NOLIM,
     H_CHUNKED "B(abc) X400"},
    {"chunk data then junk (smuggling)", IN(CHUNKED_POST "5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n"),
     NOLIM, H_CHUNKED "B(hello) X400"},
    {"chunk data then CR junk", IN(CHUNKED_POST "1\r\na\rX0\r\n\r\n"), NOLIM,
     H_CHUNKED "B(a) X400"},
    {"chunk data then bare LF", IN(CHUNKED_POST "1\r\na\n0\r\n\r\n"), NOLIM, H_CHUNKED "B(a) X400"},
    {"chunk size overflow", IN(CHUNKED_POST "fffffffffffffffff\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk bad extension", IN(CHUNKED_POST "3;\x01\r\nabc\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"trailer bare CR",
     IN(CHUNKED_POST "1\r\na\r\n0\r\nT: 1\r\n\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     H_CHUNKED "B(a) X400"},
    {"trailer obs-fold", IN(CHUNKED_POST "1\r\na\r\n0\r\nT: 1\r\n 2\r\n\r\n"), NOLIM,
     H_CHUNKED "B(a) X400"},
    {"trailer space before colon", IN(CHUNKED_POST "0\r\nT : 1\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"space before header", IN("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), NOLIM, "X400"},

    /* ---- unsupported: 501, 505, 417 ---- */
    {"unknown method", IN("FETCH / HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X501"},
    {"lowercase method", IN("get / HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X501"},
    {"te gzip (chunked not last)",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), NOLIM, "X400"},
    {"te gzip chunked",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), NOLIM, "X501"},
    {"te chunked gzip",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), NOLIM, "X400"},
    {"te identity", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"), NOLIM,
     "X400"},
    {"te twice",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
        "chunked\r\n\r\n"),
     NOLIM, "X400"},
    {"connect", IN("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"), NOLIM, "X501"},
    {"http2 version", IN("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), NOLIM, "X505"},
    {"http3 version", IN("GET / HTTP/3.0\r\nHost: a\r\n\r\n"), NOLIM, "X505"},
    {"http2 preface", IN("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), NOLIM, "X505"},
    {"expect other", IN("GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n"), NOLIM, "X417"},

    /* ---- RFC 9110 / 9112 conformance (issue 8) ---- */
    /* request-target forms (RFC 9112 §3.2) */
    {"absolute form host port query",
     IN("GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n"), NOLIM,
     "H GET http://example.com:8080/p/q?x=1 /p/q|x=1 v11 ka1 ec0 ch0 hm0 cl0 "
     "[Host=example.com:8080] E eof0 idle1"},
    {"absolute form empty path", IN("GET http://a:80 HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H GET http://a:80 /| v11 ka1 ec0 ch0 hm0 cl0 [Host=a:80] E eof0 idle1"},
    {"absolute form empty path query", IN("GET http://a?q HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H GET http://a?q /|q v11 ka1 ec0 ch0 hm0 cl0 [Host=a] E eof0 idle1"},
    {"absolute form options", IN("OPTIONS http://a HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H OPTIONS http://a *| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] E eof0 idle1"},
    {"absolute form https upper", IN("GET HTTPS://B.example/x HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H GET HTTPS://B.example/x /x| v11 ka1 ec0 ch0 hm0 cl0 [Host=B.example] E eof0 idle1"},
    {"absolute form ipv6", IN("GET http://[::1]:8/ HTTP/1.1\r\nHost: [::1]:8\r\n\r\n"), NOLIM,
     "H GET http://[::1]:8/ /| v11 ka1 ec0 ch0 hm0 cl0 [Host=[::1]:8] E eof0 idle1"},
    {"absolute form http10 adds host", IN("GET http://h/ HTTP/1.0\r\nX: 1\r\n\r\n"), NOLIM,
     "H GET http://h/ /| v10 ka0 ec0 ch0 hm0 cl0 [X=1] [Host=h] E eof0 idle1"},
    {"absolute form still needs host", IN("GET http://a/ HTTP/1.1\r\n\r\n"), NOLIM, "X400"},
    {"absolute form userinfo", IN("GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"absolute form empty host", IN("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"absolute form other scheme", IN("GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"absolute form no slashes", IN("GET http:a/x HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"absolute form bad port", IN("GET http://a:99999/ HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "X400"},
    {"authority form for GET", IN("GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"asterisk for GET", IN("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"asterisk with more", IN("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"connect origin form", IN("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"connect without port", IN("CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"pct-encoded target", IN("GET /%41%2f?%7e=%20 HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H GET /%41%2f?%7e=%20 /%41%2f|%7e=%20 v11 ka1 ec0 ch0 hm0 cl0 [Host=a] E eof0 idle1"},
    {"rfc3986 target chars", IN("GET /a-._~!$&'()*+,;=:@/?/? HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H GET /a-._~!$&'()*+,;=:@/?/? /a-._~!$&'()*+,;=:@/|/? v11 ka1 ec0 ch0 hm0 cl0 [Host=a] "
     "E eof0 idle1"},
    /* request-target whitespace and control characters: 400, nothing after */
    {"tab in target", IN("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"tab after target", IN("GET /\t HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"bare CR in target", IN("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"DEL in target", IN("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"vertical tab in target", IN("GET /a\vb HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"obs-text in target", IN("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"fragment in target", IN("GET /a#f HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"bad pct in target", IN("GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"short pct in target", IN("GET /%4 HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"visible ascii outside rfc3986",
     IN("GET /a|b^[c]{d}`\"<>\\?q={\"x\":[1]} HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM,
     "H GET /a|b^[c]{d}`\"<>\\?q={\"x\":[1]} /a|b^[c]{d}`\"<>\\|q={\"x\":[1]} v11 ka1 ec0 ch0 hm0 "
     "cl0 [Host=a] E eof0 idle1"},
    {"space in target pipelined",
     IN("GET /a b HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"two spaces before target", IN("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"two spaces before version", IN("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"space after version", IN("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"space before method", IN(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"bare LF request line", IN("GET / HTTP/1.1\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"bare LF before request line", IN("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    /* versions (RFC 9110 §2.5, §6.2) */
    {"http12 as http11", IN("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), NOLIM, H_GET11 "E eof0 idle1"},
    {"http19 as http11", IN("GET / HTTP/1.9\r\nHost: a\r\n\r\n"), NOLIM, H_GET11 "E eof0 idle1"},
    {"http12 needs host", IN("GET / HTTP/1.2\r\n\r\n"), NOLIM, "X400"},
    {"http09 version", IN("GET / HTTP/0.9\r\n\r\n"), NOLIM, "X505"},
    {"http4 version", IN("GET / HTTP/4.1\r\nHost: a\r\n\r\n"), NOLIM, "X505"},
    {"http two-digit minor", IN("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"http lowercase", IN("GET / http/1.1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    {"http no minor", IN("GET / HTTP/1\r\nHost: a\r\n\r\n"), NOLIM, "X400"},
    /* Host (RFC 9112 §3.2) */
    {"host forms", IN("GET / HTTP/1.1\r\nHost: xn--a.b-c_d~e%41!$&'()*+,;=:8080\r\n\r\n"), NOLIM,
     "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=xn--a.b-c_d~e%41!$&'()*+,;=:8080] E eof0 idle1"},
    {"host ipv4 port", IN("GET / HTTP/1.1\r\nHost: 10.0.0.1:65535\r\n\r\n"), NOLIM,
     "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=10.0.0.1:65535] E eof0 idle1"},
    {"host ipv6", IN("GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n"), NOLIM,
     "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=[2001:db8::1]] E eof0 idle1"},
    {"host ipvfuture", IN("GET / HTTP/1.1\r\nHost: [v1.x:y]:1\r\n\r\n"), NOLIM,
     "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=[v1.x:y]:1] E eof0 idle1"},
    {"host empty", IN("GET / HTTP/1.1\r\nHost:\r\n\r\n"), NOLIM,
     "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=] E eof0 idle1"},
    {"host space inside", IN("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), NOLIM, "X400"},
    {"host two colons", IN("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n"), NOLIM, "X400"},
    {"host port not digits", IN("GET / HTTP/1.1\r\nHost: a:b\r\n\r\n"), NOLIM, "X400"},
    {"host port too big", IN("GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n"), NOLIM, "X400"},
    {"host slash", IN("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), NOLIM, "X400"},
    {"host userinfo", IN("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), NOLIM, "X400"},
    {"host open bracket", IN("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), NOLIM, "X400"},
    {"host bad ipv6", IN("GET / HTTP/1.1\r\nHost: [zz::1]\r\n\r\n"), NOLIM, "X400"},
    {"host bad pct", IN("GET / HTTP/1.1\r\nHost: a%g1\r\n\r\n"), NOLIM, "X400"},
    {"host list", IN("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n"), NOLIM, "X400"},
    {"two hosts other case", IN("GET / HTTP/1.1\r\nhost: a\r\nHOST: a\r\n\r\n"), NOLIM, "X400"},
    {"http10 bad host", IN("GET / HTTP/1.0\r\nHost: a b\r\n\r\n"), NOLIM, "X400"},
    /* field names and lines (RFC 9110 §5.1, RFC 9112 §5) */
    {"empty field name", IN("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n"), NOLIM, "X400"},
    {"leading colon name", IN("GET / HTTP/1.1\r\nHost: a\r\n:authority: x\r\n\r\n"), NOLIM, "X400"},
    {"name not token", IN("GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n"), NOLIM, "X400"},
    {"name with DEL", IN("GET / HTTP/1.1\r\nHost: a\r\nX\x7f: 1\r\n\r\n"), NOLIM, "X400"},
    {"name with NUL", IN("GET / HTTP/1.1\r\nHost: a\r\nX\0Y: 1\r\n\r\n"), NOLIM, "X400"},
    {"name obs-text", IN("GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: 1\r\n\r\n"), NOLIM, "X400"},
    {"DEL in value", IN("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n"), NOLIM, "X400"},
    {"obs-text in value", IN("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n"), NOLIM,
     "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] [X=caf\xc3\xa9] E eof0 idle1"},
    {"token chars in name", IN("GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09az: v\r\n\r\n"),
     NOLIM, "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] [!#$%&'*+-.^_`|~09az=v] E eof0 idle1"},
    {"obs-fold first line", IN("GET / HTTP/1.1\r\n\tHost: a\r\n\r\n"), NOLIM, "X400"},
    {"bare LF ends head", IN("GET / HTTP/1.1\r\nHost: a\r\n\n"), NOLIM, "X400"},
    {"bare LF after field", IN("GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n"), NOLIM, "X400"},
    /* framing headers (RFC 9112 §6) */
    {"cl plus", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello"), NOLIM, "X400"},
    {"cl empty", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), NOLIM, "X400"},
    {"cl inner space", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n"), NOLIM,
     "X400"},
    {"cl hex", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n"), NOLIM, "X400"},
    {"cl leading zeros", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\nabcdefg"),
     NOLIM,
     "H POST / /| v11 ka1 ec0 ch0 hm0 cl7 [Host=a] [Content-Length=007] B(abcdefg) E eof0 idle1"},
    {"te chunked case and list",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , Chunked\r\n\r\n0\r\n\r\n"), NOLIM,
     "H POST / /| v11 ka1 ec0 ch1 hm0 cl-1 [Host=a] [Transfer-Encoding=, Chunked] E eof0 idle1"},
    {"te empty", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), NOLIM, "X400"},
    {"te chunked param", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"),
     NOLIM, "X400"},
    {"te quoted", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"), NOLIM,
     "X400"},
    {"te in http10", IN("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), NOLIM,
     "X400"},
    {"te chunked then gzip line",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
        "gzip\r\n\r\n"),
     NOLIM, "X400"},
    /* chunk extensions (RFC 9112 §7.1.1): accepted and ignored */
    {"chunk ext forms",
     IN(CHUNKED_POST "2;a\r\nab\r\n2;a=b;c=\"d;e=f\"\r\ncd\r\n2 ; a = b ; c\t=\t\"\\\"\\\\x\"\r\n"
                     "ef\r\n2;a;b;c=d\r\ngh\r\n2;n=\"\"\r\nij\r\n0;last=\"x;y\"\r\n\r\n"),
     NOLIM, H_CHUNKED "B(abcdefghij) E eof0 idle1"},
    {"chunk ext obs-text quoted", IN(CHUNKED_POST "1;a=\"\xc3\xa9\"\r\nx\r\n0\r\n\r\n"), NOLIM,
     H_CHUNKED "B(x) E eof0 idle1"},
    {"chunk ext at 4 KiB", IN(CHUNKED_POST "1;" X4080 "aaaaaaaaaaaaaa\r\nx\r\n0\r\n\r\n"), NOLIM,
     H_CHUNKED "B(x) E eof0 idle1"},
    {"chunk ext past 4 KiB", IN(CHUNKED_POST "1;" X4080 "aaaaaaaaaaaaaaa\r\nx\r\n0\r\n\r\n"), NOLIM,
     H_CHUNKED "X400"},
    {"chunk ext endless", IN(CHUNKED_POST "1;" X4080 X16 X16), NOLIM, H_CHUNKED "X400"},
    {"chunk ext empty name", IN(CHUNKED_POST "1;\r\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk ext empty value", IN(CHUNKED_POST "1;a=\r\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk ext no name", IN(CHUNKED_POST "1;=b\r\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk ext open quote", IN(CHUNKED_POST "1;a=\"b\r\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk ext bad token", IN(CHUNKED_POST "1;a=b(c)\r\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk ext space before CRLF", IN(CHUNKED_POST "1;a=b \r\nx\r\n0\r\n\r\n"), NOLIM,
     H_CHUNKED "X400"},
    {"chunk ext junk after quote", IN(CHUNKED_POST "1;a=\"b\"c\r\nx\r\n0\r\n\r\n"), NOLIM,
     H_CHUNKED "X400"},
    {"chunk ext bare LF", IN(CHUNKED_POST "1;a\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk ext name, blank, next", IN(CHUNKED_POST "1;a ;b\r\nx\r\n0\r\n\r\n"), NOLIM,
     H_CHUNKED "B(x) E eof0 idle1"},
    {"chunk ext junk after name", IN(CHUNKED_POST "1;a b\r\nx\r\n0\r\n\r\n"), NOLIM,
     H_CHUNKED "X400"},
    /* chunk sizes */
    {"chunk size leading zeros", IN(CHUNKED_POST "00000000000000000001\r\nx\r\n0000\r\n\r\n"),
     NOLIM, H_CHUNKED "B(x) E eof0 idle1"},
    {"chunk size empty", IN(CHUNKED_POST "\r\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk size plus", IN(CHUNKED_POST "+1\r\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk size minus", IN(CHUNKED_POST "-1\r\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk size 0x", IN(CHUNKED_POST "0x1\r\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk size leading space", IN(CHUNKED_POST " 1\r\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk size trailing space", IN(CHUNKED_POST "1 \r\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk size 2^63", IN(CHUNKED_POST "8000000000000000\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk size bare LF", IN(CHUNKED_POST "1\nx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk size bare CR", IN(CHUNKED_POST "1\rx\r\n0\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"chunk data missing CRLF then size", IN(CHUNKED_POST "1\r\nx0\r\n\r\n"), NOLIM,
     H_CHUNKED "B(x) X400"},
    {"last chunk no final CRLF", IN(CHUNKED_POST "0\r\nGET / HTTP/1.1\r\n\r\n"), NOLIM,
     H_CHUNKED "X400"},
    /* trailers (RFC 9112 §7.1.2) */
    {"trailers then pipelined", IN(CHUNKED_POST "1\r\nx\r\n0\r\nX-T: 1\r\nX-U:\r\n\r\n" GET11),
     NOLIM, H_CHUNKED "B(x) E " H_GET11 "E eof0 idle1"},
    {"trailer empty name", IN(CHUNKED_POST "0\r\n: x\r\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"trailer bare LF", IN(CHUNKED_POST "0\r\nX: 1\n\r\n"), NOLIM, H_CHUNKED "X400"},
    {"trailer CTL", IN(CHUNKED_POST "0\r\nX: \x01\r\n\r\n"), NOLIM, H_CHUNKED "X400"},

    /* ---- limits, exactly at and one past ---- */
    /* request line "GET /aaaaaaaaaaaaaaaaaa HTTP/1.1" is 32 bytes */
    {"line at limit", IN("GET /aaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n"),
     LIM(32, 100, 10, 0),
     "H GET /aaaaaaaaaaaaaaaaaa /aaaaaaaaaaaaaaaaaa| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] E eof0 "
     "idle1"},
    {"line past limit", IN("GET /aaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n"),
     LIM(32, 100, 10, 0), "X414"},
    {"line endless", IN("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
     LIM(32, 100, 10, 0), "X414"},
    /* "X-Long: 12345678" is 16 bytes */
    {"field at limit", IN("GET / HTTP/1.1\r\nHost: a\r\nX-Long: 12345678\r\n\r\n"),
     LIM(100, 16, 10, 0),
     "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] [X-Long=12345678] E eof0 idle1"},
    {"field past limit", IN("GET / HTTP/1.1\r\nHost: a\r\nX-Long: 123456789\r\n\r\n"),
     LIM(100, 16, 10, 0), "X431"},
    {"field name endless", IN("GET / HTTP/1.1\r\nHost: a\r\nX-Loooooooooooooooooooooooooooooong"),
     LIM(100, 16, 10, 0), "X431"},
    {"field value endless", IN("GET / HTTP/1.1\r\nHost: a\r\nX: 12345678901234567890"),
     LIM(100, 16, 10, 0), "X431"},
    {"fields at limit", IN("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"),
     LIM(100, 100, 3, 0), "H GET / /| v11 ka1 ec0 ch0 hm0 cl0 [Host=a] [A=1] [B=2] E eof0 idle1"},
    {"fields past limit", IN("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"),
     LIM(100, 100, 3, 0), "X431"},
    {"trailers past limit", IN(CHUNKED_POST "1\r\na\r\n0\r\nT1: 1\r\nT2: 2\r\nT3: 3\r\n\r\n"),
     LIM(100, 100, 2, 0), H_CHUNKED "B(a) X431"},
    /* "X-Long: " + 22 bytes is 30 */
    {"trailer field past limit", IN(CHUNKED_POST "0\r\nX-Long: 12345678901234567890123\r\n\r\n"),
     LIM(100, 30, 10, 0), H_CHUNKED "X431"},
    {"trailer field at limit", IN(CHUNKED_POST "0\r\nX-Long: 1234567890123456789012\r\n\r\n"),
     LIM(100, 30, 10, 0), H_CHUNKED "E eof0 idle1"},
    {"trailers at limit", IN(CHUNKED_POST "1\r\na\r\n0\r\nT1: 1\r\nT2: 2\r\n\r\n"),
     LIM(100, 100, 2, 0), H_CHUNKED "B(a) E eof0 idle1"},
    {"body at limit", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"),
     LIM(100, 100, 10, 5),
     "H POST / /| v11 ka1 ec0 ch0 hm0 cl5 [Host=a] [Content-Length=5] B(hello) E eof0 idle1"},
    {"body past limit", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nhello!"),
     LIM(100, 100, 10, 5), "X413"},
    {"chunked at limit", IN(CHUNKED_POST "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"), LIM(100, 100, 10, 5),
     H_CHUNKED "B(abcde) E eof0 idle1"},
    {"chunked past limit", IN(CHUNKED_POST "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"),
     LIM(100, 100, 10, 5), H_CHUNKED "B(abc) X413"},
    {"body unlimited", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000\r\n\r\nab"),
     NOLIM,
     "H POST / /| v11 ka1 ec0 ch0 hm0 cl1000000000000 [Host=a] [Content-Length=1000000000000] "
     "B(ab) eof1 idle0"},
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static const mpm__h1_limits_t *row_limits(const row_t *r)
{
    return r->lim.request_line ? &r->lim : &default_limits;
}

/* Prints a mismatch; returns 1 if there was one. Each test reports every
 * failing row (once) before failing, so one run shows the whole picture. */
static int check(const row_t *r, const char *how, const transcript_t *t)
{
    if (strcmp(t->text, r->want) == 0)
        return 0;
    print_error("row \"%s\" (%s):\n  got  \"%s\"\n  want \"%s\"\n", r->name, how, t->text, r->want);
    return 1;
}

static void test_table_whole(void **state)
{
    int bad = 0;
    for (size_t i = 0; i < NROWS; i++) {
        transcript_t t;
        pieces_t p = {rows[i].in, rows[i].len, NULL, 0};
        run_pieces(&p, row_limits(&rows[i]), &t);
        bad += check(&rows[i], "whole", &t);
    }
    assert_int_equal(bad, 0);
}

static void test_table_split(void **state)
{
    int bad = 0;
    for (size_t i = 0; i < NROWS; i++) {
        for (size_t cut = 1; cut < rows[i].len; cut++) {
            transcript_t t;
            char how[32];
            pieces_t p = {rows[i].in, rows[i].len, &cut, 1};
            run_pieces(&p, row_limits(&rows[i]), &t);
            snprintf(how, sizeof(how), "split at %zu", cut);
            if (check(&rows[i], how, &t)) {
                bad++;
                break;
            }
        }
    }
    assert_int_equal(bad, 0);
}

static void test_table_bytewise(void **state)
{
    static size_t cuts[16384];
    int bad = 0;
    for (size_t i = 0; i < NROWS; i++) {
        assert_true(rows[i].len <= sizeof(cuts) / sizeof(cuts[0]));
        for (size_t k = 1; k <= rows[i].len; k++)
            cuts[k - 1] = k;
        transcript_t t;
        pieces_t p = {rows[i].in, rows[i].len, cuts, rows[i].len};
        run_pieces(&p, row_limits(&rows[i]), &t);
        bad += check(&rows[i], "byte by byte", &t);
    }
    assert_int_equal(bad, 0);
}

/* ---- event-level behaviour ---- */

static size_t feed_str(mpm__h1_t *h, const char *s, mpm__h1_event_t *ev)
{
    return mpm__h1_feed(h, s, strlen(s), ev);
}

/* After END nothing is consumed until next(); then the same bytes parse. */
static void test_pipelining_waits_for_next(void **state)
{
    const char *in = GET11 "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    mpm__h1_t h;
    mpm__h1_event_t ev;
    assert_int_equal(mpm__h1_init(&h, &default_limits), 0);
    size_t used = feed_str(&h, in, &ev);
    assert_int_equal(ev.type, MPM__H1_HEAD);
    assert_int_equal(used, strlen(GET11));
    assert_int_equal(mpm__h1_feed(&h, in + used, strlen(in) - used, &ev), 0);
    assert_int_equal(ev.type, MPM__H1_END);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mpm__h1_feed(&h, in + used, strlen(in) - used, &ev), 0);
        assert_int_equal(ev.type, MPM__H1_NEED_MORE);
    }
    assert_false(mpm__h1_eof(&h));
    mpm__h1_next(&h);
    assert_true(mpm__h1_idle(&h));
    assert_int_equal(mpm__h1_feed(&h, in + used, strlen(in) - used, &ev), strlen(in) - used);
    assert_int_equal(ev.type, MPM__H1_HEAD);
    assert_string_equal(mpm__h1_head(&h)->target, "/2");
    mpm__h1_free(&h);
}

/* BODY and END found by one execute: BODY now, END on a zero-length feed. */
static void test_end_pending_after_body(void **state)
{
    const char *in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok";
    mpm__h1_t h;
    mpm__h1_event_t ev;
    assert_int_equal(mpm__h1_init(&h, &default_limits), 0);
    size_t used = feed_str(&h, in, &ev);
    assert_int_equal(ev.type, MPM__H1_HEAD);
    assert_int_equal(mpm__h1_feed(&h, in + used, 2, &ev), 2);
    assert_int_equal(ev.type, MPM__H1_BODY);
    assert_ptr_equal(ev.data, in + used);
    assert_int_equal(ev.len, 2);
    assert_false(mpm__h1_eof(&h)); /* the body is complete */
    assert_int_equal(mpm__h1_feed(&h, NULL, 0, &ev), 0);
    assert_int_equal(ev.type, MPM__H1_END);
    mpm__h1_free(&h);
}

static void test_dead_after_error(void **state)
{
    mpm__h1_t h;
    mpm__h1_event_t ev;
    assert_int_equal(mpm__h1_init(&h, &default_limits), 0);
    feed_str(&h, "GET / HTTP/9.9\r\n", &ev);
    assert_int_equal(ev.type, MPM__H1_ERROR);
    assert_int_equal(ev.status, 505);
    assert_int_equal(feed_str(&h, GET11, &ev), 0);
    assert_int_equal(ev.type, MPM__H1_ERROR);
    assert_int_equal(ev.status, 505);
    mpm__h1_next(&h); /* stays dead */
    feed_str(&h, GET11, &ev);
    assert_int_equal(ev.type, MPM__H1_ERROR);
    assert_false(mpm__h1_eof(&h));
    mpm__h1_free(&h);
}

static void test_idle_and_eof(void **state)
{
    mpm__h1_t h;
    mpm__h1_event_t ev;
    assert_int_equal(mpm__h1_init(&h, &default_limits), 0);
    assert_true(mpm__h1_idle(&h));
    assert_false(mpm__h1_eof(&h));
    assert_int_equal(feed_str(&h, "\r\n", &ev), 2);
    assert_true(mpm__h1_idle(&h));
    assert_int_equal(feed_str(&h, "G", &ev), 1);
    assert_false(mpm__h1_idle(&h));
    assert_true(mpm__h1_eof(&h));
    mpm__h1_free(&h);
}

/* One engine serves many requests; after the first, nothing is allocated. */
static void test_arena_reuse(void **state)
{
    mpm__h1_t h;
    mpm__h1_event_t ev;
    const char *in = "GET /r?i=1 HTTP/1.1\r\nHost: a\r\nX-1: one\r\nX-2: two\r\n\r\n";
    assert_int_equal(mpm__h1_init(&h, &default_limits), 0);
    assert_null(h.arena); /* allocated lazily */
    char *arena = NULL;
    mpm__h1_header_t *hdrs = NULL;
    for (int i = 0; i < 200; i++) {
        assert_int_equal(feed_str(&h, in, &ev), strlen(in));
        assert_int_equal(ev.type, MPM__H1_HEAD);
        const mpm__h1_head_t *hd = mpm__h1_head(&h);
        assert_string_equal(hd->path, "/r");
        assert_string_equal(hd->query, "i=1");
        assert_int_equal(hd->nheaders, 3);
        assert_string_equal(hd->headers[2].value, "two");
        if (i == 0) {
            arena = h.arena;
            hdrs = h.hdrs;
        }
        assert_ptr_equal(h.arena, arena);
        assert_ptr_equal(h.hdrs, hdrs);
        assert_int_equal(h.arena_cap, 2048);
        mpm__h1_feed(&h, in, 0, &ev);
        assert_int_equal(ev.type, MPM__H1_END);
        mpm__h1_next(&h);
    }
    mpm__h1_free(&h);
}

/* A head larger than the first arena block: the arena doubles, the head's
 * strings are right, and it never exceeds the maximum derived from limits. */
static void test_arena_growth(void **state)
{
    static char in[40000];
    char value[4001];
    memset(value, 'v', 4000);
    value[4000] = '\0';
    size_t n = (size_t)snprintf(in, sizeof(in), "GET /big HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 8; i++)
        n += (size_t)snprintf(in + n, sizeof(in) - n, "X-%d: %s\r\n", i, value);
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n");
    mpm__h1_t h;
    mpm__h1_event_t ev;
    assert_int_equal(mpm__h1_init(&h, &default_limits), 0);
    assert_int_equal(mpm__h1_feed(&h, in, n, &ev), n);
    assert_int_equal(ev.type, MPM__H1_HEAD);
    const mpm__h1_head_t *hd = mpm__h1_head(&h);
    assert_int_equal(hd->nheaders, 9);
    assert_string_equal(hd->headers[0].value, "a");
    for (unsigned i = 1; i < 9; i++)
        assert_string_equal(hd->headers[i].value, value);
    assert_true(h.arena_cap >= 8 * 4000 && h.arena_cap <= h.arena_max);
    assert_int_equal(h.arena_cap & (h.arena_cap - 1), 0); /* 2 KiB doubled */
    mpm__h1_free(&h);
}

/* The largest head the limits allow fits the arena's maximum. */
static void test_arena_max_head(void **state)
{
    const mpm__h1_limits_t lim = {64, 40, 20, 0};
    static char in[4096];
    char target[51]; /* "GET /" + 50 + " HTTP/1.1": exactly the 64-byte limit */
    memset(target, 'q', 50);
    target[0] = '?';
    target[50] = '\0';
    size_t n = (size_t)snprintf(in, sizeof(in), "GET /%s HTTP/1.1\r\n", target);
    assert_int_equal(n - 2, 64);
    n += (size_t)snprintf(in + n, sizeof(in) - n, "Host: a\r\n");
    for (int i = 1; i < 20; i++) /* each "Hxx: " + 35 bytes = 40 */
        n += (size_t)snprintf(in + n, sizeof(in) - n, "H%02d: %s\r\n", i,
                              "01234567890123456789012345678901234");
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n");
    mpm__h1_t h;
    mpm__h1_event_t ev;
    assert_int_equal(mpm__h1_init(&h, &lim), 0);
    assert_int_equal(mpm__h1_feed(&h, in, n, &ev), n);
    assert_int_equal(ev.type, MPM__H1_HEAD);
    assert_int_equal(mpm__h1_head(&h)->nheaders, 20);
    assert_string_equal(mpm__h1_head(&h)->path, "/");
    assert_true(h.arena_len <= h.arena_max);
    mpm__h1_free(&h);
}

/* ---- response heads ---- */

/* An engine that has parsed `req` up to its head. */
static void parsed(mpm__h1_t *h, const char *req)
{
    mpm__h1_event_t ev;
    assert_int_equal(mpm__h1_init(h, &default_limits), 0);
    feed_str(h, req, &ev);
    assert_int_equal(ev.type, MPM__H1_HEAD);
}

typedef struct formatted {
    char buf[1024];
    int len;
    mpm__h1_framing_t framing;
    int keepalive;
} formatted_t;

static void format(const mpm__h1_t *h, int status, int64_t cl, int keep, formatted_t *f)
{
    static const mpm__h1_header_t hdrs[] = {
        {"Content-Type", "text/plain"}, {"content-length", "999"}, {"X-Y", "z"},
        {"Connection", "upgrade"},      {"Date", "yesterday"},     {"Transfer-Encoding", "gzip"},
    };
    mpm__h1_response_t r = {status, hdrs, 6, cl, keep};
    f->framing = -1;
    f->keepalive = -1;
    f->len = mpm__h1_format_head(h, &r, f->buf, sizeof(f->buf), &f->framing, &f->keepalive);
    assert_true(f->len > 0);
    assert_int_equal((size_t)f->len, strlen(f->buf));
}

static int has(const formatted_t *f, const char *line)
{
    char want[256];
    snprintf(want, sizeof(want), "\r\n%s\r\n", line);
    return strstr(f->buf, want) != NULL;
}

/* Status line, Date, handler headers in order, framing, Connection, end. */
static void test_format_head_layout(void **state)
{
    mpm__h1_t h;
    formatted_t f;
    parsed(&h, GET11);
    format(&h, 200, 5, 1, &f);
    assert_memory_equal(f.buf, "HTTP/1.1 200 OK\r\nDate: ", 23);
    const char *after_date = f.buf + 23 + 29;
    assert_string_equal(after_date, "\r\nContent-Type: text/plain\r\nX-Y: z\r\n"
                                    "Content-Length: 5\r\n\r\n");
    assert_int_equal(f.framing, MPM__H1_LENGTH);
    assert_int_equal(f.keepalive, 1);
    mpm__h1_free(&h);
}

static void test_format_head_framing(void **state)
{
    mpm__h1_t h;
    formatted_t f;
    parsed(&h, GET11);
    format(&h, 200, -1, 1, &f); /* stream on 1.1: chunked, kept alive */
    assert_int_equal(f.framing, MPM__H1_CHUNKED);
    assert_int_equal(f.keepalive, 1);
    assert_true(has(&f, "Transfer-Encoding: chunked"));
    assert_null(strstr(f.buf, "Content-Length"));
    assert_null(strstr(f.buf, "Connection"));
    int codes[] = {100, 101, 103, 204, 304};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        format(&h, codes[i], 10, 1, &f);
        assert_int_equal(f.framing, MPM__H1_NO_BODY);
        assert_null(strstr(f.buf, "Content-Length"));
        assert_null(strstr(f.buf, "Transfer-Encoding"));
    }
    mpm__h1_free(&h);
}

static void test_format_head_head_request(void **state)
{
    mpm__h1_t h;
    formatted_t f;
    parsed(&h, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    format(&h, 200, 42, 1, &f);
    assert_int_equal(f.framing, MPM__H1_NO_BODY);
    assert_true(has(&f, "Content-Length: 42"));
    assert_int_equal(f.keepalive, 1);
    format(&h, 200, -1, 1, &f);
    assert_int_equal(f.framing, MPM__H1_NO_BODY);
    assert_null(strstr(f.buf, "Content-Length"));
    assert_null(strstr(f.buf, "Transfer-Encoding"));
    assert_int_equal(f.keepalive, 1);
    format(&h, 304, 42, 1, &f);
    assert_null(strstr(f.buf, "Content-Length"));
    mpm__h1_free(&h);
}

static void test_format_head_http10(void **state)
{
    mpm__h1_t h;
    formatted_t f;
    parsed(&h, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    format(&h, 200, 3, 1, &f);
    assert_int_equal(f.framing, MPM__H1_LENGTH);
    assert_int_equal(f.keepalive, 1);
    assert_true(has(&f, "Connection: keep-alive"));
    assert_memory_equal(f.buf, "HTTP/1.1 200 OK\r\n", 17);
    format(&h, 200, -1, 1, &f); /* no chunked on 1.0: until close */
    assert_int_equal(f.framing, MPM__H1_UNTIL_CLOSE);
    assert_int_equal(f.keepalive, 0);
    assert_true(has(&f, "Connection: close"));
    assert_null(strstr(f.buf, "Transfer-Encoding"));
    assert_null(strstr(f.buf, "Content-Length"));
    format(&h, 200, 3, 0, &f); /* the server declines */
    assert_int_equal(f.keepalive, 0);
    assert_true(has(&f, "Connection: close"));
    mpm__h1_free(&h);
    parsed(&h, "GET / HTTP/1.0\r\n\r\n"); /* client did not ask */
    format(&h, 200, 3, 1, &f);
    assert_int_equal(f.keepalive, 0);
    assert_true(has(&f, "Connection: close"));
    mpm__h1_free(&h);
}

static void test_format_head_close(void **state)
{
    mpm__h1_t h;
    formatted_t f;
    parsed(&h, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    format(&h, 200, 3, 1, &f);
    assert_int_equal(f.keepalive, 0);
    assert_true(has(&f, "Connection: close"));
    mpm__h1_free(&h);
    parsed(&h, GET11);
    format(&h, 200, 3, 0, &f);
    assert_int_equal(f.keepalive, 0);
    assert_true(has(&f, "Connection: close"));
    assert_int_equal(strstr(f.buf, "Connection:") - f.buf,
                     strstr(f.buf, "Connection: close") - f.buf);
    mpm__h1_free(&h);
}

/* Without a parsed head: HTTP/1.1 rules, no keep-alive. */
static void test_format_head_no_head(void **state)
{
    formatted_t f;
    format(NULL, 500, -1, 1, &f);
    assert_int_equal(f.framing, MPM__H1_CHUNKED);
    assert_int_equal(f.keepalive, 0);
    assert_true(has(&f, "Connection: close"));
    mpm__h1_t h;
    mpm__h1_event_t ev;
    assert_int_equal(mpm__h1_init(&h, &default_limits), 0);
    feed_str(&h, "GET / HTTP/1.1\r\nHo", &ev);
    format(&h, 408, 0, 1, &f);
    assert_int_equal(f.framing, MPM__H1_LENGTH);
    assert_int_equal(f.keepalive, 0);
    assert_true(has(&f, "Content-Length: 0"));
    mpm__h1_free(&h);
}

static void test_format_head_erange_einval(void **state)
{
    mpm__h1_t h;
    formatted_t f;
    parsed(&h, GET11);
    format(&h, 200, 5, 1, &f);
    static const mpm__h1_header_t hdrs[] = {
        {"Content-Type", "text/plain"}, {"content-length", "999"}, {"X-Y", "z"},
        {"Connection", "upgrade"},      {"Date", "yesterday"},     {"Transfer-Encoding", "gzip"},
    };
    mpm__h1_response_t r = {200, hdrs, 6, 5, 1};
    char buf[1024];
    mpm__h1_framing_t fr;
    int ka;
    for (size_t cap = 0; cap < (size_t)f.len; cap++)
        assert_int_equal(mpm__h1_format_head(&h, &r, buf, cap, &fr, &ka), MPM_ERANGE);
    assert_int_equal(mpm__h1_format_head(&h, &r, buf, (size_t)f.len, &fr, &ka), f.len);
    static const mpm__h1_header_t evil[] = {{"X", "a\r\nSet-Cookie: x"}};
    mpm__h1_response_t bad = {200, evil, 1, 5, 1};
    assert_int_equal(mpm__h1_format_head(&h, &bad, buf, sizeof(buf), &fr, &ka), MPM_EINVAL);
    static const mpm__h1_header_t evil_name[] = {{"X\nY", "a"}};
    bad.headers = evil_name;
    assert_int_equal(mpm__h1_format_head(&h, &bad, buf, sizeof(buf), &fr, &ka), MPM_EINVAL);
    mpm__h1_free(&h);
}

/* ---- canned errors, reasons, chunks, date ---- */

static void test_format_error(void **state)
{
    static const struct {
        int status;
        const char *reason;
    } want[] = {
        {400, "Bad Request"},
        {408, "Request Timeout"},
        {413, "Request Entity Too Large"},
        {414, "Request-URI Too Long"},
        {417, "Expectation Failed"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char buf[512], line[128], body[128];
        int len = mpm__h1_format_error(want[i].status, 0, buf, sizeof(buf));
        assert_true(len > 0);
        snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nDate: ", want[i].status, want[i].reason);
        assert_memory_equal(buf, line, strlen(line));
        snprintf(body, sizeof(body), "%d %s\n", want[i].status, want[i].reason);
        char tail[256];
        snprintf(
            tail, sizeof(tail),
            "\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
            strlen(body), body);
        assert_string_equal(buf + strlen(line) + 29, tail);
        assert_int_equal((size_t)len, strlen(buf));
        for (size_t cap = 0; cap < (size_t)len; cap += 7)
            assert_int_equal(mpm__h1_format_error(want[i].status, 0, buf, cap), MPM_ERANGE);
        assert_int_equal(mpm__h1_format_error(want[i].status, 0, buf, (size_t)len), len);
        /* To HEAD: the same head, with the body's length, and no body. */
        int hlen = mpm__h1_format_error(want[i].status, 1, buf, sizeof(buf));
        assert_int_equal((size_t)hlen, (size_t)len - strlen(body));
        assert_int_equal((size_t)hlen, strlen(buf));
        tail[strlen(tail) - strlen(body)] = '\0';
        assert_string_equal(buf + strlen(line) + 29, tail);
    }
}

static void test_reason(void **state)
{
    assert_string_equal(mpm__h1_reason(200), "OK");
    assert_string_equal(mpm__h1_reason(201), "Created");
    assert_string_equal(mpm__h1_reason(204), "No Content");
    assert_string_equal(mpm__h1_reason(206), "Partial Content");
    assert_string_equal(mpm__h1_reason(301), "Moved Permanently");
    assert_string_equal(mpm__h1_reason(302), "Found");
    assert_string_equal(mpm__h1_reason(304), "Not Modified");
    assert_string_equal(mpm__h1_reason(307), "Temporary Redirect");
    assert_string_equal(mpm__h1_reason(403), "Forbidden");
    assert_string_equal(mpm__h1_reason(404), "Not Found");
    assert_string_equal(mpm__h1_reason(405), "Method Not Allowed");
    assert_string_equal(mpm__h1_reason(411), "Length Required");
    assert_string_equal(mpm__h1_reason(429), "Too Many Requests");
    assert_string_equal(mpm__h1_reason(502), "Bad Gateway");
    assert_string_equal(mpm__h1_reason(504), "Gateway Timeout");
    assert_string_equal(mpm__h1_reason(100), "Continue");
    assert_string_equal(mpm__h1_reason(101), "Switching Protocols");
    assert_string_equal(mpm__h1_reason(308), "Permanent Redirect");
    assert_string_equal(mpm__h1_reason(511), "Network Authentication Required");
    assert_string_equal(mpm__h1_reason(299), "Unknown");
    assert_string_equal(mpm__h1_reason(600), "Unknown");
    assert_string_equal(mpm__h1_reason(-1), "Unknown");
}

static void test_chunk_size(void **state)
{
    char buf[20];
    assert_int_equal(mpm__h1_format_chunk_size(1, buf), 3);
    assert_string_equal(buf, "1\r\n");
    assert_int_equal(mpm__h1_format_chunk_size(255, buf), 4);
    assert_string_equal(buf, "ff\r\n");
    assert_int_equal(mpm__h1_format_chunk_size(4096, buf), 6);
    assert_string_equal(buf, "1000\r\n");
    assert_int_equal(mpm__h1_format_chunk_size(0x1a2b, buf), 6);
    assert_string_equal(buf, "1a2b\r\n");
    assert_int_equal(mpm__h1_format_chunk_size(SIZE_MAX, buf), (int)(2 * sizeof(size_t) + 2));
    assert_string_equal(buf + 2 * sizeof(size_t), "\r\n");
    assert_true(strspn(buf, "f") == 2 * sizeof(size_t));
    assert_string_equal(MPM__H1_LAST_CHUNK, "0\r\n\r\n");
}

static void check_date(const char *d)
{
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] "
                             "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
                             "[0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    if (regexec(&re, d, 0, NULL, 0) != 0)
        fail_msg("bad date \"%s\"", d);
    regfree(&re);
}

static void test_date(void **state)
{
    char d[30], want[64];
    for (int tries = 0; tries < 3; tries++) {
        time_t before = time(NULL);
        mpm__h1_date(d);
        if (time(NULL) != before)
            continue; /* the second changed meanwhile */
        struct tm tm;
        gmtime_r(&before, &tm);
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm); /* C locale */
        assert_string_equal(d, want);
        break;
    }
    assert_int_equal(strlen(d), 29);
    check_date(d);
}

static void *date_thread(void *arg)
{
    char d[30];
    for (int i = 0; i < 10000; i++) {
        mpm__h1_date(d);
        if (strlen(d) != 29 || memcmp(d + 25, " GMT", 4) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_date_threads(void **state)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, date_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        assert_null(rv);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_whole),
        cmocka_unit_test(test_table_split),
        cmocka_unit_test(test_table_bytewise),
        cmocka_unit_test(test_pipelining_waits_for_next),
        cmocka_unit_test(test_end_pending_after_body),
        cmocka_unit_test(test_dead_after_error),
        cmocka_unit_test(test_idle_and_eof),
        cmocka_unit_test(test_arena_reuse),
        cmocka_unit_test(test_arena_growth),
        cmocka_unit_test(test_arena_max_head),
        cmocka_unit_test(test_format_head_layout),
        cmocka_unit_test(test_format_head_framing),
        cmocka_unit_test(test_format_head_head_request),
        cmocka_unit_test(test_format_head_http10),
        cmocka_unit_test(test_format_head_close),
        cmocka_unit_test(test_format_head_no_head),
        cmocka_unit_test(test_format_head_erange_einval),
        cmocka_unit_test(test_format_error),
        cmocka_unit_test(test_reason),
        cmocka_unit_test(test_chunk_size),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_date_threads),
    };
    printf("http1 table: %zu rows\n", NROWS);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
