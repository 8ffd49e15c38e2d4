#!/usr/bin/env bash
# Installs what is missing, then builds and runs the test suite three times: every test in the
# release build (warnings are errors) and under AddressSanitizer + UndefinedBehaviorSanitizer,
# and the concurrency tests under ThreadSanitizer (oneTBB's hand-offs are suppressed in
# tests/tsan.supp). The release run also installs fusejit and builds a separate consumer
# project against it, and runs each benchmark binary briefly. Then the Python module: built and
# installed by `pip install .` into a virtual environment of Debian's Python (/usr/bin/python3,
# what a fresh Debian 12 machine has, whichever python3 comes first on PATH) under
# build/python-venv, with pytest and NumPy from PyPI, and its pytest suite run (PyTorch and JAX
# tests are skipped: they are not installed there). `scripts/test.sh python` runs only that part.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

python_tests() {
  echo "== fusejit tests: Python module"
  local venv=build/python-venv
  if [ ! -x "$venv/bin/python" ]; then /usr/bin/python3 -m venv "$venv"; fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check pytest numpy
  CMAKE_BUILD_PARALLEL_LEVEL=2 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      --config-settings=cmake.define.FUSEJIT_WERROR=ON .
  "$venv/bin/python" -m pytest -p no:cacheprovider python/tests
}

if [ "${1:-}" = python ]; then
  python_tests
  exit
fi

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

python_tests
