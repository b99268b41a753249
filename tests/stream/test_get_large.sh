#!/usr/bin/env bash
#  test_get_large.sh - `zmesh get` of a 1 GiB file through the broker: the bytes arrive
#  identical (SHA-1 of both files), and the resident memory of the broker, the worker and the
#  client each stays under S_RSS_MAX_KIB: no side ever holds more than the stream's window of
#  256 KiB parts. The file is sparse with random blocks written at its start, middle and end,
#  so a lost or misplaced part shows. Plain build only (see CMakeLists.txt).
#  Usage: test_get_large.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

S_SIZE=$((1024 * 1024 * 1024))
S_RSS_MAX_KIB=$((64 * 1024))        #  each process, peak; the file is 16 times that

start_broker
start_files_worker
truncate -s "$S_SIZE" "$root/large.bin"
for at in 0 $((S_SIZE / 2 - 12345)) $((S_SIZE - 3 * 1024 * 1024)); do
    head -c $((3 * 1024 * 1024)) /dev/urandom |
        dd of="$root/large.bin" bs=1M seek="$at" oflag=seek_bytes conv=notrunc status=none
done
cd "$tmp"
start=$(now_ms)
"$zmesh_bin" --broker "$endpoint" get large.bin --output large.bin --timeout 10000 2>get.err &
get_pid=$!
pids+=("$get_pid")
client_peak=0
while running "$get_pid"; do
    peak=$(hwm_kib "$get_pid")
    ((peak > client_peak)) && client_peak=$peak
    sleep 0.05
done
wait "$get_pid" || fail "zmesh get failed: $(cat get.err)"
elapsed=$(($(now_ms) - start))
size=$(stat -c %s large.bin)
[ "$size" -eq "$S_SIZE" ] || fail "got $size bytes, not $S_SIZE"
want=$(sha1sum <"$root/large.bin" | cut -d' ' -f1)
got=$(sha1sum <large.bin | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "SHA-1 $got of the copy differs from $want"
broker_peak=$(hwm_kib "$broker_pid")
worker_peak=$(hwm_kib "$worker_pid")
echo "stream: 1 GiB fetched in $elapsed ms ($((S_SIZE / 1024 / 1024 * 1000 / (elapsed + 1))) MiB/s)," \
     "SHA-1 $got identical; peak RSS KiB: broker $broker_peak, worker $worker_peak," \
     "client >= $client_peak (bound $S_RSS_MAX_KIB each); parts=$(counter parts)"
((broker_peak < S_RSS_MAX_KIB)) || fail "the broker's peak RSS is $broker_peak KiB"
((worker_peak < S_RSS_MAX_KIB)) || fail "the worker's peak RSS is $worker_peak KiB"
((client_peak < S_RSS_MAX_KIB)) || fail "the client's peak RSS is $client_peak KiB"
((client_peak > 0)) || fail "the client's memory was never read"
echo "stream: test_get_large passed"
