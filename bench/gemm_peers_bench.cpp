// The float32 GEMM candidates side by side on this machine, for choosing fusejit's GEMM core:
// fusejit's own matmul (writing C in place, one kernel), libtorch's torch::mm (MKL in the PyTorch wheel), oneDNN's dnnl_sgemm, OpenBLAS and BLIS
// (Debian's builds, each loaded with dlopen: both export cblas_sgemm), at 1 and 2 threads, on
// square sizes and on inference shapes (x [M, K] times a weight [N, K] transposed, as linear
// computes it). Built only with -DFUSEJIT_BENCH_TORCH=ON (scripts/peers.sh).
//
// Rows read BM_sgemm/<library>/threads:<t>/<M>x<N>x<K>[_wT]; GFLOPS is 2MNK per second and
// peak_pct the percentage of the FMA peak measured at startup on the same number of threads
// (BM_fma_peak times the same loop as a row; the context holds "fma_peak_gflops_<t>t").
// Every library's result is checked against torch::mm's before it is timed.
//
// BM_sgemm_paired/fusejit_vs_dnnl/threads:<t>/<shape> times fusejit and oneDNN in pairs, one call
// each in alternating order; `vs_dnnl` is the median over pairs of oneDNN's time over fusejit's
// (above 1: fusejit faster). Within a pair both meet the same machine, so this machine's drift
// (5-10% within a minute) cancels, which separate rows' medians do not. Run these rows with
// OMP_WAIT_POLICY=passive: oneDNN's OpenMP threads otherwise spin for milliseconds after each
// call, beside the next call's threads (fusejit's 2-thread 1024^3 took 13.1 ms so, 11.5 ms
// without, and oneDNN's own time moved by 1%). A pause between calls instead lets the CPU
// idle, which slowed both by a quarter.
//
// libxsmm is not a row: its JIT covers (M N K)^(1/3) <= 64 by default, and every shape here is
// beyond that, where it calls the BLAS it is linked with.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <omp.h>
#include <fusejit/fusejit.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "fma_peak.h"

namespace fjbench {
namespace {

struct Shape3 {
  int64_t m, n, k;
  bool weight_transposed;  // B is a [N, K] weight read transposed
  std::string name() const {
    return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + (weight_transposed ? "_wT" : "");
  }
  double flops() const { return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k); }
};

std::vector<Shape3> shapes() {
  std::vector<Shape3> all;
  for (int64_t s : {256, 512, 1024, 2048, 4096}) all.push_back({s, s, s, false});
  for (int64_t m : {1, 16, 128, 512})
    for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{768, 768}, {3072, 768}, {768, 3072}})
      all.push_back({m, n, k, true});
  return all;
}

using Cblas = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

struct Library {
  std::string name;
  std::function<void(int)> set_threads;
  // C[M, N] = A[M, K] B, B being [K, N] or (weight_transposed) [N, K] read transposed.
  std::function<void(const Shape3&, const float*, const float*, float*)> gemm;
};

Library cblas_library(const char* name, const char* path, const char* thread_setter) {
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) return {name, nullptr, nullptr};
  auto sgemm = reinterpret_cast<Cblas>(dlsym(handle, "cblas_sgemm"));
  auto setter = reinterpret_cast<void (*)(int)>(dlsym(handle, thread_setter));
  if (!sgemm || !setter) return {name, nullptr, nullptr};
  return {name, [setter](int t) { setter(t); },
          [sgemm](const Shape3& s, const float* a, const float* b, float* c) {
            sgemm(kRowMajor, kNoTrans, s.weight_transposed ? kTrans : kNoTrans, static_cast<int>(s.m),
                  static_cast<int>(s.n), static_cast<int>(s.k), 1.f, a, static_cast<int>(s.k), b,
                  static_cast<int>(s.weight_transposed ? s.k : s.n), 0.f, c, static_cast<int>(s.n));
          }};
}

// oneDNN is loaded with its own symbols first: the PyTorch wheel carries another oneDNN version
// whose C++ symbols it would otherwise bind to (and compute wrong results with).
Library dnnl_library() {
  using Sgemm = int (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                        float, float*, int64_t);
  void* handle = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  auto sgemm = handle ? reinterpret_cast<Sgemm>(dlsym(handle, "dnnl_sgemm")) : nullptr;
  if (!sgemm) return {"dnnl", nullptr, nullptr};
  return {"dnnl", [](int t) { omp_set_num_threads(t); },
          [sgemm](const Shape3& s, const float* a, const float* b, float* c) {
            sgemm('N', s.weight_transposed ? 'T' : 'N', s.m, s.n, s.k, 1.f, a, s.k, b, s.weight_transposed ? s.k : s.n,
                  0.f, c, s.n);
          }};
}

const std::vector<Library>& libraries() {
  static const std::vector<Library> all = [] {
    std::vector<Library> list;
    list.push_back({"fusejit", [](int t) { fusejit::set_num_threads(t); },
                    [](const Shape3& s, const float* a, const float* b, float* c) {
                      fusejit::Tensor ta = fusejit::from_blob(const_cast<float*>(a), {s.m, s.k});
                      fusejit::Tensor tb = s.weight_transposed
                                               ? fusejit::from_blob(const_cast<float*>(b), {s.n, s.k}).t()
                                               : fusejit::from_blob(const_cast<float*>(b), {s.k, s.n});
                      fusejit::Tensor tc = fusejit::from_blob(c, {s.m, s.n});
                      tc.copy_(fusejit::matmul(ta, tb)).eval();  // one kernel, writing c
                    }});
    list.push_back({"torch", [](int t) { torch::set_num_threads(t); },
                    [](const Shape3& s, const float* a, const float* b, float* c) {
                      torch::Tensor ta = torch::from_blob(const_cast<float*>(a), {s.m, s.k});
                      torch::Tensor tb = s.weight_transposed ? torch::from_blob(const_cast<float*>(b), {s.n, s.k}).t()
                                                             : torch::from_blob(const_cast<float*>(b), {s.k, s.n});
                      torch::Tensor tc = torch::from_blob(c, {s.m, s.n});
                      torch::mm_out(tc, ta, tb);
                    }});
    list.push_back(dnnl_library());
    list.push_back(cblas_library("openblas", "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
                                 "openblas_set_num_threads"));
    list.push_back(cblas_library("blis", "/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4",
                                 "bli_thread_set_num_threads"));
    return list;
  }();
  return all;
}

const Library& library_named(const std::string& name) {
  return *std::find_if(libraries().begin(), libraries().end(), [&](const Library& l) { return l.name == name; });
}

// A and B uniform in [-0.5, 0.5), C and the expected C.
struct Operands {
  AlignedBuffer a, b, c, expected;
  explicit Operands(const Shape3& s) : a(s.m * s.k), b(s.k * s.n), c(s.m * s.n), expected(s.m * s.n) {
    uint32_t state = 12345;
    auto next = [&] {
      state = state * 1664525u + 1013904223u;
      return static_cast<float>(state >> 8) / static_cast<float>(1 << 24) - 0.5f;
    };
    for (int64_t i = 0; i < a.size(); ++i) a.data()[i] = next();
    for (int64_t i = 0; i < b.size(); ++i) b.data()[i] = next();
  }
};

void bm_sgemm(benchmark::State& state, const Library& library, int threads, const Shape3& shape) {
  if (!library.gemm) {
    state.SkipWithError((library.name + " is not installed").c_str());
    return;
  }
  torch::set_num_threads(threads);
  library.set_threads(threads);
  Operands o(shape);
  const Library& torch = library_named("torch");
  torch.gemm(shape, o.a.data(), o.b.data(), o.expected.data());
  library.gemm(shape, o.a.data(), o.b.data(), o.c.data());
  // Float32 sums of K products of values in [-0.5, 0.5): bounded by K * 2^-24 * 0.25 per term.
  double tolerance = 4.0 * static_cast<double>(shape.k) * 0.25 * std::ldexp(1.0, -24) + 1e-6;
  for (int64_t i = 0; i < shape.m * shape.n; ++i)
    if (std::fabs(o.c.data()[i] - o.expected.data()[i]) > tolerance) {
      state.SkipWithError((library.name + " disagrees with torch::mm at element " + std::to_string(i)).c_str());
      return;
    }
  for (auto _ : state) {
    library.gemm(shape, o.a.data(), o.b.data(), o.c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(shape.flops() / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_pct"] =
      benchmark::Counter(shape.flops() / 1e9 / peak_gflops(threads) * 100, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_sgemm_paired(benchmark::State& state, int threads, const Shape3& shape) {
  const Library& fusejit = library_named("fusejit");
  const Library& dnnl = library_named("dnnl");
  if (!dnnl.gemm) {
    state.SkipWithError("dnnl is not installed");
    return;
  }
  fusejit.set_threads(threads);
  dnnl.set_threads(threads);
  Operands o(shape);
  auto call = [&](const Library& library) { return [&] { library.gemm(shape, o.a.data(), o.b.data(), o.c.data()); }; };
  call(fusejit)();  // compiles
  call(dnnl)();
  time_paired(state, "fusejit", call(fusejit), "dnnl", call(dnnl));
}

void bm_fma_peak(benchmark::State& state, int threads) {
  double flops = 0;
  for (auto _ : state) flops += fma_flops(threads, 1'000'000);
  state.counters["GFLOPS"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
}

void register_gemm() {
  for (int t : {1, 2}) {
    benchmark::RegisterBenchmark(("BM_fma_peak/threads:" + std::to_string(t)).c_str(),
                                 [t](benchmark::State& s) { bm_fma_peak(s, t); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (const Shape3& shape : shapes())
      for (const Library& library : libraries())
        benchmark::RegisterBenchmark(
            ("BM_sgemm/" + library.name + "/threads:" + std::to_string(t) + "/" + shape.name()).c_str(),
            [&library, t, shape](benchmark::State& s) { bm_sgemm(s, library, t, shape); })
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    for (const Shape3& shape : shapes())
      benchmark::RegisterBenchmark(("BM_sgemm_paired/fusejit_vs_dnnl/threads:" + std::to_string(t) + "/" + shape.name()).c_str(),
                                   [t, shape](benchmark::State& s) { bm_sgemm_paired(s, t, shape); })
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime();
  }
}

}  // namespace
}  // namespace fjbench

int main(int argc, char** argv) {
  fjbench::register_gemm();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (int t : {1, 2}) {
    char value[32];
    std::snprintf(value, sizeof value, "%.1f", fjbench::peak_gflops(t));
    benchmark::AddCustomContext("fma_peak_gflops_" + std::to_string(t) + "t", value);
  }
  benchmark::AddCustomContext("torch_version", TORCH_VERSION);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
