/* Declarations shared by the core and the strategies. Strategies include
 * only this header (and what it includes); the core never includes a
 * strategy's files. */
#ifndef MPM_CORE_INTERNAL_H
#define MPM_CORE_INTERNAL_H

#include <mpmlib/mpmlib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "config.h"
#include "http1.h"
#include "scoreboard.h"

/* ---- listeners (listen.c) ---- */

struct mpm__transport;

typedef struct mpm__listener {
    int fd;
    int owned;          /* 1 if we opened it (and close it), 0 for host fds */
    /* How its connections move bytes: plain TCP for every listener today;
     * chosen per listener so TLS and plain ports can share a server. */
    const struct mpm__transport *tp;
    int tls;            /* a TLS listener: tls.c sets tp once its contexts exist */
    int port;           /* bound port, 0 for unix sockets */
    /* TCP_DEFER_ACCEPT is set (DeferAccept, TLSDeferAccept): a connection
     * comes out of accept() with its first bytes, or after that long
     * without them. */
    int deferred;
    char name[272];     /* the address as configured, for messages */
} mpm__listener_t;

/* Opens (socket, SO_REUSEADDR, bind, listen with backlog) every listener of s,
 * in order, host fds last; every fd is close-on-exec and non-blocking.
 * On failure closes what it opened and returns -errno / MPM_ECONFIG with
 * "<address>: <reason>" in err. */
int mpm__listeners_open(const mpm__settings_t *s, mpm__listener_t *out, unsigned *n, char *err,
                        size_t errlen);
/* The same, registering each socket it opens for `owner` in the fd registry
 * (fdreg.h), so that other servers' children close it. */
int mpm__listeners_open_owned(const void *owner, const mpm__settings_t *s, mpm__listener_t *out,
                              unsigned *n, char *err, size_t errlen);
void mpm__listeners_close(mpm__listener_t *l, unsigned n);

/* Parses "host:port", "[v6]:port", "*:port", "port", "unix:/path" into a
 * sockaddr. Returns 0 or MPM_ECONFIG with the reason in err. */
int mpm__parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err,
                    size_t errlen);

/* ---- TLS (tls_context.c; the rest in tls.h, which needs OpenSSL's) ---- */

/* Reads the certificates and builds the contexts, makes the ticket keys
 * and gives each TLS listener its transport. Called before any fork, so a
 * bad file is one clear error, not one per child. No-op without a TLS
 * listener. 0, or MPM_ECONFIG / -errno with the reason in mpm_server_errmsg(). */
int mpm__tls_start(mpm_server_t *srv);

/* Builds the contexts again from the files (a restart: rotated
 * certificates). Master only, between children's forks. On failure logs
 * the reason and keeps serving with the contexts it had. */
void mpm__tls_reload(mpm_server_t *srv);

/* Frees what mpm__tls_start made (mpm_server_free(): after every thread
 * that could hold a connection is gone). */
void mpm__tls_free(mpm_server_t *srv);

/* ---- accepting (accept.c) ---- */

/* An accepted connection on its way to the unit that serves it: what the
 * listener learnt at accept travels with the fd, so a client that resets
 * before a unit takes it is still named by its address. */
typedef struct mpm__accepted {
    int fd;
    unsigned listener; /* index in srv->listeners */
    socklen_t peer_len; /* 0: the peer's address is unknown */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer; /* a unix peer keeps only its family */
    /* A connection already in progress that a strategy hands to a pool
     * thread (event: a complete request head); NULL for a fresh accept. */
    void *conn;
} mpm__accepted_t;

/* Accepts one connection from listener `li` of srv (non-blocking,
 * close-on-exec) into *out, its peer's address with it. Returns the
 * fd, or -1 when there is nothing to serve now; on fd exhaustion *backoff_ms
 * grows (10 ms doubling to 1 s) and the caller should call
 * mpm__accept_backoff() before accepting again. A success resets it. A
 * listener shut down by the master (graceful stop) gives MPM_ECLOSED: the
 * caller stops accepting, and the calling process stops gracefully. */
int mpm__accept(mpm_server_t *srv, unsigned li, int *backoff_ms, mpm__accepted_t *out);
/* Waits backoff_ms, or less if a wake fd fires. */
void mpm__accept_backoff(mpm_server_t *srv, int backoff_ms);

/* Whether a listener should go on accepting, and how long its next wait may
 * last (*timeout_ms, -1 = no bound). During a graceful stop it goes on for
 * the drain window (*drain_until, 0 at first, is set on the first call that
 * sees the stop), so that connections already queued are served, with
 * Connection: close, instead of being reset when the listeners shut. */
int mpm__accepting(mpm_server_t *srv, int64_t *drain_until, int *timeout_ms);

/* Once draining, the wake fds stay readable: a listener stops watching them
 * in its epoll set ep so the drain window is not a busy loop (a hard stop
 * still arrives as a signal in a child, or at the window's end). Returns 0,
 * the new "watched" state. */
int mpm__unwatch_wake_fds(mpm_server_t *srv, int ep);

/* ---- logging (log.c) ---- */

void mpm__log(const mpm_server_t *srv, mpm_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- time (clock.c) ---- */

/* CLOCK_MONOTONIC in milliseconds. */
int64_t mpm__now_ms(void);

/* ---- strategies (strategy.c) ---- */

/* How many of a strategy's units (processes or threads) the master keeps,
 * resolved from the directives and the strategy's defaults. */
typedef struct mpm__pool_limits {
    unsigned units_per_child;  /* 1 for prefork, ThreadsPerChild for threaded */
    unsigned start_children;   /* StartServers */
    unsigned min_spare_units;  /* MinSpareServers / MinSpareThreads */
    unsigned max_spare_units;  /* MaxSpareServers / MaxSpareThreads */
    unsigned max_children;     /* MaxRequestWorkers / units_per_child */
    unsigned server_limit;     /* scoreboard slots: ServerLimit */
} mpm__pool_limits_t;

typedef struct mpm__strategy {
    const char *name;
    /* Strategy-specific checks of the settings, beyond mpm__settings_check(). */
    int (*check)(const mpm__settings_t *s, char *err, size_t errlen);
    /* Resolves the pool sizes the master regulates. */
    void (*pool_limits)(const mpm__settings_t *s, mpm__pool_limits_t *out);
    /* Serves in the calling process until stop; listeners are open, the
     * scoreboard slot is srv->slot. Used in one-process mode and as the body
     * of each forked child. Returns 0, or a negative code (a sick child). */
    int (*serve)(mpm_server_t *srv);
    /* Called (from any thread, or a signal handler) after a stop request was
     * recorded, to wake what the wake fds cannot. Async-signal-safe; may be
     * NULL. */
    void (*wake)(mpm_server_t *srv);
} mpm__strategy_t;

/* Keeps a strategy's pool limits consistent: max_children within
 * server_limit (at least 1), start_children within max_children. */
void mpm__pool_limits_clamp(mpm__pool_limits_t *l);

/* The canonical spelling of a strategy's name, any case ("Worker" ->
 * "worker"), built or not; NULL if no strategy has that name. */
const char *mpm__strategy_canonical(const char *name);
/* The name of the strategy an unset MPM gives: the best one built. */
const char *mpm__strategy_default_name(void);
/* Every strategy's name, "prefork|worker|event", for messages. */
void mpm__strategy_list(char *buf, size_t len);

/* Finds a strategy by name ("" = the best one built). Returns NULL and a
 * message in err when the name is unknown or that strategy is not built. */
const mpm__strategy_t *mpm__strategy_find(const char *name, char *err, size_t errlen);

/* ---- server (server.c) ---- */

enum { MPM__SRV_NEW, MPM__SRV_RUNNING, MPM__SRV_DONE };
enum { MPM__STOP_NONE = 0, MPM__STOP_GRACEFUL = 1, MPM__STOP_NOW = 2 };

struct mpm_server_s {
    mpm_config_t cfg; /* private copy */
    const mpm__strategy_t *strategy;
    mpm__listener_t listeners[MPM__MAX_LISTENERS];
    unsigned nlisteners;
    int bound;
    atomic_int state;
    atomic_int stop;      /* MPM__STOP_* */
    atomic_int restart;   /* 0, 1 = restart, 2 = graceful restart (master) */
    int wake_pipe[2];     /* written by mpm_server_stop(): wakes poll() */
    /* What serving code polls to notice a stop: the wake pipe, and in a
     * forked child also its control channel from the master. */
    int wake_fds[2];
    unsigned nwake;
    int ctl_fd;           /* child: read end of the control channel, else -1 */
    /* A thread of this process (worker's listener, event's loop) watches
     * the control channel and takes commands in as they come, so code
     * mid-request need not read it (mpm__server_poll_stop). */
    atomic_int ctl_watched;
    atomic_int_fast64_t started_ms;
    atomic_int_fast64_t graceful_since_ms; /* when a graceful stop began; 0: none */
    /* Pools whose threads were abandoned at GracefulShutdownTimeout and still
     * run: mpm_server_free() waits for them. */
    pthread_mutex_t orphan_lock;
    pthread_cond_t orphans_gone;
    unsigned orphans;
    mpm__scoreboard_t *sb;
    mpm__sb_slot_t *slot; /* this serving process's slot; NULL in the master */
    unsigned slot_index;
    char errmsg[256];
    /* What each serving thread's init hook stored (mpm_hook_ctx_t.thread_data),
     * by thread index; units_per_child entries. Private to each process (a
     * child writes its copy), each entry written and read by its own thread. */
    void **thread_data;
    unsigned nthread_data;
    /* TLS contexts and shared ticket keys (tls.h); NULL without TLS. */
    struct mpm__tls *tls;
};

/* Records a stop request in this process only and wakes its serving code
 * (what mpm_server_stop() does outside a child). For the library's own
 * reasons to stop a process: the master's commands, a spent child, a failed
 * thread init. Async-signal-safe. */
void mpm__server_stop_local(mpm_server_t *srv, int graceful);

/* Records a start-up failure message for mpm_server_errmsg(). */
void mpm__server_fail(mpm_server_t *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The drain window of DESIGN §4: DrainWindow, never longer than
 * KeepAliveTimeout or GracefulShutdownTimeout. */
int64_t mpm__drain_window_ms(const mpm_server_t *srv);

/* When a graceful stop must be over (GracefulShutdownTimeout after it
 * began, monotonic ms), or 0: no bound, or no graceful stop yet. */
int64_t mpm__graceful_deadline(const mpm_server_t *srv);

/* A pool is abandoned with threads still running / its last thread is
 * done (it must not touch srv afterwards). */
void mpm__server_orphans_hold(mpm_server_t *srv);
void mpm__server_orphans_release(mpm_server_t *srv);

/* A wake fd was readable: take in what it says (a child reads its master's
 * commands here). Returns the stop state afterwards. */
int mpm__server_check_wake(mpm_server_t *srv);

/* The stop state, after taking in a command the master may have sent a
 * child that is busy serving (non-blocking). Thread: any serving thread. */
int mpm__server_poll_stop(mpm_server_t *srv);

/* Asks the kernel for SchedulerSlice as the calling thread's time slice
 * (`short_slice` 1), or for the kernel's default slice back (0), when
 * SchedulerSlice is set (sched_slice.c); threads it creates afterwards
 * inherit it. For the library's own threads only: pool threads and forked
 * children. A repeated request costs no syscall. */
void mpm__thread_use_slice(const mpm_server_t *srv, int short_slice);

/* Runs as master until stop (master.c). */
int mpm__master_run(mpm_server_t *srv);

/* The stop state (MPM__STOP_*). */
static inline int mpm__server_stopping(const mpm_server_t *srv)
{
    return atomic_load_explicit(&((mpm_server_t *)srv)->stop, memory_order_acquire);
}

/* ---- host hooks (hooks.c) ---- */

/* Runs the child init hook (plain or with context) of srv's configuration
 * in the calling process; 0 when there is none. */
int mpm__hooks_child_init(mpm_server_t *srv);
void mpm__hooks_child_exit(mpm_server_t *srv);
/* Runs the thread init hook for serving thread `index` of this process and
 * keeps what it stored for mpm_request_thread_data(). */
int mpm__hooks_thread_init(mpm_server_t *srv, unsigned index);
void mpm__hooks_thread_exit(mpm_server_t *srv, unsigned index);

/* ---- threaded strategies' limits (threaded.c) ---- */

/* worker's and event's check and pool_limits: ThreadsPerChild within
 * ThreadLimit, MaxRequestWorkers within ServerLimit x ThreadsPerChild, and
 * httpd's defaults (3 children to start, 16 at most, 400 workers). */
int mpm__threaded_check(const mpm__settings_t *s, char *err, size_t errlen);
void mpm__threaded_pool_limits(const mpm__settings_t *s, mpm__pool_limits_t *out);

/* ---- connections (conn.c) ---- */

typedef struct mpm__conn mpm__conn_t;

/* What a transport call that would block waits for: the socket becoming
 * readable or writable, either way round (a TLS read may need to write).
 * Internal codes: below every -errno and outside the library's
 * -5000..-5099, never returned to the host. */
enum { MPM__WANT_READ = -5101, MPM__WANT_WRITE = -5102 };

/* How bytes move on a connection: plain TCP now, TLS later. All calls are
 * non-blocking: they return a count, or -errno, or MPM__WANT_READ /
 * MPM__WANT_WRITE when they would block. Per-connection state, if the
 * transport needs any, lives in c->tp_state, owned by the transport from
 * open to close. */
/* What a transport can tell about a connection (mpm_request_tls_*). */
typedef enum mpm__tp_info { MPM__TP_SNI, MPM__TP_PROTOCOL, MPM__TP_CIPHER } mpm__tp_info_t;

typedef struct mpm__transport {
    const char *name;
    /* Right after accept: sets up c->tp_state. 0 or a negative error (the
     * connection is then closed unserved; close is still called). */
    int (*open)(mpm__conn_t *c);
    /* One non-blocking step of the handshake: 0 when done, MPM__WANT_*,
     * or a negative error. The connection bounds it with its own deadline. */
    int (*handshake)(mpm__conn_t *c);
    ssize_t (*recv)(mpm__conn_t *c, void *buf, size_t len);
    ssize_t (*sendv)(mpm__conn_t *c, const struct iovec *iov, int iovcnt);
    ssize_t (*sendfile)(mpm__conn_t *c, int fd, off_t *off, size_t len); /* NULL: emulate */
    /* Bytes already inside the transport that recv would return without
     * touching the socket (decrypted records): checked before waiting for
     * readability. 0 for TCP. */
    size_t (*pending)(const mpm__conn_t *c);
    void (*shutdown_write)(mpm__conn_t *c);
    /* Releases the per-connection state; the fd stays the caller's. */
    void (*close)(mpm__conn_t *c);
    /* Its connections stay with the thread that took them, from the
     * handshake to the close, keep-alive waits included (event's TLS
     * pinning: handler code and TLS engines that keep per-thread state). */
    int pinned;
    /* Whether the client's first flight is all in the socket (peeked,
     * nothing consumed): 1 when it is, or when waiting longer cannot help
     * (not this protocol, end of stream, an error); 0 while it is still
     * coming. Event hands a pinned connection to a thread only then, so a
     * client trickling its hello holds no thread. NULL: any byte will do. */
    int (*first_flight_in)(const mpm__conn_t *c);
    /* NULL for plain TCP; else the answer (static or the connection's),
     * or NULL when it has none (no SNI sent). */
    const char *(*info)(const mpm__conn_t *c, mpm__tp_info_t what);
} mpm__transport_t;

extern const mpm__transport_t mpm__transport_tcp;

/* Serves one accepted connection to its end on the calling thread: reads
 * requests, runs the handler, keeps alive, applies every timeout and limit,
 * closes lingeringly after errors. Does not close a->fd: the caller does,
 * once it no longer publishes it (see mpm__pool_stop). `unit`
 * is the calling unit's scoreboard entry (state and counters). */
void mpm__conn_serve(mpm_server_t *srv, const mpm__accepted_t *a, mpm__sb_worker_t *unit);

/* The same for a connection a strategy already made (mpm__conn_new) and
 * has not begun: served to its close on the calling thread. */
void mpm__conn_serve_pinned(mpm__conn_t *c, mpm__sb_worker_t *unit);

/* The serial loop: accept one connection at a time from the server's
 * listeners and serve it, until stop (or MaxConnectionsPerChild in a child).
 * This is prefork's unit of work. Returns 0, or a negative code when the
 * loop cannot go on (the child is then "sick"). */
int mpm__serial_loop(mpm_server_t *srv);

#endif
