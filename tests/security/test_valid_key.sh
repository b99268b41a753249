#!/usr/bin/env bash
#  test_valid_key.sh - a valid key works, and the broker knows who sent what.
#  Keys made by `zmesh keygen`, a CURVE broker, a zmesh-worker serving echo.
#  Calls with `zmesh call` (key alice, flags; key carol, environment
#  variables and the broker key as Z85 text) and with a pyzmq DEALER (key
#  bob) all succeed; zmesh.status then counts each key's messages under its
#  own name (security.key_stats: name -> key, messages, denied), so the broker
#  took each message's User-Id as its sender. `zmesh status --json` shows the
#  same security section. A pipeline works as it does without CURVE: ten
#  times alice pushes a message and bob takes it with `zmesh pull --count 1`,
#  and the broker has every one acknowledged once, none delivered again.
#  Usage: test_valid_key.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2; exit 2; }
broker_bin=$1 worker_bin=$2 zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

keygen broker
keygen admin --admin
keygen alice --call echo --push jobs
keygen bob --call echo --pull jobs
keygen carol --call 'ec*'
keygen echo-worker --serve echo
start_broker
start_worker echo-worker echo

snapshot before
[ "$(get before "s['security']['curve']")" = true ] || fail "security.curve is not true"
[ "$(get before "s['security']['keys']")" -eq 5 ] || fail "security.keys is not 5"
for name in admin alice bob carol echo-worker; do
    want=$("$python" -c 'import sys, zmq.auth; print(zmq.auth.load_certificate(sys.argv[1])[0].decode())' \
        "$certs/$name.key")
    got=$(get before "s['security']['key_stats']['$name']['key']")
    [ "$got" = "$want" ] || fail "key_stats[$name].key is '$got', its certificate says '$want'"
done
ok "zmesh.status lists the five keys by name with their public keys"

for i in 1 2 3 4 5; do
    # shellcheck disable=SC2046
    run "$zmesh_bin" call echo "{\"alice\":$i}" --timeout 5000 --broker "$endpoint" $(curve_of alice)
    expect_rc 0 "zmesh call echo as alice"
    [ "$out" = "{\"alice\":$i}" ] || fail "zmesh call echo as alice printed '$out'"
done
for i in 1 2 3; do
    # shellcheck disable=SC2046
    run "$python" "$zpeer" call --endpoint "$endpoint" --body "{\"bob\":$i}" $(zpeer_curve bob)
    expect_rc 0 "a pyzmq call as bob"
    [ "$out" = "{\"status\": 200, \"body\": {\"bob\": $i}}" ] || fail "bob's call answered $out"
done
broker_z85=$("$python" -c 'import sys, zmq.auth; print(zmq.auth.load_certificate(sys.argv[1])[0].decode())' \
    "$certs/broker.key")
run env ZMESH_CURVE_SECRET="$certs/carol.key_secret" ZMESH_BROKER_KEY="$broker_z85" \
    "$zmesh_bin" call echo '{"carol":1}' --timeout 5000 --broker "$endpoint"
expect_rc 0 "zmesh call echo as carol, keys from ZMESH_CURVE_SECRET and ZMESH_BROKER_KEY (Z85)"
[ "$out" = '{"carol":1}' ] || fail "carol's call printed '$out'"
ok "calls with valid keys work (zmesh call, pyzmq, environment variables, Z85 broker key)"

snapshot after
messages() {
    echo $(($(get after "s['security']['key_stats']['$1']['messages']") -
        $(get before "s['security']['key_stats']['$1']['messages']")))
}
[ "$(messages alice)" -eq 5 ] || fail "alice sent 5 CALLs; the broker counted $(messages alice)"
[ "$(messages bob)" -eq 3 ] || fail "bob sent 3 CALLs; the broker counted $(messages bob)"
[ "$(messages carol)" -eq 1 ] || fail "carol sent 1 CALL; the broker counted $(messages carol)"
[ "$(messages admin)" -eq 1 ] || fail "admin sent 1 status CALL; the broker counted $(messages admin)"
# The worker sent (at least) one REPLY per call, and its heartbeats.
[ "$(messages echo-worker)" -ge 9 ] || fail "echo-worker's messages rose by $(messages echo-worker) < 9"
for name in admin alice bob carol echo-worker; do
    [ "$(get after "s['security']['key_stats']['$name']['denied']")" -eq 0 ] ||
        fail "key $name has denials"
done
[ "$(get after "s['counters']['denied']")" -eq 0 ] || fail "counters.denied is not 0"
ok "each key's messages were counted under its own name, none denied"

# shellcheck disable=SC2046
run "$zmesh_bin" status --json --broker "$endpoint" $(curve_of admin)
expect_rc 0 "zmesh status --json with the admin key"
echo "$out" >"$tmp/cli.json"
"$python" -c '
import json, sys
s = json.load(open(sys.argv[1]))
sec = s["security"]
assert sec["curve"] is True and sec["keys"] == 5, sec
assert sec["key_stats"]["alice"]["messages"] >= 5, sec
assert "denied" in s["counters"] and "sessions_revoked" in s["counters"], s["counters"]
' "$tmp/cli.json" || fail "zmesh status --json has no proper security section: $out"
ok "zmesh status --json shows security, key_stats and the new counters"

# shellcheck disable=SC2046
run "$zmesh_bin" status --broker "$endpoint" $(curve_of admin)
expect_rc 0 "zmesh status with the admin key"
case $out in *"curve on"*) ;; *) fail "zmesh status does not say curve on: $out" ;; esac
alice_row=$(printf '%s\n' "$out" | sed -n '/^KEYS/,/^$/p' | grep -E '^ *alice ') ||
    fail "zmesh status has no KEYS row for alice: $out"
alice_key=$(get before "s['security']['key_stats']['alice']['key']")
case $alice_row in *"$alice_key"*) ;; *) fail "alice's KEYS row lacks her key: $alice_row" ;; esac
ok "zmesh status shows curve on and a KEYS table: $alice_row"

#  Pipelines: the same as without CURVE. Ten rounds of alice pushing one
#  message and bob taking it with `zmesh pull --count 1`, which acknowledges
#  it and leaves at once: the broker must count every acknowledgement, take
#  nothing back and deliver nothing again (as it does without CURVE).
for i in $(seq 1 10); do
    set +e
    # shellcheck disable=SC2046
    echo "{\"job\":$i}" | "$zmesh_bin" push jobs --broker "$endpoint" $(curve_of alice) 2>"$tmp/push.log"
    rc=$?
    set -e
    [ "$rc" -eq 0 ] || fail "zmesh push jobs as alice: exit $rc: $(cat "$tmp/push.log")"
    # shellcheck disable=SC2046
    run timeout 30 "$zmesh_bin" pull jobs --count 1 --timeout 5000 --broker "$endpoint" $(curve_of bob)
    expect_rc 0 "zmesh pull jobs --count 1 as bob"
    [ "$out" = "{\"job\":$i}" ] || fail "round $i: zmesh pull printed '$out', expected" \
        "{\"job\":$i}: an earlier message delivered again, its acknowledgement lost"
done
settled() {
    status_json >"$tmp/settled.json" 2>/dev/null &&
        [ "$(get settled "s['pipelines']['jobs']['acked']")" -eq 10 ]
}
wait_settled() {
    local deadline=$(($(now_ms) + 3000))
    until settled; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.05
    done
}
wait_settled || true
snapshot pipe
[ "$(get pipe "s['pipelines']['jobs']['acked']")" -eq 10 ] &&
    [ "$(get pipe "s['pipelines']['jobs']['redelivered']")" -eq 0 ] &&
    [ "$(get pipe "s['pipelines']['jobs']['queued']")" -eq 0 ] &&
    [ "$(get pipe "s['counters']['stray_acks']")" -eq 0 ] ||
    fail "acknowledgements of bob's were lost, their messages taken back to be delivered again:" \
        "$(get pipe "s['pipelines']['jobs']"), stray_acks $(get pipe "s['counters']['stray_acks']")"
ok "zmesh push and pull with valid keys: 10 messages, each acknowledged once"
