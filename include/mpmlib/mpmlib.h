/* mpmlib: serve HTTP/1.1 with Apache httpd's prefork / worker / event
 * process models, embedded in a host program.
 *
 * Usage, in short:
 *
 *     mpm_config_t *cfg;
 *     mpm_config_new(&cfg);
 *     mpm_config_set(cfg, "Listen", "127.0.0.1:8080");
 *     mpm_config_set_handler(cfg, on_request, NULL);
 *     mpm_server_t *srv;
 *     if (mpm_server_new(cfg, &srv) == 0) mpm_server_run(srv);
 *
 * Conventions for every function below:
 * - Return value: 0 (or a non-negative count) on success, a negative MPM_E*
 *   code (see <mpmlib/errno.h>) on failure; mpm_strerror() describes it.
 * - "Borrowed" pointers stay owned by the library and are valid only for the
 *   lifetime stated; copy what you keep.
 * - Destructors (mpm_*_free) accept NULL.
 * - Nothing is global: two servers in one process do not interfere.
 */
#ifndef MPMLIB_MPMLIB_H
#define MPMLIB_MPMLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <mpmlib/errno.h>
#include <mpmlib/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MPM_EXTERN __attribute__((visibility("default")))
#else
#define MPM_EXTERN
#endif

typedef struct mpm_config_s mpm_config_t;
typedef struct mpm_server_s mpm_server_t;
typedef struct mpm_request_s mpm_request_t;

/* ------------------------------------------------------------------ */
/* Version and errors                                                 */

/* Returns MPM_VERSION_HEX of the library actually linked. Thread: any. */
MPM_EXTERN unsigned mpm_version(void);
/* Returns "MAJOR.MINOR.PATCH" of the linked library; static storage. */
MPM_EXTERN const char *mpm_version_string(void);
/* Returns a static description of an MPM_E* code (or of any -errno value).
 * Never NULL; unknown codes give "unknown error". Thread: any. */
MPM_EXTERN const char *mpm_strerror(int err);
/* Returns the static symbolic name ("EADDRINUSE", "ECONFIG", ...) of a code,
 * or "UNKNOWN". Thread: any. */
MPM_EXTERN const char *mpm_err_name(int err);

/* ------------------------------------------------------------------ */
/* Callbacks                                                          */

/* The request handler. Called once per request on the thread that serves
 * the connection (the calling thread in prefork one-process mode, a pool
 * thread under worker/event). `req` is borrowed: it and every pointer
 * obtained from it are valid until the handler returns. A handler that
 * returns without having responded gets a 500 sent for it. */
typedef void (*mpm_request_cb)(mpm_request_t *req, void *data);

/* Process and thread hooks. child_init runs in each child process right after
 * fork (in one-process mode: once, before serving); a non-zero return makes
 * that child exit as "fatal" (in one-process mode mpm_server_run() fails with
 * MPM_ECHILD). thread_init/exit run in each request-serving thread. */
typedef int (*mpm_init_cb)(void *data);
typedef void (*mpm_exit_cb)(void *data);

/* Log levels, httpd's names. */
typedef enum mpm_log_level {
    MPM_LOG_ERROR = 3,
    MPM_LOG_WARN = 4,
    MPM_LOG_NOTICE = 5,
    MPM_LOG_INFO = 6,
    MPM_LOG_DEBUG = 7
} mpm_log_level_t;

/* Receives the library's log lines (no trailing newline). `msg` is borrowed
 * for the call. May be called from any thread and any process of the server,
 * concurrently: the callback must be thread-safe. Without one, lines at or
 * above LogLevel go to stderr. */
typedef void (*mpm_log_cb)(mpm_log_level_t level, const char *msg, void *data);

/* One finished request, for access logging. Plain data, borrowed for the call;
 * `size` is sizeof the struct the library filled (fields are only appended). */
typedef struct mpm_access_entry {
    size_t size;
    const char *remote_addr;  /* "127.0.0.1", "::1", or "unix" (taken when
                                 serving began; "-" if the peer was already gone) */
    const char *method;       /* NULL when the library answered before the
                                 request line was parsed (400, 414, 408 ...) */
    const char *target;       /* request target as sent; NULL as method */
    int version;              /* 10 or 11; 0 when method is NULL */
    int status;               /* as sent: the library's own answers (400, 408,
                                 413, 500 ...) are logged too */
    uint64_t bytes_sent;      /* body bytes */
    uint64_t duration_us;     /* from head complete (for the library's answers
                                 before a head: from the head's start) to
                                 response end, in microseconds */
    /* Appended in 0.2; check `size` before reading them. */
    int remote_port;          /* 0 for unix sockets */
    uint64_t request_id;      /* unique per server run (mpm_request_id()) */
    int64_t time_us;          /* wall clock (Unix time, µs) when the head was
                                 complete; 0 when unknown */
    const char *referer;      /* Referer header, NULL when absent */
    const char *user_agent;   /* User-Agent header, NULL when absent */
} mpm_access_entry_t;
/* Called once for every response the library sends: the handler's, and
 * the library's own answers (a rejected head, a timeout, a 500 for a handler
 * that did not respond). Runs on the thread that served the request, in the
 * serving process, after the response went out; must be thread-safe. */
typedef void (*mpm_access_log_cb)(const mpm_access_entry_t *entry, void *data);

/* Ready-made access-log lines, as httpd's LogFormat nicknames. */
typedef enum mpm_access_format {
    MPM_ACCESS_COMMON = 0,  /* "%h %l %u %t \"%r\" %>s %b" */
    MPM_ACCESS_COMBINED = 1 /* common + " \"%{Referer}i\" \"%{User-Agent}i\"" */
} mpm_access_format_t;

/* Formats one entry as a log line ending in '\n', NUL-terminated, into buf:
 * `127.0.0.1 - - [01/Dec/2026:22:25:52 +0000] "GET / HTTP/1.1" 200 13`. The
 * time is the entry's (local time), or now for an entry without one. As
 * httpd does, '"', '\\', control and non-ASCII bytes of the request line,
 * Referer and User-Agent are escaped (\xhh), so no client can forge a line;
 * absent values are "-". Write the line with one write(2) on an O_APPEND fd
 * and lines from every process and thread stay whole.
 * Returns the length (without the NUL). Errors: MPM_ERANGE when len is too
 * small (an escaped byte takes up to 4: 4 × the lengths of target, Referer
 * and User-Agent, plus 200, is always enough), MPM_EINVAL for NULL arguments, len 0, an
 * unknown format or an entry whose size is too small.
 * Thread: any (no shared state). */
MPM_EXTERN int mpm_access_log_format(const mpm_access_entry_t *e, mpm_access_format_t format,
                                     char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Configuration                                                      */

/* Creates a configuration holding every directive's default.
 * Ownership: *out is the caller's; free with mpm_config_free().
 * Errors: MPM_ENOMEM, MPM_EINVAL (out NULL). Thread: any. */
MPM_EXTERN int mpm_config_new(mpm_config_t **out);
MPM_EXTERN void mpm_config_free(mpm_config_t *cfg);

/* Sets one directive by its httpd name (case-insensitive), value as text,
 * exactly as a config file line would: "KeepAliveTimeout" "5",
 * "KeepAlive" "On", "Listen" "[::1]:8080" (Listen adds; it may be given
 * several times). The strategy is the directive "MPM" (prefork|worker|event),
 * one-process mode the directive "OneProcess" (On|Off).
 * Errors: MPM_ECONFIG for an unknown directive or a bad value, with the reason
 * in mpm_config_errmsg(); the configuration is then unchanged.
 * Ownership: key and value are copied. Thread: not thread-safe per cfg. */
MPM_EXTERN int mpm_config_set(mpm_config_t *cfg, const char *key, const char *value);

/* Typed helper for numeric directives ("ThreadsPerChild", 8). Same checks and
 * errors as mpm_config_set(). */
MPM_EXTERN int mpm_config_set_int(mpm_config_t *cfg, const char *key, long long value);

/* Reads a directive's current value back as text into buf (NUL-terminated).
 * Returns the length, MPM_ECONFIG for an unknown key, MPM_ERANGE when buf is
 * too small. "Listen" gives the listeners separated by spaces. "MPM" gives
 * the strategy a server would use: the one set, or when none was, the best
 * one built (as mpm_stats_t.strategy reports).
 * Sizing: with buf NULL and len 0 it returns the length without writing
 * anything; a buffer of length + 1 bytes then holds the value. */
MPM_EXTERN int mpm_config_get(const mpm_config_t *cfg, const char *key, char *buf, size_t len);

/* Adds a listening socket the host already opened (bound and listening, or
 * just bound: the library calls listen() if needed). The library sets
 * O_NONBLOCK on it (accept is driven by poll/epoll) and no other option
 * (DeferAccept and TLSDeferAccept apply only to sockets the library opens),
 * and does not close it; the host keeps ownership and closes it after the
 * server is freed.
 * Errors: MPM_EINVAL for a negative fd or one that is not a stream socket. */
MPM_EXTERN int mpm_config_add_listen_fd(mpm_config_t *cfg, int fd);

/* TLS. A TLS listener is added with the directive "TLSListen HOST:PORT"
 * (like Listen) or, for a socket the host opened, with this call (same
 * rules as mpm_config_add_listen_fd()). A server with a TLS listener needs
 * at least one certificate. */
MPM_EXTERN int mpm_config_add_tls_listen_fd(mpm_config_t *cfg, int fd);

/* Adds a certificate: cert_file is a PEM file holding the certificate
 * followed by its chain; key_file the PEM private key (NULL or "": the key
 * follows in cert_file). The first certificate added is the default; the
 * others are chosen by the client's SNI name, matched against each
 * certificate's subjectAltName DNS names (wildcards as RFC 6125), else its
 * Common Name. The files are read when the server starts and again at each
 * restart, so replacing them and restarting gracefully rotates a
 * certificate; a file that cannot be read or a key that does not match is
 * an MPM_ECONFIG from mpm_server_run() naming the file. The same as the
 * directive "TLSCertificate CERT [KEY]", which cannot take paths with
 * spaces. Errors: MPM_EINVAL for cfg or cert_file NULL, MPM_ECONFIG for too
 * many certificates (8) or a path longer than 255 bytes. */
MPM_EXTERN int mpm_config_add_tls_certificate(mpm_config_t *cfg, const char *cert_file,
                                              const char *key_file);

/* The reason for the last failed mpm_config_* call on cfg ("" when none).
 * A successful mpm_config_set(), mpm_config_set_int(), mpm_config_add_*()
 * clears it, so it never describes an earlier
 * failure. Borrowed; valid until the next call on cfg. */
MPM_EXTERN const char *mpm_config_errmsg(const mpm_config_t *cfg);

/* Registers the request handler (required). `data` is passed back verbatim. */
MPM_EXTERN int mpm_config_set_handler(mpm_config_t *cfg, mpm_request_cb cb, void *data);
/* Either callback may be NULL. */
MPM_EXTERN int mpm_config_set_child_hooks(mpm_config_t *cfg, mpm_init_cb init, mpm_exit_cb exit_cb,
                                          void *data);
MPM_EXTERN int mpm_config_set_thread_hooks(mpm_config_t *cfg, mpm_init_cb init, mpm_exit_cb exit_cb,
                                           void *data);
MPM_EXTERN int mpm_config_set_log_cb(mpm_config_t *cfg, mpm_log_cb cb, void *data);
MPM_EXTERN int mpm_config_set_access_log_cb(mpm_config_t *cfg, mpm_access_log_cb cb, void *data);

/* ------------------------------------------------------------------ */
/* Server                                                             */

/* Creates a server from a snapshot of cfg (later changes to cfg do not
 * affect it; cfg may be freed at once). Checks the configuration as a whole
 * (handler set, at least one listener, limits consistent, strategy built).
 * Errors: MPM_ECONFIG (reason in mpm_config_errmsg(cfg)), MPM_ENOTSUP for a
 * strategy not in this build, MPM_ENOMEM. Thread: any. */
MPM_EXTERN int mpm_server_new(const mpm_config_t *cfg, mpm_server_t **out);

/* Frees a server that is not running (never started, or mpm_server_run()
 * returned). Closes the listeners the library opened, if run() did not. If
 * a graceful stop abandoned handlers at GracefulShutdownTimeout (one-process
 * worker), it first waits for them to return: they still use the server (and
 * the handler's data) until then. */
MPM_EXTERN void mpm_server_free(mpm_server_t *srv);

/* Opens the listeners now, so that a host can learn ephemeral ports (Listen
 * 127.0.0.1:0) or drop privileges before run; with a TLS listener it also
 * reads the certificates and keys now (so a key only root can read works;
 * a restart re-reads them with the master's privileges of that time, and
 * keeps the old ones if that fails). Optional: run() binds if this was not
 * called. Errors: MPM_EADDRINUSE, MPM_EACCES, ... with the address in
 * mpm_server_errmsg(), MPM_ECONFIG for a certificate or key that cannot be
 * used (the file and the reason in mpm_server_errmsg(); the listeners are
 * closed again); MPM_ESTATE if already bound. */
MPM_EXTERN int mpm_server_bind(mpm_server_t *srv);

/* The port of listener i (in Listen order, host fds last) after bind; 0 for a
 * unix socket. Errors: MPM_ESTATE before bind, MPM_EINVAL for a bad index. */
MPM_EXTERN int mpm_server_port(const mpm_server_t *srv, size_t i);

/* Serves until stopped. Blocks the calling thread. In multi-process mode the
 * calling process becomes the master for the duration: it forks children
 * from the calling thread, at start and whenever spares run short, and a
 * child inherits any lock another host thread held at that instant (OpenSSL
 * 3 has no fork guards: a host thread inside OpenSSL then can leave a child
 * stuck at its first TLS handshake), so a threaded host keeps such work off
 * its other threads while a master runs, or uses one-process mode. In
 * one-process mode connections are served by the calling thread (prefork)
 * or by threads it starts (worker/event). Start-up failures (address in use, hook failure)
 * return their error code with the cause in mpm_server_errmsg().
 * Returns 0 after a stop. Errors: MPM_ESTATE if already running or already
 * ran (a server runs once).
 * When run() returns (after a stop or a failure) the listeners the library
 * opened are closed: new clients are refused at once rather than left in a
 * backlog nobody serves (mpm_server_port() still reports the ports they
 * had). Sockets the host handed in stay open and the host's. A host that
 * wants to serve again creates a new server (and binds again). */
MPM_EXTERN int mpm_server_run(mpm_server_t *srv);

/* Asks a running server to stop. graceful = 0: close connections now;
 * graceful = 1: finish in-flight requests (bounded by
 * GracefulShutdownTimeout), answer a waiting keep-alive request with
 * Connection: close during a short drain window, then return. At the bound
 * the stop turns hard: connections are closed; in one-process worker mode
 * run() returns even if handlers are still running in their own code (their
 * threads are left to finish; see mpm_server_free()); in one-process
 * prefork mode the handler runs on run()'s thread, so run() returns when it
 * does.
 * Thread: any thread, and async-signal-safe. Safe to call twice, before run
 * (run then returns at once) and after run returned (no effect).
 * Inside a handler (or a hook) of a multi-process server, `srv` (from
 * mpm_request_server()) is the child's view of the server: the call sends
 * the request to the master over the child's control channel and the whole
 * server stops, exactly as if the host had called it on the master (its
 * mpm_server_run() returns); the calling child's connection is treated like
 * any other (graceful: the handler finishes and its response goes out; hard:
 * it is closed). It returns at once, before the stop has happened. Only if the
 * master cannot be reached (it is gone) does the call stop the calling
 * child alone. */
MPM_EXTERN int mpm_server_stop(mpm_server_t *srv, int graceful);

/* Asks a running master to restart: graceful = 0 stops the children now and
 * starts a new generation (SIGHUP); graceful = 1 starts a new generation
 * while the old one finishes its requests, listeners staying open, so no
 * connection is refused (SIGUSR1). Thread: any; async-signal-safe.
 * Inside a child (a handler or hook of a multi-process server) the request
 * goes to the master over the child's control channel, as for
 * mpm_server_stop(); the calling child belongs to the old generation.
 * Errors: MPM_ENOTSUP in one-process mode; MPM_ECLOSED in a child whose
 * master cannot be reached. */
MPM_EXTERN int mpm_server_restart(mpm_server_t *srv, int graceful);

/* Description of the last start-up failure ("" when none). Borrowed; valid
 * until the next bind/run on srv. */
MPM_EXTERN const char *mpm_server_errmsg(const mpm_server_t *srv);

/* Versioned snapshot of the scoreboard. Set st->size = sizeof(*st) before the
 * call; the library fills the fields it knows up to that size. New fields
 * are only ever appended, so a caller built against an older, smaller
 * struct keeps working: nothing past its size is written. */
typedef struct mpm_stats {
    size_t size;
    const char *strategy;       /* "prefork", "worker", "event"; static */
    unsigned generation;        /* bumped by each restart */
    unsigned processes;         /* serving processes (1 in one-process mode) */
    unsigned busy_workers;      /* units handling a connection/request */
    unsigned idle_workers;      /* units ready to take one (a thread still
                                   starting, e.g. in its init hook, is
                                   counted in neither) */
    unsigned parked_connections;/* idle keep-alive connections held by no thread */
    uint64_t connections_served;
    uint64_t requests_served;
    uint64_t uptime_ms;
    unsigned slots;             /* scoreboard slots: valid indexes for
                                   mpm_server_child_stats() are 0..slots-1 */
    /* event: connections the children's listener loops hold, no thread
     * held, while reading a request head (or a small body prefetched,
     * RequestBodyPrefetch), finishing a response's write (write completion)
     * and in lingering close. 0 under prefork and worker. */
    unsigned reading_connections;
    unsigned writing_connections;
    unsigned lingering_connections;
} mpm_stats_t;

/* Fills *st. Thread: any; also from inside a handler (in any process of the
 * server: the scoreboard is shared). Errors: MPM_EINVAL if st->size is
 * smaller than the first two fields. */
MPM_EXTERN int mpm_server_stats(const mpm_server_t *srv, mpm_stats_t *st);

/* One serving process (a scoreboard slot), as of the call. */
typedef struct mpm_child_stats {
    size_t size;                /* set by the caller, as for mpm_stats_t */
    int pid;
    unsigned generation;
    const char *state;          /* "starting", "ready", "reading", "writing",
                                   "keepalive", "closing", "graceful"; static */
    unsigned busy_workers;
    unsigned idle_workers;
    unsigned parked_connections;
    uint64_t connections_served;
    uint64_t requests_served;
    uint64_t idle_ms;           /* since its last request (0: none yet) */
    /* event: as in mpm_stats_t, for this child's listener loop; 0 under
     * prefork and worker. */
    unsigned reading_connections;
    unsigned writing_connections;
    unsigned lingering_connections;
} mpm_child_stats_t;

/* Fills *out for slot i. Errors: MPM_ERANGE when i >= slots (or the server
 * never ran), MPM_ENOENT when the slot holds no live process (also while one
 * is being forked and has no pid yet), MPM_EINVAL for a bad size. Thread: any. */
MPM_EXTERN int mpm_server_child_stats(const mpm_server_t *srv, unsigned i, mpm_child_stats_t *out);

/* Renders the scoreboard in Prometheus' text exposition format (0.0.4)
 * into buf, NUL-terminated: mpm_info{strategy,version}, the counters
 * mpm_requests_total and mpm_connections_total, and the gauges
 * mpm_workers{state="busy"|"idle"},
 * mpm_connections{state="parked"|"reading"|"writing"|"lingering"} (the
 * connections event's listener loops hold, no thread held),
 * mpm_parked_connections (the "parked" sample again, kept for existing
 * dashboards), mpm_processes, mpm_generation and mpm_uptime_seconds; the
 * same numbers as
 * mpm_server_stats(). Returns the length written (without the NUL).
 * Errors: MPM_ERANGE when len is too small (*needed, if not NULL, then holds
 * the size to retry with; the text may grow between calls by a few digits),
 * MPM_EINVAL for srv NULL or buf NULL with len > 0. Thread: any, also from
 * inside a handler in any process of the server. */
MPM_EXTERN int mpm_server_metrics(const mpm_server_t *srv, char *buf, size_t len, size_t *needed);

/* ------------------------------------------------------------------ */
/* Request (inside the handler only; req is borrowed for the call)   */

/* Method, request target ("/a/b?x=1"), path ("/a/b", not decoded), query
 * ("x=1" or "" when none). Never NULL. */
MPM_EXTERN const char *mpm_request_method(const mpm_request_t *req);
MPM_EXTERN const char *mpm_request_target(const mpm_request_t *req);
MPM_EXTERN const char *mpm_request_path(const mpm_request_t *req);
MPM_EXTERN const char *mpm_request_query(const mpm_request_t *req);
/* 10 for HTTP/1.0, 11 for HTTP/1.1. */
MPM_EXTERN int mpm_request_version(const mpm_request_t *req);

/* First header with this name (case-insensitive), or NULL. */
MPM_EXTERN const char *mpm_request_header(const mpm_request_t *req, const char *name);
MPM_EXTERN size_t mpm_request_header_count(const mpm_request_t *req);
/* Header i in arrival order. Errors: MPM_EINVAL for i out of range. */
MPM_EXTERN int mpm_request_header_at(const mpm_request_t *req, size_t i, const char **name,
                                     const char **value);

/* Peer and local address as text ("127.0.0.1", "::1", "unix") and port
 * (0 for unix sockets). The peer is "-" (port 0) if it reset the connection
 * before its address was looked up (when serving began with an access log
 * set, else at the first of these calls). */
MPM_EXTERN const char *mpm_request_remote_addr(const mpm_request_t *req);
MPM_EXTERN int mpm_request_remote_port(const mpm_request_t *req);
MPM_EXTERN const char *mpm_request_local_addr(const mpm_request_t *req);
MPM_EXTERN int mpm_request_local_port(const mpm_request_t *req);

/* TLS: 1 when the request came on a TLS listener, else 0. The SNI name
 * the client asked for (NULL: none, or plain TCP), the protocol
 * ("TLSv1.3") and cipher ("TLS_AES_128_GCM_SHA256"), NULL on plain TCP.
 * Borrowed: valid until the handler returns. */
MPM_EXTERN int mpm_request_is_tls(const mpm_request_t *req);
MPM_EXTERN const char *mpm_request_tls_sni(const mpm_request_t *req);
MPM_EXTERN const char *mpm_request_tls_protocol(const mpm_request_t *req);
MPM_EXTERN const char *mpm_request_tls_cipher(const mpm_request_t *req);

/* Content-Length of the body, or -1 when chunked/unknown; 0 without body. */
MPM_EXTERN int64_t mpm_request_content_length(const mpm_request_t *req);

/* Streams the body: reads up to len bytes. Returns the count, 0 at the end of
 * the body, or an error: MPM_ETOOLARGE past LimitRequestBody (a 413 is sent
 * if nothing was sent yet), MPM_ETIMEDOUT (a 408), MPM_EPROTO for bad chunk
 * framing (a 400), MPM_ECLOSED when the client went away. The first call
 * sends "100 Continue" if the client asked for it. After a successful
 * mpm_request_read_body() it returns 0: that call took the whole body. */
MPM_EXTERN ssize_t mpm_request_read(mpm_request_t *req, void *buf, size_t len);

/* Reads the whole body into a buffer owned by the request (valid until the
 * handler returns; NUL-terminated for convenience), at most `max` bytes
 * (0 = LimitRequestBody). The buffer grows as bytes arrive (never beyond a
 * declared Content-Length): a declared size alone allocates nothing.
 * Errors as mpm_request_read(); MPM_ETOOLARGE when the body exceeds max.
 * The body is read one way or the other: called again after a success it
 * gives the same buffer and length (max is not looked at again); called
 * after mpm_request_read() returned bytes it fails with MPM_ESTATE (part
 * of the body is already the handler's). */
MPM_EXTERN int mpm_request_read_body(mpm_request_t *req, size_t max, const char **body, size_t *len);

/* Percent-decoding (RFC 3986 §2.1). Flags for mpm_percent_decode(). */
#define MPM_DECODE_PLUS_AS_SPACE 1u /* '+' is a space (HTML forms' query strings) */
#define MPM_DECODE_ALLOW_SLASH 2u   /* accept %2F (refused by default) */

/* Decodes len bytes of src into dst, NUL-terminated. An escape that is not
 * '%' and two hex digits, an encoded NUL (%00), and an encoded '/' (%2F,
 * unless MPM_DECODE_ALLOW_SLASH: in a path it would pass a separator through
 * the caller's checks, as httpd's AllowEncodedSlashes Off refuses) give
 * MPM_EPROTO. Returns the decoded length (without the NUL).
 * Errors: MPM_EPROTO as above, MPM_ERANGE when dstlen is too small (len + 1
 * is always enough), MPM_EINVAL for NULL pointers, dstlen 0 or unknown flags.
 * Thread: any. */
MPM_EXTERN int mpm_percent_decode(const char *src, size_t len, char *dst, size_t dstlen,
                                  unsigned flags);

/* The value of the first query parameter whose decoded name is `name`
 * ("a=1&b=x%20y": "b" gives "x y"; '+' is a space), decoded into buf,
 * NUL-terminated. A parameter without '=' has the value "". Returns the
 * value's length. Errors: MPM_ENOENT when absent, MPM_EPROTO for a bad
 * escape or %00 in the value, MPM_ERANGE when buf is too small, MPM_EINVAL
 * for NULL arguments or len 0. Inside the handler only. */
MPM_EXTERN int mpm_request_query_param(const mpm_request_t *req, const char *name, char *buf,
                                       size_t len);

/* The request path percent-decoded into buf ("/a%20b" gives "/a b"; '+'
 * stays '+'). Errors: MPM_EPROTO for a bad escape, %00 or %2F (a decoded
 * path never gains a separator or a NUL), MPM_ERANGE when buf is too small,
 * MPM_EINVAL for NULL arguments. Inside the handler only. */
MPM_EXTERN int mpm_request_path_decoded(const mpm_request_t *req, char *buf, size_t len);

/* Whether the server is stopping or restarting, gracefully or not: a
 * long-running handler should finish up. In every strategy and mode this
 * reflects a stop or restart as soon as it is requested (in a child: as
 * soon as the master's command or signal arrives; the call itself takes in
 * a pending command without blocking), so a handler may poll it in a loop.
 * Thread: any, while the handler runs (req is valid only until then). */
MPM_EXTERN int mpm_request_server_draining(const mpm_request_t *req);

/* Whether the server is stopping or restarting at once (not gracefully:
 * mpm_server_stop(srv, 0), mpm_server_restart(srv, 0), or in multi-process
 * mode SIGTERM/SIGINT to the master), or a graceful stop's
 * GracefulShutdownTimeout has run out. A hard stop wants out now (in
 * multi-process mode a child still busy 3 s later is SIGKILLed; in one
 * process, mpm_server_run() returns only once the handlers have), so a
 * handler that may run long should poll this and return early when it is
 * 1; during a graceful stop (within its bound) it stays 0 while
 * mpm_request_server_draining() is 1. Same timeliness and thread rules as
 * mpm_request_server_draining(). */
MPM_EXTERN int mpm_request_server_stopping_now(const mpm_request_t *req);

/* The server serving this request (for mpm_server_stats()). */
MPM_EXTERN mpm_server_t *mpm_request_server(const mpm_request_t *req);

/* ------------------------------------------------------------------ */
/* Response (inside the handler only)                                 */

/* Sets the status (100..599 except 1xx: 200..599). Default 200.
 * Errors: MPM_EINVAL for a bad code, MPM_ESTATE after the head was sent. */
MPM_EXTERN int mpm_response_set_status(mpm_request_t *req, int status);

/* Adds a response header (copied). Date, Content-Length,
 * Transfer-Encoding and Connection are managed by the library and rejected
 * with MPM_EINVAL, as are names/values with CR, LF or NUL; the one
 * exception is "Connection: close" (any case), which is taken as the
 * handler's wish to end the connection after this response (sent as that
 * header; keep-alive ends). MPM_ESTATE after the head was sent. */
MPM_EXTERN int mpm_response_add_header(mpm_request_t *req, const char *name, const char *value);

/* Sends the whole response: head plus body with Content-Length. Completes
 * the response. For HEAD requests only the head goes out (with the length).
 * Errors: MPM_ESTATE if a response was already started; I/O errors. */
MPM_EXTERN int mpm_response_send(mpm_request_t *req, const void *body, size_t len);

/* Streams the body: the first call sends the head, then each call sends data,
 * as chunks on HTTP/1.1, close-delimited on HTTP/1.0. Finish with
 * mpm_response_end(). A zero-length write sends nothing. */
MPM_EXTERN int mpm_response_write(mpm_request_t *req, const void *data, size_t len);
MPM_EXTERN int mpm_response_end(mpm_request_t *req);

/* Sends len bytes of fd from offset as the whole body (Content-Length, with
 * sendfile on plain connections). The fd stays the caller's. The fd and
 * range are checked first (fstat): on these errors nothing was sent and the
 * handler may still send another response: fstat's -errno (-EBADF for a
 * closed fd), MPM_EINVAL for a negative fd or offset or an fd that
 * is not a regular file, MPM_ERANGE when offset + len passes the file's end.
 * Errors: MPM_ESTATE if a response was started; I/O errors (the file shrank
 * while sending: the connection then closes). */
MPM_EXTERN int mpm_response_send_file(mpm_request_t *req, int fd, off_t offset, size_t len);

/* ------------------------------------------------------------------ */
/* Hooks with context (0.2)                                           */

/* What a context-taking hook is told. The library fills it for the call;
 * `size` is sizeof the struct it filled (fields are only appended). */
typedef struct mpm_hook_ctx {
    size_t size;
    mpm_server_t *server;  /* the server (in a child: the child's view) */
    unsigned slot;         /* the child's scoreboard slot (0 in one-process
                              mode), as in mpm_server_child_stats() */
    unsigned thread_index; /* the serving thread's index in its process,
                              0..ThreadsPerChild-1; 0 under prefork, whose
                              serving unit is the process; 0 for child hooks */
    void *thread_data;     /* thread_init: store a per-thread pointer here;
                              mpm_request_thread_data() gives it back to
                              every request this thread serves, and
                              thread_exit sees it again (to free it). Child
                              hooks: NULL, ignored. */
} mpm_hook_ctx_t;

/* `ctx` is borrowed for the call; `data` is what the setter was given. */
typedef int (*mpm_hook_init_cb)(mpm_hook_ctx_t *ctx, void *data);
typedef void (*mpm_hook_exit_cb)(mpm_hook_ctx_t *ctx, void *data);

/* The same hooks as mpm_config_set_child_hooks() / _thread_hooks(), called
 * at the same points with the same rules (a non-zero init return is a
 * failure of that child / thread), but with context. Setting either form of
 * a kind replaces the other form of that kind (one child-hook pair and one
 * thread-hook pair per configuration). Either callback may be NULL.
 * Errors: MPM_EINVAL for cfg NULL. Thread: not thread-safe per cfg. */
MPM_EXTERN int mpm_config_set_child_hooks_ex(mpm_config_t *cfg, mpm_hook_init_cb init,
                                             mpm_hook_exit_cb exit_cb, void *data);
MPM_EXTERN int mpm_config_set_thread_hooks_ex(mpm_config_t *cfg, mpm_hook_init_cb init,
                                              mpm_hook_exit_cb exit_cb, void *data);

/* What the thread init hook (the _ex form) of the thread serving this
 * request stored in ctx->thread_data, or NULL (none stored, or plain hooks).
 * The pointer is the host's; the library never dereferences or frees it.
 * Inside the handler only. */
MPM_EXTERN void *mpm_request_thread_data(const mpm_request_t *req);

/* ------------------------------------------------------------------ */
/* Added in 0.2: request id, failing a response, error pages          */

/* The request's id: the same number the access log shows as request_id.
 * Unique among all requests of one server run, across every process and
 * thread (a counter in the shared scoreboard; the first request is 1); not
 * unique across runs or servers. Inside the handler only. */
MPM_EXTERN uint64_t mpm_request_id(const mpm_request_t *req);

/* Whether the response head has gone out (mpm_response_send, _write,
 * _send_file, or an answer the library sent for a failed body read): the
 * status and headers can no longer change, and the only way left to fail
 * the response is mpm_response_abort(). 1 or 0. */
MPM_EXTERN int mpm_response_started(const mpm_request_t *req);

/* Fails the response and ends the connection, so the client never takes a
 * partial response for a whole one:
 * - head already sent (a stream begun with mpm_response_write): nothing
 *   more is written; the connection closes at once without the last chunk
 *   (HTTP/1.1), or with a reset (TCP RST) when the body is close-delimited
 *   (HTTP/1.0), where a clean close would look complete;
 * - head not sent yet: the library answers 500 (through the error page
 *   hook, see mpm_config_set_error_cb) with Connection: close.
 * Logged with the status that was sent. Afterwards every response call
 * returns MPM_ESTATE. Errors: MPM_ESTATE when the response was already
 * complete (send, send_file or end returned) or already aborted. */
MPM_EXTERN int mpm_response_abort(mpm_request_t *req);

/* Closing the connection after a response: add the header
 * "Connection: close" with mpm_response_add_header() before the head goes
 * out. It is the one Connection value a handler may set (others stay
 * MPM_EINVAL): the response then carries Connection: close and the
 * connection ends after it. */

/* The library's own error responses. Before sending one (400, 408, 413,
 * 414, 417, 431, 501, 505, the 500 for a handler that did not respond or
 * aborted before its head), the library offers it to the host's callback,
 * which may write the body itself, e.g. JSON for an API. Plain data; the
 * struct is only ever appended to: read `size` before a field added later. */
typedef struct mpm_error_page {
    size_t size;              /* sizeof the struct the library filled */
    int status;               /* the status being sent (cannot be changed) */
    const char *method;       /* NULL when the request line was not parsed */
    const char *target;       /* NULL likewise */
    uint64_t request_id;      /* as in the access log */
    char *body;               /* out: the library's buffer for the body */
    size_t body_cap;          /* its size (at least 4096) */
    size_t body_len;          /* out: bytes written into body (<= body_cap) */
    const char *content_type; /* out: Content-Type (NULL: "text/plain"); read
                                 after the callback returns, so point it at
                                 storage that outlives the call (a literal) */
} mpm_error_page_t;

/* Returns 0 to send the page as filled, non-zero for the library's own
 * text/plain body. A page that is not usable (body_len > body_cap, a
 * content_type with CR, LF or other control bytes) gets the canned one.
 * The response has Connection: close (the library answers this way when it
 * cannot trust the connection further), except the 500 for a handler that
 * returned without responding, which keeps alive as usual. Called on the thread and in
 * the process that serves the connection, possibly concurrently: it must be
 * thread-safe; everything in *page is borrowed for the call. */
typedef int (*mpm_error_cb)(mpm_error_page_t *page, void *data);

/* Registers the error page callback (NULL: the canned text/plain bodies).
 * Errors: MPM_EINVAL for cfg NULL. Thread: not thread-safe per cfg. */
MPM_EXTERN int mpm_config_set_error_cb(mpm_config_t *cfg, mpm_error_cb cb, void *data);

#ifdef __cplusplus
}
#endif
#endif
