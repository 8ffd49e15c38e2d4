// fusejit against libtorch (PyTorch's C++ library) in one process: the seed's op list at
// 100², 500², 1000² and the fused chains at 1000² and 4096², each fused, eager and in
// libtorch, at 1 and 2 threads. Built only with -DFUSEJIT_BENCH_TORCH=ON (scripts/peers.sh).
//
// Names read BM_<workload>/<mode>/threads:<t>/<N>, mode being fused, eager (fusejit with fusion
// off) or torch. The three modes of a workload run one after another, so a drift of the
// machine affects them alike. Thread counts are set once per group: every threads:1
// benchmark runs before any threads:2 one, and torch::set_num_threads is called only when the
// count changes (calling it per iteration distorts libtorch's timings).
//
// Before a workload is timed, fusejit's result (fused and eager) is compared with libtorch's;
// a disagreement skips that workload's rows with the worst element in the message.
//
// Before any benchmark runs (so nothing is compiled yet), the first call of each fused chain on
// one thread is timed: building the schedule, compiling its kernels and one run. The JSON context
// holds it as "first_call <chain> <N>": "<ms> ms, <k> kernels, <c> ms compiling", beside
// torch.compile's first call from torch_compile.py.
#include <benchmark/benchmark.h>
#include <fusejit/fusejit.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "harness.h"

namespace fjbench {
namespace {

constexpr int64_t kFloat = sizeof(float);

enum class Family { Creation, Elementwise, Activation, Reduction, Chain, View, Overhead };

const char* family_name(Family family) {
  switch (family) {
    case Family::Creation: return "creation";
    case Family::Elementwise: return "elementwise";
    case Family::Activation: return "activation";
    case Family::Reduction: return "reduction";
    case Family::Chain: return "chain";
    case Family::View: return "view";
    case Family::Overhead: return "overhead";
  }
  return "?";
}

// A workload on up to three inputs of shape [n, n] (`inputs` of them; w is in [0.5, 1.5), b
// is a row of shape [n]).
struct Workload {
  const char* name;
  Family family;
  int inputs;  // 0: creation; 1: x; 2: x, w; 3: x, w, b
  float lo, hi;
  double tolerance;  // relative to max(1, |torch|), after scaling by the output's magnitude
  std::function<fj::Tensor(const std::vector<fj::Tensor>&, int64_t n)> fusejit;
  std::function<torch::Tensor(const std::vector<torch::Tensor>&, int64_t n)> torch;
  int64_t (*bytes)(int64_t n);
};

int64_t read1(int64_t n) { return n * n * kFloat; }
int64_t read1_write1(int64_t n) { return 2 * n * n * kFloat; }
int64_t read2_write1(int64_t n) { return 3 * n * n * kFloat; }
int64_t read2(int64_t n) { return 2 * n * n * kFloat; }
int64_t gelu_bytes(int64_t n) { return (3 * n * n + n) * kFloat; }
int64_t write1(int64_t n) { return n * n * kFloat; }
int64_t read1_write_half(int64_t n) { return (n * n + n * n / 2) * kFloat; }
int64_t read2_write2(int64_t n) { return 4 * n * n * kFloat; }

using FJ = std::vector<fj::Tensor>;
using TT = std::vector<torch::Tensor>;

std::vector<Workload> workloads() {
  std::vector<float> data_1000(1000 * 1000);
  for (size_t i = 0; i < data_1000.size(); ++i) data_1000[i] = static_cast<float>(i % 1000) * 0.001f;
  return {
      {"zeros", Family::Creation, 0, 0, 0, 0,
       [](const FJ&, int64_t n) { return fj::zeros({n, n}); },
       [](const TT&, int64_t n) { return torch::zeros({n, n}); }, write1},
      {"ones", Family::Creation, 0, 0, 0, 0,
       [](const FJ&, int64_t n) { return fj::ones({n, n}); },
       [](const TT&, int64_t n) { return torch::ones({n, n}); }, write1},
      {"from_data", Family::Creation, 0, 0, 0, 0,
       [](const FJ&, int64_t n) {
         static std::vector<float> data;
         data.assign(n * n, 0.5f);
         return fj::tensor(data, {n, n});
       },
       [](const TT&, int64_t n) {
         static std::vector<float> data;
         data.assign(n * n, 0.5f);
         return torch::from_blob(data.data(), {n, n}).clone();
       },
       write1},
      {"add", Family::Elementwise, 2, -1, 1, 1e-6, [](const FJ& in, int64_t) { return in[0] + in[1]; },
       [](const TT& in, int64_t) { return in[0] + in[1]; }, read2_write1},
      {"sub", Family::Elementwise, 2, -1, 1, 1e-6, [](const FJ& in, int64_t) { return in[0] - in[1]; },
       [](const TT& in, int64_t) { return in[0] - in[1]; }, read2_write1},
      {"mul", Family::Elementwise, 2, -1, 1, 1e-6, [](const FJ& in, int64_t) { return in[0] * in[1]; },
       [](const TT& in, int64_t) { return in[0] * in[1]; }, read2_write1},
      {"div", Family::Elementwise, 2, -1, 1, 1e-6, [](const FJ& in, int64_t) { return in[0] / in[1]; },
       [](const TT& in, int64_t) { return in[0] / in[1]; }, read2_write1},
      {"add_scalar", Family::Elementwise, 1, -1, 1, 1e-6,
       [](const FJ& in, int64_t) { return in[0] + 1.5f; },
       [](const TT& in, int64_t) { return in[0] + 1.5f; }, read1_write1},
      {"mul_scalar", Family::Elementwise, 1, -1, 1, 1e-6,
       [](const FJ& in, int64_t) { return in[0] * 1.5f; },
       [](const TT& in, int64_t) { return in[0] * 1.5f; }, read1_write1},
      {"relu", Family::Activation, 1, -4, 4, 1e-6, [](const FJ& in, int64_t) { return fj::relu(in[0]); },
       [](const TT& in, int64_t) { return torch::relu(in[0]); }, read1_write1},
      {"sigmoid", Family::Activation, 1, -4, 4, 1e-6,
       [](const FJ& in, int64_t) { return fj::sigmoid(in[0]); },
       [](const TT& in, int64_t) { return torch::sigmoid(in[0]); }, read1_write1},
      {"tanh", Family::Activation, 1, -4, 4, 1e-6, [](const FJ& in, int64_t) { return fj::tanh(in[0]); },
       [](const TT& in, int64_t) { return torch::tanh(in[0]); }, read1_write1},
      // libtorch's erf-gelu is off by up to 1.1e-6 near x = -3.5 (fusejit's by at most 2.7e-7).
      {"gelu", Family::Activation, 1, -4, 4, 2e-6, [](const FJ& in, int64_t) { return fj::gelu(in[0]); },
       [](const TT& in, int64_t) { return torch::gelu(in[0]); }, read1_write1},
      {"softmax", Family::Activation, 1, -4, 4, 1e-6,
       [](const FJ& in, int64_t) { return fj::softmax(in[0], -1); },
       [](const TT& in, int64_t) { return torch::softmax(in[0], -1); }, read1_write1},
      {"sum", Family::Reduction, 1, -1, 1, 1e-5, [](const FJ& in, int64_t) { return fj::sum(in[0]); },
       [](const TT& in, int64_t) { return in[0].sum(); }, read1},
      {"mean", Family::Reduction, 1, -1, 1, 1e-5, [](const FJ& in, int64_t) { return fj::mean(in[0]); },
       [](const TT& in, int64_t) { return in[0].mean(); }, read1},
      {"max", Family::Reduction, 1, -1, 1, 0, [](const FJ& in, int64_t) { return fj::max(in[0]); },
       [](const TT& in, int64_t) { return in[0].max(); }, read1},
      {"min", Family::Reduction, 1, -1, 1, 0, [](const FJ& in, int64_t) { return fj::min(in[0]); },
       [](const TT& in, int64_t) { return in[0].min(); }, read1},
      {"sum_dim1", Family::Reduction, 1, -1, 1, 1e-5,
       [](const FJ& in, int64_t) { return fj::sum(in[0], {1}); },
       [](const TT& in, int64_t) { return in[0].sum(1); }, read1},
      {"mean_dim1", Family::Reduction, 1, -1, 1, 1e-5,
       [](const FJ& in, int64_t) { return fj::mean(in[0], {1}); },
       [](const TT& in, int64_t) { return in[0].mean(1); }, read1},
      {"max_dim1", Family::Reduction, 1, -1, 1, 0,
       [](const FJ& in, int64_t) { return fj::amax(in[0], {1}); },
       [](const TT& in, int64_t) { return in[0].amax(1); }, read1},
      {"min_dim1", Family::Reduction, 1, -1, 1, 0,
       [](const FJ& in, int64_t) { return fj::amin(in[0], {1}); },
       [](const TT& in, int64_t) { return in[0].amin(1); }, read1},
      {"chain_gelu", Family::Chain, 3, -3, 3, 1e-5,
       [](const FJ& in, int64_t) { return fj::gelu(in[0] * in[1] + in[2]); },
       [](const TT& in, int64_t) { return torch::gelu(in[0] * in[1] + in[2]); }, gelu_bytes},
      {"chain_silu", Family::Chain, 1, -6, 6, 1e-5,
       [](const FJ& in, int64_t) { return in[0] * fj::sigmoid(in[0]); },
       [](const TT& in, int64_t) { return in[0] * torch::sigmoid(in[0]); }, read1_write1},
      {"chain7", Family::Chain, 1, -3, 3, 1e-5,
       [](const FJ& in, int64_t) { return fj::relu(fj::tanh(in[0] * 2 + 1) * in[0] - 0.5f) * 3; },
       [](const TT& in, int64_t) { return torch::relu(torch::tanh(in[0] * 2 + 1) * in[0] - 0.5) * 3; },
       read1_write1},
      {"chain_softmax", Family::Chain, 1, -4, 4, 1e-6,
       [](const FJ& in, int64_t) { return fj::softmax(in[0], -1); },
       [](const TT& in, int64_t) { return torch::softmax(in[0], -1); }, read1_write1},
      {"chain_layer_norm", Family::Chain, 1, -4, 4, 1e-4,
       [](const FJ& in, int64_t n) { return fj::layer_norm(in[0], {n}); },
       [](const TT& in, int64_t n) { return torch::layer_norm(in[0], {n}); }, read1_write1},
      {"chain_mse", Family::Chain, 2, -4, 4, 1e-5,
       [](const FJ& in, int64_t) { return fj::mean((in[0] - in[1]) * (in[0] - in[1])); },
       [](const TT& in, int64_t) { return torch::mse_loss(in[0], in[1]); }, read2},
      // Kernels reading through views, against the contiguous x + y they should stay close to.
      {"view_contiguous_add", Family::View, 2, -1, 1, 1e-6, [](const FJ& in, int64_t) { return in[0] + in[1]; },
       [](const TT& in, int64_t) { return in[0] + in[1]; }, read2_write1},
      {"view_t_add", Family::View, 2, -1, 1, 1e-6, [](const FJ& in, int64_t) { return in[0].t() + in[1]; },
       [](const TT& in, int64_t) { return in[0].t() + in[1]; }, read2_write1},
      // Reads every other column: half the elements, but every cache line of x.
      {"view_slice_mul", Family::View, 1, -1, 1, 1e-6,
       [](const FJ& in, int64_t n) { return in[0].slice(1, 0, n, 2) * 2; },
       [](const TT& in, int64_t n) { return in[0].slice(1, 0, n, 2) * 2; }, read1_write_half},
      // Joins: each part copied into its place (cat of two inputs reads and writes 2 n² floats).
      {"cat_rows", Family::View, 2, -1, 1, 0, [](const FJ& in, int64_t) { return fj::cat({in[0], in[1]}, 0); },
       [](const TT& in, int64_t) { return torch::cat({in[0], in[1]}, 0); }, read2_write2},
      {"cat_columns", Family::View, 2, -1, 1, 0, [](const FJ& in, int64_t) { return fj::cat({in[0], in[1]}, 1); },
       [](const TT& in, int64_t) { return torch::cat({in[0], in[1]}, 1); }, read2_write2},
      {"overhead_add", Family::Overhead, 2, -1, 1, 1e-6,
       [](const FJ& in, int64_t) { return in[0] + in[1]; },
       [](const TT& in, int64_t) { return in[0] + in[1]; }, read2_write1},
      {"overhead_chain7", Family::Overhead, 1, -3, 3, 1e-5,
       [](const FJ& in, int64_t) { return fj::relu(fj::tanh(in[0] * 2 + 1) * in[0] - 0.5f) * 3; },
       [](const TT& in, int64_t) { return torch::relu(torch::tanh(in[0] * 2 + 1) * in[0] - 0.5) * 3; },
       read1_write1},
  };
}

const std::vector<Workload>& all_workloads() {
  static const std::vector<Workload> all = workloads();
  return all;
}

std::vector<int64_t> sizes_of(Family family) {
  switch (family) {
    case Family::Chain:
    case Family::View: return {1000, 4096};
    case Family::Overhead: return {1, 100};
    default: return {100, 500, 1000};
  }
}

// The same random inputs for both libraries.
struct Inputs {
  std::vector<fj::Tensor> fusejit;
  std::vector<torch::Tensor> torch;
};

Inputs make_inputs(const Workload& w, int64_t n) {
  Inputs in;
  for (int i = 0; i < w.inputs; ++i) {
    fj::Shape shape = i == 2 ? fj::Shape{n} : fj::Shape{n, n};
    float lo = i == 1 ? 0.5f : i == 2 ? -1.0f : w.lo;
    float hi = i == 1 ? 1.5f : i == 2 ? 1.0f : w.hi;
    fj::Tensor t = make_input(shape, 10 + i, lo, hi);
    in.fusejit.push_back(t);
    in.torch.push_back(torch::from_blob(t.data_ptr<float>(), shape, torch::kFloat32).clone());
  }
  return in;
}

// "" when fusejit (fused or eager) agrees with libtorch, else the worst element.
std::string check(const Workload& w, int64_t n, bool fused) {
  static std::map<std::tuple<std::string, int64_t, bool>, std::string> cache;
  auto key = std::make_tuple(std::string(w.name), n, fused);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  std::string problem;
  try {
    fj::FusionGuard fusion(fused);
    Inputs in = make_inputs(w, n);
    std::vector<float> ours = w.fusejit(in.fusejit, n).to_vector<float>();
    torch::Tensor theirs = w.torch(in.torch, n).contiguous().to(torch::kFloat32);
    const float* t = theirs.data_ptr<float>();
    if (static_cast<int64_t>(ours.size()) != theirs.numel()) {
      problem = "sizes differ: " + std::to_string(ours.size()) + " vs " + std::to_string(theirs.numel());
    } else {
      double worst = 0;
      size_t at = 0;
      for (size_t i = 0; i < ours.size(); ++i) {
        double err = std::fabs(static_cast<double>(ours[i]) - t[i]) / std::max(1.0, std::fabs(static_cast<double>(t[i])));
        if (std::isnan(err)) err = INFINITY;
        if (err > worst) worst = err, at = i;
      }
      if (worst > w.tolerance) {
        char text[256];
        std::snprintf(text, sizeof text, "%s %s disagrees with libtorch by %.3g at %zu: %.9g vs %.9g",
                      w.name, fused ? "fused" : "eager", worst, at, static_cast<double>(ours[at]),
                      static_cast<double>(t[at]));
        problem = text;
      }
    }
  } catch (const std::exception& e) {
    problem = std::string("exception: ") + e.what();
  }
  cache[key] = problem;
  return problem;
}

void record_first_calls() {
  fj::NumThreadsGuard one_thread(1);
  for (const Workload& w : all_workloads()) {
    if (w.family != Family::Chain) continue;
    for (int64_t n : sizes_of(w.family)) {
      std::string value;
      try {
        Inputs in = make_inputs(w, n);
        fj::Stats before = fj::stats();
        auto start = std::chrono::steady_clock::now();
        fj::Tensor y = w.fusejit(in.fusejit, n);
        y.eval();
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        fj::Stats after = fj::stats();
        int64_t kernels = after.kernels_compiled - before.kernels_compiled;
        char text[128];
        std::snprintf(text, sizeof text, "%.2f ms, %lld %s, %.2f ms compiling", ms,
                      static_cast<long long>(kernels), kernels == 1 ? "kernel" : "kernels",
                      after.compile_ms - before.compile_ms);
        value = text;
      } catch (const std::exception& e) {
        value = std::string("exception: ") + e.what();
      }
      benchmark::AddCustomContext("first_call " + std::string(w.name) + " " + std::to_string(n), value);
    }
  }
}

void set_torch_threads(int threads) {
  if (torch::get_num_threads() != threads) torch::set_num_threads(threads);
}

void bm_workload(benchmark::State& state, const Workload& w, Mode mode, int threads, int64_t n) {
  guarded(state, [&] {
    if (mode != Mode::Hand && w.family != Family::Creation) {
      std::string problem = check(w, n, mode == Mode::Fused);
      if (!problem.empty()) return skip(state, problem);
    }
    set_torch_threads(threads);
    Inputs in = make_inputs(w, n);
    if (mode == Mode::Hand) {  // libtorch
      torch::Tensor warm = w.torch(in.torch, n);
      for (auto _ : state) {
        torch::Tensor y = w.torch(in.torch, n);
        benchmark::DoNotOptimize(y.data_ptr());
      }
    } else {
      fj::FusionGuard fusion(mode == Mode::Fused);
      fj::NumThreadsGuard num_threads(threads);
      time_lazy(state, [&] { return w.fusejit(in.fusejit, n); }, 0);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * w.bytes(n));
    state.SetLabel(family_name(w.family));
  });
}

// libtorch is "hand" in the shared harness's Mode; printed as torch.
const char* torch_mode_name(Mode mode) { return mode == Mode::Hand ? "torch" : mode_name(mode); }

}  // namespace

void register_torch() {
  const std::vector<Workload>& all = all_workloads();
  for (int t : {1, 2})
    for (const Workload& w : all)
      for (int64_t n : sizes_of(w.family))
        for (Mode mode : {Mode::Fused, Mode::Eager, Mode::Hand})
          configure(benchmark::RegisterBenchmark(bench_name(w.name, torch_mode_name(mode), t, n).c_str(),
                                                 [=, &w](benchmark::State& s) { bm_workload(s, w, mode, t, n); }),
                    t);
}

}  // namespace fjbench

namespace fjbench {
void register_in_place();  // in_place_bench.cpp
void register_matmul();    // matmul_bench.cpp
}  // namespace fjbench

int main(int argc, char** argv) {
  fusejit::set_disk_cache_dir("");  // compile times are among the figures: every run compiles
  fjbench::register_torch();
  fjbench::register_in_place();
  fjbench::register_matmul();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("fusejit_target", fusejit::target_description());
  benchmark::AddCustomContext("torch_version", TORCH_VERSION);
  benchmark::AddCustomContext("torch_parallel_info", at::get_parallel_info());
  fjbench::record_first_calls();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
