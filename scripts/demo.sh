#!/usr/bin/env bash
# Installs what is missing, builds fusejit and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target fusejit_demo
build/release/fusejit_demo
