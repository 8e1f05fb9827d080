/* One client connection and the request being served on it. Private to the
 * connection layer (conn*.c, request.c, response.c). */
#ifndef MPM_CORE_CONN_H
#define MPM_CORE_CONN_H

#include "internal.h"

#include <netinet/in.h>
#include <poll.h>

/* Raw input buffer: it starts small (most heads fit) and doubles while
 * reads fill it, up to MPM__CONN_INBUF, which also bounds pipelined bytes
 * held while a request runs. */
#define MPM__CONN_INBUF_START 2048
#define MPM__CONN_INBUF 16384
/* A kept-alive connection silent this long, with nothing buffered, parks:
 * it gives back its input buffer and the engine's and the response
 * headers' memory (a client that sends its next request at once keeps
 * them, and pays no allocation). */
#define MPM__CONN_PARK_AFTER_MS 100
/* Body bytes discarded after a handler that did not read the whole body,
 * before we give up keep-alive and close instead. */
#define MPM__CONN_DISCARD_MAX (256 * 1024)

/* Response headers the handler added, kept in a buffer reused across the
 * connection's requests so a request costs no allocation. */
typedef struct mpm__resp_headers {
    mpm__h1_header_t *list;
    unsigned n, cap;
    char *strings;
    size_t used, size;
} mpm__resp_headers_t;

struct mpm_request_s {
    mpm__conn_t *conn;
    const mpm__h1_head_t *head;
    int status;
    mpm__resp_headers_t *headers;
    int head_sent;            /* the response head went out */
    int finished;             /* the response is complete */
    mpm__h1_framing_t framing;
    int keepalive;            /* decided when the head was sent */
    int body_done;            /* END seen for the request body */
    int body_failed;          /* the request body is unusable: close after */
    int continue_sent;
    uint64_t body_received;
    char *whole_body;         /* mpm_request_read_body()'s buffer */
    size_t whole_len;
    int body_kept;            /* read_body succeeded: whole_body is the body */
    int body_streamed;        /* the handler took body bytes with mpm_request_read */
    int aborted;              /* mpm_response_abort() */
    uint64_t id;              /* mpm_request_id() */
    int64_t started_us;       /* monotonic µs when the head was complete */
    int64_t wall_us;          /* the same moment, wall clock */
    uint64_t bytes_sent;
    int64_t body_started_ms;  /* when reading the body began (RequestReadTimeout body=) */
    uint64_t body_wire_bytes; /* bytes read from the socket since, framing included */
};

/* What a connection waits for next: the result of every step. A driver (a
 * blocking unit's loop, or the event loop) waits for c->wait_events on the
 * socket until mpm__conn_deadline(c), then calls mpm__conn_step(), or
 * mpm__conn_timed_out() when the deadline passed; MPM__CONN_HANDLER is run
 * by a thread that may block in the host's handler (mpm__conn_run_request). */
typedef enum mpm__conn_state {
    MPM__CONN_HANDSHAKE, /* the transport's handshake wants the socket */
    MPM__CONN_READ,      /* a head is incomplete (or a first request not begun) */
    MPM__CONN_PARK,      /* kept alive, nothing buffered: may give back its buffers */
    MPM__CONN_PREFETCH,  /* a small body is being read before its handler runs */
    MPM__CONN_HANDLER,   /* a complete head: run the handler */
    MPM__CONN_WRITE,     /* response bytes are queued: wait until the socket takes them */
    MPM__CONN_LINGER,    /* our side is shut: discard input until EOF or the linger deadline */
    MPM__CONN_CLOSE      /* done: free it */
} mpm__conn_state_t;

/* Where a connection goes once its queued output is written. */
typedef enum mpm__conn_after {
    MPM__AFTER_NEXT,     /* the next request */
    MPM__AFTER_LINGER,   /* a lingering close */
    MPM__AFTER_CLOSE     /* a plain close */
} mpm__conn_after_t;

struct mpm__conn {
    mpm_server_t *srv;
    mpm__sb_worker_t *unit;
    int fd;
    const mpm__transport_t *tp; /* the listener's */
    void *tp_state;             /* the transport's, from open to close */
    int64_t handshake_deadline; /* the transport's handshake ends by then */
    mpm__h1_t *h1;            /* the engine; NULL while parked (it keeps nothing then) */
    char *in;                 /* in_cap bytes; NULL while parked */
    size_t in_start, in_end;
    const char *pending_body; /* body bytes the engine reported, not yet handed out */
    size_t pending_len;
    unsigned nrequests;
    int64_t accepted_ms;      /* the first request's head is timed from here */
    int draining;             /* graceful stop seen: answer with close */
    int64_t drain_deadline;   /* idle connections close at this time */
    int broken;               /* I/O failed: stop serving */
    mpm__resp_headers_t resp_headers;
    int64_t accepted_us;      /* monotonic µs */
    int64_t head_start_us;    /* when the current head began (0: not yet) */
    int reset_on_close;       /* an aborted response: the close must be a reset */
    /* Response bytes the socket did not take without blocking, copied so
     * that they outlive the caller's memory and whoever drives the
     * connection next can finish them: out[out_start, out_end). Allocated
     * on the first write that would block, released when drained between
     * requests. */
    char *out;
    size_t out_start, out_end, out_cap;
    /* 0 while writes progress; once one would block, the moment the stall
     * becomes fatal (Timeout without a byte taken). Progress clears it. */
    int64_t write_stall_deadline;
    /* The peer's address as accept gave it (peer_len 0: unknown), so a
     * reset or our own shutdown, which make getpeername fail, cannot lose
     * it; formatted into remote on first use. */
    socklen_t peer_len;
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer;
    char remote[64], local[64];
    int remote_port, local_port; /* -1: not formatted / looked up yet */

    /* The state machine (conn.c). Deadlines are monotonic ms. */
    mpm__conn_state_t state;
    short wait_events;        /* POLLIN / POLLOUT: what the state waits for */
    unsigned char after_write;/* mpm__conn_after_t */
    unsigned char error_queued; /* an error answer is queued: flush it, then linger */
    unsigned char counted;    /* counted in a unit's connections */
    int64_t deadline;         /* READ, PARK, PREFETCH, LINGER */
    int64_t idle_since_ms;    /* the keep-alive wait began */
    int64_t head_start_ms;    /* first byte of the current head (0: none yet) */
    uint64_t head_bytes;      /* bytes read since */
    size_t in_cap;            /* bytes allocated at in */
    int64_t prefetch_started_ms; /* also: when the body being discarded began */
    /* The handler left part of the body: it is read and dropped (a state of
     * its own, so a loop can finish it) before the next request. */
    int discarding;
    uint64_t discard_left;    /* bytes more than this: give up keep-alive */
    /* Set by the strategy: a response tail of up to this many bytes may be
     * left queued for another thread to write (0: write it all here), and
     * bodies of up to prefetch_max bytes are read before the handler. */
    size_t async_out_max;
    size_t prefetch_max;
    /* A sendfile body not yet sent (file_fd -1: none), written after out. */
    int file_fd;
    off_t file_off;
    size_t file_left;
    void *owner;              /* the driving strategy's per-connection data */
    /* What the transport's last socket call in each direction found: 1
     * once a call would block (or, for TCP, a read came back short), 0
     * once one moved bytes. A loop told of readiness only when it changes
     * (edge-triggered epoll, event) waits for a direction only while it is
     * dry; the transports keep these (mpm__conn_saw). */
    unsigned char in_dry, out_dry;
};

/* The poll events a transport's MPM__WANT_READ / MPM__WANT_WRITE waits for. */
static inline short mpm__want_events(ssize_t want)
{
    return want == MPM__WANT_WRITE ? POLLOUT : POLLIN;
}

/* Whether a transport code says "would block" (either direction). */
static inline int mpm__would_block(ssize_t rc)
{
    return rc == MPM__WANT_READ || rc == MPM__WANT_WRITE;
}

/* A transport's socket call returned rc: a would-block leaves its
 * direction dry (see in_dry). Returns rc. */
static inline ssize_t mpm__conn_saw(mpm__conn_t *c, ssize_t rc)
{
    if (rc == MPM__WANT_READ)
        c->in_dry = 1;
    else if (rc == MPM__WANT_WRITE)
        c->out_dry = 1;
    return rc;
}

/* Outcome of waiting for the socket. */
enum { MPM__WAIT_READY = 1, MPM__WAIT_TIMEOUT = 0, MPM__WAIT_STOP = -1, MPM__WAIT_DRAIN = 2 };

/* Waits until fd is readable (POLLIN) or writable (POLLOUT), the deadline
 * (monotonic ms) passes, or a hard stop is requested. Returns
 * MPM__WAIT_DRAIN once when a graceful stop begins (the connection is then
 * draining and the caller may shorten its deadline). */
int mpm__conn_wait(mpm__conn_t *c, short events, int64_t deadline_ms);

/* Enters the drain window of DESIGN §4: the next request is still answered
 * (with Connection: close) if it arrives before drain_deadline. */
void mpm__conn_start_draining(mpm__conn_t *c);

/* Gives back what a kept-alive connection with nothing buffered does not
 * need while it waits: the input buffer, the engine's arena and header
 * arrays, the response-header buffer. Each comes back when next needed. */
void mpm__conn_park(mpm__conn_t *c);

/* Reads more bytes into the input buffer (allocated here if the connection
 * was parked), waiting until deadline_ms.
 * Returns bytes read (> 0), 0 on EOF, MPM_ETIMEDOUT, MPM_EAGAIN when a
 * graceful stop began (re-plan, then call again), MPM_ECLOSED (hard stop or
 * I/O error). */
ssize_t mpm__conn_fill(mpm__conn_t *c, int64_t deadline_ms);

/* The deadline of a RequestReadTimeout stage (head or body) that began at
 * start_ms and has received `bytes` since: start + timeout, plus a second
 * per MinRate bytes, capped at start + max (mod_reqtimeout's rule). Driven
 * by the clock, not by parse events, so input the engine swallows without
 * an event (chunk extensions) cannot stretch it. Never later than
 * now + Timeout, which bounds every single read; a stage turned off (0)
 * gives that alone. */
int64_t mpm__read_deadline(const mpm__conn_t *c, const mpm__read_timeout_t *t, int64_t start_ms,
                           uint64_t bytes);

/* Feeds buffered input to the engine (made again first if the connection
 * was parked); reports the next event (NEED_MORE when the buffer is
 * exhausted; ERROR 500 when out of memory). */
void mpm__conn_next_event(mpm__conn_t *c, mpm__h1_event_t *ev);
void mpm__conn_engine_free(mpm__conn_t *c);

/* Writes every byte of iov: straight to the transport while it takes them;
 * what it does not take is copied into the connection's output queue and
 * flushed from there. Returns once everything went out (blocking path), 0,
 * or a negative error (the connection is then broken): MPM_ETIMEDOUT when
 * the client took no byte for Timeout. iov is modified. */
int mpm__conn_sendv_all(mpm__conn_t *c, struct iovec *iov, int iovcnt);

/* One non-blocking pass over the output queue: 0 when it is empty,
 * MPM__WANT_READ / MPM__WANT_WRITE when the transport would block, or a
 * negative error. What a loop calls when the socket is ready again. */
ssize_t mpm__conn_out_write(mpm__conn_t *c);

/* Writes the output queue out, waiting (Timeout per stall). 0 or a
 * negative error (the connection is then broken). */
int mpm__conn_out_flush(mpm__conn_t *c);

/* Waits for the socket after a write that would block (`want` is the
 * transport's MPM__WANT_*), bounded by the stall deadline. 0 to retry, or
 * a negative error (the connection is then broken). */
int mpm__conn_wait_writable(mpm__conn_t *c, ssize_t want);

/* A write moved bytes: the stall clock stops. */
static inline void mpm__conn_wrote(mpm__conn_t *c)
{
    c->write_stall_deadline = 0;
}

/* Whether response bytes (queued, or a file's rest) wait to go out. */
static inline int mpm__conn_out_pending(const mpm__conn_t *c)
{
    return c->out_start < c->out_end || c->file_left > 0;
}

/* Writes what the transport takes of iov at once and queues the rest, never
 * waiting (a driver finishes it: MPM__CONN_WRITE). 0 or a negative error. */
int mpm__conn_queue(mpm__conn_t *c, struct iovec *iov, int iovcnt);

/* Leaves the rest of a file body, [off, off+len) of fd, to be sent after
 * the queue by whoever drives the connection next (the fd is duplicated).
 * MPM_ENOTSUP when the strategy finishes writes itself, or another error. */
int mpm__conn_file_defer(mpm__conn_t *c, int fd, off_t off, size_t len);
void mpm__conn_file_drop(mpm__conn_t *c);

/* Non-blocking read into the input buffer: bytes read (> 0), 0 on EOF,
 * MPM__WANT_READ / MPM__WANT_WRITE, MPM_ERANGE (buffer full), or
 * MPM_ECLOSED (I/O error; the connection is broken). */
ssize_t mpm__conn_try_fill(mpm__conn_t *c);

/* Makes room for n bytes from in_start on (a prefetched body). */
int mpm__conn_reserve_input(mpm__conn_t *c, size_t n);

/* The state machine (conn.c). mpm__conn_new() takes an accepted fd (it is
 * not closed by mpm__conn_free: the strategy closes it); begin/step/
 * timed_out/drain return the state entered; run_request runs the handler
 * on the calling thread, whose scoreboard unit the connection is bound to
 * for the call. */
mpm__conn_t *mpm__conn_new(mpm_server_t *srv, const mpm__accepted_t *a);
mpm__conn_state_t mpm__conn_begin(mpm__conn_t *c);
mpm__conn_state_t mpm__conn_step(mpm__conn_t *c);
mpm__conn_state_t mpm__conn_run_request(mpm__conn_t *c, mpm__sb_worker_t *unit);
mpm__conn_state_t mpm__conn_timed_out(mpm__conn_t *c);
mpm__conn_state_t mpm__conn_drain(mpm__conn_t *c);
int64_t mpm__conn_deadline(const mpm__conn_t *c);
void mpm__conn_free(mpm__conn_t *c);

/* Frees the output queue's memory if it is empty (between requests). */
void mpm__conn_out_release(mpm__conn_t *c);

/* Queues the library's error response for `status` (the host's error page
 * if it set one, else a canned text/plain one), always with Connection:
 * close, writing what the socket takes at once; c->error_queued then makes
 * the state machine flush the rest and close lingeringly. `req` is the
 * request it answers, or NULL when no head was complete; `id` the request
 * id it is logged under. Returns the body bytes queued (0 if that failed). */
uint64_t mpm__conn_send_error(mpm__conn_t *c, int status, const mpm_request_t *req, uint64_t id);

/* Formats the library's error response into buf: the host's error page
 * (error_page.c) or the canned one. Returns the head+body length, with the
 * body's length in *body_len, or a negative error. */
int mpm__error_response(mpm__conn_t *c, int status, const mpm_request_t *req, uint64_t id,
                        char *buf, size_t cap, size_t *body_len);

/* The body of the library's answer for `status`: the host's page (returns
 * 1) or the canned "status reason\n" text/plain one (returns 0). body must
 * hold MPM__ERROR_BODY_MAX bytes; *type is borrowed. */
#define MPM__ERROR_BODY_MAX 4096
int mpm__error_page(mpm__conn_t *c, int status, const mpm_request_t *req, uint64_t id,
                    char *body, size_t *body_len, const char **type);

/* Time for the access log: monotonic and wall clock, in microseconds. */
int64_t mpm__now_us(void);
int64_t mpm__wall_us(void);

/* A new request id: unique among every process of the server's run (a
 * counter in the shared scoreboard). */
uint64_t mpm__request_id_next(mpm_server_t *srv);

/* Access log (access_log.c): a request the handler saw, at its end; and a
 * response the library sent before any head was complete (method and target
 * unknown). */
void mpm__access_log_request(const mpm_request_t *req);
void mpm__access_log_unparsed(mpm__conn_t *c, int status, uint64_t id, int64_t wall_us,
                              uint64_t bytes_sent);

/* The peer's address, as accept gave it, formatted on first use (an
 * access-log entry or a handler's ask); the local one looked up on first
 * use (most handlers never ask). */
void mpm__conn_take_peer(mpm__conn_t *c);
void mpm__conn_take_local(mpm__conn_t *c);

/* Request lifecycle (request.c). */
void mpm__request_start(mpm_request_t *req, mpm__conn_t *c);
void mpm__request_finish(mpm_request_t *req);
/* Whether body bytes the handler has not read are still to come. */
int mpm__request_body_pending(const mpm_request_t *req);

/* Response helpers (response.c). Sends the head for a response of the
 * given content length (-1 = stream). */
int mpm__response_send_head(mpm_request_t *req, int64_t content_length);
/* Completes the response if the handler left it open (500 if nothing sent). */
void mpm__response_complete(mpm_request_t *req);
void mpm__resp_headers_free(mpm__resp_headers_t *h);

#endif
