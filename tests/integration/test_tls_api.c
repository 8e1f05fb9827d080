/* TLS through the library's API, in the host's own process (one-process
 * mode) and with a master (the "-mp" variants), for every strategy:
 *
 *  1. a TLS listening socket the host opened (mpm_config_add_tls_listen_fd)
 *     with two certificates (mpm_config_add_tls_certificate): SNI picks
 *     one, no SNI gets the first, and the request API tells the handler
 *     what the connection is (mpm_request_is_tls, _tls_sni, _protocol,
 *     _cipher), while a plain listener of the same server says "not TLS";
 *  2. a TLS listener without a certificate, or with a certificate file
 *     that is missing, is an MPM_ECONFIG from the start, naming the cause.
 *
 * Certificates are made at test time (certs.h); the client is tls_client.h.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "certs.h"
#include "harness.h"
#include "slice.h"
#include "tls_client.h"

#define BOUND_MS 20000
#define GET_INFO "GET /info HTTP/1.1\r\nHost: t\r\n\r\n"

static char g_dir[TCERT_PATH_MAX / 2];
static tcert_t g_a; /* CN a.test: the first, the default */
static tcert_t g_b; /* CN b.test */

static int group_setup(void **state)
{
    (void)state;
    if (tcert_dir_make(g_dir, sizeof g_dir) != 0) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    if (tcert_make(g_dir, "a", "a.test", NULL, &g_a) != 0 ||
        tcert_make(g_dir, "b", "b.test", NULL, &g_b) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tcert_dir_remove(g_dir);
    return 0;
}

/* What a case opened itself: the host's socket (closed after the server
 * is freed, as the API asks), a client context, a TLS connection. */
static int g_host_fd = -1;
static SSL_CTX *g_ctx[2];
static ttls_conn_t g_conn;

static int api_teardown(void **state)
{
    ttls_close(&g_conn);
    for (size_t i = 0; i < 2; i++) {
        SSL_CTX_free(g_ctx[i]);
        g_ctx[i] = NULL;
    }
    int rc = th_teardown(state);
    if (g_host_fd >= 0)
        close(g_host_fd);
    g_host_fd = -1;
    return rc;
}

#define API_CASE(f, strategy) {#f "[" strategy "]", f, th_setup, api_teardown, (void *)strategy}

/* A listening socket on 127.0.0.1, as a host opens it; its port. */
static int host_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* The value of "key=" in /info's body, into out ("" when absent). */
static void info_value(const char *body, const char *key, char *out, size_t cap)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\n%s=", key);
    const char *p = strstr(body, pat);
    out[0] = '\0';
    if (!p)
        return;
    p += strlen(pat);
    size_t n = strcspn(p, "\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* GET /info over TLS with sni (NULL: none), trusting only trust->cert;
 * checks the certificate the server chose and what the handler was told. */
static void expect_tls_info(int port, SSL_CTX *ctx, const char *sni, const tcert_t *trust)
{
    int rc = ttls_connect(&g_conn, ctx, port, sni, NULL, BOUND_MS);
    if (rc != TC_OK)
        fail_msg("TLS to the host's socket (SNI %s): %s", sni ? sni : "none",
                 ttls_result_name(rc));
    if (!ttls_peer_is(&g_conn, trust->cert))
        fail_msg("SNI %s: not the expected certificate", sni ? sni : "none");
    tc_response_t r;
    rc = ttls_request(&g_conn, GET_INFO, &r, BOUND_MS);
    if (rc != TC_OK || r.status != 200)
        fail_msg("GET /info over TLS: %s, status %d", ttls_result_name(rc), r.status);
    char tls[8], got_sni[64], proto[32], cipher[64];
    info_value(r.body, "tls", tls, sizeof tls);
    info_value(r.body, "sni", got_sni, sizeof got_sni);
    info_value(r.body, "protocol", proto, sizeof proto);
    info_value(r.body, "cipher", cipher, sizeof cipher);
    assert_string_equal(tls, "1");
    assert_string_equal(got_sni, sni ? sni : "-");
    assert_string_equal(proto, ttls_version(&g_conn));
    if (strcmp(cipher, SSL_get_cipher_name(g_conn.ssl)) != 0)
        fail_msg("the handler was told cipher %s, the client negotiated %s", cipher,
                 SSL_get_cipher_name(g_conn.ssl));
    tc_response_free(&r);
    ttls_close(&g_conn);
}

static void host_tls_socket_and_request_api(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx); /* with a plain Listen 127.0.0.1:0 */
    int tls_port = 0;
    g_host_fd = host_listener(&tls_port);
    mpm_config_t *cfg = th_server_config(s);
    assert_int_equal(mpm_config_add_tls_listen_fd(cfg, g_host_fd), 0);
    assert_int_equal(mpm_config_add_tls_certificate(cfg, g_a.cert, g_a.key), 0);
    assert_int_equal(mpm_config_add_tls_certificate(cfg, g_b.cert, g_b.key), 0);
    if (th_server_start(s) != 0)
        fail_msg("start %s with a host TLS socket: %s", fx->strategy, s->errmsg);
    /* The client below runs OpenSSL in this process, where the master forks
     * (th_server_wait_children): only once the pool is up, and one busy
     * child leaves enough spares that no fork comes during a handshake. */
    th_server_wait_children(s);

    g_ctx[0] = ttls_ctx_new(g_b.cert, 0);
    g_ctx[1] = ttls_ctx_new(g_a.cert, 0);
    assert_true(g_ctx[0] && g_ctx[1]);
    expect_tls_info(tls_port, g_ctx[0], "b.test", &g_b);
    expect_tls_info(tls_port, g_ctx[1], NULL, &g_a);

    tc_response_t r;
    th_request(s->port, GET_INFO, &r);
    char tls[8], sni[16], proto[16], cipher[16];
    info_value(r.body, "tls", tls, sizeof tls);
    info_value(r.body, "sni", sni, sizeof sni);
    info_value(r.body, "protocol", proto, sizeof proto);
    info_value(r.body, "cipher", cipher, sizeof cipher);
    tc_response_free(&r);
    assert_string_equal(tls, "0");
    assert_string_equal(sni, "-");
    assert_string_equal(proto, "-");
    assert_string_equal(cipher, "-");
}

/* Starts an event server on a host TLS socket with 4 threads and
 * SchedulerSlice 250 µs, and leaves g_conn kept alive after one response. */
static void event_tls_connection_held(th_fixture_t *fx, const char *pinning)
{
    th_server_t *s = th_new_server(fx);
    int tls_port = 0;
    g_host_fd = host_listener(&tls_port);
    mpm_config_t *cfg = th_server_config(s);
    assert_int_equal(mpm_config_add_tls_listen_fd(cfg, g_host_fd), 0);
    assert_int_equal(mpm_config_add_tls_certificate(cfg, g_a.cert, g_a.key), 0);
    assert_int_equal(th_server_set(s, "ThreadsPerChild", "4"), 0);
    assert_int_equal(th_server_set(s, "SchedulerSlice", "250"), 0);
    assert_int_equal(th_server_set(s, "TLSPinning", pinning), 0);
    if (th_server_start(s) != 0)
        fail_msg("start event with a host TLS socket: %s", s->errmsg);
    g_ctx[0] = ttls_ctx_new(g_a.cert, 0);
    assert_non_null(g_ctx[0]);
    assert_int_equal(ttls_connect(&g_conn, g_ctx[0], tls_port, "a.test", NULL, BOUND_MS), TC_OK);
    tc_response_t r;
    assert_int_equal(ttls_request(&g_conn, GET_INFO, &r, BOUND_MS), TC_OK);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
}

/* The thread that holds a pinned TLS connection (its own for life) runs
 * with the kernel's slice; the other three keep SchedulerSlice. */
static void pinned_thread_takes_the_kernel_slice(void **state)
{
    if (!tslice_supported())
        skip(); /* a kernel without custom slices ignores the directive */
    event_tls_connection_held(*state, "On");
    tslice_wait_t w = {.ns = 250000, .threads = 3};
    assert_true(th_wait_for(tslice_threads_are, &w, BOUND_MS));
}

/* A parked TLS connection holds no thread: all four keep SchedulerSlice. */
static void parked_tls_leaves_every_thread_its_slice(void **state)
{
    if (!tslice_supported())
        skip();
    event_tls_connection_held(*state, "Off");
    tslice_wait_t w = {.ns = 250000, .threads = 4};
    assert_true(th_wait_for(tslice_threads_are, &w, BOUND_MS));
}

/* The start fails with MPM_ECONFIG and the reason names `what`. */
static void expect_config_error(th_server_t *s, const char *what)
{
    int rc = th_server_start(s);
    if (rc == 0)
        fail_msg("started although %s", what);
    assert_int_equal(rc, MPM_ECONFIG);
    if (!strstr(s->errmsg, what) && !th_server_log_contains(s, what))
        fail_msg("the error does not name %s: %s", what, s->errmsg);
}

static void tls_listener_needs_a_readable_certificate(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx);
    assert_int_equal(th_server_set(s, "TLSListen", "127.0.0.1:0"), 0);
    expect_config_error(s, "TLSCertificate");

    char missing[TCERT_PATH_MAX];
    snprintf(missing, sizeof missing, "%s/no-such.pem", g_dir);
    s = th_new_server(fx);
    assert_int_equal(th_server_set(s, "TLSListen", "127.0.0.1:0"), 0);
    assert_int_equal(mpm_config_add_tls_certificate(th_server_config(s), missing, g_a.key), 0);
    expect_config_error(s, missing);
}

int main(void)
{
    if (!tcert_tool_available()) {
        fprintf(stderr, "the openssl command line tool is not available: skipping\n");
        return TH_SKIP_EXIT;
    }
    const struct CMUnitTest tests[] = {
        API_CASE(host_tls_socket_and_request_api, "prefork"),
        API_CASE(host_tls_socket_and_request_api, "worker"),
        API_CASE(host_tls_socket_and_request_api, "event"),
        API_CASE(host_tls_socket_and_request_api, "prefork-mp"),
        API_CASE(host_tls_socket_and_request_api, "worker-mp"),
        API_CASE(host_tls_socket_and_request_api, "event-mp"),
        API_CASE(tls_listener_needs_a_readable_certificate, "worker"),
        API_CASE(tls_listener_needs_a_readable_certificate, "event-mp"),
        API_CASE(pinned_thread_takes_the_kernel_slice, "event"),
        API_CASE(parked_tls_leaves_every_thread_its_slice, "event"),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
