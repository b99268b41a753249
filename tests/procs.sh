#  procs.sh - sourced by the shell tests' common.sh files: the clock in
#  milliseconds, and waiting with a deadline for a process to end.

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
