#  procs.sh - sourced by the shell tests' common.sh files: the clock in
#  milliseconds, waiting with a deadline for a process to end, stopping
#  what a test started, and showing its logs on failure.

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
