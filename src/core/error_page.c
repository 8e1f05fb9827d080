/* The library's own error responses: the host's page (mpm_error_cb), when
 * it gave a usable one, else the engine's canned text/plain answer. Either
 * way the response closes the connection. */
#include "conn.h"

#include <stdio.h>
#include <string.h>

/* What the host may write as a body; a bigger page is its bug, and the
 * canned answer goes out instead. */

static int content_type_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

/* Asks the host for the page. Returns 1 with body and type filled. */
static int host_page(mpm__conn_t *c, int status, const mpm_request_t *req, uint64_t id, char *body,
                     size_t *body_len, const char **type)
{
    const mpm_config_t *cfg = &c->srv->cfg;
    if (!cfg->error_cb)
        return 0;
    mpm_error_page_t page = {
        .size = sizeof(page),
        .status = status,
        .method = req ? req->head->method : NULL,
        .target = req ? req->head->target : NULL,
        .request_id = id,
        .body = body,
        .body_cap = MPM__ERROR_BODY_MAX,
    };
    if (cfg->error_cb(&page, cfg->error_data) != 0)
        return 0;
    if (page.body_len > MPM__ERROR_BODY_MAX ||
        (page.content_type && !content_type_ok(page.content_type))) {
        mpm__log(c->srv, MPM_LOG_ERROR, "error page callback gave an unusable page for %d", status);
        return 0;
    }
    *body_len = page.body_len;
    *type = page.content_type ? page.content_type : "text/plain";
    return 1;
}

/* Head and body of the host's page into buf. */
static int format_page(mpm__conn_t *c, int status, const char *type, const char *body, size_t blen,
                       char *buf, size_t cap, size_t *body_len)
{
    mpm__h1_header_t ct = {.name = "Content-Type", .value = type};
    mpm__h1_response_t r = {
        .status = status,
        .headers = &ct,
        .nheaders = 1,
        .content_length = (int64_t)blen,
        .keepalive = 0,
    };
    mpm__h1_framing_t framing;
    int keep;
    int len = mpm__h1_format_head(c->h1, &r, buf, cap, &framing, &keep);
    if (len < 0)
        return len;
    if (framing == MPM__H1_NO_BODY)
        blen = 0; /* a HEAD request: the length, no body */
    if (blen > cap - (size_t)len)
        return MPM_ERANGE;
    memcpy(buf + len, body, blen);
    *body_len = blen;
    return len + (int)blen;
}

int mpm__error_page(mpm__conn_t *c, int status, const mpm_request_t *req, uint64_t id, char *body,
                    size_t *body_len, const char **type)
{
    if (host_page(c, status, req, id, body, body_len, type))
        return 1;
    int n = snprintf(body, MPM__ERROR_BODY_MAX, "%d %s\n", status, mpm__h1_reason(status));
    *body_len = n > 0 ? (size_t)n : 0;
    *type = "text/plain";
    return 0;
}

int mpm__error_response(mpm__conn_t *c, int status, const mpm_request_t *req, uint64_t id,
                        char *buf, size_t cap, size_t *body_len)
{
    char body[MPM__ERROR_BODY_MAX];
    size_t blen = 0;
    const char *type;
    if (host_page(c, status, req, id, body, &blen, &type)) {
        int len = format_page(c, status, type, body, blen, buf, cap, body_len);
        if (len >= 0)
            return len;
    }
    int len = mpm__h1_format_error(status, mpm__h1_is_head_request(c->h1), buf, cap);
    if (len < 0)
        return len;
    const char *sep = strstr(buf, "\r\n\r\n");
    *body_len = sep ? (size_t)len - (size_t)(sep + 4 - buf) : 0;
    return len;
}
