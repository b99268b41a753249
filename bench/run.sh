#!/usr/bin/env bash
#  bench/run.sh - builds zmesh and the benchmarks in Release, runs every zmesh
#  figure and its libzmq baseline BENCH_REPS times in the same invocation, and
#  prints one table (medians, ratios, min/median/max) and the targets.
#  Exits non-zero only when a benchmark fails to run; a missed target is not
#  a failure. Environment:
#    BENCH_BUILD_DIR  build directory (default build-bench, beside bench/)
#    BENCH_REPS       repetitions of each measurement (default 3)
#    BENCH_SECONDS    measuring time of each throughput/latency run (default 0.75)
#    BENCH_ONLY       a regular expression: run only the measurements it matches
#    BENCH_VERBOSE    set: show the brokers' logs
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BENCH_BUILD_DIR:-build-bench}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
reps="${BENCH_REPS:-3}"
seconds="${BENCH_SECONDS:-0.75}"
only="${BENCH_ONLY:-.}"

say() { printf '%s\n' "$*" >&2; }

say "bench: building in $build (Release)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$build.cmake.log" 2>&1 \
    || { cat "$build.cmake.log" >&2; exit 1; }
rm -f "$build.cmake.log"
cmake --build "$build" -j"$(nproc)" \
    --target zmesh-broker zmesh-cli bench_baseline bench_zmesh bench_broker bench_raw bench_repl \
    >/dev/null \
    || { say "bench: build failed"; exit 1; }
baseline="$build/bench/bench_baseline"
flow="$build/bench/bench_zmesh"
brokerfig="$build/bench/bench_broker"
raw="$build/bench/bench_raw"
repl="$build/bench/bench_repl"

declare -A values       #  "key.metric" -> space-separated values, one per repetition
failures=0
started=$SECONDS

#  measure KEY PROGRAM ARGS...: runs the program once and appends each
#  "NAME VALUE" line it prints to values[KEY.NAME].
measure() {
    local key="$1"
    shift
    [[ "$key" =~ $only ]] || return 0
    local out
    if ! out="$(timeout 120 "$@")"; then
        say "bench: FAILED $key: $*"
        failures=$((failures + 1))
        return 0
    fi
    local name value
    while read -r name value; do
        [ -n "$name" ] && values["$key.$name"]+="$value "
    done <<<"$out"
}

for rep in $(seq 1 "$reps"); do
    say "bench: repetition $rep of $reps ($((SECONDS - started)) s so far)"
    for size in 64 4096; do
        for sec in plain curve; do
            flag=""
            [ "$sec" = curve ] && flag="--curve"
            common=(--size "$size" --seconds "$seconds" $flag)
            tag="$size.$sec"
            measure "base.pushpull.$tag" "$baseline" pushpull "${common[@]}"
            measure "base.forwarder.$tag" "$baseline" forwarder "${common[@]}"
            measure "base.reqrep.$tag" "$baseline" reqrep "${common[@]}"
            measure "base.dealer.$tag" "$baseline" dealer "${common[@]}"
            measure "base.broker-async.$tag" "$baseline" broker-async "${common[@]}"
            measure "base.broker-sync.$tag" "$baseline" broker-sync "${common[@]}"
            for mode in queued accepted processed; do
                measure "zmesh.pipe-$mode.$tag" "$flow" "pipe-$mode" "${common[@]}"
            done
            measure "zmesh.rpc-async.$tag" "$flow" rpc-async "${common[@]}"
            measure "zmesh.rpc-sync.$tag" "$flow" rpc-sync "${common[@]}"
            if [ "$sec" = plain ]; then
                measure "zmesh.raw-async.$tag" "$raw" async "${common[@]}"
                measure "zmesh.raw-sync.$tag" "$raw" sync "${common[@]}"
                measure "zmesh.repl-write.$tag" "$repl" write "${common[@]}"
                measure "zmesh.repl-durable.$tag" "$repl" write-durable "${common[@]}"
            fi
        done
    done
    measure "zmesh.memory" "$brokerfig" memory
    measure "zmesh.idle" "$brokerfig" idle
    measure "zmesh.failover-kill" "$brokerfig" failover
    measure "zmesh.failover-stop" "$brokerfig" failover --stop
done

#  stats KEY: prints "min median max" of values[KEY], or nothing.
stats() {
    [ -n "$1" ] || return 0
    local list="${values[$1]:-}"
    [ -n "$list" ] || return 0
    tr ' ' '\n' <<<"$list" | grep -v '^$' | sort -g | awk '
        { v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
              printf "%s %s %s\n", v[1], m, v[NR] }'
}
median() { stats "$1" | awk '{ print $2 }'; }

fmt() { awk -v x="$1" 'BEGIN { if (x == "" || x == "-") print "-"; else if (x >= 100) printf "%.0f", x;
                              else printf "%.3g", x }'; }

#  ratio A B: A/B with two decimals, or "-".
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-";
                                           else printf "%.2f", a / b }'; }

rows=()
#  row FIGURE UNIT ZKEY BKEY BASELINE_NAME higher|lower: one table row. The
#  ratio is zmesh/baseline for rates (higher is better), baseline/zmesh for
#  times and sizes (so above 1 is always zmesh doing better).
row() {
    local figure="$1" unit="$2" zkey="$3" bkey="$4" bname="$5" better="$6"
    local z b r spread cpu
    z="$(median "$zkey")"
    b="$(median "$bkey")"
    [ -n "$z$b" ] || return 0
    if [ "$better" = higher ]; then r="$(ratio "$z" "$b")"; else r="$(ratio "$b" "$z")"; fi
    spread="$(stats "$zkey" | awk '{ printf "%s / %s / %s", $1, $2, $3 }')"
    cpu="$(fmt "$(median "${zkey%.*}.broker_cpu_pct")")"
    rows+=("| $figure | $unit | $(fmt "$z") | $(fmt "$b") $bname | $r | ${spread:--} | $cpu |")
}

for size in 64 4096; do
    for sec in plain curve; do
        tag="$size.$sec"
        label="$size B $sec"
        sizes="${size} B"
        if [ "$sec" = plain ]; then
            pipebase="base.pushpull.$tag.rate"; pipename="(direct PUSH/PULL)"
            rpcbase="base.broker-async.$tag.rate"
        else
            pipebase="base.forwarder.$tag.rate"; pipename="(PULL/PUSH forwarder, CURVE)"
            rpcbase="base.broker-async.$tag.rate"
        fi
        for mode in queued accepted processed; do
            row "pipeline $mode, $label" "msg/s" "zmesh.pipe-$mode.$tag.rate" \
                "$pipebase" "$pipename" higher
        done
        [ "$sec" = plain ] && row "pipeline queued, $label" "msg/s" "zmesh.pipe-queued.$tag.rate" \
            "base.forwarder.$tag.rate" "(PULL/PUSH forwarder)" higher
        row "async RPC, 100 in flight, 2 workers, $label" "req/s" "zmesh.rpc-async.$tag.rate" \
            "$rpcbase" "(minimal broker)" higher
        row "async RPC, 100 in flight, $label" "req/s" "zmesh.rpc-async.$tag.rate" \
            "base.dealer.$tag.rate" "(direct DEALER/ROUTER)" higher
        row "sync RPC p50, $label" "us" "zmesh.rpc-sync.$tag.p50" \
            "base.broker-sync.$tag.p50" "(minimal broker)" lower
        row "sync RPC p99, $label" "us" "zmesh.rpc-sync.$tag.p99" \
            "base.broker-sync.$tag.p99" "(minimal broker)" lower
        row "sync RPC p50, $label" "us" "zmesh.rpc-sync.$tag.p50" \
            "base.reqrep.$tag.p50" "(direct REQ/REP)" lower
        if [ "$sec" = plain ]; then
            row "async RPC, raw ZMP peers (broker alone), $label" "req/s" \
                "zmesh.raw-async.$tag.rate" "$rpcbase" "(minimal broker)" higher
            row "sync RPC p50, raw ZMP peers (broker alone), $label" "us" \
                "zmesh.raw-sync.$tag.p50" "base.broker-sync.$tag.p50" "(minimal broker)" lower
            row "sync RPC p99, raw ZMP peers (broker alone), $label" "us" \
                "zmesh.raw-sync.$tag.p99" "base.broker-sync.$tag.p99" "(minimal broker)" lower
            row "replicated writes, 3 replicas W=2, 100 in flight, $label" "writes/s" \
                "zmesh.repl-write.$tag.rate" "$rpcbase" "(minimal broker RPC)" higher
            row "replicated writes, fsync'ed (data dirs), $label" "writes/s" \
                "zmesh.repl-durable.$tag.rate" "$rpcbase" "(minimal broker RPC)" higher
        fi
    done
done
#  No libzmq baseline for these: the "baseline" column holds the target.
values["target.memory"]="65536 "
values["target.idle"]="5 "
row "broker VmRSS, 1,000,000 x 16 B waiting" "KiB" "zmesh.memory.rss_kib" "target.memory" \
    "(target 64 MiB)" lower
row "broker bytes per waiting message" "B" "zmesh.memory.bytes_per_msg" "" "" lower
row "broker CPU, 10,000 idle workers (1 s heartbeat)" "% core" "zmesh.idle.cpu_pct" \
    "target.idle" "(target 5 %)" lower
row "dead worker (kill -9) to re-routed reply" "ms" "zmesh.failover-kill.ms" "" "" lower
row "silent worker (SIGSTOP) to re-routed reply" "ms" "zmesh.failover-stop.ms" "" "" lower

echo "## Machine"
echo
echo "- cores: $(nproc); CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "- kernel: $(uname -sr); libzmq $(pkg-config --modversion libzmq 2>/dev/null || echo '?');" \
     "CZMQ $(pkg-config --modversion libczmq 2>/dev/null || echo '?')"
echo "- load average before the table: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- $reps repetitions, ${seconds} s per throughput/latency run, $((SECONDS - started)) s in all"
echo
echo "## Figures (medians)"
echo
echo "ratio: zmesh/baseline for rates, baseline/zmesh for times and memory, so above 1 means zmesh"
echo "did better. For memory and idle CPU the baseline column is the target, not a measurement."
echo "broker CPU %: the zmesh broker process (all its threads) during the run, in % of one core."
echo
echo "| figure | unit | zmesh | baseline | ratio | zmesh min / median / max | broker CPU % |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo

#  target NAME VALUE OP LIMIT: one target line; VALUE is a ratio or a figure.
target() {
    local name="$1" value="$2" op="$3" limit="$4" verdict
    if [ -z "$value" ] || [ "$value" = - ]; then
        verdict="NOT MEASURED"
    elif awk -v v="$value" -v l="$limit" -v op="$op" \
        'BEGIN { exit !((op == ">=" && v >= l) || (op == "<=" && v <= l) || (op == "<" && v < l)) }'; then
        verdict="MET"
    else
        verdict="NOT MET"
    fi
    echo "| $name | $(fmt "$value") | $op $limit | $verdict |"
}

echo "## Targets"
echo
echo "| target | measured | goal | verdict |"
echo "|---|---|---|---|"
for size in 64 4096; do
    tag="$size.plain"
    target "pipeline queued / direct PUSH/PULL, $size B" \
        "$(ratio "$(median zmesh.pipe-queued.$tag.rate)" "$(median base.pushpull.$tag.rate)")" ">=" 0.5
    target "async RPC / minimal broker, $size B" \
        "$(ratio "$(median zmesh.rpc-async.$tag.rate)" "$(median base.broker-async.$tag.rate)")" ">=" 0.7
    target "sync RPC p50 / minimal broker p50, $size B" \
        "$(ratio "$(median zmesh.rpc-sync.$tag.p50)" "$(median base.broker-sync.$tag.p50)")" "<=" 1.2
    tag="$size.curve"
    target "CURVE pipeline queued / CURVE forwarder, $size B" \
        "$(ratio "$(median zmesh.pipe-queued.$tag.rate)" "$(median base.forwarder.$tag.rate)")" ">=" 0.9
    target "CURVE async RPC / CURVE minimal broker, $size B" \
        "$(ratio "$(median zmesh.rpc-async.$tag.rate)" "$(median base.broker-async.$tag.rate)")" ">=" 0.9
    target "CURVE sync p50: CURVE minimal broker p50 / zmesh p50, $size B" \
        "$(ratio "$(median base.broker-sync.$tag.p50)" "$(median zmesh.rpc-sync.$tag.p50)")" ">=" 0.9
done
target "broker VmRSS with 1,000,000 messages waiting (MiB)" \
    "$(awk -v k="$(median zmesh.memory.rss_kib)" 'BEGIN { if (k != "") printf "%.1f", k / 1024 }')" "<" 64
target "broker CPU with 10,000 idle workers (% of one core)" "$(median zmesh.idle.cpu_pct)" "<" 5
echo

if [ "$failures" -gt 0 ]; then
    say "bench: $failures measurement(s) failed to run"
    exit 1
fi
exit 0
