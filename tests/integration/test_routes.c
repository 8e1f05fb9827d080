/* mpmserve's route table as DESIGN §6 gives it, and the method handling
 * around it (RFC 9110 §9.3.7, §15.5.6): each route answers the methods it
 * lists, anything else gets 405 with that list in Allow, OPTIONS gets 200 with
 * the list and no content, "OPTIONS *" speaks for the whole server, an
 * unknown path is 404 whatever the method, and the --test-routes paths do
 * not exist without that flag. Over real sockets, one mpmserve per strategy
 * (the dispatch is the program's, not a strategy's, so one pass each). And
 * its command line: what it refuses, and how. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define READ_ONLY "GET, HEAD, OPTIONS"

typedef struct route_row {
    const char *request; /* request line and body; Host and close are added */
    int status;
    const char *allow;   /* the Allow field wanted, or NULL: none */
    const char *body;    /* the body wanted, or NULL: any */
} route_row_t;

static const route_row_t rows[] = {
    {"GET / HTTP/1.1\r\n", 200, NULL, "Hello, World!"},
    {"GET /hello.txt HTTP/1.1\r\n", 200, NULL, "Hello, World!"},
    {"HEAD / HTTP/1.1\r\n", 200, NULL, ""},
    {"POST / HTTP/1.1\r\nContent-Length: 2\r\n", 405, READ_ONLY, NULL},
    {"OPTIONS / HTTP/1.1\r\n", 200, READ_ONLY, ""},
    {"OPTIONS * HTTP/1.1\r\n", 200, "GET, HEAD, POST, OPTIONS", ""},
    {"DELETE /status HTTP/1.1\r\n", 405, READ_ONLY, NULL},
    {"PUT /stream HTTP/1.1\r\nContent-Length: 0\r\n", 405, READ_ONLY, NULL},
    {"OPTIONS /metrics HTTP/1.1\r\n", 200, READ_ONLY, ""},
    {"OPTIONS /files/a.txt HTTP/1.1\r\n", 200, READ_ONLY, ""},
    {"POST /files HTTP/1.1\r\nContent-Length: 0\r\n", 405, READ_ONLY, NULL},
    {"GET /filesx HTTP/1.1\r\n", 404, NULL, NULL},
    {"GET /nope HTTP/1.1\r\n", 404, NULL, "Not Found\n"},
    {"OPTIONS /nope HTTP/1.1\r\n", 404, NULL, NULL},
    {"PUT /echo HTTP/1.1\r\nContent-Length: 3\r\n", 200, NULL, "abc"},
    {"GET /stream?n=3 HTTP/1.1\r\n", 200, NULL, "chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n"},
    {"GET /stream?n=x HTTP/1.1\r\n", 400, NULL, NULL},
    {"GET /stream?n=0 HTTP/1.1\r\n", 200, NULL, ""},
    {"HEAD /stream?n=3 HTTP/1.1\r\n", 200, NULL, ""},
    {"GET /sleep HTTP/1.1\r\n", 400, NULL, NULL},
    {"GET /sleep?ms=1 HTTP/1.1\r\n", 200, NULL, "slept 1 ms\n"},
    {"GET /crash HTTP/1.1\r\n", 404, NULL, NULL}, /* no --test-routes */
    {"GET /pid HTTP/1.1\r\n", 404, NULL, NULL},
};

/* Sends row (a PUT/POST with a Content-Length gets that many 'a'.. bytes)
 * on a fresh connection and checks the answer. */
static void check_row(int port, const route_row_t *row)
{
    const char *cl = strstr(row->request, "Content-Length: ");
    int body_len = cl ? atoi(cl + 16) : 0;
    char raw[512];
    snprintf(raw, sizeof raw, "%sHost: t\r\nConnection: close\r\n\r\n%.*s", row->request, body_len,
             "abcdefgh");
    tc_conn_t c;
    assert_int_equal(tc_connect(&c, port, TC_DEFAULT_TIMEOUT_MS), TC_OK);
    assert_int_equal(tc_send_str(&c, raw), TC_OK);
    tc_response_t r;
    int head = strncmp(row->request, "HEAD ", 5) == 0;
    int rc = tc_read_response(&c, &r, head, TC_DEFAULT_TIMEOUT_MS);
    tc_close(&c);
    if (rc != TC_OK)
        fail_msg("%s: %s", row->request, tc_result_name(rc));
    const char *allow = tc_header(&r, "Allow");
    const char *len = tc_header(&r, "Content-Length");
    if (r.status != row->status)
        fail_msg("%s: %d, expected %d", row->request, r.status, row->status);
    if (row->allow ? !allow || strcmp(allow, row->allow) != 0 : allow != NULL)
        fail_msg("%s: Allow %s, expected %s", row->request, allow ? allow : "(none)",
                 row->allow ? row->allow : "(none)");
    if (row->body && strcmp(r.body, row->body) != 0)
        fail_msg("%s: body \"%s\", expected \"%s\"", row->request, r.body, row->body);
    /* A 200 to OPTIONS without content still says so (RFC 9110 §9.3.7). */
    if (strncmp(row->request, "OPTIONS ", 8) == 0 && row->status == 200 && (!len || strcmp(len, "0")))
        fail_msg("%s: Content-Length %s, expected 0", row->request, len ? len : "(none)");
    tc_response_free(&r);
}

static void routes_answer_their_methods(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *args[] = {"--mpm", fx->strategy, "--listen", "127.0.0.1:0", NULL};
    int port = th_start_mpmserve(fx, args)->port;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        check_row(port, &rows[i]);
}

/* With --test-routes the test paths exist, and /crash takes GET only. */
static void test_routes_exist_with_the_flag(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *args[] = {"--mpm",   fx->strategy, "--listen", "127.0.0.1:0", "--test-routes",
                          NULL};
    int port = th_start_mpmserve(fx, args)->port;
    static const route_row_t test_rows[] = {
        {"POST /crash HTTP/1.1\r\nContent-Length: 0\r\n", 405, "GET", NULL},
        {"OPTIONS /crash HTTP/1.1\r\n", 405, "GET", NULL},
        {"GET /hang?ms=1 HTTP/1.1\r\n", 200, NULL, "hung\n"},
    };
    for (size_t i = 0; i < sizeof test_rows / sizeof test_rows[0]; i++)
        check_row(port, &test_rows[i]);
    tc_response_t r;
    assert_int_equal(tc_exchange(port, "GET /pid HTTP/1.1\r\nHost: t\r\n\r\n", &r,
                                 TC_DEFAULT_TIMEOUT_MS),
                     TC_OK);
    assert_int_equal(r.status, 200);
    assert_true(atoi(r.body) > 0);
    tc_response_free(&r);
}

/* Runs mpmserve with args to its exit (bounded); its exit code, and its
 * stdout and stderr together into out. */
static int run_to_exit(const char *const *args, char *out, size_t cap)
{
    int fd = memfd_create("mpmserve-output", MFD_CLOEXEC);
    assert_true(fd >= 0);
    pid_t pid = th_spawn_mpmserve(args, fd, fd);
    assert_true(pid > 0);
    int status = 0;
    int64_t deadline = tc_now_ms() + 20000;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && tc_now_ms() < deadline) {
        struct timespec nap = {0, 20 * 1000000L}; /* a poll interval */
        nanosleep(&nap, NULL);
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    ssize_t n = pread(fd, out, cap - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    if (r == 0)
        fail_msg("mpmserve %s %s still ran after 20 s", args[0], args[1] ? args[1] : "");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* What the command line refuses exits 2 with a line that says why,
 * before anything listens; --help and --version exit 0. */
static void command_line_mistakes_exit_2(void **state)
{
    (void)state;
    static const struct {
        const char *args[8];
        int code;
        const char *says;
    } cli_rows[] = {
        {{"--help"}, 0, "usage: mpmserve"},
        {{"--version"}, 0, "mpmlib"},
        {{"--mpm", "threads"}, 2, "--mpm: 'threads' is not one of"},
        {{"--listen"}, 2, "--listen needs a value"},
        {{"--set", "Timeout"}, 2, "--set wants Directive=value"},
        {{"--set", "NoSuchDirective=1", "--listen", "127.0.0.1:0"}, 2, "NoSuchDirective"},
        {{"--frobnicate"}, 2, "unknown argument '--frobnicate'"},
        {{"--tls-listen", "127.0.0.1:0"}, 2, "--tls-listen needs --cert and --key"},
        {{"--cert", "a.pem", "--listen", "127.0.0.1:0"}, 2, "--cert and --key go together"},
        {{"--root", "/no/such/dir", "--listen", "127.0.0.1:0"}, 2, "--root /no/such/dir"},
        {{"--listen", "localhost:80"}, 2, "host names are not resolved"},
        {{"--access-log", "/no/such/dir/log", "--listen", "127.0.0.1:0"}, 2,
         "--access-log /no/such/dir/log"},
    };
    char out[4096];
    for (size_t i = 0; i < sizeof cli_rows / sizeof cli_rows[0]; i++) {
        int code = run_to_exit(cli_rows[i].args, out, sizeof out);
        if (code != cli_rows[i].code || !strstr(out, cli_rows[i].says))
            fail_msg("mpmserve %s %s: exit %d (expected %d), output:\n%s\n(expected \"%s\")",
                     cli_rows[i].args[0], cli_rows[i].args[1] ? cli_rows[i].args[1] : "", code, cli_rows[i].code,
                     out, cli_rows[i].says);
        if (cli_rows[i].code != 0 && strstr(out, "listening on"))
            fail_msg("mpmserve %s listened before refusing", cli_rows[i].args[0]);
    }
}

int main(void)
{
    th_require_mpmserve();
    const struct CMUnitTest tests[] = {
        TH_MATRIX(routes_answer_their_methods),
        TH_CASE(test_routes_exist_with_the_flag, "worker"),
        TH_CASE(command_line_mistakes_exit_2, "worker"),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
