#!/usr/bin/env bash
# fuzz.sh [SECONDS]: runs every libFuzzer target of build/fuzz (make fuzz-bins) for SECONDS
# (default 60) each, one after the other, from its committed seeds (tests/fuzz/corpus/NAME) and
# dictionary (tests/fuzz/NAME.dict) into a working corpus under build/fuzz/corpus/NAME. A target
# fails on a crash, a sanitizer report, a leak, a broken property or an input slower than
# FUZZ_TIMEOUT seconds (default 10); its input is kept in build/fuzz/artifacts. One line per
# target with executions per second and coverage (libFuzzer's cov: and ft:), then the closing
# line "fuzz: N passed, M failed". Exits non-zero when any target failed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_EACH=${1:-60}
OUT=$ROOT/build/fuzz
cd "$ROOT"
# libFuzzer finds leaks itself (at the end of every input that allocated); UBSan stops at once.
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

passed=0 failed=0
mkdir -p "$OUT/artifacts" "$OUT/logs"
for bin in "$OUT"/fuzz_*; do
    [ -x "$bin" ] || continue
    name=${bin##*/fuzz_}
    work=$OUT/corpus/$name log=$OUT/logs/$name.log
    mkdir -p "$work"
    "$bin" -max_total_time="$SECONDS_EACH" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 \
        -dict="tests/fuzz/$name.dict" -artifact_prefix="$OUT/artifacts/$name-" \
        -print_final_stats=1 "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    # The last status line: "#N DONE cov: C ft: F corp: ... exec/s: E rss: ...".
    stats=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(printf '%s' "$stats" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s' "$stats" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "fuzz $name: ok, ${runs:-?} runs, ${rate:-?} exec/s, cov: ${cov:-?} ft: ${ft:-?}"
    else
        failed=$((failed + 1))
        echo "fuzz $name: FAILED (exit $rc), see $log"
        grep -E 'ERROR:|SUMMARY:|runtime error|property broken|Test unit written' "$log" | head -n 8
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
