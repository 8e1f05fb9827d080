/* The Date header's value, cached per thread. Every response carries one;
 * formatting it costs a gmtime_r, so each thread keeps the last second's
 * text and only rebuilds it when time() moves on. Thread-local storage makes
 * it safe without locks, and formatting by hand keeps it independent of the
 * host's locale (strftime's %a would follow LC_TIME). */
#include "http1.h"

#include <string.h>
#include <time.h>

static _Thread_local struct {
    time_t second; /* the second `text` shows */
    char text[30];
    int valid;
} date_cache;

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 IMF-fixdate). */
static void format_imf(time_t t, char out[30])
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    gmtime_r(&t, &tm);
    memcpy(out, days + 3 * tm.tm_wday, 3);
    memcpy(out + 3, ", ", 2);
    put2(out + 5, tm.tm_mday);
    out[7] = ' ';
    memcpy(out + 8, months + 3 * tm.tm_mon, 3);
    out[11] = ' ';
    int year = tm.tm_year + 1900;
    put2(out + 12, year / 100);
    put2(out + 14, year % 100);
    out[16] = ' ';
    put2(out + 17, tm.tm_hour);
    out[19] = ':';
    put2(out + 20, tm.tm_min);
    out[22] = ':';
    put2(out + 23, tm.tm_sec);
    memcpy(out + 25, " GMT", 5); /* with the NUL */
}

void mpm__h1_date(char out[30])
{
    time_t now = time(NULL);
    if (!date_cache.valid || now != date_cache.second) {
        format_imf(now, date_cache.text);
        date_cache.second = now;
        date_cache.valid = 1;
    }
    memcpy(out, date_cache.text, 30);
}
