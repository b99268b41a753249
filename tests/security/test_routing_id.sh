#!/usr/bin/env bash
#  test_routing_id.sh - a routing id is not an identity. A Python worker
#  (key victim, may serve echo) registers with a fixed routing id; a peer
#  with another valid key (thief, may serve "other") connects with the same
#  routing id and sends a REPLY for the victim's ticket: the client gets the
#  victim's reply, never the thief's. Then the victim's connection closes
#  while it holds a call and a new thief connection takes the routing id
#  over and answers that call: the client does not get the forged reply, and
#  no thief ever receives a REQUEST. Last, a client leaves while its call is
#  held and a thief takes its routing id: the answer does not reach it.
#  Usage: test_routing_id.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2; exit 2; }
broker_bin=$1 worker_bin=$2 zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

keygen broker
keygen admin --admin
keygen victim --serve echo
keygen thief --serve other --call '*'
keygen client --call echo
start_broker --grace-ms 300

"$python" "$zpeer" theft --endpoint "$endpoint" --server-key "$certs/broker.key" \
    --victim "$certs/victim.key_secret" --thief "$certs/thief.key_secret" \
    --client "$certs/client.key_secret" || fail "the thief got traffic or answered for the victim"

snapshot after
[ "$(get after "len([w for w in s['workers'] if w['service'] == 'echo'])")" -eq 0 ] ||
    fail "an echo worker is still registered after the victim left"
[ "$(get after "s['counters']['replies']")" -ge 1 ] || fail "no reply counted"
ok "a stolen routing id gave the thief nothing: $(get after "s['counters']['sessions_replaced']") session(s) replaced"

#  A client's routing id taken over: its pending answer goes to no one.
"$python" "$zpeer" client-theft --endpoint "$endpoint" --server-key "$certs/broker.key" \
    --victim "$certs/victim.key_secret" --thief "$certs/thief.key_secret" \
    --client "$certs/client.key_secret" || fail "a peer that took a client's routing id got its reply"
ok "a client's routing id taken over gave the thief neither its reply nor its call"
