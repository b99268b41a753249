#  common.sh - sourced by the security tests: a private temporary directory
#  with a keys directory, keys made by `zmesh keygen`, a CURVE broker on
#  tcp://127.0.0.1 with ports it picks itself (--print-endpoint), the status
#  read with an admin key, waiting with deadlines, and a cleanup that stops
#  everything started and shows the logs on failure.
#  Before sourcing, set broker_bin, worker_bin and zmesh_bin.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-sec.XXXXXX")
certs="$tmp/certs"                  #  every key pair zmesh keygen made
keys="$tmp/keys"                    #  the broker's --curve-keys: public files only
mkdir -p "$certs" "$keys"
python=/usr/bin/python3
zpeer="$(dirname "${BASH_SOURCE[0]}")/zpeer.py"
pids=()
broker_pid=""
endpoint=""
push_endpoint=""
test_name=$(basename "$0" .sh)

# shellcheck source=../procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../procs.sh"

fail() {
    echo "$test_name: FAIL: $*" >&2
    exit 1
}

ok() {
    echo "$test_name: ok: $*"
}

#  Stops what the test started (TERM, then KILL after 10 s: ASan's leak
#  check takes time); on failure shows the status and the logs; removes the
#  directory.
cleanup() {
    local rc=$? pid status
    if [ "$rc" -ne 0 ] && [ -n "$endpoint" ] && [ -s "$certs/admin.key_secret" ]; then
        echo "---- zmesh.status at the failure" >&2
        status_json >&2 || true
    fi
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait_ended "$pid" 10000 || kill -KILL "$pid" 2>/dev/null || true
        status=0
        wait "$pid" 2>/dev/null || status=$?
        #  The broker must stop cleanly on SIGTERM after whatever the test did
        #  to it: an ASan or UBSan report makes its exit status non-zero.
        if [ "$pid" = "${broker_pid:-}" ] && [ "$status" -ne 0 ] && [ "$rc" -eq 0 ]; then
            echo "$test_name: FAIL: zmesh-broker exited $status on SIGTERM (see broker.log)" >&2
            rc=1
        fi
    done
    if [ "$rc" -ne 0 ]; then
        show_logs 40 "$tmp"/*.log
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ -x "$python" ] || fail "$python not found: install python3 python3-zmq python3-msgpack"
"$python" -c 'import zmq, msgpack, zmq.auth; assert zmq.has("curve")' 2>/dev/null ||
    fail "$python cannot import zmq (with CURVE) and msgpack: install python3-zmq python3-msgpack"

#  keygen NAME [FLAGS...]: a key pair in $certs made by `zmesh keygen`; its
#  public file is copied into the keys directory unless NAME is "broker" or
#  FLAGS hold --unlisted (a key the broker does not know).
keygen() {
    local name=$1 listed=1 flags=()
    shift
    for flag in "$@"; do
        if [ "$flag" = --unlisted ]; then listed=0; else flags+=("$flag"); fi
    done
    "$zmesh_bin" keygen "$name" --dir "$certs" "${flags[@]}" >"$tmp/keygen.out" 2>&1 ||
        fail "zmesh keygen $name ${flags[*]} failed: $(cat "$tmp/keygen.out")"
    [ -f "$certs/$name.key" ] && [ -f "$certs/$name.key_secret" ] ||
        fail "zmesh keygen $name wrote no $name.key and $name.key_secret in $certs"
    if [ "$name" != broker ] && [ "$listed" -eq 1 ]; then
        cp "$certs/$name.key" "$keys/"
    fi
}

#  The options that make a zmesh program a CURVE peer with key NAME.
curve_of() {
    echo "--curve-secret $certs/$1.key_secret --broker-key $certs/broker.key"
}

#  The same for zpeer.py.
zpeer_curve() {
    echo "--secret $certs/$1.key_secret --server-key $certs/broker.key"
}

#  start_broker [FLAGS...]: a CURVE broker on tcp://127.0.0.1 (both
#  endpoints on ports it picks), keyed with $certs/broker.key_secret and
#  $keys; sets $endpoint and $push_endpoint once it printed them, and waits
#  until it answers zmesh.status for the admin key.
start_broker() {
    : >"$tmp/broker.out"        #  there before the loop below reads it: the shell may not have
                                #  opened it for the broker yet
    "$broker_bin" --bind 'tcp://127.0.0.1:*' --push-bind 'tcp://127.0.0.1:*' \
        --curve-secret "$certs/broker.key_secret" --curve-keys "$keys" --print-endpoint "$@" \
        >"$tmp/broker.out" 2>"$tmp/broker.log" &
    broker_pid=$!
    pids+=("$broker_pid")
    local deadline=$(($(now_ms) + 15000))
    while [ "$(wc -l <"$tmp/broker.out")" -lt 2 ]; do
        running "$broker_pid" || fail "zmesh-broker exited early"
        (($(now_ms) < deadline)) || fail "zmesh-broker printed no endpoints within 15 s"
        sleep 0.05
    done
    endpoint=$(sed -n 1p "$tmp/broker.out")
    push_endpoint=$(sed -n 2p "$tmp/broker.out")
    until status_json >/dev/null 2>&1; do
        running "$broker_pid" || fail "zmesh-broker exited early"
        (($(now_ms) < deadline)) || fail "zmesh-broker did not answer zmesh.status within 15 s"
        sleep 0.05
    done
}

#  zmesh.status as JSON, asked with the admin key (zpeer.py, so that a
#  client-side bug cannot hide a broker-side one).
status_json() {
    # shellcheck disable=SC2046
    "$python" "$zpeer" status --endpoint "$endpoint" $(zpeer_curve admin)
}

#  Saves the status in $tmp/$1.json.
snapshot() {
    status_json >"$tmp/$1.json" || fail "zmesh.status failed"
}

#  get SNAPSHOT EXPR: a value of the snapshot, EXPR a Python expression over s.
get() {
    "$python" "$zpeer" get "$tmp/$1.json" "$2" || fail "no $2 in the status: $(cat "$tmp/$1.json")"
}

#  until_true MS WHAT COMMAND...: runs COMMAND until it succeeds, for at most MS.
until_true() {
    local ms=$1 what=$2
    shift 2
    local deadline=$(($(now_ms) + ms))
    until "$@"; do
        (($(now_ms) < deadline)) || fail "$what: not within $ms ms"
        sleep 0.05
    done
}

#  True once the broker lists a worker of service $1.
has_worker() {
    status_json >"$tmp/has_worker.json" 2>/dev/null &&
        [ "$(get has_worker "sum(1 for w in s['workers'] if w['service'] == '$1')")" -gt 0 ]
}

#  start_worker KEY SERVICE [FLAGS...]: a zmesh-worker with key KEY; waits
#  until the broker lists it.
start_worker() {
    local key=$1 service=$2
    shift 2
    # shellcheck disable=SC2046
    "$worker_bin" --service "$service" --broker "$endpoint" $(curve_of "$key") "$@" \
        >>"$tmp/worker-$key.log" 2>&1 &
    pids+=($!)
    until_true 10000 "a $service worker registered with key $key" has_worker "$service"
}

#  run COMMAND...: runs it with stdout in $out, stderr in $err, exit code in $rc.
run() {
    set +e
    "$@" >"$tmp/run.out" 2>"$tmp/run.err" </dev/null
    rc=$?
    set -e
    out=$(cat "$tmp/run.out")
    err=$(cat "$tmp/run.err")
}

#  expect_rc CODE WHAT: fails unless the last run exited CODE.
expect_rc() {
    [ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1; stdout: '$out'; stderr: '$err'"
}
