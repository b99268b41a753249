#  common.sh - sourced by the stream shell tests: a private temporary directory, a broker on an
#  ipc:// endpoint inside it, a files worker serving $root, memory readings from /proc, and a
#  cleanup that stops everything started and shows the logs on failure. Before sourcing, set
#  broker_bin, worker_bin and zmesh_bin.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-stream.XXXXXX")
endpoint="ipc://$tmp/broker.ipc"
root="$tmp/root"
mkdir -p "$root"
python=/usr/bin/python3
pids=()
#  ASan keeps freed memory in a quarantine (256 MiB by default) that would hide whether the
#  programs' own memory stays flat: keep it small. No effect on the plain build.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=4"

# shellcheck source=../procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../procs.sh"
suite=stream
trap_cleanup

zmesh() {
    "$zmesh_bin" --broker "$endpoint" "$@"
}

#  Starts a files worker on $root with extra flags "$@" and waits until it serves.
start_files_worker() {
    "$worker_bin" --builtin files --root "$root" --broker "$endpoint" "$@" \
        >>"$tmp/worker.log" 2>&1 &
    worker_pid=$!
    pids+=("$worker_pid")
    local deadline=$(($(now_ms) + 10000))
    until [ "$(status_value 'sum(w["service"] == "files" for w in s["workers"])')" -ge 1 ]; do
        running "$worker_pid" || fail "zmesh-worker exited early"
        (($(now_ms) < deadline)) || fail "the files worker did not register within 10 s"
        sleep 0.05
    done
}

#  Evaluates a Python expression over `zmesh status --json` (as s) and prints it.
status_value() {
    timeout 5 "$zmesh_bin" status --json --broker "$endpoint" |
        "$python" -c 'import json, sys; s = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

#  Resident memory of process $1 now, and its peak, in KiB (0 once it has gone).
rss_kib() {
    awk '/^VmRSS:/ {print $2; found=1} END {if (!found) print 0}' "/proc/$1/status" 2>/dev/null ||
        echo 0
}
hwm_kib() {
    awk '/^VmHWM:/ {print $2; found=1} END {if (!found) print 0}' "/proc/$1/status" 2>/dev/null ||
        echo 0
}

#  A file of $2 MiB at $1, of random bytes.
random_file() {
    head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$1"
}
