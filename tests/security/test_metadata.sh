#!/usr/bin/env bash
#  test_metadata.sh - metadata a peer sends cannot change its rights. A pyzmq
#  peer whose key may call echo only connects with ZMQ_METADATA claiming the
#  admin key as X-User-Id, and X-Admin, X-Serve, X-Call and X-Name. (libzmq
#  lets an application send only property names that start with "X-": it
#  refuses "User-Id" itself with EINVAL, which zpeer.py shows. So the claim
#  can only ever be X-User-Id, and the broker must read the User-Id that its
#  ZAP handler set.) echo works; zmesh.status, kv and READY kv are denied,
#  and the denials are counted under the peer's own key, not the admin's.
#  Usage: test_metadata.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2; exit 2; }
broker_bin=$1 worker_bin=$2 zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

keygen broker
keygen admin --admin
keygen echo-worker --serve echo
keygen meta --call echo
start_broker
start_worker echo-worker echo
snapshot before

# shellcheck disable=SC2046
"$python" "$zpeer" metadata --endpoint "$endpoint" --claim "$certs/admin.key" \
    $(zpeer_curve meta) || fail "the peer with claimed metadata got more than its key allows"

snapshot after
delta() {
    echo $(($(get after "$1") - $(get before "$1")))
}
[ "$(delta "s['security']['key_stats']['meta']['denied']")" -eq 3 ] ||
    fail "key meta: $(delta "s['security']['key_stats']['meta']['denied']") denials, expected 3"
[ "$(delta "s['security']['key_stats']['meta']['messages']")" -eq 4 ] ||
    fail "key meta: $(delta "s['security']['key_stats']['meta']['messages']") messages, expected 4"
[ "$(delta "s['security']['key_stats']['admin']['messages']")" -eq 1 ] ||
    fail "the admin key got messages it did not send (only our status call is its)"
[ "$(get after "s['security']['key_stats']['admin']['denied']")" -eq 0 ] ||
    fail "denials were counted under the claimed admin key"
[ "$(get after "len([w for w in s['workers'] if w['service'] == 'kv'])")" -eq 0 ] ||
    fail "a kv worker is registered"
ok "claimed metadata changed nothing: 3 denials and 4 messages under the peer's own key"
