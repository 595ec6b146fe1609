/* backup.h: crmctl backup and restore (README "Backups"). */
#ifndef CRM_BACKUP_H
#define CRM_BACKUP_H

#include "config.h"

/*
 * Dumps the database of cfg into file with pg_dump's custom format (mode 0600, written aside and
 * renamed when complete). Returns the exit status for crmctl: 0, or 1 with the reason on stderr.
 */
int crm_backup(const struct crm_config *cfg, const char *file);

/*
 * Restores file (a crm_backup dump) into the database of cfg with pg_restore in one transaction.
 * Refuses a file pg_restore cannot read, and a database that is not empty unless clean (then
 * the dump's objects are dropped first). Returns 0, or 1 with the reason on stderr.
 */
int crm_restore(const struct crm_config *cfg, const char *file, int clean);

#endif
