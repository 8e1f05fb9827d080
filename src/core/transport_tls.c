/* The TLS transport: OpenSSL over the connection's non-blocking socket.
 * A call that would block says which way (a read may have to write a
 * TLS 1.3 key update, a write may have to read); the connection's own
 * deadlines bound every wait, as for plain TCP. The SSL object is used by
 * one thread at a time: the connection's driver (a pinned thread, or
 * whoever holds it in event's hand-offs). */
#include "conn.h"
#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

typedef struct tls_conn {
    SSL *ssl;
    /* A write that would block must be offered again with the same bytes
     * (OpenSSL's rule): their count, 0 when none is owed. */
    size_t write_retry;
    int failed; /* a fatal error: no close_notify may follow */
} tls_conn_t;

/* Small iovecs (a head, a short body) are gathered into one record. The
 * buffer is per thread: OpenSSL copies what it encrypts, and a retry only
 * needs the same bytes, not the same address (ACCEPT_MOVING_WRITE_BUFFER). */
#define TLS_GATHER 16384
static _Thread_local unsigned char gather_buf[TLS_GATHER];

static tls_conn_t *state_of(const mpm__conn_t *c)
{
    return c->tp_state;
}

/* Before an SSL call: its failure must be judged by its own errors (the
 * thread's OpenSSL error queue and errno), not by a stale one. */
static void call_begins(void)
{
    ERR_clear_error();
    errno = 0;
}

/* What an SSL call that did not succeed means for the connection. */
static ssize_t tls_failure(mpm__conn_t *c, int ret)
{
    int sys = errno; /* the socket call's, before anything else can change it */
    tls_conn_t *t = state_of(c);
    int e = SSL_get_error(t->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return mpm__conn_saw(c, MPM__WANT_READ);
    case SSL_ERROR_WANT_WRITE:
        return mpm__conn_saw(c, MPM__WANT_WRITE);
    case SSL_ERROR_ZERO_RETURN:
        return 0; /* close_notify: the end of the stream */
    case SSL_ERROR_SYSCALL:
        t->failed = 1;
        ERR_clear_error();
        return sys ? -sys : -ECONNRESET;
    default: {
        t->failed = 1;
        char why[160];
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof why);
        ERR_clear_error();
        mpm__log(c->srv, MPM_LOG_DEBUG, "TLS: %s", why);
        return -EPROTO;
    }
    }
}

/* After each read of the socket OpenSSL makes: with read-ahead it asks for
 * a whole buffer, so a short read means the socket is dry (what
 * mpm__conn_saw records for a would-block), and one read fetches a record
 * with its header instead of two. */
static long note_socket_read(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
                             int ret, size_t *processed)
{
    (void)argp;
    (void)argi;
    (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
        mpm__conn_t *c = (mpm__conn_t *)BIO_get_callback_arg(b);
        c->in_dry = ret <= 0 || !processed || *processed < len;
    }
    return ret;
}

static int tls_open(mpm__conn_t *c)
{
    tls_conn_t *t = calloc(1, sizeof(*t));
    c->tp_state = t;
    if (!t)
        return MPM_ENOMEM;
    t->ssl = SSL_new(c->srv->tls->ctx[0]);
    if (!t->ssl || SSL_set_fd(t->ssl, c->fd) != 1) {
        ERR_clear_error();
        return MPM_ENOMEM;
    }
    SSL_set_accept_state(t->ssl);
    SSL_set_read_ahead(t->ssl, 1);
    BIO *rbio = SSL_get_rbio(t->ssl);
    BIO_set_callback_arg(rbio, (char *)c);
    BIO_set_callback_ex(rbio, note_socket_read);
    return 0;
}

static int tls_handshake(mpm__conn_t *c)
{
    tls_conn_t *t = state_of(c);
    call_begins();
    int ret = SSL_do_handshake(t->ssl);
    if (ret == 1)
        return 0;
    unsigned long e = ERR_peek_last_error();
    ssize_t rc = tls_failure(c, ret);
    if (mpm__would_block(rc))
        return (int)rc;
    char why[160] = "connection closed";
    if (e)
        ERR_error_string_n(e, why, sizeof why);
    else if (rc < 0)
        snprintf(why, sizeof why, "%s", strerror((int)-rc));
    mpm__conn_take_peer(c);
    mpm__log(c->srv, MPM_LOG_INFO, "TLS handshake with %s failed: %s", c->remote, why);
    return rc < 0 ? (int)rc : -ECONNRESET;
}

static ssize_t tls_recv(mpm__conn_t *c, void *buf, size_t len)
{
    tls_conn_t *t = state_of(c);
    size_t got = 0;
    call_begins();
    if (SSL_read_ex(t->ssl, buf, len, &got) == 1)
        return (ssize_t)got; /* in_dry: note_socket_read */
    return tls_failure(c, 0);
}

/* The bytes to offer: the owed count after a blocked write, else the first
 * iovec alone when large, else as many as fit the gather buffer. */
static const void *write_span(tls_conn_t *t, const struct iovec *iov, int iovcnt, size_t *len)
{
    size_t want = t->write_retry;
    if (iovcnt == 1 || iov[0].iov_len >= TLS_GATHER ||
        (want && want <= iov[0].iov_len)) {
        *len = want ? want : iov[0].iov_len;
        return *len <= iov[0].iov_len ? iov[0].iov_base : NULL;
    }
    size_t limit = want && want < TLS_GATHER ? want : TLS_GATHER, used = 0;
    for (int i = 0; i < iovcnt && used < limit; i++) {
        size_t n = iov[i].iov_len < limit - used ? iov[i].iov_len : limit - used;
        memcpy(gather_buf + used, iov[i].iov_base, n);
        used += n;
    }
    *len = used;
    return want && used < want ? NULL : gather_buf;
}

static ssize_t tls_sendv(mpm__conn_t *c, const struct iovec *iov, int iovcnt)
{
    tls_conn_t *t = state_of(c);
    size_t len = 0;
    const void *buf = write_span(t, iov, iovcnt, &len);
    if (!buf)
        return -EPROTO; /* the caller changed bytes OpenSSL still owes */
    if (len == 0)
        return 0;
    size_t done = 0;
    call_begins();
    if (SSL_write_ex(t->ssl, buf, len, &done) == 1) {
        t->write_retry = 0;
        c->out_dry = 0;
        return (ssize_t)done;
    }
    ssize_t rc = tls_failure(c, 0);
    if (mpm__would_block(rc))
        t->write_retry = len;
    return rc == 0 ? -EPIPE : rc;
}

static size_t tls_pending(const mpm__conn_t *c)
{
    const tls_conn_t *t = state_of(c);
    return t && t->ssl && SSL_has_pending(t->ssl) ? 1 : 0;
}

/* close_notify (best effort: the socket is non-blocking and we do not
 * wait for the peer's), then the TCP half-close a lingering close needs. */
static void tls_shutdown_write(mpm__conn_t *c)
{
    tls_conn_t *t = state_of(c);
    if (t && t->ssl && !t->failed && SSL_is_init_finished(t->ssl)) {
        ERR_clear_error();
        (void)SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
    (void)shutdown(c->fd, SHUT_WR);
}

static void tls_close(mpm__conn_t *c)
{
    tls_conn_t *t = state_of(c);
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
    c->tp_state = NULL;
}

static const char *tls_info(const mpm__conn_t *c, mpm__tp_info_t what)
{
    const tls_conn_t *t = state_of(c);
    if (!t || !t->ssl)
        return NULL;
    switch (what) {
    case MPM__TP_SNI:
        return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
    case MPM__TP_PROTOCOL:
        return SSL_get_version(t->ssl);
    case MPM__TP_CIPHER:
        return SSL_get_cipher_name(t->ssl);
    }
    return NULL;
}

/* The TLS record header: content type, version, length (RFC 8446 §5.1). */
#define TLS_RECORD_HEADER 5
#define TLS_CONTENT_HANDSHAKE 22
#define TLS_RECORD_MAX (16384 + 2048) /* the largest ciphertext any version allows */

/* The ClientHello's first record, whole: a handshake that begins now will
 * not stop to wait for the client halfway through its first message. */
static int tls_first_flight_in(const mpm__conn_t *c)
{
    unsigned char h[TLS_RECORD_HEADER];
    ssize_t n = recv(c->fd, h, sizeof h, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1; /* dry: an edge comes */
    if (n == 0 || h[0] != TLS_CONTENT_HANDSHAKE)
        return 1; /* closed, or not TLS: the handshake says so at once */
    if (n < (ssize_t)sizeof h)
        return 0;
    size_t want = sizeof h + ((size_t)h[3] << 8 | h[4]);
    int have = 0;
    if (want > sizeof h + TLS_RECORD_MAX || ioctl(c->fd, FIONREAD, &have) != 0)
        return 1;
    return (size_t)have >= want;
}

/* sendfile is NULL: file bodies are read and encrypted (response.c). */
#define TLS_TRANSPORT_OPS                                                                          \
    .name = "tls", .open = tls_open, .handshake = tls_handshake, .recv = tls_recv,                \
    .sendv = tls_sendv, .sendfile = NULL, .pending = tls_pending,                                  \
    .shutdown_write = tls_shutdown_write, .close = tls_close, .info = tls_info,                   \
    .first_flight_in = tls_first_flight_in

const mpm__transport_t mpm__transport_tls_pinned = {TLS_TRANSPORT_OPS, .pinned = 1};
const mpm__transport_t mpm__transport_tls_parked = {TLS_TRANSPORT_OPS, .pinned = 0};
