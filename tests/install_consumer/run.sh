#!/usr/bin/env bash
# Installs the build tree into a fresh prefix and builds and runs the consumer project
# against it. No LLVM include path is given: the public headers must not need one.
set -euo pipefail
build_dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$(dirname "$0")" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
if grep -rq "llvm" "$work/build/CMakeFiles/consumer.dir/flags.make" 2>/dev/null ||
   grep -q "llvm" "$work/build/build.ninja"; then
  echo "the consumer's build mentions LLVM" >&2
  exit 1
fi
"$work/build/consumer"
