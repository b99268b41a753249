#!/usr/bin/env bash
#  test_get.sh - the files service and `zmesh get` end to end: a file fetched whole (checksum
#  compared), `zmesh call --stream` printing a read's parts and a list, the path escapes that
#  must be refused (../, an absolute path, a symbolic link out of the root) while a link that
#  stays inside is served, a FIFO refused at once rather than read, and a worker killed
#  mid-stream: `zmesh get` fails with "worker lost" and leaves no file, never a truncated one
#  reported as a success.
#  Usage: test_get.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

start_broker
start_files_worker --threads 2
mkdir -p "$root/sub" "$tmp/outside"
random_file "$root/sub/data.bin" 5
echo secret >"$tmp/outside/secret.txt"
ln -s "$tmp/outside/secret.txt" "$root/out-link"
ln -s sub/data.bin "$root/in-link"
cd "$tmp"

#  A whole file, identical bytes.
zmesh get sub/data.bin --output got.bin 2>get.err || fail "get sub/data.bin: $(cat get.err)"
cmp -s got.bin "$root/sub/data.bin" || fail "got.bin differs from the file served"
[ ! -e got.bin.part ] || fail "got.bin.part left behind"
echo "stream: get of 5 MiB: identical ($(sha1sum <got.bin | cut -c1-12)...)"
zmesh get in-link --output - >via-link.bin || fail "a link inside the root was refused"
cmp -s via-link.bin "$root/sub/data.bin" || fail "the link inside the root gave other bytes"

#  zmesh call --stream: one line per part, then the final reply.
zmesh call --stream files '{"op":"read","path":"sub/data.bin"}' >parts.jsonl ||
    fail "call --stream of a read failed"
lines=$(wc -l <parts.jsonl)
[ "$lines" -eq 21 ] || fail "a 5 MiB read in 256 KiB parts printed $lines lines, not 20 + 1"
tail -n 1 parts.jsonl | grep -q "\"sha1\":\"$(sha1sum <"$root/sub/data.bin" | cut -d' ' -f1)\"" ||
    fail "the final reply does not carry the file's SHA-1: $(tail -n 1 parts.jsonl | cut -c1-200)"
zmesh call --stream files '{"op":"list","path":"sub"}' >list.jsonl || fail "streamed list failed"
grep -q '"name":"data.bin"' list.jsonl && tail -n 1 list.jsonl | grep -q '"entries":1' ||
    fail "streamed list: $(cat list.jsonl)"

#  Escapes are refused with a clear reason and write nothing.
refuse() {
    local path=$1 expected=$2
    set +e
    zmesh get "$path" --output refused.bin 2>refused.err
    local rc=$?
    set -e
    [ "$rc" -eq 1 ] || fail "get $path exited $rc, not 1: $(cat refused.err)"
    grep -q "$expected" refused.err || fail "get $path: unexpected error: $(cat refused.err)"
    [ ! -e refused.bin ] && [ ! -e refused.bin.part ] || fail "get $path left a file"
    echo "stream: refused $path: $(cut -c1-110 refused.err)"
}
refuse ../outside/secret.txt "has a '..' part"
refuse sub/../../outside/secret.txt "has a '..' part"
refuse /etc/passwd "is an absolute path"
refuse out-link "leads out of the root"
refuse no-such-file "No such file"
set +e
zmesh call files '{"op":"read","path":"/etc/passwd"}' >/dev/null 2>call.err
rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "absolute path" call.err || fail "call read /etc/passwd: $rc $(cat call.err)"

#  A FIFO is refused at once: opening it would wait for a writer and hold a handler thread.
mkfifo "$root/fifo"
for attempt in 1 2 3; do                  #  more than the worker's two threads
    set +e
    zmesh call --timeout 5000 files '{"op":"read","path":"fifo"}' >/dev/null 2>fifo.err
    rc=$?
    set -e
    [ "$rc" -eq 1 ] && grep -q "not a regular file" fifo.err ||
        fail "read of a FIFO (attempt $attempt): exit $rc: $(cat fifo.err)"
done
echo "stream: refused a FIFO: $(cut -c1-100 fifo.err)"

#  A worker killed mid-stream: an error, and no file.
truncate -s 512M "$root/big.bin"
start=$(now_ms)
set +e
"$zmesh_bin" --broker "$endpoint" get big.bin --output big.bin 2>big.err &
get_pid=$!
set -e
deadline=$(($(now_ms) + 20000))
until [ "$(stat -c %s big.bin.part 2>/dev/null || echo 0)" -ge $((8 * 1024 * 1024)) ]; do
    running "$get_pid" || fail "get ended before the worker was killed: $(cat big.err)"
    (($(now_ms) < deadline)) || fail "get wrote less than 8 MiB in 20 s"
    sleep 0.02
done
written=$(stat -c %s big.bin.part)
kill -KILL "$worker_pid"
killed=$(now_ms)
set +e
wait "$get_pid"
rc=$?
set -e
ended=$(now_ms)
[ "$rc" -eq 1 ] || fail "get exited $rc after its worker was killed, not 1: $(cat big.err)"
grep -q "worker" big.err || fail "get's error does not name the lost worker: $(cat big.err)"
[ ! -e big.bin ] && [ ! -e big.bin.part ] || fail "a killed stream left a file behind"
((ended - killed < 5000)) || fail "get took $((ended - killed)) ms to fail after the kill"
echo "stream: worker killed after $written bytes: get failed in $((ended - killed)) ms" \
     "($(cut -c1-100 big.err)), no file left"
echo "stream: test_get passed"
