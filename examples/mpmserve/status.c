/* mpmserve: GET /status, the scoreboard as JSON. */
#include "mpmserve.h"

#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* Writes s as a JSON string (quotes included) into out. */
static void json_string(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    if (cap < 3)
        return;
    out[o++] = '"';
    for (; s && *s && o + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* One scoreboard row; returns 0 when slot i holds no live process. */
static int child_row(mpm_server_t *srv, unsigned i, int first, char *out, size_t cap)
{
    mpm_child_stats_t c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    if (mpm_server_child_stats(srv, i, &c) != 0)
        return 0;
    char state[32];
    json_string(state, sizeof state, c.state ? c.state : "");
    int len = snprintf(out, cap,
                       "%s\n  {\"slot\": %u, \"pid\": %d, \"generation\": %u, \"state\": %s, "
                       "\"busy_workers\": %u, \"idle_workers\": %u, \"parked_connections\": %u, "
                       "\"reading_connections\": %u, \"writing_connections\": %u, "
                       "\"lingering_connections\": %u, "
                       "\"connections_served\": %" PRIu64 ", \"requests_served\": %" PRIu64
                       ", \"idle_ms\": %" PRIu64 "}",
                       first ? "" : ",", i, c.pid, c.generation, state, c.busy_workers,
                       c.idle_workers, c.parked_connections, c.reading_connections,
                       c.writing_connections, c.lingering_connections, c.connections_served,
                       c.requests_served, c.idle_ms);
    return len > 0 && (size_t)len < cap ? len : 0;
}

/* The summary, then one row per live child, streamed: a server with
 * thousands of children does not need a buffer sized for all of them. */
void ms_status(mpm_request_t *req)
{
    mpm_server_t *srv = mpm_request_server(req);
    mpm_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (mpm_server_stats(srv, &st) != 0) {
        ms_send_text(req, 500, "stats not available\n");
        return;
    }
    char strategy[64];
    json_string(strategy, sizeof strategy, st.strategy ? st.strategy : "");
    char buf[1024];
    int len = snprintf(buf, sizeof buf,
                       "{\"strategy\": %s, \"generation\": %u, \"processes\": %u, "
                       "\"busy_workers\": %u, \"idle_workers\": %u, "
                       "\"parked_connections\": %u, \"reading_connections\": %u, "
                       "\"writing_connections\": %u, \"lingering_connections\": %u, "
                       "\"connections_served\": %" PRIu64 ", "
                       "\"requests_served\": %" PRIu64 ", \"uptime_ms\": %" PRIu64 ", "
                       "\"children\": [",
                       strategy, st.generation, st.processes, st.busy_workers, st.idle_workers,
                       st.parked_connections, st.reading_connections, st.writing_connections,
                       st.lingering_connections, st.connections_served, st.requests_served,
                       st.uptime_ms);
    mpm_response_add_header(req, "Content-Type", "application/json");
    mpm_response_add_header(req, "Cache-Control", "no-store");
    if (mpm_response_write(req, buf, (size_t)len) != 0)
        return;
    int first = 1;
    for (unsigned i = 0; i < st.slots; i++) {
        int n = child_row(srv, i, first, buf, sizeof buf);
        if (n > 0 && mpm_response_write(req, buf, (size_t)n) != 0)
            return;
        first = first && n == 0;
    }
    mpm_response_write(req, "\n]}\n", 4);
    mpm_response_end(req);
}

/* GET /metrics: the library's Prometheus rendering, sized on the first try
 * for a typical server and retried once with what it says it needs. */
void ms_metrics(mpm_request_t *req)
{
    char small[2048];
    char *buf = small;
    size_t need = 0;
    int n = mpm_server_metrics(mpm_request_server(req), buf, sizeof small, &need);
    if (n == MPM_ERANGE && (buf = malloc(need)) != NULL)
        n = mpm_server_metrics(mpm_request_server(req), buf, need, NULL);
    if (n < 0) {
        ms_send_text(req, 500, "metrics unavailable\n");
    } else {
        mpm_response_add_header(req, "Content-Type", "text/plain; version=0.0.4");
        mpm_response_send(req, buf, (size_t)n);
    }
    if (buf && buf != small)
        free(buf);
}
