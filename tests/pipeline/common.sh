#  common.sh - sourced by the pipeline shell tests: a private temporary
#  directory, a broker on ipc:// endpoints inside it (ROUTER and push
#  endpoint, so tests never fight over ports), waiting with deadlines, and a
#  cleanup that stops everything started and shows the logs on failure.
#  Before sourcing, set broker_bin and zmesh_bin.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-pipe.XXXXXX")
endpoint="ipc://$tmp/broker.ipc"
push_endpoint="ipc://$tmp/push.ipc"
python=/usr/bin/python3
pids=()

# shellcheck source=../procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../procs.sh"

fail() {
    echo "pipeline: FAIL: $*" >&2
    exit 1
}

#  Stops what the test started (TERM, then KILL after 10 s: ASan's leak
#  check takes time); if the test failed, shows the broker's status first and
#  the logs after; removes the directory.
cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -n "${zmesh_bin:-}" ]; then
        echo "---- zmesh status --json at the failure" >&2
        timeout 5 "$zmesh_bin" status --json --broker "$endpoint" >&2 2>/dev/null || true
    fi
    stop_pids
    if [ "$rc" -ne 0 ]; then
        show_logs 40 "$tmp"/*.log "$tmp"/work/*/*.log
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

#  Starts the broker with extra flags "$@" and waits until it answers.
start_broker() {
    "$broker_bin" --bind "$endpoint" --push-bind "$push_endpoint" "$@" >"$tmp/broker.log" 2>&1 &
    pids+=($!)
    local deadline=$(($(now_ms) + 10000))
    until timeout 5 "$zmesh_bin" status --broker "$endpoint" >/dev/null 2>&1; do
        running "${pids[-1]}" || fail "zmesh-broker exited early"
        (($(now_ms) < deadline)) || fail "the broker did not answer zmesh status within 10 s"
        sleep 0.05
    done
}

#  Checks, from `zmesh status --json`, that pipeline $1 is empty, that its
#  consumers acknowledged at least $2 messages, and that nothing was dropped.
check_pipeline_settled() {
    local check='
import json, sys
status = json.load(sys.stdin)
pipe = status.get("pipelines", {}).get(sys.argv[1])
if pipe is None:
    sys.exit("no pipeline %s in the status" % sys.argv[1])
problems = []
if pipe["queued"] != 0 or pipe["in_flight"] != 0:
    problems.append("not empty")
if pipe["acked"] < int(sys.argv[2]):
    problems.append("acked %d < %s" % (pipe["acked"], sys.argv[2]))
if any(pipe.get("drops", {}).values()):
    problems.append("drops")
sys.exit("; ".join(problems) + ": " + json.dumps(pipe) if problems else 0)
'
    timeout 5 "$zmesh_bin" status --json --broker "$endpoint" >"$tmp/status.json" ||
        fail "zmesh status --json failed"
    "$python" -c "$check" "$1" "$2" <"$tmp/status.json" || fail "pipeline $1 not settled"
}
