/* Configuration: the directive table's storage and validation. */
#ifndef MPM_CORE_CONFIG_H
#define MPM_CORE_CONFIG_H

#include <mpmlib/mpmlib.h>
#include <stddef.h>
#include <stdint.h>

#define MPM__MAX_LISTENERS 16
#define MPM__MAX_CERTS 8
#define MPM__CERT_PATH_MAX 256

/* TLSProtocol bits. */
#define MPM__TLS_1_2 1u
#define MPM__TLS_1_3 2u

/* One listener as configured: either an address ("127.0.0.1:80",
 * "[::1]:80", "*:80", "unix:/path") or an fd handed in by the host. */
typedef struct mpm__listen_spec {
    char addr[256]; /* "" for a host fd */
    int host_fd;    /* -1 unless handed in */
    int tls;        /* TLSListen (or mpm_config_add_tls_listen_fd) */
} mpm__listen_spec_t;

/* One TLSCertificate: a PEM chain and its key (key "" = in the cert file). */
typedef struct mpm__cert_spec {
    char cert[MPM__CERT_PATH_MAX];
    char key[MPM__CERT_PATH_MAX];
} mpm__cert_spec_t;

/* One stage of RequestReadTimeout (httpd's mod_reqtimeout): the stage must
 * end within timeout_ms of its start, plus one second for every min_rate
 * bytes received, but never later than max_ms after its start. */
typedef struct mpm__read_timeout {
    int64_t timeout_ms; /* 0: off (only Timeout bounds each read) */
    int64_t max_ms;     /* 0: the MinRate extension has no cap */
    uint64_t min_rate;  /* bytes per second; 0: no extension */
} mpm__read_timeout_t;

/* Every directive's value. Times are milliseconds, sizes bytes. A server
 * copies the whole struct at mpm_server_new(), so it is plain data. */
typedef struct mpm__settings {
    char mpm[16];       /* "prefork" | "worker" | "event" | "" (default: best built) */
    int one_process;    /* OneProcess */
    mpm__listen_spec_t listen[MPM__MAX_LISTENERS];
    unsigned nlisten;
    int listen_backlog; /* ListenBacklog, default 511 */

    int keepalive;                  /* KeepAlive On */
    int64_t keepalive_timeout_ms;   /* KeepAliveTimeout 5 s */
    unsigned max_keepalive_requests;/* MaxKeepAliveRequests 100, 0 = unlimited */
    int64_t timeout_ms;             /* Timeout 60 s: any single read/write */
    mpm__read_timeout_t header_timeout; /* RequestReadTimeout header=20-40,MinRate=500 */
    mpm__read_timeout_t body_timeout;   /* RequestReadTimeout body=20,MinRate=500 */

    size_t limit_request_line;      /* LimitRequestLine 8190 */
    size_t limit_request_field_size;/* LimitRequestFieldSize 8190 */
    unsigned limit_request_fields;  /* LimitRequestFields 100 */
    uint64_t limit_request_body;    /* LimitRequestBody 1 GiB, 0 = unlimited */

    unsigned start_servers;         /* StartServers (0 = strategy default) */
    unsigned min_spare_servers;     /* MinSpareServers 5 */
    unsigned max_spare_servers;     /* MaxSpareServers 10 */
    unsigned server_limit;          /* ServerLimit (0 = strategy default) */
    unsigned max_request_workers;   /* MaxRequestWorkers (0 = strategy default) */
    unsigned max_connections_per_child; /* 0 = never retire */
    unsigned threads_per_child;     /* ThreadsPerChild 25 */
    unsigned thread_limit;          /* ThreadLimit 64 */
    unsigned scheduler_slice_us;    /* SchedulerSlice 100 (µs; 0: the kernel's) */
    unsigned min_spare_threads;     /* MinSpareThreads 75 */
    unsigned max_spare_threads;     /* MaxSpareThreads 250 */
    /* AsyncRequestWorkerFactor 2, in thousandths: httpd truncates "1.5" to
     * 1, we keep it exact in fixed point (1500). */
    unsigned async_worker_factor_milli;
    /* event: a Content-Length body of at most this many bytes (and no
     * Expect: 100-continue) is read whole by the listener loop before the
     * handler runs. RequestBodyPrefetch 65536, 0 = off. */
    size_t request_body_prefetch;
    /* event: most connections one child holds. AsyncConnectionLimit 0 =
     * derived from RLIMIT_NOFILE. */
    unsigned async_connection_limit;
    int64_t graceful_shutdown_timeout_ms; /* 0 = no bound */
    int64_t drain_window_ms;        /* DrainWindow 1 s (capped at KeepAliveTimeout) */
    int handle_signals;             /* HandleSignals On (master only) */

    /* TLS: certificates (the first is the default, the others are chosen
     * by SNI), protocol versions, cipher policy, event's pinning, tickets. */
    mpm__cert_spec_t tls_cert[MPM__MAX_CERTS];
    unsigned ntls_cert;
    unsigned tls_protocols;         /* TLSProtocol "TLSv1.2 TLSv1.3": MPM__TLS_* bits */
    char tls_ciphers[256];          /* TLSCiphers: OpenSSL list for TLS <= 1.2 */
    char tls_ciphersuites[256];     /* TLSCipherSuites: TLS 1.3 suites */
    int tls_pinning;                /* TLSPinning On (event) */
    int64_t tls_defer_accept_ms;    /* TLSDeferAccept 1 s (TCP_DEFER_ACCEPT) */
    int64_t defer_accept_ms;        /* DeferAccept 0: plain listeners */
    int tls_session_tickets;        /* TLSSessionTickets On */
    int64_t tls_ticket_rotation_ms; /* TLSSessionTicketKeyRotation 1 h */
    int log_level;                  /* LogLevel warn */
} mpm__settings_t;

struct mpm_config_s {
    mpm__settings_t s;
    mpm_request_cb handler;
    void *handler_data;
    mpm_init_cb child_init;
    mpm_exit_cb child_exit;
    void *child_data;
    mpm_init_cb thread_init;
    mpm_exit_cb thread_exit;
    void *thread_data;
    /* The context-taking variants (mpm_config_set_*_hooks_ex); setting one
     * kind clears the other, so at most one of each pair is set. */
    mpm_hook_init_cb child_init_ex;
    mpm_hook_exit_cb child_exit_ex;
    mpm_hook_init_cb thread_init_ex;
    mpm_hook_exit_cb thread_exit_ex;
    mpm_log_cb log_cb;
    void *log_data;
    mpm_access_log_cb access_cb;
    void *access_data;
    char errmsg[256];
    mpm_error_cb error_cb; /* mpm_config_set_error_cb (config_hooks.c) */
    void *error_data;
};

/* Adds a TLSCertificate (key "" = the key is in the cert file). Returns 0
 * or MPM_ECONFIG with the reason in err. */
int mpm__settings_add_cert(mpm__settings_t *s, const char *cert, const char *key, char *err,
                           size_t errlen);

/* Whether OpenSSL accepts a cipher list (tls13: TLS 1.3 suites) and
 * selects at least one cipher from it (tls_context.c). 0 or MPM_ECONFIG
 * with OpenSSL's reason in err. */
int mpm__tls_check_ciphers(const char *list, int tls13, char *err, size_t errlen);

/* Fills *s with every directive's default. */
void mpm__settings_defaults(mpm__settings_t *s);

/* Checks the directives together (not each alone): MinSpare < MaxSpare,
 * ThreadsPerChild <= ThreadLimit, at least one listener, ... Returns 0 or
 * MPM_ECONFIG with the reason in err. */
int mpm__settings_check(const mpm__settings_t *s, char *err, size_t errlen);

#endif
