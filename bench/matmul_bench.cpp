// Matmul with epilogues, attention and a transformer block against libtorch, in the same
// process as torch_bench.cpp (built with -DFUSEJIT_BENCH_TORCH=ON): linear layers of a
// GPT-2-sized MLP, x [M, 768] against weights of 3072 x 768 (up) and 768 x 3072 (down); GPT-2
// small's attention (12 heads of 64); its whole block (examples/gpt2_block.h).
//
//   BM_linear/<mode>/threads:t/M           linear(x, w, b): the product and its bias
//   BM_linear_gelu/<mode>/threads:t/M      gelu(linear(x, w, b)) (up projection)
//   BM_linear_residual/<mode>/threads:t/M  x + linear(h, w, b) (down projection)
//   BM_layer_norm_linear/<mode>/threads:t/M  linear(layer_norm(x), w, b) (up projection; fused:
//                                          the normalization applied while packing x)
//   BM_matmul_bare/<mode>/threads:t/M      x @ w.t() with nothing after it (up projection)
//   BM_attention[_causal]/<mode>/threads:t/L   scaled_dot_product_attention, q, k, v [12, L, 64]
//   BM_attention_pattern/<mode>/threads:t/L    softmax(q kᵀ / 8, -1) v written as its ops (eager:
//                                          the L x S scores in memory)
//   BM_gpt2_block/<mode>/threads:t/T       one block on x [T, 768]
//
// Modes: fused (fusejit), eager (fusejit with fusion off: the epilogue a pass of its own), torch
// (libtorch eager: addmm, then gelu or an in-place add). Each fusejit row's
// result is compared with libtorch's first (the row is skipped with the worst element if not).
// GFLOPS counts the product's 2 M N K (attention: 4 L S E, halved when causal; the block: its
// four products' and its attention's). Counters `kernels` (fusejit: launched per evaluation)
// and `peak_MiB` (the process's resident memory growth over one evaluation, its high-water mark
// reset first) sit beside the times.
//
// The mode fused_vs_torch (gelu(linear) and x + linear at M = 512; the block) times fused and
// libtorch in pairs (bench_util.h's time_paired): `vs_torch` is the median over pairs of
// libtorch's time over fusejit's, GFLOPS and `peak_pct` fusejit's at its median time, against
// the FMA peak (bench/fma_peak.h) measured on as many threads before the first such row, and
// `vs_torch_at_peak` the ratio a program running its flops at that peak would reach (its roof).
#include <benchmark/benchmark.h>
#include <fusejit/fusejit.h>
#include <torch/torch.h>

#include <malloc.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include "bench_util.h"
#include "examples/gpt2_block.h"
#include "fma_peak.h"
#include "harness.h"

namespace fjbench {
namespace {

constexpr int64_t kModel = 768, kHidden = 3072;

// A linear layer and what surrounds it.
enum class Epilogue { Bias, Gelu, Residual, Bare, NormalizedInput };

const char* epilogue_name(Epilogue e) {
  switch (e) {
    case Epilogue::Bias: return "linear";
    case Epilogue::Gelu: return "linear_gelu";
    case Epilogue::Residual: return "linear_residual";
    case Epilogue::Bare: return "matmul_bare";
    case Epilogue::NormalizedInput: return "layer_norm_linear";
  }
  return "?";
}

torch::Tensor as_torch(const fj::Tensor& t) {
  std::vector<int64_t> sizes(t.sizes().begin(), t.sizes().end());
  return torch::from_blob(t.data_ptr<float>(), sizes);
}

// Resident memory in MiB: the current size, or its high-water mark since the last reset.
double resident_mib(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(field, 0) == 0) return std::stod(line.substr(std::strlen(field))) / 1024.0;
  return 0;
}

// How far one call of `run` raises the process's resident memory above where it was, the
// memory freed earlier returned first (fusejit's buffer pool and malloc's free pages), so that
// what the call allocates and touches counts.
template <class Run>
double peak_growth_mib(Run&& run) {
  fj::empty_cache();
  malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current VmRSS
  double before = resident_mib("VmRSS:");
  run();
  return resident_mib("VmHWM:") - before;
}

// The worst difference from libtorch's result; the row is skipped beyond `tolerance`.
bool agrees(benchmark::State& state, const std::vector<float>& got, const torch::Tensor& expected, double tolerance) {
  torch::Tensor want = expected.contiguous();
  const float* w = want.data_ptr<float>();
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - w[i]));
  if (worst <= tolerance && got.size() == static_cast<size_t>(want.numel())) return true;
  skip(state, "differs from libtorch by " + std::to_string(worst));
  return false;
}

constexpr const char* kPaired = "fused_vs_torch";

// Times `fusejit_program` (fused or eager) or `torch_program`, after checking the first against
// the second, with the kernels per evaluation and the peak memory growth as counters; or, in
// the paired mode, both in pairs, returning fusejit's median seconds (else 0).
template <class Fusejit, class Torch>
double time_against_torch(benchmark::State& state, const char* mode, int threads, Fusejit&& fusejit_program,
                          Torch&& torch_program, double tolerance) {
  torch::NoGradGuard no_grad;
  state.SetLabel("matmul");  // bench/report.py's family of these rows
  if (torch::get_num_threads() != threads) torch::set_num_threads(threads);
  if (std::strcmp(mode, "torch") == 0) {
    torch::Tensor warm = torch_program();
    state.counters["peak_MiB"] = peak_growth_mib([&] { benchmark::DoNotOptimize(torch_program().data_ptr()); });
    for (auto _ : state) benchmark::DoNotOptimize(torch_program().data_ptr());
    return 0;
  }
  bool paired = std::strcmp(mode, kPaired) == 0;
  fj::FusionGuard fusion(paired || std::strcmp(mode, "fused") == 0);
  fj::NumThreadsGuard num_threads(threads);
  if (!agrees(state, fusejit_program().template to_vector<float>(), torch_program(), tolerance)) return 0;
  fj::reset_stats();
  state.counters["peak_MiB"] = peak_growth_mib([&] { fusejit_program().eval(); });
  state.counters["kernels"] = static_cast<double>(fj::stats().kernels_launched);
  if (paired)
    return time_paired(
        state, "fusejit", [&] { benchmark::DoNotOptimize(fusejit_program().eval().template data_ptr<float>()); },
        "torch", [&] { benchmark::DoNotOptimize(torch_program().data_ptr()); });
  time_lazy(state, fusejit_program, 0);
  return 0;
}

// GFLOPS of `gflop` per evaluation; for a paired row (fusejit's median `paired_seconds`), also
// `peak_pct` and `vs_torch_at_peak`, the highest vs_torch the row can reach on this machine: its
// flops at the FMA peak `peak`.
void report_flops(benchmark::State& state, double gflop, double paired_seconds, double peak) {
  if (paired_seconds > 0) {
    state.counters["GFLOPS"] = gflop / paired_seconds;
    state.counters["peak_pct"] = gflop / paired_seconds / peak * 100;
    state.counters["vs_torch_at_peak"] = state.counters["torch_ms"] / 1e3 / (gflop / peak);
  } else {
    state.counters["GFLOPS"] = benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
  }
}

void bm_linear(benchmark::State& state, Epilogue epilogue, const char* mode, int threads, int64_t m) {
  guarded(state, [&] {
    bool down = epilogue == Epilogue::Residual;
    int64_t in = down ? kHidden : kModel, out = down ? kModel : kHidden;
    fj::Tensor x = make_input({m, in}, 51, -1, 1), w = make_input({out, in}, 52, -0.05f, 0.05f);
    fj::Tensor b = make_input({out}, 53, -0.1f, 0.1f), residual = make_input({m, out}, 54, -1, 1);
    fj::Tensor gamma = make_input({in}, 55, 0.5f, 1.5f), beta = make_input({in}, 56, -0.1f, 0.1f);
    auto fusejit_program = [&] {
      switch (epilogue) {
        case Epilogue::Bias: return fj::linear(x, w, b);
        case Epilogue::Gelu: return fj::gelu(fj::linear(x, w, b));
        case Epilogue::Residual: return residual + fj::linear(x, w, b);
        case Epilogue::Bare: return fj::matmul(x, w.t());
        case Epilogue::NormalizedInput: return fj::linear(fj::layer_norm(x, {in}, gamma, beta), w, b);
      }
      return fj::Tensor();
    };
    torch::Tensor tx = as_torch(x), tw = as_torch(w), tb = as_torch(b), tr = as_torch(residual);
    torch::Tensor tgamma = as_torch(gamma), tbeta = as_torch(beta);
    auto torch_program = [&] {
      switch (epilogue) {
        case Epilogue::Bias: return torch::addmm(tb, tx, tw.t());
        case Epilogue::Gelu: return torch::gelu(torch::addmm(tb, tx, tw.t()));
        case Epilogue::Residual: return torch::addmm(tb, tx, tw.t()).add_(tr);
        case Epilogue::Bare: return torch::mm(tx, tw.t());
        case Epilogue::NormalizedInput: return torch::addmm(tb, torch::layer_norm(tx, {in}, tgamma, tbeta), tw.t());
      }
      return torch::Tensor();
    };
    double peak = std::strcmp(mode, kPaired) == 0 ? peak_gflops(threads) : 0;
    double paired_seconds = time_against_torch(state, mode, threads, fusejit_program, torch_program, 1e-3);
    report_flops(state, 2.0 * static_cast<double>(m * in * out) / 1e9, paired_seconds, peak);
  });
}

constexpr int64_t kHeads = 12, kHeadSize = 64;

void bm_attention(benchmark::State& state, bool causal, bool pattern, const char* mode, int threads, int64_t l) {
  guarded(state, [&] {
    fj::Tensor q = make_input({kHeads, l, kHeadSize}, 61, -1, 1), k = make_input({kHeads, l, kHeadSize}, 62, -1, 1);
    fj::Tensor v = make_input({kHeads, l, kHeadSize}, 63, -1, 1);
    auto fusejit_program = [&] {
      if (pattern) return fj::softmax(q.matmul(k.transpose(-2, -1)) / 8.0f, -1).matmul(v);
      return fj::scaled_dot_product_attention(q, k, v, fj::Tensor(), causal);
    };
    torch::Tensor tq = as_torch(q), tk = as_torch(k), tv = as_torch(v);
    auto torch_program = [&] { return at::scaled_dot_product_attention(tq, tk, tv, {}, 0.0, causal); };
    time_against_torch(state, mode, threads, fusejit_program, torch_program, 1e-4);
    state.counters["GFLOPS"] = benchmark::Counter(4.0 * kHeads * l * l * kHeadSize / (causal ? 2 : 1) / 1e9,
                                                  benchmark::Counter::kIsIterationInvariantRate);
  });
}

// The libtorch twin of gpt2::Block::forward, over the same weights.
torch::Tensor torch_block(const gpt2::Block& block, const torch::Tensor& x) {
  int64_t t = x.size(0), d = block.config.model, heads = block.config.heads;
  auto w = [](const fj::Tensor& weight) { return as_torch(weight); };
  torch::Tensor qkv = torch::linear(torch::layer_norm(x, {d}, w(block.ln1_weight), w(block.ln1_bias)),
                                    w(block.qkv_weight), w(block.qkv_bias));
  std::vector<torch::Tensor> parts = qkv.split(d, -1);
  auto split_heads = [&](const torch::Tensor& part) { return part.view({t, heads, d / heads}).transpose(0, 1); };
  torch::Tensor y = at::scaled_dot_product_attention(split_heads(parts[0]), split_heads(parts[1]),
                                                     split_heads(parts[2]), {}, 0.0, true);
  torch::Tensor h = x + torch::linear(y.transpose(0, 1).reshape({t, d}), w(block.proj_weight), w(block.proj_bias));
  torch::Tensor mlp = torch::gelu(torch::linear(torch::layer_norm(h, {d}, w(block.ln2_weight), w(block.ln2_bias)),
                                                w(block.fc_weight), w(block.fc_bias)));
  return h + torch::linear(mlp, w(block.out_weight), w(block.out_bias));
}

void bm_gpt2_block(benchmark::State& state, const char* mode, int threads, int64_t t) {
  guarded(state, [&] {
    static const gpt2::Block block = gpt2::Block::random({}, 1);
    fj::Tensor x = fj::randn({t, block.config.model}, 100).eval();
    torch::Tensor tx = as_torch(x);
    double peak = std::strcmp(mode, kPaired) == 0 ? peak_gflops(threads) : 0;
    double paired_seconds = time_against_torch(
        state, mode, threads, [&] { return block.forward(x); }, [&] { return torch_block(block, tx); }, 1e-3);
    // Its four linear layers (d to 3d, d to d, d to hidden and back) and its causal attention
    // (4 T² d, halved).
    double d = static_cast<double>(block.config.model), hidden = static_cast<double>(block.config.hidden);
    double tokens = static_cast<double>(t);
    double gflop = (2 * tokens * d * (4 * d + 2 * hidden) + 2 * tokens * tokens * d) / 1e9;
    report_flops(state, gflop, paired_seconds, peak);
  });
}

}  // namespace

void register_matmul() {
  for (int t : {1, 2})
    for (Epilogue e : {Epilogue::Bare, Epilogue::Bias, Epilogue::Gelu, Epilogue::Residual, Epilogue::NormalizedInput})
      for (int64_t m : {16, 128, 512})
        for (const char* mode : {"fused", "eager", "torch"})
          configure(benchmark::RegisterBenchmark(bench_name(epilogue_name(e), mode, t, m).c_str(),
                                                 [=](benchmark::State& s) { bm_linear(s, e, mode, t, m); }),
                    t);
  for (int t : {1, 2})
    for (Epilogue e : {Epilogue::Gelu, Epilogue::Residual})
      benchmark::RegisterBenchmark(bench_name(epilogue_name(e), kPaired, t, 512).c_str(),
                                   [=](benchmark::State& s) { bm_linear(s, e, kPaired, t, 512); })
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime();
  for (int t : {1, 2})
    for (int64_t l : {128, 512, 2048}) {
      for (bool causal : {false, true})
        for (const char* mode : {"fused", "eager", "torch"})
          configure(benchmark::RegisterBenchmark(bench_name(causal ? "attention_causal" : "attention", mode, t, l).c_str(),
                                                 [=](benchmark::State& s) { bm_attention(s, causal, false, mode, t, l); }),
                    t);
      for (const char* mode : {"fused", "eager"})
        configure(benchmark::RegisterBenchmark(bench_name("attention_pattern", mode, t, l).c_str(),
                                               [=](benchmark::State& s) { bm_attention(s, false, true, mode, t, l); }),
                  t);
    }
  for (int t : {1, 2})
    for (int64_t tokens : {128, 512})
      for (const char* mode : {"fused", "eager", "torch"})
        configure(benchmark::RegisterBenchmark(bench_name("gpt2_block", mode, t, tokens).c_str(),
                                               [=](benchmark::State& s) { bm_gpt2_block(s, mode, t, tokens); }),
                  t);
  for (int t : {1, 2})
    for (int64_t tokens : {128, 512})
      benchmark::RegisterBenchmark(bench_name("gpt2_block", kPaired, t, tokens).c_str(),
                                   [=](benchmark::State& s) { bm_gpt2_block(s, kPaired, t, tokens); })
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime();
}

}  // namespace fjbench
