#!/usr/bin/env bash
#  test_join.sh - a fourth replica joins a service of three (--replicas 3) while a writer puts.
#  The broker never holds more than N members (a quorum of W out of more than N would not meet
#  the N-W+1 replicas a restarted broker starts from), so the fourth is told to wait (503) and
#  keeps asking; once r3 is killed it takes the free place, catches up with writes going on
#  (a snapshot from a peer, then the writes since), becomes current, takes the writes after,
#  and ends with the same digest as the others, the digest of exactly the acknowledged puts.
#  Usage: test_join.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

count=$((20000 / scale))

start_set
catchups=$(counter catchups)
start_writer w --count "$count" --op put --window 64 --timeout-ms 3000
#  The writer runs to 60 % while the fourth replica joins at 25 %.
set_gate w $((count * 6 / 10))
wait_acked w $((count / 4))
joined_at=$(acked_so_far w)
start_member r4
deadline=$(($(now_ms) + 10000))
until grep -q 'its 3 replicas' "$tmp/r4.log"; do
    (($(now_ms) < deadline)) || fail "r4 was not told to wait: $(tail -3 "$tmp/r4.log")"
    sleep 0.05
done
[ "$(status_value 'len(r["members"])')" = 3 ] || fail "more than 3 members: $(members_line)"
echo "replication: r4 started at $joined_at acknowledged puts and waits: the service has its 3"
before=$(member_ids)
kill_replica r3
wait_replaced 3 "$before"
current_at=$(acked_so_far w)
echo "replication: r3 killed; r4 took its place and was current at $current_at"
((current_at > joined_at)) || fail "no write was acknowledged while r4 caught up"
set_gate w "$count"
finish_writer w
(($(counter catchups) > catchups)) || fail "r4 did not catch up from a snapshot"
check_state 3 "$tmp/w.acked"
finish test_join
