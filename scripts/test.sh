#!/usr/bin/env bash
# Installs what is missing, then builds and runs the test suite three times: every test in the
# release build (warnings are errors) and under AddressSanitizer + UndefinedBehaviorSanitizer,
# and the concurrency tests under ThreadSanitizer (oneTBB's hand-offs are suppressed in
# tests/tsan.supp). The release run also installs fusejit and builds a separate consumer
# project against it, and runs each benchmark binary briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

for preset in release asan; do
  echo "== fusejit tests: $preset build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done

echo "== fusejit tests: tsan build (concurrency tests)"
cmake --preset tsan >/dev/null
cmake --build --preset tsan --target frontend_test concurrency_test bounds_test in_place_test disk_cache_test
ctest --preset tsan
