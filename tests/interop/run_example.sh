#!/usr/bin/env bash
#  run_example.sh - runs the Python examples of schemas/ZMP.md (pyzmq + msgpack:
#  a plain REQ socket, and a plain PUSH socket) against the real zmesh-broker,
#  an echo zmesh-worker and `zmesh pull`, and checks their output; then the
#  CURVE variant of the call against a second broker that runs CURVE, with
#  keys made by `zmesh keygen` as the spec shows (its call works; with a wrong
#  broker key it gives up with its hint; with a key that may not call echo it
#  reports the denial); and the write to a replicated kv service through three
#  replicas, read back with a quorum read. It proves the spec is enough to
#  call a service, with or without CURVE, to write to a replicated one, and to
#  feed a pipeline from another binding. It must not
#  skip: a missing Python module is a failure, because then nothing was
#  proven.
#
#  Usage: run_example.sh ZMESH-BROKER ZMESH-WORKER ZMESH ZMP.md
set -euo pipefail

if [ "$#" -ne 4 ]; then
    echo "usage: $0 zmesh-broker zmesh-worker zmesh ZMP.md" >&2
    exit 2
fi
broker_bin=$1
worker_bin=$2
cli_bin=$3
spec=$4

#  The python3 on PATH may be a private build without Debian's modules.
python=/usr/bin/python3

fail() {
    echo "interop: FAIL: $*" >&2
    exit 1
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

if ! [ -x "$python" ]; then
    fail "$python not found: install python3 python3-zmq python3-msgpack"
fi
if ! "$python" -c 'import zmq, msgpack' 2>/dev/null; then
    fail "$python cannot import zmq and msgpack: install python3-zmq python3-msgpack"
fi
for bin in "$broker_bin" "$worker_bin" "$cli_bin"; do
    [ -x "$bin" ] || fail "not an executable: $bin"
done
[ -r "$spec" ] || fail "cannot read $spec"

tmp=$(mktemp -d)
broker_pid=""
worker_pid=""
secure_pids=()

#  Stops what we started and removes the directory, on success and failure
#  alike. On failure the programs' logs are shown first: they say why.
cleanup() {
    local rc=$? pid
    for pid in "${secure_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$worker_pid" ]; then
        kill "$worker_pid" 2>/dev/null || true
        wait "$worker_pid" 2>/dev/null || true
    fi
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        for log in broker.log worker.log kv1.log kv2.log kv3.log secure-broker.log \
            secure-worker.log; do
            if [ -s "$tmp/$log" ]; then
                echo "---- $log" >&2
                tail -n 50 "$tmp/$log" >&2
            fi
        done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

#  Writes the fenced ```python block that immediately follows the line
#  "<!-- example: NAME -->" in the spec to FILE.
extract() {
    local name=$1 file=$2
    awk -v tag="<!-- example: $name -->" '
        $0 == tag { state = 1; next }
        state == 1 && $0 == "```python" { state = 2; next }
        state == 1 { exit 1 }
        state == 2 && $0 == "```" { found = 1; exit }
        state == 2 { print }
        END { exit !found }
    ' "$spec" >"$file" || fail "no \`\`\`python block right after <!-- example: $name --> in $spec"
    [ -s "$file" ] || fail "the example '$name' in $spec is empty"
}

extract call "$tmp/call.py"
extract errors "$tmp/errors.py"
extract push "$tmp/push.py"
extract call-curve "$tmp/call_curve.py"
extract write "$tmp/write.py"

endpoint="ipc://$tmp/broker.ipc"
push_endpoint="ipc://$tmp/push.ipc"

"$broker_bin" --bind "$endpoint" --push-bind "$push_endpoint" --grace-ms 300 \
    >"$tmp/broker.log" 2>&1 &
broker_pid=$!
"$worker_bin" --service echo --broker "$endpoint" >"$tmp/worker.log" 2>&1 &
worker_pid=$!

#  Waits until the broker lists an echo worker, so that the call below does
#  not depend on the grace period.
has_echo='
import json, sys
status = json.load(sys.stdin)
sys.exit(0 if any(w.get("service") == "echo" for w in status.get("workers", [])) else 1)
'
deadline=$(($(now_ms) + 10000))
while :; do
    kill -0 "$broker_pid" 2>/dev/null || fail "zmesh-broker exited early"
    kill -0 "$worker_pid" 2>/dev/null || fail "zmesh-worker exited early"
    if timeout 5 "$cli_bin" status --json --broker "$endpoint" >"$tmp/status.json" 2>/dev/null &&
        "$python" -c "$has_echo" <"$tmp/status.json" 2>/dev/null; then
        break
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
        fail "no echo worker in 'zmesh status --json' after 10 s; last output: $(cat "$tmp/status.json")"
    fi
    sleep 0.05
done

#  The call example must print the echoed body as compact JSON, nothing else.
rc=0
out=$(ZMESH_BROKER="$endpoint" "$python" "$tmp/call.py") || rc=$?
[ "$rc" -eq 0 ] || fail "the call example exited with status $rc; stdout: '$out'"
expected='{"x":[1,2,3]}'
[ "$out" = "$expected" ] || fail "the call example printed '$out', expected '$expected'"

#  The errors example must see 404 once the 300 ms grace has passed.
rc=0
out=$(ZMESH_BROKER="$endpoint" "$python" "$tmp/errors.py") || rc=$?
[ "$rc" -eq 0 ] || fail "the errors example exited with status $rc; stdout: '$out'"
case "$out" in
"404 "*) ;;
*) fail "the errors example printed '$out', expected '404 <reason>'" ;;
esac

#  The write example puts a key into kv through three replicas (each with its
#  own data directory, as the spec's lines before it show); a quorum read by
#  the CLI must then see it.
for i in 1 2 3; do
    "$worker_bin" --builtin kv --replicas 3 --data-dir "$tmp/kv$i" --broker "$endpoint" \
        >"$tmp/kv$i.log" 2>&1 &
    secure_pids+=("$!")
done
kv_started='
import json, sys
sets = [r for r in json.load(sys.stdin).get("replicated", []) if r["service"] == "kv"]
sys.exit(0 if sets and sets[0]["epoch"] > 0 else 1)
'
deadline=$(($(now_ms) + 10000))
until timeout 5 "$cli_bin" status --json --broker "$endpoint" >"$tmp/status.json" 2>/dev/null &&
    "$python" -c "$kv_started" <"$tmp/status.json" 2>/dev/null; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "kv did not start in 10 s: $(cat "$tmp/status.json")"
    sleep 0.05
done
rc=0
out=$(ZMESH_BROKER="$endpoint" timeout 30 "$python" "$tmp/write.py") || rc=$?
[ "$rc" -eq 0 ] || fail "the write example exited with status $rc; stdout: '$out'"
[ "$out" = '{"ok":true}' ] || fail "the write example printed '$out', expected '{\"ok\":true}'"
out=$(timeout 10 "$cli_bin" call kv '{"op":"get","key":"colour"}' --quorum --broker "$endpoint") ||
    fail "the quorum read after the write example failed"
[ "$out" = '{"found":true,"value":"blue"}' ] || fail "the quorum read printed '$out'"
echo "interop: the write example's put is read back through the quorum: $out"

#  The push example feeds a pipeline through the push endpoint; `zmesh pull`
#  must then print exactly its messages, in order. The pipeline and the count
#  are read from the example, the bodies are what the spec says it sends.
pipeline=$(sed -n 's/^pipeline = "\(.*\)"$/\1/p' "$tmp/push.py")
count=$(sed -n 's/^count = \([0-9][0-9]*\)$/\1/p' "$tmp/push.py")
[ -n "$pipeline" ] && [ -n "$count" ] ||
    fail "the push example has no 'pipeline = \"...\"' or 'count = N' line"
rc=0
out=$(ZMESH_PUSH="$push_endpoint" timeout 30 "$python" "$tmp/push.py") || rc=$?
[ "$rc" -eq 0 ] || fail "the push example exited with status $rc; stdout: '$out'"
expected="pushed $count messages into $pipeline"
[ "$out" = "$expected" ] || fail "the push example printed '$out', expected '$expected'"
rc=0
timeout 30 "$cli_bin" pull "$pipeline" --count "$count" --broker "$endpoint" \
    >"$tmp/pulled.txt" 2>"$tmp/pull.log" || rc=$?
[ "$rc" -eq 0 ] || fail "zmesh pull exited with status $rc: $(cat "$tmp/pull.log")"
for n in $(seq 1 "$count"); do
    printf '{"n":%d,"square":%d}\n' "$n" $((n * n))
done >"$tmp/expected.txt"
diff "$tmp/expected.txt" "$tmp/pulled.txt" >&2 ||
    fail "zmesh pull did not print the pushed messages in order (diff above: expected, pulled)"

#  Nothing was dropped as malformed on the way.
no_drops='
import json, sys
status = json.load(sys.stdin)
pipe = status.get("pipelines", {}).get(sys.argv[1])
sys.exit(0 if pipe is not None and pipe["queued"] == 0
         and not any(pipe.get("drops", {}).values()) else 1)
'
timeout 5 "$cli_bin" status --json --broker "$endpoint" >"$tmp/status.json" ||
    fail "zmesh status failed after the push example"
"$python" -c "$no_drops" "$pipeline" <"$tmp/status.json" ||
    fail "pipeline $pipeline not empty or with drops: $(cat "$tmp/status.json")"

#  The CURVE call example, set up as the spec shows: keys from zmesh keygen,
#  the public files of the worker and the client in a keys directory, a
#  broker and an echo worker that run CURVE.
certs="$tmp/certs"
keys="$tmp/keys"
mkdir -p "$certs" "$keys"
for key in "broker" "echo-worker --serve echo" "alice --call echo" "stranger --call echo" \
    "bystander"; do
    # shellcheck disable=SC2086
    "$cli_bin" keygen $key --dir "$certs" >/dev/null 2>"$tmp/keygen.log" ||
        fail "zmesh keygen $key failed: $(cat "$tmp/keygen.log")"
done
cp "$certs/echo-worker.key" "$certs/alice.key" "$certs/bystander.key" "$keys/"
secure="ipc://$tmp/secure.ipc"
"$broker_bin" --bind "$secure" --push-bind none --curve-secret "$certs/broker.key_secret" \
    --curve-keys "$keys" >"$tmp/secure-broker.log" 2>&1 &
secure_pids+=($!)
"$worker_bin" --service echo --broker "$secure" --curve-secret "$certs/echo-worker.key_secret" \
    --broker-key "$certs/broker.key" >"$tmp/secure-worker.log" 2>&1 &
secure_pids+=($!)

#  Until `zmesh call echo` with alice's key works (the broker and its echo
#  worker are up): the example itself retries nothing.
deadline=$(($(now_ms) + 15000))
while :; do
    for pid in "${secure_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || fail "the CURVE broker or its echo worker exited early"
    done
    if ZMESH_CURVE_SECRET="$certs/alice.key_secret" ZMESH_BROKER_KEY="$certs/broker.key" \
        timeout 10 "$cli_bin" call echo '{"ready":1}' --timeout 2000 --broker "$secure" \
        >/dev/null 2>&1; then
        break
    fi
    [ "$(now_ms)" -lt "$deadline" ] || fail "no echo answer from the CURVE broker after 15 s"
    sleep 0.05
done

rc=0
out=$(ZMESH_BROKER="$secure" ZMESH_CURVE_SECRET="$certs/alice.key_secret" \
    ZMESH_BROKER_KEY="$certs/broker.key" "$python" "$tmp/call_curve.py") || rc=$?
[ "$rc" -eq 0 ] || fail "the CURVE call example exited with status $rc; stdout: '$out'"
[ "$out" = '{"x":[1,2,3]}' ] || fail "the CURVE call example printed '$out'"

#  The broker key as Z85 text, as ZMESH_BROKER_KEY also allows.
broker_z85=$("$python" -c 'import sys, zmq.auth; print(zmq.auth.load_certificate(sys.argv[1])[0].decode())' \
    "$certs/broker.key")
rc=0
out=$(ZMESH_BROKER="$secure" ZMESH_CURVE_SECRET="$certs/alice.key_secret" \
    ZMESH_BROKER_KEY="$broker_z85" "$python" "$tmp/call_curve.py") || rc=$?
[ "$rc" -eq 0 ] && [ "$out" = '{"x":[1,2,3]}' ] ||
    fail "the CURVE call example with a Z85 broker key: status $rc, printed '$out'"

#  A wrong broker key, and a key the broker does not know: no answer, exit 3
#  with the hint, in the example's own time.
for case in "wrong broker key:alice:$certs/stranger.key" "unknown key:stranger:$certs/broker.key"; do
    what=${case%%:*}
    rest=${case#*:}
    name=${rest%%:*}
    server=${rest#*:}
    rc=0
    started=$(now_ms)
    ZMESH_BROKER="$secure" ZMESH_CURVE_SECRET="$certs/$name.key_secret" ZMESH_BROKER_KEY="$server" \
        timeout 30 "$python" "$tmp/call_curve.py" >"$tmp/curve.out" 2>"$tmp/curve.err" || rc=$?
    [ "$rc" -eq 3 ] || fail "the CURVE example with a $what exited $rc, expected 3: $(cat "$tmp/curve.err")"
    [ $(($(now_ms) - started)) -lt 15000 ] || fail "the CURVE example with a $what took too long"
    grep -q "keys directory" "$tmp/curve.err" ||
        fail "the CURVE example with a $what gave no hint: $(cat "$tmp/curve.err")"
done

#  A key the broker knows that may not call echo: 403, exit 6.
rc=0
ZMESH_BROKER="$secure" ZMESH_CURVE_SECRET="$certs/bystander.key_secret" \
    ZMESH_BROKER_KEY="$certs/broker.key" "$python" "$tmp/call_curve.py" \
    >"$tmp/curve.out" 2>"$tmp/curve.err" || rc=$?
[ "$rc" -eq 6 ] || fail "the CURVE example with a key that may not call echo exited $rc, expected 6"
grep -q "^denied" "$tmp/curve.err" ||
    fail "the CURVE example did not print the denial: $(cat "$tmp/curve.err")"

echo "interop: ok"
