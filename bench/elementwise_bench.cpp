// fusejit benchmarks (Google Benchmark). See bench/README.md for what each family measures.
//
// Names read as BM_<workload>/<mode>/threads:<t>/<N> for an NxN float32 tensor, mode being
// fused (default fusejit), eager (fusejit with fusion off: one kernel and one materialized
// tensor per op) or hand (a plain C++ loop at -O3 -march=native, reference_loops.cpp).
// Every benchmark reports bytes_per_second = (bytes of each input once + the output once) per
// evaluation, so every row compares directly with BM_triad / BM_copy of the same size.
#include <benchmark/benchmark.h>
#include <fusejit/fusejit.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "harness.h"
#include "reference_loops.h"

namespace fjbench {
namespace {

// ---------------------------------------------------------------------------------------------
// 1. Single elementwise ops

struct ElementwiseOp {
  const char* name;
  bool binary;   // tensor-tensor: reads two tensors
  float lo, hi;  // range of the (first) input
  fj::Tensor (*fn)(const fj::Tensor& a, const fj::Tensor& b);
};

const ElementwiseOp kElementwiseOps[] = {
    {"add", true, -1, 1, [](const fj::Tensor& a, const fj::Tensor& b) { return fj::add(a, b); }},
    {"sub", true, -1, 1, [](const fj::Tensor& a, const fj::Tensor& b) { return fj::sub(a, b); }},
    {"mul", true, -1, 1, [](const fj::Tensor& a, const fj::Tensor& b) { return fj::mul(a, b); }},
    {"div", true, -1, 1, [](const fj::Tensor& a, const fj::Tensor& b) { return fj::div(a, b); }},
    {"add_scalar", false, -1, 1, [](const fj::Tensor& a, const fj::Tensor&) { return a + 1.5f; }},
    {"mul_scalar", false, -1, 1, [](const fj::Tensor& a, const fj::Tensor&) { return a * 1.5f; }},
    {"relu", false, -4, 4, [](const fj::Tensor& a, const fj::Tensor&) { return fj::relu(a); }},
    {"sigmoid", false, -4, 4, [](const fj::Tensor& a, const fj::Tensor&) { return fj::sigmoid(a); }},
    {"tanh", false, -4, 4, [](const fj::Tensor& a, const fj::Tensor&) { return fj::tanh(a); }},
    {"gelu", false, -4, 4, [](const fj::Tensor& a, const fj::Tensor&) { return fj::gelu(a); }},
};

void bm_elementwise(benchmark::State& state, const ElementwiseOp& op, Mode mode, int threads, int64_t n) {
  guarded(state, [&] {
    fj::FusionGuard fusion(mode == Mode::Fused);
    fj::NumThreadsGuard num_threads(threads);
    fj::Tensor a = make_input({n, n}, 1, op.lo, op.hi);
    // The second operand stays in [0.5, 1.5) so div never divides by ~0.
    fj::Tensor b = op.binary ? make_input({n, n}, 2, 0.5f, 1.5f) : fj::Tensor();
    int64_t bytes = (op.binary ? 3 : 2) * n * n * static_cast<int64_t>(sizeof(float));
    time_lazy(state, [&] { return op.fn(a, b); }, bytes);
  });
}

// ---------------------------------------------------------------------------------------------
// 2./3. Chains: fused, eager and hand-written

enum class Chain { Gelu, Silu, Chain7 };

const char* chain_name(Chain chain) {
  switch (chain) {
    case Chain::Gelu: return "chain_gelu";  // gelu(x*w + b)
    case Chain::Silu: return "chain_silu";  // x*sigmoid(x)
    case Chain::Chain7: return "chain7";    // relu(tanh(x*2 + 1)*x - 0.5)*3
  }
  return "?";
}

// The chains' inputs: x, w of shape [rows, cols] and b of shape [cols] (only gelu reads w, b).
struct ChainInputs {
  fj::Tensor x, w, b;
};

ChainInputs make_chain_inputs(Chain chain, int64_t rows, int64_t cols) {
  ChainInputs in;
  float lim = chain == Chain::Silu ? 6.0f : 3.0f;
  in.x = make_input({rows, cols}, 3, -lim, lim);
  if (chain == Chain::Gelu) {
    in.w = make_input({rows, cols}, 4, 0.5f, 1.5f);
    in.b = make_input({cols}, 5, -1.0f, 1.0f);
  }
  return in;
}

fj::Tensor chain_lazy(Chain chain, const ChainInputs& in) {
  switch (chain) {
    case Chain::Gelu: return fj::gelu(in.x * in.w + in.b);
    case Chain::Silu: return in.x * fj::sigmoid(in.x);
    case Chain::Chain7: return fj::relu(fj::tanh(in.x * 2 + 1) * in.x - 0.5f) * 3;
  }
  return {};
}

// Rows [row_begin, row_end) of the chain with the hand-written loop.
void chain_hand(Chain chain, const float* x, const float* w, const float* b, float* y, int64_t cols,
                int64_t row_begin, int64_t row_end) {
  switch (chain) {
    case Chain::Gelu: fjbench::ref::chain_gelu(x, w, b, y, cols, row_begin, row_end); break;
    case Chain::Silu: fjbench::ref::chain_silu(x, y, row_begin * cols, row_end * cols); break;
    case Chain::Chain7: fjbench::ref::chain7(x, y, row_begin * cols, row_end * cols); break;
  }
}

double chain_double(Chain chain, double x, double w, double b) {
  switch (chain) {
    case Chain::Gelu: {
      double v = x * w + b;
      return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    }
    case Chain::Silu: return x / (1.0 + std::exp(-x));
    case Chain::Chain7: {
      double v = std::tanh(x * 2 + 1) * x - 0.5;
      return (v > 0 ? v : 0) * 3;
    }
  }
  return 0;
}

int64_t chain_bytes(Chain chain, int64_t rows, int64_t cols) {
  int64_t n = rows * cols;
  int64_t elems = chain == Chain::Gelu ? 3 * n + cols : 2 * n;
  return elems * static_cast<int64_t>(sizeof(float));
}

// Problems found by check_chain ("" = none).
struct ChainCheck {
  std::string hand;     // the hand loop is off from the double-precision result
  std::string fusejit;  // fusejit disagrees with the hand loop (or the hand loop is off, or it threw)
};

// Checks that fusejit (fused or eager) and the hand loop compute the same chain: on inputs
// spread evenly over a wide range, |fusejit - hand| <= 1e-5 * max(1, |exact|) everywhere, and
// the hand loop is that close to the double-precision result. Cached per (chain, fused): the
// answer does not depend on the size or thread count.
ChainCheck check_chain(Chain chain, bool fused) {
  static std::map<std::pair<int, bool>, ChainCheck> cache;
  auto key = std::make_pair(static_cast<int>(chain), fused);
  if (auto it = cache.find(key); it != cache.end()) return it->second;

  fj::FusionGuard fusion(fused);
  const double tol = 1e-5;
  const int64_t rows = 64, cols = 1024, n = rows * cols;
  float lim = chain == Chain::Silu ? 20.0f : 6.0f;  // gelu: x*w + b spans about [-10, 10]
  std::vector<float> xs(n);
  for (int64_t i = 0; i < n; ++i) xs[i] = -lim + 2 * lim * static_cast<float>(i) / static_cast<float>(n - 1);
  ChainInputs in = make_chain_inputs(chain, rows, cols);
  const float* w = in.w.defined() ? in.w.data_ptr<float>() : nullptr;
  const float* b = in.b.defined() ? in.b.data_ptr<float>() : nullptr;
  auto exact_at = [&](int64_t i) { return chain_double(chain, xs[i], w ? w[i] : 0.0, b ? b[i % cols] : 0.0); };
  auto where = [&](int64_t i) {  // the argument of the outer function, for messages
    char text[64];
    double arg = w ? static_cast<double>(xs[i]) * w[i] + b[i % cols] : xs[i];
    std::snprintf(text, sizeof text, "%s=%g", w ? "x*w+b" : "x", arg);
    return std::string(text);
  };
  // max over i of |value - reference| / max(1, |exact|), NaN counting as infinite.
  auto worst = [&](auto value, auto reference, int64_t& at) {
    double result = 0;
    for (int64_t i = 0; i < n; ++i) {
      double err = std::fabs(value(i) - reference(i)) / std::max(1.0, std::fabs(exact_at(i)));
      if (std::isnan(err)) err = INFINITY;
      if (err > result || at < 0) result = err, at = i;
    }
    return result;
  };

  ChainCheck check;
  AlignedBuffer hand(n);
  chain_hand(chain, xs.data(), w, b, hand.data(), cols, 0, rows);
  const float* h = hand.data();
  int64_t hand_at = -1;
  double hand_err = worst([&](int64_t i) { return static_cast<double>(h[i]); }, exact_at, hand_at);
  char message[512];
  if (!(hand_err <= tol)) {
    std::snprintf(message, sizeof message,
                  "%s: the hand loop is off from the exact result by %.3g (scaled by max(1,|exact|)) at %s: "
                  "hand %.8g, exact %.8g",
                  chain_name(chain), hand_err, where(hand_at).c_str(), static_cast<double>(h[hand_at]),
                  exact_at(hand_at));
    check.hand = check.fusejit = message;
  } else {
    try {
      in.x = fj::tensor(xs, {rows, cols});
      fj::Tensor y = chain_lazy(chain, in).eval();
      const float* f = y.data_ptr<float>();
      int64_t at = -1, fj_at = -1;
      double diff = worst([&](int64_t i) { return static_cast<double>(f[i]); },
                          [&](int64_t i) { return static_cast<double>(h[i]); }, at);
      double fj_err = worst([&](int64_t i) { return static_cast<double>(f[i]); }, exact_at, fj_at);
      if (!(diff <= tol)) {
        std::snprintf(message, sizeof message,
                      "%s: fusejit (%s) and the hand loop disagree beyond %g: worst at %s: fusejit %.8g, "
                      "hand %.8g, exact %.8g; max error vs exact (scaled by max(1,|exact|)): fusejit %.3g, "
                      "hand %.3g",
                      chain_name(chain), fused ? "fused" : "eager", tol, where(at).c_str(),
                      static_cast<double>(f[at]), static_cast<double>(h[at]), exact_at(at), fj_err, hand_err);
        check.fusejit = message;
      }
    } catch (const std::exception& e) {
      check.fusejit = std::string("exception: ") + e.what();
    }
  }
  cache[key] = check;
  return check;
}

void bm_chain(benchmark::State& state, Chain chain, Mode mode, int threads, int64_t n) {
  guarded(state, [&] {
    ChainCheck check = check_chain(chain, mode != Mode::Eager);
    const std::string& problem = mode == Mode::Hand ? check.hand : check.fusejit;
    if (!problem.empty()) return skip(state, problem);
    int64_t bytes = chain_bytes(chain, n, n);
    if (mode == Mode::Hand) {
      ChainInputs in = make_chain_inputs(chain, n, n);
      const float* x = in.x.data_ptr<float>();
      const float* w = in.w.defined() ? in.w.data_ptr<float>() : nullptr;
      const float* b = in.b.defined() ? in.b.data_ptr<float>() : nullptr;
      AlignedBuffer y(n * n);
      time_hand(
          state, threads,
          [&](int p, int parts) {
            auto [begin, end] = part_range(n, p, parts, 1);  // whole rows
            chain_hand(chain, x, w, b, y.data(), n, begin, end);
          },
          bytes);
      return;
    }
    fj::FusionGuard fusion(mode == Mode::Fused);
    fj::NumThreadsGuard num_threads(threads);
    ChainInputs in = make_chain_inputs(chain, n, n);
    time_lazy(state, [&] { return chain_lazy(chain, in); }, bytes);
  });
}

// ---------------------------------------------------------------------------------------------
// 4. STREAM copy and triad (hand-written, -O3 -march=native, plain stores)

void bm_copy(benchmark::State& state, int threads, int64_t n) {
  int64_t count = n * n;
  AlignedBuffer a(count, 1.0f), c(count, 0.0f);
  time_hand(
      state, threads,
      [&](int p, int parts) {
        auto [begin, end] = part_range(count, p, parts, 16);
        fjbench::ref::copy(a.data(), c.data(), begin, end);
      },
      2 * count * static_cast<int64_t>(sizeof(float)));
}

void bm_triad(benchmark::State& state, int threads, int64_t n) {
  int64_t count = n * n;
  AlignedBuffer a(count, 0.0f), b(count, 1.0f), c(count, 2.0f);
  time_hand(
      state, threads,
      [&](int p, int parts) {
        auto [begin, end] = part_range(count, p, parts, 16);
        fjbench::ref::triad(a.data(), b.data(), c.data(), 3.0f, begin, end);
      },
      3 * count * static_cast<int64_t>(sizeof(float)));
}

// ---------------------------------------------------------------------------------------------
// 6. Compile latency and dispatch overhead

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

// Each iteration evaluates x*k + k on a [64] tensor with a k never used before in this process,
// so every evaluation compiles one new kernel. Time per iteration = the whole first evaluation;
// the counters give the medians of fusejit's own compile time per kernel and of the wall time.
void bm_compile_latency(benchmark::State& state) {
  static int64_t next_shape = 0;
  guarded(state, [&] {
    std::vector<double> compile_ms, first_eval_ms;
    int64_t kernels = 0;
    for (auto _ : state) {
      // A new length makes a new kernel; a new scalar would not (scalars are kernel arguments).
      fj::Tensor x = make_input({64 + ++next_shape}, 6, -1, 1);
      float k = 1.5f;
      fj::Stats before = fj::stats();
      auto start = std::chrono::steady_clock::now();
      fj::Tensor y = x * k + k;
      y.eval();
      benchmark::DoNotOptimize(y.data_ptr<float>());
      auto stop = std::chrono::steady_clock::now();
      fj::Stats after = fj::stats();
      int64_t compiled = after.kernels_compiled - before.kernels_compiled;
      kernels += compiled;
      if (compiled > 0) compile_ms.push_back((after.compile_ms - before.compile_ms) / static_cast<double>(compiled));
      first_eval_ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    }
    if (kernels == 0) return skip(state, "no kernel was compiled: the shapes did not make new cache keys");
    state.counters["compile_ms_median"] = median(compile_ms);
    state.counters["first_eval_ms_median"] = median(first_eval_ms);
    state.counters["kernels_per_eval"] = static_cast<double>(kernels) / static_cast<double>(state.iterations());
  });
}

// a + b on 1-element tensors with the kernel cached: a new lazy node every iteration, then eval
// (graph simplification, fusion, cache lookup, a 4-byte output buffer and the call).
void bm_cache_hit_1elem(benchmark::State& state) {
  guarded(state, [&] {
    fj::Tensor a = make_input({1}, 7, -1, 1), b = make_input({1}, 8, -1, 1);
    time_lazy(state, [&] { return a + b; }, 3 * static_cast<int64_t>(sizeof(float)));
  });
}

// The same for the 7-op chain on one element (still one fused kernel).
void bm_cache_hit_1elem_chain7(benchmark::State& state) {
  guarded(state, [&] {
    fj::Tensor x = make_input({1}, 9, -1, 1);
    time_lazy(state, [&] { return fj::relu(fj::tanh(x * 2 + 1) * x - 0.5f) * 3; },
              2 * static_cast<int64_t>(sizeof(float)));
  });
}

// Only building the lazy node of a + b, without evaluating: subtract from BM_cache_hit_1elem
// to get the evaluation alone.
void bm_graph_build_1elem(benchmark::State& state) {
  guarded(state, [&] {
    fj::Tensor a = make_input({1}, 7, -1, 1), b = make_input({1}, 8, -1, 1);
    for (auto _ : state) {
      fj::Tensor y = a + b;
      benchmark::DoNotOptimize(y.node().get());
    }
  });
}

// ---------------------------------------------------------------------------------------------

}  // namespace

void register_elementwise() {
  const int thread_counts[] = {1, 2};

  // STREAM first: the bandwidth every other row is read against.
  for (int64_t n : {1000, 4096})
    for (int t : thread_counts) {
      configure(benchmark::RegisterBenchmark(bench_name("copy", nullptr, t, n).c_str(),
                                             [=](benchmark::State& s) { bm_copy(s, t, n); }),
                t);
      configure(benchmark::RegisterBenchmark(bench_name("triad", nullptr, t, n).c_str(),
                                             [=](benchmark::State& s) { bm_triad(s, t, n); }),
                t);
    }

  for (Chain chain : {Chain::Gelu, Chain::Silu, Chain::Chain7})
    for (int64_t n : {1000, 4096})
      for (int t : thread_counts)
        for (Mode mode : {Mode::Fused, Mode::Eager, Mode::Hand})
          configure(benchmark::RegisterBenchmark(bench_name(chain_name(chain), mode_name(mode), t, n).c_str(),
                                                 [=](benchmark::State& s) { bm_chain(s, chain, mode, t, n); }),
                    t);

  for (const ElementwiseOp& op : kElementwiseOps)
    for (int64_t n : {100, 500, 1000})
      for (int t : thread_counts)
        for (Mode mode : {Mode::Fused, Mode::Eager})
          configure(benchmark::RegisterBenchmark(bench_name(op.name, mode_name(mode), t, n).c_str(),
                                                 [=, &op](benchmark::State& s) { bm_elementwise(s, op, mode, t, n); }),
                    t);

  benchmark::RegisterBenchmark("BM_compile_latency", bm_compile_latency)
      ->Unit(benchmark::kMicrosecond)
      ->Iterations(25)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_cache_hit_1elem", bm_cache_hit_1elem)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_cache_hit_1elem_chain7", bm_cache_hit_1elem_chain7)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_graph_build_1elem", bm_graph_build_1elem)->Unit(benchmark::kMicrosecond);
}

}  // namespace fjbench
