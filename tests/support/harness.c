/* Test servers: see harness.h. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

const char *const th_strategies[TH_NSTRATEGIES] = {"prefork", "worker", "event"};

#define TH_STOP_TIMEOUT_MS 15000
#define TH_FILE_LEN (256 * 1024 + 123)

/* ------------------------------------------------------------------ */
/* Strategy probing                                                   */

static void noop_handler(mpm_request_t *req, void *data)
{
    (void)req;
    (void)data;
}

static int probe_strategy(const char *name)
{
    mpm_config_t *cfg = NULL;
    mpm_server_t *srv = NULL;
    if (mpm_config_new(&cfg) != 0)
        return 0;
    int rc = mpm_config_set(cfg, "MPM", name);
    if (rc == 0)
        rc = mpm_config_set(cfg, "Listen", "127.0.0.1:0");
    if (rc == 0)
        rc = mpm_config_set(cfg, "OneProcess", "On");
    if (rc == 0)
        rc = mpm_config_set_handler(cfg, noop_handler, NULL);
    if (rc == 0)
        rc = mpm_server_new(cfg, &srv);
    mpm_server_free(srv);
    mpm_config_free(cfg);
    return rc == 0;
}

#define TH_MP_SUFFIX "-mp"

int th_strategy_is_mp(const char *name)
{
    size_t n = strlen(name), k = strlen(TH_MP_SUFFIX);
    return n > k && strcmp(name + n - k, TH_MP_SUFFIX) == 0;
}

/* The base strategy's name for name or name-mp; NULL if unknown. */
static const char *base_strategy(const char *name)
{
    size_t n = strlen(name) - (th_strategy_is_mp(name) ? strlen(TH_MP_SUFFIX) : 0);
    for (size_t i = 0; i < TH_NSTRATEGIES; i++)
        if (strlen(th_strategies[i]) == n && strncmp(th_strategies[i], name, n) == 0)
            return th_strategies[i];
    return NULL;
}

int th_strategy_built(const char *name)
{
    static int cache[TH_NSTRATEGIES] = {-1, -1, -1};
    name = base_strategy(name);
    for (size_t i = 0; name && i < TH_NSTRATEGIES; i++) {
        if (strcmp(th_strategies[i], name) == 0) {
            if (cache[i] < 0)
                cache[i] = probe_strategy(name);
            return cache[i];
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Callbacks: capture what the library reports                        */

static void append_log(th_server_t *s, const char *line)
{
    size_t n = strlen(line);
    char *nl = realloc(s->log, s->log_len + n + 2);
    if (!nl)
        return;
    s->log = nl;
    memcpy(s->log + s->log_len, line, n);
    s->log_len += n;
    s->log[s->log_len++] = '\n';
    s->log[s->log_len] = '\0';
}

static void on_log(mpm_log_level_t level, const char *msg, void *data)
{
    th_server_t *s = data;
    char line[1024];
    snprintf(line, sizeof(line), "[%d] %s", (int)level, msg);
    pthread_mutex_lock(&s->lock);
    append_log(s, line);
    pthread_mutex_unlock(&s->lock);
    if (getenv("TH_VERBOSE"))
        fprintf(stderr, "server log @%lld: %s\n", (long long)tc_now_ms(), line);
}

static void on_access(const mpm_access_entry_t *e, void *data)
{
    th_server_t *s = data;
    pthread_mutex_lock(&s->lock);
    if (s->naccess < TH_MAX_ACCESS) {
        th_access_t *a = &s->access[s->naccess++];
        snprintf(a->remote, sizeof(a->remote), "%s", e->remote_addr ? e->remote_addr : "");
        snprintf(a->method, sizeof(a->method), "%s", e->method ? e->method : "");
        snprintf(a->target, sizeof(a->target), "%s", e->target ? e->target : "");
        a->version = e->version;
        a->status = e->status;
        a->bytes = e->bytes_sent;
    }
    pthread_mutex_unlock(&s->lock);
}

size_t th_server_access_count(th_server_t *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->naccess;
    pthread_mutex_unlock(&s->lock);
    return n;
}

th_access_t th_server_access_at(th_server_t *s, size_t i)
{
    th_access_t a;
    memset(&a, 0, sizeof(a));
    pthread_mutex_lock(&s->lock);
    if (i < s->naccess)
        a = s->access[i];
    pthread_mutex_unlock(&s->lock);
    return a;
}

int th_server_log_contains(th_server_t *s, const char *text)
{
    pthread_mutex_lock(&s->lock);
    int found = s->log && strstr(s->log, text) != NULL;
    pthread_mutex_unlock(&s->lock);
    return found;
}

size_t th_server_log_length(th_server_t *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->log_len;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ------------------------------------------------------------------ */
/* The test handler                                                   */

static long query_long(const mpm_request_t *req, const char *key, long dflt)
{
    const char *q = mpm_request_query(req);
    size_t kn = strlen(key);
    while (q && *q) {
        if (strncmp(q, key, kn) == 0 && q[kn] == '=')
            return strtol(q + kn + 1, NULL, 10);
        q = strchr(q, '&');
        if (q)
            q++;
    }
    return dflt;
}

static void send_text(mpm_request_t *req, int status, const char *text)
{
    mpm_response_set_status(req, status);
    mpm_response_add_header(req, "Content-Type", "text/plain");
    mpm_response_send(req, text, strlen(text));
}

static void route_hello(mpm_request_t *req)
{
    send_text(req, 200, "Hello, World!");
}

/* Streams the body back as it arrives (chunked on HTTP/1.1). */
static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void route_echo(th_server_t *s, mpm_request_t *req)
{
    char buf[16384];
    ssize_t n;
    int wrote = 0;
    long delay = query_long(req, "delay_ms", 0);
    if (delay > 0)
        sleep_ms(delay);
    atomic_store(&s->shared->echo_read_start_ms, (long long)tc_now_ms());
    mpm_response_add_header(req, "Content-Type", "application/octet-stream");
    while ((n = mpm_request_read(req, buf, sizeof(buf))) > 0) {
        if (mpm_response_write(req, buf, (size_t)n) != 0)
            return;
        wrote = 1;
    }
    if (n < 0)
        return; /* the library answered (413/408/400) or the client left */
    if (wrote)
        mpm_response_end(req);
    else
        mpm_response_send(req, "", 0);
}

/* Reads the whole body first, then sends it with a Content-Length. */
static void route_echo_whole(mpm_request_t *req)
{
    const char *body = NULL;
    size_t len = 0;
    if (mpm_request_read_body(req, 0, &body, &len) != 0)
        return;
    mpm_response_add_header(req, "Content-Type", "application/octet-stream");
    mpm_response_send(req, body, len);
}

/* Streams the body in, answers with its length in decimal. */
static void route_count(mpm_request_t *req)
{
    char buf[65536], out[32];
    ssize_t n;
    unsigned long long total = 0;
    while ((n = mpm_request_read(req, buf, sizeof(buf))) > 0)
        total += (unsigned long long)n;
    if (n < 0)
        return;
    snprintf(out, sizeof(out), "%llu", total);
    send_text(req, 200, out);
}

static void route_stream(mpm_request_t *req)
{
    long n = query_long(req, "n", 3);
    char chunk[64];
    mpm_response_add_header(req, "Content-Type", "text/plain");
    for (long i = 0; i < n; i++) {
        int len = snprintf(chunk, sizeof(chunk), "chunk %ld\n", i);
        if (mpm_response_write(req, chunk, (size_t)len) != 0)
            return;
    }
    mpm_response_end(req);
}

static void route_sleep(mpm_request_t *req)
{
    sleep_ms(query_long(req, "ms", 100));
    send_text(req, 200, "slept");
}

/* Sleeps in short slices; a stopping server (hard or graceful, as a child
 * that got SIGTERM) cuts the nap short. With hard=1 only a hard stop does
 * (mpm_request_server_stopping_now): a child whose master died sees a
 * graceful stop through its control channel, a SIGTERM only through
 * PR_SET_PDEATHSIG. */
static void route_nap(th_server_t *s, mpm_request_t *req)
{
    int64_t until = tc_now_ms() + query_long(req, "ms", 100);
    int hard_only = query_long(req, "hard", 0) == 1;
    atomic_fetch_add(&s->shared->naps_started, 1);
    int cut = 0;
    while (!cut && tc_now_ms() < until) {
        sleep_ms(10);
        cut = hard_only ? mpm_request_server_stopping_now(req) : mpm_request_server_draining(req);
    }
    if (cut)
        atomic_fetch_add(&s->shared->naps_cut, 1);
    send_text(req, 200, cut ? "cut" : "slept");
}

static void route_pid(mpm_request_t *req)
{
    char text[32];
    snprintf(text, sizeof(text), "%d", (int)getpid());
    send_text(req, 200, text);
}

static void route_file(th_server_t *s, mpm_request_t *req)
{
    int fd = open(s->file_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        send_text(req, 500, "cannot open test file");
        return;
    }
    mpm_response_add_header(req, "Content-Type", "application/octet-stream");
    mpm_response_send_file(req, fd, 0, s->file_len);
    close(fd);
}

unsigned char th_pattern_byte(size_t i)
{
    return (unsigned char)((i * 2654435761u) >> 13);
}

/* n bytes of th_pattern_byte() in one mpm_response_send(): a response far
 * larger than the socket buffers, handed over whole. */
static void route_bytes(mpm_request_t *req)
{
    long n = query_long(req, "n", 0);
    unsigned char *body = n > 0 ? malloc((size_t)n) : NULL;
    if (n > 0 && !body) {
        send_text(req, 500, "out of memory");
        return;
    }
    for (long i = 0; i < n; i++)
        body[i] = th_pattern_byte((size_t)i);
    mpm_response_add_header(req, "Content-Type", "application/octet-stream");
    mpm_response_send(req, body, n > 0 ? (size_t)n : 0);
    free(body);
}

/* The same bytes from an unlinked temporary file, by
 * mpm_response_send_file(): a file body the library may finish sending
 * after the handler returned. */
static void route_file_bytes(mpm_request_t *req)
{
    long n = query_long(req, "n", 0);
    char path[] = "/tmp/mpm-file-bytes-XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        send_text(req, 500, "mkstemp failed");
        return;
    }
    unlink(path);
    unsigned char piece[65536];
    for (long at = 0; at < n;) {
        size_t len = n - at < (long)sizeof piece ? (size_t)(n - at) : sizeof piece;
        for (size_t i = 0; i < len; i++)
            piece[i] = th_pattern_byte((size_t)at + i);
        if (write(fd, piece, len) != (ssize_t)len) {
            close(fd);
            send_text(req, 500, "write failed");
            return;
        }
        at += (long)len;
    }
    mpm_response_add_header(req, "Content-Type", "application/octet-stream");
    mpm_response_send_file(req, fd, 0, n > 0 ? (size_t)n : 0);
    close(fd);
}

static void route_status(mpm_request_t *req)
{
    const char *path = mpm_request_path(req);
    int status = atoi(path + strlen("/status/"));
    char text[64];
    snprintf(text, sizeof(text), "status %d\n", status);
    send_text(req, status, text);
}

static void route_headers(mpm_request_t *req)
{
    size_t n = mpm_request_header_count(req), cap = 256, len = 0;
    char *out = malloc(cap);
    if (!out)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        if (mpm_request_header_at(req, i, &name, &value) != 0)
            continue;
        size_t need = strlen(name) + strlen(value) + 4;
        if (len + need + 1 > cap) {
            cap = (len + need + 1) * 2;
            char *no = realloc(out, cap);
            if (!no)
                break;
            out = no;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s: %s\n", name, value);
    }
    send_text(req, 200, out);
    free(out);
}

static void route_info(mpm_request_t *req)
{
    char out[1024];
    const char *sni = mpm_request_tls_sni(req), *proto = mpm_request_tls_protocol(req);
    const char *cipher = mpm_request_tls_cipher(req);
    snprintf(out, sizeof(out),
             "method=%s\ntarget=%s\npath=%s\nquery=%s\nversion=%d\nremote=%s\nlocal=%s\n"
             "content-length=%lld\ntls=%d\nsni=%s\nprotocol=%s\ncipher=%s\n",
             mpm_request_method(req), mpm_request_target(req), mpm_request_path(req),
             mpm_request_query(req), mpm_request_version(req), mpm_request_remote_addr(req),
             mpm_request_local_addr(req), (long long)mpm_request_content_length(req),
             mpm_request_is_tls(req), sni ? sni : "-", proto ? proto : "-", cipher ? cipher : "-");
    send_text(req, 200, out);
}

void th_handler(mpm_request_t *req, void *data)
{
    th_server_t *s = data;
    const char *path = mpm_request_path(req);
    atomic_fetch_add(&s->handler_calls, 1);
    if (strcmp(path, "/") == 0)
        route_hello(req);
    else if (strcmp(path, "/echo") == 0)
        route_echo(s, req);
    else if (strcmp(path, "/echo-whole") == 0)
        route_echo_whole(req);
    else if (strcmp(path, "/count") == 0)
        route_count(req);
    else if (strcmp(path, "/stream") == 0)
        route_stream(req);
    else if (strcmp(path, "/sleep") == 0)
        route_sleep(req);
    else if (strcmp(path, "/file") == 0)
        route_file(s, req);
    else if (strcmp(path, "/noresponse") == 0)
        return;
    else if (strncmp(path, "/status/", 8) == 0)
        route_status(req);
    else if (strcmp(path, "/headers") == 0)
        route_headers(req);
    else if (strcmp(path, "/info") == 0)
        route_info(req);
    else if (strcmp(path, "/nap") == 0)
        route_nap(s, req);
    else if (strcmp(path, "/pid") == 0)
        route_pid(req);
    else if (strcmp(path, "/bytes") == 0)
        route_bytes(req);
    else if (strcmp(path, "/file-bytes") == 0)
        route_file_bytes(req);
    else
        send_text(req, 404, "not found\n");
}

/* ------------------------------------------------------------------ */
/* In-process server                                                  */

static int make_test_file(th_server_t *s)
{
    snprintf(s->file_path, sizeof(s->file_path), "/tmp/mpmlib-test-XXXXXX");
    int fd = mkstemp(s->file_path);
    if (fd < 0)
        return -1;
    s->file_len = TH_FILE_LEN;
    s->file_data = malloc(s->file_len);
    if (!s->file_data) {
        close(fd);
        return -1;
    }
    uint32_t x = 12345;
    for (size_t i = 0; i < s->file_len; i++) {
        x = x * 1103515245u + 12345u;
        s->file_data[i] = (unsigned char)(x >> 16);
    }
    ssize_t w = write(fd, s->file_data, s->file_len);
    close(fd);
    return w == (ssize_t)s->file_len ? 0 : -1;
}

static int init_sync(th_server_t *s)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->lock, NULL);
    int rc = pthread_cond_init(&s->cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

/* A child forked while another thread of the test held s->lock would
 * inherit it locked: the child's callbacks get a fresh one. */
static int reinit_child_lock(void *data)
{
    th_server_t *s = data;
    pthread_mutex_init(&s->lock, NULL);
    return 0;
}

/* Bound on waiting for a multi-process server's first children. */
#define TH_CHILDREN_UP_MS 10000

/* A small pool with few spares: quick to start and to stop. */
static int multi_process_config(th_server_t *s)
{
    static const char *const prefork[] = {"StartServers", "2", "MinSpareServers", "1",
                                          "MaxSpareServers", "4", NULL};
    static const char *const threaded[] = {"StartServers", "2", "ThreadsPerChild", "8",
                                           "MinSpareThreads", "1", "MaxSpareThreads", "32", NULL};
    const char *const *d = strcmp(s->strategy, "prefork") == 0 ? prefork : threaded;
    int rc = mpm_config_set(s->cfg, "HandleSignals", "Off");
    for (; rc == 0 && *d; d += 2)
        rc = mpm_config_set(s->cfg, d[0], d[1]);
    if (rc == 0)
        rc = mpm_config_set_child_hooks(s->cfg, reinit_child_lock, NULL, s);
    return rc;
}

static int base_config(th_server_t *s, int with_listen)
{
    if (mpm_config_new(&s->cfg) != 0)
        return -1;
    if ((with_listen && mpm_config_set(s->cfg, "Listen", "127.0.0.1:0") != 0) ||
        mpm_config_set(s->cfg, "OneProcess", s->multi_process ? "Off" : "On") != 0 ||
        mpm_config_set(s->cfg, "MPM", s->strategy) != 0 ||
        (s->multi_process && multi_process_config(s) != 0)) {
        fprintf(stderr, "harness: base config: %s\n", mpm_config_errmsg(s->cfg));
        return -1;
    }
    mpm_config_set_handler(s->cfg, th_handler, s);
    mpm_config_set_log_cb(s->cfg, on_log, s);
    mpm_config_set_access_log_cb(s->cfg, on_access, s);
    return 0;
}

static th_server_t *create(const char *strategy, int with_listen)
{
    th_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->strategy = base_strategy(strategy);
    s->multi_process = th_strategy_is_mp(strategy);
    init_sync(s);
    s->shared = mmap(NULL, sizeof(*s->shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    if (s->shared == MAP_FAILED)
        s->shared = NULL;
    if (!s->strategy || !s->shared || make_test_file(s) != 0 || base_config(s, with_listen) != 0) {
        th_server_destroy(s);
        return NULL;
    }
    return s;
}

th_server_t *th_server_create(const char *strategy)
{
    return create(strategy, 1);
}

th_server_t *th_server_create_bare(const char *strategy)
{
    return create(strategy, 0);
}

int th_server_set(th_server_t *s, const char *key, const char *value)
{
    int rc = mpm_config_set(s->cfg, key, value);
    if (rc != 0)
        snprintf(s->errmsg, sizeof(s->errmsg), "%s %s: %s (%s)", key, value, mpm_config_errmsg(s->cfg),
                 mpm_err_name(rc));
    return rc;
}

mpm_config_t *th_server_config(th_server_t *s)
{
    return s->cfg;
}

static void *run_thread(void *arg)
{
    th_server_t *s = arg;
    int rc = mpm_server_run(s->srv);
    pthread_mutex_lock(&s->lock);
    s->run_rc = rc;
    s->run_done = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static int create_server(th_server_t *s)
{
    int rc = mpm_server_new(s->cfg, &s->srv);
    if (rc != 0)
        snprintf(s->errmsg, sizeof(s->errmsg), "mpm_server_new: %s: %s", mpm_err_name(rc),
                 mpm_config_errmsg(s->cfg));
    return rc;
}

static int spawn_run_thread(th_server_t *s)
{
    int rc = pthread_create(&s->thread, NULL, run_thread, s);
    if (rc != 0) {
        snprintf(s->errmsg, sizeof(s->errmsg), "pthread_create: %s", strerror(rc));
        return -rc;
    }
    s->thread_started = 1;
    return 0;
}

int th_server_start(th_server_t *s)
{
    int rc = create_server(s);
    if (rc != 0)
        return rc;
    rc = mpm_server_bind(s->srv);
    if (rc != 0) {
        snprintf(s->errmsg, sizeof(s->errmsg), "mpm_server_bind: %s: %s", mpm_err_name(rc),
                 mpm_server_errmsg(s->srv));
        return rc;
    }
    rc = mpm_server_port(s->srv, 0);
    if (rc <= 0) {
        snprintf(s->errmsg, sizeof(s->errmsg), "mpm_server_port: %d", rc);
        return rc < 0 ? rc : MPM_ESTATE;
    }
    s->port = rc;
    return spawn_run_thread(s);
}

int th_server_new(th_server_t *s)
{
    return create_server(s);
}

int th_server_run_async(th_server_t *s)
{
    return spawn_run_thread(s);
}

int th_server_launch(th_server_t *s)
{
    int rc = create_server(s);
    return rc != 0 ? rc : spawn_run_thread(s);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int th_server_wait_run(th_server_t *s, int timeout_ms)
{
    if (!s->thread_started)
        return 1;
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&s->lock);
    while (!s->run_done) {
        if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT)
            break;
    }
    int done = s->run_done;
    pthread_mutex_unlock(&s->lock);
    if (done && !s->joined) {
        pthread_join(s->thread, NULL);
        s->joined = 1;
    }
    return done;
}

int th_server_stop(th_server_t *s, int graceful)
{
    if (!s->srv || !s->thread_started)
        return 0;
    mpm_server_stop(s->srv, graceful);
    if (!th_server_wait_run(s, TH_STOP_TIMEOUT_MS)) {
        fprintf(stderr, "harness: %s server on port %d did not stop within %d ms\n", s->strategy,
                s->port, TH_STOP_TIMEOUT_MS);
        return -1;
    }
    return 0;
}

void th_server_destroy(th_server_t *s)
{
    if (!s)
        return;
    if (th_server_stop(s, 0) != 0)
        return; /* its thread still uses it: leak rather than crash */
    mpm_server_free(s->srv);
    mpm_config_free(s->cfg);
    if (s->file_path[0])
        unlink(s->file_path);
    free(s->file_data);
    free(s->log);
    if (s->shared)
        munmap(s->shared, sizeof(*s->shared));
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ------------------------------------------------------------------ */
/* mpmserve as a child process                                        */

const char *th_mpmserve_path(void)
{
    const char *p = getenv("MPMSERVE_BIN");
    return p && *p && access(p, X_OK) == 0 ? p : NULL;
}

void th_require_mpmserve(void)
{
    if (th_mpmserve_path())
        return;
    fprintf(stderr, "MPMSERVE_BIN is not set (or not executable): every case here needs the "
                    "mpmserve binary; skipping the whole program\n");
    exit(TH_SKIP_EXIT);
}

static void exec_mpmserve(const char *bin, const char *const *args, int out_fd, int err_fd)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = bin;
    for (size_t i = 0; args && args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    dup2(out_fd, STDOUT_FILENO);
    if (err_fd >= 0)
        dup2(err_fd, STDERR_FILENO);
    /* mpmserve starts with stdin, stdout and stderr only: whatever else the
     * test left open (maybe 1,000 sockets) must not show up among its
     * descriptors. */
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
        for (int fd = 3; fd < 65536; fd++)
            (void)close(fd);
    execv(bin, (char *const *)argv);
    _exit(127);
}

pid_t th_spawn_mpmserve(const char *const *args, int out_fd, int err_fd)
{
    const char *bin = th_mpmserve_path();
    if (!bin)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        exec_mpmserve(bin, args, out_fd, err_fd);
    return pid;
}

/* Reads the child's stdout until the "listening on" line; returns the port. */
static int read_listen_port(int fd, int timeout_ms)
{
    static const char marker[] = "mpmserve: listening on 127.0.0.1:";
    char buf[4096];
    size_t len = 0;
    int64_t deadline = tc_now_ms() + timeout_ms;
    while (len < sizeof(buf) - 1) {
        int left = (int)(deadline - tc_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        const char *m = strstr(buf, marker);
        if (m && strchr(m, '\n'))
            return atoi(m + sizeof(marker) - 1);
    }
    return -1;
}

static int process_start(th_process_t *p, const char *const *args, int timeout_ms, int logged)
{
    const char *bin = th_mpmserve_path();
    int fds[2];
    memset(p, 0, sizeof(*p));
    p->out_fd = p->err_fd = -1;
    /* A file, not a pipe: nothing has to read it while the process runs. */
    if (logged && (p->err_fd = memfd_create("mpmserve-stderr", MFD_CLOEXEC)) < 0)
        return -1;
    if (!bin || pipe2(fds, O_CLOEXEC) != 0) {
        th_process_stop(p, 0, 0);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        th_process_stop(p, 0, 0);
        return -1;
    }
    if (pid == 0)
        exec_mpmserve(bin, args, fds[1], p->err_fd);
    close(fds[1]);
    p->pid = pid;
    p->out_fd = fds[0];
    p->port = read_listen_port(p->out_fd, timeout_ms);
    if (p->port <= 0) {
        th_process_stop(p, SIGKILL, 1000);
        free(p->log);
        p->log = NULL;
        return -1;
    }
    return 0;
}

int th_process_start(th_process_t *p, const char *const *args, int timeout_ms)
{
    return process_start(p, args, timeout_ms, 0);
}

int th_process_start_logged(th_process_t *p, const char *const *args, int timeout_ms)
{
    return process_start(p, args, timeout_ms, 1);
}

/* The whole of a logged process's stderr, echoed to ours. */
static void take_log(th_process_t *p)
{
    off_t len = lseek(p->err_fd, 0, SEEK_END);
    free(p->log);
    p->log = malloc(len > 0 ? (size_t)len + 1 : 1);
    ssize_t n = p->log && len > 0 ? pread(p->err_fd, p->log, (size_t)len, 0) : 0;
    if (p->log)
        p->log[n > 0 ? n : 0] = '\0';
    if (p->log && n > 0)
        fputs(p->log, stderr);
    close(p->err_fd);
    p->err_fd = -1;
}

/* waitpid with a bound; 1 if reaped. */
static int reap_within(th_process_t *p, int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid || (r < 0 && errno == ECHILD))
            return 1;
        if (tc_now_ms() >= deadline)
            return 0;
        struct timespec nap = {0, 10 * 1000000L};
        nanosleep(&nap, NULL);
    }
}

int th_process_stop(th_process_t *p, int sig, int timeout_ms)
{
    int rc = 0;
    if (p->pid > 0) {
        kill(p->pid, sig);
        if (!reap_within(p, timeout_ms)) {
            fprintf(stderr, "harness: mpmserve pid %d ignored signal %d; killing\n", (int)p->pid, sig);
            kill(p->pid, SIGKILL);
            reap_within(p, 10000);
            rc = -1;
        }
        p->pid = 0;
    }
    if (p->out_fd >= 0)
        close(p->out_fd);
    p->out_fd = -1;
    if (p->err_fd >= 0)
        take_log(p);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Fixture                                                            */

int th_setup(void **state)
{
    th_fixture_t *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    fx->strategy = *state;
    for (size_t i = 0; i < TH_MAX_PROCS; i++)
        fx->procs[i].out_fd = fx->procs[i].err_fd = -1;
    *state = fx;
    return 0;
}

int th_teardown(void **state)
{
    th_fixture_t *fx = *state;
    int rc = 0;
    for (size_t i = 0; i < fx->nconns; i++)
        tc_close(&fx->conns[i]);
    for (size_t i = 0; i < fx->nprocs; i++) {
        th_process_stop(&fx->procs[i], SIGTERM, 10000);
        free(fx->procs[i].log);
    }
    for (size_t i = 0; i < fx->nservers; i++) {
        if (th_server_stop(fx->servers[i], 0) != 0)
            rc = -1;
        th_server_destroy(fx->servers[i]);
    }
    free(fx);
    return rc;
}

static th_server_t *new_server(th_fixture_t *fx, int with_listen)
{
    /* prefork is always built: a failure to create it must fail, not skip. */
    if (strcmp(fx->strategy, "prefork") != 0 && !th_strategy_built(fx->strategy))
        skip();
    assert_true(fx->nservers < TH_MAX_SERVERS);
    th_server_t *s = create(fx->strategy, with_listen);
    assert_non_null(s);
    fx->servers[fx->nservers++] = s;
    return s;
}

th_server_t *th_new_server(th_fixture_t *fx)
{
    return new_server(fx, 1);
}

th_server_t *th_new_bare_server(th_fixture_t *fx)
{
    return new_server(fx, 0);
}

/* Whether the master has forked its first StartServers children and each
 * is past its start. Allocates nothing: see th_server_wait_children(). */
static int children_up(th_server_t *s, unsigned want)
{
    mpm_stats_t st = {.size = sizeof st};
    if (mpm_server_stats(s->srv, &st) != 0 || st.processes < want)
        return 0;
    /* A slot being forked counts as a process before it has a row: every
     * process must show a row past its start. */
    unsigned up = 0;
    for (unsigned i = 0; i < st.slots; i++) {
        mpm_child_stats_t c = {.size = sizeof c};
        if (mpm_server_child_stats(s->srv, i, &c) != 0)
            continue;
        if (strcmp(c.state, "starting") == 0)
            return 0;
        up++;
    }
    return up >= st.processes;
}

/* With the master in this process, a fork while this thread is inside
 * malloc leaves the child with the allocator's lock held for good: glibc's
 * malloc guards fork, ASan's allocator (gcc 12) does not, and the child
 * then hangs at its first allocation (read_body_whole timed out in CI that
 * way). So the test waits, allocating nothing, until the master's initial
 * forks are done; a server whose children cannot start is left to the
 * test after a bound. */
void th_server_wait_children(th_server_t *s)
{
    char text[32];
    if (!s->multi_process || mpm_config_get(s->cfg, "StartServers", text, sizeof text) < 0)
        return;
    unsigned want = (unsigned)strtoul(text, NULL, 10);
    int64_t deadline = tc_now_ms() + TH_CHILDREN_UP_MS;
    while (!children_up(s, want ? want : 1) && tc_now_ms() < deadline) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

th_server_t *th_start_server(th_fixture_t *fx, const char *const *directives)
{
    th_server_t *s = th_new_server(fx);
    for (size_t i = 0; directives && directives[i]; i += 2) {
        if (th_server_set(s, directives[i], directives[i + 1]) != 0)
            fail_msg("config: %s", s->errmsg);
    }
    if (th_server_start(s) != 0)
        fail_msg("start %s server: %s", fx->strategy, s->errmsg);
    th_server_wait_children(s);
    return s;
}

tc_conn_t *th_connect(th_fixture_t *fx, int port)
{
    assert_true(fx->nconns < TH_MAX_CONNS);
    tc_conn_t *c = &fx->conns[fx->nconns];
    int rc = tc_connect(c, port, TC_DEFAULT_TIMEOUT_MS);
    if (rc != TC_OK)
        fail_msg("connect to port %d: %s (%s)", port, tc_result_name(rc), strerror(errno));
    fx->nconns++;
    return c;
}

tc_conn_t *th_hold_connection(th_fixture_t *fx, int port)
{
    tc_conn_t *c = th_connect(fx, port);
    tc_response_t r;
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 0);
    int status = r.status;
    tc_response_free(&r);
    assert_int_equal(status, 200);
    return c;
}

void th_disconnect(tc_conn_t *c)
{
    tc_close(c);
}

static th_process_t *start_mpmserve(th_fixture_t *fx, const char *const *args, int logged)
{
    if (!th_mpmserve_path())
        skip();
    assert_true(fx->nprocs < TH_MAX_PROCS);
    th_process_t *p = &fx->procs[fx->nprocs];
    if (process_start(p, args, 20000, logged) != 0)
        fail_msg("mpmserve did not report its port");
    fx->nprocs++;
    return p;
}

th_process_t *th_start_mpmserve(th_fixture_t *fx, const char *const *args)
{
    return start_mpmserve(fx, args, 0);
}

th_process_t *th_start_mpmserve_logged(th_fixture_t *fx, const char *const *args)
{
    return start_mpmserve(fx, args, 1);
}

void th_request(int port, const char *raw, tc_response_t *r)
{
    int rc = tc_exchange(port, raw, r, TC_DEFAULT_TIMEOUT_MS);
    if (rc != TC_OK)
        fail_msg("request %.40s...: %s", raw, tc_result_name(rc));
}

void th_read(tc_conn_t *c, tc_response_t *r, int head_request)
{
    int rc = tc_read_response(c, r, head_request, TC_DEFAULT_TIMEOUT_MS);
    if (rc != TC_OK)
        fail_msg("reading a response: %s", tc_result_name(rc));
}

void th_send(tc_conn_t *c, const char *raw)
{
    int rc = tc_send_str(c, raw);
    if (rc != TC_OK)
        fail_msg("sending %.40s...: %s", raw, tc_result_name(rc));
}

void th_expect_closed(tc_conn_t *c)
{
    size_t extra = 0;
    int rc = tc_wait_close(c, TC_DEFAULT_TIMEOUT_MS, &extra);
    if (rc != TC_CLOSED)
        fail_msg("expected the server to close the connection, got %s (%zu more bytes)",
                 tc_result_name(rc), extra);
    if (extra != 0)
        fail_msg("the server sent %zu unexpected bytes before closing", extra);
}

void th_expect_serving(int port)
{
    tc_response_t r;
    th_request(port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "Hello, World!");
    tc_response_free(&r);
}

int th_wait_for(int (*cond)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    while (!cond(arg)) {
        if (tc_now_ms() >= deadline)
            return 0;
        struct timespec nap = {0, 5 * 1000000L};
        nanosleep(&nap, NULL);
    }
    return 1;
}

void th_apply_filter(void)
{
    const char *f = getenv("TH_FILTER");
    if (f && *f)
        cmocka_set_test_filter(f);
}
