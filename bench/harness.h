// The timing harness the benchmark files share: fused/eager/hand modes, inputs, timed loops
// for fusejit and for hand-written loops, and benchmark names.
#pragma once

#include <benchmark/benchmark.h>
#include <fusejit/fusejit.h>

#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include "bench_util.h"

namespace fjbench {

namespace fj = fusejit;

enum class Mode { Fused, Eager, Hand };

inline const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::Fused: return "fused";
    case Mode::Eager: return "eager";
    case Mode::Hand: return "hand";
  }
  return "?";
}

inline void skip(benchmark::State& state, const std::string& message) { state.SkipWithError(message.c_str()); }

// fusejit may throw while it is being changed (an op not implemented yet, a failed compile):
// report that benchmark as skipped instead of aborting the whole run.
template <class F>
void guarded(benchmark::State& state, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    skip(state, std::string("exception: ") + e.what());
  }
}

// A uniform random tensor in [lo, hi), evaluated (so its creation is never timed).
inline fj::Tensor make_input(const fj::Shape& shape, uint64_t seed, float lo, float hi) {
  fj::Tensor t = (fj::rand(shape, seed) * (hi - lo) + lo).eval();
  return t;
}

// The timed loop for fusejit: each iteration builds a new lazy graph and evaluates it. One
// evaluation beforehand compiles the kernels and puts the output buffers in fusejit's pool.
template <class Make>
void time_lazy(benchmark::State& state, Make&& make, int64_t bytes_per_eval) {
  {
    fj::Tensor warm = make();
    warm.eval();
  }
  for (auto _ : state) {
    fj::Tensor y = make();
    y.eval();
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes_per_eval);
}

// The timed loop for hand-written loops: part(p, parts) computes part p of `parts`.
template <class Part>
void time_hand(benchmark::State& state, int threads, Part&& part, int64_t bytes_per_eval) {
  if (threads == 1) {
    part(0, 1);
    for (auto _ : state) {
      part(0, 1);
      benchmark::ClobberMemory();
    }
  } else {
    PairRunner pair;
    auto body = [&](int p) { part(p, 2); };
    pair.run(body);
    for (auto _ : state) {
      pair.run(body);
      benchmark::ClobberMemory();
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes_per_eval);
}

// [begin, end) of part p of `parts` (1 or 2) over n elements (align 16) or rows (align 1).
inline std::pair<int64_t, int64_t> part_range(int64_t n, int p, int parts, int64_t align) {
  if (parts == 1) return {0, n};
  int64_t half = fjbench::half_point(n, align);
  return p == 0 ? std::pair<int64_t, int64_t>{0, half} : std::pair<int64_t, int64_t>{half, n};
}

inline std::string bench_name(const std::string& workload, const char* mode, int threads, int64_t n) {
  std::string name = "BM_" + workload + "/";
  if (mode != nullptr) name += std::string(mode) + "/";
  return name + "threads:" + std::to_string(threads) + "/" + std::to_string(n);
}

inline benchmark::internal::Benchmark* configure(benchmark::internal::Benchmark* bm, int threads) {
  bm->Unit(benchmark::kMicrosecond);
  if (threads > 1) bm->UseRealTime();
  return bm;
}

// Registration entry points of the benchmark files (main.cpp calls them).
void register_elementwise();
void register_reductions();

}  // namespace fjbench
