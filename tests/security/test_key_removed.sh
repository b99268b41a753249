#!/usr/bin/env bash
#  test_key_removed.sh - removing a key file from the keys directory cuts
#  that key's live sessions within the stated 2 s and refuses its
#  reconnects. A connected pyzmq client (key client) sees its connection
#  closed within 2 s of the removal and its reconnects refused at the
#  handshake; a fresh connection with the key gets no answer, and so does
#  `zmesh call` (exit 3). A connected zmesh-worker (key w2) is gone from the
#  broker's workers within 2 s of its key's removal and exits 6 (denied);
#  the other worker keeps serving and a good client keeps calling.
#  Usage: test_key_removed.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2; exit 2; }
broker_bin=$1 worker_bin=$2 zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

bound_ms=2000                       #  the bound ZMP.md section 18 and README state
keygen broker
keygen admin --admin
keygen client --call echo
keygen good --call echo
keygen w1 --serve echo
keygen w2 --serve echo
start_broker
start_worker w1 echo

#  The client: its connection closed and its reconnects refused.
# shellcheck disable=SC2046
"$python" "$zpeer" revoke --endpoint "$endpoint" --key-file "$keys/client.key" \
    --park "$certs/client.parked" --bound-ms "$bound_ms" $(zpeer_curve client) ||
    fail "the removed client key was not cut off as stated"
# shellcheck disable=SC2046
run timeout 20 "$zmesh_bin" call echo '{}' --timeout 1500 --broker "$endpoint" $(curve_of client)
expect_rc 3 "zmesh call with the removed key"
ok "zmesh call with the removed key: exit 3 ($err)"

#  A worker: its session ends, it is told why and stops.
# shellcheck disable=SC2046
"$worker_bin" --service echo --broker "$endpoint" $(curve_of w2) >"$tmp/worker-w2.log" 2>&1 &
w2_pid=$!
pids+=("$w2_pid")
two_workers() {
    status_json >"$tmp/two.json" 2>/dev/null &&
        [ "$(get two "len([w for w in s['workers'] if w['service'] == 'echo'])")" -eq 2 ]
}
one_worker() {
    status_json >"$tmp/one.json" 2>/dev/null &&
        [ "$(get one "len([w for w in s['workers'] if w['service'] == 'echo'])")" -eq 1 ]
}
until_true 10000 "w2 registered beside w1" two_workers
snapshot before
mv "$keys/w2.key" "$certs/w2.parked"
removed=$(now_ms)
until_true 5000 "w2's session ended" one_worker
cut_ms=$(($(now_ms) - removed))
((cut_ms <= bound_ms)) || fail "w2's session ended $cut_ms ms after its key was removed, over $bound_ms"
wait_ended "$w2_pid" 10000 || fail "zmesh-worker w2 still runs 10 s after its key was removed"
rc=0
wait "$w2_pid" || rc=$?
[ "$rc" -eq 6 ] || fail "zmesh-worker w2 exited $rc, expected 6 (denied): $(tail -n 3 "$tmp/worker-w2.log")"
grep -q denied "$tmp/worker-w2.log" || fail "zmesh-worker w2 did not say it was denied"
snapshot after
revoked=$(($(get after "s['counters']['sessions_revoked']") - $(get before "s['counters']['sessions_revoked']")))
[ "$revoked" -ge 1 ] || fail "counters.sessions_revoked did not rise"
ok "w2's session ended $cut_ms ms after its key was removed; zmesh-worker exited 6: $(grep denied "$tmp/worker-w2.log" | tail -n 1)"

#  Everyone else is unaffected.
for i in 1 2 3; do
    # shellcheck disable=SC2046
    run "$zmesh_bin" call echo "{\"i\":$i}" --timeout 5000 --broker "$endpoint" $(curve_of good)
    expect_rc 0 "a good client's call after the removals"
done
[ "$(get after "sorted(s['security']['key_stats'])")" = '["admin", "good", "w1"]' ] ||
    fail "key_stats still lists a removed key: $(get after "sorted(s['security']['key_stats'])")"
ok "the other keys keep working"
