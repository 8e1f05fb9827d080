/* See pool.h. */
#include "pool.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proc.h"

static th_process_t *start_pool(th_fixture_t *fx, const char *const *extra, int logged)
{
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *args[48] = {"--mpm", fx->strategy, "--listen", "127.0.0.1:0", "--test-routes"};
    size_t n = 5;
    int threaded = strcmp(fx->strategy, "prefork") != 0;
    static const char *const prefork[] = {"--set", "StartServers=2", "--set", "MinSpareServers=2",
                                          "--set", "MaxSpareServers=4", "--set",
                                          "MaxRequestWorkers=40", NULL};
    static const char *const threads[] = {
        "--set", "StartServers=2",        "--set", "ThreadsPerChild=4", "--set",
        "MinSpareThreads=8", "--set",     "MaxSpareThreads=12", "--set", "ServerLimit=12",
        "--set", "MaxRequestWorkers=48",  NULL};
    for (const char *const *a = threaded ? threads : prefork; *a; a++)
        args[n++] = *a;
    for (size_t i = 0; extra && extra[i] && n < 47; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return logged ? th_start_mpmserve_logged(fx, args) : th_start_mpmserve(fx, args);
}

th_process_t *tpool_start(th_fixture_t *fx, const char *const *extra)
{
    return start_pool(fx, extra, 0);
}

th_process_t *tpool_start_logged(th_fixture_t *fx, const char *const *extra)
{
    return start_pool(fx, extra, 1);
}

int tpool_get_ok(int port, const char *target)
{
    char raw[256];
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target);
    tc_response_t r;
    int rc = tc_exchange(port, raw, &r, 20000);
    int ok = rc == TC_OK && r.status == 200;
    tc_response_free(&r);
    return ok;
}

char *tpool_get_body(int port, const char *target)
{
    char raw[256];
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target);
    tc_response_t r;
    int rc = tc_exchange(port, raw, &r, 20000);
    char *body = rc == TC_OK && r.status == 200 ? strdup(r.body) : NULL;
    tc_response_free(&r);
    return body;
}

long tpool_status_number(int port, const char *key)
{
    char *body = tpool_get_body(port, "/status");
    long v = -1;
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    char *p = body ? strstr(body, pat) : NULL;
    if (p)
        v = strtol(p + strlen(pat), NULL, 10);
    free(body);
    return v;
}

pid_t tpool_conn_pid(tc_conn_t *c)
{
    tc_response_t r;
    th_send(c, "GET /pid HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 0);
    int status = r.status;
    pid_t pid = (pid_t)atoi(r.body);
    tc_response_free(&r);
    assert_int_equal(status, 200);
    assert_true(pid > 0);
    return pid;
}

int tpool_children(pid_t master, pid_t *kids, int max)
{
    return tp_children_of(master, kids, max);
}

typedef struct kids_cond {
    pid_t master;
    int at_least, at_most;
} kids_cond_t;

static int kids_within(void *arg)
{
    kids_cond_t *k = arg;
    pid_t kids[TPOOL_MAX_KIDS];
    int n = tp_children_of(k->master, kids, TPOOL_MAX_KIDS);
    return n >= k->at_least && n <= k->at_most;
}

int tpool_wait_children(pid_t master, int at_least, int at_most, int timeout_ms)
{
    kids_cond_t k = {master, at_least, at_most};
    return th_wait_for(kids_within, &k, timeout_ms);
}

/* One client: requests back to back, a new connection whenever the server
 * says Connection: close. A request that was sent and got no complete 200
 * is a failure. */
static void *load_client(void *arg)
{
    tpool_load_t *l = arg;
    char raw[256];
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n", l->target,
             l->keepalive ? "" : "Connection: close\r\n");
    tc_conn_t c = {.fd = -1};
    while (!atomic_load(&l->stop)) {
        if (c.fd < 0 && tc_connect(&c, l->port, 20000) != TC_OK) {
            if (!l->until_close) /* a stopping server may refuse */
                atomic_fetch_add(&l->failed, 1);
            break;
        }
        tc_response_t r;
        memset(&r, 0, sizeof(r));
        int rc = tc_send_str(&c, raw);
        if (rc == TC_OK)
            rc = tc_read_response(&c, &r, 0, 30000);
        int good = rc == TC_OK && r.status == 200;
        atomic_fetch_add(good ? &l->ok : &l->failed, 1);
        if (!good)
            fprintf(stderr, "load: request failed: %s, status %d, after %d ok\n",
                    tc_result_name(rc), rc == TC_OK ? r.status : 0, atomic_load(&l->ok));
        int closing = rc == TC_OK && tc_header_has_token(&r, "Connection", "close");
        if (rc != TC_OK || !l->keepalive || closing)
            tc_close(&c);
        tc_response_free(&r);
        if (closing && l->until_close)
            break;
    }
    tc_close(&c);
    return NULL;
}

void tpool_load_start(tpool_load_t *l, int port, const char *target, int nthreads, int keepalive,
                      int until_close)
{
    memset(l, 0, sizeof(*l));
    l->port = port;
    l->target = target;
    l->keepalive = keepalive;
    l->until_close = until_close;
    for (l->nthreads = 0; l->nthreads < nthreads; l->nthreads++)
        assert_int_equal(pthread_create(&l->threads[l->nthreads], NULL, load_client, l), 0);
}

void tpool_load_stop(tpool_load_t *l)
{
    atomic_store(&l->stop, 1);
    for (int i = 0; i < l->nthreads; i++)
        pthread_join(l->threads[i], NULL);
}
