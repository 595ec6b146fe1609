/*
 * crm-mailer: sends the e-mails of the transactional outbox (mail_outbox), and queues the
 * reminders of tasks as they become due (remind_due) into it. It LISTENs on
 * mail_outbox and polls every 30 s as a safety net; each due row is claimed with FOR UPDATE SKIP
 * LOCKED and a lease (its next attempt moved 5 minutes ahead), so several mailers can run at
 * once and a mailer that dies mid-send only delays that message. Sent rows are marked sent; a
 * failure is recorded and retried with exponential backoff, and after MAIL_MAX_ATTEMPTS the row
 * stays failed for an operator (crmctl mail list / retry). With no MAIL_HOST, each message is
 * written to MAIL_DIR/<id>.eml instead. SIGTERM finishes the message in flight, then exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <auth-client.h>
#include <libesmtp.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "mail.h"
#include "secret.h"
#include "util.h"

#define LEASE_SECONDS "300"
/* What a password reset link's secret starts with, so that secret scanners recognise it. */
#define RESET_PREFIX "crm_rst_"
#define POLL_SECONDS 30
#define REMIND_BATCH "100"

/*
 * SIGTERM and SIGINT are blocked but for two moments: the sleep (pselect lets them in as it
 * starts waiting) and the look between two messages (stop_asked). One that came while the loop
 * was busy, just after it looked at stopping, then ends the sleep at once; with the signals
 * always let in, it came too late to stop the sleep, which then ran its course (up to 30 s).
 */
static volatile sig_atomic_t stopping;
static sigset_t signals_in; /* the mask while waiting: the stop signals let in */

static void
on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* Lets a stop signal that came while they were blocked run its handler; whether one did. */
static int
stop_asked(void)
{
    sigset_t blocked;

    sigprocmask(SIG_SETMASK, &signals_in, &blocked);
    sigprocmask(SIG_SETMASK, &blocked, NULL);
    return stopping;
}

/* Writes msg to dir/<id>.eml through a temporary file and a rename, so no reader sees half. */
static int
write_eml(const char *dir, const char *id, const char *msg, char *err, size_t errsz)
{
    char tmp[600], path[600];
    size_t n = strlen(msg);
    int fd, ok;

    snprintf(tmp, sizeof(tmp), "%s/.%s.eml.tmp", dir, id);
    snprintf(path, sizeof(path), "%s/%s.eml", dir, id);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
        snprintf(err, errsz, "cannot write %s.eml in MAIL_DIR: %s", id, strerror(errno));
        return -1;
    }
    ok = write(fd, msg, n) == (ssize_t)n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok && rename(tmp, path) == 0;
    if (!ok) {
        snprintf(err, errsz, "cannot write %s.eml in MAIL_DIR: %s", id, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* libesmtp asks for the AUTH user and password through this callback. */
static int
auth_interact(auth_client_request_t req, char **result, int fields, void *arg)
{
    const struct crm_config *cfg = arg;

    for (int i = 0; i < fields; i++) {
        if (req[i].flags & AUTH_USER)
            result[i] = (char *)cfg->mail_user;
        else if (req[i].flags & AUTH_PASS)
            result[i] = (char *)cfg->mail_pass;
        else
            return 0;
    }
    return 1;
}

/* Sends msg with libesmtp. Returns 0, or -1 with the server's or library's reason in err. */
static int
send_smtp(const struct crm_config *cfg, const char *to, const char *msg, char *err, size_t errsz)
{
    char server[300], from[256];
    smtp_session_t session = smtp_create_session();
    smtp_message_t message = session != NULL ? smtp_add_message(session) : NULL;
    auth_context_t auth = NULL;
    smtp_recipient_t rcpt;
    const smtp_status_t *st;
    int rc = -1;

    if (message == NULL || crm_mail_addr(cfg->mail_from, from, sizeof(from)) != 0) {
        snprintf(err, errsz, "cannot set up the SMTP session");
        goto out;
    }
    snprintf(server, sizeof(server), "%s:%d", cfg->mail_host, cfg->mail_port);
    smtp_set_server(session, server);
    smtp_starttls_enable(session, strcmp(cfg->mail_tls, "off") == 0        ? Starttls_DISABLED
                                  : strcmp(cfg->mail_tls, "required") == 0 ? Starttls_REQUIRED
                                                                           : Starttls_ENABLED);
    for (int which = Timeout_GREETING; which <= Timeout_DATA2; which++)
        smtp_set_timeout(session, which | Timeout_OVERRIDE_RFC2822_MINIMUM, 30);
    if (cfg->mail_user[0] != '\0') {
        auth = auth_create_context();
        auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0);
        auth_set_interact_cb(auth, auth_interact, (void *)cfg);
        smtp_auth_set_context(session, auth);
    }
    smtp_set_reverse_path(message, from);
    rcpt = smtp_add_recipient(message, to);
    smtp_set_message_str(message, (void *)msg);
    if (!smtp_start_session(session)) {
        char buf[128];

        snprintf(err, errsz, "%s", smtp_strerror(smtp_errno(), buf, sizeof(buf)));
    } else if ((st = smtp_recipient_status(rcpt))->code / 100 != 2 ||
               (st = smtp_message_transfer_status(message))->code / 100 != 2) {
        /* A refused recipient, or a refused message: the server's own words. */
        snprintf(err, errsz, "%d %s", st->code, st->text != NULL ? st->text : "");
        err[strcspn(err, "\r\n")] = '\0';
    } else {
        rc = 0;
    }
out:
    if (session != NULL)
        smtp_destroy_session(session);
    if (auth != NULL)
        auth_destroy_context(auth);
    return rc;
}

/* Records the outcome of an attempt on row id. */
static void
settle(struct crm_db *db, const struct crm_config *cfg, const PGresult *row, const char *err)
{
    const char *id = PQgetvalue(row, 0, 0);
    int attempts = atoi(PQgetvalue(row, 0, 3));
    char delay[24], max[24];
    const char *params[4] = {id, err, delay, max};
    long wait;

    if (err == NULL) {
        if (crm_db_run(db, "mail_sent", 1, params) == CRM_OK)
            crm_log(CRM_LOG_INFO, NULL, "mail %s sent to %s", id, PQgetvalue(row, 0, 1));
        return;
    }
    wait = crm_mail_backoff(attempts, cfg->mail_retry, (double)(rand() % 1000) / 1000.0);
    snprintf(delay, sizeof(delay), "%ld", wait);
    snprintf(max, sizeof(max), "%d", cfg->mail_max_attempts);
    if (crm_db_run(db, "mail_failed", 4, params) != CRM_OK)
        return;
    if (attempts >= cfg->mail_max_attempts)
        crm_log(CRM_LOG_ERR, NULL, "mail %s failed for good after %d attempts: %s", id, attempts,
                err);
    else
        crm_log(CRM_LOG_WARN, NULL, "mail %s attempt %d failed, retry in %ld s: %s", id, attempts,
                wait, err);
}

/*
 * The password reset e-mail of the claimed row: a new secret for its reset, whose hash is kept
 * (reset_arm) before the e-mail goes, so the secret itself is never stored; a retry makes another
 * and the older link stops working. NULL with err set when the reset was used or has expired.
 */
static char *
reset_mail(struct crm_db *db, const struct crm_config *cfg, const PGresult *row, char *err,
           size_t errsz)
{
    char secret[CRM_SECRET_MAX], hash[CRM_SECRET_HASH], link[512];
    const char *params[2] = {PQgetvalue(row, 0, 8), hash};
    PGresult *res = NULL;
    char *msg = NULL;
    int n;

    if (crm_secret_new(RESET_PREFIX, secret, sizeof(secret), hash) != 0 ||
        crm_db_exec(db, "reset_arm", 2, params, &res) != CRM_OK)
        snprintf(err, errsz, "cannot make the reset link");
    else if (PQntuples(res) != 1)
        snprintf(err, errsz, "the password reset was used or has expired");
    else if ((n = snprintf(link, sizeof(link), "%s/#/reset-password?token=%s", cfg->public_url,
                           secret)) < 0 ||
             (size_t)n >= sizeof(link) ||
             (msg = crm_mail_password_reset(
                  cfg->mail_from, PQgetvalue(row, 0, 1), PQgetvalue(row, 0, 2),
                  strtoll(PQgetvalue(row, 0, 0), NULL, 10), time(NULL), link)) == NULL)
        snprintf(err, errsz, "cannot build the message");
    PQclear(res);
    explicit_bzero(secret, sizeof(secret));
    explicit_bzero(link, sizeof(link));
    return msg;
}

/* The message of the claimed row (mail_claim's columns), by its kind; NULL with err set. */
static char *
build(struct crm_db *db, const struct crm_config *cfg, const PGresult *row, char *err, size_t errsz)
{
    const char *to = PQgetvalue(row, 0, 1), *name = PQgetvalue(row, 0, 2);
    const char *kind = PQgetvalue(row, 0, 4);
    long long id = strtoll(PQgetvalue(row, 0, 0), NULL, 10);
    char *msg;

    if (strcmp(kind, "password_reset") == 0)
        return reset_mail(db, cfg, row, err, errsz);
    if (strcmp(kind, "task_due") == 0)
        msg = crm_mail_task_due(cfg->mail_from, to, name, id, time(NULL), PQgetvalue(row, 0, 5),
                                PQgetvalue(row, 0, 6), PQgetvalue(row, 0, 7));
    else
        msg = crm_mail_welcome(cfg->mail_from, to, name, id, time(NULL));
    if (msg == NULL)
        snprintf(err, errsz, "cannot build the message");
    return msg;
}

/*
 * Queues the reminders of the tasks that have become due, a batch per statement, each batch in
 * one transaction with its marks and task.due events (lib/db.c task_remind), so exactly one
 * reminder goes per due time however many mailers run and whenever they restart.
 */
static void
remind_due(struct crm_db *db)
{
    static const char *const batch[1] = {REMIND_BATCH};
    PGresult *res;
    long claimed;

    do {
        if (crm_db_exec(db, "task_remind", 1, batch, &res) != CRM_OK)
            return;
        claimed = atol(PQgetvalue(res, 0, 0));
        if (claimed > 0)
            crm_log(CRM_LOG_INFO, NULL, "%ld task reminders queued (%s e-mails)", claimed,
                    PQgetvalue(res, 0, 1));
        PQclear(res);
    } while (!stopping && claimed == atol(REMIND_BATCH));
}

/* Claims one due message and delivers it. Returns 1 when there was one, 0 when none, -1. */
static int
deliver_one(struct crm_db *db, const struct crm_config *cfg)
{
    const char *lease[1] = {LEASE_SECONDS};
    PGresult *row = NULL;
    char err[512];
    char *msg;
    int rc;

    if (crm_db_exec(db, "mail_claim", 1, lease, &row) != CRM_OK)
        return -1;
    if (PQntuples(row) == 0) {
        PQclear(row);
        return 0;
    }
    /* SIGTERM is blocked here: it waits until this message is sent and recorded. */
    msg = build(db, cfg, row, err, sizeof(err));
    if (msg == NULL)
        rc = -1;
    else if (cfg->mail_host[0] == '\0')
        rc = write_eml(cfg->mail_dir, PQgetvalue(row, 0, 0), msg, err, sizeof(err));
    else
        rc = send_smtp(cfg, PQgetvalue(row, 0, 1), msg, err, sizeof(err));
    settle(db, cfg, row, rc == 0 ? NULL : err);
    free(msg);
    PQclear(row);
    return 1;
}

/* Seconds until the next pending row or task reminder is due (at most the poll interval). */
static long
next_due(struct crm_db *db)
{
    PGresult *res;
    long wait = POLL_SECONDS;

    if (crm_db_exec(db, "mail_next_due", 0, NULL, &res) == CRM_OK) {
        if (!PQgetisnull(res, 0, 0))
            wait = atol(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return wait < 0 ? 0 : wait > POLL_SECONDS ? POLL_SECONDS : wait;
}

/* Frees the notifications libpq has read (they only wake the loop); how many there were. */
static int
take_notifications(PGconn *conn)
{
    PGnotify *n;
    int count = 0;

    for (; (n = PQnotifies(conn)) != NULL; count++)
        PQfreemem(n);
    return count;
}

/*
 * Sleeps until a notification, a stop signal, or seconds pass; a second without a connection.
 * The connection is read here, after the statements before it, which may have replaced it.
 */
static void
wait_for_work(struct crm_db *db, long seconds)
{
    PGconn *conn = crm_db_conn(db);
    int fd = conn != NULL && PQstatus(conn) == CONNECTION_OK ? PQsocket(conn) : -1;
    struct timespec ts = {.tv_sec = fd < 0 ? 1 : seconds, .tv_nsec = seconds == 0 ? 100000000 : 0};
    fd_set fds;

    /* A notification that came with a statement's answer is already read: no waiting then. */
    if (fd >= 0 && take_notifications(conn) > 0)
        return;
    FD_ZERO(&fds);
    if (fd >= 0)
        FD_SET(fd, &fds);
    if (pselect(fd + 1, &fds, NULL, NULL, &ts, &signals_in) > 0 && PQconsumeInput(conn))
        (void)take_notifications(conn);
}

static int
usage(FILE *f)
{
    fprintf(f, "Usage: crm-mailer\n\nNext-Gen CRM: sends the e-mails of the outbox "
               "(mail_outbox).\n\n"
               "Wakes on NOTIFY mail_outbox, at the next due message or task and every 30 s,\n"
               "queues the reminders of tasks that became due, claims due messages (several\n"
               "mailers may run at once), sends them through MAIL_HOST, or writes them to\n"
               "MAIL_DIR/<id>.eml when MAIL_HOST is empty, and retries failures with\n"
               "exponential backoff until MAIL_MAX_ATTEMPTS, after which a message stays\n"
               "failed (crmctl mail list / retry). SIGTERM: finishes the message in flight.\n\n"
               "Environment: DATABASE_URL, JWT_SECRET, MAIL_HOST, MAIL_PORT, MAIL_USER,\n"
               "MAIL_PASS, MAIL_FROM, MAIL_TLS (off, auto, required), MAIL_MAX_ATTEMPTS,\n"
               "MAIL_RETRY_SECONDS, MAIL_DIR, PUBLIC_URL (the reset link's origin),\n"
               "CRM_ENV_FILE (an env file with the same keys; default /etc/crm/crm.env).\n");
    return f == stdout ? 0 : 2;
}

int
main(int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigset_t stop_signals;
    struct crm_config cfg;
    struct crm_db *db;
    static const char *const listens[] = {"mail_listen"};
    unsigned listened = 0;
    char why[256];

    crm_log_init("crm-mailer");
    if (argc > 1)
        return usage(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    if (crm_config_load(crm_config_default_path(), &cfg, why, sizeof(why)) != 0) {
        fprintf(stderr, "crm-mailer: %s\n", why);
        return 1;
    }
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, &signals_in);
    sigdelset(&signals_in, SIGTERM);
    sigdelset(&signals_in, SIGINT);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    if ((db = crm_db_open(cfg.database_url)) == NULL)
        return 1;
    auth_client_init();
    crm_log(CRM_LOG_INFO, NULL, "started: %s", cfg.mail_host[0] ? cfg.mail_host : cfg.mail_dir);
    while (!stopping) {
        int up = crm_db_listen(db, &listened, listens, 1) >= 0;

        if (up)
            remind_due(db);
        while (up && !stop_asked() && deliver_one(db, &cfg) == 1)
            ;
        if (!stopping) /* one that came since is let in by the sleep itself, which then ends */
            wait_for_work(db, up ? next_due(db) : 1);
    }
    crm_log(CRM_LOG_INFO, NULL, "stopped");
    auth_client_exit();
    crm_db_close(db);
    explicit_bzero(&cfg, sizeof(cfg));
    return 0;
}
