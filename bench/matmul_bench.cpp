// Matmul with epilogues against libtorch, in the same process as torch_bench.cpp (built with
// -DFUSEJIT_BENCH_TORCH=ON): linear layers of a GPT-2-sized MLP, x [M, 768] against weights of
// 3072 x 768 (up) and 768 x 3072 (down).
//
//   BM_linear/<mode>/threads:t/M           linear(x, w, b): the product and its bias
//   BM_linear_gelu/<mode>/threads:t/M      gelu(linear(x, w, b)) (up projection)
//   BM_linear_residual/<mode>/threads:t/M  x + linear(h, w, b) (down projection)
//   BM_matmul_bare/<mode>/threads:t/M      x @ w.t() with nothing after it (up projection)
//
// Modes: fused (fusejit), eager (fusejit with fusion off: the epilogue a pass of its own), torch
// (libtorch eager: addmm, then gelu or an in-place add). Each fusejit row's
// result is compared with libtorch's first (the row is skipped with the worst element if not).
// GFLOPS counts the product's 2 M N K.
#include <benchmark/benchmark.h>
#include <fusejit/fusejit.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "harness.h"

namespace fjbench {
namespace {

constexpr int64_t kModel = 768, kHidden = 3072;

enum class Epilogue { Bias, Gelu, Residual, Bare };

const char* epilogue_name(Epilogue e) {
  switch (e) {
    case Epilogue::Bias: return "linear";
    case Epilogue::Gelu: return "linear_gelu";
    case Epilogue::Residual: return "linear_residual";
    case Epilogue::Bare: return "matmul_bare";
  }
  return "?";
}

torch::Tensor as_torch(const fj::Tensor& t) {
  std::vector<int64_t> sizes(t.sizes().begin(), t.sizes().end());
  return torch::from_blob(t.data_ptr<float>(), sizes);
}

void bm_linear(benchmark::State& state, Epilogue epilogue, const char* mode, int threads, int64_t m) {
  guarded(state, [&] {
    bool down = epilogue == Epilogue::Residual;
    int64_t in = down ? kHidden : kModel, out = down ? kModel : kHidden;
    fj::Tensor x = make_input({m, in}, 51, -1, 1), w = make_input({out, in}, 52, -0.05f, 0.05f);
    fj::Tensor b = make_input({out}, 53, -0.1f, 0.1f), residual = make_input({m, out}, 54, -1, 1);
    auto fusejit_program = [&] {
      switch (epilogue) {
        case Epilogue::Bias: return fj::linear(x, w, b);
        case Epilogue::Gelu: return fj::gelu(fj::linear(x, w, b));
        case Epilogue::Residual: return residual + fj::linear(x, w, b);
        case Epilogue::Bare: return fj::matmul(x, w.t());
      }
      return fj::Tensor();
    };
    torch::Tensor tx = as_torch(x), tw = as_torch(w), tb = as_torch(b), tr = as_torch(residual);
    auto torch_program = [&] {
      switch (epilogue) {
        case Epilogue::Bias: return torch::addmm(tb, tx, tw.t());
        case Epilogue::Gelu: return torch::gelu(torch::addmm(tb, tx, tw.t()));
        case Epilogue::Residual: return torch::addmm(tb, tx, tw.t()).add_(tr);
        case Epilogue::Bare: return torch::mm(tx, tw.t());
      }
      return torch::Tensor();
    };
    if (torch::get_num_threads() != threads) torch::set_num_threads(threads);
    if (std::strcmp(mode, "torch") == 0) {
      torch::Tensor warm = torch_program();
      for (auto _ : state) benchmark::DoNotOptimize(torch_program().data_ptr());
    } else {
      fj::FusionGuard fusion(std::strcmp(mode, "fused") == 0);
      fj::NumThreadsGuard num_threads(threads);
      torch::Tensor expected = torch_program();
      std::vector<float> got = fusejit_program().to_vector<float>();
      const float* want = expected.data_ptr<float>();
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - want[i]));
      if (worst > 1e-3) return skip(state, "differs from libtorch by " + std::to_string(worst));
      time_lazy(state, fusejit_program, 0);
    }
    state.counters["GFLOPS"] = benchmark::Counter(2.0 * static_cast<double>(m * in * out) / 1e9,
                                                  benchmark::Counter::kIsIterationInvariantRate);
  });
}

}  // namespace

void register_matmul() {
  for (int t : {1, 2})
    for (Epilogue e : {Epilogue::Bare, Epilogue::Bias, Epilogue::Gelu, Epilogue::Residual})
      for (int64_t m : {16, 128, 512})
        for (const char* mode : {"fused", "eager", "torch"})
          configure(benchmark::RegisterBenchmark(bench_name(epilogue_name(e), mode, t, m).c_str(),
                                                 [=](benchmark::State& s) { bm_linear(s, e, mode, t, m); }),
                    t);
}

}  // namespace fjbench
