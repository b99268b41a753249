#!/usr/bin/env bash
#  test_chaos.sh - three kv replicas in memory (no data directory) and a writer doing 20,000
#  puts with 64 in flight, while one replica at a time is killed with SIGKILL and started again
#  (empty: it catches up from a peer's snapshot). The writer is held at a gate before each
#  kill and let go first, so every kill lands among writes in flight and writes go on while
#  the new process catches up. After: every acknowledged put reads back with a quorum read,
#  and every replica's digest is the digest of exactly the acknowledged puts.
#  Usage: test_chaos.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

count=$((20000 / scale))
kills=5
step=$((count / (kills + 1)))

start_set
start=$(now_ms)
start_writer w --count "$count" --op put --window 64 --timeout-ms 3000
for ((k = 1; k <= kills; k++)); do
    set_gate w $(((k + 1) * step))
    wait_acked w $((k * step + step / 4))
    victim=r$(((k - 1) % 3 + 1))
    before=$(member_ids)
    kill_replica "$victim"
    killed_at=$(acked_so_far w)
    #  Down for a moment, so the others take writes without it; it comes back empty.
    sleep 0.2
    start_member "$victim"
    wait_replaced 3 "$before"
    echo "replication: kill $k: $victim killed at $killed_at acknowledged puts, back and" \
         "current at $(acked_so_far w)"
done
set_gate w "$count"
finish_writer w
echo "replication: $kills kills during $(($(now_ms) - start)) ms of writes;" \
     "snapshot catch-ups $(counter catchups), resent catch-ups $(counter catchup_resends)"
(($(counter catchups) >= kills)) || fail "fewer snapshot catch-ups than restarted replicas"
check_state 3 "$tmp/w.acked"
finish test_chaos
