/* test_fcgi.c: a pool's worker never outlives the pool, and SIGTERM always stops a worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fcgi.h"

#define WAIT_MS 10000 /* far beyond what any of these takes, even on a loaded machine */

static char dir[64], sock_path[96], env_path[96];

/* Waits up to WAIT_MS for pid to end. Returns 0 with its status, or -1 (it still runs). */
static int
wait_ms(pid_t pid, int *status)
{
    for (int ms = 0; ms <= WAIT_MS; ms += 10) {
        pid_t r = waitpid(pid, status, WNOHANG);

        if (r != 0)
            return r == pid ? 0 : -1;
        usleep(10 * 1000);
    }
    return -1;
}

/* A process the test gave up on: ended and reaped, so a failure leaves nothing behind. */
static void
reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/*
 * The test process adopts the orphans of its children (as init would), so it can see whether a
 * grandchild whose parent died is still running, and collect it.
 */
static int
setup_subreaper(void **state)
{
    (void)state;
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -1;
}

/*
 * The pool dies between fork() and the worker's request for a signal: the worker (here a
 * grandchild, its parent the dead pool) must exit at once rather than serve on, orphaned and
 * never signalled.
 */
static void
test_a_worker_whose_pool_died_first_exits(void **state)
{
    int go[2], out[2], status;
    pid_t child, grandchild = 0;
    ssize_t n;
    char c;

    (void)state;
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(out), 0);
    if ((child = fork()) == 0) {
        pid_t pool = getpid();

        close(go[1]);
        close(out[0]);
        if ((grandchild = fork()) == 0) {
            /* Waits until the test has reaped the child: the pool is gone for sure. */
            if (read(go[0], &c, 1) != 1)
                _exit(2);
            crm_fcgi_follow_pool(pool);
            (void)!write(out[1], "a", 1); /* still here: the defect */
            pause();
            _exit(3);
        }
        (void)!write(out[1], &grandchild, sizeof(grandchild));
        _exit(0);
    }
    close(go[0]);
    close(out[1]);
    assert_true(child > 0);
    assert_int_equal(read(out[0], &grandchild, sizeof(grandchild)), sizeof(grandchild));
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_int_equal(write(go[1], "g", 1), 1);
    /* "a" if the grandchild stayed; end of file once it exited (it held the last writer). */
    n = read(out[0], &c, 1);
    if (n != 0)
        kill(grandchild, SIGKILL);
    assert_int_equal(waitpid(grandchild, &status, 0), grandchild);
    close(go[1]);
    close(out[0]);
    assert_int_equal(n, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* The control: while the pool lives its worker stays, and when the pool dies it gets SIGTERM. */
static void
test_a_worker_stays_with_its_pool_and_dies_with_it(void **state)
{
    int go[2], out[2], seen[2], status, ended;
    pid_t child, grandchild = 0;
    char c = 0;

    (void)state;
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(out), 0);
    /* The grandchild's "still here" has a pipe of its own: on out, it could land before the
     * child's write of the grandchild's pid and be read as part of it. */
    assert_int_equal(pipe(seen), 0);
    if ((child = fork()) == 0) {
        pid_t pool = getpid();

        close(go[1]);
        close(out[0]);
        if ((grandchild = fork()) == 0) {
            crm_fcgi_follow_pool(pool);
            (void)!write(seen[1], "a", 1);
            pause(); /* until the signal asked for */
            _exit(3);
        }
        close(seen[1]); /* so that only the grandchild holds it open */
        (void)!write(out[1], &grandchild, sizeof(grandchild));
        (void)!read(go[0], &c, 1); /* lives until the test writes */
        _exit(0);
    }
    close(go[0]);
    close(out[1]);
    close(seen[1]);
    assert_true(child > 0);
    assert_int_equal(read(out[0], &grandchild, sizeof(grandchild)), sizeof(grandchild));
    if (read(seen[0], &c, 1) != 1)
        c = 0;
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(waitpid(child, &status, 0), child);
    if ((ended = wait_ms(grandchild, &status)) != 0)
        reap(grandchild);
    close(go[1]);
    close(out[0]);
    close(seen[0]);
    assert_int_equal(c, 'a');
    assert_int_equal(ended, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);
}

/* A listening socket in a fresh directory, and an env file safe enough for crm_config_load. */
static int
setup_socket(void **state)
{
    struct sockaddr_un sa;
    int fd;

    snprintf(dir, sizeof(dir), "/tmp/crm-test-fcgi-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(sock_path, sizeof(sock_path), "%s/s", dir);
    snprintf(env_path, sizeof(env_path), "%s/crm.env", dir);
    if ((fd = open(env_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
        return -1;
    close(fd);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 8) != 0) {
        close(fd);
        return -1;
    }
    *state = (void *)(intptr_t)fd;
    return 0;
}

static int
teardown_socket(void **state)
{
    close((int)(intptr_t)*state);
    unlink(sock_path);
    unlink(env_path);
    rmdir(dir);
    return 0;
}

/* A client connection to the socket, queued until a worker accepts it. -1 on failure. */
static int
connect_client(void)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* A single-worker program on listen_fd, as spawn-fcgi starts one; its log goes nowhere. */
static pid_t
start_worker(int listen_fd)
{
    static const struct crm_app app = {"crm-test", "a worker for the tests", NULL, 0, NULL, 0};
    char name[] = "crm-test", opt[] = "--workers", one[] = "1";
    char *argv[] = {name, opt, one, NULL};
    pid_t pid = fork();
    int null;

    if (pid != 0)
        return pid;
    if ((null = open("/dev/null", O_WRONLY)) < 0 || dup2(listen_fd, 0) < 0 || dup2(null, 2) < 0)
        _exit(2);
    setenv("CRM_ENV_FILE", env_path, 1);
    /* Nothing listens on port 1: the worker's early connection fails at once, which is fine. */
    setenv("DATABASE_URL", "postgresql://crm@127.0.0.1:1/crm", 1);
    setenv("JWT_SECRET", "a test secret of at least 32 bytes, unused", 1);
    _exit(crm_fcgi_main(&app, 3, argv));
}

/* Waits until no connection is queued on listen_fd any more: a worker accepted it. 0 or -1. */
static int
wait_accepted(int listen_fd)
{
    struct pollfd p = {.fd = listen_fd, .events = POLLIN};

    for (int ms = 0; ms <= WAIT_MS; ms += 10) {
        if (poll(&p, 1, 0) == 0)
            return 0;
        usleep(10 * 1000);
    }
    return -1;
}

/*
 * SIGTERM while libfcgi holds a connection it has just accepted and waits (up to 2 s) for its
 * first bytes. libfcgi 2.4.2's OS_Accept, had the handler raised its shutdown flag, would drop
 * the connection and then loop forever on the closed descriptor (poll, close, poll...), deaf to
 * any further SIGTERM: the orphaned worker seen spinning after a test run.
 */
static void
test_sigterm_while_a_connection_is_vetted_stops_the_worker(void **state)
{
    int listen_fd = (int)(intptr_t)*state, client, status, ended;
    pid_t pid;

    /* Queued first, so the worker accepts it as soon as it runs (after installing handlers). */
    assert_true((client = connect_client()) >= 0);
    assert_true((pid = start_worker(listen_fd)) > 0);
    if (wait_accepted(listen_fd) != 0) {
        reap(pid);
        fail_msg("the worker did not accept the queued connection");
    }
    kill(pid, SIGTERM);
    if ((ended = wait_ms(pid, &status)) != 0)
        reap(pid);
    close(client);
    assert_int_equal(ended, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_worker_whose_pool_died_first_exits),
        cmocka_unit_test(test_a_worker_stays_with_its_pool_and_dies_with_it),
        cmocka_unit_test_setup_teardown(test_sigterm_while_a_connection_is_vetted_stops_the_worker,
                                        setup_socket, teardown_socket),
    };

    return cmocka_run_group_tests(tests, setup_subreaper, NULL);
}
