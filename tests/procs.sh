#  procs.sh - sourced by the shell tests' common.sh files: the clock in
#  milliseconds, waiting with a deadline for a process to end, stopping
#  what a test started, and showing its logs on failure; and for the suites
#  that run one broker on an ipc:// endpoint (stream, pipeline, replication)
#  their fail, cleanup trap, broker start and counter reading. Those read
#  the caller's suite (the name fail prints), tmp (its private directory),
#  endpoint, pids, broker_bin and zmesh_bin; a suite may define its own
#  after sourcing this file.

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

#  True while process $1 runs (a zombie does not).
running() {
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || true
    [ -n "$state" ] && [ "$state" != Z ]
}

#  Waits up to $2 ms for process $1 to end; false if it still runs.
wait_ended() {
    local deadline=$(($(now_ms) + $2))
    while running "$1"; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.05
    done
}

#  Stops every process in the caller's pids array: TERM to all, then for
#  each a wait of up to 10 s (ASan's leak check at exit takes time) before
#  KILL, and reaps it.
stop_pids() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait_ended "$pid" 10000 || kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

#  show_logs LINES FILE...: the last LINES lines of each non-empty FILE, on
#  stderr, each under its name (what a failed test shows).
show_logs() {
    local lines=$1 log
    shift
    for log in "$@"; do
        [ -s "$log" ] || continue
        echo "---- $(basename "$log") (tail)" >&2
        tail -n "$lines" "$log" >&2
    done
}

fail() {
    echo "$suite: FAIL: $*" >&2
    exit 1
}

#  What cleanup shows of the logs when the test failed.
show_failure_logs() {
    show_logs 30 "$tmp"/*.log
}

#  The EXIT trap: stops what the test started; if it failed, shows the
#  broker's status first (`zmesh status`, with the flags in failure_status
#  if set) and the logs after; removes the directory; exits with the test's
#  status.
cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -n "${zmesh_bin:-}" ]; then
        echo "---- zmesh status${failure_status:+ $failure_status} at the failure" >&2
        timeout 5 "$zmesh_bin" status ${failure_status:-} --broker "$endpoint" >&2 2>/dev/null ||
            true
    fi
    stop_pids
    if [ "$rc" -ne 0 ]; then
        show_failure_logs
    fi
    rm -rf "$tmp"
    exit "$rc"
}

#  Runs cleanup when the test ends, however it ends.
trap_cleanup() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

#  Starts the broker on $endpoint (and push_endpoint, if set) with extra
#  flags "$@", its output added to $tmp/broker.log, and waits until it
#  answers zmesh status. broker_pid is its pid.
start_broker() {
    "$broker_bin" --bind "$endpoint" --push-bind "${push_endpoint:-none}" "$@" \
        >>"$tmp/broker.log" 2>&1 &
    broker_pid=$!
    pids+=("$broker_pid")
    local deadline=$(($(now_ms) + 10000))
    until timeout 5 "$zmesh_bin" status --broker "$endpoint" >/dev/null 2>&1; do
        running "$broker_pid" || fail "zmesh-broker exited early"
        (($(now_ms) < deadline)) || fail "the broker did not answer zmesh status within 10 s"
        sleep 0.05
    done
}

#  counter NAME: the broker's counter NAME, through the suite's status_value.
counter() {
    status_value "s['counters']['$1']"
}
