/* Listeners: address parsing, opening TCP / IPv6 / unix sockets, stale unix
 * sockets, address in use, host fds, fd flags. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/config.h"
#include "core/internal.h"

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("'%s' does not contain '%s'", haystack, needle);
}

/* ------------------------------------------------------------------ */
/* mpm__parse_addr                                                    */

static void parse_ok(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char err[256] = "";
    if (mpm__parse_addr(text, ss, len, err, sizeof err) != 0)
        fail_msg("'%s' rejected: %s", text, err);
}

static void assert_v4(const char *text, const char *ip, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char got[INET_ADDRSTRLEN];
    parse_ok(text, &ss, &len);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof *in);
    assert_non_null(inet_ntop(AF_INET, &in->sin_addr, got, sizeof got));
    assert_string_equal(got, ip);
    assert_int_equal(ntohs(in->sin_port), port);
}

static void test_parse_ipv4_forms(void **state)
{
    assert_v4("127.0.0.1:8080", "127.0.0.1", 8080);
    assert_v4("0.0.0.0:0", "0.0.0.0", 0);
    assert_v4("*:8080", "0.0.0.0", 8080);
    assert_v4("8080", "0.0.0.0", 8080);
    assert_v4("65535", "0.0.0.0", 65535);
    assert_v4("10.1.2.3:1", "10.1.2.3", 1);
}

static void test_parse_ipv6(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char got[INET6_ADDRSTRLEN];
    parse_ok("[::1]:8080", &ss, &len);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof *in6);
    assert_int_equal(ntohs(in6->sin6_port), 8080);
    assert_non_null(inet_ntop(AF_INET6, &in6->sin6_addr, got, sizeof got));
    assert_string_equal(got, "::1");
    parse_ok("[::]:0", &ss, &len);
    assert_int_equal(ss.ss_family, AF_INET6);
    parse_ok("[2001:db8::5]:443", &ss, &len);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 443);
}

static void test_parse_unix(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    parse_ok("unix:/tmp/mpm.sock", &ss, &len);
    const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
    assert_int_equal(ss.ss_family, AF_UNIX);
    assert_string_equal(un->sun_path, "/tmp/mpm.sock");
    assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("/tmp/mpm.sock") + 1);

    /* The longest path that fits sun_path, and one byte more. */
    char text[256];
    size_t max = sizeof un->sun_path - 1;
    strcpy(text, "unix:/");
    memset(text + 6, 'a', max - 1);
    text[5 + max] = '\0';
    parse_ok(text, &ss, &len);
    strcat(text, "a");
    char err[256];
    assert_int_equal(mpm__parse_addr(text, &ss, &len, err, sizeof err), MPM_ECONFIG);
    assert_contains(err, "unix socket path too long");
}

static void parse_fails(const char *text, const char *why)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char err[256] = "";
    if (mpm__parse_addr(text, &ss, &len, err, sizeof err) != MPM_ECONFIG)
        fail_msg("'%s' accepted", text ? text : "(null)");
    assert_contains(err, why);
}

static void test_parse_bad(void **state)
{
    parse_fails(NULL, "empty address");
    parse_fails("", "empty address");
    parse_fails("localhost:80",
                "'localhost' is not a numeric IP address (host names are not resolved)");
    parse_fails("example.com:80", "not resolved");
    parse_fails("::1:80", "an IPv6 address needs brackets");
    parse_fails("[::1]", "missing port after '[::1]'");
    parse_fails("[::1]80", "missing port");
    parse_fails("[::1", "missing ']'");
    parse_fails("[zz]:80", "'zz' is not a numeric IPv6 address");
    parse_fails("[127.0.0.1]:80", "not a numeric IPv6 address");
    parse_fails("[::1]:99999", "'99999' is not a port number");
    parse_fails("[::1]:", "missing port");
    parse_fails("[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]:80",
                "is not a numeric IPv6 address");
    parse_fails("1.2.3.4:", "missing port");
    parse_fails("1.2.3.4", "missing port");
    parse_fails(":80", "missing or bad host");
    parse_fails("1.2.3.4:65536", "'65536' is not a port number (0-65535)");
    parse_fails("1.2.3.4:-1", "'-1' is not a port number");
    parse_fails("1.2.3.4:http", "'http' is not a port number");
    parse_fails("99999", "'99999' is not a port number");
    parse_fails("1.2.3:80", "'1.2.3' is not a numeric IP address");
    parse_fails("unix:", "unix socket path is empty");
}

/* ------------------------------------------------------------------ */
/* mpm__listeners_open / close                                        */

static void settings_with(mpm__settings_t *s, const char *addr)
{
    mpm__settings_defaults(s);
    if (addr) {
        snprintf(s->listen[0].addr, sizeof s->listen[0].addr, "%s", addr);
        s->nlisten = 1;
    }
}

static void add_addr(mpm__settings_t *s, const char *addr)
{
    snprintf(s->listen[s->nlisten].addr, sizeof s->listen[0].addr, "%s", addr);
    s->listen[s->nlisten++].host_fd = -1;
}

static void add_fd(mpm__settings_t *s, int fd)
{
    s->listen[s->nlisten].addr[0] = '\0';
    s->listen[s->nlisten++].host_fd = fd;
}

static void open_ok(const mpm__settings_t *s, mpm__listener_t *l, unsigned *n)
{
    char err[256] = "";
    int rc = mpm__listeners_open(s, l, n, err, sizeof err);
    if (rc != 0)
        fail_msg("listeners_open: %d %s", rc, err);
}

static void assert_cloexec_nonblock(int fd)
{
    int fdflags = fcntl(fd, F_GETFD);
    int flflags = fcntl(fd, F_GETFL);
    assert_true(fdflags >= 0 && flflags >= 0);
    assert_true(fdflags & FD_CLOEXEC);
    assert_true(flflags & O_NONBLOCK);
}

static int is_listening(int fd)
{
    int on = 0;
    socklen_t len = sizeof on;
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len), 0);
    return on;
}

static int connect_v4(int port)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int rc = connect(fd, (struct sockaddr *)&in, sizeof in);
    close(fd);
    return rc;
}

static void test_open_ipv4_ephemeral(void **state)
{
    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n = 99;
    settings_with(&s, "127.0.0.1:0");
    open_ok(&s, l, &n);
    assert_int_equal(n, 1);
    assert_true(l[0].port > 0);
    assert_int_equal(l[0].owned, 1);
    assert_string_equal(l[0].name, "127.0.0.1:0");
    assert_cloexec_nonblock(l[0].fd);
    assert_true(is_listening(l[0].fd));
    assert_int_equal(connect_v4(l[0].port), 0);
    int fd = l[0].fd;
    mpm__listeners_close(l, n);
    assert_int_equal(l[0].fd, -1);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
}

static void test_open_several_in_order(void **state)
{
    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n;
    settings_with(&s, NULL);
    add_addr(&s, "127.0.0.1:0");
    add_addr(&s, "127.0.0.1:0");
    open_ok(&s, l, &n);
    assert_int_equal(n, 2);
    assert_true(l[0].port > 0 && l[1].port > 0);
    assert_int_not_equal(l[0].port, l[1].port);
    mpm__listeners_close(l, n);
}

static void test_open_ipv6(void **state)
{
    int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 lo = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int usable = probe >= 0 && bind(probe, (struct sockaddr *)&lo, sizeof lo) == 0;
    if (probe >= 0)
        close(probe);
    if (!usable)
        skip(); /* no IPv6 loopback here */

    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n;
    settings_with(&s, "[::1]:0");
    open_ok(&s, l, &n);
    assert_int_equal(n, 1);
    assert_true(l[0].port > 0);
    assert_cloexec_nonblock(l[0].fd);
    int v6only = 0;
    socklen_t len = sizeof v6only;
    assert_int_equal(getsockopt(l[0].fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
    assert_int_equal(v6only, 1);
    mpm__listeners_close(l, n);
}

static void test_address_in_use(void **state)
{
    mpm__settings_t s;
    mpm__listener_t first[MPM__MAX_LISTENERS], second[MPM__MAX_LISTENERS];
    unsigned n1, n2 = 99;
    char addr[64], err[256] = "", expect[128];
    settings_with(&s, "127.0.0.1:0");
    open_ok(&s, first, &n1);

    /* A free ephemeral port first, so we see it closed again on failure. */
    snprintf(addr, sizeof addr, "127.0.0.1:%d", first[0].port);
    settings_with(&s, "127.0.0.1:0");
    add_addr(&s, addr);
    assert_int_equal(mpm__listeners_open(&s, second, &n2, err, sizeof err), MPM_EADDRINUSE);
    assert_int_equal(n2, 0);
    snprintf(expect, sizeof expect, "Listen %s: Address already in use", addr);
    assert_string_equal(err, expect);
    mpm__listeners_close(first, n1);
}

static void test_bad_address_at_open(void **state)
{
    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n;
    char err[256] = "";
    settings_with(&s, "localhost:80");
    assert_int_equal(mpm__listeners_open(&s, l, &n, err, sizeof err), MPM_ECONFIG);
    assert_contains(err, "Listen localhost:80: ");
    assert_contains(err, "not resolved");
}

/* ---- unix sockets ---- */

static char tmpdir[64];

static int unix_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mpm-listen-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int unix_teardown(void **state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/s.sock", tmpdir);
    unlink(path);
    return rmdir(tmpdir);
}

static void unix_addr(char *addr, size_t len)
{
    snprintf(addr, len, "unix:%s/s.sock", tmpdir);
}

static int is_socket_file(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* A unix socket bound at path, listening or not (a "stale" one is bound and
 * closed: the file stays, nobody answers). */
static int bind_unix(const char *path, int do_listen)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof un), 0);
    if (do_listen)
        assert_int_equal(listen(fd, 4), 0);
    return fd;
}

static void test_open_unix(void **state)
{
    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n;
    char addr[128];
    unix_addr(addr, sizeof addr);
    settings_with(&s, addr);
    open_ok(&s, l, &n);
    assert_int_equal(n, 1);
    assert_int_equal(l[0].port, 0);
    assert_cloexec_nonblock(l[0].fd);
    assert_true(is_listening(l[0].fd));
    assert_true(is_socket_file(addr + 5));
    mpm__listeners_close(l, n);
    assert_false(is_socket_file(addr + 5));
}

static void test_unix_stale_socket_replaced(void **state)
{
    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n;
    char addr[128];
    unix_addr(addr, sizeof addr);
    close(bind_unix(addr + 5, 0));
    assert_true(is_socket_file(addr + 5));
    settings_with(&s, addr);
    open_ok(&s, l, &n);
    assert_true(is_listening(l[0].fd));
    mpm__listeners_close(l, n);
}

static void test_unix_in_use(void **state)
{
    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n;
    char addr[128], err[256] = "";
    unix_addr(addr, sizeof addr);
    int other = bind_unix(addr + 5, 1);
    settings_with(&s, addr);
    assert_int_equal(mpm__listeners_open(&s, l, &n, err, sizeof err), MPM_EADDRINUSE);
    assert_contains(err, addr);
    assert_contains(err, "Address already in use");
    /* The other server's socket file is left alone. */
    assert_true(is_socket_file(addr + 5));
    close(other);
}

static void test_unix_path_not_a_socket(void **state)
{
    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n;
    char addr[128], err[256] = "";
    unix_addr(addr, sizeof addr);
    int fd = open(addr + 5, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    settings_with(&s, addr);
    assert_int_equal(mpm__listeners_open(&s, l, &n, err, sizeof err), MPM_EADDRINUSE);
    assert_contains(err, "not a socket");
    struct stat st;
    assert_int_equal(stat(addr + 5, &st), 0); /* still there */
}

/* ---- host fds ---- */

/* A TCP socket bound to 127.0.0.1:0, blocking, without close-on-exec. */
static int host_socket(int do_listen, int *port)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof in;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof in), 0);
    if (do_listen)
        assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
    *port = ntohs(in.sin_port);
    return fd;
}

static void test_host_fd_adopted(void **state)
{
    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n;
    int port;
    int fd = host_socket(0, &port);
    settings_with(&s, NULL);
    add_fd(&s, fd); /* given first, opened last */
    add_addr(&s, "127.0.0.1:0");
    open_ok(&s, l, &n);
    assert_int_equal(n, 2);
    assert_int_equal(l[0].owned, 1);
    assert_int_equal(l[1].fd, fd);
    assert_int_equal(l[1].owned, 0);
    assert_int_equal(l[1].port, port);
    assert_true(is_listening(fd));
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_false(fcntl(fd, F_GETFD) & FD_CLOEXEC); /* the host's choice, kept */
    assert_int_equal(connect_v4(port), 0);
    mpm__listeners_close(l, n);
    assert_int_equal(l[1].fd, fd);
    assert_true(fcntl(fd, F_GETFD) >= 0); /* still open: the host closes it */
    close(fd);
}

static int defer_accept_of(int fd)
{
    int v = -1;
    socklen_t len = sizeof v;
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &len), 0);
    return v;
}

/* TLSDeferAccept (1 s by default) applies to the TLS listeners the library
 * opens, DeferAccept (off by default) to the plain ones; a host's fd is
 * left as the host made it. */
static void test_defer_accept_per_listener(void **state)
{
    (void)state;
    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n;
    int port;
    for (int plain_deferred = 0; plain_deferred < 2; plain_deferred++) {
        int fd = host_socket(0, &port);
        settings_with(&s, NULL);
        if (plain_deferred) {
            s.defer_accept_ms = 2000;
            s.tls_defer_accept_ms = 0;
        }
        add_addr(&s, "127.0.0.1:0");
        add_addr(&s, "127.0.0.1:0");
        s.listen[1].tls = 1;
        add_fd(&s, fd);
        s.listen[2].tls = 1;
        open_ok(&s, l, &n);
        assert_int_equal(n, 3);
        assert_int_equal(l[0].deferred, plain_deferred);
        assert_int_equal(defer_accept_of(l[0].fd) > 0, plain_deferred);
        assert_int_equal(l[1].deferred, !plain_deferred);
        assert_int_equal(defer_accept_of(l[1].fd) > 0, !plain_deferred);
        assert_int_equal(l[2].deferred, 0);
        assert_int_equal(defer_accept_of(fd), 0);
        mpm__listeners_close(l, n);
        close(fd);
    }
}

static void test_host_fd_already_listening(void **state)
{
    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n;
    int port;
    int fd = host_socket(1, &port);
    settings_with(&s, NULL);
    add_fd(&s, fd);
    open_ok(&s, l, &n);
    assert_int_equal(n, 1);
    assert_int_equal(l[0].port, port);
    char name[32];
    snprintf(name, sizeof name, "fd:%d", fd);
    assert_string_equal(l[0].name, name);
    mpm__listeners_close(l, n);
    assert_true(fcntl(fd, F_GETFD) >= 0);
    close(fd);
}

static void test_host_fd_not_stream(void **state)
{
    mpm__settings_t s;
    mpm__listener_t l[MPM__MAX_LISTENERS];
    unsigned n = 99;
    char err[256] = "";
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int p[2];
    assert_true(udp >= 0);
    assert_int_equal(pipe(p), 0);
    settings_with(&s, "127.0.0.1:0");
    add_fd(&s, udp);
    assert_int_equal(mpm__listeners_open(&s, l, &n, err, sizeof err), MPM_EINVAL);
    assert_int_equal(n, 0);
    assert_contains(err, "not a stream socket");
    settings_with(&s, NULL);
    add_fd(&s, p[0]);
    assert_int_equal(mpm__listeners_open(&s, l, &n, err, sizeof err), MPM_EINVAL);
    close(udp);
    close(p[0]);
    close(p[1]);
}

#define U(f) cmocka_unit_test_setup_teardown(f, unix_setup, unix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ipv4_forms),
        cmocka_unit_test(test_parse_ipv6),
        cmocka_unit_test(test_parse_unix),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_open_ipv4_ephemeral),
        cmocka_unit_test(test_open_several_in_order),
        cmocka_unit_test(test_open_ipv6),
        cmocka_unit_test(test_address_in_use),
        cmocka_unit_test(test_bad_address_at_open),
        U(test_open_unix),
        U(test_unix_stale_socket_replaced),
        U(test_unix_in_use),
        U(test_unix_path_not_a_socket),
        cmocka_unit_test(test_host_fd_adopted),
        cmocka_unit_test(test_host_fd_already_listening),
        cmocka_unit_test(test_defer_accept_per_listener),
        cmocka_unit_test(test_host_fd_not_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
