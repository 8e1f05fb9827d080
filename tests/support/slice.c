#include "slice.h"

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long long thread_slice_ns(const char *tid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/sched", tid);
    FILE *f = fopen(path, "r");
    long long ns = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "se.slice", 8) == 0 && strchr(line, ':'))
            ns = strtoll(strchr(line, ':') + 1, NULL, 10);
    if (f)
        fclose(f);
    return ns;
}

long long tslice_own_ns(void)
{
    char tid[24];
    snprintf(tid, sizeof tid, "%ld", (long)syscall(SYS_gettid));
    return thread_slice_ns(tid);
}

/* How many threads of this process have a slice of exactly ns. */
static int threads_with(long long ns)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d)) != NULL;)
        if (de->d_name[0] != '.' && thread_slice_ns(de->d_name) == ns)
            n++;
    if (d)
        closedir(d);
    return n;
}

int tslice_threads_are(void *arg)
{
    const tslice_wait_t *w = arg;
    return threads_with(w->ns) == w->threads;
}

/* The slice set here dies with this thread. */
static void *try_custom_slice(void *arg)
{
    struct {
        uint32_t size, policy;
        uint64_t flags;
        int32_t nice;
        uint32_t priority;
        uint64_t runtime, deadline, period;
    } a = {.size = 48, .runtime = 300000};
    long long *got = arg;
    *got = syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? tslice_own_ns() : -1;
    return NULL;
}

int tslice_supported(void)
{
    pthread_t t;
    long long probe = -1;
    if (pthread_create(&t, NULL, try_custom_slice, &probe) != 0)
        return 0;
    pthread_join(t, NULL);
    return probe == 300000;
}
