/* Close-on-exec, seen from outside: every descriptor the master and its
 * children hold (listeners, pipes, pidfds, control channels, epoll sets,
 * eventfds, accepted connections) carries O_CLOEXEC, so a handler or host
 * that execs a program leaks none of them into it. Read from
 * /proc/PID/fdinfo of the running mpmserve processes while a connection is
 * open, under each strategy. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "pool.h"
#include "proc.h"

#define MAX_FDS 512

/* Checks every descriptor above stderr; returns how many it checked and
 * counts sockets into *sockets. */
static int check_cloexec(pid_t pid, const char *who, int *sockets)
{
    static tp_fd_t fds[MAX_FDS];
    int n = tp_fds(pid, fds, MAX_FDS);
    if (n < 0)
        fail_msg("cannot read the descriptors of %s %d", who, (int)pid);
    int checked = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i].fd <= 2)
            continue;
        if (!(fds[i].flags & O_CLOEXEC))
            fail_msg("%s %d: fd %d (%s) is not close-on-exec (flags 0%lo)", who, (int)pid,
                     fds[i].fd, fds[i].target, fds[i].flags);
        *sockets += strncmp(fds[i].target, "socket:", 7) == 0;
        checked++;
    }
    return checked;
}

static void every_server_fd_is_cloexec(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    tc_conn_t *c = th_hold_connection(fx, p->port);
    pid_t holder = tpool_conn_pid(c);
    int sockets = 0;
    /* Listener, signal pipe, wake pipe, and per child a pidfd and a control
     * socket. */
    assert_true(check_cloexec(p->pid, "master", &sockets) >= 5);
    pid_t kids[TPOOL_MAX_KIDS];
    int n = tpool_children(p->pid, kids, TPOOL_MAX_KIDS);
    assert_true(n >= 2);
    for (int i = 0; i < n; i++) {
        int child_sockets = 0;
        /* Listener, control channel, wake pipe, epoll set (worker: and an
         * eventfd). */
        assert_true(check_cloexec(kids[i], "child", &child_sockets) >= 4);
        if (kids[i] == holder) /* listener, control channel, the connection */
            assert_true(child_sockets >= 3);
    }
    /* The connection still works after all this looking. */
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
}

#define POOL_CASE(f) TH_CASE(f, "prefork"), TH_CASE(f, "worker")

int main(void)
{
    th_require_mpmserve();
    const struct CMUnitTest tests[] = {
        POOL_CASE(every_server_fd_is_cloexec),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
