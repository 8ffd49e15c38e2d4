// The machine's float32 FMA peak: register-only FMA loops of the widest vectors the CPU has,
// 16 independent accumulators, so that neither latency nor memory limits them. The GEMM rows
// report their share of it.
#pragma once

#include <cstdint>

namespace fjbench {

// Runs the loop `iterations` times on `threads` (1 or 2) threads at once; returns the flops done.
double fma_flops(int threads, int64_t iterations);

// The best of a few timed runs of fma_flops on `threads` threads, in GFLOPS: measured on the
// first call for that thread count, then remembered.
double peak_gflops(int threads);

}  // namespace fjbench
