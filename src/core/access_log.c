/* Access-log entries: one per response the library sends, the handler's and
 * its own answers alike, with the peer as accept gave it. */
#include "conn.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int format_addr(const struct sockaddr_storage *ss, char *out, size_t len)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)len);
        return ntohs(in->sin_port);
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)len);
        return ntohs(in6->sin6_port);
    }
    snprintf(out, len, "unix");
    return 0;
}

void mpm__conn_take_peer(mpm__conn_t *c)
{
    if (c->remote_port >= 0)
        return;
    if (c->peer_len == 0) {
        snprintf(c->remote, sizeof(c->remote), "-");
        c->remote_port = 0;
        return;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, &c->peer, c->peer_len);
    c->remote_port = format_addr(&ss, c->remote, sizeof(c->remote));
}

void mpm__conn_take_local(mpm__conn_t *c)
{
    if (c->local_port >= 0)
        return;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) != 0)
        ss.ss_family = AF_UNIX;
    c->local_port = format_addr(&ss, c->local, sizeof(c->local));
}

static uint64_t elapsed_us(int64_t since_us)
{
    int64_t now = mpm__now_us();
    return since_us && now > since_us ? (uint64_t)(now - since_us) : 0;
}

void mpm__access_log_request(const mpm_request_t *req)
{
    const mpm_server_t *srv = req->conn->srv;
    if (!srv->cfg.access_cb)
        return;
    mpm__conn_take_peer(req->conn);
    mpm_access_entry_t e = {
        .size = sizeof(e),
        .remote_addr = req->conn->remote,
        .method = req->head->method,
        .target = req->head->target,
        .version = req->head->version,
        .status = req->status,
        .bytes_sent = req->bytes_sent,
        .duration_us = elapsed_us(req->started_us),
        .remote_port = req->conn->remote_port,
        .request_id = req->id,
        .time_us = req->wall_us,
        .referer = mpm_request_header(req, "Referer"),
        .user_agent = mpm_request_header(req, "User-Agent"),
    };
    srv->cfg.access_cb(&e, srv->cfg.access_data);
}

void mpm__access_log_unparsed(mpm__conn_t *c, int status, uint64_t id, int64_t wall_us,
                              uint64_t bytes_sent)
{
    const mpm_server_t *srv = c->srv;
    if (!srv->cfg.access_cb)
        return;
    mpm__conn_take_peer(c);
    mpm_access_entry_t e = {
        .size = sizeof(e),
        .remote_addr = c->remote,
        .status = status,
        .bytes_sent = bytes_sent,
        .duration_us = elapsed_us(c->head_start_us),
        .remote_port = c->remote_port,
        .request_id = id,
        .time_us = wall_us,
    };
    srv->cfg.access_cb(&e, srv->cfg.access_data);
}
