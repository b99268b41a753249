#!/usr/bin/env bash
#  The whole test suite, as CI runs it: installs what is missing, builds with
#  AddressSanitizer and UBSan and -Werror and runs every test with ctest;
#  builds again without sanitizers (an optimised build, and the tests that
#  need a real address-space limit, which ASan cannot run under) and runs
#  every test again; then fuzzes each fuzz target for 15 s (scripts/fuzz.sh);
#  then tests the Docker image and Compose stack against a real engine
#  (docker/test.sh: installs and starts one when none runs).
#  Usage: scripts/test.sh [ctest arguments...]   (BUILD_DIR overrides build-asan;
#  PLAIN_BUILD_DIR overrides build-plain; ZMESH_FUZZ_SECONDS sets the seconds
#  per fuzz target, 0 skips fuzzing; ZMESH_DOCKER_TEST=0 skips docker/test.sh)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-asan}
plain=${PLAIN_BUILD_DIR:-$root/build-plain}

"$root/scripts/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DZMESH_SANITIZE=ON -DZMESH_WERROR=ON
cmake --build "$build" -j"$(nproc)"

#  Leaks are bugs: LeakSanitizer stays on. CZMQ's signal handler would hide
#  a crash, so the sanitizers print and abort.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd "$build" && ctest --output-on-failure --timeout 300 "$@")

cmake -S "$root" -B "$plain" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZMESH_SANITIZE=OFF \
    -DZMESH_WERROR=ON
cmake --build "$plain" -j"$(nproc)"
(cd "$plain" && ctest --output-on-failure --timeout 300 "$@")

fuzz_seconds=${ZMESH_FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" != 0 ]; then
    "$root/scripts/fuzz.sh" "$fuzz_seconds"
fi

if [ "${ZMESH_DOCKER_TEST:-1}" != 0 ]; then
    "$root/docker/test.sh"
fi
