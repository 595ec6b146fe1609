#!/usr/bin/env bash
# explain_leads.sh CRMCTL DATABASE_URL TERM [SORT]: the time PostgreSQL takes (EXPLAIN ANALYZE,
# warm: the best of 3) for the count (its bound + 1: BOUND, default 1001) and the page of
# GET /api/leads?q=TERM&sort=SORT (default -created_at, limit 20) as CRMCTL's build runs them: run it with an old and a new crmctl to
# compare their SQL on the same database (bench/results.md "Search and paging").
set -euo pipefail
ctl=$1 url=$2 term=$3 sort=${4:--created_at}

# Sets PREP to "PREPARE s AS <statement $1>" and ARGS to its arguments for GET /api/leads?q=term
# ($2: the count's bound, or the page's limit + 1), as many as its SQL takes.
prepare() {
    local sql nparams args
    sql=$("$ctl" statement "$1")
    nparams=$(grep -o '\$[0-9]*' <<<"$sql" | tr -d '$' | sort -n | tail -n 1)
    # $1..$7 the row filter and the filters, then the count bound (or the limit), the offset
    # and the cursor's key and id.
    args=(NULL NULL NULL NULL "'%$term%'" NULL NULL "$2" 0 NULL NULL)
    args=("${args[@]:0:$nparams}")
    PREP="PREPARE s AS $sql;" ARGS=$(IFS=,; echo "${args[*]}")
}

# The best of 3 execution times of statement $1 ($2 as for prepare).
explain() {
    prepare "$1" "$2"
    psql "$url" -X -q -t -A -v ON_ERROR_STOP=1 <<SQL | sed -n 's/^Execution Time: //p' | sort -n | head -n 1
$PREP
EXPLAIN (ANALYZE, TIMING OFF) EXECUTE s($ARGS);
EXPLAIN (ANALYZE, TIMING OFF) EXECUTE s($ARGS);
EXPLAIN (ANALYZE, TIMING OFF) EXECUTE s($ARGS);
SQL
}

# The rows statement $1 answers ($2 as for prepare), a line each.
execute() {
    prepare "$1" "$2"
    psql "$url" -X -q -t -A -v ON_ERROR_STOP=1 <<SQL
$PREP
EXECUTE s($ARGS);
SQL
}

# The page by each plan of lib/db.c LEAD_LIST: lead_list is what the planner picked before
# (one statement for every case); the program now runs lead_few when the count is exact, else
# lead_walk, and lead_few after it when the walk's page came back short.
bound=${BOUND:-1001}
exact=$(execute lead_count "$bound" | cut -d'|' -f2)
few=$(explain "lead_few:$sort" 21)
if [ "$exact" = t ]; then now="few $few"; else
    walk=$(explain "lead_walk:$sort" 21)
    if [ "$(execute "lead_walk:$sort" 21 | wc -l)" -ge 21 ]; then now="walk $walk"
    else now="walk $walk + few $few"; fi
fi
printf 'q=%s sort=%s: count %s (exact: %s), page before (planner) %s, page now: %s\n' "$term" \
    "$sort" "$(explain lead_count "$bound")" "$exact" "$(explain "lead_list:$sort" 21)" "$now"
