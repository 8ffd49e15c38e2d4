// Reduction benchmarks: single reductions over all elements and along dims, and the chains
// built on them (softmax, layer_norm, mean squared error), fused and eager, beside a
// STREAM-style read of the same bytes (BM_read, a hand-written vectorized sum).
//
// bytes_per_second counts each input once and the output once per evaluation, so a reduction
// row reads directly against BM_read of the same size.
#include <benchmark/benchmark.h>
#include <fusejit/fusejit.h>

#include <string>

#include "harness.h"
#include "reference_loops.h"

namespace fjbench {
namespace {

constexpr int64_t kFloat = sizeof(float);

struct Reduction {
  const char* name;
  fj::Tensor (*fn)(const fj::Tensor& x);
};

const Reduction kReductions[] = {
    {"sum", [](const fj::Tensor& x) { return fj::sum(x); }},
    {"mean", [](const fj::Tensor& x) { return fj::mean(x); }},
    {"max", [](const fj::Tensor& x) { return fj::max(x); }},
    {"min", [](const fj::Tensor& x) { return fj::min(x); }},
    {"sum_dim1", [](const fj::Tensor& x) { return fj::sum(x, {1}); }},
    {"max_dim1", [](const fj::Tensor& x) { return fj::amax(x, {1}); }},
    {"sum_dim0", [](const fj::Tensor& x) { return fj::sum(x, {0}); }},
    {"max_dim0", [](const fj::Tensor& x) { return fj::amax(x, {0}); }},
};

void bm_reduction(benchmark::State& state, const Reduction& op, Mode mode, int threads, int64_t n) {
  guarded(state, [&] {
    fj::FusionGuard fusion(mode == Mode::Fused);
    fj::NumThreadsGuard num_threads(threads);
    fj::Tensor x = make_input({n, n}, 1, -1, 1);
    time_lazy(state, [&] { return op.fn(x); }, n * n * kFloat);
  });
}

struct ReductionChain {
  const char* name;
  bool two_inputs;
  int64_t writes;  // outputs of the input's size (1) or a scalar (0)
  fj::Tensor (*fn)(const fj::Tensor& a, const fj::Tensor& b);
  // The same reads and arithmetic as a hand-written loop over [begin, end) (the `hand` rows),
  // or null.
  float (*hand)(const float* a, const float* b, int64_t begin, int64_t end);
};

const ReductionChain kChains[] = {
    {"softmax", false, 1, [](const fj::Tensor& a, const fj::Tensor&) { return fj::softmax(a, -1); }, nullptr},
    {"layer_norm", false, 1,
     [](const fj::Tensor& a, const fj::Tensor&) { return fj::layer_norm(a, {a.size(-1)}); }, nullptr},
    {"mse", true, 0, [](const fj::Tensor& a, const fj::Tensor& b) { return fj::mean((a - b) * (a - b)); },
     ref::squared_difference_sum},
};

void bm_reduction_chain(benchmark::State& state, const ReductionChain& chain, Mode mode, int threads,
                        int64_t n) {
  guarded(state, [&] {
    fj::FusionGuard fusion(mode == Mode::Fused);
    fj::NumThreadsGuard num_threads(threads);
    // The hand loop reads tensors made by fusejit too: the same kind of memory as the fused row.
    fj::Tensor a = make_input({n, n}, 2, -4, 4);
    fj::Tensor b = chain.two_inputs ? make_input({n, n}, 3, -4, 4) : fj::Tensor();
    int64_t bytes = ((chain.two_inputs ? 2 : 1) + chain.writes) * n * n * kFloat;
    if (mode != Mode::Hand) {
      time_lazy(state, [&] { return chain.fn(a, b); }, bytes);
      return;
    }
    const float* x = a.data_ptr<float>();
    const float* y = b.data_ptr<float>();
    float sums[2] = {0, 0};
    time_hand(
        state, threads,
        [&](int p, int parts) {
          auto [begin, end] = part_range(n * n, p, parts, 16);
          sums[p] = chain.hand(x, y, begin, end);
        },
        bytes);
    benchmark::DoNotOptimize(sums);
  });
}

void bm_read(benchmark::State& state, int threads, int64_t n) {
  int64_t count = n * n;
  AlignedBuffer a(count, 1.0f);
  float sums[2] = {0, 0};
  time_hand(
      state, threads,
      [&](int p, int parts) {
        auto [begin, end] = part_range(count, p, parts, 16);
        sums[p] = ref::read_sum(a.data(), begin, end);
      },
      count * kFloat);
  benchmark::DoNotOptimize(sums);
}

}  // namespace

void register_reductions() {
  const int thread_counts[] = {1, 2};
  for (int64_t n : {100, 500, 1000, 4096})
    for (int t : thread_counts)
      configure(benchmark::RegisterBenchmark(bench_name("read", nullptr, t, n).c_str(),
                                             [=](benchmark::State& s) { bm_read(s, t, n); }),
                t);
  for (const ReductionChain& chain : kChains)
    for (int64_t n : {1000, 4096})
      for (int t : thread_counts)
        for (Mode mode : {Mode::Fused, Mode::Eager, Mode::Hand})
          if (mode != Mode::Hand || chain.hand)
            configure(benchmark::RegisterBenchmark(
                          bench_name(chain.name, mode_name(mode), t, n).c_str(),
                          [=, &chain](benchmark::State& s) { bm_reduction_chain(s, chain, mode, t, n); }),
                      t);
  for (const Reduction& op : kReductions)
    for (int64_t n : {100, 500, 1000, 4096})
      for (int t : thread_counts)
        for (Mode mode : {Mode::Fused, Mode::Eager})
          configure(benchmark::RegisterBenchmark(
                        bench_name(op.name, mode_name(mode), t, n).c_str(),
                        [=, &op](benchmark::State& s) { bm_reduction(s, op, mode, t, n); }),
                    t);
}

}  // namespace fjbench
