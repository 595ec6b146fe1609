/* config.h: settings from the environment and an env file, checked before anything starts. */
#ifndef CRM_CONFIG_H
#define CRM_CONFIG_H

#include <stddef.h>

struct crm_config {
    char database_url[1024];
    char jwt_secret[512];
    size_t jwt_secret_len;
    long jwt_ttl;    /* seconds, JWT_TTL, default 86400 */
    int bcrypt_cost; /* BCRYPT_COST, 4..31, default 12 */
    int port;        /* PORT, default 8080 (used by the nginx template) */
    char mail_host[256];
    int mail_port;
    char mail_user[256];
    char mail_pass[256];
    char mail_from[256];
    char mail_tls[16];     /* MAIL_TLS: off, auto (STARTTLS when offered, default), required */
    int mail_max_attempts; /* MAIL_MAX_ATTEMPTS, 1..100, default 8 */
    long mail_retry;       /* MAIL_RETRY_SECONDS: the first backoff, default 30 */
    char mail_dir[512];    /* MAIL_DIR: where .eml files go when MAIL_HOST is empty */
    int sse_max_streams;   /* SSE_MAX_STREAMS: open streams per crm-events, default 10000 */
    int sse_max_streams_per_user; /* SSE_MAX_STREAMS_PER_USER: of them one user's, default 16 */
    /* The per-account login lockout (README "Login limits"). */
    int login_max_failures; /* LOGIN_MAX_FAILURES: failed logins in a row before, default 5 */
    long login_lockout;     /* LOGIN_LOCKOUT_SECONDS: the first lockout, default 30 */
    long login_lockout_max; /* LOGIN_LOCKOUT_MAX_SECONDS: the longest, at most 3600, default 900 */
    /* CORS_ORIGINS: the exact origins (scheme://host[:port]) other sites' pages may call the API
     * from, separated by spaces or commas; empty (the default): none. */
    char cors_origins[2048];
    /* METRICS_ALLOW: the addresses and networks (CIDR) nginx lets reach /metrics/, separated by
     * spaces or commas; default loopback ("127.0.0.0/8 ::1"). */
    char metrics_allow[1024];
    /* TRUSTED_PROXIES: the addresses and networks (CIDR) of load balancers in front of this
     * host's nginx, whose X-Forwarded-For names the client; empty (the default): none. */
    char trusted_proxies[1024];
    /* Webhooks (README "Webhooks"). WEBHOOK_ALLOW_NETS: the loopback, private or link-local
     * addresses and networks (CIDR) webhooks may reach after all; empty (the default): none. */
    char webhook_allow_nets[1024];
    long webhook_timeout;     /* WEBHOOK_TIMEOUT_SECONDS: one delivery attempt, default 10 */
    long webhook_retry;       /* WEBHOOK_RETRY_SECONDS: the first backoff, default 10 */
    int webhook_max_failures; /* WEBHOOK_MAX_FAILURES: failures in a row that disable, 20 */
    /* PUBLIC_URL: the origin users reach the console at (the password reset link points
     * there); default http://localhost:PORT. */
    char public_url[256];
};

/* Calls fn(item, len, arg) for each item of a list setting (CORS_ORIGINS, METRICS_ALLOW): the
 * pieces between spaces and commas. Stops at, and returns, the first non-zero fn returns. */
int crm_config_each(const char *list, int (*fn)(const char *item, size_t len, void *arg),
                    void *arg);

/*
 * Fills cfg from the env file at path (NULL: none) overlaid by the process environment, which
 * wins. Returns 0, or -1 with a one-line reason in why: a required value missing (DATABASE_URL,
 * JWT_SECRET), an unsafe one (JWT_SECRET under 32 bytes, an env file others may read), or a
 * malformed one (DATABASE_URL libpq cannot parse, a number out of range).
 */
int crm_config_load(const char *path, struct crm_config *cfg, char *why, size_t whysz);

/* The env file a program should read: $CRM_ENV_FILE, else /etc/crm/crm.env if it exists, else NULL.
 */
const char *crm_config_default_path(void);

#endif
