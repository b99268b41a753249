#!/usr/bin/env bash
#  test_insecure_bind.sh - without CURVE, an endpoint other hosts can reach
#  needs --insecure. zmesh-broker binding tcp://0.0.0.0 (ROUTER or push
#  endpoint) without CURVE refuses to start (exit 1, naming --insecure);
#  with --insecure, or ZMESH_INSECURE=1, it starts and logs a warning.
#  Loopback needs nothing and logs no warning; with CURVE, 0.0.0.0 needs no
#  --insecure. Each broker binds a port the system picks and is stopped at
#  once.
#  Usage: test_insecure_bind.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2; exit 2; }
broker_bin=$1 worker_bin=$2 zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

#  refused WHAT ARGS...: the broker must exit 1 in time, pointing at --insecure.
refused() {
    local what=$1
    shift
    run timeout 20 "$broker_bin" --print-endpoint "$@"
    [ "$rc" -ne 124 ] || fail "$what: the broker started (still running after 20 s)"
    expect_rc 1 "$what"
    echo "$err" | grep -q -- '--insecure' || fail "$what: the message does not name --insecure: $err"
    [ -z "$out" ] || fail "$what: the broker printed an endpoint: it had bound"
    ok "$what: refused: $(echo "$err" | tail -n 1)"
}

#  starts WHAT WARN ARGS...: the broker must bind and print its endpoints;
#  WARN 1: its log must hold a warning naming the insecure endpoint, 0: none.
starts() {
    local what=$1 warn=$2 pid deadline
    shift 2
    : >"$tmp/start.out"
    "$@" --print-endpoint >"$tmp/start.out" 2>"$tmp/start.log" &
    pid=$!
    pids+=("$pid")
    deadline=$(($(now_ms) + 15000))
    while [ "$(wc -l <"$tmp/start.out")" -lt 2 ]; do
        running "$pid" || fail "$what: the broker exited: $(cat "$tmp/start.log")"
        (($(now_ms) < deadline)) || fail "$what: no endpoints printed within 15 s"
        sleep 0.05
    done
    if [ "$warn" -eq 1 ]; then
        grep -iE '^W:|warn' "$tmp/start.log" | grep -qi 'insecure' ||
            fail "$what: no warning about the insecure endpoint: $(cat "$tmp/start.log")"
    elif grep -qi 'insecure' "$tmp/start.log"; then
        fail "$what: a warning about an insecure endpoint: $(cat "$tmp/start.log")"
    fi
    kill -TERM "$pid"
    wait_ended "$pid" 10000 || fail "$what: the broker did not stop on SIGTERM"
    ok "$what: started ($(head -n 1 "$tmp/start.out"))"
}

refused "ROUTER on tcp://0.0.0.0 without CURVE" --bind 'tcp://0.0.0.0:*' --push-bind none
refused "push endpoint on tcp://0.0.0.0 without CURVE" \
    --bind 'tcp://127.0.0.1:*' --push-bind 'tcp://0.0.0.0:*'
refused "ROUTER on tcp://*: without CURVE" --bind 'tcp://*:*' --push-bind none
starts "tcp://0.0.0.0 with --insecure" 1 \
    "$broker_bin" --bind 'tcp://0.0.0.0:*' --push-bind 'tcp://0.0.0.0:*' --insecure
starts "tcp://0.0.0.0 with ZMESH_INSECURE=1" 1 \
    env ZMESH_INSECURE=1 "$broker_bin" --bind 'tcp://0.0.0.0:*' --push-bind 'tcp://127.0.0.1:*'
starts "loopback without CURVE" 0 \
    "$broker_bin" --bind 'tcp://127.0.0.1:*' --push-bind 'tcp://127.0.0.1:*'
starts "ipc without CURVE" 0 \
    "$broker_bin" --bind "ipc://$tmp/b.ipc" --push-bind "ipc://$tmp/p.ipc"
keygen broker
starts "tcp://0.0.0.0 with CURVE" 0 \
    "$broker_bin" --bind 'tcp://0.0.0.0:*' --push-bind 'tcp://0.0.0.0:*' \
    --curve-secret "$certs/broker.key_secret" --curve-keys "$keys"

#  An empty CURVE flag (an unset variable expanded in a unit or compose
#  file) is an error, never a quiet start without CURVE.
run timeout 20 "$broker_bin" --print-endpoint --curve-secret "" --curve-keys "$keys"
expect_rc 2 "--curve-secret with an empty value"
case $err in *"--curve-secret needs a value"*) ;; *) fail "no reason for the empty flag: $err" ;; esac
ok "an empty --curve-secret is refused (exit 2)"
