#!/usr/bin/env bash
#  test_secret_mode.sh - a secret key file that group or others may read is
#  refused. `zmesh keygen` writes the secret file 0600. The same secret with
#  mode 0644 (and 0640): zmesh-broker, zmesh-worker and zmesh call refuse to
#  start, quickly, and the message names the file and says why; with 0600
#  again all three work.
#  Usage: test_secret_mode.sh ZMESH-BROKER ZMESH-WORKER ZMESH
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH" >&2; exit 2; }
broker_bin=$1 worker_bin=$2 zmesh_bin=$3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

keygen broker
keygen admin --admin
keygen client --call echo
keygen echo-worker --serve echo
for name in broker admin client echo-worker; do
    mode=$(stat -c %a "$certs/$name.key_secret")
    [ "$mode" = 600 ] || fail "zmesh keygen wrote $name.key_secret with mode $mode, not 600"
done
ok "zmesh keygen writes secret files with mode 0600"

#  says_why WHAT FILE: the last run failed in time and named FILE and the reason.
says_why() {
    [ "$rc" -ne 124 ] || fail "$1: still running after 20 s"
    [ "$rc" -ne 0 ] || fail "$1: started with a secret file others may read"
    echo "$err" | grep -qF "$2" || fail "$1: the message does not name $2: $err"
    echo "$err" | grep -qiE 'mode|permission|group|others' ||
        fail "$1: the message does not say what is wrong with the file: $err"
}

for mode in 644 640; do
    chmod "$mode" "$certs/broker.key_secret"
    run timeout 20 "$broker_bin" --bind 'tcp://127.0.0.1:*' --push-bind none \
        --curve-secret "$certs/broker.key_secret" --curve-keys "$keys"
    says_why "zmesh-broker with a $mode secret" "$certs/broker.key_secret"
    [ "$rc" -eq 1 ] || fail "zmesh-broker with a $mode secret exited $rc, expected 1"
    ok "zmesh-broker refuses a $mode secret (exit 1): $err"
    run timeout 20 env ZMESH_CURVE_SECRET="$certs/broker.key_secret" ZMESH_CURVE_KEYS="$keys" \
        "$broker_bin" --bind 'tcp://127.0.0.1:*' --push-bind none
    says_why "zmesh-broker with a $mode secret from ZMESH_CURVE_SECRET" "$certs/broker.key_secret"
    chmod 600 "$certs/broker.key_secret"
done

start_broker
start_worker echo-worker echo
for mode in 644 640; do
    chmod "$mode" "$certs/echo-worker.key_secret" "$certs/client.key_secret"
    # shellcheck disable=SC2046
    run timeout 20 "$worker_bin" --service echo --broker "$endpoint" $(curve_of echo-worker)
    says_why "zmesh-worker with a $mode secret" "$certs/echo-worker.key_secret"
    ok "zmesh-worker refuses a $mode secret (exit $rc): $err"
    # shellcheck disable=SC2046
    run timeout 20 "$zmesh_bin" call echo '{}' --broker "$endpoint" $(curve_of client)
    says_why "zmesh call with a $mode secret" "$certs/client.key_secret"
    ok "zmesh call refuses a $mode secret (exit $rc): $err"
    run timeout 20 env ZMESH_CURVE_SECRET="$certs/client.key_secret" \
        ZMESH_BROKER_KEY="$certs/broker.key" "$zmesh_bin" call echo '{}' --broker "$endpoint"
    says_why "zmesh call with a $mode secret from ZMESH_CURVE_SECRET" "$certs/client.key_secret"
    chmod 600 "$certs/echo-worker.key_secret" "$certs/client.key_secret"
done

# shellcheck disable=SC2046
run "$zmesh_bin" call echo '{"back":600}' --timeout 5000 --broker "$endpoint" $(curve_of client)
expect_rc 0 "zmesh call once the secret is 0600 again"
ok "with mode 0600 again the call works"
