/* mpmserve: request dispatch and the small routes (/, /echo, /stream,
 * /sleep, /crash). /files/ is in files.c, /status in status.c. */
#include "mpmserve.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#define MS_STREAM_MAX 100000L
#define MS_SLEEP_MAX 600000L
#define MS_ECHO_WHOLE_MAX (1024 * 1024) /* known-length bodies up to this: one send */
#define MS_ECHO_BUF (64 * 1024)

static const char hello[] = "Hello, World!";

void ms_send_text(mpm_request_t *req, int status, const char *body)
{
    mpm_response_set_status(req, status);
    mpm_response_add_header(req, "Content-Type", "text/plain");
    mpm_response_send(req, body, strlen(body));
}

static void send_405(mpm_request_t *req, const char *allow)
{
    mpm_response_set_status(req, 405);
    mpm_response_add_header(req, "Allow", allow);
    mpm_response_add_header(req, "Content-Type", "text/plain");
    static const char body[] = "Method Not Allowed\n";
    mpm_response_send(req, body, sizeof body - 1);
}

/* Finds "name=value" in the query and parses value as a decimal in
 * [0, max]. Returns 1 and *out when found and valid, 0 when absent, -1 when
 * present but not a number in range. */
static int query_long(const char *query, const char *name, long max, long *out)
{
    size_t nlen = strlen(name);
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = len - nlen - 1;
            if (vlen == 0 || vlen > 9)
                return -1;
            long n = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return -1;
                n = n * 10 + (v[i] - '0');
            }
            if (n > max)
                return -1;
            *out = n;
            return 1;
        }
        if (len == nlen && strncmp(p, name, nlen) == 0)
            return -1; /* "name" without a value */
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

static void route_hello(mpm_request_t *req, const ms_app_t *app, const char *rest)
{
    (void)app, (void)rest;
    mpm_response_add_header(req, "Content-Type", "text/plain");
    mpm_response_send(req, hello, sizeof hello - 1);
}

/* Echoes the body. A known length up to 1 MiB is read whole and sent with a
 * Content-Length; anything else (chunked, larger) is streamed through a 64 KiB
 * buffer, so a body of any size never has to fit in memory. */
static void route_echo(mpm_request_t *req, const ms_app_t *app, const char *rest)
{
    (void)app, (void)rest;
    mpm_response_add_header(req, "Content-Type", "application/octet-stream");
    int64_t cl = mpm_request_content_length(req);
    if (cl >= 0 && cl <= MS_ECHO_WHOLE_MAX) {
        const char *body = NULL;
        size_t len = 0;
        if (cl > 0) {
            int rc = mpm_request_read_body(req, (size_t)cl, &body, &len);
            if (rc < 0)
                return; /* the library answered (413/408/400) or the client left */
        }
        mpm_response_send(req, body ? body : "", len);
        return;
    }
    char *buf = malloc(MS_ECHO_BUF);
    if (!buf) {
        ms_send_text(req, 500, "out of memory\n");
        return;
    }
    int started = 0;
    for (;;) {
        ssize_t n = mpm_request_read(req, buf, MS_ECHO_BUF);
        if (n < 0)
            break; /* error answered by the library, or the connection is gone */
        if (n == 0) {
            if (started)
                mpm_response_end(req);
            else
                mpm_response_send(req, "", 0);
            break;
        }
        if (mpm_response_write(req, buf, (size_t)n) < 0)
            break;
        started = 1;
    }
    free(buf);
}

static void route_stream(mpm_request_t *req, const ms_app_t *app, const char *rest)
{
    (void)app, (void)rest;
    long n = 10;
    if (query_long(mpm_request_query(req), "n", MS_STREAM_MAX, &n) < 0) {
        ms_send_text(req, 400, "n must be a number from 0 to 100000\n");
        return;
    }
    mpm_response_add_header(req, "Content-Type", "text/plain");
    if (strcmp(mpm_request_method(req), "HEAD") != 0) {
        char line[48];
        for (long i = 0; i < n; i++) {
            int len = snprintf(line, sizeof line, "chunk %ld of %ld\n", i + 1, n);
            if (mpm_response_write(req, line, (size_t)len) < 0)
                return;
        }
    }
    mpm_response_end(req);
}

static void route_sleep(mpm_request_t *req, const ms_app_t *app, const char *rest)
{
    (void)app, (void)rest;
    long ms = 0;
    int found = query_long(mpm_request_query(req), "ms", MS_SLEEP_MAX, &ms);
    if (found <= 0) {
        ms_send_text(req, 400, "usage: /sleep?ms=N with N from 0 to 600000\n");
        return;
    }
    /* Sleep in slices so that an immediate stop (SIGINT/SIGTERM, in any
     * mode: in a child the library's own SIGTERM handler records it) cuts
     * the wait short; a graceful stop lets the request finish. */
    long left = ms;
    while (left > 0 && !mpm_request_server_stopping_now(req)) {
        long slice = left < 100 ? left : 100;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = slice * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        left -= slice;
    }
    char body[64]; /* the time slept: less than asked when a hard stop cut it */
    snprintf(body, sizeof body, "slept %ld ms\n", ms - (left > 0 ? left : 0));
    ms_send_text(req, 200, body);
}

/* GET /hang?ms=N (--test-routes): sleeps without ever asking whether the
 * server stops, as a handler stuck in its own code would; only the
 * library's bounds (GracefulShutdownTimeout, SIGKILL after SIGTERM) end it
 * early. Signals interrupt the sleep; it goes back to sleep. */
static void route_hang(mpm_request_t *req, const ms_app_t *app, const char *rest)
{
    (void)app, (void)rest;
    long ms = 0;
    if (query_long(mpm_request_query(req), "ms", MS_SLEEP_MAX, &ms) <= 0) {
        ms_send_text(req, 400, "usage: /hang?ms=N with N from 0 to 600000\n");
        return;
    }
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    ms_send_text(req, 200, "hung\n");
}

/* A JSON string of a name the client chose (SNI), or null: anything but
 * host-name characters becomes '?', so nothing needs escaping. */
static void json_name(char *out, size_t len, const char *name)
{
    if (!name) {
        snprintf(out, len, "null");
        return;
    }
    size_t n = 0;
    out[n++] = '"';
    for (; *name && n + 2 < len; name++) {
        unsigned char ch = (unsigned char)*name;
        out[n++] = (isalnum(ch) || ch == '.' || ch == '-' || ch == '_') ? (char)ch : '?';
    }
    out[n++] = '"';
    out[n] = '\0';
}

/* GET /tls: what the connection's TLS is, and which process and thread
 * serve it (TLS tests: SNI, resumption across children, pinning). */
static void route_tls(mpm_request_t *req, const ms_app_t *app, const char *rest)
{
    (void)app, (void)rest;
    char sni[300], proto[40], cipher[80], body[600];
    json_name(sni, sizeof sni, mpm_request_tls_sni(req));
    json_name(proto, sizeof proto, mpm_request_tls_protocol(req));
    json_name(cipher, sizeof cipher, mpm_request_tls_cipher(req));
    snprintf(body, sizeof body,
             "{\"tls\":%s,\"sni\":%s,\"protocol\":%s,\"cipher\":%s,\"pid\":%d,\"tid\":%ld}\n",
             mpm_request_is_tls(req) ? "true" : "false", sni, proto, cipher, (int)getpid(),
             (long)syscall(SYS_gettid));
    mpm_response_set_status(req, 200);
    mpm_response_add_header(req, "Content-Type", "application/json");
    mpm_response_send(req, body, strlen(body));
}

/* GET /pid (--test-routes): which process served (pool tests). */
static void route_pid(mpm_request_t *req, const ms_app_t *app, const char *rest)
{
    (void)app, (void)rest;
    char body[32];
    snprintf(body, sizeof body, "%d\n", (int)getpid());
    ms_send_text(req, 200, body);
}

static void route_crash(mpm_request_t *req, const ms_app_t *app, const char *rest)
{
    (void)app, (void)rest;
    fprintf(stderr, "mpmserve: /crash requested: aborting\n");
    abort();
}

/* A route: an exact path, or (prefix) the path and everything under
 * "path/". allow lists the methods it answers, for the method check, the
 * 405's Allow and OPTIONS; NULL: every method goes to the route. */
typedef struct ms_route {
    const char *path;
    int prefix;
    int test_only; /* only with --test-routes */
    const char *allow;
    void (*serve)(mpm_request_t *req, const ms_app_t *app, const char *rest);
} ms_route_t;

#define MS_READ_ONLY "GET, HEAD, OPTIONS"

static void serve_status(mpm_request_t *req, const ms_app_t *app, const char *rest)
{
    (void)app, (void)rest;
    ms_status(req);
}

static void serve_metrics(mpm_request_t *req, const ms_app_t *app, const char *rest)
{
    (void)app, (void)rest;
    ms_metrics(req);
}

static const ms_route_t routes[] = {
    {"/", 0, 0, MS_READ_ONLY, route_hello},
    {"/hello.txt", 0, 0, MS_READ_ONLY, route_hello},
    {"/echo", 0, 0, NULL, route_echo},
    {"/status", 0, 0, MS_READ_ONLY, serve_status},
    {"/metrics", 0, 0, MS_READ_ONLY, serve_metrics},
    {"/stream", 0, 0, MS_READ_ONLY, route_stream},
    {"/sleep", 0, 0, MS_READ_ONLY, route_sleep},
    {"/files", 1, 0, MS_READ_ONLY, ms_files},
    {"/tls", 0, 0, MS_READ_ONLY, route_tls},
    {"/pid", 0, 1, NULL, route_pid},
    {"/hang", 0, 1, NULL, route_hang}, /* a handler stuck in its own code: stop bounds */
    {"/crash", 0, 1, "GET", route_crash},
};

/* The route for path, and in *rest what follows "path/" for a prefix route
 * ("" for the path itself). NULL when none matches. */
static const ms_route_t *find_route(const ms_app_t *app, const char *path, const char **rest)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const ms_route_t *r = &routes[i];
        size_t len = strlen(r->path);
        if (r->test_only && !app->test_routes)
            continue;
        if (strcmp(path, r->path) == 0) {
            *rest = "";
            return r;
        }
        if (r->prefix && strncmp(path, r->path, len) == 0 && path[len] == '/') {
            *rest = path + len + 1;
            return r;
        }
    }
    return NULL;
}

/* Whether method is one of the comma-separated names in allow. */
static int method_allowed(const char *allow, const char *method)
{
    size_t mlen = strlen(method);
    for (const char *p = allow; *p;) {
        size_t len = strcspn(p, ",");
        if (len == mlen && strncmp(p, method, mlen) == 0)
            return 1;
        p += len;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

/* 200 to OPTIONS (RFC 9110 §9.3.7): what the target allows, no content. */
static void send_options(mpm_request_t *req, const char *allow)
{
    mpm_response_set_status(req, 200);
    mpm_response_add_header(req, "Allow", allow);
    mpm_response_send(req, "", 0);
}

void ms_handle(mpm_request_t *req, void *data)
{
    const ms_app_t *app = data;
    const char *path = mpm_request_path(req);
    const char *method = mpm_request_method(req);
    const char *rest = "";

    if (strcmp(path, "*") == 0) { /* only OPTIONS gets here: the server as a whole */
        send_options(req, "GET, HEAD, POST, OPTIONS");
        return;
    }
    const ms_route_t *route = find_route(app, path, &rest);
    if (!route) {
        ms_send_text(req, 404, "Not Found\n");
    } else if (!route->allow || method_allowed(route->allow, method)) {
        if (strcmp(method, "OPTIONS") == 0 && route->allow)
            send_options(req, route->allow);
        else
            route->serve(req, app, rest);
    } else {
        send_405(req, route->allow);
    }
}
