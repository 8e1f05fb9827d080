/* TLS (OpenSSL 3): the server's contexts, SNI, the session-ticket keys all
 * children share, and the transport that runs under the HTTP engine. */
#ifndef MPM_CORE_TLS_H
#define MPM_CORE_TLS_H

#include "internal.h"

#include <openssl/ssl.h>

typedef struct mpm__tls_keys mpm__tls_keys_t; /* tls_tickets.c */

struct mpm__tls {
    mpm_server_t *srv;
    /* One context per TLSCertificate, in order: ctx[0] is the default and
     * the one every connection starts with; SNI may switch to another. */
    SSL_CTX *ctx[MPM__MAX_CERTS];
    unsigned nctx;
    mpm__tls_keys_t *keys; /* shared by every process of the server */
};
typedef struct mpm__tls mpm__tls_t;

/* Builds the context for one certificate; NULL with the reason in err. */
SSL_CTX *mpm__tls_context_new(mpm__tls_t *t, const mpm__cert_spec_t *cert, char *err,
                              size_t errlen);

/* ---- session tickets (tls_tickets.c) ---- */

/* The shared key area (mmap'd, inherited by children). NULL on failure. */
mpm__tls_keys_t *mpm__tls_keys_new(int64_t rotation_ms);
void mpm__tls_keys_free(mpm__tls_keys_t *k);
/* Makes ctx encrypt and decrypt tickets with the shared keys. */
void mpm__tls_keys_attach(SSL_CTX *ctx);

/* ---- the transports (transport_tls.c) ---- */

/* The same TLS transport, pinned to its thread (TLSPinning On) or free to
 * park on event's loop (TLSPinning Off). */
extern const mpm__transport_t mpm__transport_tls_pinned;
extern const mpm__transport_t mpm__transport_tls_parked;

#endif
