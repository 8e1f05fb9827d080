#include "proc.h"

#include <stdio.h>
#include <string.h>

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
