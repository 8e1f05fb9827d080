/* TLS contexts: one per certificate, built from the settings before any
 * fork and again at each restart; SNI and ALPN choices. */
#include "tls.h"

#include <errno.h>
#include <stdarg.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OpenSSL's reason for a failure ("no start line", "key values
 * mismatch"): the first error queued is the cause, the later ones are the
 * layers it went up through. Leaves the thread's error queue empty. */
static const char *openssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_error();
    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return MPM_ECONFIG;
}

int mpm__tls_check_ciphers(const char *list, int tls13, char *err, size_t errlen)
{
    char why[160];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return fail(err, errlen, "OpenSSL cannot start: %s", openssl_reason(why, sizeof why));
    int ok = tls13 ? SSL_CTX_set_ciphersuites(ctx, list) : SSL_CTX_set_cipher_list(ctx, list);
    SSL_CTX_free(ctx);
    if (!ok)
        return fail(err, errlen, "'%s' selects no cipher (%s)", list,
                    openssl_reason(why, sizeof why));
    return 0;
}

/* ---- choices made during the handshake ---- */

/* SNI: the first certificate whose names cover the asked name (the
 * default one first), else the default. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const mpm__tls_t *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_NOACK;
    for (unsigned i = 0; i < t->nctx; i++) {
        X509 *x = SSL_CTX_get0_certificate(t->ctx[i]);
        if (x && X509_check_host(x, name, 0, 0, NULL) == 1) {
            if (i > 0 && !SSL_set_SSL_CTX(ssl, t->ctx[i]))
                return SSL_TLSEXT_ERR_ALERT_FATAL;
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: HTTP/1.1 only. A client that offers protocols, none of them
 * http/1.1, gets the fatal no_application_protocol alert RFC 7301 §3.2
 * asks for; one that offers none is served. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *chosen = NULL;
    if (SSL_select_next_proto(&chosen, outlen, ours, sizeof ours - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

/* ---- building ---- */

static int set_policy(SSL_CTX *ctx, const mpm__settings_t *s, char *err, size_t errlen)
{
    char why[160];
    unsigned p = s->tls_protocols;
    if (!SSL_CTX_set_min_proto_version(ctx, p & MPM__TLS_1_2 ? TLS1_2_VERSION : TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, p & MPM__TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION))
        return fail(err, errlen, "TLSProtocol: %s", openssl_reason(why, sizeof why));
    if (!SSL_CTX_set_cipher_list(ctx, s->tls_ciphers))
        return fail(err, errlen, "TLSCiphers: %s", openssl_reason(why, sizeof why));
    if (!SSL_CTX_set_ciphersuites(ctx, s->tls_ciphersuites))
        return fail(err, errlen, "TLSCipherSuites: %s", openssl_reason(why, sizeof why));
    /* No renegotiation (a client-driven CPU sink), server's cipher order,
     * a peer that closes without close_notify reads as end of file (most
     * HTTP clients do), and OpenSSL's buffers are freed while empty: an
     * idle connection keeps no 34 KB of record buffers. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Sessions resume by ticket only: a per-process cache would not be
     * found by the next child, and tickets need none. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    static const unsigned char sid_ctx[] = "mpmlib";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    if (s->tls_session_tickets) {
        SSL_CTX_set_num_tickets(ctx, 1);
        SSL_CTX_set_timeout(ctx, (long)(s->tls_ticket_rotation_ms / 1000));
        mpm__tls_keys_attach(ctx);
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    return 0;
}

/* A clear reason for a file that cannot be opened, before OpenSSL's. */
static int check_readable(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, errlen, "TLSCertificate: %s %s: %s", what, path, strerror(errno));
    fclose(f);
    return 0;
}

static int load_cert(SSL_CTX *ctx, const mpm__cert_spec_t *cs, char *err, size_t errlen)
{
    char why[160];
    const char *key = cs->key[0] ? cs->key : cs->cert;
    if (check_readable("certificate", cs->cert, err, errlen) ||
        check_readable("key", key, err, errlen))
        return MPM_ECONFIG;
    if (SSL_CTX_use_certificate_chain_file(ctx, cs->cert) != 1)
        return fail(err, errlen, "TLSCertificate: certificate %s: %s", cs->cert,
                    openssl_reason(why, sizeof why));
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        return fail(err, errlen, "TLSCertificate: key %s: %s", key,
                    openssl_reason(why, sizeof why));
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail(err, errlen, "TLSCertificate: key %s does not match certificate %s (%s)", key,
                    cs->cert, openssl_reason(why, sizeof why));
    return 0;
}

SSL_CTX *mpm__tls_context_new(mpm__tls_t *t, const mpm__cert_spec_t *cert, char *err,
                              size_t errlen)
{
    char why[160];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        fail(err, errlen, "OpenSSL cannot make a context: %s", openssl_reason(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_app_data(ctx, t);
    if (set_policy(ctx, &t->srv->cfg.s, err, errlen) || load_cert(ctx, cert, err, errlen)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, t);
    return ctx;
}

/* Every certificate's context, or none: all-or-nothing into out. */
static int build_all(mpm__tls_t *t, SSL_CTX **out, char *err, size_t errlen)
{
    const mpm__settings_t *s = &t->srv->cfg.s;
    for (unsigned i = 0; i < s->ntls_cert; i++) {
        out[i] = mpm__tls_context_new(t, &s->tls_cert[i], err, errlen);
        if (!out[i]) {
            while (i > 0)
                SSL_CTX_free(out[--i]);
            return MPM_ECONFIG;
        }
    }
    return 0;
}

static int has_tls_listener(const mpm_server_t *srv)
{
    for (unsigned i = 0; i < srv->nlisteners; i++)
        if (srv->listeners[i].tls)
            return 1;
    return 0;
}

int mpm__tls_start(mpm_server_t *srv)
{
    if (!has_tls_listener(srv))
        return 0;
    char err[256];
    mpm__tls_t *t = calloc(1, sizeof(*t));
    if (!t) {
        mpm__server_fail(srv, "out of memory for TLS");
        return MPM_ENOMEM;
    }
    t->srv = srv;
    t->keys = mpm__tls_keys_new(srv->cfg.s.tls_ticket_rotation_ms);
    if (!t->keys) {
        mpm__server_fail(srv, "TLS session ticket keys: %s", strerror(errno));
        free(t);
        return MPM_ECONFIG;
    }
    srv->tls = t; /* the contexts find the keys through it */
    if (build_all(t, t->ctx, err, sizeof err) != 0) {
        mpm__server_fail(srv, "%s", err);
        mpm__tls_free(srv);
        return MPM_ECONFIG;
    }
    t->nctx = srv->cfg.s.ntls_cert;
    const mpm__transport_t *tp =
        srv->cfg.s.tls_pinning ? &mpm__transport_tls_pinned : &mpm__transport_tls_parked;
    for (unsigned i = 0; i < srv->nlisteners; i++)
        if (srv->listeners[i].tls)
            srv->listeners[i].tp = tp;
    return 0;
}

void mpm__tls_reload(mpm_server_t *srv)
{
    mpm__tls_t *t = srv->tls;
    if (!t)
        return;
    SSL_CTX *fresh[MPM__MAX_CERTS];
    char err[256];
    if (build_all(t, fresh, err, sizeof err) != 0) {
        mpm__log(srv, MPM_LOG_ERROR, "restart: keeping the TLS certificates loaded before: %s",
                 err);
        return;
    }
    for (unsigned i = 0; i < t->nctx; i++) {
        SSL_CTX_free(t->ctx[i]);
        t->ctx[i] = fresh[i];
    }
    mpm__log(srv, MPM_LOG_NOTICE, "restart: TLS certificates read again");
}

void mpm__tls_free(mpm_server_t *srv)
{
    mpm__tls_t *t = srv->tls;
    if (!t)
        return;
    for (unsigned i = 0; i < t->nctx; i++)
        SSL_CTX_free(t->ctx[i]);
    mpm__tls_keys_free(t->keys);
    free(t);
    srv->tls = NULL;
}
