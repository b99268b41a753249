#!/usr/bin/env bash
#  test_numbers.sh - what README's "done" promises: `seq 1 100000 | zmesh push
#  numbers`, with `zmesh pull numbers --count 100000` started first in
#  another process, delivers all 100,000 numbers in order; push exits 0 (the
#  broker accepted every line) and pull exits 0 after exactly 100,000 lines.
#  Usage: test_numbers.sh ZMESH-BROKER ZMESH
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 ZMESH-BROKER ZMESH" >&2
    exit 2
fi
broker_bin=$1
zmesh_bin=$2
count=100000
run_s=100                           #  for each program; ctest's limit is above it
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

start_broker

timeout "$run_s" "$zmesh_bin" pull numbers --count "$count" --broker "$endpoint" \
    >"$tmp/pulled.txt" 2>"$tmp/pull.log" &
pull_pid=$!
pids+=("$pull_pid")

started=$(now_ms)
rc=0
seq 1 "$count" | timeout "$run_s" "$zmesh_bin" push numbers --broker "$endpoint" \
    2>"$tmp/push.log" || rc=$?
pushed=$(now_ms)
[ "$rc" -eq 0 ] || fail "zmesh push exited with status $rc"
rc=0
wait "$pull_pid" || rc=$?
pulled=$(now_ms)
[ "$rc" -eq 0 ] || fail "zmesh pull exited with status $rc"
echo "pipeline: pushed $count lines in $((pushed - started)) ms, all pulled after" \
    "$((pulled - started)) ms"

seq 1 "$count" | cmp -s - "$tmp/pulled.txt" ||
    fail "zmesh pull did not print 1..$count in order: $(wc -l <"$tmp/pulled.txt") lines," \
        "first difference: $(seq 1 "$count" | cmp - "$tmp/pulled.txt" 2>&1 | head -n 1)"
check_pipeline_settled numbers "$count"
echo "pipeline: numbers ok"
