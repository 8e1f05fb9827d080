/* Character classes and the authority grammar the request side checks
 * bytes against (RFC 9110 §5.6.2, RFC 3986 §2-3.2). */
#include "http1_impl.h"

#include <arpa/inet.h>
#include <string.h>

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

int mpm__h1_is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int mpm__h1_is_tchar(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_sub_delim(unsigned char c)
{
    return c && strchr("!$&'()*+,;=", c);
}

int mpm__h1_is_target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '#' && c != '%';
}

/* reg-name or IPv4address: unreserved / pct-encoded / sub-delims. */
static int reg_name_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n || !mpm__h1_is_hex((unsigned char)s[i + 1]) ||
                !mpm__h1_is_hex((unsigned char)s[i + 2]))
                return 0;
            i += 2;
        } else if (!is_unreserved(c) && !is_sub_delim(c)) {
            return 0;
        }
    }
    return 1;
}

/* IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ). */
static int ipvfuture_ok(const char *s, size_t n)
{
    size_t i = 1, hex = 0;
    while (i < n && mpm__h1_is_hex((unsigned char)s[i])) {
        i++;
        hex++;
    }
    if (!hex || i >= n || s[i] != '.' || ++i >= n)
        return 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_unreserved(c) && !is_sub_delim(c) && c != ':')
            return 0;
    }
    return 1;
}

/* The inside of "[...]": an IPv6 address or IPvFuture. */
static int ip_literal_ok(const char *s, size_t n)
{
    if (n && (s[0] == 'v' || s[0] == 'V'))
        return ipvfuture_ok(s, n);
    char buf[64];
    struct in6_addr a;
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

static int port_ok(const char *s, size_t n, int need_port)
{
    if (n == 0)
        return !need_port;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > 65535)
            return 0;
    }
    return 1;
}

int mpm__h1_authority_ok(const char *s, size_t n, int need_host, int need_port)
{
    size_t host_end;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || !ip_literal_ok(s + 1, (size_t)(close - s) - 1))
            return 0;
        host_end = (size_t)(close - s) + 1;
    } else {
        const char *colon = memchr(s, ':', n);
        host_end = colon ? (size_t)(colon - s) : n;
        if (!reg_name_ok(s, host_end))
            return 0;
    }
    if (need_host && host_end == 0)
        return 0;
    if (host_end == n)
        return !need_port;
    if (s[host_end] != ':')
        return 0;
    return port_ok(s + host_end + 1, n - host_end - 1, need_port);
}
