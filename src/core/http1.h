/* The HTTP/1.1 engine: sans-I/O. Bytes in, parse events out; response heads
 * and chunk framing formatted into caller buffers. No socket calls here, so
 * blocking threads and event loops drive the same code, and tests can feed it
 * byte by byte. */
#ifndef MPM_CORE_HTTP1_H
#define MPM_CORE_HTTP1_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

/* The limits the engine enforces (from the directives of the same names). */
typedef struct mpm__h1_limits {
    size_t request_line; /* LimitRequestLine: method + target + version */
    size_t field_size;   /* LimitRequestFieldSize: one "name: value" */
    unsigned fields;     /* LimitRequestFields */
    uint64_t body;       /* LimitRequestBody; 0 = unlimited */
} mpm__h1_limits_t;

typedef struct mpm__h1_header {
    const char *name;  /* NUL-terminated, in the engine's arena */
    const char *value; /* NUL-terminated, leading/trailing OWS stripped */
} mpm__h1_header_t;

/* A parsed request head. All strings live in the engine's arena and stay
 * valid until mpm__h1_next() or mpm__h1_free(). */
typedef struct mpm__h1_head {
    const char *method;        /* "GET" */
    const char *target;        /* as sent */
    const char *path;          /* target up to '?'; for absolute-form the URI's path
                                  ("/" when empty, "*" for OPTIONS) */
    const char *query;         /* after '?', or "" */
    int version;               /* 10, or 11 for HTTP/1.1 and any later HTTP/1.x */
    mpm__h1_header_t *headers; /* for absolute-form, Host holds its authority
                                  (added if the request had none) */
    unsigned nheaders;
    int is_head;            /* method is HEAD: the response carries no body */
    int client_keepalive;   /* 1.1 without "Connection: close", or 1.0 with keep-alive */
    int expect_continue;    /* "Expect: 100-continue" */
    int chunked;            /* Transfer-Encoding: chunked */
    int64_t content_length; /* -1 if chunked, else 0.. */
} mpm__h1_head_t;

typedef enum mpm__h1_event_type {
    MPM__H1_NEED_MORE = 0, /* all input consumed; feed more */
    MPM__H1_HEAD,          /* request head complete: see mpm__h1_head() */
    MPM__H1_BODY,          /* ev.data/ev.len: body bytes, pointing into the fed input */
    MPM__H1_END,           /* the request (body included) is complete */
    MPM__H1_ERROR          /* ev.status: the status to answer with, then close */
} mpm__h1_event_type_t;

typedef struct mpm__h1_event {
    mpm__h1_event_type_t type;
    const char *data;
    size_t len;
    int status;      /* for MPM__H1_ERROR: 400, 413, 414, 417, 431, 501, 505;
                        500 if memory for the head ran out */
    const char *why; /* for MPM__H1_ERROR: short reason, for the log */
} mpm__h1_event_t;

/* What one request has shown so far (private; zeroed per request). */
typedef struct mpm__h1_msg {
    size_t line_len;  /* request-line bytes seen so far (CRLF excluded) */
    size_t field_len; /* bytes of the header line being read */
    size_t method_off, target_off, name_off, value_off; /* arena offsets */
    size_t path_off, host_off;          /* the path copy; the absolute-form authority */
    size_t qpos;                        /* offset of the target's '?' (or its length) */
    int line_state;                     /* request-line scan: where in the line */
    int pct;                            /* request-line scan: hex digits still due after '%' */
    int vpos;                           /* request-line scan: bytes of "HTTP/x.y" seen */
    int major, minor;                   /* the version digits */
    int method;                         /* an llhttp_method_t, or -1 when unknown */
    int absolute;                       /* the target is in absolute-form */
    int span;                           /* header span being read: none, name, value */
    unsigned nfields;                   /* header (or trailer) lines started */
    unsigned hosts, lengths, encodings; /* Host, Content-Length, Transfer-Encoding seen */
    int te_chunked_last, te_other;      /* the coding list so far: ends in chunked, has others */
    int64_t content_length;             /* as declared (when lengths == 1) */
    int conn_close, conn_keepalive;     /* Connection tokens seen */
    int expect_100, expect_other;       /* Expect values seen */
    uint64_t body_seen;                 /* body bytes delivered */
    uint64_t chunk_total;               /* sum of the chunk sizes announced */
    int fs_state;        /* field-section scan (head and trailers): where in a line */
    int fs_done;         /* the empty line that ends the section was seen */
    size_t fs_line;      /* trailer scan: bytes of the current line */
    unsigned fs_fields;  /* trailer scan: lines seen */
    int ck_state;        /* chunked framing: where in the chunk */
    size_t ck_line;      /* chunk-size line bytes so far (extensions included) */
    uint64_t chunk_left; /* data bytes of the current chunk not yet delivered */
} mpm__h1_msg_t;

/* Per-connection parser. Embeddable; treat the fields as private. */
typedef struct mpm__h1 {
    llhttp_t parser; /* parser.data points back here: do not move h after init */
    mpm__h1_limits_t limits;
    char *arena; /* head storage, grows up to what the limits allow */
    size_t arena_len, arena_cap, arena_max;
    mpm__h1_head_t head;
    mpm__h1_header_t *hdrs; /* grows by doubling up to limits.fields entries */
    size_t *hdr_off;        /* private: name/value arena offsets (the arena may move) */
    unsigned hdr_cap;       /* private: entries allocated in hdrs and hdr_off */
    int state;              /* private: where in the message we are */
    int paused_at_head;     /* private: llhttp stopped at the end of the head */
    int error_status;
    const char *error_why;
    mpm__h1_msg_t msg; /* private: per-request parse state */
} mpm__h1_t;

/* Prepares h (which must not move afterwards: llhttp points back to it).
 * Allocates nothing yet: the arena and header array are allocated at the
 * first request and reused. Returns 0, or MPM_EINVAL. */
int mpm__h1_init(mpm__h1_t *h, const mpm__h1_limits_t *lim);
/* Frees the arena and header arrays. Between requests (after
 * mpm__h1_next()) the engine stays usable: it allocates them again at the
 * next head, which is how a parked connection gives them back. */
void mpm__h1_free(mpm__h1_t *h);

/* Feeds bytes. Consumes a prefix of data (returned) and reports one event in
 * *ev. Call again with the rest (possibly zero bytes: a pending event, such as
 * END right after the last BODY, is then reported). After HEAD the caller may
 * keep feeding to get BODY and END. After END, feeding more returns
 * NEED_MORE without consuming until mpm__h1_next() is called: pipelined bytes
 * stay in the caller's buffer in order. After ERROR, the engine is dead. */
size_t mpm__h1_feed(mpm__h1_t *h, const char *data, size_t len, mpm__h1_event_t *ev);

/* The client closed its side. Returns 1 if that cut a request short (the
 * caller should answer 400 and close), 0 if it was between requests. */
int mpm__h1_eof(mpm__h1_t *h);

/* True while between requests with no byte of the next one seen. */
int mpm__h1_idle(const mpm__h1_t *h);

/* The current request's head (valid after HEAD). */
const mpm__h1_head_t *mpm__h1_head(const mpm__h1_t *h);
/* Whether the current request is a HEAD, as soon as its request line is
 * known (an error answered before its head completed has no body for it
 * either). 0 for NULL. */
int mpm__h1_is_head_request(const mpm__h1_t *h);

/* Resets for the next request on the same connection (after END and the
 * response). Frees nothing; the arena is reused. */
void mpm__h1_next(mpm__h1_t *h);

/* ---- response side ---- */

/* How the response body is framed. */
typedef enum mpm__h1_framing {
    MPM__H1_LENGTH,      /* Content-Length: content_length */
    MPM__H1_CHUNKED,     /* Transfer-Encoding: chunked (HTTP/1.1 only) */
    MPM__H1_UNTIL_CLOSE, /* HTTP/1.0 stream: no length, close after */
    MPM__H1_NO_BODY      /* HEAD, 1xx, 204, 304: no body bytes at all */
} mpm__h1_framing_t;

typedef struct mpm__h1_response {
    int status;
    const mpm__h1_header_t *headers; /* the handler's own headers */
    unsigned nheaders;
    int64_t content_length; /* >= 0 for a known length, -1 to stream */
    int keepalive;          /* in: the server's wish (KeepAlive on, limits, draining) */
} mpm__h1_response_t;

/* Formats a complete response head ("HTTP/1.1 200 OK\r\n...\r\n\r\n") for the
 * current request into buf: status line, Date, the handler's headers,
 * Content-Length or Transfer-Encoding, Connection. Decides the framing and
 * the keep-alive outcome: keep-alive only if resp->keepalive, the client
 * asked for it (per version rules), and the framing allows it.
 * Returns the length written, or MPM_ERANGE if buf is too small, or
 * MPM_EINVAL if a handler header contains CR/LF (response splitting).
 * The engine writes Date, Content-Length, Transfer-Encoding and Connection
 * itself; handler headers with those names are dropped.
 * *framing and *keepalive receive the decisions (only on success). Works without a parsed
 * head too (error responses before the head is complete): then HTTP/1.1,
 * no keep-alive. */
int mpm__h1_format_head(const mpm__h1_t *h, const mpm__h1_response_t *resp, char *buf, size_t cap,
                        mpm__h1_framing_t *framing, int *keepalive);

/* A complete, canned error response with a short text/plain body (its
 * length only, for a HEAD request) and "Connection: close". Returns the
 * length or MPM_ERANGE. */
int mpm__h1_format_error(int status, int is_head, char *buf, size_t cap);

/* "1a2b\r\n": the chunk-size line for a chunk of len bytes (len > 0).
 * buf needs 20 bytes. Returns the length. */
int mpm__h1_format_chunk_size(size_t len, char *buf);

/* The last chunk and the empty trailer. */
#define MPM__H1_LAST_CHUNK "0\r\n\r\n"

/* "HTTP/1.1 100 Continue\r\n\r\n". */
#define MPM__H1_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

/* The reason phrase of a status, "Unknown" for codes without one. */
const char *mpm__h1_reason(int status);

/* Writes the current IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", 29 bytes
 * plus NUL) into out. Cached per thread and refreshed once a second, so it
 * costs no syscall per request beyond a clock read. */
void mpm__h1_date(char out[30]);

#endif
