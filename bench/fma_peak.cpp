// Register-only FMA loops, as bench/fma_peak.h describes.
#include "fma_peak.h"

#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "bench_util.h"

namespace fjbench {
namespace {

constexpr int kChains = 16;

__attribute__((target("avx512f"))) double fma_flops_avx512(int64_t iterations) {
  volatile float scale = 0.999f, shift = 0.001f;
  __m512 m = _mm512_set1_ps(scale), a = _mm512_set1_ps(shift), acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  for (int64_t k = 0; k < iterations; ++k)
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  benchmark::DoNotOptimize(_mm512_reduce_add_ps(sum));
  return static_cast<double>(iterations) * kChains * 32;
}

__attribute__((target("avx2,fma"))) double fma_flops_avx2(int64_t iterations) {
  volatile float scale = 0.999f, shift = 0.001f;
  __m256 m = _mm256_set1_ps(scale), a = _mm256_set1_ps(shift), acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  for (int64_t k = 0; k < iterations; ++k)
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  benchmark::DoNotOptimize(lanes[0]);
  return static_cast<double>(iterations) * kChains * 16;
}

}  // namespace

double fma_flops(int threads, int64_t iterations) {
  auto loop = [&] {
    return __builtin_cpu_supports("avx512f") ? fma_flops_avx512(iterations) : fma_flops_avx2(iterations);
  };
  if (threads == 1) return loop();
  static PairRunner pair;
  double flops[2] = {0, 0};
  auto both = [&](int p) { flops[p] = loop(); };
  pair.run(both);
  return flops[0] + flops[1];
}

double peak_gflops(int threads) {
  static std::map<int, double> measured;
  auto [at, first_call] = measured.try_emplace(threads, 0.0);
  if (first_call)
    for (int round = 0; round < 5; ++round) {
      auto start = std::chrono::steady_clock::now();
      double flops = fma_flops(threads, 20'000'000);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      at->second = std::max(at->second, flops / seconds / 1e9);
    }
  return at->second;
}

}  // namespace fjbench
