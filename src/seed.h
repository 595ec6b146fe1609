/* seed.h: demo data for people trying the product and for the benchmarks. */
#ifndef CRM_SEED_H
#define CRM_SEED_H

#include <libpq-fe.h>

/*
 * Adds users (one in ten a MANAGER, the rest SALES_EXECUTIVE, password "demo-password" hashed at
 * cost) and leads with about ten activities each, in one transaction, through COPY. seed makes
 * the data reproducible. Returns 0, or -1 after printing why (nothing is left behind).
 */
int crm_seed(PGconn *conn, long leads, long users, int cost, unsigned long seed);

#endif
