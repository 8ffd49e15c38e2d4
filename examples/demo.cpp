// The fusejit demo: a 7-op chain on a 4096x4096 tensor, fused into one kernel, against eager.
#include <fusejit/fusejit.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace fj = fusejit;

static fj::Tensor chain(const fj::Tensor& x) { return fj::relu(fj::tanh(x * 2 + 1) * x - 0.5f) * 3; }

// Median of `runs` timings of f, in milliseconds.
template <class F>
static double time_ms(F&& f, int runs = 7) {
  std::vector<double> times;
  for (int r = 0; r < runs; ++r) {
    auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int main() {
  std::printf("fusejit on %s, %d threads\n\n", fj::target_description().c_str(), fj::num_threads());
  fj::Tensor x = fj::rand({4096, 4096}, 42).eval();

  fj::reset_stats();
  fj::Tensor y = chain(x);
  std::printf("y = relu(tanh(x * 2 + 1) * x - 0.5) * 3 on x of shape [4096, 4096]\n\n%s\n",
              y.dump("fused").c_str());
  y.eval();
  std::printf("kernels compiled: %lld (in %.1f ms), loaded from the disk cache: %lld, launched: %lld\n",
              static_cast<long long>(fj::stats().kernels_compiled), fj::stats().compile_ms,
              static_cast<long long>(fj::stats().disk_hits), static_cast<long long>(fj::stats().kernels_launched));
  std::printf("y[0..3] = %.6f %.6f %.6f\n\n", y.data_ptr<float>()[0], y.data_ptr<float>()[1],
              y.data_ptr<float>()[2]);

  double fused = time_ms([&] { chain(x).eval(); });
  double eager;
  {
    fj::FusionGuard eager_mode(false);
    chain(x).eval();  // compile the eager kernels first
    eager = time_ms([&] { chain(x).eval(); });
  }
  const double bytes = 2.0 * 4096 * 4096 * sizeof(float);  // read x, write y
  std::printf("fused: %8.2f ms  (%.1f GB/s)\n", fused, bytes / (fused * 1e-3) / 1e9);
  std::printf("eager: %8.2f ms  (7 kernels, 7 intermediate tensors)\n", eager);
  std::printf("fused is %.1fx faster\n\n", eager / fused);
  std::printf("in all: %lld kernels compiled (in %.1f ms), %lld loaded from the disk cache (%s)\n",
              static_cast<long long>(fj::stats().kernels_compiled), fj::stats().compile_ms,
              static_cast<long long>(fj::stats().disk_hits),
              fj::disk_cache_dir().empty() ? "off" : fj::disk_cache_dir().c_str());
  return 0;
}
