// Splitting kernels across threads, on oneTBB (fork/join ≈0.1-0.2 µs here).
#pragma once

#include <cstdint>
#include <functional>

namespace fusejit::runtime {

// More threads than this would only queue behind each other on any machine, and oneTBB's
// arenas fail far above it (INT_MAX crashes inside oneTBB).
inline constexpr int kMaxThreads = 1024;

// Runs body(part) for part in [0, parts), on up to process().threads threads.
void parallel_parts(int64_t parts, const std::function<void(int64_t)>& body);

// memcpy, split across the threads when large enough to pay for it.
void parallel_copy(void* to, const void* from, int64_t bytes);

}  // namespace fusejit::runtime
