#!/usr/bin/env bash
#  test_disk.sh - kv replicas with a data directory each (--data-dir):
#  1. all three are killed with SIGKILL at once among writes in flight and started again on
#     their directories: nothing acknowledged is lost (the writer does cas on new keys, so a
#     write applied twice would show too);
#  2. one replica, stopped, has its log cut short; started again it says so in its log,
#     catches up from the others and ends with their digest;
#  3. the same with one byte of another replica's log flipped.
#  After each: every acknowledged write reads back and every replica's digest is the digest of
#  exactly the acknowledged writes.
#  Usage: test_disk.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

count=$((10000 / scale))
more=$((2000 / scale))

start_replica_on_disk() {
    mkdir -p "$tmp/data-$1"
    start_member "$1" --data-dir "$tmp/data-$1"
}

#  damage_found NAME: true once replica NAME's log reports damage of its data directory.
damage_found() {
    grep -Eiq 'damag|corrupt|torn|crc|truncat|cut' "$tmp/$1.log"
}

#  1. Everyone killed at once.
start_set start_replica_on_disk
start_writer w --count "$count" --op cas --window 64 --timeout-ms 2000
set_gate w $((count * 3 / 4))
wait_acked w $((count / 2))
before=$(member_ids)
{
    kill -KILL "${replica_pid[r1]}" "${replica_pid[r2]}" "${replica_pid[r3]}"
    wait "${replica_pid[r1]}" "${replica_pid[r2]}" "${replica_pid[r3]}" || true
} 2>/dev/null
killed_at=$(acked_so_far w)
for name in r1 r2 r3; do
    start_replica_on_disk "$name"
done
set_gate w "$count"
wait_replaced 3 "$before"
finish_writer w
echo "replication: all three replicas killed at $killed_at acknowledged writes and restarted"
check_state 3 "$tmp/w.acked"

#  2 and 3: damage one stopped replica's log, write more while it is down, start it again.
#  damage NAME HOW: HOW is truncate (the last third cut off) or flip (one byte in the middle).
damage() {
    local name=$1 how=$2 log="$tmp/data-$1/log" size
    before=$(member_ids)
    kill_replica "$name"
    [ -s "$log" ] || fail "replica $name has no log file at $log"
    size=$(stat -c %s "$log")
    if [ "$how" = truncate ]; then
        truncate -s $((size * 2 / 3)) "$log"
    else
        "$python" -c '
import sys
with open(sys.argv[1], "r+b") as log:
    log.seek(int(sys.argv[2]))
    byte = log.read(1)
    log.seek(int(sys.argv[2]))
    log.write(bytes([byte[0] ^ 0x5a]))' "$log" $((size / 2))
    fi
    echo "replication: $name's log ($size bytes): $how"
    start_writer "w-$how" --count "$more" --op cas --prefix "$how-" --timeout-ms 2000
    set_gate "w-$how" "$more"
    finish_writer "w-$how"
    mv "$tmp/$name.log" "$tmp/$name-before-$how.log"
    local catchups
    catchups=$(counter catchups)
    start_replica_on_disk "$name"
    wait_replaced 3 "$before"
    #  What it kept is more than the broker resends (4096 writes) behind: a peer's snapshot.
    (($(counter catchups) > catchups)) || fail "replica $name did not catch up from a peer"
    damage_found "$name" || fail "replica $name did not report its damaged log"
    echo "replication: $name reported: $(grep -Ei 'damag|corrupt|torn|crc|truncat|cut' \
        "$tmp/$name.log" | head -n 2)"
}
damage r1 truncate
check_state 3 "$tmp/w.acked" "$tmp/w-truncate.acked"
damage r2 flip
check_state 3 "$tmp/w.acked" "$tmp/w-truncate.acked" "$tmp/w-flip.acked"
finish test_disk
