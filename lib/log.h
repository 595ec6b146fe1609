/* log.h: one line per event on stderr, tagged with program, pid and request id. */
#ifndef CRM_LOG_H
#define CRM_LOG_H

struct crm_req;

enum crm_log_level { CRM_LOG_DEBUG, CRM_LOG_INFO, CRM_LOG_WARN, CRM_LOG_ERR };

/*
 * Sets the program name put at the start of each line (default "crm"). When CRM_LOG_FILE names
 * the file stderr was opened on (the embedded stack), each line first checks that the path
 * still names it and reopens stderr on the path after a rotation renamed it.
 */
void crm_log_init(const char *progname);

/*
 * Writes one line: "prog[pid]: level req=ID message". req may be NULL. Control characters in
 * the formatted message are escaped, so a client cannot forge log lines. Never pass secrets.
 */
void crm_log(enum crm_log_level level, const struct crm_req *req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
