#include <mpmlib/mpmlib.h> /* the smallest host: "Hello" on 127.0.0.1:8080 */
#include <stdio.h>

static void hello(mpm_request_t *req, void *data)
{
    mpm_response_add_header(req, "Content-Type", "text/plain");
    mpm_response_send(req, "Hello\n", 6);
}

int main(void)
{
    mpm_config_t *cfg;
    mpm_server_t *srv = NULL;
    if (mpm_config_new(&cfg) != 0)
        return 1;
    mpm_config_set(cfg, "Listen", "127.0.0.1:8080");
    mpm_config_set(cfg, "OneProcess", "On");
    mpm_config_set_handler(cfg, hello, NULL);
    int rc = mpm_server_new(cfg, &srv);
    mpm_config_free(cfg);
    if (rc == 0 && (rc = mpm_server_run(srv)) != 0) /* blocks until stopped */
        fprintf(stderr, "embed_hello: %s: %s\n", mpm_strerror(rc), mpm_server_errmsg(srv));
    mpm_server_free(srv);
    return rc != 0;
}
