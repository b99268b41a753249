#!/usr/bin/env bash
#  test_cli.sh - end-to-end test of the zmesh programs. Starts a broker, an echo worker and two
#  --exec workers on ipc:// in a private temporary directory, then checks what `zmesh call` and
#  `zmesh status` print and their exit codes, the usage errors of both programs, and that a
#  worker stops cleanly on SIGTERM and takes its child with it; also the failure-handling
#  options (`zmesh call --retries`, `zmesh-worker --idempotent` as zmesh status shows it, broker
#  lists, "no broker reachable"), and pipelines: `zmesh push` (JSON lines, --raw, the send
#  modes, bad input), `zmesh pull` (--count, --timeout, --meta, SIGTERM), their pipelines in
#  `zmesh status`, and `zmesh-worker --pipeline` stages (a command that dies, no --output);
#  `zmesh keygen` and the checks of the CURVE options; `zmesh bench` (call and push, its
#  results as text and JSON, its usage errors, no broker); `zmesh call --write` and
#  `--quorum` and the replicated services of `zmesh status`, against a fake broker. Everything it starts is killed and the
#  directory removed on exit, whatever happens.
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
unset ZMESH_SERVICE ZMESH_THREADS ZMESH_IDEMPOTENT ZMESH_REPLICAS ZMESH_QUORUM ZMESH_DATA_DIR

cat >"$tmp/wrap.py" <<'EOF'
import json, sys
for line in iter(sys.stdin.readline, ""):
    print(json.dumps({"got": json.loads(line)}), flush=True)
EOF

"$broker_bin" --bind "$endpoint" --push-bind "ipc://$tmp/push.ipc" --grace-ms 300 \
    2>"$tmp/broker.log" &
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
#  Pipelines: zmesh push, zmesh pull, zmesh status, zmesh-worker --pipeline.
seq 1 1000 >"$tmp/seq.in"
run --stdin "$tmp/seq.in" "$zmesh_bin" push p --timeout 10000
expect "seq 1 1000 | zmesh push p" 0 ''
run "$zmesh_bin" status
expect "status with a pipeline" 0
expect_in "the status table has a pipelines table" "$tmp/out" "PIPELINES"
expect_in "the pipelines table has its columns" "$tmp/out" "REDELIVERED"
grep -Eq '^  p +1000 ' "$tmp/out" || fail "status shows no row 'p' with 1000 queued: $out"
checks=$((checks + 1))
run "$zmesh_bin" status --json
expect "status --json with a pipeline" 0
pipeline_check='
import json, sys
p = json.load(open(sys.argv[1]))["pipelines"]["p"]
assert p["queued"] == 1000 and p["in_flight"] == 0 and p["consumers"] == 0, p
for key in ("delivered", "acked", "redelivered", "credit", "free_credit",
            "waiting_producers", "refused_full"):
    assert isinstance(p[key], int), key
assert p["drops"] == {"poison": 0, "push_malformed": 0}, p["drops"]'
"$python" -c "$pipeline_check" "$tmp/out" 2>"$tmp/py.err" ||
    fail "status --json lacks pipeline p with 1000 queued: $out $(cat "$tmp/py.err")"
checks=$((checks + 1))
run "$zmesh_bin" pull p --count 1000 --timeout 10000
expect "zmesh pull p --count 1000 prints 1 to 1000 in order" 0 "$(seq 1 1000)"
run "$zmesh_bin" pull p --count 1 --timeout 300
expect "pull --count with --timeout on an empty pipeline exits 3" 3 ''
expect_in "the timeout says so" "$tmp/err" "timed out"

printf '1\n\n"two"\n{bad\n4\n' >"$tmp/badline.in"
run --stdin "$tmp/badline.in" "$zmesh_bin" push pb
expect "push stops at a bad JSON line with exit 2" 2 ''
expect_in "the bad line is named by its number" "$tmp/err" "line 4"
run "$zmesh_bin" pull pb --count 2 --timeout 10000
expect "the lines before the bad one were pushed" 0 $'1\n"two"'
run "$zmesh_bin" pull pb --count 1 --timeout 300
expect "the line after the bad one was not" 3 ''

"$python" -c '
import msgpack, sys
out = sys.stdout.buffer
for value in ({"a": [1, 2]}, b"\x00\xff", "s", list(range(20))):
    out.write(msgpack.packb(value, use_bin_type=True))' >"$tmp/raw.in"
run --stdin "$tmp/raw.in" "$zmesh_bin" push pr --raw
expect "push --raw of four objects" 0 ''
run "$zmesh_bin" pull pr --count 4 --timeout 10000
expect "pull prints them, bin as \$bin" 0 \
    $'{"a":[1,2]}\n{"$bin":"AP8="}\n"s"\n'"$(seq -s, 0 19 | sed 's/.*/[&]/')"
printf '\x01\x92\x02' >"$tmp/cut.in"
run --stdin "$tmp/cut.in" "$zmesh_bin" push pr --raw
expect "push --raw with a cut-off last object exits 2" 2 ''
expect_in "it says which object and where" "$tmp/err" "object 2 at byte 1: cut off"
printf '\x07\xc1' >"$tmp/notpack.in"
run --stdin "$tmp/notpack.in" "$zmesh_bin" push pr --raw
expect "push --raw of bytes that are not MessagePack exits 2" 2 ''
expect_in "it says so" "$tmp/err" "not MessagePack"
run "$zmesh_bin" pull pr --count 2 --timeout 10000
expect "the whole objects before them were pushed" 0 $'1\n7'

"$zmesh_bin" pull pm --count 3 --timeout 10000 >"$tmp/pm.out" 2>"$tmp/pm.err" &
puller=$!
printf '"a"\n"b"\n"c"\n' >"$tmp/abc.in"
run --stdin "$tmp/abc.in" "$zmesh_bin" push pm --mode processed --timeout 10000
expect "push --mode processed, a consumer running" 0 ''
set +e
wait "$puller"
rc=$?
set -e
out=$(cat "$tmp/pm.out") err=$(cat "$tmp/pm.err")
cp "$tmp/pm.out" "$tmp/out"
expect "the consumer got the three processed messages" 0 $'"a"\n"b"\n"c"'
run --stdin "$tmp/abc.in" "$zmesh_bin" push pm --mode accepted --window 1
expect "push --mode accepted" 0 ''
run "$zmesh_bin" pull pm --count 1 --meta --timeout 10000
expect "pull --meta" 0
expect_in "pull --meta shows a first delivery" "$tmp/out" \
    '"attempt":1,"redelivered":false,"body":"a"}'
run "$zmesh_bin" pull pm --count 2 --timeout 10000
expect "the messages after it" 0 $'"b"\n"c"'

#  A stage whose command dies on one message (once): that message is not acknowledged, goes
#  back to the pipeline and comes out once the restarted command handles it.
cat >"$tmp/stage.py" <<'EOF'
import json, os, sys
for line in iter(sys.stdin.readline, ""):
    value = json.loads(line)
    if value == {"die": True} and not os.path.exists(sys.argv[1]):
        open(sys.argv[1], "w").close()
        sys.exit(3)
    print(json.dumps({"got": value}), flush=True)
EOF
"$worker_bin" --pipeline sin --output sout --exec "$python -u $tmp/stage.py $tmp/died" \
    2>"$tmp/stage.log" &
pids+=($!)
printf '1\n{"die":true}\n3\n' >"$tmp/stage.in"
run --stdin "$tmp/stage.in" "$zmesh_bin" push sin
expect "push into a stage's input" 0 ''
run "$zmesh_bin" pull sout --count 3 --timeout 15000
expect "the stage's output" 0
sort "$tmp/out" >"$tmp/sorted.out"
printf '%s\n' '{"got":1}' '{"got":3}' '{"got":{"die":true}}' | sort | cmp -s - "$tmp/sorted.out" ||
    fail "stage output: '$out', wanted the three messages wrapped"
checks=$((checks + 1))
expect_in "the stage logs the message it could not handle" "$tmp/stage.log" \
    "goes back to the pipeline"
expect_count "the stage's command was restarted" "$tmp/stage.log" "child started" 2

#  A stage without --output acknowledges what its command answered; SIGTERM stops it (exit 0).
"$worker_bin" --pipeline sink --exec cat 2>"$tmp/sink.log" &
sink_pid=$!
pids+=($sink_pid)
run --stdin "$tmp/abc.in" "$zmesh_bin" push sink --mode processed --timeout 10000
expect "push --mode processed into a stage without --output" 0 ''
kill -TERM "$sink_pid"
wait_stopped "$sink_pid" 5 || fail "the sink stage still runs 5 s after SIGTERM"
set +e
wait "$sink_pid"
rc=$?
set -e
out="" err=""
expect "the sink stage exits 0 on SIGTERM" 0
expect_in "it logs its stop" "$tmp/sink.log" "stopped pipeline=sink"

#  zmesh pull leaves cleanly on SIGTERM: the broker counts no consumer at once (DISCONNECT).
consumers_of() {
    "$zmesh_bin" status --json --timeout 2000 2>/dev/null | "$python" -c '
import json, sys
print(json.load(sys.stdin)["pipelines"].get(sys.argv[1], {}).get("consumers", 0))' "$1"
}
"$zmesh_bin" pull idle >/dev/null 2>"$tmp/idle.err" &
idle_pid=$!
pids+=($idle_pid)
deadline=$(($(now_ns) + 10000000000))
until [ "$(consumers_of idle)" = 1 ]; do
    (($(now_ns) < deadline)) || fail "zmesh pull idle did not register within 10 s"
    sleep 0.05
done
kill -TERM "$idle_pid"
wait_stopped "$idle_pid" 5 || fail "zmesh pull still runs 5 s after SIGTERM"
set +e
wait "$idle_pid"
rc=$?
set -e
out="" err=$(cat "$tmp/idle.err")
expect "zmesh pull exits 0 on SIGTERM" 0
deadline=$(($(now_ns) + 2000000000))
until [ "$(consumers_of idle)" = 0 ]; do
    (($(now_ns) < deadline)) || fail "the broker still counts the stopped consumer after 2 s"
    sleep 0.05
done
checks=$((checks + 1))

#  ---------------------------------------------------------------------------------------
#  zmesh bench: calls through the echo worker, pushes into a pipeline, its usage errors.
#  bench_ok text|json COUNT yes|no: the results in $tmp/out count COUNT with a rate above 0, and
#  have latency figures in order (yes) or say there are none (no).
bench_check='
import json, re, sys
path, form, count, latency = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "yes"
text = open(path).read()
if form == "json":
    r = json.loads(text)
    assert text.count("\n") == 1 and r["count"] == count and r["rate"] > 0, r
    figures = r["latency_us"]
    assert (figures is None) != latency, r
    if latency:
        assert figures["min"] <= figures["p50"] <= figures["p90"] <= figures["p99"] \
            <= figures["max"], figures
else:
    assert re.search(r": %d (calls|messages) of " % count, text), text
    rate = re.search(r"^  throughput  (\d+) (calls|msg)/s$", text, re.M)
    assert rate and int(rate.group(1)) > 0, text
    m = re.search(r"^  latency us  min (\d+)  p50 (\d+)  p90 (\d+)  p99 (\d+)  max (\d+)  "
                  r"mean (\d+)$", text, re.M)
    assert bool(m) == latency, text
    if m:
        v = [int(x) for x in m.groups()]
        assert v[0] <= v[1] <= v[2] <= v[3] <= v[4] and v[0] <= v[5] <= v[4], v'
bench_ok() {
    "$python" -c "$bench_check" "$tmp/out" "$@" 2>"$tmp/py.err" ||
        fail "bench results ($*): $out $(cat "$tmp/py.err")"
    checks=$((checks + 1))
}
run "$zmesh_bin" bench call echo --count 200
expect "bench call echo --count 200" 0
bench_ok text 200 yes
expect_count "no progress lines without a terminal or --progress" "$tmp/err" "calls/s" 0
run "$zmesh_bin" bench call echo --count 200 --inflight 1 --size 4k --json
expect "bench call --json --inflight 1 --size 4k" 0
bench_ok json 200 yes
expect_in "--json names the size" "$tmp/out" '"size":4096,"inflight":1,'
run "$zmesh_bin" bench call echo --duration 2 --inflight 4 --progress
expect "bench call --duration 2 --progress" 0
expect_in "--progress prints a line per second on stderr" "$tmp/err" "zmesh: bench call echo: 1 s, "

run "$zmesh_bin" bench push pbench --count 500
expect "bench push --count 500 (queued)" 0
bench_ok text 500 no
expect_in "it says why there is no latency" "$tmp/out" "queued mode has no per-message receipt"
run "$zmesh_bin" pull pbench --count 500 --timeout 10000
expect "pull gets the 500 pushed" 0
expect_count "all 500" "$tmp/out" '"xxxxxxxxxx' 500
run "$zmesh_bin" pull pbench --count 1 --timeout 300
expect "and no more" 3 ''
run "$zmesh_bin" bench push pbench --count 100 --mode accepted --size 300 --json
expect "bench push --mode accepted --json" 0
bench_ok json 100 yes
expect_in "accepted mode defaults to a window of 1" "$tmp/out" '"mode":"accepted","window":1,'
run "$zmesh_bin" pull pbench --count 100 --timeout 10000
expect "pull gets the 100 accepted" 0
"$python" -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 100 and all(json.loads(l) == "x" * 297 for l in lines), lines[:1]' \
    "$tmp/out" 2>"$tmp/py.err" || fail "--size 300 is not a 297-byte string: $(cat "$tmp/py.err")"
checks=$((checks + 1))
run "$zmesh_bin" bench push pbench --count 50 --mode accepted --window 10
expect "bench push --window 10" 0
bench_ok text 50 no
run "$zmesh_bin" pull pbench --count 50 --timeout 10000
expect "pull gets the 50" 0

for args in "bench" "bench call" "bench pull p" "bench call echo extra" \
    "bench call echo --count 0" "bench call echo --count 5 --duration 1" \
    "bench call echo --duration 0" "bench call echo --duration 1.5" \
    "bench call echo --inflight 0" "bench call echo --inflight 10001" \
    "bench call echo --size 0" "bench call echo --size 257m" "bench call echo --size 1x" \
    "bench call echo --mode queued" "bench call echo --window 5" "bench push p --inflight 2" \
    "bench push p --mode bogus" "bench push p --raw" "bench call echo --retries 1" \
    "call echo 1 --progress" "pull p --size 4" "status --duration 1"; do
    read -ra words <<<"$args"
    run "$zmesh_bin" "${words[@]}"
    expect "zmesh $args is a usage error" 2 ''
    expect_in "zmesh $args prints usage on stderr" "$tmp/err" "usage: zmesh"
done
run "$zmesh_bin" bench push zmesh.p --count 1
expect "bench push into a reserved name is a usage error" 2 ''
run "$zmesh_bin" bench call "bad name" --count 1
expect "bench call of a bad service name is a usage error" 2 ''
run "$zmesh_bin" bench --help
expect "zmesh bench --help" 0
expect_in "bench --help prints its usage" "$tmp/out" "usage: zmesh bench call SERVICE"
expect_in "bench --help documents --inflight" "$tmp/out" "--inflight K"
run "$zmesh_bin" bench call nosuch --count 10
expect "bench call of a service nobody offers exits 4" 4 ''
started=$(now_ns)
run "$zmesh_bin" bench call echo --count 10 --broker "ipc://$tmp/nobench.ipc" --timeout 300
expect "bench call with no broker exits 3" 3 ''
expect_in "it says no broker was reachable" "$tmp/err" "zmesh: bench call echo: no broker"
(($(now_ns) - started < 3000000000)) || fail "bench call with no broker took over 3 s"
checks=$((checks + 1))
run "$zmesh_bin" bench push pbench --count 10 --broker "ipc://$tmp/nobench.ipc" --timeout 300
expect "bench push with no broker exits 3" 3 ''

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
#  Replicated services: `zmesh call --write` and `--quorum` put CALL flags 4 and 8 on the wire,
#  and `zmesh status` prints a table per replicated service. A fake broker (pyzmq) answers each
#  call with the flags, request id and request it got, and zmesh.status with a canned body.
cat >"$tmp/fake_broker.py" <<'EOF'
import sys
import msgpack, zmq
sock = zmq.Context().socket(zmq.ROUTER)
sock.bind(sys.argv[1])
open(sys.argv[2], "w").close()
member = lambda id, state, seq, lag: {"id": id, "state": state, "seq": seq, "lag": lag}
status = {"version": "fake", "uptime_ms": 1000, "services": [], "pipelines": {}, "workers": [],
          "counters": {"calls": 1}, "security": {"curve": False},
          "replicated": [
              {"service": "kv", "replicas": 3, "quorum": 2, "epoch": 1700000000000, "seq": 42,
               "committed": 41, "members": [member("3f2a", "current", 42, 0),
                                            member("77b0", "catching up", 30, 12),
                                            member("a1c4", "joined", 0, 42)]},
              {"service": "odd\x1b", "members": "not a list"}]}
while True:
    frames = sock.recv_multipart()
    header = msgpack.unpackb(frames[2], raw=False)
    if len(frames) != 4 or header[:2] != ["ZMP1", "CALL"]:
        continue
    request_id, service = header[2], header[3]
    flags = header[5] if len(header) > 5 else 0
    body = status if service == "zmesh.status" else {
        "flags": flags, "id": request_id, "request": msgpack.unpackb(frames[3], raw=False)}
    sock.send_multipart([frames[0], b"", msgpack.packb(["ZMP1", "REPLY", request_id, 200]),
                         msgpack.packb(body)])
EOF
fake="ipc://$tmp/fake.ipc"
"$python" "$tmp/fake_broker.py" "$fake" "$tmp/fake.ready" 2>"$tmp/fake.log" &
pids+=($!)
deadline=$(($(now_ns) + 10000000000))
until [ -e "$tmp/fake.ready" ]; do
    (($(now_ns) < deadline)) || fail "the fake broker did not start within 10 s"
    sleep 0.05
done
#  Each reply of the fake broker as "FLAGS REQUEST ID" in $tmp/flags. Flags: 1 (the client
#  reads PROGRESS) plus 4 for a write, 8 for a quorum read.
flags_of() {
    "$python" -c 'import json, sys
for line in open(sys.argv[1]):
    reply = json.loads(line)
    print(reply["flags"], json.dumps(reply["request"]), reply["id"])' "$tmp/out" >"$tmp/flags" ||
        fail "replies of the fake broker do not parse: $out"
}
run "$zmesh_bin" call kv '{"op":"put"}' --write --broker "$fake"
expect "call --write" 0
flags_of
expect_in "call --write sends flag 4" "$tmp/flags" '5 {"op": "put"} '
first_write_id=$(awk '{print $NF}' "$tmp/flags")
run "$zmesh_bin" call kv '"k"' --quorum --broker "$fake"
expect "call --quorum" 0
flags_of
expect_in "call --quorum sends flag 8" "$tmp/flags" '9 "k" '
run "$zmesh_bin" call kv '"k"' --broker "$fake"
expect "a plain call to the fake broker" 0
flags_of
expect_in "a plain call sends neither" "$tmp/flags" '1 "k" '
printf '1\n2\n3\n' >"$tmp/writes.in"
run --stdin "$tmp/writes.in" "$zmesh_bin" call kv --write --retries 1 --broker "$fake"
expect "stdin mode with --write" 0
flags_of
expect_count "every line of stdin mode is a write" "$tmp/flags" "5 " 3
second_write_id=$(head -n 1 "$tmp/flags" | awk '{print $NF}')
#  Two runs of the CLI are two clients: their write ids start at different random values.
[ -n "$first_write_id" ] && [ "$first_write_id" != "$second_write_id" ] &&
    [ "$first_write_id" != 1 ] && [ "$second_write_id" != 1 ] ||
    fail "write ids of two clients: '$first_write_id' and '$second_write_id'"
checks=$((checks + 1))

run "$zmesh_bin" status --broker "$fake"
expect "status with replicated services" 0
expect_in "a title line per replicated service" "$tmp/out" \
    "REPLICATED kv: replicas 3, quorum 2, epoch 1700000000000, seq 42, committed 41"
grep -Eq '^  ID +STATE +SEQ +LAG$' "$tmp/out" || fail "no member header row: $out"
grep -Eq '^  3f2a +current +42 +0$' "$tmp/out" || fail "no row of a current replica: $out"
grep -Eq '^  77b0 +catching up +30 +12$' "$tmp/out" || fail "no row of a replica catching up: $out"
grep -Eq '^  a1c4 +joined +0 +42$' "$tmp/out" || fail "no row of a joined replica: $out"
checks=$((checks + 4))
expect_in "odd fields print as -, control bytes as ?" "$tmp/out" \
    "REPLICATED odd?: replicas -, quorum -, epoch -, seq -, committed -"
expect_count "a replica set without members" "$tmp/out" "(none)" 4  # services, pipelines, workers, odd
run "$zmesh_bin" status
expect "status of the real broker" 0
expect_count "no replicated table without replicated services" "$tmp/out" "REPLICATED" 0
#  Other services ignore the flags: a write to echo is a plain call.
run "$zmesh_bin" call echo '"w"' --write
expect "a write to a service that is not replicated" 0 '"w"'
run "$zmesh_bin" call echo '"q"' --quorum
expect "a quorum read of a service that is not replicated" 0 '"q"'
for args in "call kv 1 --write --quorum" "call kv 1 --stream --write" \
    "call kv 1 --stream --quorum" "status --write" "push p --quorum" "call kv 1 --write=1"; do
    read -ra words <<<"$args"
    run "$zmesh_bin" "${words[@]}"
    expect "zmesh $args is a usage error" 2 ''
    expect_in "zmesh $args prints usage on stderr" "$tmp/err" "usage: zmesh"
done
run "$zmesh_bin" call kv 1 --quorum --write
expect_in "--write with --quorum says why" "$tmp/err" "not both"
run "$zmesh_bin" call kv 1 --write --stream
expect_in "--write with --stream says why" "$tmp/err" "not for a streamed call"
run "$zmesh_bin" call --help
expect_in "call --help documents --write" "$tmp/out" "--write        a write to a replicated"
expect_in "call --help documents --quorum" "$tmp/out" "--quorum       a quorum read"
run "$zmesh_bin" status --help
expect_in "status --help mentions replicated services" "$tmp/out" "replicated services"

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
for args in "push" "pull" "push zmesh.status" "pull a b" "push p --mode bogus" \
    "push p --window 0" "pull p --count 0" "pull p --credit 1001" "pull p --raw" \
    "push p --meta" "push p --count 1" "status --raw" "call echo 1 --mode queued"; do
    read -ra words <<<"$args"
    run "$zmesh_bin" "${words[@]}"
    expect "zmesh $args is a usage error" 2 ''
done
expect_in "an option of another command says whose it is" "$tmp/err" \
    "--mode is for push and bench only"
for args in "get" "get a b" "call echo --stream" "call echo 1 --window 3" \
    "call echo 1 --stream --retries 1" "call echo 1 --stream --window 1025" "get a --window 0" \
    "get a --output" "status --output x" "push p --stream"; do
    read -ra words <<<"$args"
    run "$zmesh_bin" "${words[@]}"
    expect "zmesh $args is a usage error" 2 ''
done
run "$zmesh_bin" get --help
expect "zmesh get --help" 0
expect_in "get --help prints its usage" "$tmp/out" "usage: zmesh get PATH [--output FILE]"
run "$worker_bin" --builtin files
expect "zmesh-worker --builtin files without --root is a usage error" 2 ''
expect_in "it asks for --root" "$tmp/err" "--builtin files needs --root DIR"
run "$worker_bin" --service echo --root /tmp
expect "zmesh-worker --root without --builtin files is a usage error" 2 ''
run "$zmesh_bin" push "bad name"
expect "zmesh push with a pipeline name holding a space is a usage error" 2 ''
for args in "push --help" "pull --help"; do
    read -ra words <<<"$args"
    run "$zmesh_bin" "${words[@]}"
    expect "zmesh $args" 0
    expect_in "zmesh $args prints usage" "$tmp/out" "usage: zmesh ${words[0]} PIPELINE"
done
for args in "" "--service" "--service echo --threads 0" "--service echo --threads 5x" \
    "--service echo --heartbeat-ms 50" "--service echo --builtin kv" "--service echo extra" \
    "--service zmesh.status" "--service echo --idempotent=1" "--service echo --idempotent yes"; do
    read -ra words <<<"$args"
    run "$worker_bin" "${words[@]}"
    expect "zmesh-worker $args is a usage error" 2
done
for args in "--service echo --pipeline p" "--service echo --output o" "--pipeline p --credit 0" \
    "--pipeline zmesh.p" "--pipeline p --idempotent" "--service echo --credit 5" \
    "--pipeline p --output zmesh.o"; do
    read -ra words <<<"$args"
    run "$worker_bin" "${words[@]}"
    expect "zmesh-worker $args is a usage error" 2
done
expect_in "--service and --pipeline exclude each other" "$tmp/err" "--pipeline"
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
expect_in "zmesh-worker --help documents --pipeline" "$tmp/out" "--pipeline IN"
expect_in "zmesh-worker --help documents --output" "$tmp/out" "--output OUT"

#  zmesh-worker --builtin kv: a replica of a replicated service. Its options and their checks;
#  a data directory that cannot be used, or that another replica holds, fails at start.
for args in "--builtin kv" "--builtin kv --replicas 0" "--builtin kv --replicas 17" \
    "--builtin kv --replicas x" "--builtin kv --replicas 3 --quorum 4" \
    "--builtin kv --replicas 3 --quorum -1" "--service echo --replicas 3" \
    "--service echo --quorum 1" "--service echo --data-dir d" \
    "--builtin kv --replicas 2 --threads 2" "--builtin kv --replicas 2 --idempotent" \
    "--builtin kv --replicas 2 --pipeline p" "--builtin kv --replicas 2 --data-dir=" \
    "--builtin kv --replicas 2 --exec cat" "--builtin kv --replicas 2 --service zmesh.kv"; do
    read -ra words <<<"$args"
    run "$worker_bin" "${words[@]}"
    expect "zmesh-worker $args is a usage error" 2 ''
done
run "$worker_bin" --builtin kv
expect_in "--builtin kv asks for --replicas" "$tmp/err" "--builtin kv needs --replicas N"
run "$worker_bin" --service echo --replicas 3
expect_in "--replicas says it is for kv" "$tmp/err" "--replicas is for --builtin kv"
run "$worker_bin" --builtin kv --replicas 3 --quorum 4
expect_in "--quorum above --replicas is named" "$tmp/err" "at most --replicas"
run env ZMESH_REPLICAS=x "$worker_bin" --builtin kv
expect "zmesh-worker --builtin kv with ZMESH_REPLICAS=x is a usage error" 2
expect_in "the error names ZMESH_REPLICAS" "$tmp/err" "ZMESH_REPLICAS wants 1..16"
run env ZMESH_REPLICAS=2 ZMESH_QUORUM=3 "$worker_bin" --builtin kv
expect "zmesh-worker with ZMESH_QUORUM above ZMESH_REPLICAS is a usage error" 2
run "$worker_bin" --help
expect_in "zmesh-worker --help documents --builtin kv" "$tmp/out" "--builtin kv --replicas N"
expect_in "zmesh-worker --help documents --data-dir" "$tmp/out" "--data-dir DIR"
expect_in "zmesh-worker --help documents --quorum" "$tmp/out" "--quorum W"
expect_in "zmesh-worker --help names the flag for writes" "$tmp/out" "--write"
touch "$tmp/not-a-dir"
run "$worker_bin" --builtin kv --replicas 1 --broker "ipc://$tmp/nobody.ipc" \
    --data-dir "$tmp/not-a-dir"
expect "zmesh-worker --builtin kv with a file as --data-dir fails" 1 ''
expect_in "it says why" "$tmp/err" "Not a directory"
"$worker_bin" --builtin kv --replicas 1 --broker "ipc://$tmp/nobody.ipc" \
    --data-dir "$tmp/kv-data" 2>"$tmp/kv1.log" &
kv_pid=$!
pids+=($kv_pid)
deadline=$(($(now_ns) + 10000000000))
until grep -q "replica: JOIN" "$tmp/kv1.log"; do
    (($(now_ns) < deadline)) || fail "zmesh-worker --builtin kv did not try to join within 10 s"
    sleep 0.05
done
checks=$((checks + 1))
expect_in "a replica logs its data directory" "$tmp/kv1.log" "replica: opened service=kv"
run env ZMESH_DATA_DIR="$tmp/kv-data" "$worker_bin" --builtin kv --replicas 1 \
    --broker "ipc://$tmp/nobody.ipc"
expect "a second replica on a data directory in use fails" 1 ''
expect_in "it says the directory is in use" "$tmp/err" "in use by another replica"
kill -TERM "$kv_pid"
wait_stopped "$kv_pid" 5 || fail "zmesh-worker --builtin kv still runs 5 s after SIGTERM"
set +e
wait "$kv_pid"
rc=$?
set -e
out="" err=$(cat "$tmp/kv1.log")
expect "zmesh-worker --builtin kv exits 0 on SIGTERM" 0
expect_in "it logs how it stopped" "$tmp/kv1.log" "stopped service=kv by=SIGTERM"

#  ---------------------------------------------------------------------------------------
#  Keys: zmesh keygen, and the --curve-secret/--broker-key checks of both programs (the broker
#  is not involved: a CURVE broker's answers are tested in tests/security).
keys=$tmp/keys
mode_of() {
    stat -c %a "$1"
}
run "$zmesh_bin" keygen alice --dir "$keys" --serve echo --call 'echo,kv' --push jobs \
    --pull 'jobs.*' --admin
expect "keygen with every right" 0
[ -f "$keys/alice.key" ] && [ -f "$keys/alice.key_secret" ] || fail "keygen made no key files"
checks=$((checks + 1))
[ "$(mode_of "$keys/alice.key_secret")" = 600 ] ||
    fail "the secret file has mode $(mode_of "$keys/alice.key_secret"), wanted 600"
checks=$((checks + 1))
[ "$(mode_of "$keys")" = 700 ] || fail "the made --dir has mode $(mode_of "$keys"), wanted 700"
checks=$((checks + 1))
alice_key=$(sed -n 's/^key: //p' "$tmp/out")
[ ${#alice_key} -eq 40 ] || fail "keygen printed key '$alice_key', wanted 40 characters of Z85"
checks=$((checks + 1))
expect_in "keygen prints the public path" "$tmp/out" "public: $keys/alice.key"
expect_in "keygen prints the secret path" "$tmp/out" "secret: $keys/alice.key_secret"
expect_in "the public file holds the printed key" "$keys/alice.key" "public-key = \"$alice_key\""
for meta in 'name = "alice"' 'serve = "echo"' 'call = "echo,kv"' 'push = "jobs"' \
    'pull = "jobs.*"' 'admin = "yes"'; do
    expect_in "the public file's metadata has $meta" "$keys/alice.key" "$meta"
    expect_in "the secret file's metadata has $meta" "$keys/alice.key_secret" "$meta"
done
expect_in "the secret file holds the secret key" "$keys/alice.key_secret" "secret-key = "
expect_count "the public file holds no secret key" "$keys/alice.key" "secret-key" 0
cp "$keys/alice.key_secret" "$tmp/alice.before"
run "$zmesh_bin" keygen alice --dir "$keys"
expect "keygen refuses to replace a key" 1 ''
expect_in "the refusal names --force" "$tmp/err" "--force"
cmp -s "$keys/alice.key_secret" "$tmp/alice.before" || fail "a refused keygen changed the key"
checks=$((checks + 1))
chmod 644 "$keys/alice.key_secret"
run "$zmesh_bin" keygen alice --dir "$keys" --force
expect "keygen --force replaces a key" 0
! cmp -s "$keys/alice.key_secret" "$tmp/alice.before" || fail "keygen --force kept the old key"
checks=$((checks + 1))
[ "$(mode_of "$keys/alice.key_secret")" = 600 ] ||
    fail "a replaced secret file has mode $(mode_of "$keys/alice.key_secret"), wanted 600"
checks=$((checks + 1))
expect_count "a key made without rights has none" "$keys/alice.key" "call =" 0
expect_in "a key made without rights still has its name" "$keys/alice.key" 'name = "alice"'
(umask 000 && "$zmesh_bin" keygen open --dir "$keys" >/dev/null) || fail "keygen under umask 000"
[ "$(mode_of "$keys/open.key_secret")" = 600 ] ||
    fail "under umask 000 the secret file has mode $(mode_of "$keys/open.key_secret")"
checks=$((checks + 1))
"$zmesh_bin" keygen broker --dir "$keys" >/dev/null || fail "keygen broker"
broker_key=$(sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$keys/broker.key")
[ ${#broker_key} -eq 40 ] || fail "no public key in broker.key"
for name in "a/b" "" ".." ".hidden" "sp ace" "$(printf 'x%.0s' $(seq 65))"; do
    run "$zmesh_bin" keygen "$name" --dir "$keys"
    expect "keygen of the bad name '$name' is a usage error" 2 ''
done
expect_count "bad names made no files" <(ls -a "$keys") "hidden" 0
for args in "keygen" "keygen x --call a,,b" "keygen x --serve" "keygen x --push ," \
    "keygen x --curve-secret f" "keygen x --dir=" "call echo 1 --admin" "status --force" \
    "keygen x y"; do
    read -ra words <<<"$args"
    run "$zmesh_bin" "${words[@]}"
    expect "zmesh $args is a usage error" 2 ''
done
run "$zmesh_bin" keygen x --dir "$keys/alice.key"
expect "keygen into a --dir that is a file fails" 1 ''
run "$zmesh_bin" keygen --help
expect "zmesh keygen --help" 0
expect_in "keygen --help gives the usage" "$tmp/out" "usage: zmesh keygen NAME"
run "$zmesh_bin" --help
expect_in "zmesh --help documents --curve-secret" "$tmp/out" "--curve-secret FILE"
expect_in "zmesh --help documents exit code 6" "$tmp/out" "6 denied"

#  CURVE settings: both or neither, a private secret file, a key that is a key.
secret=$keys/alice.key_secret
nowhere="ipc://$tmp/nobroker.sock"
for command in "call echo 1" "status" "push p" "pull p"; do
    read -ra words <<<"$command"
    run "$zmesh_bin" "${words[@]}" --curve-secret "$secret"
    expect "zmesh $command with --curve-secret alone is a usage error" 2 ''
    expect_in "zmesh $command names the missing --broker-key" "$tmp/err" "needs --broker-key"
    run env ZMESH_BROKER_KEY="$broker_key" "$zmesh_bin" "${words[@]}"
    expect "zmesh $command with ZMESH_BROKER_KEY alone is a usage error" 2 ''
    expect_in "zmesh $command names the missing secret" "$tmp/err" "needs --curve-secret"
done
cp "$secret" "$tmp/open_secret"
chmod 644 "$tmp/open_secret"
run "$zmesh_bin" call echo 1 --curve-secret "$tmp/open_secret" --broker-key "$broker_key"
expect "a secret file of mode 0644 is refused" 2 ''
expect_in "the refusal says why" "$tmp/err" "has mode 0644: group or others may use it"
run env ZMESH_CURVE_SECRET="$tmp/open_secret" ZMESH_BROKER_KEY="$broker_key" "$zmesh_bin" status
expect "a secret file of mode 0644 from the environment is refused" 2 ''
run "$zmesh_bin" pull p --curve-secret "$keys/nothere_secret" --broker-key "$broker_key"
expect "a missing secret file is refused" 2 ''
expect_in "the refusal names the file" "$tmp/err" "nothere_secret"
for key in "not-a-key" "${broker_key:1}" "$keys/nothere.key"; do
    run "$zmesh_bin" push p --curve-secret "$secret" --broker-key "$key"
    expect "the broker key '$key' is a usage error" 2 ''
    expect_in "the error says what a key is" "$tmp/err" "neither a 40-character Z85 key"
done
#  Good settings go as far as the (missing) broker; the timeout hints at CURVE.
run "$zmesh_bin" call echo 1 --broker "$nowhere" --timeout 300 --curve-secret "$secret" \
    --broker-key "$broker_key"
expect "a CURVE call to no broker times out" 3 ''
expect_in "the timeout hints at the keys" "$tmp/err" "check --broker-key is its public key"
run env ZMESH_CURVE_SECRET="$secret" ZMESH_BROKER_KEY="$keys/broker.key" "$zmesh_bin" \
    pull p --broker "$nowhere" --timeout 300
expect "CURVE from the environment, the broker key as a file" 3 ''
expect_in "the pull timeout hints at the keys" "$tmp/err" "this key is in its keys directory"
run "$zmesh_bin" call echo 1 --broker "$nowhere" --timeout 300
expect_count "without CURVE the timeout has no hint" "$tmp/err" "CURVE" 0
for args in "--curve-secret $secret" "--pipeline p --broker-key $broker_key" \
    "--curve-secret $tmp/open_secret --broker-key $broker_key" \
    "--curve-secret $secret --broker-key not-a-key" "--curve-secret= --broker-key k"; do
    read -ra words <<<"$args"
    run "$worker_bin" --service echo "${words[@]}"
    expect "zmesh-worker $args is a usage error" 2
done
run env ZMESH_CURVE_SECRET="$secret" "$worker_bin" --service echo
expect "zmesh-worker with ZMESH_CURVE_SECRET alone is a usage error" 2
expect_in "zmesh-worker names the missing broker key" "$tmp/err" "needs --broker-key"
run "$worker_bin" --service echo --curve-secret "$tmp/open_secret" --broker-key "$broker_key"
expect_in "zmesh-worker says why it refuses the secret file" "$tmp/err" "has mode 0644"
run "$worker_bin" --help
expect_in "zmesh-worker --help documents --broker-key" "$tmp/out" "--broker-key KEY"
expect_in "zmesh-worker --help documents exit code 6" "$tmp/out" "6 denied"

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
