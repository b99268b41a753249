#!/usr/bin/env bash
#  test_flood.sh - 100 raw TCP connections to the CURVE endpoint (random
#  bytes, a ZMTP 1.0 greeting with junk after it, a ZMTP 3.0 greeting asking
#  for NULL, or silence), each opened again as soon as the broker closes it,
#  while a legitimate client makes calls: each call completes in time, the
#  broker survives, and the failed handshakes are counted, not let in.
#  Usage: test_flood.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2; exit 2; }
broker_bin=$1 worker_bin=$2 zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

keygen broker
keygen admin --admin
keygen client --call echo
keygen echo-worker --serve echo
start_broker
start_worker echo-worker echo
snapshot before

"$python" "$zpeer" flood --endpoint "$endpoint" --count 100 --seconds 90 \
    >"$tmp/flood.log" 2>&1 &
flood_pid=$!
pids+=("$flood_pid")
flood_up() {
    running "$flood_pid" || fail "the flood stopped early: $(cat "$tmp/flood.log")"
    grep -q 'flood: up' "$tmp/flood.log"
}
until_true 20000 "100 raw connections open" flood_up

started=$(now_ms)
for i in $(seq 1 20); do
    call_started=$(now_ms)
    # shellcheck disable=SC2046
    run "$zmesh_bin" call echo "{\"i\":$i}" --timeout 5000 --broker "$endpoint" $(curve_of client)
    expect_rc 0 "call $i during the flood"
    [ "$out" = "{\"i\":$i}" ] || fail "call $i during the flood printed '$out'"
    ((($(now_ms) - call_started) < 5000)) || fail "call $i took over 5 s"
done
elapsed=$(($(now_ms) - started))
# shellcheck disable=SC2046
run "$python" "$zpeer" call --endpoint "$endpoint" --body '{"py":1}' $(zpeer_curve client)
expect_rc 0 "a pyzmq call during the flood"
running "$flood_pid" || fail "the flood stopped before the calls were done"
ok "20 zmesh calls and a pyzmq call completed during the flood in $elapsed ms"

kill -TERM "$flood_pid"
wait_ended "$flood_pid" 10000 || fail "the flood did not stop"
running "$broker_pid" || fail "the broker died"
snapshot after
failed=$(($(get after "s['counters']['handshakes_failed']") - $(get before "s['counters']['handshakes_failed']")))
[ "$failed" -gt 0 ] || fail "no failed handshake counted during the flood"
for counter in rejected_malformed denied denied_unknown_key; do
    [ "$(get after "s['counters']['$counter']")" -eq 0 ] ||
        fail "counters.$counter is not 0: raw bytes reached the broker's logic"
done
ok "the broker survived; $failed failed handshakes counted; $(tail -n 1 "$tmp/flood.log")"
