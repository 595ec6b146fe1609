#!/usr/bin/env bash
# explain_leads.sh CRMCTL DATABASE_URL TERM [SORT]: the time PostgreSQL takes (EXPLAIN ANALYZE,
# warm: the best of 3) for the count (its bound + 1: BOUND, default 1001) and the page of
# GET /api/leads?q=TERM&sort=SORT (default -created_at, limit 20) as CRMCTL's build runs them: run it with an old and a new crmctl to
# compare their SQL on the same database (bench/results.md "Search and paging").
set -euo pipefail
ctl=$1 url=$2 term=$3 sort=${4:--created_at}

# Sets PREP to "PREPARE s AS <statement $1>" and ARGS to its arguments for GET /api/leads?q=term
# ($2: the count's bound, or the page's limit + 1; $3: lead_search's bound), as many as its SQL
# takes.
prepare() {
    local sql nparams args
    sql=$("$ctl" statement "$1")
    nparams=$(grep -o '\$[0-9]*' <<<"$sql" | tr -d '$' | sort -n | tail -n 1)
    # $1..$7 the row filter and the filters, then the count bound (or the limit), the offset
    # and the cursor's key and id, then lead_search's count bound.
    args=(NULL NULL NULL NULL "'%$term%'" NULL NULL "$2" 0 NULL NULL "${3:-NULL}")
    args=("${args[@]:0:$nparams}")
    PREP="PREPARE s AS $sql;" ARGS=$(IFS=,; echo "${args[*]}")
}

# The best of 3 execution times of statement $1 ($2 $3 as for prepare).
explain() {
    prepare "$@"
    psql "$url" -X -q -t -A -v ON_ERROR_STOP=1 <<SQL | sed -n 's/^Execution Time: //p' | sort -n | head -n 1
$PREP
EXPLAIN (ANALYZE, TIMING OFF) EXECUTE s($ARGS);
EXPLAIN (ANALYZE, TIMING OFF) EXECUTE s($ARGS);
EXPLAIN (ANALYZE, TIMING OFF) EXECUTE s($ARGS);
SQL
}

# The rows statement $1 answers ($2 $3 as for prepare), a line each.
execute() {
    prepare "$@"
    psql "$url" -X -q -t -A -v ON_ERROR_STOP=1 <<SQL
$PREP
EXECUTE s($ARGS);
SQL
}

# The page by each plan of lib/db.c LEAD_LIST. Before: lead_list, the planner's pick (one
# statement for every case); then the count, and lead_few when it is exact, else lead_walk, and
# lead_few after it when the walk's page came back short. Now lead_search replaces the count and
# lead_few: one gathering of the matches instead of two.
bound=${BOUND:-1001}
exact=$(execute lead_count "$bound" | cut -d'|' -f2)
few=$(explain "lead_few:$sort" 21)
# A crmctl from before lead_search has none: "now" is then "search n/a".
search=$(explain "lead_search:$sort" 21 "$bound" 2>/dev/null) || search=n/a
if [ "$exact" = t ]; then was="few $few" now="search $search"; else
    walk=$(explain "lead_walk:$sort" 21)
    if [ "$(execute "lead_walk:$sort" 21 | wc -l)" -ge 21 ]; then was="walk $walk"
    else was="walk $walk + few $few"; fi
    now="search $search + ${was}"
fi
printf 'q=%s sort=%s: count %s (exact: %s), page by the planner %s, count + page %s, now: %s\n' \
    "$term" "$sort" "$(explain lead_count "$bound")" "$exact" "$(explain "lead_list:$sort" 21)" \
    "$was" "$now"
