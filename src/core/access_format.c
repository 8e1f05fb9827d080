/* Access-log lines in httpd's Common and Combined Log Formats, from the
 * entry the access-log callback receives: what a host writes with one
 * write(2) per line to an O_APPEND file, safe from every process and thread. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct line_out {
    char *buf;
    size_t cap, len;
    int overflow;
} line_out_t;

static void put(line_out_t *o, const char *s, size_t n)
{
    if (o->overflow || n >= o->cap - o->len) {
        o->overflow = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void put_str(line_out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_fmt(line_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put_fmt(line_out_t *o, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* As httpd escapes logged request data: '"' and '\' get a backslash,
 * control and non-ASCII bytes become \xhh, so a client cannot forge a line
 * or a field. NULL or "" gives "-". */
static void put_escaped(line_out_t *o, const char *s)
{
    if (!s || !*s) {
        put_str(o, "-");
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            put(o, e, 2);
        } else if (*p < 0x20 || *p >= 0x7f) {
            put_fmt(o, "\\x%02x", *p);
        } else {
            put(o, (const char *)p, 1);
        }
    }
}

/* [10/Oct/2000:13:55:36 -0700], local time, month names not from the
 * locale (httpd's format is fixed). */
static void put_time(line_out_t *o, int64_t time_us)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time_us > 0 ? (time_t)(time_us / 1000000) : time(NULL);
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        put_str(o, "[-]");
        return;
    }
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    put_fmt(o, "[%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld]", tm.tm_mday, months[tm.tm_mon % 12],
            tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
}

/* A field appended to the entry in a later version, or NULL/0 when the
 * library that filled it was older than the caller's header. */
#define ENTRY_HAS(e, field) ((e)->size >= offsetof(mpm_access_entry_t, field) + sizeof((e)->field))

/* %h %l %u %t "%r" %>s %b */
static void put_common(line_out_t *o, const mpm_access_entry_t *e)
{
    put_str(o, e->remote_addr && *e->remote_addr ? e->remote_addr : "-");
    put_str(o, " - - ");
    put_time(o, ENTRY_HAS(e, time_us) ? e->time_us : 0);
    put_str(o, " \"");
    if (e->method && *e->method) {
        put_escaped(o, e->method);
        put_str(o, " ");
        put_escaped(o, e->target);
        put_fmt(o, " HTTP/%d.%d", e->version / 10, e->version % 10);
    } else {
        put_str(o, "-"); /* the engine rejected the request before its line */
    }
    put_fmt(o, "\" %d ", e->status);
    if (e->bytes_sent)
        put_fmt(o, "%llu", (unsigned long long)e->bytes_sent);
    else
        put_str(o, "-");
}

int mpm_access_log_format(const mpm_access_entry_t *e, mpm_access_format_t format, char *buf,
                          size_t len)
{
    if (!e || !buf || len == 0 || e->size < offsetof(mpm_access_entry_t, duration_us) ||
        (format != MPM_ACCESS_COMMON && format != MPM_ACCESS_COMBINED))
        return MPM_EINVAL;
    line_out_t o = {.buf = buf, .cap = len};
    buf[0] = '\0';
    put_common(&o, e);
    if (format == MPM_ACCESS_COMBINED) {
        put_str(&o, " \"");
        put_escaped(&o, ENTRY_HAS(e, referer) ? e->referer : NULL);
        put_str(&o, "\" \"");
        put_escaped(&o, ENTRY_HAS(e, user_agent) ? e->user_agent : NULL);
        put_str(&o, "\"");
    }
    put_str(&o, "\n");
    if (o.overflow || o.len > INT32_MAX)
        return MPM_ERANGE;
    return (int)o.len;
}
