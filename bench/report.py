#!/usr/bin/env python3
"""Turns fusejit_torch_bench's JSON (and torch_compile.py's) into bench/RESULTS.md and a chart.

  report.py --bench torch_bench.json [--compile torch_compile.json]
            [--markdown bench/RESULTS.md] [--chart bench/results.png]
            [--save-baseline NAME] [--baseline NAME]

--save-baseline keeps the benchmark JSON as bench/baselines/NAME.json; --baseline compares the
current fused times against that file (printed and added to the markdown), so a change can be
measured before and after. bench/RESULTS_NOTES.md (hand-written: why fusejit is slower where it
is) is appended to the markdown.
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
from collections import defaultdict

NAME = re.compile(r"BM_(?P<work>[a-z0-9_]+)/(?P<mode>fused|eager|torch)/threads:(?P<t>\d+)/(?P<n>\d+)")
FAMILIES = ["creation", "elementwise", "activation", "reduction", "view", "chain", "overhead"]
MATMUL = "matmul"  # matmul_bench.cpp's rows: their own table, sizes and counters


def matmul_size(work, n):
    """The shape behind a matmul row's one number (M, L or T)."""
    if work.startswith("attention"):
        return f"L=S={n}, 12 heads of 64"
    if work == "gpt2_block":
        return f"T={n}, d 768"
    if work == "linear_residual":
        return f"{n}x3072 → 768"
    return f"{n}x768 → 3072"
HERE = os.path.dirname(os.path.abspath(__file__))


def load_bench(path):
    """{(work, n, threads): {mode: microseconds}}, {work: family}, errors, context, and
    {(work, n, threads, mode): {counter: value}} (the kernels and peak_MiB counters)."""
    with open(path) as f:
        data = json.load(f)
    times = defaultdict(dict)
    family = {}
    errors = {}
    counters = {}
    aggregated = any(b.get("run_type") == "aggregate" for b in data["benchmarks"])
    for b in data["benchmarks"]:
        m = NAME.match(b["name"])
        if not m:
            continue
        key = (m["work"], int(m["n"]), int(m["t"]))
        if b.get("error_occurred"):
            errors[key + (m["mode"],)] = b.get("error_message", "error")
            continue
        if aggregated and b.get("aggregate_name") != "median":
            continue
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
        times[key][m["mode"]] = b["real_time"] * scale
        counters[key + (m["mode"],)] = {c: b[c] for c in ("kernels", "peak_MiB") if c in b}
        if b.get("label"):
            family[m["work"]] = b["label"]
    return times, family, errors, data.get("context", {}), counters


def load_compile(path):
    if not path or not os.path.exists(path):
        return {}, None
    with open(path) as f:
        data = json.load(f)
    return {(r["name"], r["n"], r["threads"]): r for r in data["results"]}, data.get("torch_version")


def fmt_time(us):
    if us is None:
        return "—"
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.1f} µs"


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}x"


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def chart(times, family, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"ops and chains": [], "matmul and attention": []}
    order = FAMILIES + [MATMUL]
    for (work, n, t), modes in sorted(times.items(), key=lambda kv: (order.index(family.get(kv[0][0], "chain")), kv[0][0], kv[0][1], kv[0][2])):
        if "fused" in modes and "torch" in modes:
            matmul = family.get(work) == MATMUL
            label = f"{work} {matmul_size(work, n)} t{t}" if matmul else f"{work} {n}² t{t}" if n > 1 else f"{work} 1 t{t}"
            panels["matmul and attention" if matmul else "ops and chains"].append((label, modes["torch"] / modes["fused"]))
    panels = {name: rows for name, rows in panels.items() if rows}
    if not panels:
        return
    heights = [max(3, 0.18 * len(rows)) for rows in panels.values()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, sum(heights) + 1), gridspec_kw={"height_ratios": heights},
                             squeeze=False)
    for ax, (name, rows) in zip(axes[:, 0], panels.items()):
        values = [r[1] for r in rows]
        ax.barh(range(len(rows)), values, color=["tab:green" if v >= 1 else "tab:red" for v in values])
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([r[0] for r in rows], fontsize=6)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_title(f"fusejit vs PyTorch on CPU: {name}")
    axes[-1, 0].set_xlabel("speedup of fusejit (fused) over libtorch eager (log scale; > 1 = fusejit faster)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--compile")
    parser.add_argument("--markdown", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("--chart", default=os.path.join(HERE, "results.png"))
    parser.add_argument("--save-baseline")
    parser.add_argument("--baseline")
    args = parser.parse_args()

    times, family, errors, context, counters = load_bench(args.bench)
    compiled, compile_version = load_compile(args.compile)
    lines = ["# fusejit against PyTorch on CPU", ""]
    lines += [
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; fusejit target: {context.get('fusejit_target', '?')}.",
        f"PyTorch {context.get('torch_version', '?')} (libtorch, eager, in the same process)"
        + (f"; torch.compile from PyTorch {compile_version} (Inductor, C++/OpenMP CPU backend)." if compile_version else "."),
        f"Run: {context.get('date', '?')}, `{os.path.basename(context.get('executable', 'fusejit_torch_bench'))}`; "
        "medians of the repetitions; wall time per call. Speedup = PyTorch time / fusejit fused time.",
        "",
        "Produced by `scripts/peers.sh` (see the README); regenerate with `bench/report.py`.",
        "",
    ]
    for fam in FAMILIES:
        keys = sorted(k for k in times if family.get(k[0]) == fam)
        if not keys:
            continue
        lines += [f"## {fam}", ""]
        has_compile = fam == "chain" and compiled
        header = "| Operation | size | threads | PyTorch CPU | fusejit | Speedup | fusejit eager |"
        rule = "|---|---|---|---|---|---|---|"
        if has_compile:
            header += " torch.compile | vs torch.compile |"
            rule += "---|---|"
        lines += [header, rule]
        for work, n, t in sorted(keys, key=lambda k: (k[2], k[0], k[1])):
            modes = times[(work, n, t)]
            fused, eager, torch_us = modes.get("fused"), modes.get("eager"), modes.get("torch")
            speed = torch_us / fused if fused and torch_us else None
            size = f"{n}x{n}" if n > 1 else "1 element"
            row = f"| {work} | {size} | {t} | {fmt_time(torch_us)} | {fmt_time(fused)} | {fmt_ratio(speed)} | {fmt_time(eager)} |"
            if has_compile:
                c = compiled.get((work, n, t))
                c_us = c["median_us"] if c else None
                row += f" {fmt_time(c_us)} | {fmt_ratio(c_us / fused if c_us and fused else None)} |"
            lines.append(row)
        lines.append("")
    matmul_keys = sorted(k for k in times if family.get(k[0]) == MATMUL)
    if matmul_keys:
        lines += [f"## {MATMUL} and attention", "",
                  "Linear layers of GPT-2 small's MLP, its attention and its whole block (`examples/gpt2_block.h`);",
                  "`kernels`: launched per evaluation, fused / eager; `peak MiB`: resident memory growth over one",
                  "evaluation (fusejit fused / libtorch). torch.compile from `torch_compile.py` where it has the row.", "",
                  "| Operation | size | threads | PyTorch CPU | fusejit | Speedup | fusejit eager | kernels | peak MiB"
                  " | torch.compile | vs torch.compile |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for work, n, t in sorted(matmul_keys, key=lambda k: (k[2], k[0], k[1])):
            modes = times[(work, n, t)]
            fused, eager, torch_us = modes.get("fused"), modes.get("eager"), modes.get("torch")
            count = lambda mode, name: counters.get((work, n, t, mode), {}).get(name)
            kernels = "/".join("—" if count(m, "kernels") is None else f"{count(m, 'kernels'):.0f}" for m in ("fused", "eager"))
            peak = "/".join("—" if count(m, "peak_MiB") is None else f"{count(m, 'peak_MiB'):.0f}" for m in ("fused", "torch"))
            c = compiled.get((work, n, t))
            c_us = c["median_us"] if c else None
            lines.append(f"| {work} | {matmul_size(work, n)} | {t} | {fmt_time(torch_us)} | {fmt_time(fused)} | "
                         f"{fmt_ratio(torch_us / fused if fused and torch_us else None)} | {fmt_time(eager)} | {kernels} | "
                         f"{peak} | {fmt_time(c_us)} | {fmt_ratio(c_us / fused if c_us and fused else None)} |")
        lines.append("")
    first_calls = {tuple(key.split()[1:]): value for key, value in context.items() if key.startswith("first_call ")}
    if first_calls or compiled:
        lines += ["## first call", "",
                  "The first evaluation of each chain in a fresh process, on 1 thread: fusejit builds the schedule,",
                  "compiles its kernels and runs once; torch.compile traces, compiles with Inductor and runs once",
                  "(its caches reset for every row and its on-disk caches disabled, as on a fresh machine; the",
                  "first row also pays for loading Inductor).", "",
                  "| Operation | size | fusejit first call | kernels compiled, compile time | torch.compile first call, 1 thread | 2 threads |",
                  "|---|---|---|---|---|---|"]
        chains = sorted({(name, int(n)) for name, n in first_calls} |
                        {(k[0], k[1]) for k in compiled if family.get(k[0], "chain") == "chain"})
        for name, n in chains:
            fj_call = first_calls.get((name, str(n)), "—")
            fj_time, _, fj_rest = fj_call.partition(", ")
            c1, c2 = compiled.get((name, n, 1)), compiled.get((name, n, 2))
            tc = [f"{c['compile_s']:.2f} s" if c else "—" for c in (c1, c2)]
            lines.append(f"| {name} | {n}x{n} | {fj_time} | {fj_rest or '—'} | {tc[0]} | {tc[1]} |")
        lines.append("")
    notes = os.path.join(HERE, "RESULTS_NOTES.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += [f.read()]
    if errors:
        lines += ["## Rows skipped", ""] + [f"- {' '.join(map(str, k))}: {v}" for k, v in sorted(errors.items())] + [""]

    if args.baseline:
        base_path = os.path.join(HERE, "baselines", args.baseline + ".json")
        base = load_bench(base_path)[0]
        lines += [f"## Against baseline `{args.baseline}`", "", "| workload | size | threads | baseline | now | change |", "|---|---|---|---|---|---|"]
        for key in sorted(times):
            now, before = times[key].get("fused"), base.get(key, {}).get("fused")
            if now and before:
                lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {fmt_time(before)} | {fmt_time(now)} | {before / now:.2f}x |")
        lines.append("")
        print("\n".join(lines[-(len(times) + 3):]))
    if args.save_baseline:
        os.makedirs(os.path.join(HERE, "baselines"), exist_ok=True)
        shutil.copy(args.bench, os.path.join(HERE, "baselines", args.save_baseline + ".json"))

    with open(args.markdown, "w") as f:
        f.write("\n".join(lines))
    chart(times, family, args.chart)
    print(f"wrote {args.markdown} and {args.chart}")


if __name__ == "__main__":
    main()
