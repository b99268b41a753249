#!/usr/bin/env bash
#  test_flow.sh - flow control and cancellation of streamed replies, with `zmesh get --output -`
#  feeding a reader at a set pace:
#  1. a slow reader: the worker is throttled to the reader's pace (the parts the broker has
#     forwarded never run more than the window ahead of what the reader took) and the broker's
#     resident memory stays flat (within a bound stated below) however big the file;
#  2. a client killed mid-stream: the broker cancels the stream and the worker stops and frees
#     its slot within the stream's timeout (1000 ms here) + S_STOP_MS. Without CURVE the broker
#     sees no connection close: it learns of it when a PART cannot be forwarded, or, if the
#     worker is waiting for credit, when the stream has been silent for its timeout;
#  3. a client that stops reading (its stream falls silent past --timeout): the broker answers
#     408, cancels, and the worker stops within --timeout + S_STOP_MS.
#  Usage: test_flow.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
reader="$python $(dirname "$0")/slow_reader.py"

S_CHUNK=$((256 * 1024))             #  the files service's part size
S_WINDOW=8                          #  zmesh get --window
S_SLACK=6                           #  parts in the pipe, in zmesh get and in a status' lag
S_RSS_GROWTH_KIB=$((16 * 1024))     #  the broker may grow this much during the transfer
S_STOP_MS=2000                      #  a cancelled worker frees its slot within this

start_broker
start_files_worker --threads 1
random_file "$root/data.bin" 24
truncate -s 1G "$root/huge.bin"
cd "$tmp"
mkfifo pipe

inflight() {
    status_value 'sum(w["inflight"] for w in s["workers"])'
}

#  1. A slow reader: 256 KiB every 30 ms, about 8 MiB/s.
baseline=$(rss_kib "$broker_pid")
$reader $S_CHUNK 30 read.count <pipe &
reader_pid=$!
pids+=("$reader_pid")
start=$(now_ms)
"$zmesh_bin" --broker "$endpoint" get data.bin --output - --window $S_WINDOW >pipe 2>get.err &
get_pid=$!
pids+=("$get_pid")
samples=0 peak=$baseline ahead_max=0
while running "$get_pid"; do
    parts=$(counter parts)
    taken=$(cat read.count 2>/dev/null || echo 0)
    rss=$(rss_kib "$broker_pid")
    ((rss > peak)) && peak=$rss
    ahead=$((parts - taken / S_CHUNK))
    ((ahead > ahead_max)) && ahead_max=$ahead
    ((ahead <= S_WINDOW + S_SLACK)) ||
        fail "the worker is not throttled: $parts parts forwarded, $taken bytes read"
    samples=$((samples + 1))
    sleep 0.1
done
wait "$get_pid" || fail "the slow get failed: $(cat get.err)"
wait "$reader_pid" || true
elapsed=$(($(now_ms) - start))
[ "$(cat read.count)" -eq $((24 * 1024 * 1024)) ] || fail "the reader got $(cat read.count) bytes"
((samples >= 5)) || fail "only $samples samples: the transfer was not slowed by the reader"
((peak - baseline <= S_RSS_GROWTH_KIB)) ||
    fail "the broker grew from $baseline to $peak KiB under a slow reader"
echo "stream: slow reader: 24 MiB in $elapsed ms, $samples samples, parts ahead of the reader" \
     "<= $ahead_max (window $S_WINDOW), broker RSS $baseline -> peak $peak KiB" \
     "(bound +$S_RSS_GROWTH_KIB)"

#  2. The client is killed mid-stream.
$reader $S_CHUNK 30 read2.count <pipe &
reader_pid=$!
pids+=("$reader_pid")
"$zmesh_bin" --broker "$endpoint" get huge.bin --output - --window $S_WINDOW --timeout 1000 >pipe 2>get2.err &
get_pid=$!
pids+=("$get_pid")
deadline=$(($(now_ms) + 10000))
until [ "$(cat read2.count 2>/dev/null || echo 0)" -ge $((2 * 1024 * 1024)) ]; do
    (($(now_ms) < deadline)) || fail "the second get did not start streaming"
    sleep 0.02
done
[ "$(inflight)" -eq 1 ] || fail "the worker does not hold the stream"
kill -KILL "$get_pid"
killed=$(now_ms)
until [ "$(inflight)" -eq 0 ]; do
    (($(now_ms) - killed < 1000 + S_STOP_MS)) || fail "the worker still streams" \
        "$((1000 + S_STOP_MS)) ms after its client was killed"
    sleep 0.02
done
stopped=$(($(now_ms) - killed))
parts_then=$(counter parts)
[ "$(($(counter cancelled) + $(counter expired)))" -ge 1 ] ||
    fail "the broker counted no cancelled or expired call"
sleep 0.3
[ "$(counter parts)" -eq "$parts_then" ] || fail "parts still flow after the cancel"
wait "$reader_pid" || true
echo "stream: client killed mid-stream: the worker stopped and freed its slot in $stopped ms" \
     "(bound 1000 + $S_STOP_MS), cancelled=$(counter cancelled) expired=$(counter expired)"

#  3. The client stops reading: nothing takes the pipe's bytes, get blocks writing and grants
#  no more credit; the stream falls silent and the broker's deadline ends it.
exec 3<>pipe                        #  holds the pipe open, never reads
"$zmesh_bin" --broker "$endpoint" get huge.bin --output - --window 2 --timeout 1000 >pipe 2>get3.err &
get_pid=$!
pids+=("$get_pid")
start=$(now_ms)
deadline=$((start + 10000))
until [ "$(inflight)" -eq 1 ]; do
    (($(now_ms) < deadline)) || fail "the third get did not reach the worker"
    sleep 0.02
done
until [ "$(inflight)" -eq 0 ]; do
    (($(now_ms) - start < 1000 + S_STOP_MS)) ||
        fail "the worker still holds a stream silent for more than its timeout"
    sleep 0.05
done
stopped=$(($(now_ms) - start))
[ "$(counter expired)" -ge 1 ] || fail "the silent stream was not answered 408"
echo "stream: client stopped reading: the broker expired the stream and the worker stopped" \
     "$stopped ms after it started (timeout 1000 ms + bound $S_STOP_MS)"
kill -KILL "$get_pid" 2>/dev/null || true
exec 3<&-
echo "stream: test_flow passed"
