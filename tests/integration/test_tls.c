/* TLS, as a client sees it, on mpmserve with a master (no --one-process):
 * certificates made at test time by the openssl tool (certs.h), a small
 * OpenSSL client (tls_client.h) and curl.
 *
 *  1. every strategy serves over TLS: curl's GET and chunked upload, and
 *     keep-alive (curl's two URLs on one connection; three requests on one
 *     connection of the test client);
 *  2. SNI picks the certificate (two names, a wildcard; none or an unknown
 *     name gets the first one);
 *  3. a session made with one child resumes on another (TLS 1.3 and 1.2),
 *     and does not with TLSSessionTickets Off; a resumed TLS 1.3 handshake
 *     hands out the next ticket;
 *  4. event, TLSPinning On: an idle TLS keep-alive connection holds its
 *     thread (busy_workers) while idle plain ones are parked, and every
 *     request of it runs on that thread;
 *  5. event, TLSPinning Off: 1,000 idle TLS connections are parked on 4
 *     threads and each takes a second request;
 *  6. every strategy: plaintext, garbage, and half a ClientHello on the TLS
 *     port are closed without an HTTP answer (the last at the handshake
 *     bound), a reset mid-handshake is shrugged off, and the server keeps
 *     serving;
 *  7. every strategy: a graceful restart loads the replaced certificate
 *     (every new connection gets it once the old generation's DrainWindow
 *     is over) while a request in flight on an old connection completes;
 *  8. a bad key file (or a missing certificate, or a key of another
 *     certificate) stops mpmserve at start, naming the file;
 *  9. TLSProtocol, TLSCiphers and TLSCipherSuites decide what is
 *     negotiated;
 * 10. a session from before a graceful restart resumes on a child of the
 *     new generation (the ticket keys are the master's);
 * 11. a graceful restart with a broken key file keeps the certificate
 *     loaded before, and keeps serving;
 * 12. every strategy, and event with TLSPinning Off: a TLS 1.3 KeyUpdate
 *     (on an idle connection, and before a request) is answered and the
 *     requests after it are served; a TLS 1.2 renegotiation is refused
 *     and the connection ends;
 * 13. every strategy, and event with TLSPinning Off: half a head after the
 *     handshake gets 408 at the header bound; a client that never reads a
 *     large response is let go after Timeout;
 * 14. ALPN: http/1.1 is chosen from h2 and http/1.1, a client offering only
 *     h2 is refused, one offering nothing is served.
 *
 * Ports: mpmserve prints one "listening on" line per listener, plain ones
 * first, so a server's TLS port is read from the line after its plain
 * ones (the harness reads only the first line; hence this file's own
 * start-up, which leaves the process to the fixture to stop). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "certs.h"
#include "fleet.h"
#include "harness.h"
#include "pool.h"
#include "tls_client.h"

#define BOUND_MS 20000  /* any single step that should take milliseconds */
#define GET_KEEP "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"
#define GET_CLOSE "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
#define GET_TLS "GET /tls HTTP/1.1\r\nHost: a.test\r\n\r\n"
#define HELLO "Hello, World!"

/* ------------------------------------------------------------------ */
/* Certificates of the whole program (made once by the group setup)   */

static char g_dir[TCERT_PATH_MAX / 2];
static tcert_t g_a;    /* CN a.test: the default certificate */
static tcert_t g_b;    /* CN b.test */
static tcert_t g_w;    /* CN w.test, also *.wild.test */
static tcert_t g_a2;   /* CN a.test again, another key: the replacement */
static char g_badkey[TCERT_PATH_MAX];

static int group_setup(void **state)
{
    (void)state;
    if (tcert_dir_make(g_dir, sizeof g_dir) != 0) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    if (tcert_make(g_dir, "a", "a.test", NULL, &g_a) != 0 ||
        tcert_make(g_dir, "b", "b.test", NULL, &g_b) != 0 ||
        tcert_make(g_dir, "w", "w.test", "*.wild.test", &g_w) != 0 ||
        tcert_make(g_dir, "a2", "a.test", NULL, &g_a2) != 0)
        return -1;
    static const char garbage[] = "-----BEGIN PRIVATE KEY-----\n"
                                  "bm90IGEga2V5IGF0IGFsbCwganVzdCBzb21lIHRleHQ=\n"
                                  "-----END PRIVATE KEY-----\n";
    snprintf(g_badkey, sizeof g_badkey, "%s/bad.key", g_dir);
    return tcert_write_file(g_badkey, garbage, sizeof garbage - 1);
}

static int group_teardown(void **state)
{
    (void)state;
    tcert_dir_remove(g_dir);
    return 0;
}

/* ------------------------------------------------------------------ */
/* What a case opens, closed by its teardown even when it failed       */

#define MAX_TCONNS 40
#define MAX_CTXS 8
static ttls_conn_t g_tconns[MAX_TCONNS];
static size_t g_ntconns;
static SSL_CTX *g_ctxs[MAX_CTXS];
static size_t g_nctxs;
static SSL_SESSION *g_session;
static ttls_conn_t *g_many; /* case 5's thousand */
static size_t g_nmany;

/* Plain TCP connections that send nothing, closed by the teardown. */
#define SILENT_MAX 48
static int g_silent[SILENT_MAX];
static size_t g_nsilent;

static int tls_teardown(void **state)
{
    for (size_t i = 0; i < g_ntconns; i++)
        ttls_close(&g_tconns[i]);
    g_ntconns = 0;
    for (size_t i = 0; i < g_nmany; i++)
        ttls_close(&g_many[i]);
    free(g_many);
    g_many = NULL;
    g_nmany = 0;
    SSL_SESSION_free(g_session);
    g_session = NULL;
    for (size_t i = 0; i < g_nctxs; i++)
        SSL_CTX_free(g_ctxs[i]);
    g_nctxs = 0;
    for (size_t i = 0; i < g_nsilent; i++)
        close(g_silent[i]);
    g_nsilent = 0;
    return th_teardown(state);
}

#define TLS_CASE(f, strategy) {#f "[" strategy "]", f, th_setup, tls_teardown, (void *)strategy}
#define TLS_MATRIX(f) TLS_CASE(f, "prefork"), TLS_CASE(f, "worker"), TLS_CASE(f, "event")

/* The two cases of a body taking parked_mode: event's TLSPinning On (and
 * prefork, worker), and event's TLSPinning Off. */
#define PINNED_AND_PARKED(f)                                                                       \
    static void f##_pinned(void **state)                                                           \
    {                                                                                              \
        f(*state, 0);                                                                              \
    }                                                                                              \
    static void f##_parked(void **state)                                                           \
    {                                                                                              \
        f(*state, 1);                                                                              \
    }

/* A client context trusting only trust_pem (NULL: trusting anything). */
static SSL_CTX *client_ctx(const char *trust_pem, int max_version)
{
    assert_true(g_nctxs < MAX_CTXS);
    SSL_CTX *ctx = ttls_ctx_new(trust_pem, max_version);
    assert_non_null(ctx);
    return g_ctxs[g_nctxs++] = ctx;
}

/* A TLS connection owned by the case; fails the case unless the handshake
 * completes. */
static ttls_conn_t *tls_open(SSL_CTX *ctx, int port, const char *sni, const SSL_SESSION *resume)
{
    assert_true(g_ntconns < MAX_TCONNS);
    ttls_conn_t *c = &g_tconns[g_ntconns];
    int rc = ttls_connect(c, ctx, port, sni, resume, BOUND_MS);
    if (rc != TC_OK)
        fail_msg("TLS connect to port %d (SNI %s): %s (verify: %s)", port, sni ? sni : "none",
                 ttls_result_name(rc), X509_verify_cert_error_string(c->verify));
    g_ntconns++;
    return c;
}

/* One request on c; fails the case unless a complete 200 arrives. The
 * caller frees r. */
static void tls_get(ttls_conn_t *c, const char *raw, tc_response_t *r)
{
    int rc = ttls_request(c, raw, r, BOUND_MS);
    if (rc != TC_OK)
        fail_msg("request %.30s... over TLS: %s", raw, ttls_result_name(rc));
    if (r->status != 200)
        fail_msg("request %.30s... over TLS: status %d (%s)", raw, r->status, r->body);
}

/* GET / on c; fails the case unless it is a 200 "Hello, World!". */
static void tls_expect_hello(ttls_conn_t *c)
{
    tc_response_t r;
    tls_get(c, GET_KEEP, &r);
    assert_string_equal(r.body, HELLO);
    tc_response_free(&r);
}

/* ------------------------------------------------------------------ */
/* /tls answers                                                       */

/* The value of "key" in a flat JSON object, into out: a string without its
 * quotes, or a bare token (number, true, false, null). 0, or -1 if absent. */
static int json_value(const char *body, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(body, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    while (*p == ' ' || *p == ':')
        p++;
    size_t n = 0;
    if (*p == '"') {
        for (p++; p[n] && p[n] != '"'; n++) {
        }
    } else {
        while (p[n] && p[n] != ',' && p[n] != '}' && p[n] != ' ' && p[n] != '\n')
            n++;
    }
    if (n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

typedef struct tls_info {
    char tls[8];
    char sni[64];
    char protocol[32];
    char cipher[64];
    long pid;
    long tid;
} tls_info_t;

/* GET /tls on c, parsed; fails the case unless it has every field. */
static tls_info_t tls_info(ttls_conn_t *c)
{
    tc_response_t r;
    tls_get(c, GET_TLS, &r);
    tls_info_t i;
    memset(&i, 0, sizeof i);
    char pid[32] = "", tid[32] = "";
    const char *ct = tc_header(&r, "Content-Type");
    int ok = ct && strstr(ct, "application/json") && json_value(r.body, "tls", i.tls, sizeof i.tls) == 0 &&
             json_value(r.body, "sni", i.sni, sizeof i.sni) == 0 &&
             json_value(r.body, "protocol", i.protocol, sizeof i.protocol) == 0 &&
             json_value(r.body, "cipher", i.cipher, sizeof i.cipher) == 0 &&
             json_value(r.body, "pid", pid, sizeof pid) == 0 &&
             json_value(r.body, "tid", tid, sizeof tid) == 0;
    if (!ok)
        fail_msg("GET /tls: not the expected JSON (Content-Type %s): %s", ct ? ct : "none", r.body);
    i.pid = atol(pid);
    i.tid = atol(tid);
    tc_response_free(&r);
    if (i.pid <= 0 || i.tid <= 0)
        fail_msg("GET /tls: pid %ld, tid %ld", i.pid, i.tid);
    return i;
}

/* ------------------------------------------------------------------ */
/* Starting mpmserve with TLS listeners                               */

/* Reads the "listening on" lines from fd until there are want of them;
 * their ports into ports[]. 0, or -1 at the deadline or EOF. */
static int read_ports(int fd, int *ports, int want, int timeout_ms)
{
    static const char marker[] = "mpmserve: listening on 127.0.0.1:";
    char buf[4096];
    size_t len = 0;
    int64_t deadline = tc_now_ms() + timeout_ms;
    for (;;) {
        int got = 0;
        buf[len] = '\0';
        for (const char *m = strstr(buf, marker); m && strchr(m, '\n') && got < want;
             m = strstr(m + 1, marker))
            ports[got++] = atoi(m + sizeof marker - 1);
        if (got == want)
            return 0;
        int left = (int)(deadline - tc_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || len >= sizeof buf - 1 || poll(&p, 1, left) <= 0)
            return -1;
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
}

typedef struct tls_server {
    th_process_t *p;
    int plain; /* 0 without a plain listener */
    int tls;
} tls_server_t;

/* mpmserve --mpm STRATEGY --test-routes [--listen 127.0.0.1:0]
 * --tls-listen 127.0.0.1:0 EXTRA..., owned by the fixture (stopped by its
 * teardown). extra holds the --cert/--key pairs. Skips when the strategy
 * is not built. */
static tls_server_t start_server(th_fixture_t *fx, int with_plain, const char *const *extra)
{
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *args[64] = {"--mpm", fx->strategy, "--test-routes"};
    size_t n = 3;
    if (with_plain) {
        args[n++] = "--listen";
        args[n++] = "127.0.0.1:0";
    }
    args[n++] = "--tls-listen";
    args[n++] = "127.0.0.1:0";
    for (size_t i = 0; extra && extra[i] && n < 63; i++)
        args[n++] = extra[i];
    args[n] = NULL;

    assert_true(fx->nprocs < TH_MAX_PROCS);
    th_process_t *p = &fx->procs[fx->nprocs];
    memset(p, 0, sizeof *p);
    p->out_fd = p->err_fd = -1;
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    p->pid = th_spawn_mpmserve(args, fds[1], -1);
    close(fds[1]);
    p->out_fd = fds[0];
    fx->nprocs++; /* from here on the teardown stops it */
    assert_true(p->pid > 0);

    tls_server_t s = {.p = p};
    int ports[2] = {0, 0};
    if (read_ports(p->out_fd, ports, with_plain ? 2 : 1, BOUND_MS) != 0)
        fail_msg("mpmserve (%s) did not report its %d port(s)", fx->strategy, with_plain ? 2 : 1);
    s.plain = with_plain ? ports[0] : 0;
    s.tls = with_plain ? ports[1] : ports[0];
    p->port = s.plain ? s.plain : s.tls;
    return s;
}

#define CERT_A "--cert", g_a.cert, "--key", g_a.key

/* The name of the key a session's ticket was encrypted with: the ticket's
 * first 16 bytes (the format of OpenSSL's ticket callback) as hex. */
static void ticket_key_name(const SSL_SESSION *sess, char *hex, size_t cap)
{
    const unsigned char *tick = NULL;
    size_t len = 0;
    SSL_SESSION_get0_ticket(sess, &tick, &len);
    assert_true(len >= 16 && cap >= 33);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", tick[i]);
}

/* One connection offering `resume` (may be NULL) and one request: whether
 * it resumed, the session it ends with (the caller frees it) and the name
 * of that session's ticket key. */
static SSL_SESSION *session_after(SSL_CTX *ctx, int port, SSL_SESSION *resume, int *reused,
                                  char *hex, size_t cap)
{
    ttls_conn_t c;
    int rc = ttls_connect(&c, ctx, port, "a.test", resume, BOUND_MS);
    if (rc != TC_OK)
        fail_msg("TLS connect: %s", ttls_result_name(rc));
    *reused = ttls_reused(&c);
    tc_response_t r;
    rc = ttls_request(&c, GET_TLS, &r, BOUND_MS);
    tc_response_free(&r);
    SSL_SESSION *sess = ttls_session(&c);
    ttls_close(&c);
    if (rc != TC_OK || !sess)
        fail_msg("GET /tls: %s, session %p", ttls_result_name(rc), (void *)sess);
    ticket_key_name(sess, hex, cap);
    return sess;
}

/* A full handshake and one request; the name of the key of the ticket it
 * got. */
static void fresh_ticket_key(SSL_CTX *ctx, int port, char *hex, size_t cap)
{
    int reused;
    SSL_SESSION_free(session_after(ctx, port, NULL, &reused, hex, cap));
}

/* Polls with full handshakes until new tickets use a key other than
 * `old`; its name into hex. With `last_old`, the freshest session still
 * under `old` replaces *last_old (the caller frees it). */
static void wait_next_ticket_key_keeping(SSL_CTX *ctx, int port, const char *old, char *hex,
                                         size_t cap, SSL_SESSION **last_old)
{
    int64_t deadline = tc_now_ms() + 20000;
    for (;;) {
        if (tc_now_ms() > deadline)
            fail_msg("20 s on, new tickets still use key %s", old);
        struct timespec nap = {0, 50 * 1000000L}; /* a poll interval, not a wait for an outcome */
        nanosleep(&nap, NULL);
        int reused;
        SSL_SESSION *sess = session_after(ctx, port, NULL, &reused, hex, cap);
        if (strcmp(old, hex) != 0) {
            SSL_SESSION_free(sess);
            return;
        }
        if (last_old) {
            SSL_SESSION_free(*last_old);
            *last_old = sess;
        } else {
            SSL_SESSION_free(sess);
        }
    }
}

static void wait_next_ticket_key(SSL_CTX *ctx, int port, const char *old, char *hex, size_t cap)
{
    wait_next_ticket_key_keeping(ctx, port, old, hex, cap, NULL);
}

/* The key before the current one still opens its tickets, and the session
 * it resumes gets a ticket under the current key; a ticket two keys old
 * does not resume (a full handshake). Rotation every 3 s, TLS 1.2 (whose
 * tickets a client may offer again). A ticket lives one rotation period
 * (the session timeout), so the one offered after the rotation is the
 * last one issued before it: one issued early in its key's period would
 * rightly have expired by then. */
static void previous_ticket_key_resumes_and_renews(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const extra[] = {CERT_A, "--set", "TLSSessionTicketKeyRotation=3", NULL};
    tls_server_t s = start_server(fx, 0, extra);
    SSL_CTX *ctx = client_ctx(g_a.cert, TLS1_2_VERSION);
    char k1[33], k2[33], k3[33], renewed[33];
    int reused = -1;
    SSL_SESSION *old = session_after(ctx, s.tls, NULL, &reused, k1, sizeof k1);
    assert_false(reused);
    wait_next_ticket_key_keeping(ctx, s.tls, k1, k2, sizeof k2, &old);
    SSL_SESSION *again = session_after(ctx, s.tls, old, &reused, renewed, sizeof renewed);
    SSL_SESSION_free(again);
    if (!reused)
        fail_msg("a ticket under the previous key (%s) did not resume", k1);
    if (strcmp(renewed, k1) == 0)
        fail_msg("a session resumed under the previous key kept its old ticket");
    wait_next_ticket_key(ctx, s.tls, k2, k3, sizeof k3);
    again = session_after(ctx, s.tls, old, &reused, renewed, sizeof renewed);
    SSL_SESSION_free(again);
    SSL_SESSION_free(old);
    if (reused)
        fail_msg("a ticket two keys old (%s; now %s) still resumed", k1, k3);
}

/* TLSSessionTicketKeyRotation: new tickets get a new key once the period
 * is over (here 1 s). */
static void ticket_keys_rotate(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const extra[] = {CERT_A, "--set", "TLSSessionTicketKeyRotation=1", NULL};
    tls_server_t s = start_server(fx, 0, extra);
    SSL_CTX *ctx = client_ctx(g_a.cert, TLS1_2_VERSION);
    char first[33], now[33];
    fresh_ticket_key(ctx, s.tls, first, sizeof first);
    wait_next_ticket_key(ctx, s.tls, first, now, sizeof now);
}

/* ------------------------------------------------------------------ */
/* 1. Every strategy serves over TLS                                  */

/* Runs curl with the arguments after "curl" (NULL-terminated), trusting
 * a.test's certificate and resolving a.test to 127.0.0.1:port; its stdout
 * (malloc'd, NUL-terminated, *len bytes) is returned. Fails the case if
 * curl fails; skips if there is no curl. */
static char *curl(int port, size_t *len, ...)
{
    char resolve[64], out[TCERT_PATH_MAX];
    snprintf(resolve, sizeof resolve, "a.test:%d:127.0.0.1", port);
    snprintf(out, sizeof out, "%s/curl.out", g_dir);
    char *argv[32] = {"curl", "-sS", "--max-time", "30", "--cacert", g_a.cert, "--resolve",
                      resolve};
    size_t n = 8;
    va_list ap;
    va_start(ap, len);
    for (char *a; (a = va_arg(ap, char *)) != NULL && n < 31;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    int rc = tcert_run(argv, out, NULL);
    if (rc == -1 || rc == 127) {
        char *const probe[] = {"curl", "--version", NULL};
        if (tcert_run(probe, NULL, "/dev/null") != 0) {
            fprintf(stderr, "no curl here: skipping\n");
            skip();
        }
    }
    if (rc != 0)
        fail_msg("curl (%s ...) exited %d", argv[n - 1], rc);
    FILE *f = fopen(out, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    unlink(out);
    return buf;
}

static void curl_get_upload_and_reuse(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const extra[] = {CERT_A, NULL};
    tls_server_t s = start_server(fx, 0, extra);
    char url[64], echo_url[64];
    snprintf(url, sizeof url, "https://a.test:%d/", s.tls);
    snprintf(echo_url, sizeof echo_url, "https://a.test:%d/echo", s.tls);

    size_t len;
    char *body = curl(s.tls, &len, url, NULL);
    assert_string_equal(body, HELLO);
    free(body);

    /* 200 KB in chunks, echoed back whole. */
    char upload[TCERT_PATH_MAX], arg[TCERT_PATH_MAX + 1];
    snprintf(upload, sizeof upload, "%s/upload-%s.bin", g_dir, fx->strategy);
    snprintf(arg, sizeof arg, "@%s", upload);
    size_t ulen = 200 * 1024;
    char *data = malloc(ulen);
    assert_non_null(data);
    for (size_t i = 0; i < ulen; i++)
        data[i] = (char)('a' + (i * 7 + i / 1024) % 26);
    assert_int_equal(tcert_write_file(upload, data, ulen), 0);
    body = curl(s.tls, &len, "-H", "Transfer-Encoding: chunked", "--data-binary", arg, echo_url,
                NULL);
    unlink(upload);
    if (len != ulen || memcmp(body, data, ulen) != 0)
        fail_msg("/echo over TLS sent back %zu bytes for a chunked upload of %zu", len, ulen);
    free(body);
    free(data);

    /* Two URLs: one connection, reused for the second. */
    body = curl(s.tls, &len, "-w", "[%{num_connects}]", url, url, NULL);
    assert_string_equal(body, HELLO "[1]" HELLO "[0]");
    free(body);

    /* Three requests on one connection of the test client. */
    ttls_conn_t *c = tls_open(client_ctx(g_a.cert, 0), s.tls, "a.test", NULL);
    tls_info_t first = tls_info(c);
    assert_string_equal(first.tls, "true");
    assert_string_equal(first.protocol, "TLSv1.3");
    assert_string_equal(first.protocol, ttls_version(c));
    assert_int_not_equal(first.pid, s.p->pid); /* a child serves */
    for (int i = 0; i < 2; i++) {
        tc_response_t r;
        tls_get(c, GET_KEEP, &r);
        assert_string_equal(r.body, HELLO);
        assert_false(tc_header_has_token(&r, "Connection", "close"));
        tc_response_free(&r);
    }
    assert_int_equal(tls_info(c).pid, first.pid);
}

/* ------------------------------------------------------------------ */
/* 2. SNI                                                             */

/* A fresh connection with sni, verified against trust_pem: /tls's sni and
 * the certificate presented. */
static void expect_cert_for(int port, const char *sni, const tcert_t *want, const char *sni_json)
{
    ttls_conn_t *c = tls_open(client_ctx(want->cert, 0), port, sni, NULL);
    if (!ttls_peer_is(c, want->cert))
        fail_msg("SNI %s: not the certificate %s", sni ? sni : "none", want->cert);
    tls_info_t i = tls_info(c);
    assert_string_equal(i.sni, sni_json);
}

static void sni_picks_the_certificate(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const extra[] = {CERT_A, "--cert", g_b.cert, "--key", g_b.key,
                                        "--cert", g_w.cert, "--key", g_w.key, NULL};
    tls_server_t s = start_server(fx, 0, extra);

    expect_cert_for(s.tls, "a.test", &g_a, "a.test");
    expect_cert_for(s.tls, "b.test", &g_b, "b.test");
    expect_cert_for(s.tls, "x.wild.test", &g_w, "x.wild.test");
    expect_cert_for(s.tls, NULL, &g_a, "null");         /* no SNI: the first */

    /* An unknown name: the first certificate (not a.test's name, so the
     * client checks the certificate itself, not the name). */
    ttls_conn_t *c = tls_open(client_ctx(NULL, 0), s.tls, "nobody.test", NULL);
    if (!ttls_peer_is(c, g_a.cert))
        fail_msg("SNI nobody.test: not the first certificate");
    assert_string_equal(tls_info(c).sni, "nobody.test");

    /* The client really checks: b.test's certificate is not a.test's. */
    ttls_conn_t wrong;
    int rc = ttls_connect(&wrong, client_ctx(g_a.cert, 0), s.tls, "b.test", NULL, BOUND_MS);
    ttls_close(&wrong);
    if (rc != TTLS_EHANDSHAKE)
        fail_msg("a client trusting only a.test's certificate connected to b.test: %s",
                 ttls_result_name(rc));
}

/* ------------------------------------------------------------------ */
/* 3. Session resumption across children                              */

#define RESUME_TRIES 24

/* Pool sizes with at least 3 children, each easy to fill. A held
 * connection must keep holding its worker however slow the machine is:
 * at the default KeepAliveTimeout (5 s) a loaded CI machine let the first
 * child's connections time out and that child take every new one. */
static const char *const *three_children(const th_fixture_t *fx)
{
    static const char *const prefork[] = {"--set", "StartServers=3", "--set", "MinSpareServers=1",
                                          "--set", "MaxSpareServers=10", "--set",
                                          "KeepAliveTimeout=120", NULL};
    static const char *const threads[] = {"--set", "StartServers=3", "--set", "ThreadsPerChild=2",
                                          "--set", "MinSpareThreads=2", "--set",
                                          "MaxSpareThreads=20", "--set", "KeepAliveTimeout=120",
                                          NULL};
    return strcmp(fx->strategy, "prefork") == 0 ? prefork : threads;
}

/* Full handshake and GET /tls (pid A); then connections offering that
 * session, each kept open so that it holds its worker and the next lands
 * elsewhere, until one is served by another child. Asserts that each of
 * them resumed (want_resume) or that the one on another child did not. */
static void resume_on_another_child(th_fixture_t *fx, int max_version, const char *tickets)
{
    const char *extra[32] = {CERT_A, "--set", tickets};
    size_t n = 6; /* after the six above: a NULL between would end the list there */
    for (const char *const *a = three_children(fx); *a; a++)
        extra[n++] = *a;
    extra[n] = NULL;
    tls_server_t s = start_server(fx, 0, extra);
    int want_resume = strcmp(tickets, "TLSSessionTickets=On") == 0;
    const char *version = max_version == TLS1_2_VERSION ? "TLSv1.2" : "TLSv1.3";

    SSL_CTX *ctx = client_ctx(g_a.cert, max_version);
    ttls_conn_t *c0 = tls_open(ctx, s.tls, "a.test", NULL);
    tls_info_t i0 = tls_info(c0); /* reads the TLS 1.3 tickets too */
    assert_false(ttls_reused(c0));
    assert_string_equal(i0.protocol, version);
    g_session = ttls_session(c0);
    if (want_resume && !g_session)
        fail_msg("%s: no resumable session after a full handshake and a response", version);

    for (int i = 0; i < RESUME_TRIES; i++) {
        ttls_conn_t *c = tls_open(ctx, s.tls, "a.test", g_session);
        tls_info_t in = tls_info(c);
        int reused = ttls_reused(c);
        if (want_resume && !reused)
            fail_msg("%s: connection %d (pid %ld; the session's pid %ld) did not resume", version,
                     i + 1, in.pid, i0.pid);
        if (in.pid == i0.pid)
            continue;
        if (!want_resume && reused)
            fail_msg("%s with %s: pid %ld resumed pid %ld's session", version, tickets, in.pid,
                     i0.pid);
        return;
    }
    fail_msg("%d connections, all served by pid %ld: no other child to resume on", RESUME_TRIES,
             i0.pid);
}

static void session_resumes_on_another_child_tls13(void **state)
{
    resume_on_another_child(*state, TLS1_3_VERSION, "TLSSessionTickets=On");
}

static void session_resumes_on_another_child_tls12(void **state)
{
    resume_on_another_child(*state, TLS1_2_VERSION, "TLSSessionTickets=On");
}

/* TLS 1.3 clients use a ticket once (RFC 8446 C.4; OpenSSL's own client,
 * wrk, browsers): each resumed handshake must hand out the next ticket,
 * or every other reconnect is a full handshake. A chain of resumptions,
 * each on the ticket the one before got. */
static void tls13_resumption_hands_out_the_next_ticket(void **state)
{
    static const char *const extra[] = {CERT_A, NULL};
    tls_server_t s = start_server(*state, 0, extra);
    SSL_CTX *ctx = client_ctx(g_a.cert, TLS1_3_VERSION);
    ttls_conn_t *c = tls_open(ctx, s.tls, "a.test", NULL);
    tls_info(c); /* reads the tickets too */
    g_session = ttls_session(c);
    assert_non_null(g_session);
    for (int i = 1; i <= 3; i++) {
        c = tls_open(ctx, s.tls, "a.test", g_session);
        tls_info(c);
        if (!ttls_reused(c))
            fail_msg("resumption %d on the ticket the one before got: a full handshake", i);
        SSL_SESSION *next = ttls_session(c);
        if (!next || next == g_session) {
            SSL_SESSION_free(next);
            fail_msg("resumption %d: no new ticket after a resumed handshake", i);
        }
        SSL_SESSION_free(g_session);
        g_session = next;
    }
}

static void no_tickets_no_resumption_tls13(void **state)
{
    resume_on_another_child(*state, TLS1_3_VERSION, "TLSSessionTickets=Off");
}

static void no_tickets_no_resumption_tls12(void **state)
{
    resume_on_another_child(*state, TLS1_2_VERSION, "TLSSessionTickets=Off");
}

/* ------------------------------------------------------------------ */
/* 4. event, TLSPinning On: an idle TLS connection keeps its thread    */

#define PARKED_PLAIN 6

typedef struct status_cond {
    int port;
    const char *key;
    long at_least;
    long seen;
} status_cond_t;

static int status_at_least(void *arg)
{
    status_cond_t *s = arg;
    s->seen = tpool_status_number(s->port, s->key);
    return s->seen >= s->at_least;
}

static int status_at_most(void *arg)
{
    status_cond_t *s = arg;
    s->seen = tpool_status_number(s->port, s->key);
    return s->seen >= 0 && s->seen <= s->at_least;
}

/* Waits (bounded) until /status's key reaches at_least; fails the case
 * with what it last saw if not. */
static void wait_status(int port, const char *key, long at_least, int timeout_ms, const char *why)
{
    status_cond_t c = {port, key, at_least, -1};
    if (!th_wait_for(status_at_least, &c, timeout_ms))
        fail_msg("%s: /status %s is %ld, expected at least %ld", why, key, c.seen, at_least);
}

static void pinned_tls_connection_holds_its_thread(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const extra[] = {
        CERT_A, "--set", "StartServers=1", "--set", "ServerLimit=1", "--set", "ThreadsPerChild=8",
        "--set", "MaxRequestWorkers=8", "--set", "MinSpareThreads=1", "--set", "MaxSpareThreads=8",
        "--set", "KeepAliveTimeout=120", NULL}; /* the plain ones stay parked throughout */
    tls_server_t s = start_server(fx, 1, extra);

    for (int i = 0; i < PARKED_PLAIN; i++)
        th_hold_connection(fx, s.plain);
    wait_status(s.plain, "parked_connections", PARKED_PLAIN, BOUND_MS, "idle plain connections");
    /* The baseline: /status itself, once no plain connection is still on
     * its way back from a thread (on a loaded machine a sample may catch
     * one, and a baseline one too high would outwait KeepAliveTimeout). */
    status_cond_t quiet = {s.plain, "busy_workers", 1, -1};
    if (!th_wait_for(status_at_most, &quiet, 10000))
        fail_msg("busy_workers %ld with only parked plain connections", quiet.seen);
    long busy0 = quiet.seen;
    assert_true(busy0 >= 1);

    ttls_conn_t *c = tls_open(client_ctx(g_a.cert, 0), s.tls, "a.test", NULL);
    tls_info_t first = tls_info(c);
    wait_status(s.plain, "busy_workers", busy0 + 1, 10000, "an idle pinned TLS connection");
    long parked = tpool_status_number(s.plain, "parked_connections");
    if (parked != PARKED_PLAIN)
        fail_msg("parked_connections %ld with %d idle plain and one pinned TLS connection", parked,
                 PARKED_PLAIN);

    for (int i = 0; i < 5; i++) {
        tls_info_t in = tls_info(c);
        if (in.tid != first.tid || in.pid != first.pid)
            fail_msg("request %d of a pinned connection ran on %ld/%ld, the first on %ld/%ld", i + 2,
                     in.pid, in.tid, first.pid, first.tid);
    }
}

/* ------------------------------------------------------------------ */
/* 5. event, TLSPinning Off: 1,000 idle TLS connections, 4 threads      */

#define MANY 1000

/* One child of two threads, whose silent clients wait a minute. */
#define ONE_CHILD_TWO_THREADS                                                                      \
    "--set", "ThreadsPerChild=2", "--set", "StartServers=1", "--set", "ServerLimit=1", "--set",    \
        "MaxRequestWorkers=2", "--set", "MinSpareThreads=1", "--set", "MaxSpareThreads=2",         \
        "--set", "RequestReadTimeout=header=60"

/* event, pinned: a client that connects to the TLS port and sends nothing
 * holds no thread (it waits on the loop for its first bytes), so two
 * threads and six such clients still leave room for a real one. Not
 * deferred: the kernel would keep them from the server altogether. */
static void silent_tls_clients_hold_no_thread(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const extra[] = {CERT_A, ONE_CHILD_TWO_THREADS, "--set",
                                        "TLSDeferAccept=0", NULL};
    tls_server_t s = start_server(fx, 0, extra);
    for (int i = 0; i < 6; i++)
        (void)th_connect(fx, s.tls);
    SSL_CTX *ctx = client_ctx(g_a.cert, 0);
    ttls_conn_t *c = tls_open(ctx, s.tls, "a.test", NULL);
    tls_info_t info = tls_info(c);
    assert_string_equal(info.tls, "true");
}

/* event, pinned: a client that sends part of its ClientHello and stops
 * holds no thread either: a pinned connection goes to its thread only once
 * the hello's first record is all there. Both threads of the child face
 * such halves, and a real client is still served long before the halves'
 * deadline (a minute); each half that then sends the rest completes its
 * handshake and is served. */
static void half_hellos_hold_no_pinned_thread(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const extra[] = {CERT_A, ONE_CHILD_TWO_THREADS, NULL};
    tls_server_t s = start_server(fx, 0, extra);
    SSL_CTX *ctx = client_ctx(g_a.cert, 0);
    enum { HALVES = 2 };
    ttls_conn_t *half[HALVES];
    for (int i = 0; i < HALVES; i++) {
        assert_true(g_ntconns < MAX_TCONNS);
        half[i] = &g_tconns[g_ntconns++];
        int rc = ttls_start_split(half[i], ctx, s.tls, "a.test", 40, BOUND_MS);
        if (rc != TC_OK)
            fail_msg("half hello %d: %s", i, ttls_result_name(rc));
    }
    int64_t start = tc_now_ms();
    ttls_conn_t *c = tls_open(ctx, s.tls, "a.test", NULL);
    tc_response_t r;
    tls_get(c, GET_CLOSE, &r);
    tc_response_free(&r);
    int64_t waited = tc_now_ms() - start;
    if (waited > 10000)
        fail_msg("a real client waited %lld ms behind two half hellos", (long long)waited);
    ttls_close(c);
    for (int i = 0; i < HALVES; i++) {
        int rc = ttls_finish_split(half[i], BOUND_MS);
        if (rc != TC_OK)
            fail_msg("half hello %d, completed: %s", i, ttls_result_name(rc));
        tls_get(half[i], GET_CLOSE, &r);
        tc_response_free(&r);
        ttls_close(half[i]);
    }
}

/* /proc/net/tcp's states (include/net/tcp_states.h). */
#define TCP_ST_ESTABLISHED 0x01
#define TCP_ST_SYN_RECV 0x03
#define TCP_ST_LISTEN 0x0A

/* The rows of /proc/net/tcp whose local end is 127.0.0.1:port and whose
 * state is st: how many, and (into *rx, if given) the last one's rx_queue
 * column, which for a LISTEN row is its accept queue. */
static long tcp_rows(int port, unsigned st, long *rx_out)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[256], want[32];
    snprintf(want, sizeof want, "0100007F:%04X", port);
    long rows = 0;
    while (f && fgets(line, sizeof line, f)) {
        char local[32], remote[32];
        unsigned state;
        unsigned long tx, rx;
        if (sscanf(line, " %*d: %31s %31s %x %lx:%lx", local, remote, &state, &tx, &rx) == 5 &&
            strcmp(local, want) == 0 && state == st) {
            rows++;
            if (rx_out)
                *rx_out = (long)rx;
        }
    }
    if (f)
        fclose(f);
    return rows;
}

/* Connections waiting in the accept queue of the listener on 127.0.0.1:port;
 * -1 if there is no such listener. */
static long accept_queue(int port)
{
    long queued = -1;
    (void)tcp_rows(port, TCP_ST_LISTEN, &queued);
    return queued;
}

typedef struct queue_cond {
    int port;
    long at_least;
} queue_cond_t;

static int queue_at_least(void *arg)
{
    queue_cond_t *q = arg;
    return accept_queue(q->port) >= q->at_least;
}

#define BURST 4

typedef struct burst_client {
    SSL_CTX *ctx;
    int port;
    ttls_conn_t c;
    int rc;
    int status;
} burst_client_t;

static void *burst_handshake(void *arg)
{
    burst_client_t *b = arg;
    b->rc = ttls_connect(&b->c, b->ctx, b->port, "a.test", NULL, 15000);
    if (b->rc == TC_OK) {
        tc_response_t r;
        b->rc = ttls_request(&b->c, GET_KEEP, &r, 15000);
        b->status = r.status;
        tc_response_free(&r);
    }
    return NULL;
}

/* event, pinned: a child takes from a burst of new TLS connections only as
 * many as it has threads free. Two children of two threads, all four held
 * by idle pinned connections; four more clients wait in the accept queue.
 * One child's two connections close: it may take two of the four, and the
 * other child takes the rest when its threads free. A child that took all
 * four would leave two waiting for a thread behind connections kept alive
 * for minutes. */
static void pinned_burst_spreads_over_free_threads(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const extra[] = {
        CERT_A, "--set", "StartServers=2", "--set", "ServerLimit=2", "--set", "ThreadsPerChild=2",
        "--set", "MaxRequestWorkers=4", "--set", "MinSpareThreads=1", "--set", "MaxSpareThreads=4",
        "--set", "KeepAliveTimeout=120", NULL};
    tls_server_t s = start_server(fx, 0, extra);
    SSL_CTX *ctx = client_ctx(g_a.cert, 0);
    ttls_conn_t *held[BURST];
    long pid[BURST];
    for (int i = 0; i < BURST; i++) {
        held[i] = tls_open(ctx, s.tls, "a.test", NULL);
        pid[i] = tls_info(held[i]).pid;
    }
    burst_client_t b[BURST];
    pthread_t t[BURST];
    for (int i = 0; i < BURST; i++) {
        b[i] = (burst_client_t){.ctx = ctx, .port = s.tls};
        assert_int_equal(pthread_create(&t[i], NULL, burst_handshake, &b[i]), 0);
    }
    queue_cond_t q = {.port = s.tls, .at_least = BURST};
    int queued = th_wait_for(queue_at_least, &q, BOUND_MS);
    /* The first child's connections go, then the other's. */
    for (int pass = 0; queued && pass < 2; pass++)
        for (int i = 0; i < BURST; i++)
            if ((pid[i] == pid[0]) == (pass == 0))
                ttls_close(held[i]);
    for (int i = 0; i < BURST; i++)
        pthread_join(t[i], NULL);
    if (!queued)
        fail_msg("the burst never waited in the accept queue (%ld queued)", accept_queue(s.tls));
    for (int i = 0; i < BURST; i++) {
        ttls_close(&b[i].c);
        if (b[i].rc != TC_OK || b[i].status != 200)
            fail_msg("burst connection %d of %d: %s, status %d", i + 1, BURST,
                     ttls_result_name(b[i].rc), b[i].status);
    }
}

static void open_silent(int port, size_t n)
{
    for (size_t i = 0; i < n && g_nsilent < SILENT_MAX; i++) {
        tc_conn_t c;
        if (tc_connect(&c, port, BOUND_MS) != 0)
            fail_msg("silent connection %zu of %zu to port %d did not connect", i + 1, n, port);
        g_silent[g_nsilent++] = c.fd;
    }
}

typedef struct handed_over_cond {
    int port;
    long n;
} handed_over_cond_t;

/* Every one of n connections to port is out of the kernel's hands: none
 * waits in SYN_RECV (deferred) or in the accept queue. */
static int handed_over(void *arg)
{
    handed_over_cond_t *h = arg;
    return tcp_rows(h->port, TCP_ST_SYN_RECV, NULL) == 0 && accept_queue(h->port) == 0 &&
           tcp_rows(h->port, TCP_ST_ESTABLISHED, NULL) >= h->n;
}

static int established_on(void *arg)
{
    return tcp_rows(*(int *)arg, TCP_ST_ESTABLISHED, NULL) > 0;
}

/* Fails unless the one client of port waits in SYN_RECV, not handed over. */
static void expect_deferred(int port, const char *what)
{
    long syn = tcp_rows(port, TCP_ST_SYN_RECV, NULL);
    long est = tcp_rows(port, TCP_ST_ESTABLISHED, NULL);
    if (syn != 1 || est != 0)
        fail_msg("a silent client of %s: %ld in SYN_RECV (want 1), %ld established (want 0)", what,
                 syn, est);
}

/* TLSDeferAccept (TCP_DEFER_ACCEPT): a client that connects to the TLS port
 * and sends nothing stays with the kernel (SYN_RECV on the server's side)
 * for the defer; the plain port, and TLSDeferAccept=0, hand it over at
 * once. DeferAccept does the same for the plain port alone. A real client
 * is served at once. */
static void deferred_tls_accept_keeps_silent_clients_in_the_kernel(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const deferred[] = {CERT_A, "--set", "TLSDeferAccept=30", NULL};
    static const char *const plain_deferred[] = {CERT_A, "--set", "TLSDeferAccept=0", "--set",
                                                 "DeferAccept=30", NULL};
    tls_server_t s = start_server(fx, 1, deferred);
    tls_server_t p = start_server(fx, 1, plain_deferred);
    open_silent(s.plain, 1);
    open_silent(s.tls, 1);
    open_silent(p.plain, 1);
    open_silent(p.tls, 1);
    assert_true(th_wait_for(established_on, &s.plain, BOUND_MS));
    assert_true(th_wait_for(established_on, &p.tls, BOUND_MS));
    expect_deferred(s.tls, "the deferred TLS port");
    expect_deferred(p.plain, "a plain port under DeferAccept");
    SSL_CTX *ctx = client_ctx(g_a.cert, 0);
    assert_string_equal(tls_info(tls_open(ctx, s.tls, "a.test", NULL)).tls, "true");
}

#define SILENT_FLOOD 40

/* event, pinned: clients that stay silent through TLSDeferAccept (1 s)
 * come out of the kernel without a ClientHello; they promise no thread, so
 * a child of two threads takes all forty at once and keeps accepting. Had
 * each held a thread's promise for EV_PIN_RESERVE_MS, the child would take
 * two a second (twenty seconds for the flood), and a real client behind
 * them would wait as long. With half_hello, each client sends the first
 * half of a ClientHello and stops: having spoken, it promises no thread
 * either (and holds none, half_hellos_hold_no_pinned_thread). */
static void flood_leaves_pinned_admission_open(th_fixture_t *fx, int half_hello)
{
    static const char *const extra[] = {CERT_A, ONE_CHILD_TWO_THREADS, "--set",
                                        "ListenBacklog=128", NULL};
    tls_server_t s = start_server(fx, 0, extra);
    SSL_CTX *ctx = client_ctx(g_a.cert, 0);
    unsigned char hello[4096];
    int len = ttls_client_hello(ctx, "a.test", hello, sizeof hello);
    assert_true(len > 10);
    size_t first = g_nsilent;
    open_silent(s.tls, SILENT_FLOOD);
    for (size_t i = first; half_hello && i < g_nsilent; i++)
        assert_int_equal(send(g_silent[i], hello, (size_t)len / 2, MSG_NOSIGNAL), len / 2);
    /* The defer is about a second; the flood, taken at once, well within
     * eight (two a second would take twenty). */
    handed_over_cond_t h = {.port = s.tls, .n = SILENT_FLOOD};
    if (!th_wait_for(handed_over, &h, 8000))
        fail_msg("after 8 s the child had not taken the %d %s clients: %ld deferred, %ld in "
                 "the accept queue",
                 SILENT_FLOOD, half_hello ? "half-hello" : "silent",
                 tcp_rows(s.tls, TCP_ST_SYN_RECV, NULL), accept_queue(s.tls));
    assert_string_equal(tls_info(tls_open(ctx, s.tls, "a.test", NULL)).tls, "true");
}

static void silent_flood_leaves_pinned_admission_open(void **state)
{
    flood_leaves_pinned_admission_open(*state, 0);
}

static void half_hello_flood_leaves_pinned_admission_open(void **state)
{
    flood_leaves_pinned_admission_open(*state, 1);
}

static void unpinned_thousand_idle_tls_connections(void **state)
{
    th_fixture_t *fx = *state;
    long fds = tf_raise_nofile(); /* before the fork: mpmserve inherits it */
    if (fds < 2 * MANY + 200) {
        fprintf(stderr, "skipping: needs %d descriptors, RLIMIT_NOFILE allows %ld\n",
                2 * MANY + 200, fds);
        skip();
    }
    static const char *const extra[] = {
        CERT_A, "--set", "TLSPinning=Off", "--set", "ThreadsPerChild=4", "--set",
        "StartServers=1", "--set", "ServerLimit=1", "--set", "MaxRequestWorkers=4", "--set",
        "MinSpareThreads=1", "--set", "MaxSpareThreads=4", "--set", "KeepAliveTimeout=120",
        "--set", "ListenBacklog=2048", NULL};
    tls_server_t s = start_server(fx, 1, extra);
    SSL_CTX *ctx = client_ctx(g_a.cert, 0);
    g_many = calloc(MANY, sizeof *g_many);
    assert_non_null(g_many);

    int64_t t0 = tc_now_ms();
    for (size_t i = 0; i < MANY; i++) {
        int rc = ttls_connect(&g_many[i], ctx, s.tls, "a.test", NULL, BOUND_MS);
        g_nmany = i + 1;
        if (rc != TC_OK)
            fail_msg("TLS connection %zu of %d (the others idle): %s", i + 1, MANY,
                     ttls_result_name(rc));
        tc_response_t r;
        rc = ttls_request(&g_many[i], GET_KEEP, &r, BOUND_MS);
        int status = r.status;
        tc_response_free(&r);
        if (rc != TC_OK || status != 200)
            fail_msg("first request on TLS connection %zu: %s, status %d", i + 1,
                     ttls_result_name(rc), status);
    }
    int64_t t1 = tc_now_ms();
    wait_status(s.plain, "parked_connections", MANY, BOUND_MS, "1,000 idle TLS connections");
    long busy = tpool_status_number(s.plain, "busy_workers");
    if (busy < 1 || busy > 2) /* /status itself, perhaps one finishing */
        fail_msg("busy_workers %ld with %d idle TLS connections parked", busy, MANY);

    for (size_t i = 0; i < MANY; i++) {
        tc_response_t r;
        int rc = ttls_request(&g_many[i], GET_KEEP, &r, BOUND_MS);
        int ok = rc == TC_OK && r.status == 200 && strcmp(r.body, HELLO) == 0;
        tc_response_free(&r);
        if (!ok)
            fail_msg("second request on parked TLS connection %zu: %s", i + 1,
                     ttls_result_name(rc));
    }
    fprintf(stderr, "%d TLS connections and requests: %lld ms; second requests: %lld ms\n", MANY,
            (long long)(t1 - t0), (long long)(tc_now_ms() - t1));
}

/* ------------------------------------------------------------------ */
/* 6. Not TLS on the TLS port                                         */

/* Reads c until the server closes it; fails the case if anything received
 * looks like HTTP, or if it stays open timeout_ms. Returns how long it took. */
static int64_t expect_closed_without_http(tc_conn_t *c, int timeout_ms, const char *what)
{
    int64_t start = tc_now_ms(), deadline = start + timeout_ms;
    char got[4096];
    size_t len = 0;
    for (;;) {
        int left = (int)(deadline - tc_now_ms());
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) == 0)
            fail_msg("%s: still open after %d ms", what, timeout_ms);
        char buf[1024];
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break; /* closed or reset: either is a close */
        size_t take = (size_t)n < sizeof got - len ? (size_t)n : sizeof got - len;
        memcpy(got + len, buf, take);
        len += take;
    }
    if (memmem(got, len, "HTTP/", 5))
        fail_msg("%s: the server answered in HTTP (%zu bytes: %.*s)", what, len, (int)len, got);
    return tc_now_ms() - start;
}

#define HANDSHAKE_BOUND_MS 2000

static void not_tls_is_closed_and_serving_goes_on(th_fixture_t *fx, int parked_mode)
{
    const char *const extra[] = {CERT_A, "--set", "RequestReadTimeout=header=2", "--set",
                                 parked_mode ? "TLSPinning=Off" : "TLSPinning=On", NULL};
    tls_server_t s = start_server(fx, 0, extra);
    SSL_CTX *ctx = client_ctx(g_a.cert, 0);

    /* Half a ClientHello first: it waits for the bound while the rest run. */
    unsigned char hello[4096];
    int hlen = ttls_client_hello(ctx, "a.test", hello, sizeof hello);
    assert_true(hlen > 100);
    tc_conn_t *half = th_connect(fx, s.tls);
    int64_t t_half = tc_now_ms();
    assert_int_equal(tc_send(half, hello, (size_t)hlen / 2, BOUND_MS), TC_OK);

    tc_conn_t *plain = th_connect(fx, s.tls);
    th_send(plain, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    expect_closed_without_http(plain, BOUND_MS, "plaintext request on the TLS port");

    unsigned char junk[200];
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(rand_r(&seed) >> 7);
    tc_conn_t *garbage = th_connect(fx, s.tls);
    assert_int_equal(tc_send(garbage, junk, sizeof junk, BOUND_MS), TC_OK);
    expect_closed_without_http(garbage, BOUND_MS, "200 random bytes on the TLS port");

    /* Half a ClientHello, then a reset: the server is left with a broken
     * handshake to give up on (the check that serving goes on is below). */
    tc_conn_t *reset = th_connect(fx, s.tls);
    assert_int_equal(tc_send(reset, hello, (size_t)hlen / 2, BOUND_MS), TC_OK);
    struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(reset->fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close),
                     0);
    th_disconnect(reset);

    expect_closed_without_http(half, HANDSHAKE_BOUND_MS + 8000, "half a ClientHello");
    int64_t took = tc_now_ms() - t_half;
    if (took < HANDSHAKE_BOUND_MS / 2)
        fail_msg("half a ClientHello was closed after %lld ms: the server did not wait for the "
                 "rest (handshake bound %d ms)",
                 (long long)took, HANDSHAKE_BOUND_MS);

    ttls_conn_t *c = tls_open(ctx, s.tls, "a.test", NULL);
    tc_response_t r;
    tls_get(c, GET_KEEP, &r);
    assert_string_equal(r.body, HELLO);
    tc_response_free(&r);
}

PINNED_AND_PARKED(not_tls_is_closed_and_serving_goes_on)

/* ------------------------------------------------------------------ */
/* 7. Graceful restart re-reads the certificate                       */

/* Old children go on accepting through the DrainWindow (1 s) after a
 * graceful restart, with the old certificate: the new one must be what
 * every new connection gets once that is over. */
#define NEW_CERT_STREAK 10

typedef struct streak_cond {
    SSL_CTX *ctx; /* trusting only the new certificate */
    int port;
    int streak;   /* new connections in a row that verified */
} streak_cond_t;

static int new_certificate_for_good(void *arg)
{
    streak_cond_t *sc = arg;
    ttls_conn_t c;
    int ok = ttls_connect(&c, sc->ctx, sc->port, "a.test", NULL, 5000) == TC_OK;
    ttls_close(&c);
    sc->streak = ok ? sc->streak + 1 : 0;
    return sc->streak >= NEW_CERT_STREAK;
}

/* Copies a.test's certificate and key to files of this case's own
 * (NAME-STRATEGY.pem / .key under the group's directory), which the case
 * may then overwrite while the server runs. */
static void own_copy_of_a(const th_fixture_t *fx, const char *name, char *cert, char *key)
{
    snprintf(cert, TCERT_PATH_MAX, "%s/%s-%s.pem", g_dir, name, fx->strategy);
    snprintf(key, TCERT_PATH_MAX, "%s/%s-%s.key", g_dir, name, fx->strategy);
    assert_int_equal(tcert_copy_file(g_a.cert, cert), 0);
    assert_int_equal(tcert_copy_file(g_a.key, key), 0);
}

static void graceful_restart_loads_the_new_certificate(void **state)
{
    th_fixture_t *fx = *state;
    char cert[TCERT_PATH_MAX], key[TCERT_PATH_MAX];
    own_copy_of_a(fx, "live", cert, key);
    const char *const extra[] = {"--cert", cert, "--key", key, NULL};
    tls_server_t s = start_server(fx, 0, extra);

    /* An established connection, mid-request: a chunked upload echoed as it
     * comes, so its first chunk back says the handler is running. */
    ttls_conn_t *old = tls_open(client_ctx(g_a.cert, 0), s.tls, "a.test", NULL);
    tc_response_t r;
    tls_get(old, GET_KEEP, &r);
    tc_response_free(&r);
    static const char head[] = "POST /echo HTTP/1.1\r\nHost: a.test\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    assert_int_equal(ttls_send(old, head, sizeof head - 1, BOUND_MS), TC_OK);
    assert_int_equal(ttls_read_until(old, "hello", BOUND_MS), TC_OK);

    assert_int_equal(tcert_copy_file(g_a2.cert, cert), 0);
    assert_int_equal(tcert_copy_file(g_a2.key, key), 0);
    assert_int_equal(kill(s.p->pid, SIGUSR1), 0);
    streak_cond_t sc = {client_ctx(g_a2.cert, 0), s.tls, 0};
    if (!th_wait_for(new_certificate_for_good, &sc, 30000))
        fail_msg("30 s after SIGUSR1, new connections do not all get the new certificate");

    static const char rest[] = "6\r\n world\r\n0\r\n\r\n";
    assert_int_equal(ttls_send(old, rest, sizeof rest - 1, BOUND_MS), TC_OK);
    int rc = ttls_read_response(old, &r, BOUND_MS);
    if (rc != TC_OK || r.status != 200 || strcmp(r.body, "hello world") != 0)
        fail_msg("the request in flight across the restart: %s, status %d, body %s",
                 ttls_result_name(rc), r.status, r.body ? r.body : "");
    int closing = tc_header_has_token(&r, "Connection", "close");
    tc_response_free(&r);
    if (closing)
        return;
    /* One more request: answered, or (the old generation draining) a clean
     * close before any byte of an answer. */
    rc = ttls_send(old, GET_KEEP, strlen(GET_KEEP), BOUND_MS);
    if (rc == TC_OK)
        rc = ttls_read_response(old, &r, BOUND_MS);
    if (rc == TC_OK && r.status != 200)
        fail_msg("the old connection's next request: status %d", r.status);
    if (rc != TC_OK && rc != TC_CLOSED && rc != TC_RESET)
        fail_msg("the old connection's next request: %s", ttls_result_name(rc));
    tc_response_free(&r);
}

/* ------------------------------------------------------------------ */
/* 9. TLSProtocol, TLSCiphers, TLSCipherSuites                         */

static void protocol_and_cipher_settings_are_used(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const only13[] = {CERT_A, "--set", "TLSProtocol=TLSv1.3", "--set",
                                         "TLSCipherSuites=TLS_CHACHA20_POLY1305_SHA256", NULL};
    tls_server_t s = start_server(fx, 0, only13);
    ttls_conn_t old;
    int rc = ttls_connect(&old, client_ctx(g_a.cert, TLS1_2_VERSION), s.tls, "a.test", NULL,
                          BOUND_MS);
    ttls_close(&old);
    if (rc != TTLS_EHANDSHAKE)
        fail_msg("TLSProtocol TLSv1.3: a TLS 1.2 client got %s", ttls_result_name(rc));
    tls_info_t i = tls_info(tls_open(client_ctx(g_a.cert, 0), s.tls, "a.test", NULL));
    assert_string_equal(i.protocol, "TLSv1.3");
    assert_string_equal(i.cipher, "TLS_CHACHA20_POLY1305_SHA256");

    static const char *const only12[] = {CERT_A, "--set", "TLSProtocol=TLSv1.2", "--set",
                                         "TLSCiphers=ECDHE-ECDSA-AES128-GCM-SHA256", NULL};
    s = start_server(fx, 0, only12);
    i = tls_info(tls_open(client_ctx(g_a.cert, 0), s.tls, "a.test", NULL));
    assert_string_equal(i.protocol, "TLSv1.2");
    assert_string_equal(i.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
}

/* ------------------------------------------------------------------ */
/* 10. Tickets outlive a graceful restart (keys kept by the master)    */

static void session_resumes_after_graceful_restart(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const extra[] = {CERT_A, NULL};
    tls_server_t s = start_server(fx, 0, extra);
    SSL_CTX *ctx = client_ctx(g_a.cert, 0);
    ttls_conn_t *c0 = tls_open(ctx, s.tls, "a.test", NULL);
    (void)tls_info(c0);
    g_session = ttls_session(c0);
    assert_non_null(g_session);
    ttls_close(c0);

    pid_t old[TPOOL_MAX_KIDS];
    int nold = tpool_children(s.p->pid, old, TPOOL_MAX_KIDS);
    assert_true(nold >= 1);
    assert_int_equal(kill(s.p->pid, SIGUSR1), 0);
    int64_t deadline = tc_now_ms() + 30000; /* the old children serve through their DrainWindow */
    for (;;) {
        if (tc_now_ms() > deadline)
            fail_msg("for 30 s after SIGUSR1, no connection was served by a new child");
        ttls_conn_t c;
        int rc = ttls_connect(&c, ctx, s.tls, "a.test", g_session, BOUND_MS);
        if (rc != TC_OK)
            fail_msg("reconnecting after SIGUSR1: %s", ttls_result_name(rc));
        tc_response_t r;
        rc = ttls_request(&c, GET_TLS, &r, BOUND_MS);
        char pid[32] = "";
        int ok = rc == TC_OK && r.status == 200 && json_value(r.body, "pid", pid, sizeof pid) == 0;
        int reused = ttls_reused(&c);
        tc_response_free(&r);
        ttls_close(&c);
        if (!ok)
            fail_msg("GET /tls after SIGUSR1: %s", ttls_result_name(rc));
        int is_old = 0;
        for (int k = 0; k < nold; k++)
            is_old |= old[k] == (pid_t)atol(pid);
        if (is_old)
            continue; /* the old generation's DrainWindow */
        if (!reused)
            fail_msg("new-generation child %s did not resume a session from before the restart",
                     pid);
        return;
    }
}

/* ------------------------------------------------------------------ */
/* 11. A restart with a broken key keeps the certificate it had        */

static void restart_with_broken_key_keeps_serving(void **state)
{
    th_fixture_t *fx = *state;
    char cert[TCERT_PATH_MAX], key[TCERT_PATH_MAX];
    own_copy_of_a(fx, "keep", cert, key);
    const char *const extra[] = {"--cert", cert, "--key", key, NULL};
    tls_server_t s = start_server(fx, 1, extra);
    /* A first connection: the server serves with the files as they were
     * before the case breaks the key. */
    tls_info(tls_open(client_ctx(g_a.cert, 0), s.tls, "a.test", NULL));

    assert_int_equal(tcert_copy_file(g_badkey, key), 0);
    assert_int_equal(kill(s.p->pid, SIGUSR1), 0);
    wait_status(s.plain, "generation", 1, BOUND_MS, "SIGUSR1 with a broken key file");
    streak_cond_t sc = {client_ctx(g_a.cert, 0), s.tls, 0};
    if (!th_wait_for(new_certificate_for_good, &sc, 30000))
        fail_msg("after a restart with a broken key file, new connections do not all get the "
                 "certificate loaded before");
    assert_true(tpool_get_ok(s.plain, "/"));
}

/* ------------------------------------------------------------------ */
/* 14. ALPN: http/1.1 only (RFC 7301)                                  */

/* A client context offering the ALPN list (wire format: length-prefixed). */
static SSL_CTX *alpn_ctx(const char *wire, size_t len)
{
    SSL_CTX *ctx = client_ctx(g_a.cert, 0);
    assert_int_equal(SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)wire, (unsigned)len), 0);
    return ctx;
}

static void alpn_selected(const ttls_conn_t *c, char *out, size_t cap)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(c->ssl, &p, &n);
    if (n >= cap)
        n = (unsigned)cap - 1;
    memcpy(out, p ? (const char *)p : "", n);
    out[n] = '\0';
}

/* A client offering h2 and http/1.1 gets http/1.1; one offering only h2
 * fails its handshake (no_application_protocol) and the server goes on;
 * one offering nothing is served without ALPN. */
static void alpn_speaks_only_http11(void **state)
{
    static const char *const extra[] = {CERT_A, NULL};
    tls_server_t s = start_server(*state, 0, extra);
    static const char both[] = "\x02h2\x08http/1.1", h2[] = "\x02h2";
    char chosen[32];

    ttls_conn_t *c = tls_open(alpn_ctx(both, sizeof both - 1), s.tls, "a.test", NULL);
    alpn_selected(c, chosen, sizeof chosen);
    assert_string_equal(chosen, "http/1.1");
    tls_expect_hello(c);

    assert_true(g_ntconns < MAX_TCONNS);
    ttls_conn_t *only_h2 = &g_tconns[g_ntconns++];
    int rc = ttls_connect(only_h2, alpn_ctx(h2, sizeof h2 - 1), s.tls, "a.test", NULL, BOUND_MS);
    if (rc != TTLS_EHANDSHAKE)
        fail_msg("a client offering only h2: %s, not a failed handshake", ttls_result_name(rc));

    c = tls_open(client_ctx(g_a.cert, 0), s.tls, "a.test", NULL);
    alpn_selected(c, chosen, sizeof chosen);
    assert_string_equal(chosen, "");
    tls_expect_hello(c);
}

/* ------------------------------------------------------------------ */
/* 12. Post-handshake messages: KeyUpdate (1.3), renegotiation (1.2)   */


/* event, TLSPinning Off: until the idle connection is back on the loop, so
 * what comes next finds it parked (elsewhere: nothing to wait for). */
static void wait_parked(const tls_server_t *s, int parked_mode)
{
    if (parked_mode)
        wait_status(s->plain, "parked_connections", 1, BOUND_MS, "an idle TLS connection");
}

/* A TLS 1.3 client asks for new keys twice: once on an idle connection
 * (the server reads the KeyUpdate while nothing else happens, parked in
 * event with TLSPinning Off, and owes its own before its next record,
 * RFC 8446 4.6.3), once just before a request. Every request is answered,
 * under the new keys. */
static void key_update_is_followed(th_fixture_t *fx, int parked_mode)
{
    const char *const extra[] = {CERT_A, "--set", "KeepAliveTimeout=60", "--set",
                                 parked_mode ? "TLSPinning=Off" : "TLSPinning=On", NULL};
    tls_server_t s = start_server(fx, 1, extra);
    ttls_conn_t *c = tls_open(client_ctx(g_a.cert, TLS1_3_VERSION), s.tls, "a.test", NULL);
    tls_expect_hello(c);
    wait_parked(&s, parked_mode);

    assert_int_equal(ttls_key_update(c, BOUND_MS), TC_OK);
    tls_expect_hello(c);

    wait_parked(&s, parked_mode);
    assert_int_equal(ttls_key_update(c, BOUND_MS), TC_OK);
    for (int i = 0; i < 2; i++)
        tls_expect_hello(c);
}

PINNED_AND_PARKED(key_update_is_followed)

/* A TLS 1.2 client tries to renegotiate (a known CPU-exhaustion vector):
 * refused, and the connection ends no later than an idle one would; new
 * connections are served. */
static void renegotiation_is_refused(th_fixture_t *fx, int parked_mode)
{
    const char *const extra[] = {CERT_A, "--set", "KeepAliveTimeout=2", "--set",
                                 parked_mode ? "TLSPinning=Off" : "TLSPinning=On", NULL};
    tls_server_t s = start_server(fx, 1, extra);
    SSL_CTX *ctx = client_ctx(g_a.cert, TLS1_2_VERSION);
    ttls_conn_t *c = tls_open(ctx, s.tls, "a.test", NULL);
    tls_expect_hello(c);
    wait_parked(&s, parked_mode);

    int rc = ttls_renegotiate(c, BOUND_MS);
    if (rc == TC_OK)
        fail_msg("a client-initiated renegotiation completed");
    if (rc == TC_TIMEOUT)
        fail_msg("a client-initiated renegotiation got no answer in %d ms", BOUND_MS);
    /* On the socket itself: the client's TLS state is broken now. An
     * alert may come first (TLS records, no HTTP). */
    tc_conn_t raw = {.fd = c->fd};
    expect_closed_without_http(&raw, BOUND_MS, "a connection that tried to renegotiate");

    tls_expect_hello(tls_open(ctx, s.tls, "a.test", NULL));
}

PINNED_AND_PARKED(renegotiation_is_refused)

/* ------------------------------------------------------------------ */
/* 13. Slow TLS clients meet the plain sockets' timeouts              */

/* One serving unit (a child, or a child of one thread): whoever holds it
 * blocks the next client, so the next client's wait shows when it was
 * let go. */
static const char *const *one_unit(const th_fixture_t *fx)
{
    static const char *const prefork[] = {"--set", "StartServers=1", "--set", "MinSpareServers=1",
                                          "--set", "MaxSpareServers=1", "--set", "ServerLimit=1",
                                          "--set", "MaxRequestWorkers=1", NULL};
    static const char *const threads[] = {"--set", "StartServers=1", "--set", "ServerLimit=1",
                                          "--set", "ThreadsPerChild=1", "--set", "MinSpareThreads=1",
                                          "--set", "MaxSpareThreads=1", "--set", "MaxRequestWorkers=1",
                                          NULL};
    return strcmp(fx->strategy, "prefork") == 0 ? prefork : threads;
}

/* CERT_A, `more` and, unless parked_mode, one_unit(): into args. */
static void slow_client_args(const th_fixture_t *fx, int parked_mode, const char *const *more,
                             const char **args, size_t cap)
{
    size_t n = 0;
    const char *const cert[] = {CERT_A, NULL};
    for (const char *const *a = cert; *a; a++)
        args[n++] = *a;
    for (const char *const *a = more; *a && n < cap - 1; a++)
        args[n++] = *a;
    for (const char *const *a = parked_mode ? NULL : one_unit(fx); a && *a && n < cap - 1; a++)
        args[n++] = *a;
    args[n] = NULL;
}

/* A head that stops half-way after the handshake: 408 at the header
 * bound, over TLS, then the close. */
static void slow_tls_head_gets_408(th_fixture_t *fx, int parked_mode)
{
    const char *const more[] = {"--set", "RequestReadTimeout=header=2", "--set",
                                parked_mode ? "TLSPinning=Off" : "TLSPinning=On", NULL};
    const char *args[40];
    slow_client_args(fx, parked_mode, more, args, 40);
    tls_server_t s = start_server(fx, 0, args);
    int64_t start = tc_now_ms(); /* the head clock may start at accept */
    ttls_conn_t *c = tls_open(client_ctx(g_a.cert, 0), s.tls, "a.test", NULL);
    static const char half[] = "GET / HTTP/1.1\r\nHost: a.te";
    assert_int_equal(ttls_send(c, half, sizeof half - 1, BOUND_MS), TC_OK);
    tc_response_t r;
    int rc = ttls_read_response(c, &r, BOUND_MS);
    int status = r.status;
    tc_response_free(&r);
    int64_t took = tc_now_ms() - start;
    if (rc != TC_OK || status != 408)
        fail_msg("half a head over TLS: %s, status %d after %lld ms (want 408 at ~2 s)",
                 ttls_result_name(rc), status, (long long)took);
    if (took < 1500)
        fail_msg("408 after %lld ms, before the header bound of 2 s", (long long)took);
    rc = ttls_wait_close(c, BOUND_MS, NULL);
    if (rc == TC_TIMEOUT)
        fail_msg("still open %d ms after its 408", BOUND_MS);
}

PINNED_AND_PARKED(slow_tls_head_gets_408)

#define BIG_FILE_LEN (64L * 1024 * 1024) /* more than loopback's buffers hold */

/* g_dir/big.bin, sparse. */
static void make_big_file(void)
{
    char path[TCERT_PATH_MAX];
    snprintf(path, sizeof path, "%s/big.bin", g_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, BIG_FILE_LEN), 0);
    close(fd);
}

#define GET_BIG "GET /files/big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n"

typedef struct held_cond {
    int port;
    long want; /* 1: held, 0: let go */
    long seen;
} held_cond_t;

/* The stalled response, on a thread (file bodies are read and encrypted
 * there) or written from the loop; /status itself holds one thread. */
static int stalled_held(void *arg)
{
    held_cond_t *h = arg;
    long busy = tpool_status_number(h->port, "busy_workers");
    long writing = tpool_status_number(h->port, "writing_connections");
    if (busy < 1 || writing < 0)
        return 0;
    h->seen = busy - 1 + writing;
    return h->want ? h->seen >= 1 : h->seen == 0;
}

/* A TLS client asks for 64 MiB and never reads: SSL_write blocks, and
 * Timeout (1 s) ends the connection. With one unit, the next client is
 * answered only then (not never); parked (TLSPinning Off), /status shows
 * it gone after Timeout. */
static void stalled_tls_reader_let_go(th_fixture_t *fx, int parked_mode)
{
    make_big_file();
    const char *const more[] = {"--root", g_dir, "--set", "Timeout=1", "--set",
                                parked_mode ? "TLSPinning=Off" : "TLSPinning=On", NULL};
    const char *args[40];
    slow_client_args(fx, parked_mode, more, args, 40);
    tls_server_t s = start_server(fx, parked_mode, args);
    SSL_CTX *ctx = client_ctx(g_a.cert, 0);
    ttls_conn_t *stalled = tls_open(ctx, s.tls, "a.test", NULL);
    assert_int_equal(ttls_send(stalled, GET_BIG, sizeof GET_BIG - 1, BOUND_MS), TC_OK);
    struct pollfd p = {.fd = stalled->fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, BOUND_MS), 1); /* the response began */
    int64_t start = tc_now_ms();
    if (parked_mode) {
        held_cond_t held = {s.plain, 1, -1};
        if (!th_wait_for(stalled_held, &held, BOUND_MS))
            fail_msg("a TLS client not reading: neither on a thread nor writing on the loop");
        held.want = 0;
        if (!th_wait_for(stalled_held, &held, BOUND_MS))
            fail_msg("a TLS client not reading still held after %d ms (Timeout 1 s)", BOUND_MS);
    } else {
        tls_expect_hello(tls_open(ctx, s.tls, "a.test", NULL));
    }
    int64_t took = tc_now_ms() - start;
    if (took > 10000)
        fail_msg("the stalled TLS reader was let go after %lld ms (Timeout 1 s)", (long long)took);
}

PINNED_AND_PARKED(stalled_tls_reader_let_go)

#define PATTERN_LEN 100000L /* several of the 16 KiB pieces a file goes out in over TLS */

/* The byte at offset i of g_dir/pattern.bin: no period a misplaced piece
 * could hide behind. */
static unsigned char pattern_byte(long i)
{
    return (unsigned char)(i * 7 + i / 251);
}

static void make_pattern_file(void)
{
    char path[TCERT_PATH_MAX];
    snprintf(path, sizeof path, "%s/pattern.bin", g_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (long i = 0; i < PATTERN_LEN; i++)
        assert_int_not_equal(fputc(pattern_byte(i), f), EOF);
    assert_int_equal(fclose(f), 0);
}

/* Whether body holds the pattern from offset first on. */
static void expect_pattern(const tc_response_t *r, long first, long len)
{
    if ((long)r->body_len != len)
        fail_msg("%zu bytes of the file over TLS, expected %ld", r->body_len, len);
    for (long i = 0; i < len; i++)
        if ((unsigned char)r->body[i] != pattern_byte(first + i))
            fail_msg("byte %ld of the file over TLS is wrong", first + i);
}

/* A file body over TLS is read and encrypted piece by piece (no sendfile):
 * the whole file and a byte range from its middle arrive intact, on one
 * kept-alive connection. */
static void file_body_over_tls(th_fixture_t *fx, int parked_mode)
{
    make_pattern_file();
    const char *const extra[] = {CERT_A, "--root", g_dir, "--set",
                                 parked_mode ? "TLSPinning=Off" : "TLSPinning=On", NULL};
    tls_server_t s = start_server(fx, 0, extra);
    ttls_conn_t *c = tls_open(client_ctx(g_a.cert, 0), s.tls, "a.test", NULL);
    tc_response_t r;
    tls_get(c, "GET /files/pattern.bin HTTP/1.1\r\nHost: a.test\r\n\r\n", &r);
    expect_pattern(&r, 0, PATTERN_LEN);
    tc_response_free(&r);
    int rc = ttls_request(c, "GET /files/pattern.bin HTTP/1.1\r\nHost: a.test\r\n"
                             "Range: bytes=20000-70000\r\n\r\n", &r, BOUND_MS);
    assert_int_equal(rc, TC_OK);
    assert_int_equal(r.status, 206);
    expect_pattern(&r, 20000, 50001);
    tc_response_free(&r);
    tls_expect_hello(c);
}

PINNED_AND_PARKED(file_body_over_tls)

/* ------------------------------------------------------------------ */
/* 8. A bad key file stops mpmserve at start                          */

/* Runs mpmserve with args; fails the case unless it exits non-zero within
 * the bound with `file` named on its stderr. */
static void expect_start_failure(const char *const *args, const char *file)
{
    int err_fd = memfd_create("mpmserve-stderr", MFD_CLOEXEC);
    int out = memfd_create("mpmserve-stdout", MFD_CLOEXEC);
    assert_true(err_fd >= 0 && out >= 0);
    pid_t pid = th_spawn_mpmserve(args, out, err_fd);
    assert_true(pid > 0);
    int status = 0;
    int64_t deadline = tc_now_ms() + BOUND_MS;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && tc_now_ms() < deadline) {
        struct timespec nap = {0, 20 * 1000000L};
        nanosleep(&nap, NULL);
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    char log[4096];
    ssize_t n = pread(err_fd, log, sizeof log - 1, 0);
    close(err_fd);
    log[n > 0 ? n : 0] = '\0';
    if (r == 0)
        fail_msg("mpmserve with %s still ran %d ms after start", file, BOUND_MS);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 0)
        fail_msg("mpmserve with %s: wait status 0x%x, expected a non-zero exit", file, status);
    if (!strstr(log, file))
        fail_msg("mpmserve's stderr does not name %s:\n%s", file, log);
    /* The certificates are read with the sockets (mpm_server_bind()): no
     * port is announced as ready for a server that cannot serve TLS. */
    n = pread(out, log, sizeof log - 1, 0);
    close(out);
    log[n > 0 ? n : 0] = '\0';
    if (strstr(log, "listening on"))
        fail_msg("mpmserve with %s announced a port before failing:\n%s", file, log);
}

static void bad_key_file_stops_the_start(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *const bad_key[] = {"--mpm", fx->strategy, "--tls-listen", "127.0.0.1:0",
                                   "--cert", g_a.cert, "--key", g_badkey, NULL};
    expect_start_failure(bad_key, g_badkey);
    char missing[TCERT_PATH_MAX];
    snprintf(missing, sizeof missing, "%s/no-such-cert.pem", g_dir);
    const char *const no_cert[] = {"--mpm", fx->strategy, "--tls-listen", "127.0.0.1:0",
                                   "--cert", missing, "--key", g_a.key, NULL};
    expect_start_failure(no_cert, missing);
    /* A key that is not the certificate's. */
    const char *const mismatch[] = {"--mpm", fx->strategy, "--tls-listen", "127.0.0.1:0",
                                    "--cert", g_a.cert, "--key", g_b.key, NULL};
    expect_start_failure(mismatch, g_b.key);
}

int main(void)
{
    th_require_mpmserve();
    if (!tcert_tool_available()) {
        fprintf(stderr, "the openssl command line tool is not available: skipping\n");
        return TH_SKIP_EXIT;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        TLS_MATRIX(curl_get_upload_and_reuse),
        TLS_CASE(sni_picks_the_certificate, "event"),
        TLS_MATRIX(session_resumes_on_another_child_tls13),
        TLS_MATRIX(session_resumes_on_another_child_tls12),
        TLS_CASE(no_tickets_no_resumption_tls13, "event"),
        TLS_CASE(tls13_resumption_hands_out_the_next_ticket, "worker"),
        TLS_CASE(alpn_speaks_only_http11, "event"),
        TLS_CASE(no_tickets_no_resumption_tls12, "prefork"),
        TLS_CASE(pinned_tls_connection_holds_its_thread, "event"),
        TLS_CASE(unpinned_thousand_idle_tls_connections, "event"),
        TLS_CASE(silent_tls_clients_hold_no_thread, "event"),
        TLS_CASE(half_hellos_hold_no_pinned_thread, "event"),
        TLS_CASE(half_hello_flood_leaves_pinned_admission_open, "event"),
        TLS_CASE(pinned_burst_spreads_over_free_threads, "event"),
        TLS_CASE(deferred_tls_accept_keeps_silent_clients_in_the_kernel, "worker"),
        TLS_CASE(silent_flood_leaves_pinned_admission_open, "event"),
        TLS_MATRIX(not_tls_is_closed_and_serving_goes_on_pinned),
        TLS_CASE(not_tls_is_closed_and_serving_goes_on_parked, "event"),
        TLS_MATRIX(graceful_restart_loads_the_new_certificate),
        TLS_CASE(bad_key_file_stops_the_start, "worker"),
        TLS_CASE(protocol_and_cipher_settings_are_used, "worker"),
        TLS_CASE(session_resumes_after_graceful_restart, "prefork"),
        TLS_CASE(restart_with_broken_key_keeps_serving, "event"),
        TLS_CASE(previous_ticket_key_resumes_and_renews, "worker"),
        TLS_CASE(ticket_keys_rotate, "worker"),
        TLS_MATRIX(key_update_is_followed_pinned),
        TLS_CASE(key_update_is_followed_parked, "event"),
        TLS_MATRIX(renegotiation_is_refused_pinned),
        TLS_CASE(renegotiation_is_refused_parked, "event"),
        TLS_MATRIX(slow_tls_head_gets_408_pinned),
        TLS_CASE(slow_tls_head_gets_408_parked, "event"),
        TLS_MATRIX(stalled_tls_reader_let_go_pinned),
        TLS_CASE(stalled_tls_reader_let_go_parked, "event"),
        TLS_MATRIX(file_body_over_tls_pinned),
        TLS_CASE(file_body_over_tls_parked, "event"),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
