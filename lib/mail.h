/* mail.h: the outbox's messages (RFC 5322 + MIME) and the retry schedule of the mailer. */
#ifndef CRM_MAIL_H
#define CRM_MAIL_H

#include <stddef.h>
#include <time.h>

/*
 * The address inside a mailbox ("Name <a@b.c>" or "a@b.c") into out. Returns 0, or -1 when it
 * does not fit or there is no address.
 */
int crm_mail_addr(const char *mailbox, char *out, size_t outsz);

/*
 * The welcome message for outbox row id: From from (a mailbox, as MAIL_FROM), To the user
 * (to_name, RFC 2047-encoded when it is not plain ASCII), a Message-ID made from id (the same on
 * every retry, so a duplicate can be recognised), Date now, and a multipart/alternative body with
 * a text part and an HTML part (the name HTML-escaped), both UTF-8 in base64. Lines end in CRLF.
 * Returns a malloc'd string, or NULL when out of memory or an argument is unusable.
 */
char *crm_mail_welcome(const char *from, const char *to_addr, const char *to_name, long long id,
                       time_t now);

/*
 * The reminder for outbox row id that task title on lead lead is due at due_at (as the API
 * writes times): Subject "Reminder: <title>" (RFC 2047-encoded when it is not plain words), a
 * Message-ID <task_due-id@domain>, and the same shape and checks as crm_mail_welcome; the title
 * and lead name HTML-escaped in the HTML part. NULL when out of memory or an argument is unusable.
 */
char *crm_mail_task_due(const char *from, const char *to_addr, const char *to_name, long long id,
                        time_t now, const char *title, const char *lead, const char *due_at);

/*
 * The password reset e-mail for outbox row id: the one-time link (an absolute URL without
 * spaces, quotes or angle brackets, else NULL) in both parts, with a Message-ID
 * <password_reset-id@domain>, and the same shape and checks as crm_mail_welcome. NULL when out of
 * memory or an argument is unusable.
 */
char *crm_mail_password_reset(const char *from, const char *to_addr, const char *to_name,
                              long long id, time_t now, const char *link);

/*
 * Seconds to wait after failed attempt number attempts (1, 2, ...): base * 2^(attempts-1), at
 * most 6 hours, spread by +/-20% with r in [0, 1) so that many failures do not retry in step.
 */
long crm_mail_backoff(int attempts, long base, double r);

#endif
