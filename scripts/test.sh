#!/usr/bin/env bash
#  The whole test suite, as CI runs it: installs what is missing, builds with
#  AddressSanitizer and UBSan and -Werror, and runs every test with ctest.
#  Usage: scripts/test.sh [ctest arguments...]   (BUILD_DIR overrides build-asan)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-asan}

"$root/scripts/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DZMESH_SANITIZE=ON -DZMESH_WERROR=ON
cmake --build "$build" -j"$(nproc)"

#  Leaks are bugs: LeakSanitizer stays on. CZMQ's signal handler would hide
#  a crash, so the sanitizers print and abort.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure --timeout 300 "$@"
