#include "proc.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

int tp_stat(pid_t pid, tp_stat_t *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after
     * the last ')'. */
    char *p = strrchr(buf, ')');
    int ppid = 0;
    long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &out->state,
                     &ppid, &ut, &st) != 4)
        return -1;
    out->ppid = (pid_t)ppid;
    out->cpu_ticks = ut + st;
    return 0;
}

pid_t tp_parent_of(pid_t pid)
{
    tp_stat_t st;
    return tp_stat(pid, &st) == 0 && st.state != 'Z' ? st.ppid : -1;
}

int tp_gone(pid_t pid)
{
    return kill(pid, 0) != 0 || tp_parent_of(pid) < 0;
}

int tp_children_of(pid_t parent, pid_t *kids, int max)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid > 0 && tp_parent_of(pid) == parent && n < max)
            kids[n++] = pid;
    }
    if (d)
        closedir(d);
    return n;
}

int tp_wait_all_gone(const pid_t *pids, int n, int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    for (int i = 0; i < n; i++) {
        while (!tp_gone(pids[i])) {
            if (tc_now_ms() >= deadline)
                return 0;
            struct timespec nap = {0, 10 * 1000000L};
            nanosleep(&nap, NULL);
        }
    }
    return 1;
}

static long fd_flags(pid_t pid, int fd)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
    FILE *f = fopen(path, "r");
    long flags = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "flags:", 6) == 0)
            flags = strtol(line + 6, NULL, 8);
    if (f)
        fclose(f);
    return flags;
}

static int cmp_fd(const void *a, const void *b)
{
    return ((const tp_fd_t *)a)->fd - ((const tp_fd_t *)b)->fd;
}

int tp_fds(pid_t pid, tp_fd_t *fds, int max)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        tp_fd_t *t = &fds[n];
        t->fd = atoi(e->d_name);
        t->flags = fd_flags(pid, t->fd);
        char link[96];
        snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)pid, t->fd);
        ssize_t len = readlink(link, t->target, sizeof(t->target) - 1);
        t->target[len > 0 ? len : 0] = '\0';
        if (t->flags >= 0) /* gone meanwhile: skip */
            n++;
    }
    closedir(d);
    qsort(fds, (size_t)n, sizeof(*fds), cmp_fd);
    return n;
}

long tp_status_number(const char *path, const char *field)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    size_t n = strlen(field);
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%ld", &v) == 1)
            break;
    fclose(f);
    return v;
}
