/* Listeners: parsing Listen addresses, opening sockets, adopting the host's
 * sockets, closing what we opened. Addresses are numeric only: resolving
 * names would block in the resolver and make "Listen localhost:80" mean
 * whatever /etc/hosts says at start-up. */
#include "internal.h"
#include "fdreg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define UNIX_PREFIX "unix:"
#define UNIX_PREFIX_LEN (sizeof UNIX_PREFIX - 1)

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* The system's wording of errno e ("Address already in use"), without the
 * shared buffer of strerror(). */
static const char *sys_reason(int e)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *d = strerrordesc_np(e);
    if (d)
        return d;
#endif
    return mpm_strerror(-e);
}

/* ------------------------------------------------------------------ */
/* Parsing                                                            */

/* "8080" -> 8080. Returns -1 unless the whole text is a port 0..65535. */
static int parse_port(const char *text)
{
    long port = 0;
    if (!*text || strlen(text) > 5)
        return -1;
    for (const char *p = text; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        port = port * 10 + (*p - '0');
    }
    return port <= 65535 ? (int)port : -1;
}

static int bad_port(const char *port, char *err, size_t errlen)
{
    if (!*port)
        return fail(err, errlen, MPM_ECONFIG, "missing port (use HOST:PORT, [V6]:PORT or PORT)");
    return fail(err, errlen, MPM_ECONFIG, "'%s' is not a port number (0-65535)", port);
}

static int parse_unix(const char *path, struct sockaddr_storage *ss, socklen_t *len, char *err,
                      size_t errlen)
{
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    size_t n = strlen(path);
    if (n == 0)
        return fail(err, errlen, MPM_ECONFIG, "unix socket path is empty (use unix:/path)");
    if (n >= sizeof un->sun_path)
        return fail(err, errlen, MPM_ECONFIG, "unix socket path too long (%zu bytes, at most %zu)",
                    n, sizeof un->sun_path - 1);
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

static void fill_inet(struct sockaddr_storage *ss, socklen_t *len, struct in_addr addr, int port)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    memset(in, 0, sizeof *in);
    in->sin_family = AF_INET;
    in->sin_addr = addr;
    in->sin_port = htons((uint16_t)port);
    *len = sizeof *in;
}

/* "[::1]:8080" */
static int parse_bracketed_v6(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                              char *err, size_t errlen)
{
    const char *close = strchr(text, ']');
    char host[INET6_ADDRSTRLEN + 1];
    if (!close)
        return fail(err, errlen, MPM_ECONFIG, "'%s': missing ']'", text);
    size_t n = (size_t)(close - text - 1);
    if (n >= sizeof host)
        return fail(err, errlen, MPM_ECONFIG, "'%s' is not a numeric IPv6 address", text);
    memcpy(host, text + 1, n);
    host[n] = '\0';
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    memset(in6, 0, sizeof *in6);
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
        return fail(err, errlen, MPM_ECONFIG, "'%s' is not a numeric IPv6 address", host);
    if (close[1] != ':')
        return fail(err, errlen, MPM_ECONFIG, "missing port after '[%s]' (use [%s]:PORT)", host,
                    host);
    int port = parse_port(close + 2);
    if (port < 0)
        return bad_port(close + 2, err, errlen);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *len = sizeof *in6;
    return 0;
}

/* "127.0.0.1:8080", "*:8080" */
static int parse_host_port(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err,
                           size_t errlen)
{
    const char *colon = strrchr(text, ':');
    char host[256];
    struct in_addr addr;
    if (!colon)
        return fail(err, errlen, MPM_ECONFIG, "'%s': missing port (use HOST:PORT or PORT)", text);
    size_t n = (size_t)(colon - text);
    if (memchr(text, ':', n))
        return fail(err, errlen, MPM_ECONFIG,
                    "'%s': an IPv6 address needs brackets, as in [::1]:8080", text);
    if (n == 0 || n >= sizeof host)
        return fail(err, errlen, MPM_ECONFIG, "'%s': missing or bad host", text);
    memcpy(host, text, n);
    host[n] = '\0';
    if (strcmp(host, "*") == 0)
        addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &addr) != 1)
        return fail(err, errlen, MPM_ECONFIG,
                    "'%s' is not a numeric IP address (host names are not resolved)", host);
    int port = parse_port(colon + 1);
    if (port < 0)
        return bad_port(colon + 1, err, errlen);
    fill_inet(ss, len, addr, port);
    return 0;
}

int mpm__parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err,
                    size_t errlen)
{
    socklen_t ignored;
    if (!len)
        len = &ignored;
    if (!text || !*text)
        return fail(err, errlen, MPM_ECONFIG, "empty address");
    if (strncmp(text, UNIX_PREFIX, UNIX_PREFIX_LEN) == 0)
        return parse_unix(text + UNIX_PREFIX_LEN, ss, len, err, errlen);
    if (text[0] == '[')
        return parse_bracketed_v6(text, ss, len, err, errlen);
    if (strspn(text, "0123456789") == strlen(text)) {
        int port = parse_port(text);
        if (port < 0)
            return bad_port(text, err, errlen);
        fill_inet(ss, len, (struct in_addr){.s_addr = htonl(INADDR_ANY)}, port);
        return 0;
    }
    return parse_host_port(text, ss, len, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Opening                                                            */

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* Whether some process accepts connections on the unix socket un: 1 yes,
 * 0 no (refused: a stale file left by a dead server), -errno if unknown.
 * The probe is registered for owner like any fd of ours, short-lived as it
 * is: another server's master forking meanwhile must not pass it on. */
static int unix_socket_in_use(const void *owner, const struct sockaddr_un *un, socklen_t len)
{
    /* Non-blocking, so a listener with a full backlog answers EAGAIN
     * instead of making us wait: it is in use all the same. */
    mpm__fdreg_lock();
    int fd =
        mpm__fdreg_keep(owner, socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd < 0)
        return -errno;
    int rc = connect(fd, (const struct sockaddr *)un, len);
    int e = errno;
    mpm__fdreg_close(fd);
    if (rc == 0 || e == EAGAIN || e == EINPROGRESS)
        return 1;
    if (e == ECONNREFUSED)
        return 0;
    return -e;
}

/* Before binding unix:/path: removes a stale socket file that nobody
 * listens on; refuses anything else that is in the way. */
static int clear_stale_unix_socket(const void *owner, const char *name,
                                   const struct sockaddr_un *un, socklen_t len, char *err,
                                   size_t errlen)
{
    struct stat st;
    if (lstat(un->sun_path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return fail(err, errlen, -errno, "Listen %s: %s", name, sys_reason(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        return fail(err, errlen, MPM_EADDRINUSE,
                    "Listen %s: %s (the path exists and is not a socket)", name,
                    sys_reason(EADDRINUSE));
    int in_use = unix_socket_in_use(owner, un, len);
    if (in_use > 0)
        return fail(err, errlen, MPM_EADDRINUSE, "Listen %s: %s (a server is listening there)",
                    name, sys_reason(EADDRINUSE));
    if (in_use < 0)
        return fail(err, errlen, in_use, "Listen %s: %s", name, sys_reason(-in_use));
    if (unlink(un->sun_path) != 0 && errno != ENOENT)
        return fail(err, errlen, -errno, "Listen %s: cannot remove stale socket: %s", name,
                    sys_reason(errno));
    return 0;
}

static int set_int_option(int fd, int level, int opt, int value)
{
    if (setsockopt(fd, level, opt, &value, sizeof value) != 0)
        return -errno;
    return 0;
}

/* Socket options by family: address reuse for TCP (a restart must not wait
 * out TIME_WAIT), and v6 sockets that take v6 only, so "[::]:80" and
 * "*:80" can be listened on together. */
static int prepare_socket(int fd, int family)
{
    int rc = 0;
    if (family == AF_INET || family == AF_INET6)
        rc = set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && family == AF_INET6)
        rc = set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    return rc;
}

/* Opens one configured address into l. */
static int open_address(const void *owner, const char *addr, int backlog, mpm__listener_t *l,
                        char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char why[200];
    snprintf(l->name, sizeof l->name, "%s", addr);
    if (mpm__parse_addr(addr, &ss, &len, why, sizeof why))
        return fail(err, errlen, MPM_ECONFIG, "Listen %s: %s", addr, why);
    if (ss.ss_family == AF_UNIX) {
        int rc =
            clear_stale_unix_socket(owner, addr, (struct sockaddr_un *)&ss, len, err, errlen);
        if (rc)
            return rc;
    }
    mpm__fdreg_lock();
    int fd = mpm__fdreg_keep(owner,
                             socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd < 0)
        return fail(err, errlen, -errno, "Listen %s: %s", addr, sys_reason(errno));
    int rc = prepare_socket(fd, ss.ss_family);
    int bound = 0;
    if (rc == 0)
        rc = bind(fd, (struct sockaddr *)&ss, len) == 0 ? (bound = 1, 0) : -errno;
    if (rc == 0 && listen(fd, backlog) != 0)
        rc = -errno;
    if (rc == 0 && (rc = bound_port(fd)) >= 0) {
        l->fd = fd;
        l->owned = 1;
        l->port = rc;
        l->tp = &mpm__transport_tcp;
        return 0;
    }
    mpm__fdreg_close(fd);
    /* A failure after bind leaves the socket file we made: remove it (an
     * error here changes nothing for the caller). */
    if (ss.ss_family == AF_UNIX && bound)
        (void)unlink(((struct sockaddr_un *)&ss)->sun_path);
    return fail(err, errlen, rc, "Listen %s: %s", addr, sys_reason(-rc));
}

/* DeferAccept / TLSDeferAccept: the kernel keeps a new connection to itself
 * until the client's first bytes arrive (httpd's "AcceptFilter ... data"),
 * so a client that connects and says nothing costs no process, thread or
 * admission slot for that long. Whole seconds, rounded up. A socket that
 * is not TCP (a unix one) has no such option and accepts as before; a
 * host's fd is left as the host made it. Returns whether it is set. */
static int defer_accept(int fd, int64_t ms)
{
    if (ms <= 0)
        return 0;
    int seconds = (int)((ms + 999) / 1000);
    return set_int_option(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, seconds) == 0;
}

static int get_int_option(int fd, int level, int opt, int *value)
{
    socklen_t len = sizeof *value;
    if (getsockopt(fd, level, opt, value, &len) != 0)
        return -errno;
    return 0;
}

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -errno;
    if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
        return -errno;
    return 0;
}

/* Adopts a socket the host opened: it must be a stream socket; we make it
 * listen if it only was bound, and non-blocking. Its close-on-exec flag is
 * the host's business and stays as it is; so does closing it. */
static int adopt_host_fd(int fd, int backlog, mpm__listener_t *l, char *err, size_t errlen)
{
    int type = 0, accepting = 0;
    snprintf(l->name, sizeof l->name, "fd:%d", fd);
    int rc = get_int_option(fd, SOL_SOCKET, SO_TYPE, &type);
    if (rc == -ENOTSOCK || rc == -EBADF || (rc == 0 && type != SOCK_STREAM))
        return fail(err, errlen, MPM_EINVAL, "listen fd %d: not a stream socket", fd);
    if (rc == 0)
        rc = get_int_option(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting);
    if (rc == 0 && !accepting && listen(fd, backlog) != 0)
        rc = -errno;
    if (rc == 0)
        rc = set_nonblocking(fd);
    if (rc == 0 && (rc = bound_port(fd)) >= 0) {
        l->fd = fd;
        l->owned = 0;
        l->port = rc;
        l->tp = &mpm__transport_tcp;
        return 0;
    }
    return fail(err, errlen, rc, "listen fd %d: %s", fd, sys_reason(-rc));
}

int mpm__listeners_open(const mpm__settings_t *s, mpm__listener_t *out, unsigned *n, char *err,
                        size_t errlen)
{
    return mpm__listeners_open_owned(out, s, out, n, err, errlen);
}

int mpm__listeners_open_owned(const void *owner, const mpm__settings_t *s, mpm__listener_t *out,
                              unsigned *n, char *err, size_t errlen)
{
    unsigned count = 0;
    int rc = 0;
    *n = 0;
    /* Addresses first, in Listen order, then the host's fds. */
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (unsigned i = 0; i < s->nlisten && i < MPM__MAX_LISTENERS && rc == 0; i++) {
            const mpm__listen_spec_t *spec = &s->listen[i];
            int is_host = spec->host_fd >= 0;
            if (is_host != pass)
                continue;
            mpm__listener_t *l = &out[count];
            l->fd = -1;
            rc = is_host ? adopt_host_fd(spec->host_fd, s->listen_backlog, l, err, errlen)
                         : open_address(owner, spec->addr, s->listen_backlog, l, err, errlen);
            if (rc == 0) {
                l->tls = spec->tls;
                int64_t defer = l->tls ? s->tls_defer_accept_ms : s->defer_accept_ms;
                l->deferred = l->owned && defer_accept(l->fd, defer);
                count++;
            }
        }
    }
    if (rc) {
        mpm__listeners_close(out, count);
        return rc;
    }
    *n = count;
    return 0;
}

void mpm__listeners_close(mpm__listener_t *l, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (l[i].fd < 0 || !l[i].owned)
            continue;
        mpm__fdreg_close(l[i].fd);
        l[i].fd = -1;
        /* We created the socket file at bind; leave no stale file behind. */
        if (strncmp(l[i].name, UNIX_PREFIX, UNIX_PREFIX_LEN) == 0)
            (void)unlink(l[i].name + UNIX_PREFIX_LEN);
    }
}
