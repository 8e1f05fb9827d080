/* See certs.h. */
#include "certs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int tcert_dir_make(char *dir, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(dir, cap, "%s/mpm-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(dir) ? 0 : -1;
}

void tcert_dir_remove(const char *dir)
{
    if (!dir || !*dir)
        return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[TCERT_PATH_MAX * 2];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path) != 0)
                fprintf(stderr, "certs: unlink %s: %s\n", path, strerror(errno));
        }
        closedir(d);
    }
    if (rmdir(dir) != 0)
        fprintf(stderr, "certs: rmdir %s: %s\n", dir, strerror(errno));
}

int tcert_run(char *const *argv, const char *out_path, const char *err_path)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return -1;
    const char *out = out_path ? out_path : "/dev/null";
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (err_path && out_path && strcmp(err_path, out_path) == 0)
        posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    else if (err_path)
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path,
                                         O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int tcert_tool_available(void)
{
    char *const argv[] = {"openssl", "version", NULL};
    return tcert_run(argv, NULL, "/dev/null") == 0;
}

/* Prints a failed tool run's output, for the test log. */
static void show_log(const char *log_path)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f))
        fprintf(stderr, "openssl: %s", line);
    fclose(f);
}

int tcert_make(const char *dir, const char *stem, const char *cn, const char *extra_dns,
               tcert_t *out)
{
    char subj[128], san[256], log_path[TCERT_PATH_MAX];
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    if (extra_dns)
        snprintf(san, sizeof san, "subjectAltName=DNS:%s,DNS:%s", cn, extra_dns);
    else
        snprintf(san, sizeof san, "subjectAltName=DNS:%s", cn);
    snprintf(out->cert, sizeof out->cert, "%s/%s.pem", dir, stem);
    snprintf(out->key, sizeof out->key, "%s/%s.key", dir, stem);
    snprintf(log_path, sizeof log_path, "%s/%s.log", dir, stem);
    char *const argv[] = {"openssl", "req",     "-x509",    "-newkey", "ec",   "-pkeyopt",
                          "ec_paramgen_curve:prime256v1",   "-nodes",  "-days", "2",
                          "-subj",   subj,      "-addext",  san,       "-keyout",
                          out->key,  "-out",    out->cert,  NULL};
    int rc = tcert_run(argv, log_path, log_path);
    if (rc != 0)
        show_log(log_path);
    (void)unlink(log_path);
    return rc == 0 ? 0 : -1;
}

int tcert_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd);
}

int tcert_copy_file(const char *src, const char *dst)
{
    FILE *f = fopen(src, "rb");
    if (!f)
        return -1;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf, f);
    int too_big = !feof(f);
    fclose(f);
    if (too_big)
        return -1; /* a test certificate is a few hundred bytes */
    return tcert_write_file(dst, buf, n);
}
