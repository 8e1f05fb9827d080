/* Configuration by httpd directive names.
 *
 * One table (below) lists every directive: its name, the kind of value it
 * takes, where the value lives in mpm__settings_t, its range and its default
 * as a config file would write it. mpm_config_set(), mpm_config_get() and
 * mpm__settings_defaults() all go through that table and the per-kind parse /
 * format functions, so a new directive is one table line. */
#include "config.h"
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Numbers are loaded and stored by width, so these must hold. */
_Static_assert(sizeof(int) == 4 && sizeof(unsigned) == 4, "int must be 32 bits");

#define SEC(n) ((uint64_t)(n)*1000u)
#define DAY SEC(86400)
#define MIB ((uint64_t)1 << 20)
/* K_MILLI values are stored in thousandths: 3 decimals, no more. */
#define MILLI 1000u
#define MILLI_DECIMALS 3

typedef enum dir_kind {
    K_FLAG,         /* On | Off */
    K_UINT,         /* decimal count */
    K_SIZE,         /* bytes, optional K/M/G suffix */
    K_MILLI,        /* a decimal with up to 3 decimals, stored in thousandths */
    K_TIME,         /* seconds, or N ms; stored as ms */
    K_MPM,          /* a strategy's name (strategy.c knows them), stored as text */
    K_LEVEL,        /* one word of a list, stored as its int value (LogLevel) */
    K_LISTEN,       /* adds an address */
    K_READ_TIMEOUT, /* "N", or "header=T[-MAX][,MinRate=R] body=..." */
    K_BODY_TIMEOUT, /* the body part alone: "T[-MAX][,MinRate=R]" */
    K_TLS_LISTEN,   /* adds a TLS address */
    K_CERT,         /* adds "CERT [KEY]" */
    K_PROTOCOLS,    /* "TLSv1.2 TLSv1.3", httpd's +/- and "all": MPM__TLS_* bits */
    K_CIPHERS,      /* an OpenSSL cipher list, checked by OpenSSL; min 1 = TLS 1.3 suites */
    K_COUNT
} dir_kind_t;

typedef struct choice {
    const char *name;
    int value;
} choice_t;

typedef struct directive {
    const char *name;
    dir_kind_t kind;
    size_t off;              /* where the value lives in mpm__settings_t */
    size_t size;             /* its size, 4 or 8 bytes for numbers */
    uint64_t min, max;       /* accepted range, in stored units (ms, bytes) */
    const char *def;         /* default as text; NULL: none (aliases, Listen) */
    const choice_t *choices; /* K_LEVEL only */
} directive_t;

#define FIELD(m) offsetof(mpm__settings_t, m), sizeof(((mpm__settings_t *)0)->m)

static const choice_t log_levels[] = {{"error", MPM_LOG_ERROR},   {"warn", MPM_LOG_WARN},
                                      {"notice", MPM_LOG_NOTICE}, {"info", MPM_LOG_INFO},
                                      {"debug", MPM_LOG_DEBUG},   {NULL, 0}};

/* Ranges follow httpd's limits where it has hard ones (ServerLimit 200000,
 * ThreadLimit 100000); the request-head limits are capped at 1 MiB because
 * the head is buffered in memory. StartServers, ServerLimit and
 * MaxRequestWorkers default to 0: each strategy picks its own. */
static const directive_t directives[] = {
    {"Listen", K_LISTEN, FIELD(nlisten), 0, 0, NULL, NULL},
    {"ListenBacklog", K_UINT, FIELD(listen_backlog), 1, 65535, "511", NULL},
    {"DeferAccept", K_TIME, FIELD(defer_accept_ms), 0, SEC(600), "0", NULL},
    {"MPM", K_MPM, FIELD(mpm), 0, 0, NULL, NULL},
    {"OneProcess", K_FLAG, FIELD(one_process), 0, 1, "Off", NULL},
    {"KeepAlive", K_FLAG, FIELD(keepalive), 0, 1, "On", NULL},
    {"KeepAliveTimeout", K_TIME, FIELD(keepalive_timeout_ms), 1, DAY, "5", NULL},
    {"MaxKeepAliveRequests", K_UINT, FIELD(max_keepalive_requests), 0, INT_MAX, "100", NULL},
    {"Timeout", K_TIME, FIELD(timeout_ms), 1, DAY, "60", NULL},
    {"RequestReadTimeout", K_READ_TIMEOUT, FIELD(header_timeout), 0, DAY,
     "header=20-40,MinRate=500 body=20,MinRate=500", NULL},
    {"RequestBodyTimeout", K_BODY_TIMEOUT, FIELD(body_timeout), 0, DAY, NULL, NULL},
    {"LimitRequestLine", K_SIZE, FIELD(limit_request_line), 1, MIB, "8190", NULL},
    {"LimitRequestFieldSize", K_SIZE, FIELD(limit_request_field_size), 1, MIB, "8190", NULL},
    {"LimitRequestFields", K_UINT, FIELD(limit_request_fields), 1, 32767, "100", NULL},
    {"LimitRequestBody", K_SIZE, FIELD(limit_request_body), 0, INT64_MAX, "1G", NULL},
    {"RequestBodyPrefetch", K_SIZE, FIELD(request_body_prefetch), 0, 16 * MIB, "65536", NULL},
    {"StartServers", K_UINT, FIELD(start_servers), 0, 200000, "0", NULL},
    {"MinSpareServers", K_UINT, FIELD(min_spare_servers), 1, 200000, "5", NULL},
    {"MaxSpareServers", K_UINT, FIELD(max_spare_servers), 1, 200000, "10", NULL},
    {"ServerLimit", K_UINT, FIELD(server_limit), 0, 200000, "0", NULL},
    {"MaxRequestWorkers", K_UINT, FIELD(max_request_workers), 0, INT_MAX, "0", NULL},
    {"MaxClients", K_UINT, FIELD(max_request_workers), 0, INT_MAX, NULL, NULL},
    {"MaxConnectionsPerChild", K_UINT, FIELD(max_connections_per_child), 0, INT_MAX, "0", NULL},
    {"MaxRequestsPerChild", K_UINT, FIELD(max_connections_per_child), 0, INT_MAX, NULL, NULL},
    {"ThreadsPerChild", K_UINT, FIELD(threads_per_child), 1, 100000, "25", NULL},
    {"ThreadLimit", K_UINT, FIELD(thread_limit), 1, 100000, "64", NULL},
    {"SchedulerSlice", K_UINT, FIELD(scheduler_slice_us), 0, 100000, "100", NULL},
    {"MinSpareThreads", K_UINT, FIELD(min_spare_threads), 1, INT_MAX, "75", NULL},
    {"MaxSpareThreads", K_UINT, FIELD(max_spare_threads), 1, INT_MAX, "250", NULL},
    {"AsyncRequestWorkerFactor", K_MILLI, FIELD(async_worker_factor_milli), 1, 1000 * MILLI, "2",
     NULL},
    {"AsyncConnectionLimit", K_UINT, FIELD(async_connection_limit), 0, 1000000, "0", NULL},
    {"GracefulShutdownTimeout", K_TIME, FIELD(graceful_shutdown_timeout_ms), 0, DAY, "0", NULL},
    {"DrainWindow", K_TIME, FIELD(drain_window_ms), 0, SEC(3600), "1", NULL},
    {"HandleSignals", K_FLAG, FIELD(handle_signals), 0, 1, "On", NULL},
    {"LogLevel", K_LEVEL, FIELD(log_level), 0, 0, "warn", log_levels},
    {"TLSListen", K_TLS_LISTEN, FIELD(nlisten), 0, 0, NULL, NULL},
    {"TLSCertificate", K_CERT, FIELD(ntls_cert), 0, 0, NULL, NULL},
    {"TLSProtocol", K_PROTOCOLS, FIELD(tls_protocols), 0, 0, "TLSv1.2 TLSv1.3", NULL},
    /* Mozilla's "intermediate" policy without finite-field DHE: forward
     * secrecy and AEAD only. */
    {"TLSCiphers", K_CIPHERS, FIELD(tls_ciphers), 0, 0,
     "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
     "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
     NULL},
    {"TLSCipherSuites", K_CIPHERS, FIELD(tls_ciphersuites), 1, 0,
     "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256", NULL},
    {"TLSPinning", K_FLAG, FIELD(tls_pinning), 0, 1, "On", NULL},
    {"TLSDeferAccept", K_TIME, FIELD(tls_defer_accept_ms), 0, SEC(600), "1", NULL},
    {"TLSSessionTickets", K_FLAG, FIELD(tls_session_tickets), 0, 1, "On", NULL},
    {"TLSSessionTicketKeyRotation", K_TIME, FIELD(tls_ticket_rotation_ms), SEC(1), DAY * 7, "3600",
     NULL},
};

#define NDIRECTIVES (sizeof directives / sizeof directives[0])

/* Longest text mpm_config_get() can produce: every Listen address, or
 * every certificate's two paths. */
#define GET_TEXT_MAX (MPM__MAX_CERTS * sizeof(mpm__cert_spec_t) + 16)
_Static_assert(GET_TEXT_MAX >= MPM__MAX_LISTENERS * sizeof(((mpm__listen_spec_t *)0)->addr) + 16,
               "GET_TEXT_MAX must hold every Listen address");
/* Longest value mpm_config_set() accepts. */
#define SET_TEXT_MAX 512

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */

/* Writes a message into err (when given) and returns MPM_ECONFIG. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return MPM_ECONFIG;
}

static void *field(mpm__settings_t *s, const directive_t *d)
{
    return (char *)s + d->off;
}

static const void *cfield(const mpm__settings_t *s, const directive_t *d)
{
    return (const char *)s + d->off;
}

static uint64_t load_num(const mpm__settings_t *s, const directive_t *d)
{
    if (d->size == sizeof(uint32_t)) {
        uint32_t v;
        memcpy(&v, cfield(s, d), sizeof v);
        return v;
    }
    uint64_t v;
    memcpy(&v, cfield(s, d), sizeof v);
    return v;
}

/* Values are range-checked first, so they fit the field, signed or not. */
static void store_num(mpm__settings_t *s, const directive_t *d, uint64_t value)
{
    if (d->size == sizeof(uint32_t)) {
        uint32_t v = (uint32_t)value;
        memcpy(field(s, d), &v, sizeof v);
    } else {
        memcpy(field(s, d), &value, sizeof value);
    }
}

/* Parses leading decimal digits into *out. Returns the end of the digits,
 * NULL when there are none or the number overflows (*overflow set). */
static const char *parse_digits(const char *p, uint64_t *out, int *overflow)
{
    uint64_t n = 0;
    const char *start = p;
    *overflow = 0;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - digit) / 10)
            *overflow = 1;
        else
            n = n * 10 + digit;
    }
    if (p == start || *overflow)
        return NULL;
    *out = n;
    return p;
}

/* "-5": a number, but negative. Reported as out of range, not as garbage. */
static int is_negative_number(const char *v)
{
    return v[0] == '-' && isdigit((unsigned char)v[1]);
}

static const char *skip_spaces(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

/* Multiplies with overflow detection. */
static int scale(uint64_t n, uint64_t unit, uint64_t *out)
{
    if (unit && n > UINT64_MAX / unit)
        return -1;
    *out = n * unit;
    return 0;
}

static void format_time(uint64_t ms, int with_unit, char *buf, size_t len)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%llu%s", (unsigned long long)(ms / 1000), with_unit ? "s" : "");
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
}

/* The shortest text that reads back as exactly `milli` thousandths:
 * "2", "1.5", "0.25", "2.125". */
static void format_milli(uint64_t milli, char *buf, size_t len)
{
    unsigned frac = (unsigned)(milli % MILLI);
    int digits = MILLI_DECIMALS;
    if (frac == 0) {
        snprintf(buf, len, "%llu", (unsigned long long)(milli / MILLI));
        return;
    }
    for (; frac % 10 == 0; frac /= 10)
        digits--;
    snprintf(buf, len, "%llu.%0*u", (unsigned long long)(milli / MILLI), digits, frac);
}

/* "(1..100000)", "(1ms..86400s)", "(0..1048576 bytes)", "(0.001..1000)". */
static void format_range(const directive_t *d, char *buf, size_t len)
{
    if (d->kind == K_TIME || d->kind == K_READ_TIMEOUT || d->kind == K_BODY_TIMEOUT) {
        char lo[32], hi[32];
        format_time(d->min, 1, lo, sizeof lo);
        format_time(d->max, 1, hi, sizeof hi);
        snprintf(buf, len, "(%s..%s)", lo, hi);
    } else if (d->kind == K_MILLI) {
        char lo[32], hi[32];
        format_milli(d->min, lo, sizeof lo);
        format_milli(d->max, hi, sizeof hi);
        snprintf(buf, len, "(%s..%s)", lo, hi);
    } else {
        snprintf(buf, len, "(%llu..%llu%s)", (unsigned long long)d->min, (unsigned long long)d->max,
                 d->kind == K_SIZE ? " bytes" : "");
    }
}

static int out_of_range(const directive_t *d, const char *v, char *err, size_t errlen)
{
    char range[80];
    format_range(d, range, sizeof range);
    return fail(err, errlen, "%s: %s is out of range %s", d->name, v, range);
}

static int check_range(const directive_t *d, uint64_t n, const char *v, char *err, size_t errlen)
{
    if (n < d->min || n > d->max)
        return out_of_range(d, v, err, errlen);
    return 0;
}

static const choice_t *find_choice(const choice_t *list, const char *name)
{
    for (; list->name; list++)
        if (strcasecmp(list->name, name) == 0)
            return list;
    return NULL;
}

/* "error|warn|notice|info|debug", for messages. */
static void join_choices(const choice_t *list, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const choice_t *c = list; c->name && used < len; c++) {
        int n = snprintf(buf + used, len - used, "%s%s", c == list ? "" : "|", c->name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* ------------------------------------------------------------------ */
/* Value parsers: one per kind. Each reads text (trimmed), writes s only on
 * success, and explains a failure in err.                             */

typedef int (*parse_fn)(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                        size_t errlen);
typedef void (*format_fn)(const mpm__settings_t *s, const directive_t *d, char *buf, size_t len);

static int parse_flag(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                      size_t errlen)
{
    if (strcasecmp(v, "on") == 0)
        store_num(s, d, 1);
    else if (strcasecmp(v, "off") == 0)
        store_num(s, d, 0);
    else
        return fail(err, errlen, "%s: '%s' is not On or Off", d->name, v);
    return 0;
}

static int parse_uint(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                      size_t errlen)
{
    uint64_t n;
    int overflow;
    if (is_negative_number(v))
        return out_of_range(d, v, err, errlen);
    const char *end = parse_digits(v, &n, &overflow);
    if (overflow)
        return out_of_range(d, v, err, errlen);
    if (!end || *end)
        return fail(err, errlen, "%s: '%s' is not a number", d->name, v);
    if (check_range(d, n, v, err, errlen))
        return MPM_ECONFIG;
    store_num(s, d, n);
    return 0;
}

/* A number followed by one of a table's unit suffixes (case-insensitive,
 * spaces allowed between); the first entry is the unit of a bare number. */
typedef struct unit {
    const char *suffix;
    uint64_t factor;
} unit_t;

static const unit_t size_units[] = {
    {"", 1}, {"K", 1ull << 10}, {"M", 1ull << 20}, {"G", 1ull << 30}, {NULL, 0}};

/* Seconds are httpd's unit; "300ms" is milliseconds. */
static const unit_t time_units[] = {{"", 1000}, {"s", 1000}, {"ms", 1}, {NULL, 0}};

static int parse_scaled(const char *v, const unit_t *units, uint64_t *out, int *overflow)
{
    uint64_t n;
    const char *end = parse_digits(v, &n, overflow);
    if (!end)
        return -1;
    end = skip_spaces(end);
    for (const unit_t *u = units; u->suffix; u++) {
        if (strcasecmp(end, u->suffix) != 0)
            continue;
        if (scale(n, u->factor, out)) {
            *overflow = 1;
            return -1;
        }
        return 0;
    }
    return -1;
}

static int parse_size(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                      size_t errlen)
{
    uint64_t n;
    int overflow = 0;
    if (is_negative_number(v))
        return out_of_range(d, v, err, errlen);
    if (parse_scaled(v, size_units, &n, &overflow)) {
        if (overflow)
            return out_of_range(d, v, err, errlen);
        return fail(err, errlen, "%s: '%s' is not a size (bytes, or N followed by K, M or G)",
                    d->name, v);
    }
    if (check_range(d, n, v, err, errlen))
        return MPM_ECONFIG;
    store_num(s, d, n);
    return 0;
}

/* The digits after a decimal point, as thousandths ("5" is 500, "25" is
 * 250). Returns the end of the digits, NULL when there are none; *ndigits
 * counts them all, so the caller can refuse more than MILLI_DECIMALS. */
static const char *parse_thousandths(const char *p, uint64_t *out, size_t *ndigits)
{
    uint64_t n = 0;
    size_t i = 0;
    for (; isdigit((unsigned char)p[i]); i++)
        if (i < MILLI_DECIMALS)
            n = n * 10 + (uint64_t)(p[i] - '0');
    *ndigits = i;
    for (size_t k = i; k < MILLI_DECIMALS; k++)
        n *= 10;
    *out = n;
    return i ? p + i : NULL;
}

/* "2", "1.5", "0.25", "2.125": exact in thousandths, where httpd's strtod
 * and truncation would make "1.5" a factor of 1. */
static int parse_milli(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                       size_t errlen)
{
    uint64_t whole, frac = 0, milli;
    int overflow;
    if (is_negative_number(v))
        return out_of_range(d, v, err, errlen);
    const char *end = parse_digits(v, &whole, &overflow);
    if (overflow)
        return out_of_range(d, v, err, errlen);
    if (end && *end == '.') {
        size_t ndigits;
        end = parse_thousandths(end + 1, &frac, &ndigits);
        if (end && *end == '\0' && ndigits > MILLI_DECIMALS)
            return fail(err, errlen, "%s: '%s' has more than %d decimals", d->name, v,
                        MILLI_DECIMALS);
    }
    if (!end || *end)
        return fail(err, errlen, "%s: '%s' is not a number (N, or N.ddd with up to %d decimals)",
                    d->name, v, MILLI_DECIMALS);
    /* whole <= UINT64_MAX / 1000 leaves room for the 999 thousandths. */
    if (scale(whole, MILLI, &milli))
        return out_of_range(d, v, err, errlen);
    milli += frac;
    if (check_range(d, milli, v, err, errlen))
        return MPM_ECONFIG;
    store_num(s, d, milli);
    return 0;
}

/* Parses and range-checks one time value for directive d. */
static int parse_time_value(const directive_t *d, const char *v, uint64_t *ms, char *err,
                            size_t errlen)
{
    int overflow = 0;
    if (is_negative_number(v))
        return out_of_range(d, v, err, errlen);
    if (parse_scaled(v, time_units, ms, &overflow)) {
        if (overflow)
            return out_of_range(d, v, err, errlen);
        return fail(err, errlen, "%s: '%s' is not a time (seconds, or N ms)", d->name, v);
    }
    return check_range(d, *ms, v, err, errlen);
}

static int parse_time(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                      size_t errlen)
{
    uint64_t ms;
    if (parse_time_value(d, v, &ms, err, errlen))
        return MPM_ECONFIG;
    store_num(s, d, ms);
    return 0;
}

/* The choice v names, or NULL with the list of valid ones in err. */
static const choice_t *choose(const directive_t *d, const char *v, char *err, size_t errlen)
{
    const choice_t *c = find_choice(d->choices, v);
    if (!c) {
        char list[128];
        join_choices(d->choices, list, sizeof list);
        fail(err, errlen, "%s: '%s' is not one of %s", d->name, v, list);
    }
    return c;
}

static int parse_mpm(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                     size_t errlen)
{
    const char *canonical = mpm__strategy_canonical(v);
    if (!canonical) {
        char list[128];
        mpm__strategy_list(list, sizeof list);
        return fail(err, errlen, "%s: '%s' is not one of %s", d->name, v, list);
    }
    /* Store the canonical spelling, whatever the case given. */
    snprintf(field(s, d), d->size, "%s", canonical);
    return 0;
}

static int parse_level(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                       size_t errlen)
{
    const choice_t *c = choose(d, v, err, errlen);
    if (!c)
        return MPM_ECONFIG;
    store_num(s, d, (uint64_t)c->value);
    return 0;
}

static int add_listen(mpm__settings_t *s, const directive_t *d, const char *v, int tls, char *err,
                      size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    char why[200];
    if (s->nlisten >= MPM__MAX_LISTENERS)
        return fail(err, errlen, "%s: too many listeners (at most %d)", d->name,
                    MPM__MAX_LISTENERS);
    mpm__listen_spec_t *spec = &s->listen[s->nlisten];
    if (strlen(v) >= sizeof spec->addr)
        return fail(err, errlen, "%s: address too long (at most %zu characters)", d->name,
                    sizeof spec->addr - 1);
    if (mpm__parse_addr(v, &ss, &sslen, why, sizeof why))
        return fail(err, errlen, "%s: %s", d->name, why);
    snprintf(spec->addr, sizeof spec->addr, "%s", v);
    spec->host_fd = -1;
    spec->tls = tls;
    s->nlisten++;
    return 0;
}

static int parse_listen(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                        size_t errlen)
{
    return add_listen(s, d, v, 0, err, errlen);
}

static int parse_tls_listen(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                            size_t errlen)
{
    return add_listen(s, d, v, 1, err, errlen);
}

/* "CERT [KEY]": paths without spaces (mpm_config_add_tls_certificate()
 * takes any path). */
static int parse_cert(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                      size_t errlen)
{
    const char *sp = v + strcspn(v, " \t");
    const char *key = skip_spaces(sp);
    if (strpbrk(key, " \t"))
        return fail(err, errlen, "%s: '%s' is not CERTFILE [KEYFILE]", d->name, v);
    char cert[MPM__CERT_PATH_MAX];
    size_t n = (size_t)(sp - v);
    if (n >= sizeof cert)
        return fail(err, errlen, "%s: path too long (at most %zu characters)", d->name,
                    sizeof cert - 1);
    memcpy(cert, v, n);
    cert[n] = '\0';
    return mpm__settings_add_cert(s, cert, key, err, errlen);
}

int mpm__settings_add_cert(mpm__settings_t *s, const char *cert, const char *key, char *err,
                           size_t errlen)
{
    if (s->ntls_cert >= MPM__MAX_CERTS)
        return fail(err, errlen, "TLSCertificate: too many certificates (at most %d)",
                    MPM__MAX_CERTS);
    mpm__cert_spec_t *c = &s->tls_cert[s->ntls_cert];
    if (!*cert)
        return fail(err, errlen, "TLSCertificate: missing certificate file");
    if (strlen(cert) >= sizeof c->cert || strlen(key) >= sizeof c->key)
        return fail(err, errlen, "TLSCertificate: path too long (at most %zu characters)",
                    sizeof c->cert - 1);
    snprintf(c->cert, sizeof c->cert, "%s", cert);
    snprintf(c->key, sizeof c->key, "%s", key);
    s->ntls_cert++;
    return 0;
}

/* httpd's SSLProtocol syntax, for the versions we speak: "all", "TLSv1.2",
 * "TLSv1.3", each word optionally prefixed with + or -. A list that starts
 * with +/- changes the current value; one that does not replaces it. */
static int parse_protocols(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                           size_t errlen)
{
    static const choice_t versions[] = {{"all", MPM__TLS_1_2 | MPM__TLS_1_3},
                                        {"TLSv1.2", MPM__TLS_1_2},
                                        {"TLSv1.3", MPM__TLS_1_3},
                                        {NULL, 0}};
    unsigned mask = (v[0] == '+' || v[0] == '-') ? s->tls_protocols : 0;
    char word[32];
    for (const char *p = skip_spaces(v); *p; p = skip_spaces(p)) {
        size_t n = strcspn(p, " \t");
        char sign = (*p == '+' || *p == '-') ? *p : 0;
        size_t skip = sign ? 1 : 0;
        if (n - skip >= sizeof word || n == skip)
            return fail(err, errlen, "%s: '%.*s' is not a protocol", d->name, (int)n, p);
        memcpy(word, p + skip, n - skip);
        word[n - skip] = '\0';
        const choice_t *c = find_choice(versions, word);
        if (!c)
            return fail(err, errlen, "%s: '%s' is not supported (TLSv1.2, TLSv1.3 or all)",
                        d->name, word);
        mask = sign == '-' ? mask & ~(unsigned)c->value : mask | (unsigned)c->value;
        p += n;
    }
    if (!mask)
        return fail(err, errlen, "%s: '%s' leaves no protocol", d->name, v);
    store_num(s, d, mask);
    return 0;
}

static int parse_ciphers(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                         size_t errlen)
{
    char why[200];
    if (strlen(v) >= d->size)
        return fail(err, errlen, "%s: value too long (at most %zu characters)", d->name,
                    d->size - 1);
    /* The defaults are known good: no need to start OpenSSL for them. */
    if (!(d->def && strcmp(v, d->def) == 0) &&
        mpm__tls_check_ciphers(v, d->min == 1, why, sizeof why) != 0)
        return fail(err, errlen, "%s: %s", d->name, why);
    memcpy(field(s, d), v, strlen(v) + 1);
    return 0;
}

/* ---- RequestReadTimeout, in httpd's syntax ----
 * "20" sets both stages to 20 s (no MinRate); otherwise space-separated
 * parts "header=T[-MAX][,MinRate=R]" and "body=..." replace their stage
 * (a stage not named keeps its value). T = 0 turns the stage off; a range
 * needs MinRate, as in httpd. */

#define MIN_RATE_MAX ((uint64_t)1 << 32)

/* Parses "T" or "T-MAX" into t. */
static int parse_stage_times(const directive_t *d, const char *v, mpm__read_timeout_t *t, char *err,
                             size_t errlen)
{
    char first[SET_TEXT_MAX];
    const char *dash = strchr(v, '-');
    if (dash == v)
        return out_of_range(d, v, err, errlen); /* "-5" */
    size_t n = dash ? (size_t)(dash - v) : strlen(v);
    snprintf(first, sizeof first, "%.*s", (int)n, v);
    uint64_t timeout, max = 0;
    if (parse_time_value(d, first, &timeout, err, errlen))
        return MPM_ECONFIG;
    if (dash && parse_time_value(d, dash + 1, &max, err, errlen))
        return MPM_ECONFIG;
    if (dash && max <= timeout)
        return fail(err, errlen, "%s: '%s': the maximum must be larger than the timeout", d->name,
                    v);
    t->timeout_ms = (int64_t)timeout;
    t->max_ms = (int64_t)max;
    return 0;
}

static int parse_min_rate(const directive_t *d, const char *v, uint64_t *rate, char *err,
                          size_t errlen)
{
    int overflow;
    const char *end = parse_digits(v, rate, &overflow);
    if (!end || *end || *rate == 0 || *rate > MIN_RATE_MAX)
        return fail(err, errlen, "%s: MinRate '%s' is not a rate (1..%llu bytes per second)",
                    d->name, v, (unsigned long long)MIN_RATE_MAX);
    return 0;
}

/* One stage's value: "T[-MAX][,MinRate=R]". */
static int parse_stage(const directive_t *d, const char *v, mpm__read_timeout_t *out, char *err,
                       size_t errlen)
{
    char times[SET_TEXT_MAX];
    mpm__read_timeout_t t = {0, 0, 0};
    const char *comma = strchr(v, ',');
    size_t n = comma ? (size_t)(comma - v) : strlen(v);
    snprintf(times, sizeof times, "%.*s", (int)n, v);
    if (parse_stage_times(d, times, &t, err, errlen))
        return MPM_ECONFIG;
    if (comma) {
        if (strncasecmp(comma + 1, "minrate=", 8) != 0)
            return fail(err, errlen, "%s: '%s': expected MinRate=R after the comma", d->name,
                        comma + 1);
        if (parse_min_rate(d, comma + 9, &t.min_rate, err, errlen))
            return MPM_ECONFIG;
    }
    if (t.max_ms && !t.min_rate)
        return fail(err, errlen, "%s: '%s': a timeout range needs MinRate", d->name, v);
    if (t.timeout_ms == 0 && (t.max_ms || t.min_rate))
        return fail(err, errlen, "%s: '%s': a stage turned off (0) takes no range or MinRate",
                    d->name, v);
    *out = t;
    return 0;
}

/* Applies one "header=..." / "body=..." part. */
static int parse_read_timeout_part(const directive_t *d, const char *part,
                                   mpm__read_timeout_t *header, mpm__read_timeout_t *body,
                                   char *err, size_t errlen)
{
    if (strncasecmp(part, "header=", 7) == 0)
        return parse_stage(d, part + 7, header, err, errlen);
    if (strncasecmp(part, "body=", 5) == 0)
        return parse_stage(d, part + 5, body, err, errlen);
    return fail(err, errlen,
                "%s: unknown part '%s' (expected N, or header=T[-MAX][,MinRate=R] and/or "
                "body=T[-MAX][,MinRate=R])",
                d->name, part);
}

/* Walks the space-separated parts of v. */
static int parse_read_timeout_parts(const directive_t *d, const char *v,
                                    mpm__read_timeout_t *header, mpm__read_timeout_t *body,
                                    char *err, size_t errlen)
{
    char part[SET_TEXT_MAX];
    for (const char *p = skip_spaces(v); *p; p = skip_spaces(p)) {
        size_t n = strcspn(p, " \t");
        snprintf(part, sizeof part, "%.*s", (int)n, p);
        if (parse_read_timeout_part(d, part, header, body, err, errlen))
            return MPM_ECONFIG;
        p += n;
    }
    return 0;
}

static int parse_read_timeout(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                              size_t errlen)
{
    mpm__read_timeout_t header = s->header_timeout, body = s->body_timeout;
    int rc;
    if (isdigit((unsigned char)v[0]) || is_negative_number(v)) {
        /* A bare time sets both stages, without MinRate. */
        uint64_t ms;
        rc = parse_time_value(d, v, &ms, err, errlen);
        header = body = (mpm__read_timeout_t){(int64_t)ms, 0, 0};
    } else if (*v == '\0') {
        rc = fail(err, errlen, "%s: '' is not a time (seconds, or N ms)", d->name);
    } else {
        rc = parse_read_timeout_parts(d, v, &header, &body, err, errlen);
    }
    if (rc)
        return MPM_ECONFIG;
    s->header_timeout = header;
    s->body_timeout = body;
    return 0;
}

static int parse_body_timeout(mpm__settings_t *s, const directive_t *d, const char *v, char *err,
                              size_t errlen)
{
    return parse_stage(d, v, &s->body_timeout, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Value formatters: the inverse of the parsers, for mpm_config_get(). */

static void format_flag(const mpm__settings_t *s, const directive_t *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s", load_num(s, d) ? "On" : "Off");
}

static void format_uint(const mpm__settings_t *s, const directive_t *d, char *buf, size_t len)
{
    snprintf(buf, len, "%llu", (unsigned long long)load_num(s, d));
}

static void format_milli_field(const mpm__settings_t *s, const directive_t *d, char *buf,
                               size_t len)
{
    format_milli(load_num(s, d), buf, len);
}

static void format_time_field(const mpm__settings_t *s, const directive_t *d, char *buf, size_t len)
{
    format_time(load_num(s, d), 0, buf, len);
}

/* Unset, the strategy a server would pick: what the host will get. */
static void format_mpm(const mpm__settings_t *s, const directive_t *d, char *buf, size_t len)
{
    const char *name = cfield(s, d);
    snprintf(buf, len, "%s", name[0] ? name : mpm__strategy_default_name());
}

static void format_level(const mpm__settings_t *s, const directive_t *d, char *buf, size_t len)
{
    uint64_t v = load_num(s, d);
    for (const choice_t *c = d->choices; c->name; c++) {
        if ((uint64_t)c->value == v) {
            snprintf(buf, len, "%s", c->name);
            return;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* Addresses only (Listen's or TLSListen's): host fds have no text form a
 * Listen line could take. */
static void format_listen(const mpm__settings_t *s, const directive_t *d, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    int tls = d->kind == K_TLS_LISTEN;
    for (unsigned i = 0; i < s->nlisten && used < len; i++) {
        if (s->listen[i].host_fd >= 0 || s->listen[i].tls != tls)
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? " " : "", s->listen[i].addr);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* "20-40,MinRate=500", "20", "0". */
static void format_stage(const mpm__read_timeout_t *t, char *buf, size_t len)
{
    char timeout[32], max[40] = "", rate[48] = "";
    format_time((uint64_t)t->timeout_ms, 0, timeout, sizeof timeout);
    if (t->max_ms) {
        max[0] = '-';
        format_time((uint64_t)t->max_ms, 0, max + 1, sizeof max - 1);
    }
    if (t->min_rate)
        snprintf(rate, sizeof rate, ",MinRate=%llu", (unsigned long long)t->min_rate);
    snprintf(buf, len, "%s%s%s", timeout, max, rate);
}

static void format_read_timeout(const mpm__settings_t *s, const directive_t *d, char *buf,
                                size_t len)
{
    (void)d;
    char header[128], body[128];
    format_stage(&s->header_timeout, header, sizeof header);
    format_stage(&s->body_timeout, body, sizeof body);
    snprintf(buf, len, "header=%s body=%s", header, body);
}

static void format_body_timeout(const mpm__settings_t *s, const directive_t *d, char *buf,
                                size_t len)
{
    (void)d;
    format_stage(&s->body_timeout, buf, len);
}

/* "cert key, cert2 key2": each pair as TLSCertificate takes it. */
static void format_certs(const mpm__settings_t *s, const directive_t *d, char *buf, size_t len)
{
    (void)d;
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < s->ntls_cert && used < len; i++) {
        const mpm__cert_spec_t *c = &s->tls_cert[i];
        int n = snprintf(buf + used, len - used, "%s%s%s%s", i ? ", " : "", c->cert,
                         c->key[0] ? " " : "", c->key);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static void format_protocols(const mpm__settings_t *s, const directive_t *d, char *buf, size_t len)
{
    (void)d;
    unsigned m = s->tls_protocols;
    snprintf(buf, len, "%s%s%s", m & MPM__TLS_1_2 ? "TLSv1.2" : "",
             (m & MPM__TLS_1_2) && (m & MPM__TLS_1_3) ? " " : "", m & MPM__TLS_1_3 ? "TLSv1.3" : "");
}

static void format_text(const mpm__settings_t *s, const directive_t *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s", (const char *)cfield(s, d));
}

static const struct kind_ops {
    parse_fn parse;
    format_fn format;
} kind_ops[K_COUNT] = {
    [K_FLAG] = {parse_flag, format_flag},
    [K_UINT] = {parse_uint, format_uint},
    [K_SIZE] = {parse_size, format_uint},
    [K_MILLI] = {parse_milli, format_milli_field},
    [K_TIME] = {parse_time, format_time_field},
    [K_MPM] = {parse_mpm, format_mpm},
    [K_LEVEL] = {parse_level, format_level},
    [K_LISTEN] = {parse_listen, format_listen},
    [K_READ_TIMEOUT] = {parse_read_timeout, format_read_timeout},
    [K_BODY_TIMEOUT] = {parse_body_timeout, format_body_timeout},
    [K_TLS_LISTEN] = {parse_tls_listen, format_listen},
    [K_CERT] = {parse_cert, format_certs},
    [K_PROTOCOLS] = {parse_protocols, format_protocols},
    [K_CIPHERS] = {parse_ciphers, format_text},
};

/* ------------------------------------------------------------------ */
/* Settings                                                           */

static const directive_t *find_directive(const char *name)
{
    for (size_t i = 0; i < NDIRECTIVES; i++)
        if (strcasecmp(directives[i].name, name) == 0)
            return &directives[i];
    return NULL;
}

void mpm__settings_defaults(mpm__settings_t *s)
{
    memset(s, 0, sizeof *s);
    for (unsigned i = 0; i < MPM__MAX_LISTENERS; i++)
        s->listen[i].host_fd = -1;
    /* The defaults are text in the table, parsed like any value; the unit
     * tests check that each parses. */
    for (size_t i = 0; i < NDIRECTIVES; i++)
        if (directives[i].def)
            kind_ops[directives[i].kind].parse(s, &directives[i], directives[i].def, NULL, 0);
}

int mpm__settings_check(const mpm__settings_t *s, char *err, size_t errlen)
{
    if (s->nlisten == 0)
        return fail(err, errlen, "no listener: set Listen (or add a host socket)");
    for (unsigned i = 0; i < s->nlisten; i++)
        if (s->listen[i].tls && s->ntls_cert == 0)
            return fail(err, errlen, "a TLS listener needs a certificate: set TLSCertificate");
    if (s->max_spare_servers < s->min_spare_servers)
        return fail(err, errlen, "MaxSpareServers (%u) must be at least MinSpareServers (%u)",
                    s->max_spare_servers, s->min_spare_servers);
    if (s->max_spare_threads < s->min_spare_threads)
        return fail(err, errlen, "MaxSpareThreads (%u) must be at least MinSpareThreads (%u)",
                    s->max_spare_threads, s->min_spare_threads);
    if (s->threads_per_child > s->thread_limit)
        return fail(err, errlen, "ThreadsPerChild (%u) must not exceed ThreadLimit (%u)",
                    s->threads_per_child, s->thread_limit);
    /* 0 means "the strategy's default", checked by the strategy. */
    if (s->start_servers && s->server_limit && s->start_servers > s->server_limit)
        return fail(err, errlen, "StartServers (%u) must not exceed ServerLimit (%u)",
                    s->start_servers, s->server_limit);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Public API                                                         */

int mpm_config_new(mpm_config_t **out)
{
    if (!out)
        return MPM_EINVAL;
    *out = NULL;
    mpm_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return MPM_ENOMEM;
    mpm__settings_defaults(&cfg->s);
    *out = cfg;
    return 0;
}

void mpm_config_free(mpm_config_t *cfg)
{
    free(cfg);
}

const char *mpm_config_errmsg(const mpm_config_t *cfg)
{
    return cfg ? cfg->errmsg : "";
}

/* Copies v without leading and trailing white space, as a config file
 * parser would hand it over. Returns -1 when it does not fit. */
static int trim_copy(const char *v, char *buf, size_t len)
{
    v = skip_spaces(v);
    size_t n = strlen(v);
    while (n && isspace((unsigned char)v[n - 1]))
        n--;
    if (n >= len)
        return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return 0;
}

int mpm_config_set(mpm_config_t *cfg, const char *key, const char *value)
{
    char text[SET_TEXT_MAX];
    if (!cfg)
        return MPM_EINVAL;
    if (!key)
        return fail(cfg->errmsg, sizeof cfg->errmsg, "missing directive name");
    const directive_t *d = find_directive(key);
    if (!d)
        return fail(cfg->errmsg, sizeof cfg->errmsg, "unknown directive '%s'", key);
    if (!value)
        return fail(cfg->errmsg, sizeof cfg->errmsg, "%s: missing value", d->name);
    if (trim_copy(value, text, sizeof text))
        return fail(cfg->errmsg, sizeof cfg->errmsg, "%s: value too long (at most %d characters)",
                    d->name, SET_TEXT_MAX - 1);
    /* Parse into a copy, so that a failure leaves the configuration as it
     * was whatever the parser had written. */
    mpm__settings_t next = cfg->s;
    int rc = kind_ops[d->kind].parse(&next, d, text, cfg->errmsg, sizeof cfg->errmsg);
    if (rc == 0) {
        cfg->s = next;
        cfg->errmsg[0] = '\0';
    }
    return rc;
}

int mpm_config_set_int(mpm_config_t *cfg, const char *key, long long value)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", value);
    return mpm_config_set(cfg, key, text);
}

int mpm_config_get(const mpm_config_t *cfg, const char *key, char *buf, size_t len)
{
    char text[GET_TEXT_MAX];
    if (!cfg || !key)
        return MPM_EINVAL;
    const directive_t *d = find_directive(key);
    if (!d)
        return MPM_ECONFIG;
    kind_ops[d->kind].format(&cfg->s, d, text, sizeof text);
    size_t n = strlen(text);
    if (!buf && len == 0)
        return (int)n; /* the caller asks for the size to allocate */
    if (!buf || n >= len)
        return MPM_ERANGE;
    memcpy(buf, text, n + 1);
    return (int)n;
}

/* SO_TYPE of fd: SOCK_STREAM, another type, or -errno. */
static int socket_type(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
        return -errno;
    return type;
}

static int add_listen_fd(mpm_config_t *cfg, int fd, int tls)
{
    if (!cfg)
        return MPM_EINVAL;
    if (fd < 0) {
        fail(cfg->errmsg, sizeof cfg->errmsg, "listen fd %d: not a file descriptor", fd);
        return MPM_EINVAL;
    }
    if (socket_type(fd) != SOCK_STREAM) {
        fail(cfg->errmsg, sizeof cfg->errmsg, "listen fd %d: not a stream socket", fd);
        return MPM_EINVAL;
    }
    mpm__settings_t *s = &cfg->s;
    for (unsigned i = 0; i < s->nlisten; i++)
        if (s->listen[i].host_fd == fd)
            return fail(cfg->errmsg, sizeof cfg->errmsg, "listen fd %d: already added", fd);
    if (s->nlisten >= MPM__MAX_LISTENERS)
        return fail(cfg->errmsg, sizeof cfg->errmsg,
                    "listen fd %d: too many listeners (at most %d)", fd, MPM__MAX_LISTENERS);
    s->listen[s->nlisten].addr[0] = '\0';
    s->listen[s->nlisten].host_fd = fd;
    s->listen[s->nlisten].tls = tls;
    s->nlisten++;
    cfg->errmsg[0] = '\0';
    return 0;
}

int mpm_config_add_listen_fd(mpm_config_t *cfg, int fd)
{
    return add_listen_fd(cfg, fd, 0);
}

int mpm_config_add_tls_listen_fd(mpm_config_t *cfg, int fd)
{
    return add_listen_fd(cfg, fd, 1);
}

int mpm_config_add_tls_certificate(mpm_config_t *cfg, const char *cert_file, const char *key_file)
{
    if (!cfg || !cert_file)
        return MPM_EINVAL;
    int rc = mpm__settings_add_cert(&cfg->s, cert_file, key_file ? key_file : "", cfg->errmsg,
                                    sizeof cfg->errmsg);
    if (rc == 0)
        cfg->errmsg[0] = '\0';
    return rc;
}

int mpm_config_set_handler(mpm_config_t *cfg, mpm_request_cb cb, void *data)
{
    if (!cfg || !cb)
        return MPM_EINVAL;
    cfg->handler = cb;
    cfg->handler_data = data;
    return 0;
}

int mpm_config_set_child_hooks(mpm_config_t *cfg, mpm_init_cb init, mpm_exit_cb exit_cb, void *data)
{
    if (!cfg)
        return MPM_EINVAL;
    cfg->child_init = init;
    cfg->child_exit = exit_cb;
    cfg->child_init_ex = NULL;
    cfg->child_exit_ex = NULL;
    cfg->child_data = data;
    return 0;
}

int mpm_config_set_child_hooks_ex(mpm_config_t *cfg, mpm_hook_init_cb init,
                                  mpm_hook_exit_cb exit_cb, void *data)
{
    if (!cfg)
        return MPM_EINVAL;
    cfg->child_init = NULL;
    cfg->child_exit = NULL;
    cfg->child_init_ex = init;
    cfg->child_exit_ex = exit_cb;
    cfg->child_data = data;
    return 0;
}

int mpm_config_set_thread_hooks(mpm_config_t *cfg, mpm_init_cb init, mpm_exit_cb exit_cb,
                                void *data)
{
    if (!cfg)
        return MPM_EINVAL;
    cfg->thread_init = init;
    cfg->thread_exit = exit_cb;
    cfg->thread_init_ex = NULL;
    cfg->thread_exit_ex = NULL;
    cfg->thread_data = data;
    return 0;
}

int mpm_config_set_thread_hooks_ex(mpm_config_t *cfg, mpm_hook_init_cb init,
                                   mpm_hook_exit_cb exit_cb, void *data)
{
    if (!cfg)
        return MPM_EINVAL;
    cfg->thread_init = NULL;
    cfg->thread_exit = NULL;
    cfg->thread_init_ex = init;
    cfg->thread_exit_ex = exit_cb;
    cfg->thread_data = data;
    return 0;
}

int mpm_config_set_log_cb(mpm_config_t *cfg, mpm_log_cb cb, void *data)
{
    if (!cfg)
        return MPM_EINVAL;
    cfg->log_cb = cb;
    cfg->log_data = data;
    return 0;
}

int mpm_config_set_access_log_cb(mpm_config_t *cfg, mpm_access_log_cb cb, void *data)
{
    if (!cfg)
        return MPM_EINVAL;
    cfg->access_cb = cb;
    cfg->access_data = data;
    return 0;
}
