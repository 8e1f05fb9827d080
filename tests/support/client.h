/* A small blocking HTTP/1.1 test client over real sockets.
 *
 * Every call that waits takes a bound in milliseconds; nothing in here sleeps
 * to synchronize. Results are TC_* codes (0 = ok, negative = what happened),
 * so a test can assert exactly what a user would see: a response, the server
 * closing, a reset, or nothing before the deadline. */
#ifndef MPM_TEST_CLIENT_H
#define MPM_TEST_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#define TC_DEFAULT_TIMEOUT_MS 10000

enum tc_result {
    TC_OK = 0,
    TC_CLOSED = -1,  /* the server closed the connection (read returned 0) */
    TC_RESET = -2,   /* the connection was reset (ECONNRESET / EPIPE) */
    TC_TIMEOUT = -3, /* nothing conclusive before the deadline */
    TC_PROTO = -4,   /* the bytes received are not a valid HTTP/1.x response */
    TC_SYSERR = -5,  /* another system error (see errno) */
};

/* Name of a TC_* code, for messages. */
const char *tc_result_name(int rc);

typedef struct tc_conn {
    int fd;
    char *buf;  /* received but not yet consumed bytes */
    size_t len; /* bytes in buf */
    size_t cap;
    int eof;    /* the server closed its side */
} tc_conn_t;

typedef struct tc_header {
    char *name;
    char *value;
} tc_header_t;

typedef struct tc_response {
    int version;     /* 10 or 11 */
    int status;
    char reason[64];
    tc_header_t *headers;
    size_t nheaders;
    char *body;      /* NUL-terminated copy of the decoded body (never NULL after a read) */
    size_t body_len;
    int chunked;     /* the body came chunked */
    int close_delimited; /* the body ran until the server closed */
    char *trailers;  /* raw trailer section of a chunked body ("" when none) */
} tc_response_t;

/* Connects to 127.0.0.1:port within timeout_ms. Returns TC_OK or an error. */
int tc_connect(tc_conn_t *c, int port, int timeout_ms);
/* Closes the socket and frees the buffer; safe on a closed/zeroed conn. */
void tc_close(tc_conn_t *c);

/* Sends all bytes (blocking, MSG_NOSIGNAL), giving up after timeout_ms.
 * Returns TC_OK, TC_RESET (peer gone), TC_TIMEOUT or TC_SYSERR. */
int tc_send(tc_conn_t *c, const void *data, size_t len, int timeout_ms);
int tc_send_str(tc_conn_t *c, const char *s);
/* Sends in pieces of `piece` bytes with pause_ms between them (to exercise
 * incremental parsing; the pauses are not synchronization). */
int tc_send_pieces(tc_conn_t *c, const void *data, size_t len, size_t piece, int pause_ms);

/* Sends all bytes while reading whatever the server sends back into the
 * connection's buffer (for large echoes, where both sides must move at once).
 * Stops early if the server closes or resets. Returns TC_OK when everything
 * was sent, else the reason it stopped. */
int tc_send_while_reading(tc_conn_t *c, const void *data, size_t len, int timeout_ms);

/* Reads one full response (interim 1xx responses included: they come back
 * with their status and no body). head_request: the request was HEAD, so the
 * response has no body whatever its headers say. Returns TC_OK, TC_CLOSED
 * when the server closed before a complete response, TC_RESET, TC_TIMEOUT or
 * TC_PROTO. The caller frees r with tc_response_free() in every case. */
int tc_read_response(tc_conn_t *c, tc_response_t *r, int head_request, int timeout_ms);
void tc_response_free(tc_response_t *r);

/* The pieces of tc_read_response() other transports' clients reuse (the
 * TLS test client): a status line and one header line, n bytes without
 * their CRLF, into r. TC_OK, TC_PROTO, or TC_SYSERR (no memory). */
int tc_parse_status_line(const char *line, size_t n, tc_response_t *r);
int tc_add_header(tc_response_t *r, const char *line, size_t n);

/* First header with this name (case-insensitive), or NULL. */
const char *tc_header(const tc_response_t *r, const char *name);
/* Whether a comma-separated header contains token (case-insensitive). */
int tc_header_has_token(const tc_response_t *r, const char *name, const char *token);

/* Reads and discards until the server closes. Returns TC_CLOSED (clean EOF),
 * TC_RESET, or TC_TIMEOUT if the connection is still open at the deadline.
 * *extra (may be NULL) gets the number of bytes received meanwhile. */
int tc_wait_close(tc_conn_t *c, int timeout_ms, size_t *extra);

/* Whether bytes (or EOF) arrive within timeout_ms without consuming them. */
int tc_readable(tc_conn_t *c, int timeout_ms);

/* One request on a fresh connection: connect, send raw, read one response,
 * close. Returns as tc_read_response(). */
int tc_exchange(int port, const char *raw, tc_response_t *r, int timeout_ms);

/* Monotonic clock in milliseconds. */
int64_t tc_now_ms(void);

#endif
