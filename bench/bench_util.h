// Small helpers shared by the benchmarks: an aligned, pre-faulted float buffer, a two-thread
// runner with a long-lived worker for the hand-written reference loops, and timing in pairs.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace fjbench {

// 64-byte aligned floats, filled once so that every page is faulted in before timing (as
// fusejit's buffer pool does for its outputs). From 32 MiB on they ask for 2 MiB pages, like
// fusejit's buffers, so that the hand-written roofs read the same kind of memory.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(int64_t count, float fill = 0.0f) : count_(count) {
    constexpr std::size_t kHugePage = std::size_t{2} << 20;
    std::size_t bytes = (static_cast<std::size_t>(count) * sizeof(float) + 63) / 64 * 64;
    bool huge = bytes >= (std::size_t{32} << 20);
    if (huge) bytes = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    data_ = static_cast<float*>(std::aligned_alloc(huge ? kHugePage : 64, bytes == 0 ? 64 : bytes));
    if (data_ == nullptr) throw std::bad_alloc();
    if (huge) madvise(data_, bytes, MADV_HUGEPAGE);
    for (int64_t i = 0; i < count; ++i) data_[i] = fill;
  }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  float* data() { return data_; }
  const float* data() const { return data_; }
  int64_t size() const { return count_; }

 private:
  int64_t count_;
  float* data_;
};

// Runs f(0) on the calling thread and f(1) on a worker thread created once, and returns when
// both are done. The worker spins briefly on an atomic epoch and then sleeps on it (futex), so a
// run costs roughly a cache-line round trip between back-to-back calls, not a thread spawn
// (~40 µs here), and an idle worker does not burn the second core for long.
class PairRunner {
 public:
  PairRunner() : worker_([this] { work(); }) {}
  ~PairRunner() {
    stop_.store(true, std::memory_order_relaxed);
    epoch_.fetch_add(1, std::memory_order_release);
    epoch_.notify_one();
    worker_.join();
  }
  PairRunner(const PairRunner&) = delete;
  PairRunner& operator=(const PairRunner&) = delete;

  template <class F>
  void run(F& f) {
    job_ = [](void* ctx, int part) { (*static_cast<F*>(ctx))(part); };
    ctx_ = &f;
    uint32_t epoch = epoch_.fetch_add(1, std::memory_order_release) + 1;
    epoch_.notify_one();
    f(0);
    wait_until(done_, epoch);
  }

 private:
  static constexpr int kSpins = 1 << 14;

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  static void wait_until(std::atomic<uint32_t>& value, uint32_t target) {
    for (int spin = 0;; ++spin) {
      uint32_t seen = value.load(std::memory_order_acquire);
      if (seen == target) return;
      if (spin < kSpins)
        pause();
      else
        value.wait(seen, std::memory_order_acquire);
    }
  }

  void work() {
    uint32_t handled = 0;
    for (;;) {
      uint32_t epoch;
      for (int spin = 0;; ++spin) {
        epoch = epoch_.load(std::memory_order_acquire);
        if (epoch != handled) break;
        if (spin < kSpins)
          pause();
        else
          epoch_.wait(handled, std::memory_order_acquire);
      }
      handled = epoch;
      if (stop_.load(std::memory_order_relaxed)) return;
      job_(ctx_, 1);
      done_.store(epoch, std::memory_order_release);
      done_.notify_one();
    }
  }

  void (*job_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  std::atomic<uint32_t> epoch_{0};
  std::atomic<uint32_t> done_{0};
  std::atomic<bool> stop_{false};
  std::thread worker_;  // last: starts after the members above exist
};

// The split point of [0, n) for two threads, rounded up to a multiple of `align` (16 floats =
// 64 bytes for flat ranges, so the two halves never write the same cache line).
inline int64_t half_point(int64_t n, int64_t align) {
  int64_t half = (n / 2 + align - 1) / align * align;
  return half < n ? half : n;
}

// Times `first` and `second` in pairs, one call of each per iteration, in alternating order.
// The counters are medians over the pairs: "vs_<second>" second's time over first's (above 1:
// first is faster), "<first>_ms" and "<second>_ms" each one's time. Within a pair both meet the
// same machine, so this shared machine's drift (5-10% within a minute) cancels, which separate
// rows' medians do not. Returns first's median time in seconds.
template <class First, class Second>
double time_paired(benchmark::State& state, const std::string& first_name, First&& first,
                   const std::string& second_name, Second&& second) {
  auto seconds = [](auto& call) {
    auto start = std::chrono::steady_clock::now();
    call();
    benchmark::ClobberMemory();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::vector<double> ratios, first_s, second_s;
  for (auto _ : state) {
    bool first_leads = ratios.size() % 2 == 0;
    double f = first_leads ? seconds(first) : 0, s = seconds(second);
    if (!first_leads) f = seconds(first);
    state.SetIterationTime(f + s);
    ratios.push_back(s / f);
    first_s.push_back(f);
    second_s.push_back(s);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  state.counters["vs_" + second_name] = median(ratios);
  state.counters[first_name + "_ms"] = median(first_s) * 1e3;
  state.counters[second_name + "_ms"] = median(second_s) * 1e3;
  state.counters["pairs"] = static_cast<double>(ratios.size());
  return median(first_s);
}

}  // namespace fjbench
