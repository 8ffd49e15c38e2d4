// In-place updates and transposed reads against hand-written loops and libtorch, in the same
// process as torch_bench.cpp (built with -DFUSEJIT_BENCH_TORCH=ON).
//
//   BM_adam/<mode>/threads:t/N         one Adam step over N parameters: fused (fusejit, written
//                                      in place), functional (fusejit, three new tensors), hand
//                                      (reference_loops.cpp), torch (torch::_fused_adam_, what
//                                      Adam(fused=True) runs, on the same buffers), traffic (the
//                                      step's reads and writes with one add each: its memory roof)
//   BM_update_loop/<mode>/threads:t/N  100 steps of x.mul_(0.9).add_(g) on an N x N tensor, each
//                                      evaluated: fused (in place), functional (x = x * 0.9 + g),
//                                      torch (in place)
//   BM_transpose_add/<mode>/threads:t/N  x.t() + y on N x N: fused, hand (16 x 16 blocks), and
//                                      beside it contiguous (x + y, fused) and tile_traffic (the
//                                      bytes of fused's 256 x 64 tiles moved without transposing:
//                                      the roof of a tiled transposed read)
// bytes_per_second counts each tensor read or written once per step.
#include <benchmark/benchmark.h>
#include <fusejit/fusejit.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "harness.h"
#include "reference_loops.h"

namespace fjbench {
namespace {

constexpr int64_t kFloat = sizeof(float);

// Adam's settings at step 10, as torch's fused Adam computes them.
struct AdamSettings {
  float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  int step = 10;
  float step_size() const { return lr / (1 - std::pow(b1, static_cast<float>(step))); }
  float inv_sqrt_bc2() const { return 1 / std::sqrt(1 - std::pow(b2, static_cast<float>(step))); }
  ref::Adam hand() const { return {b1, b2, eps, step_size(), inv_sqrt_bc2()}; }
};

struct AdamState {
  fj::Tensor p, g, m, v;
};

AdamState adam_state(int64_t n) {
  return {make_input({n}, 21, -1, 1), make_input({n}, 22, -1, 1), make_input({n}, 23, -0.1f, 0.1f),
          make_input({n}, 24, 0, 0.01f)};
}

void adam_in_place(AdamState& s, const AdamSettings& a) {
  s.m.mul_(a.b1).add_(s.g * (1 - a.b1));
  s.v.mul_(a.b2).add_(s.g * s.g * (1 - a.b2));
  s.p.sub_(s.m * a.step_size() / (fj::sqrt(s.v) * a.inv_sqrt_bc2() + a.eps));
  fj::eval({s.p, s.m, s.v});
}

void adam_functional(AdamState& s, const AdamSettings& a) {
  fj::Tensor m = s.m * a.b1 + s.g * (1 - a.b1);
  fj::Tensor v = s.v * a.b2 + s.g * s.g * (1 - a.b2);
  fj::Tensor p = s.p - m * a.step_size() / (fj::sqrt(v) * a.inv_sqrt_bc2() + a.eps);
  fj::eval({p, m, v});
  s = {p, s.g, m, v};
}

void bm_adam(benchmark::State& state, const char* mode, int threads, int64_t n) {
  guarded(state, [&] {
    AdamSettings a;
    fj::NumThreadsGuard num_threads(threads);
    if (std::strcmp(mode, "torch") == 0) {
      if (torch::get_num_threads() != threads) torch::set_num_threads(threads);
      // The same buffers as the other rows (huge pages where the system grants them).
      AdamState s = adam_state(n);
      auto t = [n](fj::Tensor& x) { return torch::from_blob(x.data_ptr<float>(), {n}); };
      std::vector<torch::Tensor> p{t(s.p)}, g{t(s.g)}, m{t(s.m)}, v{t(s.v)};
      std::vector<torch::Tensor> steps{torch::full({}, static_cast<float>(a.step))};
      auto step = [&] {
        torch::_fused_adam_(p, g, m, v, {}, steps, a.lr, a.b1, a.b2, 0.0, a.eps, false, false);
      };
      step();
      for (auto _ : state) step();
    } else if (std::strcmp(mode, "hand") == 0 || std::strcmp(mode, "traffic") == 0) {
      bool traffic = std::strcmp(mode, "traffic") == 0;
      AdamState s = adam_state(n);
      float *p = s.p.data_ptr<float>(), *m = s.m.data_ptr<float>(), *v = s.v.data_ptr<float>();
      const float* g = s.g.data_ptr<float>();
      ref::Adam hand = a.hand();
      time_hand(state, threads, [&](int part, int parts) {
        auto [begin, end] = part_range(n, part, parts, 16);
        traffic ? ref::adam_traffic(p, g, m, v, begin, end) : ref::adam_step(p, g, m, v, hand, begin, end);
      }, 0);
    } else {
      bool in_place = std::strcmp(mode, "fused") == 0;
      AdamState s = adam_state(n);
      auto step = [&] { in_place ? adam_in_place(s, a) : adam_functional(s, a); };
      step();
      for (auto _ : state) step();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 7 * n * kFloat);
  });
}

constexpr int kUpdateSteps = 100;

void bm_update_loop(benchmark::State& state, const char* mode, int threads, int64_t n) {
  guarded(state, [&] {
    fj::NumThreadsGuard num_threads(threads);
    if (std::strcmp(mode, "torch") == 0) {
      if (torch::get_num_threads() != threads) torch::set_num_threads(threads);
      torch::Tensor x = torch::rand({n, n}), g = torch::rand({n, n});
      for (auto _ : state)
        for (int i = 0; i < kUpdateSteps; ++i) x.mul_(0.9).add_(g);
    } else {
      fj::Tensor x = make_input({n, n}, 31, -1, 1), g = make_input({n, n}, 32, -1, 1);
      bool in_place = std::strcmp(mode, "fused") == 0;
      auto steps = [&] {
        for (int i = 0; i < kUpdateSteps; ++i) {
          if (in_place)
            x.mul_(0.9f).add_(g).eval();
          else
            x = (x * 0.9f + g).eval();
        }
      };
      steps();
      for (auto _ : state) steps();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kUpdateSteps * 3 * n * n * kFloat);
  });
}

void bm_transpose_add(benchmark::State& state, const char* mode, int threads, int64_t n) {
  guarded(state, [&] {
    fj::NumThreadsGuard num_threads(threads);
    fj::Tensor x = make_input({n, n}, 41, -1, 1), y = make_input({n, n}, 42, -1, 1);
    int64_t bytes = 3 * n * n * kFloat;
    if (std::strcmp(mode, "hand") == 0 || std::strcmp(mode, "tile_traffic") == 0) {
      bool traffic = std::strcmp(mode, "tile_traffic") == 0;
      fj::Tensor out = fj::zeros({n, n}).eval();
      const float *xs = x.data_ptr<float>(), *ys = y.data_ptr<float>();
      float* os = out.data_ptr<float>();
      time_hand(state, threads, [&](int part, int parts) {
        auto [begin, end] = part_range(n, part, parts, traffic ? 256 : 16);
        traffic ? ref::tile_traffic(xs, ys, os, n, begin, end) : ref::transpose_add(xs, ys, os, n, begin, end);
      }, bytes);
    } else if (std::strcmp(mode, "contiguous") == 0) {
      time_lazy(state, [&] { return x + y; }, bytes);
    } else {
      time_lazy(state, [&] { return x.t() + y; }, bytes);
    }
  });
}

}  // namespace

void register_in_place() {
  for (int t : {1, 2}) {
    for (const char* mode : {"fused", "functional", "hand", "torch", "traffic"})
      configure(benchmark::RegisterBenchmark(bench_name("adam", mode, t, 16 << 20).c_str(),
                                             [=](benchmark::State& s) { bm_adam(s, mode, t, 16 << 20); }),
                t);
    for (int64_t n : {1000, 4096})
      for (const char* mode : {"fused", "functional", "torch"})
        configure(benchmark::RegisterBenchmark(bench_name("update_loop", mode, t, n).c_str(),
                                               [=](benchmark::State& s) { bm_update_loop(s, mode, t, n); }),
                  t);
    for (const char* mode : {"contiguous", "fused", "hand", "tile_traffic"})
      configure(benchmark::RegisterBenchmark(bench_name("transpose_add", mode, t, 4096).c_str(),
                                             [=](benchmark::State& s) { bm_transpose_add(s, mode, t, 4096); }),
                t);
  }
}

}  // namespace fjbench
