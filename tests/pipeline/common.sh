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
suite=pipeline
#  A failed test shows the status as JSON, and the stages' logs too.
failure_status=--json
show_failure_logs() {
    show_logs 40 "$tmp"/*.log "$tmp"/work/*/*.log
}
trap_cleanup

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
