#!/usr/bin/env bash
# search_fts.sh DATABASE_URL TERM...: what full-text search would cost GET /api/leads?q=TERM on
# a bench database, beside the trigram search it has (bench/explain_leads.sh gives that one).
# Builds a GIN index on to_tsvector('simple', search) (the words of name, e-mail and company),
# prints EXPLAIN ANALYZE times (ms, best of 3) for each term as a prefix query (term:*): the
# count up to 1 001, the first page of 20 by rank (ts_rank over every match), newest first and
# by name; then drops the index. Issue 14 asked for both kinds measured (bench/results.md).
set -euo pipefail
url=$1
shift

psql "$url" -X -q -v ON_ERROR_STOP=1 \
    -c "CREATE INDEX IF NOT EXISTS bench_leads_fts ON leads USING gin (to_tsvector('simple', search))" \
    -c "ANALYZE leads"
trap 'psql "$url" -X -q -c "DROP INDEX IF EXISTS bench_leads_fts"' EXIT

# The best of 3 execution times of query $1 (:q is the tsquery).
best() {
    psql "$url" -X -q -t -A -v ON_ERROR_STOP=1 -v q="$term:*" <<SQL |
PREPARE s(text) AS $1;
EXPLAIN (ANALYZE, TIMING OFF) EXECUTE s(:'q');
EXPLAIN (ANALYZE, TIMING OFF) EXECUTE s(:'q');
EXPLAIN (ANALYZE, TIMING OFF) EXECUTE s(:'q');
SQL
        sed -n 's/^Execution Time: //p' | sort -n | head -n 1
}

tsv="to_tsvector('simple', l.search)"
for term in "$@"; do
    matches=$(psql "$url" -X -q -t -A -v q="$term:*" <<<"SELECT count(*) FROM leads l
        WHERE $tsv @@ to_tsquery('simple', :'q')")
    printf '%s: %s matches; count to 1 001 %s; page by rank %s; newest first %s; by name %s\n' \
        "$term" "$matches" \
        "$(best "SELECT count(*) FROM (SELECT 1 FROM leads l WHERE $tsv @@ to_tsquery('simple', \$1) LIMIT 1001) c")" \
        "$(best "SELECT l.id FROM leads l WHERE $tsv @@ to_tsquery('simple', \$1) ORDER BY ts_rank($tsv, to_tsquery('simple', \$1)) DESC, l.id LIMIT 20")" \
        "$(best "SELECT l.id FROM leads l WHERE $tsv @@ to_tsquery('simple', \$1) ORDER BY l.created_at DESC, l.id DESC LIMIT 20")" \
        "$(best "SELECT l.id FROM leads l WHERE $tsv @@ to_tsquery('simple', \$1) ORDER BY l.name, l.id LIMIT 20")"
done
