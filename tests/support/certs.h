/* Certificates for TLS tests, made at test time by the `openssl` command
 * line tool: one self-signed ECDSA P-256 certificate per name (the test
 * client trusts that certificate file directly; no CA), in a private
 * directory that tcert_dir_remove() deletes with everything in it.
 *
 * Nothing here is thread-safe; call it from the test's main thread. */
#ifndef MPM_TEST_CERTS_H
#define MPM_TEST_CERTS_H

#include <stddef.h>

#define TCERT_PATH_MAX 256

/* A certificate and its key, as files. */
typedef struct tcert {
    char cert[TCERT_PATH_MAX]; /* PEM certificate */
    char key[TCERT_PATH_MAX];  /* PEM private key, unencrypted */
} tcert_t;

/* Makes a fresh private directory (mkdtemp under $TMPDIR or /tmp) into
 * dir (cap bytes). Returns 0, or -1 with errno set. */
int tcert_dir_make(char *dir, size_t cap);

/* Removes the directory and the files in it (no subdirectories expected).
 * Safe on an empty string. */
void tcert_dir_remove(const char *dir);

/* Runs argv (argv[0] searched in PATH) to its end, with stdin from
 * /dev/null, stdout into out_path (NULL: /dev/null) and stderr into
 * err_path (the same path: both into one file; NULL: this process's
 * stderr). Returns its exit status, or -1 if it could not run or was
 * killed by a signal. */
int tcert_run(char *const *argv, const char *out_path, const char *err_path);

/* Whether the openssl command line tool can be run. */
int tcert_tool_available(void);

/* Runs `openssl req -x509` for a new P-256 key and a certificate with
 * subject CN=cn and subjectAltName DNS:cn (plus DNS:extra_dns when not
 * NULL), valid for 2 days, as DIR/STEM.pem and DIR/STEM.key. Returns 0, or
 * -1 (the tool's stderr went to ours). */
int tcert_make(const char *dir, const char *stem, const char *cn, const char *extra_dns,
               tcert_t *out);

/* Writes len bytes to path (replacing it, in place: same inode, as an
 * operator's `cp` over a file would). Returns 0 or -1. */
int tcert_write_file(const char *path, const void *data, size_t len);

/* Copies the file src over dst, in place (tcert_write_file). Returns 0 or
 * -1. */
int tcert_copy_file(const char *src, const char *dst);

#endif
