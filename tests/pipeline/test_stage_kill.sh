#!/usr/bin/env bash
#  test_stage_kill.sh - a stage that dies loses nothing. Two stages consume
#  the pipeline `in` and push into `out` (`zmesh-worker --pipeline in
#  --output out`): a slow one (a shell loop that sleeps per line), which so
#  always holds its whole credit, and a fast one (cat). The slow one is
#  killed with SIGKILL mid-stream. Every number pushed into `in` must come
#  out of `out` (read by `zmesh pull --meta`), the extra copies at most the
#  killed stage's credit (a message it had pushed on but not acknowledged
#  runs again), and the broker must have redelivered what it held.
#  Usage: test_stage_kill.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2
    exit 2
fi
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
count=3000
credit=10
kill_after=300                      #  lines out of `out` when the slow stage is killed
run_ms=60000
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

[ -x "$python" ] || fail "$python not found"
start_broker

#  Waits until `zmesh status --json` says pipeline $1 has $2 consumers.
wait_consumers() {
    local check='
import json, sys
pipe = json.load(sys.stdin).get("pipelines", {}).get(sys.argv[1])
sys.exit(0 if pipe is not None and pipe["consumers"] == int(sys.argv[2]) else 1)
'
    local deadline=$(($(now_ms) + 10000))
    until timeout 5 "$zmesh_bin" status --json --broker "$endpoint" 2>/dev/null |
        "$python" -c "$check" "$1" "$2"; do
        (($(now_ms) < deadline)) || fail "pipeline $1 did not get $2 consumers within 10 s"
        sleep 0.05
    done
}

stage_flags=(--pipeline in --output out --credit "$credit" --heartbeat-ms 200 --liveness 5
    --broker "$endpoint")
"$worker_bin" "${stage_flags[@]}" \
    --exec 'while IFS= read -r line; do sleep 0.005; printf "%s\n" "$line"; done' \
    2>"$tmp/slow-stage.log" &
slow_pid=$!
pids+=("$slow_pid")
wait_consumers in 1
"$worker_bin" "${stage_flags[@]}" --exec cat 2>"$tmp/fast-stage.log" &
pids+=($!)
wait_consumers in 2

"$zmesh_bin" pull out --meta --broker "$endpoint" >"$tmp/out.jsonl" 2>"$tmp/pull.log" &
pull_pid=$!
pids+=("$pull_pid")
wait_consumers out 1
seq 1 "$count" | timeout 100 "$zmesh_bin" push in --broker "$endpoint" 2>"$tmp/push.log" &
push_pid=$!
pids+=("$push_pid")

deadline=$(($(now_ms) + run_ms))
while [ "$(wc -l <"$tmp/out.jsonl")" -lt "$kill_after" ]; do
    (($(now_ms) < deadline)) || fail "fewer than $kill_after messages came out"
    sleep 0.01
done
kill -KILL "$slow_pid"
wait "$slow_pid" 2>/dev/null || true
echo "pipeline: slow stage killed after $(wc -l <"$tmp/out.jsonl") messages came out"
rc=0
wait "$push_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "zmesh push exited with status $rc"

#  Reads out.jsonl: exit 0 once every number is there, 1 while some are
#  missing, 2 on anything wrong; prints the figures.
tally='
import collections, json, sys
count, credit = int(sys.argv[2]), int(sys.argv[3])
seen = collections.Counter()
with open(sys.argv[1]) as out:
    for line in out:
        if not line.endswith("\n"):
            break                               # pull is still writing it
        seen[json.loads(line)["body"]] += 1
missing = [n for n in range(1, count + 1) if n not in seen]
strays = [n for n in seen if not isinstance(n, int) or not 1 <= n <= count]
extra = sum(seen.values()) - len(seen)
print("out: %d messages, %d numbers, %d missing, %d extra copies, %d strays"
      % (sum(seen.values()), len(seen), len(missing), extra, len(strays)))
sys.exit(2 if strays or extra > credit else 1 if missing else 0)
'
while :; do
    rc=0
    figures=$("$python" -c "$tally" "$tmp/out.jsonl" "$count" "$credit") || rc=$?
    [ "$rc" -ne 2 ] || fail "$figures (at most $credit extra copies allowed)"
    [ "$rc" -ne 0 ] || break
    (($(now_ms) < deadline)) || fail "not every number came out within $run_ms ms: $figures"
    sleep 0.1
done
echo "pipeline: $figures"
kill -TERM "$pull_pid"
rc=0
wait "$pull_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "zmesh pull exited with status $rc after SIGTERM"

check='
import json, sys
pipe = json.load(sys.stdin)["pipelines"]["in"]
print("in: " + json.dumps(pipe))
sys.exit(0 if 1 <= pipe["redelivered"] <= int(sys.argv[1]) and pipe["consumers"] == 1 else 1)
'
timeout 5 "$zmesh_bin" status --json --broker "$endpoint" >"$tmp/status.json" ||
    fail "zmesh status --json failed"
"$python" -c "$check" "$credit" <"$tmp/status.json" ||
    fail "pipeline in: expected 1 to $credit redelivered and one consumer left"
check_pipeline_settled in "$count"
echo "pipeline: stage kill ok"
