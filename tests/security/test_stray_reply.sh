#!/usr/bin/env bash
#  test_stray_reply.sh - a worker that replies with another worker's ticket.
#  Python worker A (key a, serves echo) holds a call; worker B (key b, serves
#  "other") sends a REPLY with A's ticket. The broker drops it (the ticket is
#  not B's), counts it in dropped_late_reply and logs it; the client gets A's
#  reply, and B is not disconnected for it.
#  Usage: test_stray_reply.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2; exit 2; }
broker_bin=$1 worker_bin=$2 zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

keygen broker
keygen admin --admin
keygen a --serve echo
keygen b --serve other
keygen client --call echo
start_broker
snapshot before

"$python" "$zpeer" stray --endpoint "$endpoint" --server-key "$certs/broker.key" \
    --worker-a "$certs/a.key_secret" --worker-b "$certs/b.key_secret" \
    --client "$certs/client.key_secret" || fail "B's reply for A's ticket was delivered"

snapshot after
dropped=$(($(get after "s['counters']['dropped_late_reply']") -
    $(get before "s['counters']['dropped_late_reply']")))
[ "$dropped" -eq 1 ] || fail "counters.dropped_late_reply rose by $dropped, expected 1"
#  Logged at the default level, naming the worker that holds the call.
grep -q "reply dropped: the call is another worker's" "$tmp/broker.log" ||
    fail "the broker did not log the stray reply"
ok "the stray reply was dropped, counted and logged: $(grep 'reply dropped' "$tmp/broker.log" | head -n 1)"
