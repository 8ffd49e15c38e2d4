// A GPT-2 small block (d 768, 12 heads, MLP 3072) on T tokens: the kernels fusejit makes of it
// and the time per block. Usage: fusejit_gpt2_block [T ...] (default 128 512).
#include "gpt2_block.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace fj = fusejit;

int main(int argc, char** argv) {
  std::vector<int64_t> lengths;
  for (int i = 1; i < argc; ++i) lengths.push_back(std::atoll(argv[i]));
  if (lengths.empty()) lengths = {128, 512};
  std::printf("fusejit on %s, %d threads\n", fj::target_description().c_str(), fj::num_threads());
  gpt2::Block block = gpt2::Block::random({}, 1);
  for (int64_t t : lengths) {
    if (t < 1) {
      std::fprintf(stderr, "fusejit_gpt2_block: T must be at least 1, got %lld\n", static_cast<long long>(t));
      return 1;
    }
    fj::Tensor x = fj::randn({t, block.config.model}, 100).eval();
    fj::reset_stats();
    fj::Tensor y = block.forward(x);
    if (t == lengths.front()) std::printf("\n%s\n", y.dump("fused").c_str());
    y.eval();
    fj::Stats first = fj::stats();
    std::vector<double> ms;
    for (int run = 0; run < 7; ++run) {
      auto start = std::chrono::steady_clock::now();
      block.forward(x).eval();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    std::printf("T = %lld: %lld kernels per block (on the first call %lld compiled in %.0f ms, %lld loaded from the "
                "disk cache); median %.2f ms per block; y[0, 0..2] = %.5f %.5f %.5f\n",
                static_cast<long long>(t), static_cast<long long>(first.kernels_launched),
                static_cast<long long>(first.kernels_compiled), first.compile_ms,
                static_cast<long long>(first.disk_hits), ms[ms.size() / 2],
                y.data_ptr<float>()[0], y.data_ptr<float>()[1], y.data_ptr<float>()[2]);
  }
}
