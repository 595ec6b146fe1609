/* log.c: escaped one-line log messages on stderr (journald under systemd). */
#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"

static const char *prog = "crm";
static const char *logfile; /* CRM_LOG_FILE: the file stderr is, followed across a rotation */

void
crm_log_init(const char *progname)
{
    if (progname != NULL)
        prog = progname;
    logfile = getenv("CRM_LOG_FILE");
    if (logfile != NULL && logfile[0] == '\0')
        logfile = NULL;
}

/*
 * A rotation renames the log file (scripts/stack.sh, logrotate without copytruncate): when the
 * path no longer names the file stderr writes to, stderr is reopened on the path. Lines written
 * before that went to the renamed file, so none is lost, and no signal has to reach every worker.
 */
static void
follow_logfile(void)
{
    struct stat at_path, at_fd;
    int fd;

    if (logfile == NULL || (stat(logfile, &at_path) == 0 && fstat(STDERR_FILENO, &at_fd) == 0 &&
                            at_path.st_ino == at_fd.st_ino && at_path.st_dev == at_fd.st_dev))
        return;
    /* If it cannot be opened, go on writing where stderr is. */
    if ((fd = open(logfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0)
        return;
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static const char *const names[] = {"debug", "info", "warn", "error"};

void
crm_log(enum crm_log_level level, const struct crm_req *req, const char *fmt, ...)
{
    char msg[1024], out[2048];
    size_t o = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Escape control characters: one event must stay one line. */
    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0' && o + 5 < sizeof(out);
         p++) {
        if (*p < 0x20 || *p == 0x7f)
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", *p);
        else
            out[o++] = (char)*p;
    }
    out[o] = '\0';
    follow_logfile();
    fprintf(stderr, "%s[%ld]: %s req=%s %s\n", prog, (long)getpid(),
            names[(unsigned)level < 4 ? level : CRM_LOG_ERR],
            req != NULL && req->id[0] != '\0' ? req->id : "-", out);
}
