/* doctor.h: crmctl doctor (README "Doctor"). */
#ifndef CRM_DOCTOR_H
#define CRM_DOCTOR_H

/*
 * Checks the env file, the database (reachable, schema at the version of schema, its
 * extensions, the programs' statements), the SMTP relay (greeting, STARTTLS as MAIL_TLS asks,
 * AUTH), the FastCGI sockets (--sockets DIR, default /run/crm) and the site (--url URL, default
 * http://127.0.0.1:PORT, answering /api/health); prints one line per check, "ok" or "FAIL" with
 * what to do. schema is the text of schema.sql. Returns 0 when every check passed, 1 when one
 * failed, -1 on unknown options.
 */
int crm_doctor(int argc, char **argv, const char *schema);

#endif
