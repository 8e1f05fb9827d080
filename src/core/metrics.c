/* The scoreboard in Prometheus' text exposition format (version 0.0.4),
 * rendered from the same snapshot mpm_server_stats() gives, so the numbers
 * a scraper sees are the ones /status shows. */
#include "internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A bounded writer: counts what the whole text needs even after the buffer
 * is full, so the caller learns the size to retry with. */
typedef struct metrics_out {
    char *buf;
    size_t cap, need;
} metrics_out_t;

static void out_printf(metrics_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(metrics_out_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->need < o->cap ? o->cap - o->need : 0;
    int n = vsnprintf(room ? o->buf + o->need : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->need += (size_t)n;
}

/* One metric family with a single unlabelled sample. */
static void family(metrics_out_t *o, const char *name, const char *type, const char *help,
                   uint64_t value)
{
    out_printf(o, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name,
               value);
}

static void render(metrics_out_t *o, const mpm_stats_t *st)
{
    out_printf(o, "# HELP mpm_info The strategy and library version serving.\n"
                  "# TYPE mpm_info gauge\n"
                  "mpm_info{strategy=\"%s\",version=\"%s\"} 1\n",
               st->strategy, mpm_version_string());
    family(o, "mpm_requests_total", "counter", "Requests served since start.",
           st->requests_served);
    family(o, "mpm_connections_total", "counter", "Connections accepted since start.",
           st->connections_served);
    out_printf(o, "# HELP mpm_workers Serving units (processes or threads) by state.\n"
                  "# TYPE mpm_workers gauge\n"
                  "mpm_workers{state=\"busy\"} %u\n"
                  "mpm_workers{state=\"idle\"} %u\n",
               st->busy_workers, st->idle_workers);
    out_printf(o,
               "# HELP mpm_connections Connections the event listener loops hold (no thread "
               "held), by state.\n"
               "# TYPE mpm_connections gauge\n"
               "mpm_connections{state=\"parked\"} %u\n"
               "mpm_connections{state=\"reading\"} %u\n"
               "mpm_connections{state=\"writing\"} %u\n"
               "mpm_connections{state=\"lingering\"} %u\n",
               st->parked_connections, st->reading_connections, st->writing_connections,
               st->lingering_connections);
    /* The parked count under its first name, for dashboards that use it. */
    family(o, "mpm_parked_connections", "gauge",
           "Idle keep-alive connections held by no thread.", st->parked_connections);
    family(o, "mpm_processes", "gauge", "Serving processes.", st->processes);
    family(o, "mpm_generation", "gauge", "Restart generation (bumped by each restart).",
           st->generation);
    out_printf(o, "# HELP mpm_uptime_seconds Time since the server started.\n"
                  "# TYPE mpm_uptime_seconds gauge\n"
                  "mpm_uptime_seconds %" PRIu64 ".%03u\n",
               st->uptime_ms / 1000, (unsigned)(st->uptime_ms % 1000));
}

int mpm_server_metrics(const mpm_server_t *srv, char *buf, size_t len, size_t *needed)
{
    if (!srv || (!buf && len))
        return MPM_EINVAL;
    mpm_stats_t st = {.size = sizeof(st)};
    int rc = mpm_server_stats(srv, &st);
    if (rc < 0)
        return rc;
    metrics_out_t o = {.buf = buf, .cap = len};
    render(&o, &st);
    if (needed)
        *needed = o.need + 1;
    if (o.need >= len || o.need > INT32_MAX)
        return MPM_ERANGE;
    return (int)o.need;
}
