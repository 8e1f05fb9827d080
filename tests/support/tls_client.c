/* See tls_client.h. */
#include "tls_client.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

const char *ttls_result_name(int rc)
{
    if (rc == TTLS_EHANDSHAKE)
        return "TLS handshake failed";
    if (rc == TTLS_ETLS)
        return "TLS error";
    return tc_result_name(rc);
}

/* Prints and clears OpenSSL's error queue, for the test log. */
static int print_ssl_error(const char *str, size_t len, void *u)
{
    (void)u;
    fprintf(stderr, "tls_client: %.*s", (int)len, str);
    return 1;
}

SSL_CTX *ttls_ctx_new(const char *trust_pem, int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        goto fail;
    /* A server that closes without close_notify shows as EOF, not an error:
     * tests tell closes apart by when they happen, not how. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (max_version && !SSL_CTX_set_max_proto_version(ctx, max_version))
        goto fail;
    if (trust_pem) {
        if (SSL_CTX_load_verify_locations(ctx, trust_pem, NULL) != 1)
            goto fail;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
fail:
    ERR_print_errors_cb(print_ssl_error, NULL);
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- waiting on the socket for what OpenSSL wants ---- */

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - tc_now_ms();
    return left < 0 ? 0 : (int)left;
}

/* After an SSL call returned r: TC_OK to call again (once the socket is
 * ready), or the code to give up with. */
static int wait_for_ssl(ttls_conn_t *c, int r, int64_t deadline, int fatal)
{
    int e = SSL_get_error(c->ssl, r);
    short events;
    if (e == SSL_ERROR_WANT_READ)
        events = POLLIN;
    else if (e == SSL_ERROR_WANT_WRITE)
        events = POLLOUT;
    else if (e == SSL_ERROR_ZERO_RETURN)
        return TC_CLOSED;
    else if (e == SSL_ERROR_SYSCALL && (errno == ECONNRESET || errno == EPIPE))
        return TC_RESET;
    else if (e == SSL_ERROR_SYSCALL && r == 0)
        return TC_CLOSED;
    else
        return fatal;
    struct pollfd p = {.fd = c->fd, .events = events};
    for (;;) {
        int n = poll(&p, 1, remaining_ms(deadline));
        if (n > 0)
            return TC_OK;
        if (n == 0)
            return TC_TIMEOUT;
        if (errno != EINTR)
            return TC_SYSERR;
    }
}

/* ---- connection ---- */

/* The TCP connection and the client's SSL object, not yet started. */
static int open_ssl(ttls_conn_t *c, SSL_CTX *ctx, int port, const char *sni,
                    const SSL_SESSION *resume, int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->verify = X509_V_OK;
    tc_conn_t tcp;
    int rc = tc_connect(&tcp, port, timeout_ms);
    if (rc != TC_OK)
        return rc;
    c->fd = tcp.fd; /* non-blocking, as OpenSSL is driven here */
    c->ssl = SSL_new(ctx);
    if (c->ssl && SSL_set_fd(c->ssl, c->fd) && (!sni || SSL_set_tlsext_host_name(c->ssl, sni)) &&
        (!sni || SSL_CTX_get_verify_mode(ctx) == SSL_VERIFY_NONE || SSL_set1_host(c->ssl, sni)) &&
        (!resume || SSL_set_session(c->ssl, (SSL_SESSION *)resume)))
        return TC_OK;
    ERR_print_errors_cb(print_ssl_error, NULL);
    ttls_close(c);
    return TC_SYSERR;
}

/* SSL_connect until the handshake is done; closes c when it fails. */
static int finish_connect(ttls_conn_t *c, int64_t deadline)
{
    int rc;
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return TC_OK;
        rc = wait_for_ssl(c, r, deadline, TTLS_EHANDSHAKE);
        if (rc == TC_CLOSED)
            rc = TTLS_EHANDSHAKE;
        if (rc != TC_OK)
            break;
    }
    c->verify = SSL_get_verify_result(c->ssl);
    ERR_clear_error();
    ttls_close(c);
    return rc;
}

int ttls_connect(ttls_conn_t *c, SSL_CTX *ctx, int port, const char *sni,
                 const SSL_SESSION *resume, int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    int rc = open_ssl(c, ctx, port, sni, resume, timeout_ms);
    return rc == TC_OK ? finish_connect(c, deadline) : rc;
}

/* Writes len raw bytes to the socket, waiting (bounded) while it is full. */
static int send_raw(int fd, const unsigned char *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return errno == ECONNRESET || errno == EPIPE ? TC_RESET : TC_SYSERR;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (poll(&pf, 1, remaining_ms(deadline)) == 0)
            return TC_TIMEOUT;
    }
    return TC_OK;
}

int ttls_start_split(ttls_conn_t *c, SSL_CTX *ctx, int port, const char *sni, size_t first,
                     int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    int rc = open_ssl(c, ctx, port, sni, NULL, timeout_ms);
    if (rc != TC_OK)
        return rc;
    /* The hello goes into memory first, to be sent by hand. */
    BIO *mem = BIO_new(BIO_s_mem());
    if (!mem) {
        ttls_close(c);
        return TC_SYSERR;
    }
    SSL_set0_wbio(c->ssl, mem);
    ERR_clear_error();
    (void)SSL_connect(c->ssl); /* wants the ServerHello: the hello is in mem */
    ERR_clear_error();
    c->cap = (size_t)BIO_ctrl_pending(mem) + 1;
    c->buf = malloc(c->cap);
    int n = c->buf ? BIO_read(mem, c->buf, (int)c->cap) : -1;
    if (n <= 0 || (size_t)n <= first) {
        ttls_close(c);
        return TC_SYSERR;
    }
    c->len = (size_t)n;
    rc = send_raw(c->fd, (const unsigned char *)c->buf, first, deadline);
    if (rc != TC_OK) {
        ttls_close(c);
        return rc;
    }
    memmove(c->buf, c->buf + first, c->len - first);
    c->len -= first;
    return TC_OK;
}

int ttls_finish_split(ttls_conn_t *c, int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    int rc = send_raw(c->fd, (const unsigned char *)c->buf, c->len, deadline);
    c->len = 0;
    BIO *sock = rc == TC_OK ? BIO_new_socket(c->fd, BIO_NOCLOSE) : NULL;
    if (!sock) {
        ttls_close(c);
        return rc == TC_OK ? TC_SYSERR : rc;
    }
    SSL_set0_wbio(c->ssl, sock);
    return finish_connect(c, deadline);
}

void ttls_close(ttls_conn_t *c)
{
    if (c->ssl) {
        if (c->fd >= 0 && SSL_is_init_finished(c->ssl))
            (void)SSL_shutdown(c->ssl); /* one try: the socket may be gone */
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    c->ssl = NULL;
    if (c->fd > 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

int ttls_send(ttls_conn_t *c, const void *data, size_t len, int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    const char *p = data;
    while (len > 0) {
        ERR_clear_error();
        size_t done = 0;
        int r = SSL_write_ex(c->ssl, p, len, &done);
        if (r == 1) {
            p += done;
            len -= done;
            continue;
        }
        int rc = wait_for_ssl(c, r, deadline, TTLS_ETLS);
        if (rc == TC_CLOSED)
            rc = TC_RESET;
        if (rc != TC_OK)
            return rc;
    }
    return TC_OK;
}

/* Drives SSL_do_handshake until it is done (1), for what a post-handshake
 * message needs sent (a KeyUpdate, a renegotiation's ClientHello). */
static int drive_handshake(ttls_conn_t *c, int64_t deadline)
{
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r == 1)
            return TC_OK;
        int rc = wait_for_ssl(c, r, deadline, TTLS_EHANDSHAKE);
        if (rc != TC_OK)
            return rc;
    }
}

int ttls_key_update(ttls_conn_t *c, int timeout_ms)
{
    ERR_clear_error();
    if (!SSL_key_update(c->ssl, SSL_KEY_UPDATE_REQUESTED))
        return TTLS_ETLS;
    return drive_handshake(c, tc_now_ms() + timeout_ms);
}

int ttls_renegotiate(ttls_conn_t *c, int timeout_ms)
{
    ERR_clear_error();
    if (!SSL_renegotiate(c->ssl))
        return TTLS_ETLS;
    return drive_handshake(c, tc_now_ms() + timeout_ms);
}

/* ---- receiving ---- */

/* One SSL_read into the buffer, waiting (bounded) for bytes to come. */
static int fill(ttls_conn_t *c, int64_t deadline)
{
    if (c->eof)
        return TC_CLOSED;
    if (c->cap - c->len < 4096) { /* small to start: tests hold 1,000 of these */
        size_t cap = c->cap ? c->cap * 2 : 8192;
        char *nb = realloc(c->buf, cap);
        if (!nb)
            return TC_SYSERR;
        c->buf = nb;
        c->cap = cap;
    }
    for (;;) {
        ERR_clear_error();
        size_t got = 0;
        int r = SSL_read_ex(c->ssl, c->buf + c->len, c->cap - c->len - 1, &got);
        if (r == 1) {
            c->len += got;
            c->buf[c->len] = '\0';
            return TC_OK;
        }
        int rc = wait_for_ssl(c, r, deadline, TTLS_ETLS);
        if (rc == TC_CLOSED)
            c->eof = 1;
        if (rc != TC_OK)
            return rc;
    }
}

static void consume(ttls_conn_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Makes the buffer hold a CRLF-terminated line starting at pos; *eol is
 * the index of its CR. */
static int need_line(ttls_conn_t *c, size_t pos, size_t *eol, int64_t deadline)
{
    for (;;) {
        for (size_t i = pos; i + 1 < c->len; i++) {
            if (c->buf[i] == '\r' && c->buf[i + 1] == '\n') {
                *eol = i;
                return TC_OK;
            }
        }
        if (c->len - pos > 65536)
            return TC_PROTO;
        int rc = fill(c, deadline);
        if (rc != TC_OK)
            return rc;
    }
}

static int need(ttls_conn_t *c, size_t n, int64_t deadline)
{
    while (c->len < n) {
        int rc = fill(c, deadline);
        if (rc != TC_OK)
            return rc;
    }
    return TC_OK;
}

static int read_head(ttls_conn_t *c, tc_response_t *r, int64_t deadline)
{
    size_t eol;
    int rc = need_line(c, 0, &eol, deadline);
    if (rc == TC_OK)
        rc = tc_parse_status_line(c->buf, eol, r);
    size_t pos = eol + 2;
    while (rc == TC_OK) {
        rc = need_line(c, pos, &eol, deadline);
        if (rc != TC_OK || eol == pos)
            break;
        rc = tc_add_header(r, c->buf + pos, eol - pos);
        pos = eol + 2;
    }
    if (rc == TC_OK)
        consume(c, eol + 2);
    return rc;
}

static int append_body(tc_response_t *r, const char *data, size_t n)
{
    char *nb = realloc(r->body, r->body_len + n + 1);
    if (!nb)
        return TC_SYSERR;
    memcpy(nb + r->body_len, data, n);
    r->body = nb;
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return TC_OK;
}

static int read_chunked(ttls_conn_t *c, tc_response_t *r, int64_t deadline)
{
    r->chunked = 1;
    for (;;) {
        size_t eol;
        int rc = need_line(c, 0, &eol, deadline);
        if (rc != TC_OK)
            return rc;
        char *end;
        unsigned long long size = strtoull(c->buf, &end, 16);
        if (end == c->buf || size > (1ull << 30))
            return TC_PROTO;
        consume(c, eol + 2);
        if (size == 0)
            break;
        rc = need(c, (size_t)size + 2, deadline);
        if (rc != TC_OK)
            return rc;
        if (c->buf[size] != '\r' || c->buf[size + 1] != '\n')
            return TC_PROTO;
        rc = append_body(r, c->buf, (size_t)size);
        if (rc != TC_OK)
            return rc;
        consume(c, (size_t)size + 2);
    }
    for (;;) { /* trailers, up to the empty line */
        size_t eol;
        int rc = need_line(c, 0, &eol, deadline);
        if (rc != TC_OK)
            return rc;
        consume(c, eol + 2);
        if (eol == 0)
            return TC_OK;
    }
}

int ttls_read_response(ttls_conn_t *c, tc_response_t *r, int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    memset(r, 0, sizeof(*r));
    r->trailers = calloc(1, 1);
    if (!r->trailers || append_body(r, "", 0) != TC_OK)
        return TC_SYSERR;
    int rc = read_head(c, r, deadline);
    if (rc != TC_OK)
        return rc;
    if (r->status / 100 == 1 || r->status == 204 || r->status == 304)
        return TC_OK;
    if (tc_header_has_token(r, "Transfer-Encoding", "chunked"))
        return read_chunked(c, r, deadline);
    const char *cl = tc_header(r, "Content-Length");
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end || n > (1ull << 30))
            return TC_PROTO;
        rc = need(c, (size_t)n, deadline);
        if (rc == TC_OK)
            rc = append_body(r, c->buf, (size_t)n);
        if (rc == TC_OK)
            consume(c, (size_t)n);
        return rc;
    }
    r->close_delimited = 1;
    while ((rc = fill(c, deadline)) == TC_OK) {
    }
    if (rc != TC_CLOSED)
        return rc;
    rc = append_body(r, c->buf, c->len);
    consume(c, c->len);
    return rc;
}

int ttls_request(ttls_conn_t *c, const char *raw, tc_response_t *r, int timeout_ms)
{
    memset(r, 0, sizeof(*r));
    int rc = ttls_send(c, raw, strlen(raw), timeout_ms);
    return rc != TC_OK ? rc : ttls_read_response(c, r, timeout_ms);
}

int ttls_read_until(ttls_conn_t *c, const char *needle, int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    size_t n = strlen(needle);
    while (!c->buf || !memmem(c->buf, c->len, needle, n)) {
        int rc = fill(c, deadline);
        if (rc != TC_OK)
            return rc;
    }
    return TC_OK;
}

int ttls_wait_close(ttls_conn_t *c, int timeout_ms, size_t *extra)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    size_t total = 0;
    int rc;
    do {
        total += c->len;
        consume(c, c->len);
        rc = fill(c, deadline);
    } while (rc == TC_OK);
    if (extra)
        *extra = total + c->len;
    return rc == TTLS_ETLS ? TC_RESET : rc;
}

/* ---- what was negotiated ---- */

SSL_SESSION *ttls_session(ttls_conn_t *c)
{
    SSL_SESSION *s = SSL_get1_session(c->ssl);
    if (s && !SSL_SESSION_is_resumable(s)) {
        SSL_SESSION_free(s);
        return NULL;
    }
    return s;
}

int ttls_reused(const ttls_conn_t *c)
{
    return SSL_session_reused(c->ssl) == 1;
}

const char *ttls_version(const ttls_conn_t *c)
{
    return SSL_get_version(c->ssl);
}

int ttls_peer_cn(const ttls_conn_t *c, char *buf, size_t cap)
{
    X509 *peer = SSL_get1_peer_certificate(c->ssl);
    if (!peer)
        return -1;
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, (int)cap);
    X509_free(peer);
    return n < 0 ? -1 : 0;
}

int ttls_peer_is(const ttls_conn_t *c, const char *cert_pem)
{
    FILE *f = fopen(cert_pem, "r");
    if (!f)
        return 0;
    X509 *want = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    X509 *peer = SSL_get1_peer_certificate(c->ssl);
    int same = want && peer && X509_cmp(want, peer) == 0;
    X509_free(want);
    X509_free(peer);
    ERR_clear_error();
    return same;
}

int ttls_client_hello(SSL_CTX *ctx, const char *sni, unsigned char *out, size_t cap)
{
    SSL *ssl = SSL_new(ctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    int n = -1;
    if (!ssl || !rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        goto done;
    }
    SSL_set_bio(ssl, rbio, wbio); /* ssl owns both now */
    if (sni && !SSL_set_tlsext_host_name(ssl, sni))
        goto done;
    (void)SSL_connect(ssl); /* wants to read the ServerHello: the hello is out */
    n = BIO_read(wbio, out, (int)cap);
done:
    SSL_free(ssl);
    ERR_clear_error();
    return n > 0 ? n : -1;
}
