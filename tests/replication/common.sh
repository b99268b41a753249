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

fail() {
    echo "replication: FAIL: $*" >&2
    exit 1
}

cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -n "${zmesh_bin:-}" ]; then
        echo "---- zmesh status at the failure" >&2
        timeout 5 "$zmesh_bin" status --broker "$endpoint" >&2 2>/dev/null || true
    fi
    stop_pids
    if [ "$rc" -ne 0 ]; then
        show_logs 30 "$tmp"/*.log
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

#  Starts the broker with extra flags "$@" and waits until it answers.
start_broker() {
    "$broker_bin" --bind "$endpoint" --push-bind none "$@" >>"$tmp/broker.log" 2>&1 &
    broker_pid=$!
    pids+=("$broker_pid")
    local deadline=$(($(now_ms) + 10000))
    until timeout 5 "$zmesh_bin" status --broker "$endpoint" >/dev/null 2>&1; do
        running "$broker_pid" || fail "zmesh-broker exited early"
        (($(now_ms) < deadline)) || fail "the broker did not answer zmesh status within 10 s"
        sleep 0.05
    done
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

counter() {
    status_value "s['counters']['$1']"
}

#  One line on the replica set: epoch, seq, committed, each member's state and seq.
members_line() {
    status_value '"epoch %d seq %d committed %d, members: %s" % (r["epoch"], r["seq"],
        r["committed"], ", ".join("%s %s seq %d lag %d" % (m["id"][-6:], m["state"], m["seq"],
        m["lag"]) for m in r["members"]))'
}

#  wait_settled COUNT [MS]: waits until kv has exactly COUNT members, all current with lag 0
#  (everything sequenced is applied everywhere), for up to MS ms (default 30000).
wait_settled() {
    local deadline=$(($(now_ms) + ${2:-30000}))
    local test='r is not None and len(r["members"]) == '"$1"' and all(m["state"] == "current"
        and m["lag"] == 0 for m in r["members"])'
    until [ "$(status_value "$test" 2>/dev/null)" = True ]; do
        (($(now_ms) < deadline)) ||
            fail "kv did not settle with $1 current members: $(members_line 2>&1)"
        sleep 0.05
    done
}

#  wait_current COUNT [MS]: waits until kv has at least COUNT current members (writes may go
#  on, so lag is not asked).
wait_current() {
    local deadline=$(($(now_ms) + ${2:-30000}))
    local test='r is not None and sum(m["state"] == "current" for m in r["members"]) >= '"$1"
    until [ "$(status_value "$test" 2>/dev/null)" = True ]; do
        (($(now_ms) < deadline)) ||
            fail "kv did not get $1 current members: $(members_line 2>&1)"
        sleep 0.05
    done
}

#  The members' ids, sorted, on one line.
member_ids() {
    status_value '" ".join(sorted(m["id"] for m in r["members"]))'
}

#  wait_replaced COUNT OLD-IDS [MS]: waits until kv has exactly COUNT members, all current,
#  and its member ids are no longer OLD-IDS (from member_ids): a killed member has left and
#  its restarted process has caught up. Writes may go on.
wait_replaced() {
    local deadline=$(($(now_ms) + ${3:-30000}))
    local test='r is not None and len(r["members"]) == '"$1"' and all(m["state"] == "current"
        for m in r["members"]) and " ".join(sorted(m["id"] for m in r["members"])) != "'"$2"'"'
    until [ "$(status_value "$test" 2>/dev/null)" = True ]; do
        (($(now_ms) < deadline)) ||
            fail "the killed replica was not replaced by a current one: $(members_line 2>&1)"
        sleep 0.05
    done
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
