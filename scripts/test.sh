#!/usr/bin/env bash
# test.sh [BUILD]: the whole suite. Unit tests (cmocka), then the API tests (pytest) against a
# stack of nginx, the FastCGI pools and PostgreSQL started here from BUILD (sanitized by make
# test) under var/test on port 18080. Fails on any test failure or any sanitizer report.
# CRM_TEST_VAR, CRM_TEST_PORT and CRM_TEST_MAIL_PORT move the stack (two checkouts at once);
# CRM_TEST_ARGS runs some of the API tests only (pytest arguments, e.g. tests/api/test_auth.py).
# The whole suite (no CRM_TEST_ARGS) ends with a short chaos soak (tests/soak/soak.py,
# CRM_TEST_SOAK_SECONDS, default 90; 0 skips it) on the same ports, its own stack in $CRM_VAR-soak.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/${1:-build/asan}
export CRM_VAR=${CRM_TEST_VAR:-$ROOT/var/test} CRM_PORT=${CRM_TEST_PORT:-18080} CRM_BIN=$BUILD CRM_BCRYPT_COST=4 CRM_WORKERS=2
# Few enough streams that a test can reach the limit.
export CRM_SSE_MAX_STREAMS=40
# Login lockouts short enough to wait out, and long enough that a test's requests fit in one.
export CRM_LOGIN_LOCKOUT_SECONDS=3 CRM_LOGIN_LOCKOUT_MAX_SECONDS=6
# CORS for the page the browser test serves from the next port (tests/api/test_cors.py); /metrics
# for 127.0.0.1 alone, so that a request from any other loopback address shows the refusal.
export CRM_CORS_PAGE_PORT=$((CRM_PORT + 1))
export CRM_CORS_ORIGINS="http://localhost:$CRM_CORS_PAGE_PORT" CRM_METRICS_ALLOW=127.0.0.1
# The mailer delivers to the tests' own SMTP server (aiosmtpd on loopback), retrying fast.
export CRM_MAIL_HOST=127.0.0.1 CRM_MAIL_PORT=${CRM_TEST_MAIL_PORT:-18025} CRM_MAIL_RETRY_SECONDS=1 CRM_MAIL_MAX_ATTEMPTS=3
# Webhooks may reach the tests' receivers on 127.0.0.0/8 (no other private address), with
# attempts, backoff and the failures that disable short enough to watch.
export CRM_WEBHOOK_ALLOW_NETS=127.0.0.0/8 CRM_WEBHOOK_TIMEOUT_SECONDS=2 CRM_WEBHOOK_RETRY_SECONDS=1
export CRM_WEBHOOK_MAX_FAILURES=5
# Not PostgreSQL's default (128MB), so that a test sees stack.sh hand it over at every start.
export CRM_PG_SHARED_BUFFERS=160MB
export ASAN_OPTIONS=detect_leaks=1:exitcode=23:log_exe_name=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$ROOT"

unit_run=0 unit_failed=0
for t in "$BUILD"/tests/test_*; do
    out=$("$t" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    n=$(printf '%s\n' "$out" | sed -n 's/.*Running \([0-9]*\) test.*/\1/p' | head -n 1)
    f=$(printf '%s\n' "$out" | sed -n 's/.*FAILED  \] \([0-9]*\) test.*/\1/p' | head -n 1)
    unit_run=$((unit_run + ${n:-0}))
    unit_failed=$((unit_failed + ${f:-0}))
    [ "$rc" -eq 0 ] || [ -n "$f" ] || unit_failed=$((unit_failed + 1))
done
echo "unit: $((unit_run - unit_failed)) passed, $unit_failed failed"

# Every fuzz target of build/fuzz (make fuzz-bins), briefly, from its seeds: each one a unit that
# passed or failed (make fuzz runs them longer). CRM_FUZZ_SECONDS: seconds per target.
mkdir -p "$ROOT/build/fuzz"
scripts/fuzz.sh "${CRM_FUZZ_SECONDS:-10}" | tee "$ROOT/build/fuzz/fuzz.out"
fuzz_rc=${PIPESTATUS[0]}
fuzz_line=$(tail -n 1 "$ROOT/build/fuzz/fuzz.out")
fuzz_passed=$(printf '%s' "$fuzz_line" | sed -n 's/^fuzz: \([0-9]*\) passed.*/\1/p')
fuzz_failed=$(printf '%s' "$fuzz_line" | sed -n 's/.* \([0-9]*\) failed$/\1/p')
[ "$fuzz_rc" -eq 0 ] || [ "${fuzz_failed:-0}" -gt 0 ] || fuzz_failed=1

# The npm tools of the contract tests (tests/contract: the OpenAPI linter, the client generator),
# exactly as package-lock.json pins them. npm ci runs only when the lock changed since the last
# install; a failed install stops the run here.
contract_tools() {
    local dir=$ROOT/tests/contract
    cmp -s "$dir/package-lock.json" "$dir/node_modules/.crm-installed-lock" && return 0
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) &&
        cp "$dir/package-lock.json" "$dir/node_modules/.crm-installed-lock"
}
if ! contract_tools; then
    echo "test: npm ci in tests/contract failed: the contract tests cannot run" >&2
    exit 1
fi

# A fresh stack for the API tests.
scripts/stack.sh wipe
if ! scripts/stack.sh start; then
    tail -n 50 "$CRM_VAR"/log/*.log
    exit 1
fi
/usr/bin/python3 -m pytest -q -p no:cacheprovider ${CRM_TEST_ARGS:-tests/api} 2>&1 | tee "$CRM_VAR.pytest.out"
api_rc=${PIPESTATUS[0]}
scripts/stack.sh stop

# Sanitizer reports land in the daemons' logs (leaks when they exit, at stop).
if grep -E 'ERROR: (Address|Leak)Sanitizer|Sanitizer has encountered|runtime error:|SUMMARY: .*Sanitizer' \
    "$CRM_VAR"/log/*.log*; then
    echo "sanitizer reports found in $CRM_VAR/log" >&2
    san=1
else
    echo "sanitizers: no reports"
    san=0
fi
# The short soak, once the API tests' stack and SMTP server are gone: its ports are free.
soak_passed=0 soak_failed=0
if [ -z "${CRM_TEST_ARGS:-}" ] && [ "${CRM_TEST_SOAK_SECONDS:-90}" -gt 0 ]; then
    if CRM_SOAK_VAR="$CRM_VAR-soak" CRM_SOAK_PORT=$CRM_PORT CRM_SOAK_MAIL_PORT=$CRM_MAIL_PORT \
        SOAK_SECONDS=${CRM_TEST_SOAK_SECONDS:-90} /usr/bin/python3 tests/soak/soak.py "$BUILD"; then
        soak_passed=1
    else
        soak_failed=1
    fi
fi
# How many tests the last line of pytest's output in file $2 says $1 (a sed pattern).
pytest_count() {
    tail -n 1 "$2" | sed -n "s/.*\b\([0-9][0-9]*\) \($1\).*/\1/p"
}

# The deployment of several machines (tests/cluster: network namespaces, so as root only), of the
# optimised build as it ships (make install's layout).
cluster_passed=0 cluster_failed=0
if [ -z "${CRM_TEST_ARGS:-}" ] && [ "${CRM_TEST_CLUSTER:-1}" != 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "cluster: not run (it needs root: network namespaces); make test-cluster as root runs it"
    else
        /usr/bin/python3 -m pytest -q -p no:cacheprovider -s tests/cluster 2>&1 |
            tee "$ROOT/var/pytest-cluster.out"
        cluster_rc=${PIPESTATUS[0]}
        cluster_passed=$(pytest_count passed "$ROOT/var/pytest-cluster.out")
        cluster_failed=$(pytest_count 'failed\|error' "$ROOT/var/pytest-cluster.out")
        [ "$cluster_rc" -eq 0 ] || [ "${cluster_failed:-0}" -gt 0 ] || cluster_failed=1
    fi
fi
api_passed=$(pytest_count passed "$CRM_VAR.pytest.out")
api_failed=$(pytest_count 'failed\|error' "$CRM_VAR.pytest.out")
[ "$api_rc" -eq 0 ] || [ "${api_failed:-0}" -gt 0 ] || api_failed=1
echo "unit: $((unit_run - unit_failed)) passed, $unit_failed failed"
echo "fuzz: ${fuzz_passed:-0} passed, ${fuzz_failed:-0} failed"
echo "api: ${api_passed:-0} passed, ${api_failed:-0} failed"
echo "soak: $soak_passed passed, $soak_failed failed"
echo "cluster: ${cluster_passed:-0} passed, ${cluster_failed:-0} failed"
# A sanitizer report counts as one failure, so the closing line agrees with the exit status.
echo "total: $((unit_run - unit_failed + ${fuzz_passed:-0} + ${api_passed:-0} + soak_passed + \
    ${cluster_passed:-0})) passed," \
    "$((unit_failed + ${fuzz_failed:-0} + ${api_failed:-0} + san + soak_failed + \
    ${cluster_failed:-0})) failed"
[ "$unit_failed" -eq 0 ] && [ "${fuzz_failed:-0}" -eq 0 ] && [ "$api_rc" -eq 0 ] && [ "$san" -eq 0 ] &&
    [ "$soak_failed" -eq 0 ] && [ "${cluster_failed:-0}" -eq 0 ]
