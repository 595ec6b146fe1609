/* seed.h: demo data for people trying the product and for the benchmarks. */
#ifndef CRM_SEED_H
#define CRM_SEED_H

#include <libpq-fe.h>

/*
 * Adds users (one in ten a MANAGER, the rest SALES_EXECUTIVE, password "demo-password" hashed at
 * cost) and leads with about ten activities each, in one transaction, through COPY. seed makes
 * the data reproducible. Returns 0, or -1 after printing why (nothing is left behind).
 *
 * The leads and their activities go in COPYs of chunk leads: the summaries' statement triggers
 * see a chunk's rows at a time (10 million in one statement ask them for one array of 10 million
 * deltas, 640 MB) and the activities' read of the new leads stays small; but every chunk updates
 * the summary rows again, and in one transaction each update leaves a dead row, so chunks are
 * large (CRM_SEED_CHUNK).
 */
#define CRM_SEED_CHUNK 100000L
/*
 * rebuild: the indexes of leads and activities that check nothing (not unique) are dropped for
 * the seed and built again at its end, in its transaction. A seed that adds millions of leads to
 * millions then takes a fraction of the time (the benchmark's 10 million), but other sessions
 * wait on the two tables until it commits: for an empty or a benchmark's database only.
 */
int crm_seed(PGconn *conn, long leads, long users, long chunk, int rebuild, int cost,
             unsigned long seed);

#endif
