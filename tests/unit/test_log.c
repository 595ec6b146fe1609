/* test_log.c: a log file renamed by a rotation is followed to its new file, and no line lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static char dir[64], path[128], rotated[160];
static int saved_stderr = -1;

/* stderr on dir/x.log, as the stack's shell opens it (O_APPEND). */
static int
setup(void **state)
{
    int fd;

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/crm-test-log-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/x.log", dir);
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600)) < 0)
        return -1;
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    unsetenv("CRM_LOG_FILE");
    crm_log_init(NULL);
    unlink(path);
    unlink(rotated);
    rmdir(dir);
    return 0;
}

static char *
slurp(const char *p)
{
    static char buf[2][4096];
    static int which;
    FILE *f = fopen(p, "r");
    size_t n = f != NULL ? fread(buf[which], 1, sizeof(buf[0]) - 1, f) : 0;

    if (f != NULL)
        fclose(f);
    buf[which][n] = '\0';
    which ^= 1;
    return buf[which ^ 1];
}

static void
test_log_follows_a_rename(void **state)
{
    (void)state;
    setenv("CRM_LOG_FILE", path, 1);
    crm_log_init("t");
    crm_log(CRM_LOG_INFO, NULL, "before");
    assert_int_equal(rename(path, rotated), 0);
    crm_log(CRM_LOG_INFO, NULL, "after");
    crm_log(CRM_LOG_INFO, NULL, "again");
    assert_non_null(strstr(slurp(rotated), "req=- before\n"));
    assert_null(strstr(slurp(rotated), "after"));
    assert_non_null(strstr(slurp(path), "req=- after\n"));
    assert_non_null(strstr(slurp(path), "req=- again\n"));
    assert_null(strstr(slurp(path), "before"));
    /* A removed file is made again. */
    assert_int_equal(unlink(path), 0);
    crm_log(CRM_LOG_WARN, NULL, "recreated");
    assert_non_null(strstr(slurp(path), "warn req=- recreated\n"));
}

/* Without CRM_LOG_FILE (journald) stderr is left alone: lines go on to the renamed file. */
static void
test_log_without_a_file_stays(void **state)
{
    (void)state;
    crm_log_init("t");
    assert_int_equal(rename(path, rotated), 0);
    crm_log(CRM_LOG_INFO, NULL, "stays");
    assert_non_null(strstr(slurp(rotated), "req=- stays\n"));
    assert_int_equal(access(path, F_OK), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_follows_a_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_without_a_file_stays, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
