/* log.c: escaped one-line log messages on stderr (journald under systemd). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "http.h"

static const char *prog = "crm";

void
crm_log_init(const char *progname)
{
    if (progname != NULL)
        prog = progname;
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
    fprintf(stderr, "%s[%ld]: %s req=%s %s\n", prog, (long)getpid(),
            names[(unsigned)level < 4 ? level : CRM_LOG_ERR],
            req != NULL && req->id[0] != '\0' ? req->id : "-", out);
}
