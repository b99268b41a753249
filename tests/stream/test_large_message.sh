#!/usr/bin/env bash
#  test_large_message.sh - single messages up to the configured size limit: with the broker's
#  --max-body and the programs' ZMESH_MAX_BODY both at 16 MiB, a 10 MiB request goes through
#  a call to the echo worker and a 10 MiB message through a pipeline, unchanged; a 20 MiB one
#  is refused by the sender itself with a clear error before anything is sent (the broker
#  counts nothing too big).
#  Usage: test_large_message.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

export ZMESH_MAX_BODY=$((16 * 1024 * 1024))
start_broker --max-body "$ZMESH_MAX_BODY"
"$worker_bin" --service echo --broker "$endpoint" >>"$tmp/worker.log" 2>&1 &
pids+=($!)
cd "$tmp"
#  One JSON string per line: 10 MiB and 20 MiB of letters (the MessagePack str is 5 bytes more).
"$python" -c 'import sys; n = int(sys.argv[1]); sys.stdout.write("\"" + "ab" * (n // 2) + "\"\n")' \
    $((10 * 1024 * 1024)) >big.json
"$python" -c 'import sys; n = int(sys.argv[1]); sys.stdout.write("\"" + "ab" * (n // 2) + "\"\n")' \
    $((20 * 1024 * 1024)) >huge.json

start=$(now_ms)
zmesh call echo --timeout 30000 <big.json >echoed.json 2>call.err ||
    fail "a 10 MiB call failed: $(cat call.err)"
cmp -s big.json echoed.json || fail "the 10 MiB reply differs from the request"
echo "stream: 10 MiB call echoed unchanged in $(($(now_ms) - start)) ms"

zmesh push large --timeout 30000 <big.json 2>push.err || fail "a 10 MiB push failed: $(cat push.err)"
zmesh pull large --count 1 --timeout 30000 >pulled.json 2>pull.err ||
    fail "pulling the 10 MiB message failed: $(cat pull.err)"
cmp -s big.json pulled.json || fail "the 10 MiB pipeline message changed on the way"
echo "stream: 10 MiB message through a pipeline unchanged"

set +e
zmesh call echo --timeout 30000 <huge.json >/dev/null 2>huge.err
rc=$?
zmesh push large --timeout 30000 <huge.json 2>huge-push.err
push_rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "over the limit of $ZMESH_MAX_BODY" huge.err ||
    fail "a 20 MiB call: exit $rc, $(cat huge.err)"
[ "$push_rc" -eq 2 ] && grep -q "over the limit" huge-push.err ||
    fail "a 20 MiB push: exit $push_rc, $(cat huge-push.err)"
[ "$(counter rejected_too_big)" -eq 0 ] || fail "the broker saw a message too big"
echo "stream: 20 MiB refused by the sender: $(cut -c1-150 huge.err)"
echo "stream: test_large_message passed"
