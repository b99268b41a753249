#!/usr/bin/env bash
#  test_strangers.sh - peers the CURVE broker must not let in: a key not in
#  the keys directory, a valid key that got the wrong server key, a client
#  with no security (NULL mechanism) and a PLAIN client, each calling echo
#  from pyzmq, plus a NULL plain PUSH socket on the push endpoint. None gets
#  an answer; zmesh.status shows that nothing of theirs reached the broker's
#  logic (the counters move only by what the good client did, and no key
#  but the good ones has messages), while the failed handshakes are counted.
#  A good client calls echo while they try, and afterwards. `zmesh call` and
#  `zmesh status` with a wrong broker key or an unknown key time out (exit 3)
#  in their own time with a hint, and do not hang.
#  Usage: test_strangers.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2; exit 2; }
broker_bin=$1 worker_bin=$2 zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

keygen broker
keygen admin --admin
keygen alice --call echo
keygen echo-worker --serve echo
keygen mallory --call '*' --push '*' --admin --unlisted   # all rights, unknown to the broker
start_broker
start_worker echo-worker echo

good_calls=0
good_call() {
    # shellcheck disable=SC2046
    run "$zmesh_bin" call echo "{\"good\":$1}" --timeout 5000 --broker "$endpoint" $(curve_of alice)
    expect_rc 0 "the good client's call $1"
    [ "$out" = "{\"good\":$1}" ] || fail "the good client's call $1 printed '$out'"
    good_calls=$((good_calls + 1))
}

snapshot before
good_call 1

#  The strangers, all at once, each waiting 3 s for an answer.
stranger() {
    local name=$1
    shift
    "$python" "$zpeer" call --endpoint "$endpoint" --wait-ms 3000 "$@" \
        >"$tmp/stranger-$name.out" 2>"$tmp/stranger-$name.log" &
    stranger_pids+=($!)
    stranger_names+=("$name")
}
stranger_pids=()
stranger_names=()
# shellcheck disable=SC2046
stranger unknown-key $(zpeer_curve mallory)
stranger wrong-server-key --secret "$certs/alice.key_secret" --server-key "$certs/mallory.key"
stranger null
stranger plain --plain
# shellcheck disable=SC2046
stranger status-unknown-key --service zmesh.status --body null $(zpeer_curve mallory)
"$python" "$zpeer" push-plain --endpoint "$push_endpoint" --pipeline jobs --count 5 \
    --linger-ms 1000 >"$tmp/push-null.log" 2>&1 &
stranger_pids+=($!)
stranger_names+=(push-null)

#  Meanwhile the good client keeps working.
for i in 2 3 4 5 6; do
    good_call "$i"
done

for i in "${!stranger_pids[@]}"; do
    name=${stranger_names[$i]}
    rc=0
    wait "${stranger_pids[$i]}" || rc=$?
    [ "$name" = push-null ] && continue
    [ "$rc" -eq 3 ] || fail "stranger $name: exit $rc, expected 3 (no answer): $(cat "$tmp/stranger-$name.out")"
done
ok "no stranger got an answer: unknown key, wrong server key, NULL, PLAIN"

good_call 7
snapshot after
delta() {
    echo $(($(get after "$1") - $(get before "$1")))
}
#  Every CALL the broker took is the good client's, or a status call of ours.
[ "$(delta "s['counters']['calls']")" -eq $((good_calls + 1)) ] ||
    fail "counters.calls rose by $(delta "s['counters']['calls']"), expected $((good_calls + 1))"
for counter in rejected_malformed rejected_no_service denied denied_unknown_key pushes \
    peers_kicked dropped_late_reply workers_kicked; do
    [ "$(delta "s['counters']['$counter']")" -eq 0 ] ||
        fail "counters.$counter changed: a stranger's message reached the broker's logic"
done
[ "$(delta "s['security']['key_stats']['alice']['messages']")" -eq "$good_calls" ] ||
    fail "alice's messages rose by $(delta "s['security']['key_stats']['alice']['messages']"), not $good_calls"
[ "$(get after "sorted(s['security']['key_stats'])")" = '["admin", "alice", "echo-worker"]' ] ||
    fail "key_stats lists other keys: $(get after "sorted(s['security']['key_stats'])")"
[ "$(get after "len(s['pipelines'])")" -eq 0 ] || fail "a pipeline exists: the NULL PUSH got in"
failed=$(delta "s['counters']['handshakes_failed']")
[ "$failed" -ge 5 ] || fail "counters.handshakes_failed rose by $failed, expected at least 5"
ok "nothing from the strangers reached the broker's logic; $failed failed handshakes counted"

#  The CLI with a wrong broker key, or a key the broker does not know.
cli_times_out() {
    local what=$1 started elapsed
    shift
    started=$(now_ms)
    run timeout 20 "$zmesh_bin" "$@" --broker "$endpoint"
    elapsed=$(($(now_ms) - started))
    [ "$rc" -ne 124 ] || fail "$what: still running after 20 s"
    expect_rc 3 "$what"
    ((elapsed < 10000)) || fail "$what: took $elapsed ms with --timeout 1500"
    echo "$err" | grep -qiE 'broker.key' ||
        fail "$what: no hint about the broker key in: $err"
    echo "$err" | grep -qiE 'keys directory|unknown' ||
        fail "$what: no hint that the key may be unknown to the broker in: $err"
}
cli_times_out "zmesh call with a wrong broker key" call echo '{}' --timeout 1500 \
    --curve-secret "$certs/alice.key_secret" --broker-key "$certs/mallory.key"
cli_times_out "zmesh call with an unknown key" call echo '{}' --timeout 1500 \
    --curve-secret "$certs/mallory.key_secret" --broker-key "$certs/broker.key"
cli_times_out "zmesh status with a wrong broker key" status --timeout 1500 \
    --curve-secret "$certs/admin.key_secret" --broker-key "$certs/mallory.key"
ok "zmesh call/status with a wrong broker key or an unknown key: exit 3 with a hint ($err)"
good_call 8
