#!/usr/bin/env bash
# Installs the comparison peers and measures fusejit against them: PyTorch from PyPI in a
# virtual environment under build/peers (libtorch timed in-process from C++, torch.compile from
# Python), then bench/RESULTS.md and bench/results.png. Downloads PyTorch (several GB) on the
# first run; safe to run again. Extra arguments go to fusejit_torch_bench (e.g.
# --benchmark_filter=softmax). It also builds fusejit_gemm_peers, the GEMM candidates side by side
# (run it by hand: bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The GEMM candidates of fusejit_gemm_peers (loaded at run time) and Python's venv.
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
missing=()
for package in python3-venv python3-pip libdnnl2 libopenblas0-pthread libblis4-openmp; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

peers=build/peers
python=$peers/venv/bin/python
if [ ! -x "$python" ]; then python3 -m venv "$peers/venv"; fi
if ! "$python" -c 'import torch, matplotlib' 2>/dev/null; then
  echo "fusejit: installing PyTorch and matplotlib into $peers/venv"
  "$python" -m pip install --quiet --upgrade pip
  "$python" -m pip install --quiet torch matplotlib numpy
fi
torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')

cmake -S . -B "$peers/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFUSEJIT_BUILD_TESTS=OFF \
      -DFUSEJIT_BENCH_TORCH=ON -DCMAKE_PREFIX_PATH="$torch_prefix" >/dev/null
cmake --build "$peers/build" --target fusejit_torch_bench fusejit_gemm_peers -j 2

"$peers/build/bench/fusejit_torch_bench" --benchmark_repetitions=5 \
    --benchmark_report_aggregates_only=true --benchmark_min_time=0.1 \
    --benchmark_out="$peers/torch_bench.json" --benchmark_out_format=json "$@"
"$python" bench/torch_compile.py --out "$peers/torch_compile.json"
"$python" bench/report.py --bench "$peers/torch_bench.json" --compile "$peers/torch_compile.json"
