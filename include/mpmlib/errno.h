/* mpmlib error codes.
 *
 * Every function that can fail returns 0 (or a non-negative count) on success
 * and a negative MPM_E* code on failure. System errors are -errno, so they
 * compare equal to libuv's UV_E* codes on Unix; library-specific codes live in
 * -5000..-5099, clear of errno and libuv ranges. */
#ifndef MPMLIB_ERRNO_H
#define MPMLIB_ERRNO_H

#include <errno.h>

/* X(name, value, message): the one table behind the enum, mpm_strerror() and
 * mpm_err_name(). */
#define MPM_ERRNO_MAP(X)                                                       \
    X(EINVAL, -EINVAL, "invalid argument")                                     \
    X(ENOMEM, -ENOMEM, "out of memory")                                        \
    X(EADDRINUSE, -EADDRINUSE, "address already in use")                       \
    X(EADDRNOTAVAIL, -EADDRNOTAVAIL, "address not available")                  \
    X(EACCES, -EACCES, "permission denied")                                    \
    X(ENOENT, -ENOENT, "no such file or directory")                            \
    X(EMFILE, -EMFILE, "too many open files")                                  \
    X(EPIPE, -EPIPE, "broken pipe")                                            \
    X(ECONNRESET, -ECONNRESET, "connection reset by peer")                     \
    X(ETIMEDOUT, -ETIMEDOUT, "timed out")                                      \
    X(EAGAIN, -EAGAIN, "resource temporarily unavailable")                     \
    X(EINTR, -EINTR, "interrupted")                                            \
    X(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                            \
    X(ERANGE, -ERANGE, "value out of range")                                   \
    X(ECONFIG, -5000, "invalid configuration")                                 \
    X(ENOTSUP, -5001, "not available in this build")                           \
    X(ESTATE, -5002, "call not valid in the current state")                    \
    X(EPROTO, -5003, "protocol error")                                         \
    X(ETLS, -5004, "TLS error")                                                \
    X(ETOOLARGE, -5005, "request body exceeds the limit")                      \
    X(ECLOSED, -5006, "connection closed")                                     \
    X(ECHILD, -5007, "child process failed to start")

enum mpm_errno {
#define MPM__ERRNO_ENUM(name, value, msg) MPM_##name = (value),
    MPM_ERRNO_MAP(MPM__ERRNO_ENUM)
#undef MPM__ERRNO_ENUM
};

#endif
