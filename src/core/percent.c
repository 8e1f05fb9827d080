/* Percent-decoding for handlers: the generic decoder and the two request
 * helpers built on it. Only public accessors are used, so the helpers work
 * the same whichever strategy serves the request. */
#include "internal.h"

#include <string.h>

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one byte at *s (advancing it); -1 for a malformed escape. */
static int next_byte(const char **s, const char *end, unsigned flags)
{
    unsigned char c = (unsigned char)**s;
    (*s)++;
    if (c == '+' && (flags & MPM_DECODE_PLUS_AS_SPACE))
        return ' ';
    if (c != '%')
        return c;
    if (end - *s < 2)
        return -1;
    int hi = hex_value((unsigned char)(*s)[0]), lo = hex_value((unsigned char)(*s)[1]);
    if (hi < 0 || lo < 0)
        return -1;
    *s += 2;
    return hi * 16 + lo;
}

int mpm_percent_decode(const char *src, size_t len, char *dst, size_t dstlen, unsigned flags)
{
    if (!src || !dst || dstlen == 0 || (flags & ~(MPM_DECODE_PLUS_AS_SPACE | MPM_DECODE_ALLOW_SLASH)))
        return MPM_EINVAL;
    const char *s = src, *end = src + len;
    size_t n = 0;
    while (s < end) {
        int encoded = *s == '%';
        int b = next_byte(&s, end, flags);
        /* An encoded NUL would cut the C string short; an encoded '/' would
         * smuggle a path separator past the caller's checks. */
        if (b < 0 || b == 0 || (encoded && b == '/' && !(flags & MPM_DECODE_ALLOW_SLASH)))
            return MPM_EPROTO;
        if (n + 1 >= dstlen || n >= INT32_MAX)
            return MPM_ERANGE;
        dst[n++] = (char)b;
    }
    dst[n] = '\0';
    return (int)n;
}

/* Whether the raw name in [p, p+len) decodes to `name`. */
static int name_matches(const char *p, size_t len, const char *name)
{
    char buf[256];
    int n = mpm_percent_decode(p, len, buf, sizeof buf,
                               MPM_DECODE_PLUS_AS_SPACE | MPM_DECODE_ALLOW_SLASH);
    return n >= 0 && strcmp(buf, name) == 0;
}

int mpm_request_query_param(const mpm_request_t *req, const char *name, char *buf, size_t len)
{
    if (!req || !name || !buf || len == 0)
        return MPM_EINVAL;
    const char *p = mpm_request_query(req);
    while (*p) {
        size_t pair = strcspn(p, "&");
        size_t nlen = strcspn(p, "=&");
        if (nlen > 0 && name_matches(p, nlen, name)) {
            const char *v = nlen < pair ? p + nlen + 1 : p + pair;
            return mpm_percent_decode(v, (size_t)(p + pair - v), buf, len,
                                      MPM_DECODE_PLUS_AS_SPACE | MPM_DECODE_ALLOW_SLASH);
        }
        p += pair;
        if (*p == '&')
            p++;
    }
    return MPM_ENOENT;
}

int mpm_request_path_decoded(const mpm_request_t *req, char *buf, size_t len)
{
    if (!req)
        return MPM_EINVAL;
    const char *path = mpm_request_path(req);
    return mpm_percent_decode(path, strlen(path), buf, len, 0);
}
