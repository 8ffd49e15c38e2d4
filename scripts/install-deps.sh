#!/usr/bin/env bash
# Installs the Debian 12 packages fusejit builds with (the Python module too); installs only what
# is missing.
set -euo pipefail

packages=(build-essential cmake ninja-build llvm-19-dev libzstd-dev zlib1g-dev libtbb-dev
          libgtest-dev libbenchmark-dev python3-dev python3-venv python3-pip)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  echo "fusejit: installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi
