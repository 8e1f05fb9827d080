/* Request helpers a handler uses: query parameters and the decoded path,
 * over real sockets in every strategy; the connection's two addresses. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "harness.h"

/* Answers "<rc>:<value>" for the query parameter named by the X-Param
 * header, then "|<rc>:<decoded path>". */
static void helpers_handler(mpm_request_t *req, void *data)
{
    (void)data;
    char value[64] = "", path[64] = "", body[160];
    const char *name = mpm_request_header(req, "X-Param");
    int qrc = mpm_request_query_param(req, name ? name : "", value, sizeof value);
    int prc = mpm_request_path_decoded(req, path, sizeof path);
    snprintf(body, sizeof body, "%d:%s|%d:%s", qrc, qrc >= 0 ? value : "", prc,
             prc >= 0 ? path : "");
    mpm_response_send(req, body, strlen(body));
}

static void ask(int port, const char *target, const char *param, const char *expect)
{
    char raw[512];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\nX-Param: %s\r\nConnection: close\r\n\r\n",
             target, param);
    tc_response_t r;
    th_request(port, raw, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, expect);
    tc_response_free(&r);
}

static void query_params_and_decoded_path(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx);
    mpm_config_set_handler(th_server_config(s), helpers_handler, NULL);
    assert_int_equal(th_server_start(s), 0);
    char expect[128];
    ask(s->port, "/a%20b?x=1&name=J%C3%BCrgen+M&flag", "name", "9:J\xc3\xbcrgen M|4:/a b");
    ask(s->port, "/p?x=1&name=J&flag", "flag", "0:|2:/p");
    ask(s->port, "/p?x=1&x=2", "x", "1:1|2:/p");
    ask(s->port, "/p?a%5Bb%5D=v", "a[b]", "1:v|2:/p");
    snprintf(expect, sizeof expect, "%d:|2:/p", MPM_ENOENT);
    ask(s->port, "/p?x=1", "y", expect);
    snprintf(expect, sizeof expect, "%d:|2:/p", MPM_EPROTO);
    ask(s->port, "/p?y=%00", "y", expect);
    snprintf(expect, sizeof expect, "1:/|%d:", MPM_EPROTO);
    ask(s->port, "/a%2F..%2Fb?s=%2F", "s", expect);
    snprintf(expect, sizeof expect, "%d:|2:/p", MPM_ERANGE);
    char target[128] = "/p?v=";
    memset(target + 5, 'v', 80);
    target[85] = '\0';
    ask(s->port, target, "v", expect);
}

/* Answers "<remote addr>:<remote port>|<local addr>:<local port>". */
static void addresses_handler(mpm_request_t *req, void *data)
{
    (void)data;
    char body[160];
    snprintf(body, sizeof body, "%s:%d|%s:%d", mpm_request_remote_addr(req),
             mpm_request_remote_port(req), mpm_request_local_addr(req),
             mpm_request_local_port(req));
    mpm_response_send(req, body, strlen(body));
}

/* The handler sees the client's address and port as the client's socket
 * has them, and the listener's, on each request of a kept-alive
 * connection (in the children too, with the -mp variants). */
static void peer_and_local_addresses(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx);
    mpm_config_set_handler(th_server_config(s), addresses_handler, NULL);
    assert_int_equal(th_server_start(s), 0);
    tc_conn_t c;
    assert_int_equal(tc_connect(&c, s->port, TC_DEFAULT_TIMEOUT_MS), TC_OK);
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    assert_int_equal(getsockname(c.fd, (struct sockaddr *)&me, &len), 0);
    char expect[128];
    snprintf(expect, sizeof expect, "127.0.0.1:%d|127.0.0.1:%d", ntohs(me.sin_port), s->port);
    for (int i = 0; i < 2; i++) {
        tc_response_t r;
        assert_int_equal(tc_send_str(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"), TC_OK);
        assert_int_equal(tc_read_response(&c, &r, 0, TC_DEFAULT_TIMEOUT_MS), TC_OK);
        assert_string_equal(r.body, expect);
        tc_response_free(&r);
    }
    tc_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_MATRIX(query_params_and_decoded_path),
        TH_MATRIX_MP(peer_and_local_addresses),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
