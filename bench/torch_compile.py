#!/usr/bin/env python3
"""Times torch.compile (Inductor's C++/OpenMP CPU backend) against eager PyTorch.

Two kinds of workload, each selectable by name with --chains (all run by default):
- CHAINS, fusejit's fused elementwise/reduction chains on [n, n] inputs, n from --sizes;
- MODELS, matmul-bound workloads with their own shapes and sizes (--sizes does not apply):
  linear_gelu (gelu(linear), x [M, 768] -> [M, 3072], n = M), linear_residual (x + linear,
  [M, 3072] -> [M, 768], n = M), layer_norm_linear (linear(layer_norm(x)), [M, 768] -> [M, 3072],
  n = M), attention and attention_causal (scaled_dot_product_attention,
  q, k, v [12, L, 64], n = L) and gpt2_block (one GPT-2 small block, pre-norm, causal
  attention, exact-erf gelu MLP, batch 1, x [T, 768], n = T). Their weights are arguments of
  the compiled function (as an nn.Module's parameters would be) and they run under
  torch.no_grad() (inference), compiled and eager alike.
Inputs come from a torch.Generator seeded with 10.

For each workload, size and thread count: the first call (compilation) is timed apart, then
the median of repeated calls after warm-up, then the median of the same calls made eagerly.
Inductor's on-disk caches are disabled, so every first call compiles as on a fresh machine
(with them, a repeated run of this script finds most kernels compiled: 0.04 s instead of
0.7 s). Writes JSON for bench/report.py:
  {"torch_version": ..., "results": [{"name", "n", "threads", "compile_s", "median_us",
                                      "eager_median_us"}]}
"""
import argparse
import contextlib
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


def gpt2_block(x, ln1_w, ln1_b, w_qkv, b_qkv, w_proj, b_proj, ln2_w, ln2_b, w_fc, b_fc, w_out,
               b_out):
    """One GPT-2 small block (batch 1) as a user writes it: x [T, 768], 12 heads of 64."""
    T, d = x.shape
    h = F.layer_norm(x, (d,), ln1_w, ln1_b)
    q, k, v = F.linear(h, w_qkv, b_qkv).split(d, -1)
    q, k, v = (t.view(T, 12, d // 12).transpose(0, 1) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    y = y.transpose(0, 1).reshape(T, d)
    x = x + F.linear(y, w_proj, b_proj)
    h = F.layer_norm(x, (d,), ln2_w, ln2_b)
    return x + F.linear(F.gelu(F.linear(h, w_fc, b_fc)), w_out, b_out)


def model_inputs(shapes):
    """randn tensors of the given shapes in order; ("w", shape) is randn * 0.02 (weights and
    biases), ("ln", shape) is randn * 0.02 + 1 (layer_norm weights)."""
    gen = torch.Generator().manual_seed(10)
    made = []
    for shape in shapes:
        kind, shape = shape if isinstance(shape[0], str) else ("x", shape)
        t = torch.randn(*shape, generator=gen)
        made.append(t if kind == "x" else t * 0.02 + (1 if kind == "ln" else 0))
    return made


D, HIDDEN, HEADS = 768, 3072, 12
# name: (function, sizes, n -> shapes of its arguments, in order, for model_inputs)
MODELS = {
    "linear_gelu": (lambda x, w, b: F.gelu(F.linear(x, w, b)), [128, 512],
                    lambda m: [(m, D), ("w", (HIDDEN, D)), ("w", (HIDDEN,))]),
    "linear_residual": (lambda x, h, w, b: x + F.linear(h, w, b), [128, 512],
                        lambda m: [(m, D), (m, HIDDEN), ("w", (D, HIDDEN)), ("w", (D,))]),
    "layer_norm_linear": (lambda x, g, beta, w, b: F.linear(F.layer_norm(x, (D,), g, beta), w, b), [128, 512],
                          lambda m: [(m, D), ("ln", (D,)), ("w", (D,)), ("w", (HIDDEN, D)), ("w", (HIDDEN,))]),
    "attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v), [128, 512, 2048],
                  lambda l: [(HEADS, l, D // HEADS)] * 3),
    "attention_causal": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                         [128, 512, 2048], lambda l: [(HEADS, l, D // HEADS)] * 3),
    "gpt2_block": (gpt2_block, [128, 512],
                   lambda t: [(t, D), ("ln", (D,)), ("w", (D,)),
                              ("w", (3 * D, D)), ("w", (3 * D,)), ("w", (D, D)), ("w", (D,)),
                              ("ln", (D,)), ("w", (D,)),
                              ("w", (HIDDEN, D)), ("w", (HIDDEN,)), ("w", (D, HIDDEN)), ("w", (D,))]),
}


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
    parser.add_argument("--chains", default=",".join([*CHAINS, *MODELS]),
                        help="comma-separated names from CHAINS and MODELS")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    # name: (function, sizes, n -> inputs, run under torch.no_grad())
    workloads = {}
    for name in args.chains.split(","):
        if name in CHAINS:
            count, fn = CHAINS[name]
            workloads[name] = (fn, sizes, lambda n, count=count: inputs(count, n), False)
        else:
            fn, model_sizes, shapes = MODELS[name]
            workloads[name] = (fn, model_sizes, lambda n, shapes=shapes: model_inputs(shapes(n)), True)
    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for name, (fn, ns, make_inputs, no_grad) in workloads.items():
            for n in ns:
                with torch.no_grad() if no_grad else contextlib.nullcontext():
                    torch._dynamo.reset()
                    compiled = torch.compile(fn)
                    data = make_inputs(n)
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
