/* The master as a guest in a host process, and as an operator sees it:
 * - it checks its fd needs against RLIMIT_NOFILE at start-up, and under a
 *   low limit still reaps, replaces and stops promptly (mpmserve);
 * - it neither reaps nor signals children the host forked itself;
 * - a child that never reached READY cannot hide a fatal child-init
 *   failure behind a DEAD scoreboard row;
 * - during a graceful restart an old child's exited threads are not
 *   reported busy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "harness.h"
#include "proc.h"

#define RUN_BOUND_MS 30000

/* ------------------------------------------------------------------ */
/* mpmserve under a lowered RLIMIT_NOFILE                             */

typedef struct served {
    pid_t pid;
    int out;  /* stdout and stderr, merged */
    char text[8192];
    size_t len;
} served_t;

/* fork, lower RLIMIT_NOFILE to nofile, exec mpmserve with args. */
static void spawn_limited(served_t *p, rlim_t nofile, const char *const *args)
{
    const char *bin = th_mpmserve_path();
    if (!bin)
        skip();
    const char *argv[32];
    size_t n = 0;
    argv[n++] = bin;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    memset(p, 0, sizeof(*p));
    fflush(NULL);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(120);
        rl.rlim_cur = nofile;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(121);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    p->out = fds[0];
}

/* Reads output until it contains needle or the stream ends; 1 if found. */
static int read_until(served_t *p, const char *needle, int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    while (!strstr(p->text, needle) && p->len < sizeof(p->text) - 1) {
        int left = (int)(deadline - tc_now_ms());
        struct pollfd pf = {.fd = p->out, .events = POLLIN};
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            return 0;
        ssize_t n = read(p->out, p->text + p->len, sizeof(p->text) - 1 - p->len);
        if (n <= 0)
            return strstr(p->text, needle) != NULL;
        p->len += (size_t)n;
        p->text[p->len] = '\0';
    }
    return strstr(p->text, needle) != NULL;
}

/* waitpid with a bound: 1 and the status if it exited in time. */
static int exited_within(pid_t pid, int *status, int timeout_ms)
{
    int64_t deadline = tc_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return 1;
        if (tc_now_ms() >= deadline)
            return 0;
        struct timespec nap = {0, 10 * 1000000L};
        nanosleep(&nap, NULL);
    }
}

/* Reaps p with a bound; 1 and its status if it exited in time. */
static int served_exited(served_t *p, int *status, int timeout_ms)
{
    if (p->pid <= 0 || !exited_within(p->pid, status, timeout_ms))
        return 0;
    p->pid = 0;
    return 1;
}

static void served_kill(served_t *p)
{
    int status;
    if (p->pid > 0 && !exited_within(p->pid, &status, 0)) {
        kill(p->pid, SIGKILL);
        exited_within(p->pid, &status, 10000);
    }
    p->pid = 0;
    if (p->out >= 0)
        close(p->out);
    p->out = -1;
}

static void server_limit_beyond_rlimit_is_a_start_up_error(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *args[] = {"--mpm", fx->strategy, "--listen", "127.0.0.1:0", "--set",
                          "ServerLimit=2000", NULL};
    served_t p;
    spawn_limited(&p, 1024, args);
    int status = 0;
    int exited = served_exited(&p, &status, 20000);
    read_until(&p, "RLIMIT_NOFILE is 1024", 2000);
    served_kill(&p);
    if (!exited)
        fail_msg("mpmserve did not exit; output: %s", p.text);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    if (!strstr(p.text, "ServerLimit 2000 needs about") ||
        !strstr(p.text, "file descriptors; RLIMIT_NOFILE is 1024"))
        fail_msg("output: %s", p.text);
}

/* Children of pid (state and parent from /proc), other than `except`. */
static int children_of(pid_t parent, pid_t *out, int max, pid_t except)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL && n < max;) {
        pid_t pid = (pid_t)atoi(e->d_name);
        tp_stat_t st;
        if (pid > 0 && pid != except && tp_stat(pid, &st) == 0 && st.ppid == parent &&
            st.state != 'Z')
            out[n++] = pid;
    }
    closedir(d);
    return n;
}

typedef struct respawn_wait {
    pid_t master, killed;
} respawn_wait_t;

/* The killed child is reaped (no zombie left) and two children serve. */
static int replaced(void *arg)
{
    respawn_wait_t *w = arg;
    tp_stat_t st;
    pid_t kids[8];
    return tp_stat(w->killed, &st) != 0 && children_of(w->master, kids, 8, w->killed) >= 2;
}

static void low_rlimit_master_reaps_replaces_and_stops(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *args[] = {"--mpm",         fx->strategy,      "--listen",
                          "127.0.0.1:0",   "--set",           "ServerLimit=8",
                          "--set",         "StartServers=2",  "--set",
                          "ThreadsPerChild=2", "--set",       "MinSpareServers=2",
                          "--set",         "MinSpareThreads=4", NULL};
    served_t p;
    spawn_limited(&p, 64, args);
    if (!read_until(&p, "listening on", 20000)) {
        served_kill(&p);
        fail_msg("mpmserve did not start: %s", p.text);
    }
    pid_t kids[8];
    int64_t deadline = tc_now_ms() + RUN_BOUND_MS;
    while (children_of(p.pid, kids, 8, 0) < 2 && tc_now_ms() < deadline)
        usleep(20000);
    if (children_of(p.pid, kids, 8, 0) < 2) {
        served_kill(&p);
        fail_msg("no two children: %s", p.text);
    }
    respawn_wait_t w = {.master = p.pid, .killed = kids[0]};
    assert_int_equal(kill(kids[0], SIGKILL), 0);
    int ok = th_wait_for(replaced, &w, RUN_BOUND_MS);
    tp_stat_t st;
    int master_alive = tp_stat(p.pid, &st) == 0;
    int64_t t0 = tc_now_ms();
    kill(p.pid, SIGTERM);
    int status = 0;
    int stopped = served_exited(&p, &status, 10000);
    int64_t took = tc_now_ms() - t0;
    if (!stopped)
        read_until(&p, "\x01", 100);
    served_kill(&p);
    if (!ok)
        fail_msg("killed child not reaped and replaced; output: %s", p.text);
    assert_true(master_alive);
    if (!stopped)
        fail_msg("SIGTERM did not stop the master; output: %s", p.text);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(took < 5000); /* children answer TERM at once; no KILL grace needed */
}

/* ------------------------------------------------------------------ */
/* The master in this process                                          */

static th_server_t *new_master(th_fixture_t *fx, const char *const *dirs)
{
    th_server_t *s = th_new_server(fx);
    assert_int_equal(th_server_set(s, "OneProcess", "Off"), 0);
    assert_int_equal(th_server_set(s, "HandleSignals", "Off"), 0);
    for (size_t i = 0; dirs && dirs[i]; i += 2)
        assert_int_equal(th_server_set(s, dirs[i], dirs[i + 1]), 0);
    return s;
}

static mpm_stats_t stats(th_server_t *s)
{
    mpm_stats_t st = {.size = sizeof(st)};
    assert_int_equal(mpm_server_stats(s->srv, &st), 0);
    return st;
}

static int master_ready(void *arg)
{
    mpm_stats_t st = stats(arg);
    return st.processes >= 1 && st.idle_workers >= 1 && st.uptime_ms > 2500;
}

static void host_children_are_neither_reaped_nor_signalled(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"StartServers", "1", "MinSpareServers", "1",
                                       "MinSpareThreads", "1", NULL};
    /* One host child exits at once, one waits for a signal. Forked first,
     * they are older than the master's: waitpid(-1) would find them first. */
    pid_t quick = fork();
    assert_true(quick >= 0);
    if (quick == 0)
        _exit(42);
    pid_t waiting = fork();
    assert_true(waiting >= 0);
    if (waiting == 0) {
        for (;;)
            pause();
    }
    th_server_t *s = new_master(fx, dirs);
    if (th_server_start(s) != 0) {
        kill(waiting, SIGKILL);
        fail_msg("start: %s", s->errmsg);
    }
    /* Past a few maintenance passes and child exits for the master to see. */
    int ready = th_wait_for(master_ready, s, RUN_BOUND_MS);
    int stopped = th_server_stop(s, 0);
    tp_stat_t st;
    int alive = tp_stat(waiting, &st) == 0 && st.state != 'Z';
    kill(waiting, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(waiting, &status, 0), waiting);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL); /* the master never sent TERM */
    assert_int_equal(waitpid(quick, &status, 0), quick); /* not reaped by the master */
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 42);
    assert_true(ready);
    assert_int_equal(stopped, 0);
    assert_true(alive);
}

/* A child whose row says DEAD while it still runs its init hook (as when
 * the master's census falls between a child's last scoreboard write and its
 * exit), then fails the hook: the generation never reached READY. */
static int dead_row_then_fail(void *data)
{
    th_server_t *s = data;
    mpm__sb_set_state(s->srv->slot, MPM__SB_DEAD);
    /* Long enough for the master's once-a-second census to see the row. */
    struct timespec t = {2, 500 * 1000000L};
    nanosleep(&t, NULL);
    return -1;
}

static void fatal_child_init_behind_a_dead_row_stops_master(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"StartServers", "1", NULL};
    th_server_t *s = new_master(fx, dirs);
    mpm_config_set_child_hooks(th_server_config(s), dead_row_then_fail, NULL, s);
    if (th_server_start(s) != 0)
        fail_msg("start: %s", s->errmsg);
    assert_true(th_server_wait_run(s, RUN_BOUND_MS));
    assert_int_equal(s->run_rc, MPM_ECHILD);
    assert_non_null(strstr(mpm_server_errmsg(s->srv), "child init"));
}

/* Child hooks that hold a child in its exit hook until the test releases
 * it: the release pipe's write end is closed in every child at init, so
 * the test closing its own copy is the end of file they wait for. */
static int release_pipe[2] = {-1, -1};

static int close_release_end(void *data)
{
    (void)data;
    close(release_pipe[1]);
    return 0;
}

static void wait_for_release(void *data)
{
    (void)data;
    struct pollfd p = {.fd = release_pipe[0], .events = POLLIN};
    int64_t deadline = tc_now_ms() + 20000;
    for (int left; (left = (int)(deadline - tc_now_ms())) > 0;)
        if (poll(&p, 1, left) > 0)
            return;
}

typedef struct old_child {
    th_server_t *s;
    mpm_child_stats_t row;
} old_child_t;

/* A generation-0 child whose units have all ended (idle 0, not serving):
 * it is in its exit hook. */
static int old_child_drained(void *arg)
{
    old_child_t *o = arg;
    for (unsigned i = 0; i < stats(o->s).slots; i++) {
        mpm_child_stats_t c = {.size = sizeof(c)};
        if (mpm_server_child_stats(o->s->srv, i, &c) == 0 && c.generation == 0 &&
            strcmp(c.state, "graceful") == 0 && c.idle_workers == 0) {
            o->row = c;
            return 1;
        }
    }
    return 0;
}

/* The new generation has started and idles (a starting child is not
 * idle yet). */
static int new_generation_idle(void *arg)
{
    th_server_t *s = arg;
    mpm_stats_t st = stats(s);
    unsigned units = strcmp(s->strategy, "prefork") == 0 ? 1 : 4;
    return st.generation == 1 && st.idle_workers >= units;
}

static void graceful_restart_reports_no_busy_units(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"StartServers",    "1", "ThreadsPerChild", "4",
                                       "MinSpareServers", "1", "MaxSpareServers", "4",
                                       "MinSpareThreads", "1", "MaxSpareThreads", "8",
                                       NULL};
    assert_int_equal(pipe2(release_pipe, O_CLOEXEC), 0);
    th_server_t *s = new_master(fx, dirs);
    mpm_config_set_child_hooks(th_server_config(s), close_release_end, wait_for_release, NULL);
    if (th_server_start(s) != 0)
        fail_msg("start: %s", s->errmsg);
    th_expect_serving(s->port); /* then no request is in flight */
    assert_int_equal(mpm_server_restart(s->srv, 1), 0);
    old_child_t o = {.s = s};
    int drained = th_wait_for(old_child_drained, &o, RUN_BOUND_MS);
    int idle = drained && th_wait_for(new_generation_idle, s, RUN_BOUND_MS);
    mpm_stats_t st = stats(s);
    close(release_pipe[1]);
    assert_int_equal(th_server_stop(s, 1), 0);
    close(release_pipe[0]);
    assert_true(drained);
    assert_true(idle);
    assert_int_equal(o.row.busy_workers, 0);
    assert_int_equal(st.busy_workers, 0);
}

#define MASTER_CASE(f) TH_CASE(f, "prefork"), TH_CASE(f, "worker")

int main(void)
{
    const struct CMUnitTest tests[] = {
        MASTER_CASE(server_limit_beyond_rlimit_is_a_start_up_error),
        MASTER_CASE(low_rlimit_master_reaps_replaces_and_stops),
        MASTER_CASE(host_children_are_neither_reaped_nor_signalled),
        MASTER_CASE(fatal_child_init_behind_a_dead_row_stops_master),
        MASTER_CASE(graceful_restart_reports_no_busy_units),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
