/*
 * fuzz_envfile.c: the env file (/etc/crm/crm.env) through crm_config_load, the one public way
 * into its parser (read_file() in lib/config.c is static and takes a path): each input is
 * written to a private file in memory first. The keys are unset from the environment, so the
 * file alone decides. Each input is also read with every line turned into a comment, which must
 * set nothing.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

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
                                   "MAIL_TLS",
                                   "MAIL_MAX_ATTEMPTS",
                                   "MAIL_RETRY_SECONDS",
                                   "MAIL_DIR",
                                   "SSE_MAX_STREAMS",
                                   "SSE_MAX_STREAMS_PER_USER",
                                   "LOGIN_MAX_FAILURES",
                                   "LOGIN_LOCKOUT_SECONDS",
                                   "LOGIN_LOCKOUT_MAX_SECONDS",
                                   "CORS_ORIGINS",
                                   "METRICS_ALLOW"};

static char path[64];
static int fd = -1;

/* Loads the n bytes at data as the env file into cfg. Returns crm_config_load's answer. */
static int
load(const uint8_t *data, size_t n, struct crm_config *cfg, char *why, size_t whysz)
{
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, n, 0) != (ssize_t)n)
        abort();
    why[0] = '\0';
    return crm_config_load(path, cfg, why, whysz);
}

static void
check_loaded(const struct crm_config *c)
{
    fuzz_check(c->jwt_secret_len >= 32 && c->jwt_secret_len == strlen(c->jwt_secret),
               "a loaded secret is 32 bytes or more");
    fuzz_check(strncmp(c->database_url, "postgres", 8) == 0, "a loaded URL is postgres");
    fuzz_check(strcmp(c->mail_tls, "off") == 0 || strcmp(c->mail_tls, "auto") == 0 ||
                   strcmp(c->mail_tls, "required") == 0,
               "MAIL_TLS is known");
    fuzz_check(c->bcrypt_cost >= 4 && c->bcrypt_cost <= 31 && c->port >= 1 && c->port <= 65535 &&
                   c->mail_port >= 1 && c->mail_port <= 65535 && c->jwt_ttl >= 60 &&
                   c->login_lockout_max <= 3600,
               "numbers within their ranges");
    /* crmctl nginx-settings writes both lists into nginx's configuration as they are. */
    fuzz_check(strpbrk(c->cors_origins, "\"'\\;{}$#\r\n") == NULL &&
                   strpbrk(c->metrics_allow, "\"'\\;{}$#\r\n") == NULL &&
                   c->metrics_allow[0] != '\0',
               "the lists hold nothing nginx would read as syntax");
}

/* The input with "#" before every line: nothing in it may set a value. */
static void
check_comments(const uint8_t *data, size_t size)
{
    uint8_t *c = malloc(2 * size + 1);
    struct crm_config cfg;
    char why[256];
    size_t n = 0;

    if (c == NULL)
        abort();
    c[n++] = '#';
    for (size_t i = 0; i < size; i++) {
        c[n++] = data[i];
        if (data[i] == '\n' || data[i] == '\r')
            c[n++] = '#';
    }
    fuzz_check(load(c, n, &cfg, why, sizeof(why)) == -1, "comments load nothing");
    fuzz_check(cfg.database_url[0] == '\0' && cfg.jwt_secret[0] == '\0' &&
                   cfg.mail_host[0] == '\0' && cfg.mail_user[0] == '\0' &&
                   cfg.mail_pass[0] == '\0' && cfg.mail_from[0] == '\0' &&
                   cfg.mail_tls[0] == '\0' && cfg.mail_dir[0] == '\0',
               "a comment sets nothing");
    free(c);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        unsetenv(keys[i]);
    /* A file in memory, no disk write per input; 0600, as the loader refuses one others may
     * read. Its path is the descriptor's, under /proc. */
    if ((fd = memfd_create("crm-fuzz-env", 0)) < 0 || fchmod(fd, 0600) != 0)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct crm_config cfg;
    char why[256];

    if (load(data, size, &cfg, why, sizeof(why)) == 0)
        check_loaded(&cfg);
    else
        fuzz_check(why[0] != '\0', "a refusal says why");
    check_comments(data, size);
    return 0;
}
