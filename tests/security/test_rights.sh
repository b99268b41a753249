#!/usr/bin/env bash
#  test_rights.sh - every command is checked against the sender key's rights.
#  A zmesh-worker whose key may serve kv but registers echo is refused (exit
#  6, "denied"); a client that may call echo only gets echo and is denied kv
#  (exit 6); a key made without flags may do nothing (call, status, push,
#  pull all exit 6); zmesh status needs the admin key; zmesh push and pull
#  need push and pull rights for that pipeline; a plain PUSH socket whose key
#  may not push gets nothing into the pipeline (its messages never reach a
#  consumer) and the broker counts each as denied. Each denial is counted
#  once, under the key that was denied.
#  Usage: test_rights.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2; exit 2; }
broker_bin=$1 worker_bin=$2 zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

keygen broker
keygen admin --admin
keygen echo-worker --serve echo
keygen kv-worker --serve kv
keygen echo-only --call echo
keygen nobody                                   #  no flags: connect, nothing else
keygen producer --push jobs
keygen consumer --pull jobs
keygen lurker --call echo                       #  no push or pull rights
keygen pusher --push 'jo*'
start_broker
start_worker echo-worker echo
start_worker kv-worker kv
snapshot before

denied_like() {
    expect_rc 6 "$1"
    echo "$err" | grep -q 'denied' || fail "$1: exit 6 but no 'denied' in: $err"
}

#  A worker registering a service its key may not serve.
# shellcheck disable=SC2046
run timeout 20 "$worker_bin" --service echo --broker "$endpoint" $(curve_of kv-worker)
denied_like "zmesh-worker --service echo with a key that may serve kv only"
ok "a worker that may not serve echo is refused: $err"

#  Calls: echo-only may call echo, not kv.
# shellcheck disable=SC2046
run "$zmesh_bin" call echo '{"a":1}' --broker "$endpoint" $(curve_of echo-only)
expect_rc 0 "zmesh call echo with a key that may call echo"
[ "$out" = '{"a":1}' ] || fail "zmesh call echo printed '$out'"
# shellcheck disable=SC2046
run "$zmesh_bin" call kv '{"a":1}' --broker "$endpoint" $(curve_of echo-only)
denied_like "zmesh call kv with a key that may call echo only"
ok "a key that may call echo: echo works, kv denied ($err)"

#  The management service: admin only.
# shellcheck disable=SC2046
run "$zmesh_bin" status --broker "$endpoint" $(curve_of echo-only)
denied_like "zmesh status without the admin flag"
# shellcheck disable=SC2046
run "$zmesh_bin" status --json --broker "$endpoint" $(curve_of admin)
expect_rc 0 "zmesh status with the admin key"
ok "zmesh status: denied without admin, works with it"

#  A key made without flags.
# shellcheck disable=SC2046
run "$zmesh_bin" call echo '{}' --broker "$endpoint" $(curve_of nobody)
denied_like "zmesh call echo with a key without flags"
# shellcheck disable=SC2046
run "$zmesh_bin" status --broker "$endpoint" $(curve_of nobody)
denied_like "zmesh status with a key without flags"
echo '{"n":0}' >"$tmp/one.jsonl"
run_in() { set +e; "$@" <"$tmp/one.jsonl" >"$tmp/run.out" 2>"$tmp/run.err"; rc=$?; set -e;
    out=$(cat "$tmp/run.out"); err=$(cat "$tmp/run.err"); }
# shellcheck disable=SC2046
run_in timeout 20 "$zmesh_bin" push jobs --broker "$endpoint" $(curve_of nobody)
denied_like "zmesh push jobs with a key without flags"
# shellcheck disable=SC2046
run timeout 20 "$zmesh_bin" pull jobs --count 1 --timeout 5000 --broker "$endpoint" $(curve_of nobody)
denied_like "zmesh pull jobs with a key without flags"
ok "a key without flags: call, status, push and pull all denied"

#  Pipelines: push and pull rights.
echo '{"n":1}' >"$tmp/one.jsonl"
# shellcheck disable=SC2046
run_in timeout 20 "$zmesh_bin" push jobs --broker "$endpoint" $(curve_of producer)
expect_rc 0 "zmesh push jobs with a key that may push jobs"
# shellcheck disable=SC2046
run_in timeout 20 "$zmesh_bin" push other --broker "$endpoint" $(curve_of producer)
denied_like "zmesh push other with a key that may push jobs only"
# shellcheck disable=SC2046
run timeout 20 "$zmesh_bin" pull jobs --count 1 --timeout 5000 --broker "$endpoint" $(curve_of lurker)
denied_like "zmesh pull jobs with a key that may not pull"
# shellcheck disable=SC2046
run timeout 20 "$zmesh_bin" pull jobs --count 1 --timeout 5000 --broker "$endpoint" $(curve_of consumer)
expect_rc 0 "zmesh pull jobs with a key that may pull jobs"
[ "$out" = '{"n":1}' ] || fail "zmesh pull jobs printed '$out', expected the pushed {\"n\":1}"
ok "zmesh push/pull: allowed pipeline works, others denied"

#  A plain PUSH socket on the push endpoint: lurker may not push, so its 5
#  messages are dropped (nothing can answer it); pusher's 3 get in. Every
#  message is tagged with its sender, and the pipeline is drained: nothing
#  tagged lurker may ever come out.
snapshot mid
# shellcheck disable=SC2046
"$python" "$zpeer" push-plain --endpoint "$push_endpoint" --pipeline jobs --count 5 --tag lurker \
    $(zpeer_curve lurker) >"$tmp/push-lurker.log" 2>&1 || fail "push-plain as lurker failed"
denied_five() {
    status_json >"$tmp/plain.json" 2>/dev/null &&
        [ $(($(get plain "s['counters']['denied']") - $(get mid "s['counters']['denied']"))) -ge 5 ]
}
until_true 10000 "5 plain PUSHes of lurker counted as denied" denied_five
# shellcheck disable=SC2046
"$python" "$zpeer" push-plain --endpoint "$push_endpoint" --pipeline jobs --count 3 --tag pusher \
    $(zpeer_curve pusher) >"$tmp/push-pusher.log" 2>&1 || fail "push-plain as pusher failed"
# shellcheck disable=SC2046
run timeout 20 "$zmesh_bin" pull jobs --count 3 --timeout 5000 --broker "$endpoint" $(curve_of consumer)
expect_rc 0 "zmesh pull jobs --count 3 after the plain pushes"
pulled=$out
# shellcheck disable=SC2046
run timeout 20 "$zmesh_bin" pull jobs --timeout 1500 --broker "$endpoint" $(curve_of consumer)
expect_rc 3 "zmesh pull jobs until the pipeline is drained"
pulled="$pulled
$out"
echo "$pulled" | grep -q '"from":"lurker"' &&
    fail "a consumer got a message from a key without the push right: $pulled"
for n in 1 2 3; do
    echo "$pulled" | grep -qF "{\"n\":$n,\"from\":\"pusher\"}" ||
        fail "pusher's message $n never reached the consumer: $pulled"
done
ok "plain PUSH without the right: dropped and counted; with it: delivered"

#  Each denial once, under its key.
snapshot after
expect_denied() {
    local name=$1 want=$2 got
    got=$(($(get after "s['security']['key_stats']['$name']['denied']") -
        $(get before "s['security']['key_stats']['$name']['denied']")))
    [ "$got" -eq "$want" ] || fail "key $name: $got denials counted, expected $want"
}
expect_denied kv-worker 1           #  READY echo
expect_denied echo-only 2           #  CALL kv, CALL zmesh.status
expect_denied nobody 4              #  CALL, status, PUSH, CONSUME
expect_denied producer 1            #  PUSH other
expect_denied lurker 6              #  CONSUME, 5 plain PUSHes
for name in admin echo-worker consumer pusher; do
    expect_denied "$name" 0
done
total=$(($(get after "s['counters']['denied']") - $(get before "s['counters']['denied']")))
[ "$total" -eq 14 ] || fail "counters.denied rose by $total, expected 14"
[ "$(get after "len([w for w in s['workers'] if w['service'] == 'echo'])")" -eq 1 ] ||
    fail "the refused worker is listed as an echo worker"
ok "every denial counted once, under the key that was denied"
