/* mpmserve --access-log FILE: Combined Log Format lines from the library's
 * formatter, each written with one write(2) on an O_APPEND descriptor, so
 * lines from every child process and thread land whole. */
#include "mpmserve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t worst_case_line(const mpm_access_entry_t *e)
{
    size_t n = 256;
    const char *parts[] = {e->target, e->referer, e->user_agent, e->method};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        n += parts[i] ? 4 * strlen(parts[i]) : 0;
    return n;
}

static void write_line(int fd, const char *line, size_t len)
{
    /* A short write to a regular file means a full disk: nothing to retry. */
    while (write(fd, line, len) < 0 && errno == EINTR)
        ;
}

static void on_access(const mpm_access_entry_t *e, void *data)
{
    int fd = *(const int *)data;
    char small[2048];
    int n = mpm_access_log_format(e, MPM_ACCESS_COMBINED, small, sizeof small);
    if (n >= 0) {
        write_line(fd, small, (size_t)n);
        return;
    }
    size_t cap = worst_case_line(e);
    char *big = n == MPM_ERANGE ? malloc(cap) : NULL;
    if (big && (n = mpm_access_log_format(e, MPM_ACCESS_COMBINED, big, cap)) >= 0)
        write_line(fd, big, (size_t)n);
    free(big);
}

int ms_access_log_open(const char *path, int *fd)
{
    if (strcmp(path, "-") == 0) {
        *fd = STDOUT_FILENO;
        return 0;
    }
    *fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) {
        fprintf(stderr, "mpmserve: --access-log %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

void ms_access_log_attach(mpm_config_t *cfg, int *fd)
{
    mpm_config_set_access_log_cb(cfg, on_access, fd);
}
