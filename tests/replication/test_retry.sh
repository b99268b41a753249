#!/usr/bin/env bash
#  test_retry.sh - exactly-once writes and bad input, on three kv replicas:
#  1. a write resent with its request id is answered as the first time and applied once: a
#     cas on a new key resent after its answer, the same cas sent at once from two
#     connections (the broker sequences both), and a put resent after a delete of its key;
#     the same writes resent once every replica was replaced by one that caught up from a
#     snapshot (which carries the write ids it must remember);
#  2. writes whose body is no kv request get 500 with a reason, and the replicas keep serving;
#  3. the replicas end with equal digests, none has left or restarted.
#  Usage: test_retry.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

start_set
$kvtool retry "$endpoint" --save "$tmp/retry.saved" ||
    fail "a retried write was not answered as the first time"
#  Every replica is replaced, one at a time, by a process that catches up from a snapshot
#  (the broker resends at most 4096 writes; a replica further behind gets a snapshot): the
#  write ids must survive in the snapshots.
start_writer w --count 5000 --op put --window 64
set_gate w 5000
finish_writer w
catchups=$(counter catchups)
for name in r1 r2 r3; do
    before=$(member_ids)
    kill_replica "$name"
    start_member "$name"
    wait_replaced 3 "$before"
done
echo "replication: all three replicas replaced, snapshot catch-ups $(counter catchups)"
(($(counter catchups) >= catchups + 3)) || fail "the replicas did not catch up from snapshots"
$kvtool replay "$endpoint" --save "$tmp/retry.saved" ||
    fail "a write resent to replicas that caught up since was applied again"

$kvtool bad "$endpoint" || fail "bad writes were not refused with 500"
for name in r1 r2 r3; do
    running "${replica_pid[$name]}" || fail "replica $name died of the bad writes"
done
wait_settled 3
check_state 3
finish test_retry
