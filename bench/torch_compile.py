#!/usr/bin/env python3
"""Times torch.compile (Inductor's C++/OpenMP CPU backend) on fusejit's fused chains.

For each chain, size and thread count: the first call (compilation) is timed apart, then the
median of repeated calls after warm-up. Inductor's on-disk caches are disabled, so every first
call compiles as on a fresh machine (with them, a repeated run of this script finds most
kernels compiled: 0.04 s instead of 0.7 s). Writes JSON for bench/report.py:
  {"torch_version": ..., "results": [{"name", "n", "threads", "compile_s", "median_us"}]}
"""
import argparse
import json
import os
import statistics
import time
import warnings

os.environ.setdefault("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")
warnings.filterwarnings("ignore", message="dynamo_pgo force disabled")

import torch
import torch.nn.functional as F

CHAINS = {
    "chain_gelu": (3, lambda x, w, b: F.gelu(x * w + b)),
    "chain_silu": (1, lambda x: x * torch.sigmoid(x)),
    "chain7": (1, lambda x: torch.relu(torch.tanh(x * 2 + 1) * x - 0.5) * 3),
    "chain_softmax": (1, lambda x: torch.softmax(x, -1)),
    "chain_layer_norm": (1, lambda x: F.layer_norm(x, x.shape[-1:])),
    "chain_mse": (2, lambda a, b: torch.mean((a - b) * (a - b))),
}


def inputs(count, n):
    gen = torch.Generator().manual_seed(10)
    made = [torch.rand(n, n, generator=gen) * 6 - 3]
    if count >= 2:
        made.append(torch.rand(n, n, generator=gen) + 0.5)
    if count >= 3:
        made.append(torch.rand(n, generator=gen) * 2 - 1)
    return made


def time_call(fn, args, min_seconds):
    samples = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_seconds or len(samples) < 5:
        t0 = time.perf_counter()
        fn(*args)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--sizes", default="1000,4096")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--chains", default=",".join(CHAINS), help="comma-separated names from CHAINS")
    args = parser.parse_args()
    chains = {name: CHAINS[name] for name in args.chains.split(",")}
    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for name, (count, fn) in chains.items():
            for n in [int(s) for s in args.sizes.split(",")]:
                torch._dynamo.reset()
                compiled = torch.compile(fn)
                data = inputs(count, n)
                t0 = time.perf_counter()
                compiled(*data)
                compile_s = time.perf_counter() - t0
                for _ in range(3):
                    compiled(*data)
                median_us = time_call(compiled, data, args.min_seconds)
                eager_us = time_call(fn, data, args.min_seconds)
                results.append({"name": name, "n": n, "threads": threads, "compile_s": compile_s,
                                "median_us": median_us, "eager_median_us": eager_us})
                print(f"{name} n={n} threads={threads}: torch.compile {median_us:.1f} us "
                      f"(compile {compile_s:.2f} s), eager {eager_us:.1f} us", flush=True)
    with open(args.out, "w") as f:
        json.dump({"torch_version": torch.__version__, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
