#!/usr/bin/env bash
#  test_readme.sh - runs README.md's CURVE example (the ```sh block after
#  "<!-- example: curve -->") as the README writes it, in an empty directory
#  with the programs on PATH, and checks what it promises: the echo call
#  prints {"x":1}, the kv call is denied (exit 6, "denied: key 'alice' may
#  not call 'kv'"), and zmesh status with the admin key lists the echo
#  worker. The example binds the default endpoints; here ZMESH_BIND,
#  ZMESH_PUSH_BIND and ZMESH_BROKER point every program at ipc:// endpoints in
#  the test's directory instead, so that it cannot collide with anything.
#  Usage: test_readme.sh ZMESH-BROKER ZMESH-WORKER ZMESH README.md
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH README.md" >&2; exit 2; }
broker_bin=$1 worker_bin=$2 zmesh_bin=$3 readme=$4
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

awk '
    $0 == "<!-- example: curve -->" { state = 1; next }
    state == 1 && $0 != "```sh" { exit 1 }
    state == 1 { state = 2; next }
    state == 2 && $0 == "```" { found = 1; exit }
    state == 2 { print }
    END { exit !found }
' "$readme" >"$tmp/example.sh" || fail "no \`\`\`sh block right after <!-- example: curve --> in $readme"
grep -q 'zmesh keygen' "$tmp/example.sh" || fail "the CURVE example makes no keys"

mkdir "$tmp/bin" "$tmp/work"
for pair in "zmesh:$zmesh_bin" "zmesh-worker:$worker_bin" "zmesh-broker:$broker_bin"; do
    ln -s "$(cd "$(dirname "${pair#*:}")" && pwd)/$(basename "${pair#*:}")" "$tmp/bin/${pair%%:*}"
done

#  In a session of its own: what it leaves running (broker, worker) is
#  stopped as one group afterwards.
(
    cd "$tmp/work"
    export PATH="$tmp/bin:$PATH" ZMESH_BIND="ipc://$tmp/broker.ipc" \
        ZMESH_PUSH_BIND="ipc://$tmp/push.ipc" ZMESH_BROKER="ipc://$tmp/broker.ipc"
    exec setsid bash "$tmp/example.sh" >"$tmp/example.out" 2>"$tmp/example.log"
) &
example_pid=$!
wait_ended "$example_pid" 60000 || fail "the example did not finish within 60 s"
rc=0
wait "$example_pid" || rc=$?
group_of_example() {
    pgrep -s "$example_pid" >/dev/null 2>&1
}
stop_group() {
    pkill -TERM -s "$example_pid" 2>/dev/null || true
    local deadline=$(($(now_ms) + 10000))
    while group_of_example; do
        (($(now_ms) < deadline)) || { pkill -KILL -s "$example_pid" 2>/dev/null || true; break; }
        sleep 0.05
    done
}
stop_group

grep -qx '{"x":1}' "$tmp/example.out" || fail "the echo call did not print {\"x\":1}: $(cat "$tmp/example.out")"
grep -q "denied: key 'alice' may not call 'kv'" "$tmp/example.log" ||
    fail "the kv call was not denied as the README says: $(cat "$tmp/example.log")"
grep -q 'echo' <(grep -v '^{"x":1}$' "$tmp/example.out") ||
    fail "zmesh status with the admin key did not list the echo service: $(cat "$tmp/example.out")"
[ "$rc" -eq 0 ] || fail "the example's last command (zmesh status) exited $rc"
[ "$(stat -c %a "$tmp/work/alice.key_secret")" = 600 ] || fail "alice.key_secret is not 0600"
ok "README's CURVE example: echo works, kv denied, zmesh status with the admin key"
