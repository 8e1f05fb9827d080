/* Log lines go to the host's callback, else to stderr. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static const char *level_name(mpm_log_level_t level)
{
    switch (level) {
    case MPM_LOG_ERROR:
        return "error";
    case MPM_LOG_WARN:
        return "warn";
    case MPM_LOG_NOTICE:
        return "notice";
    case MPM_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void mpm__log(const mpm_server_t *srv, mpm_log_level_t level, const char *fmt, ...)
{
    if ((int)level > srv->cfg.s.log_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (srv->cfg.log_cb) {
        srv->cfg.log_cb(level, msg, srv->cfg.log_data);
        return;
    }
    /* One write() per line so lines from several processes do not mix. */
    char line[1100];
    int n = snprintf(line, sizeof(line), "mpmlib[%ld] %s: %s\n", (long)getpid(), level_name(level), msg);
    if (n > 0)
        (void)!write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
