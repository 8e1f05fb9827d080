/* mpmserve: the demo server built on mpmlib's public API only.
 * Private declarations shared by main.c, routes.c, files.c and status.c. */
#ifndef MPMSERVE_H
#define MPMSERVE_H

#include <mpmlib/mpmlib.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* What the handler needs; set up once in main() before the server starts,
 * read-only afterwards (so it is safe from any serving thread). */
typedef struct ms_app {
    int root_fd;      /* --root, opened O_DIRECTORY|O_CLOEXEC */
    const char *root; /* --root as given, for messages */
    int test_routes;  /* --test-routes: enables /crash */
} ms_app_t;

/* routes.c: the request handler (data is the ms_app_t). */
void ms_handle(mpm_request_t *req, void *data);

/* routes.c: small response helpers. */
void ms_send_text(mpm_request_t *req, int status, const char *body);

/* files.c: GET/HEAD /files/PATH; rest is what follows "/files/" (raw, not
 * yet percent-decoded). */
void ms_files(mpm_request_t *req, const ms_app_t *app, const char *rest);

/* validators.c: conditional and range requests for /files/.
 * ms_http_date writes t as an IMF-fixdate; ms_http_date_parse reads any of
 * the three HTTP-date forms (0, or -1 when s is none of them). */
#define MS_HTTP_DATE_LEN 64
void ms_http_date(time_t t, char out[MS_HTTP_DATE_LEN]);
int ms_http_date_parse(const char *s, time_t *out);
/* Whether an If-Match/If-None-Match value names etag (strong: no weak tag
 * matches, for If-Match). */
int ms_etag_list_matches(const char *list, const char *etag, int strong);
/* One "bytes=" range of a file of size bytes: 1 and [*first, *last] when
 * satisfiable, -1 when not (416), 0 when the field is to be ignored (not
 * bytes, several ranges, bad syntax). */
int ms_range_parse(const char *value, off_t size, off_t *first, off_t *last);

/* status.c: GET/HEAD /status. */
void ms_status(mpm_request_t *req);
/* access_log.c: --access-log PATH ("-" = stdout). open gives the fd (0) or
 * prints why not (-1); attach makes cfg log Combined lines to *fd, which
 * must outlive the server. */
int ms_access_log_open(const char *path, int *fd);
void ms_access_log_attach(mpm_config_t *cfg, int *fd);

/* status.c: GET/HEAD /metrics (Prometheus text format). */
void ms_metrics(mpm_request_t *req);

#endif
