/* mpmserve's /files/: what it refuses (403) before or while touching the
 * file system: ".." segments (plain or percent-encoded), an encoded '/'
 * (%2F), an encoded NUL (%00), any symbolic link (to a file or a
 * directory, even inside the root), and directories. Over real sockets
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

#define FILES_CASE(f, strategy)                                                                    \
    {#f "[" strategy "]", f, th_setup, files_teardown, (void *)strategy}

int main(void)
{
    th_require_mpmserve();
    const struct CMUnitTest tests[] = {
        FILES_CASE(files_refuses_what_it_must, "prefork"),
        FILES_CASE(files_refuses_what_it_must, "worker"),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
