/* mpmserve: what /files/ needs for conditional and range requests (RFC 9110
 * §8.8, §13, §14): HTTP-dates both ways, entity-tag lists, and one byte
 * range. Pure functions of their arguments: no I/O, no locale. */
#include "mpmserve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void ms_http_date(time_t t, char out[MS_HTTP_DATE_LEN])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        out[0] = '\0';
        return;
    }
    snprintf(out, MS_HTTP_DATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int month_index(const char *name)
{
    for (int i = 0; i < 12; i++)
        if (strcmp(name, months[i]) == 0)
            return i;
    return -1;
}

/* The three forms a recipient must accept (RFC 9110 §5.6.7): IMF-fixdate
 * "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT"
 * and asctime "Sun Nov  6 08:49:37 1994". The weekday is not checked. */
int ms_http_date_parse(const char *s, time_t *out)
{
    struct tm tm = {0};
    char mon[4] = "", wday[10] = "", tail[2] = "";
    int n = 0;
    if (sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d GMT%n", wday, &tm.tm_mday, mon, &tm.tm_year,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) == 7 && n > 0 && s[n] == '\0') {
        tm.tm_year -= 1900;
    } else if (sscanf(s, "%9[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT%n", wday, &tm.tm_mday, mon,
                      &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) == 7 &&
               n > 0 && s[n] == '\0') {
        if (tm.tm_year < 70)
            tm.tm_year += 100; /* a two-digit year more than 50 years ahead is in the past */
    } else if (sscanf(s, "%3s %3s %2d %2d:%2d:%2d %4d%1s", wday, mon, &tm.tm_mday, &tm.tm_hour,
                      &tm.tm_min, &tm.tm_sec, &tm.tm_year, tail) == 7) {
        tm.tm_year -= 1900;
    } else {
        return -1;
    }
    tm.tm_mon = month_index(mon);
    if (tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour < 0 || tm.tm_hour > 23 ||
        tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60 || tm.tm_year < 70)
        return -1;
    *out = timegm(&tm);
    return 0;
}

/* Whether the entity-tag list (an If-Match or If-None-Match value) names
 * etag: "*" matches any; weak comparison ignores "W/" on either side,
 * strong comparison (If-Match) lets no weak tag match. */
int ms_etag_list_matches(const char *list, const char *etag, int strong)
{
    const char *p = list;
    size_t elen = strlen(etag);
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        int weak = strncmp(p, "W/", 2) == 0;
        if (weak)
            p += 2;
        if (*p != '"')
            return 0; /* not an entity-tag: the list is void */
        const char *end = strchr(p + 1, '"');
        if (!end)
            return 0;
        size_t len = (size_t)(end - p) + 1;
        if (len == elen && strncmp(p, etag, len) == 0 && !(strong && weak))
            return 1;
        p = end + 1;
    }
    return 0;
}

/* Reads a decimal into *out; returns the first byte after it, or NULL
 * when there are no digits or the number would overflow. */
static const char *read_offset(const char *p, off_t *out)
{
    off_t v = 0;
    const char *start = p;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (off_t)((0x7fffffffffffffffLL - 9) / 10))
            return NULL;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return p == start ? NULL : p;
}

int ms_range_parse(const char *value, off_t size, off_t *first, off_t *last)
{
    if (strncasecmp(value, "bytes=", 6) != 0)
        return 0;
    const char *p = value + 6;
    while (*p == ' ')
        p++;
    if (strchr(p, ','))
        return 0; /* several ranges: the whole file instead (§14.2 allows) */
    off_t a = -1, b = -1;
    if (*p == '-') {
        if (!(p = read_offset(p + 1, &b)) || *p)
            return 0;
        if (b == 0 || size == 0)
            return -1; /* "-0", or any suffix of an empty file */
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (!(p = read_offset(p, &a)) || *p != '-')
        return 0;
    p++;
    if (*p && (!(p = read_offset(p, &b)) || *p))
        return 0;
    if (b >= 0 && b < a)
        return 0; /* invalid: ignored, as a syntax error is */
    if (a >= size)
        return -1;
    *first = a;
    *last = (b < 0 || b >= size) ? size - 1 : b;
    return 1;
}
