/* test_config.c: the refusals that keep an unsafe configuration from starting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define URL "postgresql:///crm?host=/tmp"

static const char *const keys[] = {"DATABASE_URL",
                                   "JWT_SECRET",
                                   "JWT_TTL",
                                   "BCRYPT_COST",
                                   "PORT",
                                   "MAIL_HOST",
                                   "MAIL_PORT",
                                   "MAIL_USER",
                                   "MAIL_PASS",
                                   "MAIL_FROM",
                                   "SSE_MAX_STREAMS_PER_USER",
                                   "LOGIN_MAX_FAILURES",
                                   "LOGIN_LOCKOUT_SECONDS",
                                   "LOGIN_LOCKOUT_MAX_SECONDS",
                                   "CORS_ORIGINS",
                                   "METRICS_ALLOW",
                                   "TRUSTED_PROXIES",
                                   "PUBLIC_URL"};

static int
clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        unsetenv(keys[i]);
    return 0;
}

static int
load(char *why)
{
    static struct crm_config cfg;

    return crm_config_load(NULL, &cfg, why, 256);
}

static void
test_config_good(void **state)
{
    struct crm_config cfg;
    char why[256];

    (void)state;
    setenv("DATABASE_URL", URL, 1);
    setenv("JWT_SECRET", SECRET, 1);
    assert_int_equal(crm_config_load(NULL, &cfg, why, sizeof(why)), 0);
    assert_int_equal(cfg.bcrypt_cost, 12);
    assert_int_equal(cfg.jwt_ttl, 86400);
    assert_int_equal(cfg.jwt_secret_len, 32);
    assert_int_equal(cfg.sse_max_streams_per_user, 16);
    assert_int_equal(cfg.login_max_failures, 5);
    assert_int_equal(cfg.login_lockout, 30);
    assert_int_equal(cfg.login_lockout_max, 900);
}

static void
test_config_short_secret(void **state)
{
    char why[256];

    (void)state;
    setenv("DATABASE_URL", URL, 1);
    setenv("JWT_SECRET", "0123456789abcdef0123456789abcde", 1); /* 31 bytes */
    assert_int_equal(load(why), -1);
    assert_string_equal(why, "JWT_SECRET is shorter than 32 bytes");
}

static void
test_config_missing(void **state)
{
    char why[256];

    (void)state;
    setenv("JWT_SECRET", SECRET, 1);
    assert_int_equal(load(why), -1);
    assert_string_equal(why, "DATABASE_URL is not set");
    setenv("DATABASE_URL", URL, 1);
    unsetenv("JWT_SECRET");
    assert_int_equal(load(why), -1);
    assert_string_equal(why, "JWT_SECRET is not set");
}

static void
test_config_bad_url(void **state)
{
    char why[256];

    (void)state;
    setenv("JWT_SECRET", SECRET, 1);
    setenv("DATABASE_URL", "mysql://x", 1);
    assert_int_equal(load(why), -1);
    assert_string_equal(why, "DATABASE_URL must be a postgresql:// URL");
    setenv("DATABASE_URL", "postgresql://host:notaport/db?sslmode=%zz", 1);
    assert_int_equal(load(why), -1);
    assert_string_equal(why, "DATABASE_URL cannot be parsed");
}

static void
test_config_bad_number(void **state)
{
    char why[256];

    (void)state;
    setenv("JWT_SECRET", SECRET, 1);
    setenv("DATABASE_URL", URL, 1);
    setenv("BCRYPT_COST", "3", 1);
    assert_int_equal(load(why), -1);
    assert_string_equal(why, "BCRYPT_COST is not a number in its allowed range");
    unsetenv("BCRYPT_COST");
    setenv("SSE_MAX_STREAMS_PER_USER", "0", 1);
    assert_int_equal(load(why), -1);
    assert_string_equal(why, "SSE_MAX_STREAMS_PER_USER is not a number in its allowed range");
    unsetenv("SSE_MAX_STREAMS_PER_USER");
    /* A longer lockout would let whoever guesses at an account keep its owner out longer. */
    setenv("LOGIN_LOCKOUT_MAX_SECONDS", "3601", 1);
    assert_int_equal(load(why), -1);
    assert_string_equal(why, "LOGIN_LOCKOUT_MAX_SECONDS is not a number in its allowed range");
}

static void
test_config_env_file(void **state)
{
    char path[] = "/tmp/crm-test-envXXXXXX", why[256];
    struct crm_config cfg;
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");

    (void)state;
    fprintf(f,
            "# comment\nDATABASE_URL=\"" URL "\"\nexport JWT_SECRET=" SECRET "\nBCRYPT_COST=5\n");
    fclose(f);
    chmod(path, 0600);
    assert_int_equal(crm_config_load(path, &cfg, why, sizeof(why)), 0);
    assert_string_equal(cfg.database_url, URL);
    assert_int_equal(cfg.bcrypt_cost, 5);
    /* The environment wins over the file. */
    setenv("BCRYPT_COST", "6", 1);
    assert_int_equal(crm_config_load(path, &cfg, why, sizeof(why)), 0);
    assert_int_equal(cfg.bcrypt_cost, 6);
    /* A file others can read is refused: it holds the secret. */
    chmod(path, 0644);
    assert_int_equal(crm_config_load(path, &cfg, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "is readable by others"));
    unlink(path);
}

/* Writes text into a fresh 0600 env file at path (a mkstemp template). */
static void
write_env(char *path, const char *text)
{
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

/*
 * A line longer than the reader's buffer was read in pieces, its tail as a line of its own: a
 * comment ending in "MAIL_HOST=..." set MAIL_HOST. Found by tests/fuzz/fuzz_envfile's property
 * that a commented-out file sets nothing. Such a file is refused now, saying which line.
 */
static void
test_config_env_file_long_line(void **state)
{
    char path[] = "/tmp/crm-test-envXXXXXX", why[256], text[4096];
    struct crm_config cfg;
    size_t n;

    (void)state;
    n = (size_t)snprintf(text, sizeof(text), "DATABASE_URL=" URL "\nJWT_SECRET=" SECRET "\n#");
    /* The third line: 2047 bytes, then the rest of the same line. */
    memset(text + n, 'x', 2046);
    snprintf(text + n + 2046, 64, "MAIL_HOST=evil.example\n");
    write_env(path, text);
    assert_int_equal(crm_config_load(path, &cfg, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "line 3 is longer than 2047 bytes"));
    assert_string_equal(cfg.mail_host, "");
    unlink(path);
    /* The longest line that fits, with its newline or at the end of the file, still loads. */
    for (int nl = 0; nl < 2; nl++) {
        char path2[] = "/tmp/crm-test-envXXXXXX";

        n = (size_t)snprintf(text, sizeof(text), "DATABASE_URL=" URL "\nJWT_SECRET=" SECRET "\n#");
        memset(text + n, 'y', 2046);
        snprintf(text + n + 2046, 64, "%s", nl ? "\nBCRYPT_COST=5\n" : "");
        write_env(path2, text);
        assert_int_equal(crm_config_load(path2, &cfg, why, sizeof(why)), 0);
        assert_int_equal(cfg.bcrypt_cost, nl ? 5 : 12);
        unlink(path2);
    }
}

/* CORS_ORIGINS, METRICS_ALLOW and TRUSTED_PROXIES go into nginx's configuration: only exact origins
 * and addresses get through. */
static void
test_config_lists(void **state)
{
    static const char *const good_origins[] = {"", "https://app.example.com",
                                               "http://localhost:8081, https://a.example",
                                               "http://[::1]:3000", "  http://10.0.0.1  "};
    static const char *const bad_origins[] = {"app.example.com",
                                              "https://app.example.com/",
                                              "https://*.example.com",
                                              "https://App.example.com",
                                              "https://a.example:123456",
                                              "https://a.example;deny all",
                                              "ftp://a.example",
                                              "https://",
                                              "https://a\"b"};
    static const char *const good_nets[] = {"", "127.0.0.1", "10.0.0.0/8 ::1", "fe80::/64"};
    static const char *const bad_nets[] = {"localhost", "10.0.0.0/33", "::1/129", "1.2.3.4/",
                                           "1.2.3.4;"};
    struct crm_config cfg;
    char why[256];

    (void)state;
    setenv("DATABASE_URL", URL, 1);
    setenv("JWT_SECRET", SECRET, 1);
    for (size_t i = 0; i < sizeof(good_origins) / sizeof(good_origins[0]); i++) {
        setenv("CORS_ORIGINS", good_origins[i], 1);
        assert_int_equal(crm_config_load(NULL, &cfg, why, sizeof(why)), 0);
    }
    for (size_t i = 0; i < sizeof(bad_origins) / sizeof(bad_origins[0]); i++) {
        setenv("CORS_ORIGINS", bad_origins[i], 1);
        assert_int_equal(load(why), -1);
        assert_non_null(strstr(why, "CORS_ORIGINS"));
    }
    unsetenv("CORS_ORIGINS");
    for (size_t i = 0; i < sizeof(good_nets) / sizeof(good_nets[0]); i++) {
        setenv("METRICS_ALLOW", good_nets[i], 1);
        assert_int_equal(crm_config_load(NULL, &cfg, why, sizeof(why)), 0);
    }
    /* Unset, it is loopback. */
    unsetenv("METRICS_ALLOW");
    assert_int_equal(crm_config_load(NULL, &cfg, why, sizeof(why)), 0);
    assert_string_equal(cfg.metrics_allow, "127.0.0.0/8 ::1");
    for (size_t i = 0; i < sizeof(bad_nets) / sizeof(bad_nets[0]); i++) {
        setenv("METRICS_ALLOW", bad_nets[i], 1);
        assert_int_equal(load(why), -1);
        assert_non_null(strstr(why, "METRICS_ALLOW"));
    }
    unsetenv("METRICS_ALLOW");
    for (size_t i = 0; i < sizeof(good_nets) / sizeof(good_nets[0]); i++) {
        setenv("TRUSTED_PROXIES", good_nets[i], 1);
        assert_int_equal(crm_config_load(NULL, &cfg, why, sizeof(why)), 0);
    }
    for (size_t i = 0; i < sizeof(bad_nets) / sizeof(bad_nets[0]); i++) {
        setenv("TRUSTED_PROXIES", bad_nets[i], 1);
        assert_int_equal(load(why), -1);
        assert_non_null(strstr(why, "TRUSTED_PROXIES"));
    }
}

/* PUBLIC_URL: an origin, by default this host's PORT; it goes into e-mailed links. */
static void
test_config_public_url(void **state)
{
    static const char *const bad[] = {"crm.example.com", "https://crm.example.com/",
                                      "https://crm.example.com/x", "javascript:alert(1)",
                                      "https://a b"};
    struct crm_config cfg;
    char why[256];

    (void)state;
    setenv("DATABASE_URL", URL, 1);
    setenv("JWT_SECRET", SECRET, 1);
    setenv("PORT", "8443", 1);
    assert_int_equal(crm_config_load(NULL, &cfg, why, sizeof(why)), 0);
    assert_string_equal(cfg.public_url, "http://localhost:8443");
    setenv("PUBLIC_URL", "https://crm.example.com", 1);
    assert_int_equal(crm_config_load(NULL, &cfg, why, sizeof(why)), 0);
    assert_string_equal(cfg.public_url, "https://crm.example.com");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("PUBLIC_URL", bad[i], 1);
        assert_int_equal(crm_config_load(NULL, &cfg, why, sizeof(why)), -1);
        assert_non_null(strstr(why, "PUBLIC_URL"));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_config_good, clear_env),
        cmocka_unit_test_setup(test_config_short_secret, clear_env),
        cmocka_unit_test_setup(test_config_missing, clear_env),
        cmocka_unit_test_setup(test_config_bad_url, clear_env),
        cmocka_unit_test_setup(test_config_bad_number, clear_env),
        cmocka_unit_test_setup(test_config_env_file, clear_env),
        cmocka_unit_test_setup(test_config_env_file_long_line, clear_env),
        cmocka_unit_test_setup(test_config_lists, clear_env),
        cmocka_unit_test_setup(test_config_public_url, clear_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
