// A small program for the disk cache tests, run as a process of its own: it evaluates a few
// kernels of different kinds (an elementwise chain, row and column reductions, a matmul with a
// gelu epilogue, attention) and prints its compile counts and the bits of its results, so that runs can be
// compared: `compiled <n> disk_hits <n> results <hex hash>`.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "fusejit/fusejit.h"

namespace fj = fusejit;

int main() {
  fj::Tensor x = fj::randn({96, 160}, 1), w = fj::randn({128, 160}, 2), b = fj::randn({128}, 3);
  fj::Tensor q = fj::randn({2, 64, 32}, 4), k = fj::randn({2, 64, 32}, 5), v = fj::randn({2, 64, 32}, 6);
  std::vector<fj::Tensor> results = {fj::relu(fj::tanh(x * 2 + 1) * x - 0.5f), fj::softmax(x, -1),
                                     fj::gelu(fj::linear(x, w, b)), fj::sum(x * x, {0}),
                                     fj::scaled_dot_product_attention(q, k, v, {}, true)};
  fj::eval(results);
  uint64_t hash = 1469598103934665603ull;
  for (const fj::Tensor& result : results)
    for (float value : result.to_vector<float>()) {
      uint32_t bits;
      std::memcpy(&bits, &value, sizeof bits);
      hash = (hash ^ bits) * 1099511628211ull;
    }
  fj::Stats stats = fj::stats();
  std::printf("compiled %lld disk_hits %lld results %016llx\n", static_cast<long long>(stats.kernels_compiled),
              static_cast<long long>(stats.disk_hits), static_cast<unsigned long long>(hash));
}
