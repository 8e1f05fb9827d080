/* The request line, parsed by the engine itself (RFC 9112 §3): llhttp 8.1
 * refuses HTTP/1.2 (which must be served as 1.1), takes HTTP/0.9 lines,
 * unknown methods and target bytes RFC 3986 does not allow, and knows none
 * of the request-target forms. llhttp is then given a canned line, so it
 * only reads the field lines. */
#include "http1_impl.h"

#include <string.h>
#include <strings.h>

enum { RL_START, RL_START_CR, RL_METHOD, RL_TARGET, RL_VERSION, RL_CR, RL_DONE };

static const char http_version[] = "HTTP/d.d"; /* 'd': a digit */

/* Counts request-line bytes as they arrive, so an endless line is refused
 * as soon as it passes LimitRequestLine. */
static int line_grow(mpm__h1_t *h, size_t n)
{
    h->msg.line_len += n;
    if (h->msg.line_len > h->limits.request_line)
        return mpm__h1_fail(h, 414, "request line too long");
    return 0;
}

/* Empty lines before the request line are skipped (RFC 9112 §2.2); a line
 * end is CRLF here as everywhere in the engine. */
static size_t scan_start(mpm__h1_t *h, const char *data)
{
    mpm__h1_msg_t *m = &h->msg;
    unsigned char c = (unsigned char)data[0];
    if (m->line_state == RL_START_CR) {
        if (c != '\n')
            return mpm__h1_fail(h, 400, "bare CR before the request line"), 0;
        m->line_state = RL_START;
        return 1;
    }
    if (c == '\r') {
        m->line_state = RL_START_CR;
        return 1;
    }
    if (!mpm__h1_is_tchar(c))
        return mpm__h1_fail(h, 400, "request line does not start with a method"), 0;
    h->state = MPM__H1_ST_HEAD;
    m->method_off = h->arena_len;
    m->line_state = RL_METHOD;
    return 0;
}

/* Appends a run of good bytes to the arena and the line count. */
static int keep_run(mpm__h1_t *h, const char *at, size_t n)
{
    int rc = line_grow(h, n);
    return rc ? rc : mpm__h1_arena_put(h, at, n);
}

static int method_number(const char *name)
{
    static const struct {
        const char *name;
        int number;
    } methods[] = {
#define MPM__H1_METHOD(num, id, text) {#text, num},
        HTTP_METHOD_MAP(MPM__H1_METHOD)
#undef MPM__H1_METHOD
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (!strcmp(methods[i].name, name))
            return methods[i].number;
    return -1;
}

static size_t scan_method(mpm__h1_t *h, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len && mpm__h1_is_tchar((unsigned char)data[i]))
        i++;
    if (keep_run(h, data, i) || i == len)
        return i;
    if (data[i] != ' ')
        return mpm__h1_fail(h, 400, "invalid character in method"), i;
    if (mpm__h1_arena_end_string(h) || line_grow(h, 1))
        return i;
    /* Known from here on: an error answered before the line ends (414)
     * must still not send a body to a HEAD. */
    h->msg.method = method_number(h->arena + h->msg.method_off);
    h->msg.target_off = h->arena_len;
    h->msg.line_state = RL_TARGET;
    return i + 1;
}

/* The end of the target: one SP, then the version. */
static size_t target_end(mpm__h1_t *h, char c)
{
    mpm__h1_msg_t *m = &h->msg;
    if (c != ' ')
        return mpm__h1_fail(h, 400, "whitespace or control character in request target"), 0;
    if (h->arena_len == m->target_off)
        return mpm__h1_fail(h, 400, "empty request target"), 0;
    if (m->pct)
        return mpm__h1_fail(h, 400, "bad percent-encoding in request target"), 0;
    if (mpm__h1_arena_end_string(h) || line_grow(h, 1))
        return 0;
    m->line_state = RL_VERSION;
    return 1;
}

static size_t scan_target(mpm__h1_t *h, const char *data, size_t len)
{
    mpm__h1_msg_t *m = &h->msg;
    size_t i = 0;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (m->pct) {
            if (!mpm__h1_is_hex(c))
                break;
            m->pct--;
        } else if (c == '%') {
            m->pct = 2;
        } else if (!mpm__h1_is_target_char(c)) {
            break;
        }
    }
    if (keep_run(h, data, i) || i == len)
        return i;
    if (m->pct && data[i] != ' ')
        return mpm__h1_fail(h, 400, "bad percent-encoding in request target"), i;
    return i + target_end(h, data[i]);
}

/* "HTTP/" DIGIT "." DIGIT, case-sensitive, then CRLF. */
static size_t scan_version(mpm__h1_t *h, const char *data)
{
    mpm__h1_msg_t *m = &h->msg;
    char c = data[0];
    if (m->line_state == RL_CR) {
        if (c != '\n')
            return mpm__h1_fail(h, 400, "bare CR in request line"), 0;
        m->line_state = RL_DONE;
        return 1;
    }
    if (m->vpos == (int)sizeof(http_version) - 1) {
        if (c != '\r')
            return mpm__h1_fail(h, 400, "malformed HTTP version"), 0;
        m->line_state = RL_CR;
        return 1;
    }
    char want = http_version[m->vpos];
    int ok = want == 'd' ? c >= '0' && c <= '9' : c == want;
    if (!ok)
        return mpm__h1_fail(h, 400, "malformed HTTP version"), 0;
    if (m->vpos == 5)
        m->major = c - '0';
    else if (m->vpos == 7)
        m->minor = c - '0';
    m->vpos++;
    return line_grow(h, 1) ? 0 : 1;
}

size_t mpm__h1_line_scan(mpm__h1_t *h, const char *data, size_t len)
{
    mpm__h1_msg_t *m = &h->msg;
    size_t i = 0;
    while (i < len && m->line_state != RL_DONE && !h->error_status) {
        switch (m->line_state) {
        case RL_START:
        case RL_START_CR:
            i += scan_start(h, data + i);
            break;
        case RL_METHOD:
            i += scan_method(h, data + i, len - i);
            break;
        case RL_TARGET:
            i += scan_target(h, data + i, len - i);
            break;
        default:
            i += scan_version(h, data + i);
            break;
        }
    }
    return i;
}

int mpm__h1_line_done(const mpm__h1_t *h)
{
    return h->msg.line_state == RL_DONE;
}

/* ---- the finished line ---- */

/* "http://authority/path?query" (RFC 9112 §3.2.2, RFC 9110 §4.2): the
 * authority names the host; userinfo and an empty host are refused. */
static int absolute_form(mpm__h1_t *h, const char *t)
{
    mpm__h1_msg_t *m = &h->msg;
    size_t scheme = strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
    int http =
        (scheme == 4 && !strncasecmp(t, "http", 4)) || (scheme == 5 && !strncasecmp(t, "https", 5));
    if (!http || strncmp(t + scheme, "://", 3))
        return mpm__h1_fail(h, 400, "request target is not origin-form or an http(s) URI");
    size_t a = scheme + 3, alen = strcspn(t + a, "/?");
    if (memchr(t + a, '@', alen))
        return mpm__h1_fail(h, 400, "userinfo in request target");
    if (!mpm__h1_authority_ok(t + a, alen, 1, 0))
        return mpm__h1_fail(h, 400, "bad authority in request target");
    size_t p = a + alen, plen = m->qpos - p;
    m->absolute = 1;
    size_t target_off = m->target_off;
    int rc = mpm__h1_arena_copy(h, target_off + a, alen, &m->host_off);
    if (rc)
        return rc;
    if (plen)
        return mpm__h1_arena_copy(h, target_off + p, plen, &m->path_off);
    m->path_off = h->arena_len; /* an empty path means "/", or "*" for OPTIONS */
    rc = mpm__h1_arena_put(h, m->method == HTTP_OPTIONS ? "*" : "/", 1);
    return rc ? rc : mpm__h1_arena_end_string(h);
}

/* Which of RFC 9112 §3.2's four forms the target has, and whether the
 * method allows it; stores the path (and the authority). */
static int target_form(mpm__h1_t *h)
{
    mpm__h1_msg_t *m = &h->msg;
    const char *t = h->arena + m->target_off;
    size_t tlen = strlen(t);
    m->qpos = strcspn(t, "?");
    if (m->method == HTTP_CONNECT) {
        if (!mpm__h1_authority_ok(t, tlen, 1, 1))
            return mpm__h1_fail(h, 400, "CONNECT without authority-form target");
        return mpm__h1_fail(h, 501, "CONNECT not supported");
    }
    if (t[0] == '*') {
        if (tlen != 1 || m->method != HTTP_OPTIONS)
            return mpm__h1_fail(h, 400, "asterisk-form target other than OPTIONS *");
        return mpm__h1_arena_copy(h, m->target_off, 1, &m->path_off);
    }
    if (t[0] != '/')
        return absolute_form(h, t);
    return mpm__h1_arena_copy(h, m->target_off, m->qpos, &m->path_off);
}

int mpm__h1_line_finish(mpm__h1_t *h)
{
    mpm__h1_msg_t *m = &h->msg;
    if (m->major != 1)
        return mpm__h1_fail(h, 505, "HTTP version not supported");
    if (m->method < 0)
        return mpm__h1_fail(h, 501, "method not implemented");
    return target_form(h);
}
