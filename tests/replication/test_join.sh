#!/usr/bin/env bash
#  test_join.sh - a fourth replica joins a service of three (--replicas 3) while a writer puts:
#  it catches up (a snapshot from a peer, then the writes since) with writes going on, becomes
#  current, takes the writes after, and ends with the same digest as the others, which is the
#  digest of exactly the acknowledged puts.
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
wait_current 4
current_at=$(acked_so_far w)
echo "replication: r4 started at $joined_at acknowledged puts, current at $current_at"
((current_at > joined_at)) || fail "no write was acknowledged while r4 caught up"
set_gate w "$count"
finish_writer w
(($(counter catchups) > catchups)) || fail "r4 did not catch up from a snapshot"
check_state 4 "$tmp/w.acked"
finish test_join
