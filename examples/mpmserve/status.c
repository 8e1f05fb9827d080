/* mpmserve: GET /status, the scoreboard as JSON. */
#include "mpmserve.h"

#include <inttypes.h>
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

void ms_status(mpm_request_t *req)
{
    mpm_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    int rc = mpm_server_stats(mpm_request_server(req), &st);
    if (rc != 0) {
        ms_send_text(req, 500, "stats not available\n");
        return;
    }
    char strategy[64];
    json_string(strategy, sizeof strategy, st.strategy ? st.strategy : "");
    char body[1024];
    int len =
        snprintf(body, sizeof body,
                 "{\"strategy\": %s, \"generation\": %u, \"processes\": %u, "
                 "\"busy_workers\": %u, \"idle_workers\": %u, "
                 "\"parked_connections\": %u, \"connections_served\": %" PRIu64 ", "
                 "\"requests_served\": %" PRIu64 ", \"uptime_ms\": %" PRIu64 ", "
                 "\"children\": []}\n",
                 strategy, st.generation, st.processes, st.busy_workers, st.idle_workers,
                 st.parked_connections, st.connections_served, st.requests_served, st.uptime_ms);
    if (len < 0 || (size_t)len >= sizeof body) {
        ms_send_text(req, 500, "status too long\n");
        return;
    }
    mpm_response_add_header(req, "Content-Type", "application/json");
    mpm_response_add_header(req, "Cache-Control", "no-store");
    mpm_response_send(req, body, (size_t)len);
}
