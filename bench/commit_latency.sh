#!/usr/bin/env bash
# commit_latency.sh [DELAY_US]: lead creations per second when a commit takes DELAY_US longer
# (default 10000: 10 ms, what a synchronous standby's round trip adds), as pgbench inserts at
# 16 connections: the INSERT INTO leads alone (its summary triggers), then with a pg_notify in its
# transaction as the API's POST /api/leads has. A fresh stack of this checkout under var/bench
# (port BENCH_PORT, default 18090), with commit_delay and commit_siblings = 0: every commit's
# WAL flush waits DELAY_US, with the locks it holds (bench/results.md "Lead creations").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CRM_VAR=$ROOT/var/bench CRM_PORT=${BENCH_PORT:-18090} CRM_BIN=$ROOT/build CRM_WORKERS=2
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
# As the stack's service user when root (the socket is the crm user's).
as_owner() { if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=crm --regid=crm --init-groups -- "$@"; else "$@"; fi; }
psql_() { as_owner "$PGBIN/psql" -h "$CRM_VAR/run" -d crm -XtAq "$@"; }

make -s -C "$ROOT" all
"$ROOT/scripts/stack.sh" wipe >/dev/null
"$ROOT/scripts/stack.sh" start >/dev/null
trap '"$ROOT/scripts/stack.sh" stop >/dev/null' EXIT
psql_ -c "ALTER SYSTEM SET commit_delay = ${1:-10000}" -c "ALTER SYSTEM SET commit_siblings = 0" \
    -c "SELECT pg_reload_conf()" >/dev/null
uid=$(psql_ -c "SELECT min(id) FROM users")
dir=$(mktemp -d)
printf "INSERT INTO leads (name, created_by) VALUES ('bench', %s);\n" "$uid" >"$dir/plain.sql"
printf "BEGIN;\nINSERT INTO leads (name, created_by) VALUES ('bench', %s);\n%s\nCOMMIT;\n" "$uid" \
    "SELECT pg_notify('bench', '1');" >"$dir/notify.sql"
chmod 755 "$dir" && chmod 644 "$dir"/*.sql
for f in plain notify plain notify; do
    out=$(as_owner "$PGBIN/pgbench" -n -c 16 -j 2 -T 8 -f "$dir/$f.sql" -h "$CRM_VAR/run" crm 2>&1)
    echo "$f: $(sed -n 's/^tps = \([0-9.]*\).*/\1 tps/p' <<<"$out"), $(sed -n 's/^latency average = /latency /p' <<<"$out")"
done
rm -r "$dir"
