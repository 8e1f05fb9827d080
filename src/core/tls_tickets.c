/* Session-ticket keys shared by every process of a server: made in the
 * master before the first fork, in memory all children map, so a client
 * that resumes on another child is recognised. The key that encrypts new
 * tickets is replaced every TLSSessionTicketKeyRotation by whichever
 * process first needs it after that; the one before keeps decrypting for
 * one more period (such tickets are renewed), so a ticket lives at most two
 * periods. */
#include "tls.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

typedef struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    int64_t born_ms; /* monotonic: the same clock in every process */
} ticket_key_t;

struct mpm__tls_keys {
    /* Process-shared and robust: a child that dies holding it (it holds it
     * for a copy) does not stop the others. */
    pthread_mutex_t lock;
    int64_t rotation_ms;
    ticket_key_t current, previous; /* previous.born_ms 0: none */
};

static int new_key(ticket_key_t *k)
{
    if (RAND_bytes(k->name, sizeof k->name) != 1 || RAND_bytes(k->aes, sizeof k->aes) != 1 ||
        RAND_bytes(k->hmac, sizeof k->hmac) != 1)
        return -1;
    k->born_ms = mpm__now_ms();
    return 0;
}

mpm__tls_keys_t *mpm__tls_keys_new(int64_t rotation_ms)
{
    mpm__tls_keys_t *k =
        mmap(NULL, sizeof(*k), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (k == MAP_FAILED)
        return NULL;
    memset(k, 0, sizeof(*k));
    k->rotation_ms = rotation_ms;
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc == 0) {
        (void)pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        (void)pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        rc = pthread_mutex_init(&k->lock, &a);
        pthread_mutexattr_destroy(&a);
    }
    if (rc != 0 || new_key(&k->current) != 0) {
        munmap(k, sizeof(*k));
        errno = rc ? rc : EIO;
        return NULL;
    }
    return k;
}

void mpm__tls_keys_free(mpm__tls_keys_t *k)
{
    if (!k)
        return;
    pthread_mutex_destroy(&k->lock);
    munmap(k, sizeof(*k));
}

static int keys_lock(mpm__tls_keys_t *k)
{
    int rc = pthread_mutex_lock(&k->lock);
    if (rc == EOWNERDEAD)
        rc = pthread_mutex_consistent(&k->lock);
    return rc;
}

/* The key for a new ticket, rotated first if its period is over. */
static int key_for_encrypt(mpm__tls_keys_t *k, ticket_key_t *out)
{
    if (keys_lock(k) != 0)
        return -1;
    int rc = 0;
    if (mpm__now_ms() - k->current.born_ms >= k->rotation_ms) {
        ticket_key_t next;
        rc = new_key(&next);
        if (rc == 0) {
            k->previous = k->current;
            k->current = next;
        }
    }
    *out = k->current;
    pthread_mutex_unlock(&k->lock);
    return rc;
}

/* The key a ticket names: 1 the current one, 2 the previous one (the
 * ticket is renewed), 0 none (a full handshake). */
static int key_for_decrypt(mpm__tls_keys_t *k, const unsigned char name[16], ticket_key_t *out)
{
    if (keys_lock(k) != 0)
        return 0;
    int64_t now = mpm__now_ms();
    int found = 0;
    if (memcmp(name, k->current.name, 16) == 0 && now - k->current.born_ms < 2 * k->rotation_ms) {
        *out = k->current;
        found = 1;
    } else if (k->previous.born_ms && memcmp(name, k->previous.name, 16) == 0 &&
               now - k->previous.born_ms < 2 * k->rotation_ms) {
        *out = k->previous;
        found = 2;
    }
    pthread_mutex_unlock(&k->lock);
    return found;
}

static int set_hmac_key(EVP_MAC_CTX *hctx, ticket_key_t *key)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key->hmac, sizeof key->hmac),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* OpenSSL's ticket callback: AES-256-CBC and HMAC-SHA256, as its own
 * default keys use, with our shared keys. */
static int on_ticket_key(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    const mpm__tls_t *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    ticket_key_t key;
    int rc = 1;
    if (enc) {
        if (key_for_encrypt(t->keys, &key) != 0 || RAND_bytes(iv, 16) != 1)
            return -1;
        memcpy(name, key.name, 16);
        if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes, iv) != 1)
            rc = -1;
    } else {
        rc = key_for_decrypt(t->keys, name, &key);
        /* TLS 1.3 clients use a ticket once (RFC 8446 C.4): a resumed
         * handshake hands out the next one, or every other reconnect is
         * a full handshake. TLS 1.2 tickets are reused; renewed only when
         * made under the previous key. */
        if (rc == 1 && SSL_version(ssl) == TLS1_3_VERSION)
            rc = 2;
        if (rc && EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes, iv) != 1)
            rc = -1;
    }
    if (rc > 0 && set_hmac_key(hctx, &key) != 0)
        rc = -1;
    OPENSSL_cleanse(&key, sizeof key);
    return rc;
}

void mpm__tls_keys_attach(SSL_CTX *ctx)
{
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
}
