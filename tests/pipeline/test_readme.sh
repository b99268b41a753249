#!/usr/bin/env bash
#  test_readme.sh - runs README.md's three-stage shell pipeline (the word
#  count) as the README writes it, against a private broker, and checks its
#  result: the README's own comparison must print "same word count", and the
#  counts it produced must equal the same count done here directly. The
#  commands are read from README.md (the ```sh block after the line
#  "<!-- example: wordcount -->", or else the first ```sh block under the
#  heading "### A three-stage shell pipeline..."), so the doc and the test
#  cannot drift apart. One line is left out: a last `rm -r "$dir"`, so that
#  the test can read the example's files (they go with the test's directory).
#  Usage: test_readme.sh ZMESH-BROKER ZMESH-WORKER ZMESH README.md
set -euo pipefail

if [ $# -ne 4 ]; then
    echo "usage: $0 ZMESH-BROKER ZMESH-WORKER ZMESH README.md" >&2
    exit 2
fi
broker_bin=$1
worker_bin=$2
zmesh_bin=$3
readme=$4
root=$(cd "$(dirname "$readme")" && pwd)
run_s=${ZMESH_README_RUN_S:-100}     #  the whole example; ctest's limit is above it
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

[ -x "$python" ] || fail "$python not found"
for bin in "$broker_bin" "$worker_bin" "$zmesh_bin"; do
    [ -x "$bin" ] || fail "not an executable: $bin"
done

#  Writes the example's commands to $1.
extract() {
    awk '
        $0 == "<!-- example: wordcount -->" { tagged = 1; state = 1; next }
        !tagged && /^### A three-stage shell pipeline/ { state = 1; next }
        state == 1 && tagged && $0 != "```sh" { exit 1 }
        state == 1 && $0 == "```sh" { state = 2; next }
        state == 1 && /^##/ { exit 1 }
        state == 2 && $0 == "```" { found = 1; exit }
        state == 2 { if (have) print held; held = $0; have = 1 }
        END { if (have && held != "rm -r \"$dir\"") print held; exit !found }
    ' "$readme" >"$1" || fail "no word-count example in $readme"
    [ -s "$1" ] || fail "the word-count example in $readme is empty"
}

extract "$tmp/example.sh"
start_broker

#  The programs as the README calls them, on PATH; every program talks to
#  our broker; the example's mktemp -d lands in our directory.
mkdir "$tmp/bin" "$tmp/work"
ln -s "$(cd "$(dirname "$zmesh_bin")" && pwd)/$(basename "$zmesh_bin")" "$tmp/bin/zmesh"
ln -s "$(cd "$(dirname "$worker_bin")" && pwd)/$(basename "$worker_bin")" "$tmp/bin/zmesh-worker"
ln -s "$(cd "$(dirname "$broker_bin")" && pwd)/$(basename "$broker_bin")" "$tmp/bin/zmesh-broker"

#  In a session of its own, so that whatever it leaves running (its stages,
#  if it fails half-way) can be stopped as one group.
started=$(now_ms)
(
    cd "$root"
    export PATH="$tmp/bin:$PATH" ZMESH_BROKER="$endpoint" TMPDIR="$tmp/work"
    exec setsid timeout "$run_s" bash -euo pipefail "$tmp/example.sh"
) >"$tmp/example.out" 2>"$tmp/example.log" &
example_pid=$!
pids+=("$example_pid")
rc=0
wait "$example_pid" || rc=$?
echo "pipeline: the README example ran for $(($(now_ms) - started)) ms, status $rc"
#  Its stages were sent SIGTERM by the example itself; wait for the group.
deadline=$(($(now_ms) + 15000))
while kill -0 -- "-$example_pid" 2>/dev/null; do
    if (($(now_ms) >= deadline)); then
        kill -KILL -- "-$example_pid" 2>/dev/null || true
        fail "processes of the README example still ran 15 s after it ended"
    fi
    sleep 0.05
done
[ "$rc" -eq 0 ] || fail "the README example exited with status $rc: $(cat "$tmp/example.out")"
grep -qx "same word count" "$tmp/example.out" ||
    fail "the README example did not print 'same word count': $(cat "$tmp/example.out")"

#  The example's own directory holds the text and the mesh's counts.
dirs=("$tmp"/work/*/)
[ "${#dirs[@]}" -eq 1 ] && [ -f "${dirs[0]}mesh.txt" ] && [ -f "${dirs[0]}text.txt" ] ||
    fail "the README example left no single directory with text.txt and mesh.txt:" \
        "$(ls -lR "$tmp/work")"
for log in "${dirs[0]}"stage*.log; do
    cp "$log" "$tmp/readme-$(basename "$log")"
    if grep -q "Sanitizer" "$log"; then
        fail "a stage of the README example reported a sanitizer error ($(basename "$log"))"
    fi
done

direct='
import collections, re, sys
counts = collections.Counter()
with open(sys.argv[1]) as text:
    for line in text:
        counts.update(re.findall(r"[a-z]+", line.lower()))
for word in sorted(counts):
    print(word, counts[word])
'
"$python" -c "$direct" "${dirs[0]}text.txt" >"$tmp/direct.txt"
[ -s "$tmp/direct.txt" ] || fail "the example's text has no words"
diff "$tmp/direct.txt" "${dirs[0]}mesh.txt" >&2 ||
    fail "the mesh's word count differs from the direct count (diff above: direct, mesh)"
echo "pipeline: README word count ok ($(wc -l <"$tmp/direct.txt") words," \
    "$(wc -l <"${dirs[0]}text.txt") lines)"
check_pipeline_settled text "$(wc -l <"${dirs[0]}text.txt")"
check_pipeline_settled words "$(wc -l <"${dirs[0]}text.txt")"
check_pipeline_settled counts "$(wc -l <"${dirs[0]}text.txt")"
