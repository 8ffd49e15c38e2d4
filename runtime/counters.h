// Process-wide counters behind fusejit::stats().
#pragma once

#include <atomic>
#include <cstdint>

namespace fusejit::runtime {

struct Counters {
  std::atomic<int64_t> kernels_compiled{0};
  std::atomic<int64_t> cache_hits{0};
  std::atomic<int64_t> cache_misses{0};
  std::atomic<int64_t> kernels_launched{0};
  std::atomic<int64_t> kernels_evicted{0};
  std::atomic<int64_t> compile_ns{0};
};

Counters& counters();

}  // namespace fusejit::runtime
