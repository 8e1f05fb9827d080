/* A small blocking TLS (OpenSSL 3) client for tests, the TLS counterpart of
 * client.h: connect with or without SNI, verify the server against one
 * given certificate file (so the wrong certificate fails the handshake),
 * send requests and read responses (Content-Length, chunked, or until
 * close) on a kept-alive connection, save and offer sessions for
 * resumption, and tell what was negotiated.
 *
 * Results are the TC_* codes of client.h, plus TTLS_EHANDSHAKE and
 * TTLS_ETLS. Every wait takes a bound in milliseconds; nothing sleeps.
 * A ttls_conn_t is used by one thread at a time; a context (SSL_CTX) may be
 * shared by connections on several threads, as OpenSSL allows. */
#ifndef MPM_TEST_TLS_CLIENT_H
#define MPM_TEST_TLS_CLIENT_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "client.h"

enum ttls_result {
    TTLS_EHANDSHAKE = -10, /* the handshake failed (alert, verification, close) */
    TTLS_ETLS = -11,       /* a TLS error after the handshake */
};

/* Name of a TC_* or TTLS_* code, for messages. */
const char *ttls_result_name(int rc);

/* A client context. trust_pem: the one certificate (PEM file) the server
 * must present, checked with the name given to ttls_connect (SNI) when
 * there is one; NULL: no verification at all (to look at whatever the
 * server sends). max_version: TLS1_2_VERSION, TLS1_3_VERSION, or 0 for the
 * library's highest. Session tickets are accepted. NULL on failure (the
 * OpenSSL error queue is printed). Free with SSL_CTX_free(). */
SSL_CTX *ttls_ctx_new(const char *trust_pem, int max_version);

typedef struct ttls_conn {
    int fd;       /* -1 when closed */
    SSL *ssl;
    char *buf;    /* decrypted bytes received and not yet consumed */
    size_t len;
    size_t cap;
    int eof;      /* the server closed (close_notify or plain EOF) */
    long verify;  /* X509_V_OK, or why verification failed */
} ttls_conn_t;

/* Connects to 127.0.0.1:port and completes the handshake within timeout_ms.
 * sni: the server name to send (and to verify, when ctx verifies), or NULL
 * to send none. resume: a session to offer (not taken over; may be NULL).
 * Returns TC_OK, TTLS_EHANDSHAKE (c->verify says whether verification was
 * the cause), or a TC_* code for the TCP connect. c is closed on failure. */
int ttls_connect(ttls_conn_t *c, SSL_CTX *ctx, int port, const char *sni,
                 const SSL_SESSION *resume, int timeout_ms);
/* A handshake whose ClientHello arrives in two parts: ttls_start_split
 * connects and sends only the first `first` bytes of the hello (the rest
 * is kept in c); ttls_finish_split sends the rest and completes the
 * handshake. Between the two the test does what it wants to see happen
 * while the server holds half a hello. Results as for ttls_connect; c is
 * closed on failure. */
int ttls_start_split(ttls_conn_t *c, SSL_CTX *ctx, int port, const char *sni, size_t first,
                     int timeout_ms);
int ttls_finish_split(ttls_conn_t *c, int timeout_ms);
/* Sends close_notify (without waiting), closes and frees; safe on a zeroed
 * or closed connection. */
void ttls_close(ttls_conn_t *c);

/* Sends all bytes. TC_OK, TC_RESET, TC_TIMEOUT or TTLS_ETLS. */
int ttls_send(ttls_conn_t *c, const void *data, size_t len, int timeout_ms);
/* Reads one full response (not to a HEAD request) into r, which the caller
 * frees with tc_response_free() in every case. Returns TC_OK, TC_CLOSED
 * (closed before a complete response), TC_RESET, TC_TIMEOUT, TC_PROTO or
 * TTLS_ETLS. */
int ttls_read_response(ttls_conn_t *c, tc_response_t *r, int timeout_ms);
/* ttls_send of raw, then ttls_read_response. */
int ttls_request(ttls_conn_t *c, const char *raw, tc_response_t *r, int timeout_ms);
/* Reads (without consuming) until the bytes received so far contain
 * needle: for a response that is still streaming. TC_OK, or why not. */
int ttls_read_until(ttls_conn_t *c, const char *needle, int timeout_ms);
/* Reads and drops until the server closes: TC_CLOSED, TC_RESET or
 * TC_TIMEOUT; *extra (when not NULL): how many decrypted bytes came before
 * the close, those already received and not consumed included. */
int ttls_wait_close(ttls_conn_t *c, int timeout_ms, size_t *extra);

/* TLS 1.3: sends a KeyUpdate asking the server to update its keys too
 * (written at once, with no application data). TC_OK, or why not. */
int ttls_key_update(ttls_conn_t *c, int timeout_ms);
/* TLS 1.2: starts a client-initiated renegotiation and drives it until it
 * completes (TC_OK) or fails: TTLS_EHANDSHAKE (the server refused),
 * TC_CLOSED, TC_RESET or TC_TIMEOUT. */
int ttls_renegotiate(ttls_conn_t *c, int timeout_ms);

/* The session to offer on a later connection (the latest ticket, so call
 * it after reading a response: TLS 1.3 tickets come after the handshake),
 * or NULL. Free with SSL_SESSION_free(). */
SSL_SESSION *ttls_session(ttls_conn_t *c);
/* Whether this connection's handshake resumed the offered session. */
int ttls_reused(const ttls_conn_t *c);
/* "TLSv1.3", "TLSv1.2" ... */
const char *ttls_version(const ttls_conn_t *c);
/* The common name of the server's certificate into buf; 0, or -1 when there
 * is none. */
int ttls_peer_cn(const ttls_conn_t *c, char *buf, size_t cap);
/* Whether the server's certificate is the one in the PEM file. */
int ttls_peer_is(const ttls_conn_t *c, const char *cert_pem);

/* The first flight of a handshake (the ClientHello record, with sni when
 * not NULL) as ctx would send it, into out; its length, or -1. For tests
 * that send part of one on a plain socket. */
int ttls_client_hello(SSL_CTX *ctx, const char *sni, unsigned char *out, size_t cap);

#endif
