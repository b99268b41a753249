#!/usr/bin/env bash
#  test_cli.sh - end-to-end test of the zmesh programs. Starts a broker, an echo worker and two
#  --exec workers on ipc:// in a private temporary directory, then checks what `zmesh call` and
#  `zmesh status` print and their exit codes, the usage errors of both programs, and that a
#  worker stops cleanly on SIGTERM and takes its child with it; also the failure-handling
#  options (`zmesh call --retries`, `zmesh-worker --idempotent` as zmesh status shows it, broker
#  lists, "no broker reachable"). Everything it starts is killed and the directory removed on
#  exit, whatever happens.
#  Usage: test_cli.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2
    exit 2
fi
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
python=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-cli.XXXXXX")
pids=()
checks=0

now_ns() {
    date +%s%N
}

#  True while the process runs (a zombie has stopped running, though kill -0 still finds it).
running() {
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || true
    [ -n "$state" ] && [ "$state" != Z ]
}

#  Waits up to $2 seconds for process $1 to stop; false if it still runs.
wait_stopped() {
    local deadline=$(($(now_ns) + $2 * 1000000000))
    while running "$1"; do
        (($(now_ns) < deadline)) || return 1
        sleep 0.05
    done
}

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait_stopped "$pid" 3 || kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "cli: FAILED: $*" >&2
    local log
    for log in "$tmp"/*.log; do
        echo "--- last lines of $log" >&2
        tail -n 15 "$log" >&2 || true
    done
    exit 1
}

#  run [--stdin FILE] COMMAND...: runs COMMAND with stdout in $tmp/out, stderr in $tmp/err and
#  the exit code in $rc; $out and $err hold the texts for messages.
run() {
    local input=/dev/null
    if [ "$1" = --stdin ]; then
        input=$2
        shift 2
    fi
    set +e
    "$@" <"$input" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    set -e
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
}

#  expect WHAT CODE [STDOUT]: the last run exited with CODE and, if given, printed exactly
#  STDOUT plus one newline.
expect() {
    local what=$1 code=$2
    if [ "$rc" -ne "$code" ]; then
        fail "$what: exit code $rc, wanted $code (stdout: '$out', stderr: '$err')"
    fi
    if [ $# -ge 3 ] && [ -z "$3" ] && [ -s "$tmp/out" ]; then
        fail "$what: stdout '$out', wanted nothing (stderr: '$err')"
    fi
    if [ $# -ge 3 ] && [ -n "$3" ] && ! printf '%s\n' "$3" | cmp -s - "$tmp/out"; then
        fail "$what: stdout '$out', wanted '$3' (stderr: '$err')"
    fi
    checks=$((checks + 1))
}

#  expect_in WHAT FILE TEXT: FILE contains the fixed string TEXT.
expect_in() {
    if ! grep -qF -- "$3" "$2"; then
        fail "$1: $(basename "$2") lacks '$3': $(head -c 2000 "$2")"
    fi
    checks=$((checks + 1))
}

#  expect_count WHAT FILE TEXT N: exactly N lines of FILE contain TEXT.
expect_count() {
    local count
    count=$(grep -cF -- "$3" "$2" || true)
    if [ "$count" -ne "$4" ]; then
        fail "$1: $count lines of $(basename "$2") contain '$3', wanted $4"
    fi
    checks=$((checks + 1))
}

#  ---------------------------------------------------------------------------------------
#  Start the mesh.
endpoint="ipc://$tmp/b.ipc"
export ZMESH_BROKER=$endpoint
unset ZMESH_SERVICE ZMESH_THREADS ZMESH_IDEMPOTENT

cat >"$tmp/wrap.py" <<'EOF'
import json, sys
for line in iter(sys.stdin.readline, ""):
    print(json.dumps({"got": json.loads(line)}), flush=True)
EOF

"$broker_bin" --bind "$endpoint" --grace-ms 300 2>"$tmp/broker.log" &
pids+=($!)
"$worker_bin" --service echo --threads 2 2>"$tmp/echo.log" &
pids+=($!)
"$worker_bin" --service upper --exec "$python -u $tmp/wrap.py" 2>"$tmp/upper.log" &
upper_pid=$!
pids+=($!)
"$worker_bin" --service garbled --exec 'while read -r line; do echo "this is not json"; done' \
    2>"$tmp/garbled.log" &
pids+=($!)
"$worker_bin" --service idem --idempotent 2>"$tmp/idem.log" &
pids+=($!)
ZMESH_IDEMPOTENT=1 "$worker_bin" --service idem.env 2>"$tmp/idem.env.log" &
pids+=($!)

ready_check='
import json, sys
workers = {s["name"]: s["workers"] for s in json.load(sys.stdin)["services"]}
names = ("echo", "upper", "garbled", "idem", "idem.env")
sys.exit(0 if all(workers.get(n, 0) >= 1 for n in names) else 1)'
deadline=$(($(now_ns) + 10000000000))
until "$zmesh_bin" status --json --timeout 500 2>/dev/null | "$python" -c "$ready_check" 2>/dev/null
do
    (($(now_ns) < deadline)) || fail "services echo, upper, garbled, idem not ready within 10 s"
    sleep 0.05
done

#  ---------------------------------------------------------------------------------------
#  zmesh call with a JSON argument.
run "$zmesh_bin" call echo '{"x":[1,2,3]}'
expect "call echo with an object" 0 '{"x":[1,2,3]}'

run "$zmesh_bin" call echo -5
expect "call echo with a negative number (not an option)" 0 '-5'

run "$zmesh_bin" call upper '{"k":"v"}'
expect "call upper (the --exec filter) wraps the request" 0 '{"got":{"k":"v"}}'

run "$zmesh_bin" call nosuch '{}'
expect "call nosuch exits 4" 4
expect_in "call nosuch names the service" "$tmp/err" "nosuch"

run "$zmesh_bin" call echo '{"x":'
expect "call with bad JSON exits 2" 2 ''
expect_in "bad JSON says so on stderr" "$tmp/err" "zmesh: call echo:"

run "$zmesh_bin" call echo '1' --broker "ipc://$tmp/nothing.ipc" --timeout 300
expect "call to an unreachable broker exits 3" 3 ''
expect_in "the timeout names the endpoint" "$tmp/err" "nothing.ipc"
expect_in "an unreachable broker is told from a timeout" "$tmp/err" "no broker reachable"

run "$zmesh_bin" call garbled '{"a":1}'
expect "call of an --exec child that prints no JSON exits 1" 1 ''
expect_in "its error says the line is not JSON" "$tmp/err" "not JSON"
run "$zmesh_bin" call garbled '{"a":2}'
expect "a second call of that service gets a restarted child and fails again" 1 ''
expect_count "the garbled child was started twice" "$tmp/garbled.log" "child started" 2

#  ---------------------------------------------------------------------------------------
#  zmesh call reading stdin.
printf '{"n":1}\n\n"two"\n  \n[3,"x"]\n' >"$tmp/three.in"
run --stdin "$tmp/three.in" "$zmesh_bin" call echo
expect "stdin mode: 3 lines, blanks skipped, replies in order" 0 $'{"n":1}\n"two"\n[3,"x"]'

seq 1 200 >"$tmp/many.in"
run --stdin "$tmp/many.in" "$zmesh_bin" call echo
expect "stdin mode: 200 pipelined calls come back in order" 0 "$(seq 1 200)"

printf '"a"\n"b"\n"c"\n' >"$tmp/upper.in"
run --stdin "$tmp/upper.in" "$zmesh_bin" call upper
expect "stdin mode through --exec" 0 $'{"got":"a"}\n{"got":"b"}\n{"got":"c"}'
expect_count "the --exec child is kept across requests" "$tmp/upper.log" "child started" 1

printf '1\n{oops\n3\n' >"$tmp/bad.in"
run --stdin "$tmp/bad.in" "$zmesh_bin" call echo
expect "stdin mode stops at a bad line with exit 2, after printing the line before" 2 '1'
expect_in "the bad line is named" "$tmp/err" "line 2"

printf '1\n2\n' >"$tmp/two.in"
run --stdin "$tmp/two.in" "$zmesh_bin" call nosuch
expect "stdin mode stops at the first failed call" 4 ''
expect_count "only one error line" "$tmp/err" "zmesh: call nosuch" 1

#  ---------------------------------------------------------------------------------------
#  zmesh status.
run "$zmesh_bin" status
expect "status" 0
for text in SERVICES WORKERS COUNTERS echo upper garbled calls replies rejected_malformed \
    rejected_too_big rejected_bad_version rejected_busy rejected_no_service expired \
    worker_lost requeued duplicate_calls progress workers_expired workers_kicked \
    workers_unreachable dropped_unroutable dropped_late_reply; do
    expect_in "status table shows $text" "$tmp/out" "$text"
done

run "$zmesh_bin" status --json
expect "status --json" 0
json_check='
import json, sys
status = json.load(open(sys.argv[1]))
names = {s["name"] for s in status["services"]}
assert {"echo", "upper"} <= names, names
assert isinstance(status["counters"]["calls"], int)'
"$python" -c "$json_check" "$tmp/out" 2>"$tmp/py.err" ||
    fail "status --json does not parse or lacks echo and upper: $out $(cat "$tmp/py.err")"
checks=$((checks + 1))

#  ---------------------------------------------------------------------------------------
#  Failure handling: --retries, broker lists, --idempotent.
run "$zmesh_bin" call echo '{"r":1}' --retries 2
expect "call --retries 2" 0 '{"r":1}'
run "$zmesh_bin" call echo '"r"' --retries=0 --timeout 2000
expect "call --retries=0" 0 '"r"'
run "$zmesh_bin" --retries 100 call echo 7
expect "--retries 100 before the command" 0 '7'
printf '1\n2\n3\n' >"$tmp/retries.in"
run --stdin "$tmp/retries.in" "$zmesh_bin" call echo --retries 1
expect "stdin mode with --retries" 0 $'1\n2\n3'
for args in "call echo 1 --retries 101" "call echo 1 --retries -1" "call echo 1 --retries x" \
    "call echo 1 --retries" "call echo 1 --retries 1.5" "status --retries 1"; do
    read -ra words <<<"$args"
    run "$zmesh_bin" "${words[@]}"
    expect "zmesh $args is a usage error" 2 ''
    expect_in "zmesh $args prints usage on stderr" "$tmp/err" "usage: zmesh"
done
expect_in "status refuses --retries" "$tmp/err" "--retries is for call only"
run "$zmesh_bin" call echo 1 --retries 101
expect_in "a bad --retries names the range" "$tmp/err" "0..100"
run "$zmesh_bin" call --help
expect_in "call --help documents --retries" "$tmp/out" "--retries N"
expect_in "call --help says the request id is kept" "$tmp/out" "same request id"
expect_in "call --help allows a list of brokers" "$tmp/out" "comma-separated list of brokers"

run "$zmesh_bin" call echo '1' --broker "ipc://$tmp/nothing.ipc" --timeout 300 --retries 2
expect "call with retries to an unreachable broker exits 3" 3 ''
expect_in "it says no broker was reachable" "$tmp/err" "no broker reachable"
run "$zmesh_bin" call echo '"listed"' --broker "ipc://$tmp/nothing.ipc,$endpoint"
expect "call through a list whose first broker is down" 0 '"listed"'

run "$zmesh_bin" status --json
expect "status --json with idempotent workers" 0
idem_check='
import json, sys
workers = json.load(open(sys.argv[1]))["workers"]
by_service = {}
for worker in workers:
    by_service.setdefault(worker["service"], set()).add(worker["idempotent"])
assert by_service["idem"] == {True}, by_service
assert by_service["idem.env"] == {True}, by_service
assert by_service["echo"] == {False}, by_service'
"$python" -c "$idem_check" "$tmp/out" 2>"$tmp/py.err" ||
    fail "status --json lacks idempotent idem, idem.env or plain echo: $out $(cat "$tmp/py.err")"
checks=$((checks + 1))
expect_in "the idempotent worker says so when it starts" "$tmp/idem.log" "idempotent=yes"
run "$zmesh_bin" call idem '"again"'
expect "an idempotent service answers" 0 '"again"'

#  ---------------------------------------------------------------------------------------
#  Command lines: global options anywhere, help, version, usage errors.
run env -u ZMESH_BROKER "$zmesh_bin" --broker "$endpoint" --timeout 3000 call echo '"hi"'
expect "global options before the command" 0 '"hi"'
run env -u ZMESH_BROKER "$zmesh_bin" call echo '"hi"' --broker="$endpoint"
expect "global options after the command, --name=value form" 0 '"hi"'
run "$zmesh_bin" --version
expect "--version" 0 "zmesh 0.1.0"
for args in "--help" "call --help" "status --help"; do
    read -ra words <<<"$args"
    run "$zmesh_bin" "${words[@]}"
    expect "zmesh $args" 0
    expect_in "zmesh $args prints usage" "$tmp/out" "usage: zmesh"
done
for args in "" "call" "bogus" "--bogus status" "status extra" "call echo 1 --json" \
    "call echo 1 --timeout" "call echo 1 --timeout 0" "call echo 1 --timeout 12x"; do
    read -ra words <<<"$args"
    run "$zmesh_bin" "${words[@]}"
    expect "zmesh $args is a usage error" 2 ''
    expect_in "zmesh $args prints usage on stderr" "$tmp/err" "usage: zmesh"
done
run "$zmesh_bin" call "bad name" 1
expect "zmesh call with a service name holding a space is a usage error" 2 ''
for args in "" "--service" "--service echo --threads 0" "--service echo --threads 5x" \
    "--service echo --heartbeat-ms 50" "--service echo --builtin kv" "--service echo extra" \
    "--service zmesh.status" "--service echo --idempotent=1" "--service echo --idempotent yes"; do
    read -ra words <<<"$args"
    run "$worker_bin" "${words[@]}"
    expect "zmesh-worker $args is a usage error" 2
done
run env ZMESH_IDEMPOTENT=yes "$worker_bin" --service echo
expect "zmesh-worker with ZMESH_IDEMPOTENT=yes is a usage error" 2
expect_in "the error names ZMESH_IDEMPOTENT" "$tmp/err" "ZMESH_IDEMPOTENT wants 0 or 1"
run "$worker_bin" --help
expect "zmesh-worker --help" 0
expect_in "zmesh-worker --help prints usage" "$tmp/out" "usage: zmesh-worker"
expect_in "zmesh-worker --help documents --idempotent" "$tmp/out" "--idempotent"
expect_in "zmesh-worker --help says calls may run again" "$tmp/out" "run again on another worker"
expect_in "zmesh-worker --help allows a list of brokers" "$tmp/out" \
    "comma-separated list of brokers"

#  ---------------------------------------------------------------------------------------
#  A worker stops on SIGTERM with exit 0 and takes its --exec child with it.
child_pid=$(grep -o 'child started pid=[0-9]*' "$tmp/upper.log" | head -n 1 | cut -d= -f2)
[ -n "$child_pid" ] || fail "no child pid in upper.log"
kill -TERM "$upper_pid"
wait_stopped "$upper_pid" 5 || fail "the upper worker still runs 5 s after SIGTERM"
set +e
wait "$upper_pid"
rc=$?
set -e
out="" err=""
expect "the upper worker exits 0 on SIGTERM" 0
! running "$child_pid" || fail "the upper worker's child $child_pid outlived it"
checks=$((checks + 1))
expect_in "the upper worker logs its stop" "$tmp/upper.log" "stopped service=upper"

echo "cli: $checks checks passed"
