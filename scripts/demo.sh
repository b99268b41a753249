#!/usr/bin/env bash
#  The main job, on the built-in defaults: installs what is missing, builds,
#  starts a broker on tcp://127.0.0.1:5555 with two echo workers and an --exec
#  worker, makes RPC calls, pushes 1000 numbers through a pipeline and checks
#  that they all come out in order, runs README.md's three-stage word count and
#  checks it against the same count done directly, shows `zmesh status`, and
#  stops everything cleanly.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/scripts/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
bin_broker=$build/broker/zmesh-broker
bin_worker=$build/workers/zmesh-worker
bin_zmesh=$build/clients/zmesh
#  README.md's pipeline example calls the programs by name.
export PATH="$build/broker:$build/workers:$build/clients:$PATH"
cd "$root"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-demo.XXXXXX")

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
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
step "a pipeline: seq 1 1000 | zmesh push numbers; zmesh pull numbers --count 1000"
seq 1 1000 | "$bin_zmesh" push numbers --timeout 15000
"$bin_zmesh" pull numbers --count 1000 --timeout 15000 >"$tmp/numbers.out"
if ! seq 1 1000 | cmp -s - "$tmp/numbers.out"; then
    echo "demo: zmesh pull did not print 1 to 1000 in order" >&2
    exit 1
fi
echo "pulled $(wc -l <"$tmp/numbers.out") messages, 1 to 1000 in order"

step "a three-stage pipeline: word count over 2000 lines of text (README.md)"
zmesh-worker --pipeline text --output words --threads 2 \
    --exec '/usr/bin/python3 -u examples/wordcount/split_words.py' 2>"$tmp/stage1.log" &
pids+=($!)
zmesh-worker --pipeline words --output counts \
    --exec '/usr/bin/python3 -u examples/wordcount/count_words.py' 2>"$tmp/stage2.log" &
pids+=($!)
/usr/bin/python3 examples/wordcount/make_text.py 2000 >"$tmp/text.txt"
/usr/bin/python3 examples/wordcount/to_json.py <"$tmp/text.txt" \
    | zmesh push text --timeout 30000 &
producer=$!
pids+=($producer)
if ! zmesh pull counts --count 2000 --timeout 30000 \
        | awk -f examples/wordcount/merge_counts.awk | LC_ALL=C sort >"$tmp/mesh.txt"; then
    echo "demo: the word count did not come out of the pipeline" >&2
    tail -n 5 "$tmp/stage1.log" "$tmp/stage2.log" >&2
    exit 1
fi
if ! wait "$producer"; then
    echo "demo: zmesh push text failed" >&2
    exit 1
fi
tr -cs 'A-Za-z' '\n' <"$tmp/text.txt" | tr 'A-Z' 'a-z' | grep . | LC_ALL=C sort | uniq -c \
    | awk '{print $2, $1}' >"$tmp/direct.txt"
if ! diff "$tmp/mesh.txt" "$tmp/direct.txt" >/dev/null; then
    echo "demo: the pipeline's word count differs from the direct one" >&2
    exit 1
fi
echo "the pipeline counted $(awk '{n += $2} END {print n}' "$tmp/mesh.txt") words," \
    "$(wc -l <"$tmp/mesh.txt") distinct, the same as tr | sort | uniq -c; the top five:"
sort -k2,2nr -k1,1 "$tmp/mesh.txt" >"$tmp/top.txt"
head -n 5 "$tmp/top.txt"

step "zmesh status"
"$bin_zmesh" status
step "stopping"
