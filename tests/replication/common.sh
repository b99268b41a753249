#  common.sh - sourced by the replication shell tests: a private temporary directory, a broker
#  on an ipc:// endpoint inside it, kv replicas (`zmesh-worker --builtin kv --replicas N`)
#  started and killed by name, the writer and checker (kvtool.py) with a gate that lines the
#  tests' faults up with the writes, waits on `zmesh status --json` with deadlines, and a
#  cleanup that stops everything started and shows the logs on failure. Before sourcing, set
#  broker_bin, worker_bin and zmesh_bin.
#
#  ZMESH_REPL_SCALE (default 1) divides the write counts, for slow builds; the sanitizer
#  builds' ctest sets none, the counts below hold there too.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-repl.XXXXXX")
endpoint="ipc://$tmp/broker.ipc"
python=/usr/bin/python3
kvtool="$python $(dirname "${BASH_SOURCE[0]}")/kvtool.py"
scale=${ZMESH_REPL_SCALE:-1}
pids=()
declare -A replica_pid=()
#  A replica that misses 4 heartbeats of 250 ms is lost: a killed one leaves the table within
#  about a second, and one that loses the broker looks for the new one as soon.
beat_flags=(--heartbeat-ms 250 --liveness 4)

# shellcheck source=../procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../procs.sh"
suite=replication
trap_cleanup

[ -x "$python" ] || fail "$python not found"

#  finish NAME: stops everything, then fails if a sanitizer reported anything in a log (the
#  processes stopped with SIGTERM run their leak check then); prints NAME passed.
finish() {
    stop_pids
    pids=()
    if grep -l -E 'Sanitizer|runtime error:' "$tmp"/*.log >/dev/null 2>&1; then
        grep -h -A 12 -E 'Sanitizer|runtime error:' "$tmp"/*.log >&2
        fail "a sanitizer reported an error"
    fi
    echo "replication: $1 passed"
}

#  start_replica NAME FLAG...: a kv replica called NAME (its log is NAME.log), connected to
#  the broker, with the given flags (--replicas N, --data-dir DIR, ...). Does not wait.
start_replica() {
    local name=$1
    shift
    "$worker_bin" --builtin kv --broker "$endpoint" "${beat_flags[@]}" "$@" \
        >>"$tmp/$name.log" 2>&1 &
    replica_pid[$name]=$!
    pids+=("$!")
}

#  start_member NAME [FLAG...]: a replica NAME of kv as every test runs it, one of three
#  (--replicas 3), with the FLAGs; its state is in memory unless they give --data-dir.
#  Does not wait.
start_member() {
    start_replica "$1" --replicas 3 "${@:2}"
}

#  start_set [STARTER]: the broker, then replicas r1, r2 and r3, each started by
#  `STARTER NAME` (default start_member), and waits until the three are current and level.
start_set() {
    local starter=${1:-start_member} name
    start_broker
    for name in r1 r2 r3; do
        "$starter" "$name"
    done
    wait_settled 3
}

#  kill_replica NAME: SIGKILL, and reaps it.
kill_replica() {
    kill -KILL "${replica_pid[$1]}" 2>/dev/null || true
    wait "${replica_pid[$1]}" 2>/dev/null || true
}

#  stop_replica NAME: SIGTERM, waits for it to end (10 s: ASan's leak check).
stop_replica() {
    local rc=0
    kill -TERM "${replica_pid[$1]}" 2>/dev/null || true
    wait_ended "${replica_pid[$1]}" 10000 || fail "replica $1 did not stop on SIGTERM"
    wait "${replica_pid[$1]}" 2>/dev/null || rc=$?
    [ "$rc" -eq 0 ] || fail "replica $1 exited with status $rc on SIGTERM"
}

#  Evaluates a Python expression over `zmesh status --json` (as s) with r bound to the
#  replicated service kv's entry (None if absent) and prints it.
status_value() {
    timeout 5 "$zmesh_bin" status --json --broker "$endpoint" |
        "$python" -c '
import json, sys
s = json.load(sys.stdin)
r = next((e for e in s.get("replicated", []) if e["service"] == "kv"), None)
print(eval(sys.argv[1]))' "$1"
}

#  One line on the replica set: epoch, seq, committed, each member's state and seq.
members_line() {
    status_value '"epoch %d seq %d committed %d, members: %s" % (r["epoch"], r["seq"],
        r["committed"], ", ".join("%s %s seq %d lag %d" % (m["id"][-6:], m["state"], m["seq"],
        m["lag"]) for m in r["members"]))'
}

#  wait_status TEST MS WHY: waits up to MS ms until the Python expression TEST over the status
#  (as status_value binds it) is True; else fails with WHY and the replica set's members.
wait_status() {
    local deadline=$(($(now_ms) + $2))
    until [ "$(status_value "$1" 2>/dev/null)" = True ]; do
        (($(now_ms) < deadline)) || fail "$3: $(members_line 2>&1)"
        sleep 0.05
    done
}

#  wait_settled COUNT [MS]: waits until kv has exactly COUNT members, all current with lag 0
#  (everything sequenced is applied everywhere), for up to MS ms (default 30000).
wait_settled() {
    wait_status 'r is not None and len(r["members"]) == '"$1"' and all(m["state"] == "current"
        and m["lag"] == 0 for m in r["members"])' "${2:-30000}" \
        "kv did not settle with $1 current members"
}

#  wait_current COUNT [MS]: waits until kv has at least COUNT current members (writes may go
#  on, so lag is not asked).
wait_current() {
    wait_status 'r is not None and sum(m["state"] == "current" for m in r["members"]) >= '"$1" \
        "${2:-30000}" "kv did not get $1 current members"
}

#  The members' ids, sorted, on one line.
member_ids() {
    status_value '" ".join(sorted(m["id"] for m in r["members"]))'
}

#  wait_replaced COUNT OLD-IDS [MS]: waits until kv has exactly COUNT members, all current,
#  and its member ids are no longer OLD-IDS (from member_ids): a killed member has left and
#  its restarted process has caught up. Writes may go on.
wait_replaced() {
    wait_status 'r is not None and len(r["members"]) == '"$1"' and all(m["state"] == "current"
        for m in r["members"]) and " ".join(sorted(m["id"] for m in r["members"])) != "'"$2"'"' \
        "${3:-30000}" "the killed replica was not replaced by a current one"
}

#  The writer: start_writer NAME ARG... runs `kvtool.py write` in the background with its
#  acknowledged writes in NAME.acked, its progress in NAME.progress, held by NAME.gate (which
#  starts at 0: set_gate opens it).
start_writer() {
    local name=$1
    shift
    echo 0 >"$tmp/$name.gate"
    $kvtool write "$endpoint" --acked "$tmp/$name.acked" --progress "$tmp/$name.progress" \
        --gate "$tmp/$name.gate" "$@" >"$tmp/$name.out" 2>"$tmp/$name.log" &
    writer_pid=$!
    pids+=("$writer_pid")
}

#  set_gate NAME N: lets writer NAME start N writes in all.
set_gate() {
    echo "$2" >"$tmp/$1.gate.tmp"
    mv "$tmp/$1.gate.tmp" "$tmp/$1.gate"
}

acked_so_far() {
    cat "$tmp/$1.progress" 2>/dev/null || echo 0
}

#  wait_acked NAME N [MS]: waits until writer NAME has N writes acknowledged.
wait_acked() {
    local deadline=$(($(now_ms) + ${3:-60000}))
    until [ "$(acked_so_far "$1")" -ge "$2" ]; do
        running "$writer_pid" || fail "writer $1 ended early: $(cat "$tmp/$1.log")"
        (($(now_ms) < deadline)) ||
            fail "writer $1 has $(acked_so_far "$1") of $2 writes acknowledged: $(members_line 2>&1)"
        sleep 0.02
    done
}

#  finish_writer NAME: waits for writer NAME to end well and shows its figures.
finish_writer() {
    local rc=0
    wait "$writer_pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "writer $1 failed: $(cat "$tmp/$1.log")"
    cat "$tmp/$1.out"
}

#  check_state COUNT ACKED-FILE...: with the writers done, waits until the COUNT members are
#  current and level, reads every acknowledged write back (kvtool.py check --exact: the files
#  are the whole state; with no file only the replicas' digests are compared), and checks
#  that the replicas answered the quorum reads alike.
check_state() {
    local count=$1 exact=--exact
    shift
    if [ $# -eq 0 ]; then
        : >"$tmp/none.acked"
        set -- "$tmp/none.acked"
        exact=
    fi
    wait_settled "$count"
    local divergence
    divergence=$(counter replica_divergence)
    $kvtool check "$endpoint" $exact --digest-reads $((4 * count)) --acked "$@" ||
        fail "the replicas' state does not match the acknowledged writes"
    wait_settled "$count"
    echo "replication: $(members_line)"
    [ "$(counter replica_divergence)" -eq "$divergence" ] ||
        fail "the replicas answered a quorum read differently (replica_divergence)"
    [ "$divergence" -eq 0 ] || fail "replica_divergence is $divergence"
}
