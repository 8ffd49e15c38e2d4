#!/usr/bin/env python3
"""fusejit against PyTorch on the CPU, from Python, in one process.

Three tables:
1. single ops (element-wise, activations, reductions) at 100², 500² and 1000²: PyTorch eager
   against fusejit, each call building the op and evaluating it (fusejit: `op(...).eval()`);
2. fused chains (those of bench/torch_compile.py) beside torch.compile (Inductor): eager
   PyTorch, torch.compile and fusejit;
3. the Python per-call overhead of a cached 1-element `a + b`.

Method: inputs are uniform random float32 tensors made by PyTorch (generator seeded with 10) and
shared with fusejit without a copy (fusejit.from_dlpack). Both libraries use --threads threads
(default: PyTorch's default). Each row checks fusejit's result against PyTorch's first, then
waits 0.3 s (so that the other library's worker threads have stopped spinning), runs 10
warm-up calls and times 100 calls one by one, their median; the libraries take turns for 3
rounds, and the table shows each one's median round. torch.compile's
first call (compilation) is made before its warm-up and not timed. Writes every figure as JSON
(--json). Needs torch and fusejit in the same environment (pip install . in build/peers/venv).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
import timeit
import warnings

os.environ.setdefault("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")
warnings.filterwarnings("ignore", message="dynamo_pgo force disabled")

import numpy as np
import torch
import torch.nn.functional as F

import fusejit as fj

WARMUP, ITERATIONS = 10, 100
IDLE_S = 0.3
ROUNDS = 3
SIZES = (100, 500, 1000)

# name: (inputs, PyTorch, fusejit); inputs: "a" one [n, n] tensor, "ab" two.
OPS = {
    "add": ("ab", lambda a, b: a + b, lambda a, b: a + b),
    "sub": ("ab", lambda a, b: a - b, lambda a, b: a - b),
    "mul": ("ab", lambda a, b: a * b, lambda a, b: a * b),
    "div": ("ab", lambda a, b: a / b, lambda a, b: a / b),
    "add_scalar": ("a", lambda a: a + 1.5, lambda a: a + 1.5),
    "mul_scalar": ("a", lambda a: a * 1.5, lambda a: a * 1.5),
    "relu": ("a", torch.relu, fj.relu),
    "sigmoid": ("a", torch.sigmoid, fj.sigmoid),
    "tanh": ("a", torch.tanh, fj.tanh),
    "gelu": ("a", F.gelu, fj.gelu),
    "softmax": ("a", lambda a: torch.softmax(a, -1), lambda a: fj.softmax(a, -1)),
    "sum": ("a", torch.sum, fj.sum),
    "mean": ("a", torch.mean, fj.mean),
    "max": ("a", torch.max, fj.max),
    "min": ("a", torch.min, fj.min),
    "sum_dim1": ("a", lambda a: a.sum(1), lambda a: a.sum(1)),
}

# The chains of bench/torch_compile.py: (inputs, PyTorch, fusejit); "xwb" is x, w [n, n] and a
# row b [n].
CHAINS = {
    "chain_gelu": ("xwb", lambda x, w, b: F.gelu(x * w + b), lambda x, w, b: fj.gelu(x * w + b)),
    "chain_silu": ("a", lambda x: x * torch.sigmoid(x), lambda x: x * fj.sigmoid(x)),
    "chain7": ("a", lambda x: torch.relu(torch.tanh(x * 2 + 1) * x - 0.5) * 3,
               lambda x: fj.relu(fj.tanh(x * 2 + 1) * x - 0.5) * 3),
    "chain_softmax": ("a", lambda x: torch.softmax(x, -1), lambda x: fj.softmax(x, -1)),
    "chain_layer_norm": ("a", lambda x: F.layer_norm(x, x.shape[-1:]), lambda x: fj.layer_norm(x, x.shape[-1])),
    "chain_mse": ("ab", lambda a, b: torch.mean((a - b) * (a - b)), lambda a, b: fj.mean((a - b) * (a - b))),
}


def make_inputs(kind, n):
    gen = torch.Generator().manual_seed(10)
    first = torch.rand(n, n, generator=gen) * 6 - 3
    if kind == "a":
        return [first]
    if kind == "ab":
        return [first, torch.rand(n, n, generator=gen) + 0.5]
    return [first, torch.rand(n, n, generator=gen) + 0.5, torch.rand(n, generator=gen) * 2 - 1]


def median_us(call):
    # The other library's worker threads first go idle: PyTorch's OpenMP workers spin for a while
    # after each parallel op (KMP_BLOCKTIME, GOMP_SPINCOUNT), and on a small machine a spinning
    # worker takes a core from the library timed next (fusejit's add at 500^2 on 2 threads: 34 us
    # right after PyTorch's loop, 23 us when it had stopped).
    time.sleep(IDLE_S)
    for _ in range(WARMUP):
        call()
    times = []
    for _ in range(ITERATIONS):
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e3


def alternating_us(calls):
    """{label: call} -> {label: us}: ROUNDS rounds of median_us over the calls in turn, and per
    call the median of its rounds, so that a burst of noise on this shared machine moves one
    round of one call, not the row."""
    rounds = {label: [] for label in calls}
    for _ in range(ROUNDS):
        for label, call in calls.items():
            rounds[label].append(median_us(call))
    return {label: statistics.median(times) for label, times in rounds.items()}


def check(name, n, expected, got):
    """fusejit's result against PyTorch's; a mismatch is reported, not hidden."""
    want, have = expected.numpy().astype(np.float64), got.numpy().astype(np.float64)
    if want.shape != have.shape or not np.allclose(have, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max())):
        print(f"  MISMATCH {name} at {n}: max difference {np.abs(have - want).max():.3g}", file=sys.stderr)
        return False
    return True


def fusejit_call(fn, args):
    return lambda: fn(*args).eval()


def single_ops(threads):
    rows = []
    for name, (kind, torch_fn, fj_fn) in OPS.items():
        for n in SIZES:
            torch_args = make_inputs(kind, n)
            fj_args = [fj.from_dlpack(t) for t in torch_args]
            ok = check(name, n, torch_fn(*torch_args), fj_fn(*fj_args).eval())
            us = alternating_us({"torch": lambda: torch_fn(*torch_args), "fusejit": fusejit_call(fj_fn, fj_args)})
            torch_us, fj_us = us["torch"], us["fusejit"]
            rows.append({"op": name, "n": n, "threads": threads, "torch_us": torch_us, "fusejit_us": fj_us,
                         "speedup": torch_us / fj_us, "matches": ok})
    return rows


def chains(threads, sizes, compile_too):
    rows = []
    for name, (kind, torch_fn, fj_fn) in CHAINS.items():
        compiled = torch.compile(torch_fn) if compile_too else None
        for n in sizes:
            torch_args = make_inputs(kind, n)
            fj_args = [fj.from_dlpack(t) for t in torch_args]
            row = {"chain": name, "n": n, "threads": threads}
            with torch.no_grad():
                row["matches"] = check(name, n, torch_fn(*torch_args), fj_fn(*fj_args).eval())
                calls = {"torch_eager_us": lambda: torch_fn(*torch_args)}
                if compiled is not None:
                    start = time.perf_counter()
                    compiled(*torch_args)
                    row["torch_compile_first_call_s"] = time.perf_counter() - start
                    calls["torch_compile_us"] = lambda: compiled(*torch_args)
                calls["fusejit_us"] = fusejit_call(fj_fn, fj_args)
                row.update(alternating_us(calls))
            rows.append(row)
    return rows


def per_call_overhead():
    """Nanoseconds per call of a cached 1-element a + b: timeit, 15 repetitions, the median."""
    ta, tb = torch.ones(1), torch.ones(1)
    fa, fb = fj.ones(1).eval(), fj.ones(1).eval()
    (fa + fb).eval()
    cases = {"torch: a + b": ("a + b", {"a": ta, "b": tb}),
             "fusejit: (a + b).eval()": ("(a + b).eval()", {"a": fa, "b": fb}),
             "fusejit: a + b (recorded, not run)": ("a + b", {"a": fa, "b": fb}),
             "fusejit: (a + b).item()": ("(a + b).item()", {"a": fa, "b": fb}),
             "torch: (a + b).item()": ("(a + b).item()", {"a": ta, "b": tb})}
    result = {}
    for label, (stmt, names) in cases.items():
        timeit.repeat(stmt, globals=names, number=20000, repeat=2)
        times = timeit.repeat(stmt, globals=names, number=20000, repeat=15)
        result[label] = statistics.median(times) / 20000 * 1e9
    return result


def print_single(rows):
    print(f"{'Operation':<24}{'PyTorch CPU':>14}{'fusejit':>14}{'Speedup':>10}")
    print("-" * 62)
    for r in rows:
        label = f"{r['op']} ({r['n']}x{r['n']})"
        flag = "" if r["matches"] else "  (MISMATCH)"
        print(f"{label:<24}{r['torch_us']:>11.1f} us{r['fusejit_us']:>11.1f} us{r['speedup']:>9.2f}x{flag}")


def print_chains(rows):
    compiled = any("torch_compile_us" in r for r in rows)
    header = f"{'Chain':<30}{'PyTorch eager':>15}"
    header += f"{'torch.compile':>15}" if compiled else ""
    header += f"{'fusejit':>13}{'vs eager':>10}" + (f"{'vs compile':>12}" if compiled else "")
    print(header)
    print("-" * len(header))
    for r in rows:
        label = f"{r['chain']} ({r['n']}x{r['n']})"
        line = f"{label:<30}{r['torch_eager_us']:>12.1f} us"
        if compiled:
            line += f"{r['torch_compile_us']:>12.1f} us"
        line += f"{r['fusejit_us']:>10.1f} us{r['torch_eager_us'] / r['fusejit_us']:>9.2f}x"
        if compiled:
            line += f"{r['torch_compile_us'] / r['fusejit_us']:>11.2f}x"
        print(line + ("" if r["matches"] else "  (MISMATCH)"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--chain-sizes", type=int, nargs="+", default=[1000, 2048])
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out of the chains")
    parser.add_argument("--json", default="build/compare_pytorch.json", help="where to write the figures")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    fj.set_num_threads(args.threads)
    print(f"PyTorch {torch.__version__}, fusejit on {fj.target_description()}, {args.threads} thread(s), "
          f"Python {platform.python_version()}; medians of {ITERATIONS} calls after {WARMUP} warm-up calls\n")

    single = single_ops(args.threads)
    print_single(single)
    print()
    chain_rows = chains(args.threads, args.chain_sizes, not args.no_compile)
    print_chains(chain_rows)
    print()
    overhead = per_call_overhead()
    print("Python per-call overhead, cached 1-element a + b (median of 15 timeit repetitions):")
    for label, ns in overhead.items():
        print(f"  {label:<38}{ns:>8.0f} ns")

    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as out:
        json.dump({"torch_version": torch.__version__, "fusejit_target": fj.target_description(),
                   "threads": args.threads, "single_ops": single, "chains": chain_rows,
                   "per_call_overhead_ns": overhead}, out, indent=1)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
