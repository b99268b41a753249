#!/usr/bin/env bash
#  The main job, on the built-in defaults: installs what is missing, builds,
#  starts a broker on tcp://127.0.0.1:5555 with two echo workers and an --exec
#  worker, makes RPC calls, shows `zmesh status`, and stops everything cleanly.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/scripts/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
bin_broker=$build/broker/zmesh-broker
bin_worker=$build/workers/zmesh-worker
bin_zmesh=$build/clients/zmesh

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "starting zmesh-broker on ${ZMESH_BROKER:-tcp://127.0.0.1:5555}"
"$bin_broker" & pids+=($!)
step "starting two echo workers and an --exec worker (service 'upper')"
"$bin_worker" --service echo & pids+=($!)
"$bin_worker" --service echo --threads 2 & pids+=($!)
"$bin_worker" --service upper \
    --exec "/usr/bin/python3 -u -c 'import sys, json
for line in sys.stdin:
    print(json.dumps({k: str(v).upper() for k, v in json.loads(line).items()}))'" & pids+=($!)

#  Wait, with a deadline, until the workers are registered.
deadline=$((SECONDS + 15))
until "$bin_zmesh" status --json 2>/dev/null \
        | /usr/bin/python3 -c 'import json, sys
s = json.load(sys.stdin)
names = [w["service"] for w in s["workers"]]
sys.exit(0 if names.count("echo") == 2 and "upper" in names else 1)' 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
        echo "demo: workers did not register within 15 s" >&2
        exit 1
    fi
    sleep 0.1
done

step 'zmesh call echo '\''{"x":[1,2,3]}'\'''
"$bin_zmesh" call echo '{"x":[1,2,3]}'
step "three calls from stdin, one JSON value per line"
printf '%s\n' '{"n":1}' '"two"' '[3]' | "$bin_zmesh" call echo
step 'zmesh call upper '\''{"name":"zmesh"}'\'''
"$bin_zmesh" call upper '{"name":"zmesh"}'
step "a service nobody offers (fails after the broker's 2 s grace)"
if "$bin_zmesh" call nosuch '{}'; then
    echo "demo: expected an error" >&2
    exit 1
else
    echo "(exit code $?)"
fi
step "zmesh status"
"$bin_zmesh" status
step "stopping"
