#!/usr/bin/env bash
#  Fuzzes each target of tests/fuzz for SECONDS (default 20) with libFuzzer
#  under ASan and UBSan: installs clang if missing, builds with it in
#  build-fuzz, runs every target on a scratch copy of its seed corpus (the
#  committed seeds stay as they are), prints runs, coverage and the result
#  of each, and exits non-zero if any target crashed, leaked, timed out or
#  broke an oracle. Crash inputs and logs go to tests/fuzz/out/<target>/
#  (ignored by git); tests/fuzz/README.md says how one becomes a regression.
#  Usage: scripts/fuzz.sh [SECONDS]
#  Environment: FUZZ_JOBS (targets run at once, default 1), FUZZ_TARGETS
#  (default "proto engine pack json replica"), FUZZ_BUILD_DIR (default build-fuzz).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-20}
jobs=${FUZZ_JOBS:-1}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
read -r -a targets <<<"${FUZZ_TARGETS:-proto engine pack json replica}"
if ! [[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 && $jobs =~ ^[0-9]+$ && $jobs -gt 0 ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS]   (FUZZ_JOBS=N runs N targets at once)" >&2
    exit 2
fi

#  Longest input per target: enough for a header over 512 bytes (proto),
#  a few dozen operations (engine), and inputs past the 4 KiB under which
#  fuzz_pack asks msgpack-c too.
max_len() {
    case $1 in
    proto) echo 2048 ;;
    engine) echo 4096 ;;
    pack) echo 8192 ;;
    *) echo 4096 ;;
    esac
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

ZMESH_DEPS_EXTRA="clang libclang-rt-14-dev" "$root/scripts/deps.sh"
#  Quiet when it works, the whole output when it does not.
if ! { CC=clang cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZMESH_FUZZ=ON -DZMESH_SANITIZE=ON &&
       cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"; } \
        >"$scratch/build.log" 2>&1; then
    cat "$scratch/build.log" >&2
    echo "fuzz: the clang build in $build failed" >&2
    exit 1
fi

#  The caller's sanitizer settings (scripts/test.sh sets its own) must not
#  change what counts as a failure here.
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

#  Runs one target; its summary line goes to $scratch/<target>.result.
fuzz_target() {
    local target=$1
    local out=$root/tests/fuzz/out/$target
    local corpus=$scratch/$target
    mkdir -p "$out" "$corpus"
    cp "$root/tests/fuzz/corpus/$target/"* "$corpus/"
    local dirs=("$corpus")
    if [ -d "$root/tests/fuzz/regressions/$target" ]; then
        dirs+=("$root/tests/fuzz/regressions/$target")
    fi
    local rc=0
    touch "$scratch/$target.start"
    "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -max_len="$(max_len "$target")" -print_final_stats=1 \
        -artifact_prefix="$out/" "${dirs[@]}" >"$out/fuzz.log" 2>&1 || rc=$?
    local log=$out/fuzz.log
    local runs cov speed result
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    if [ "$rc" -eq 0 ]; then
        result=ok
    elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then
        result="TIMEOUT (exit $rc)"
    elif grep -q 'ERROR: LeakSanitizer' "$log"; then
        result="LEAK (exit $rc)"
    elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then
        result="OUT OF MEMORY (exit $rc)"
    elif grep -q 'fuzz oracle failed' "$log"; then
        result="ORACLE FAILED (exit $rc)"
    else
        result="CRASH (exit $rc)"
    fi
    printf '%-8s runs=%-10s exec/s=%-8s cov=%-6s %s\n' "$target" "${runs:-?}" \
        "${speed:-?}" "${cov:-?}" "$result" >"$scratch/$target.result"
}

echo "fuzz: ${#targets[@]} targets, ${seconds} s each, $jobs at a time"
for target in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
    done
    fuzz_target "$target" &
done
wait

failed=0
for target in "${targets[@]}"; do
    if [ -f "$scratch/$target.result" ]; then
        cat "$scratch/$target.result"
    else
        echo "$target did not run"
    fi
    if ! grep -qs ' ok$' "$scratch/$target.result"; then
        failed=1
        out=$root/tests/fuzz/out/$target
        echo "---- tail of $out/fuzz.log" >&2
        tail -n 40 "$out/fuzz.log" >&2 || true
        echo "---- inputs that failed (tests/fuzz/README.md says what to do with them):" >&2
        find "$out" -newer "$scratch/$target.start" \( -name 'crash-*' -o -name 'leak-*' \
            -o -name 'timeout-*' -o -name 'oom-*' \) >&2 || true
    fi
done
if [ "$failed" -ne 0 ]; then
    echo "fuzz: FAILED" >&2
    exit 1
fi
echo "fuzz: all targets passed"
