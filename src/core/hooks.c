/* The host's process and thread hooks, in their plain and context-taking
 * forms, and what a thread's init hook stored for its requests. */
#include "conn.h"
#include "internal.h"

static mpm_hook_ctx_t hook_ctx(mpm_server_t *srv, unsigned index)
{
    return (mpm_hook_ctx_t){.size = sizeof(mpm_hook_ctx_t),
                            .server = srv,
                            .slot = srv->slot_index,
                            .thread_index = index};
}

int mpm__hooks_child_init(mpm_server_t *srv)
{
    const mpm_config_t *cfg = &srv->cfg;
    if (cfg->child_init_ex) {
        mpm_hook_ctx_t ctx = hook_ctx(srv, 0);
        return cfg->child_init_ex(&ctx, cfg->child_data);
    }
    return cfg->child_init ? cfg->child_init(cfg->child_data) : 0;
}

void mpm__hooks_child_exit(mpm_server_t *srv)
{
    const mpm_config_t *cfg = &srv->cfg;
    if (cfg->child_exit_ex) {
        mpm_hook_ctx_t ctx = hook_ctx(srv, 0);
        cfg->child_exit_ex(&ctx, cfg->child_data);
    } else if (cfg->child_exit) {
        cfg->child_exit(cfg->child_data);
    }
}

int mpm__hooks_thread_init(mpm_server_t *srv, unsigned index)
{
    const mpm_config_t *cfg = &srv->cfg;
    if (cfg->thread_init_ex) {
        mpm_hook_ctx_t ctx = hook_ctx(srv, index);
        int rc = cfg->thread_init_ex(&ctx, cfg->thread_data);
        if (index < srv->nthread_data)
            srv->thread_data[index] = ctx.thread_data;
        return rc;
    }
    return cfg->thread_init ? cfg->thread_init(cfg->thread_data) : 0;
}

void mpm__hooks_thread_exit(mpm_server_t *srv, unsigned index)
{
    const mpm_config_t *cfg = &srv->cfg;
    if (cfg->thread_exit_ex) {
        mpm_hook_ctx_t ctx = hook_ctx(srv, index);
        if (index < srv->nthread_data) {
            ctx.thread_data = srv->thread_data[index];
            srv->thread_data[index] = NULL;
        }
        cfg->thread_exit_ex(&ctx, cfg->thread_data);
    } else if (cfg->thread_exit) {
        cfg->thread_exit(cfg->thread_data);
    }
}

/* A connection is served by one unit of this process: its index among the
 * process's units is the serving thread's. */
void *mpm_request_thread_data(const mpm_request_t *req)
{
    if (!req)
        return NULL;
    const mpm__conn_t *c = req->conn;
    mpm_server_t *srv = c->srv;
    const mpm__sb_worker_t *first = mpm__sb_worker(srv->sb, srv->slot_index, 0);
    if (!c->unit || c->unit < first)
        return NULL;
    size_t index = (size_t)(c->unit - first);
    return index < srv->nthread_data ? srv->thread_data[index] : NULL;
}
