#!/usr/bin/env bash
#  test_broker_restart.sh - the broker is killed with SIGKILL among writes in flight to three
#  in-memory kv replicas and started again on the same endpoint. The replicas find the new
#  broker and join with what they applied; it sequences on from the most advanced one: a new
#  epoch, and a seq that does not go back behind what the old broker had answered. The writer
#  resends what went unanswered with the same request ids (cas on new keys: a write applied
#  twice would answer ok:false). After: nothing acknowledged is lost and every replica's
#  digest is the digest of exactly the acknowledged writes.
#  Usage: test_broker_restart.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

count=$((10000 / scale))

start_set
start_writer w --count "$count" --op cas --window 64 --timeout-ms 2000
set_gate w $((count * 3 / 4))
wait_acked w $((count / 2))
#  What the old broker had answered, read as late as possible before the kill: the new one
#  must not sequence behind it.
read -r old_epoch old_seq old_committed < <(status_value \
    '"%d %d %d" % (r["epoch"], r["seq"], r["committed"])')
kill -KILL "$broker_pid"
wait "$broker_pid" 2>/dev/null || true
killed_at=$(acked_so_far w)
start_broker
set_gate w "$count"
#  The new broker logs where it starts the replica set: a new epoch, from the most advanced
#  replica that joined.
deadline=$(($(now_ms) + 30000))
until [ "$(grep -c 'replicated service started service=kv' "$tmp/broker.log")" -ge 2 ]; do
    (($(now_ms) < deadline)) || fail "the new broker did not start sequencing kv"
    sleep 0.05
done
started=$(grep 'replicated service started service=kv' "$tmp/broker.log" | tail -n 1)
new_epoch=$(sed -n 's/.* epoch=\([0-9]*\) .*/\1/p' <<<"$started")
new_seq=$(sed -n 's/.* seq=\([0-9]*\) .*/\1/p' <<<"$started")
[ -n "$new_epoch" ] && [ -n "$new_seq" ] || fail "cannot read the broker's line: $started"
echo "replication: broker killed at $killed_at acknowledged writes: old epoch $old_epoch seq" \
     "$old_seq committed $old_committed; the new broker starts epoch $new_epoch at seq $new_seq"
((new_epoch > old_epoch)) || fail "the new broker's epoch $new_epoch is not after $old_epoch"
((new_seq >= old_committed)) ||
    fail "the new broker sequences from $new_seq, behind the $old_committed answered before"
wait_current 3
finish_writer w
check_state 3 "$tmp/w.acked"
final_seq=$(status_value 'r["seq"]')
((final_seq > new_seq)) || fail "the seq did not move on after the restart"
finish test_broker_restart
