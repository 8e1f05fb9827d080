/* mpmserve's /files/: what it refuses (403) before or while touching the
 * file system: ".." segments (plain or percent-encoded), an encoded '/'
 * (%2F), an encoded NUL (%00), any symbolic link (to a file or a
 * directory, even inside the root), and directories; and what it answers to
 * conditional and range requests. Over real sockets
 * against the multi-process server, under each strategy. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static char root[64];

static void write_file(const char *rel, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void make_tree(void)
{
    char path[128], target[128];
    snprintf(root, sizeof(root), "/tmp/mpmlib-files-XXXXXX");
    assert_non_null(mkdtemp(root));
    write_file("a.txt", "hello\n");
    snprintf(path, sizeof(path), "%s/sub", root);
    assert_int_equal(mkdir(path, 0755), 0);
    write_file("sub/b.txt", "bee\n");
    snprintf(path, sizeof(path), "%s/link", root);
    assert_int_equal(symlink("a.txt", path), 0);
    snprintf(path, sizeof(path), "%s/dirlink", root);
    assert_int_equal(symlink("sub", path), 0);
    /* A link pointing outside the root, to a file that exists. */
    snprintf(target, sizeof(target), "%s/a.txt", root);
    snprintf(path, sizeof(path), "%s/sub/up", root);
    assert_int_equal(symlink(target, path), 0);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int files_teardown(void **state)
{
    if (root[0])
        nftw(root, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    root[0] = '\0';
    return th_teardown(state);
}

/* Status of GET target (sent as is), and the body into body (may be NULL). */
static int get_status(int port, const char *target, char *body, size_t cap)
{
    char raw[512];
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target);
    tc_response_t r;
    int rc = tc_exchange(port, raw, &r, TC_DEFAULT_TIMEOUT_MS);
    if (rc != TC_OK)
        fail_msg("GET %s: %s", target, tc_result_name(rc));
    int status = r.status;
    if (body)
        snprintf(body, cap, "%s", r.body);
    tc_response_free(&r);
    return status;
}

static void expect_status(int port, const char *target, int want)
{
    int got = get_status(port, target, NULL, 0);
    if (got != want)
        fail_msg("GET %s: %d, expected %d", target, got, want);
}

static void files_refuses_what_it_must(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    make_tree();
    const char *args[] = {"--mpm", fx->strategy, "--listen", "127.0.0.1:0", "--root", root, NULL};
    int port = th_start_mpmserve(fx, args)->port;
    char body[64];
    /* What may be served is. */
    assert_int_equal(get_status(port, "/files/a.txt", body, sizeof(body)), 200);
    assert_string_equal(body, "hello\n");
    assert_int_equal(get_status(port, "/files/sub/b.txt", body, sizeof(body)), 200);
    assert_string_equal(body, "bee\n");
    expect_status(port, "/files/missing.txt", 404);
    /* ".." segments, plain or encoded, even when they stay inside the root. */
    expect_status(port, "/files/sub/../a.txt", 403);
    expect_status(port, "/files/%2e%2e/a.txt", 403);
    expect_status(port, "/files/sub/%2E%2E/a.txt", 403);
    /* An encoded '/' or NUL. */
    expect_status(port, "/files/sub%2Fb.txt", 403);
    expect_status(port, "/files/sub%2fb.txt", 403);
    expect_status(port, "/files/a.txt%00.png", 403);
    expect_status(port, "/files/a.txt%00", 403);
    /* Symbolic links: to a file, to a directory on the way, out of a
     * subdirectory. */
    expect_status(port, "/files/link", 403);
    expect_status(port, "/files/dirlink/b.txt", 403);
    expect_status(port, "/files/sub/up", 403);
    /* Directories, the root included. */
    expect_status(port, "/files/sub", 403);
    expect_status(port, "/files/sub/", 403);
    expect_status(port, "/files/", 403);
    /* Still serving after all that. */
    assert_int_equal(get_status(port, "/files/a.txt", NULL, 0), 200);
}

/* A file with a known mtime (10^9 s: Sun, 09 Sep 2001 01:46:40 GMT) and
 * ten bytes, for the conditional and range rows. */
#define RANGE_ETAG "\"3b9aca00-a\""
#define RANGE_DATE "Sun, 09 Sep 2001 01:46:40 GMT"

static void make_range_file(void)
{
    write_file("range.txt", "0123456789");
    char path[128];
    snprintf(path, sizeof(path), "%s/range.txt", root);
    struct timespec times[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

typedef struct cond_row {
    const char *method;
    const char *fields; /* extra request header lines */
    int status;
    const char *body;          /* NULL: not checked (HEAD: must be empty) */
    const char *content_range; /* NULL: must be absent */
} cond_row_t;

static const cond_row_t cond_rows[] = {
    {"GET", "", 200, "0123456789", NULL},
    /* If-None-Match (weak comparison), and it beats If-Modified-Since. */
    {"GET", "If-None-Match: " RANGE_ETAG "\r\n", 304, "", NULL},
    {"HEAD", "If-None-Match: " RANGE_ETAG "\r\n", 304, "", NULL},
    {"GET", "If-None-Match: W/" RANGE_ETAG "\r\n", 304, "", NULL},
    {"GET", "If-None-Match: \"x\", " RANGE_ETAG "\r\n", 304, "", NULL},
    {"GET", "If-None-Match: *\r\n", 304, "", NULL},
    {"GET", "If-None-Match: \"x\"\r\n", 200, "0123456789", NULL},
    {"GET", "If-None-Match: \"x\"\r\nIf-Modified-Since: " RANGE_DATE "\r\n", 200, "0123456789", NULL},
    /* If-Modified-Since in the three date forms; before; garbage; future. */
    {"GET", "If-Modified-Since: " RANGE_DATE "\r\n", 304, "", NULL},
    {"GET", "If-Modified-Since: Sunday, 09-Sep-01 01:46:40 GMT\r\n", 304, "", NULL},
    {"GET", "If-Modified-Since: Sun Sep  9 01:46:40 2001\r\n", 304, "", NULL},
    {"GET", "If-Modified-Since: Sun, 09 Sep 2001 01:46:39 GMT\r\n", 200, "0123456789", NULL},
    {"GET", "If-Modified-Since: yesterday\r\n", 200, "0123456789", NULL},
    {"GET", "If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT\r\n", 200, "0123456789", NULL},
    /* If-Match (strong comparison) and If-Unmodified-Since. */
    {"GET", "If-Match: \"x\"\r\n", 412, NULL, NULL},
    {"GET", "If-Match: W/" RANGE_ETAG "\r\n", 412, NULL, NULL},
    {"GET", "If-Match: " RANGE_ETAG "\r\n", 200, "0123456789", NULL},
    {"GET", "If-Match: *\r\n", 200, "0123456789", NULL},
    {"GET", "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n", 412, NULL, NULL},
    {"GET", "If-Unmodified-Since: " RANGE_DATE "\r\n", 200, "0123456789", NULL},
    /* One byte range; what is not satisfiable; what is ignored. */
    {"GET", "Range: bytes=2-4\r\n", 206, "234", "bytes 2-4/10"},
    {"GET", "Range: bytes=-3\r\n", 206, "789", "bytes 7-9/10"},
    {"GET", "Range: bytes=-30\r\n", 206, "0123456789", "bytes 0-9/10"},
    {"GET", "Range: bytes=7-\r\n", 206, "789", "bytes 7-9/10"},
    {"GET", "Range: bytes=5-100\r\n", 206, "56789", "bytes 5-9/10"},
    {"GET", "Range: bytes=10-\r\n", 416, NULL, "bytes */10"},
    {"GET", "Range: bytes=-0\r\n", 416, NULL, "bytes */10"},
    {"GET", "Range: bytes=4-2\r\n", 200, "0123456789", NULL},
    {"GET", "Range: bytes=0-1,4-5\r\n", 200, "0123456789", NULL},
    {"GET", "Range: items=0-1\r\n", 200, "0123456789", NULL},
    {"GET", "Range: bytes=x-1\r\n", 200, "0123456789", NULL},
    {"HEAD", "Range: bytes=2-4\r\n", 200, "", NULL},
    /* If-Range: the exact ETag or date keeps the range, anything else
     * gets the whole file. */
    {"GET", "Range: bytes=2-4\r\nIf-Range: " RANGE_ETAG "\r\n", 206, "234", "bytes 2-4/10"},
    {"GET", "Range: bytes=2-4\r\nIf-Range: " RANGE_DATE "\r\n", 206, "234", "bytes 2-4/10"},
    {"GET", "Range: bytes=2-4\r\nIf-Range: \"x\"\r\n", 200, "0123456789", NULL},
    {"GET", "Range: bytes=2-4\r\nIf-Range: W/" RANGE_ETAG "\r\n", 200, "0123456789", NULL},
    {"GET", "Range: bytes=2-4\r\nIf-Range: Sat, 01 Jan 2000 00:00:00 GMT\r\n", 200, "0123456789", NULL},
};

static void check_cond_row(int port, const cond_row_t *row)
{
    char raw[512];
    snprintf(raw, sizeof(raw), "%s /files/range.txt HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n",
             row->method, row->fields);
    tc_conn_t c;
    assert_int_equal(tc_connect(&c, port, TC_DEFAULT_TIMEOUT_MS), TC_OK);
    assert_int_equal(tc_send_str(&c, raw), TC_OK);
    tc_response_t r;
    int rc = tc_read_response(&c, &r, strcmp(row->method, "HEAD") == 0, TC_DEFAULT_TIMEOUT_MS);
    tc_close(&c);
    if (rc != TC_OK)
        fail_msg("%s %s: %s", row->method, row->fields, tc_result_name(rc));
    const char *etag = tc_header(&r, "ETag");
    const char *modified = tc_header(&r, "Last-Modified");
    const char *range = tc_header(&r, "Content-Range");
    if (r.status != row->status)
        fail_msg("%s %s: %d, expected %d", row->method, row->fields, r.status, row->status);
    if (row->body && strcmp(r.body, row->body) != 0)
        fail_msg("%s %s: body \"%s\", expected \"%s\"", row->method, row->fields, r.body, row->body);
    if (row->content_range ? !range || strcmp(range, row->content_range) : range != NULL)
        fail_msg("%s %s: Content-Range %s, expected %s", row->method, row->fields,
                 range ? range : "(none)", row->content_range ? row->content_range : "(none)");
    /* The validators go with every answer about the file, 304 included. */
    if (!etag || strcmp(etag, RANGE_ETAG) || !modified || strcmp(modified, RANGE_DATE))
        fail_msg("%s %s: ETag %s, Last-Modified %s", row->method, row->fields,
                 etag ? etag : "(none)", modified ? modified : "(none)");
    if (row->status == 200 && !tc_header_has_token(&r, "Accept-Ranges", "bytes"))
        fail_msg("%s %s: no Accept-Ranges: bytes", row->method, row->fields);
    tc_response_free(&r);
}

/* RFC 9110 §13 and §14 on a static file: ETag and Last-Modified, the four
 * preconditions in their order (304, 412), one byte range (206, 416), and
 * If-Range. */
static void files_answer_conditions_and_ranges(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    make_tree();
    make_range_file();
    const char *args[] = {"--mpm", fx->strategy, "--listen", "127.0.0.1:0", "--root", root, NULL};
    int port = th_start_mpmserve(fx, args)->port;
    for (size_t i = 0; i < sizeof(cond_rows) / sizeof(cond_rows[0]); i++)
        check_cond_row(port, &cond_rows[i]);
}

#define FILES_CASE(f, strategy)                                                                    \
    {#f "[" strategy "]", f, th_setup, files_teardown, (void *)strategy}

int main(void)
{
    th_require_mpmserve();
    const struct CMUnitTest tests[] = {
        FILES_CASE(files_refuses_what_it_must, "prefork"),
        FILES_CASE(files_refuses_what_it_must, "worker"),
        FILES_CASE(files_refuses_what_it_must, "event"),
        FILES_CASE(files_answer_conditions_and_ranges, "prefork"),
        FILES_CASE(files_answer_conditions_and_ranges, "worker"),
        FILES_CASE(files_answer_conditions_and_ranges, "event"),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
