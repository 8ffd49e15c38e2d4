// What an ordinary loop can grow stays bounded: the kernel cache (a capacity, least recently
// used kernels evicted and their JIT memory freed), the schedule cache (bytes) and the buffer
// pool (empty_cache). Evicted code that is still reachable keeps running correctly.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include "frontend/schedule_cache.h"
#include "runtime/buffer_pool.h"
#include "test_util.h"

namespace fj = fusejit;
using fj::Tensor;
using fj::testing::error_message;

namespace {

#if defined(__SANITIZE_ADDRESS__)
// ASan keeps freed memory in quarantine and maps shadow memory: resident sizes say nothing.
constexpr bool kResidentSizeIsMeaningful = false;
#else
constexpr bool kResidentSizeIsMeaningful = true;
#endif

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t total_pages = 0, resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * sysconf(_SC_PAGESIZE);
}

constexpr double kMiB = 1 << 20;

// Restores the kernel cache's capacity when the test ends.
class CapacityGuard {
 public:
  explicit CapacityGuard(int64_t kernels) : previous_(fj::kernel_cache_capacity()) {
    fj::set_kernel_cache_capacity(kernels);
  }
  ~CapacityGuard() { fj::set_kernel_cache_capacity(previous_); }
  CapacityGuard(const CapacityGuard&) = delete;
  CapacityGuard& operator=(const CapacityGuard&) = delete;

 private:
  int64_t previous_;
};

// x * 2 + 1 over `length` elements: a kernel of its own per length (the domain is part of the
// kernel). Returns whether every element came out right.
bool affine_is_right(int64_t length) {
  std::vector<float> values(length);
  for (int64_t i = 0; i < length; ++i) values[i] = static_cast<float>(i % 7);
  std::vector<float> result = (fj::tensor(std::move(values), {length}) * 2 + 1).to_vector<float>();
  for (int64_t i = 0; i < length; ++i)
    if (result[i] != static_cast<float>(i % 7) * 2 + 1) return false;
  return true;
}

}  // namespace

TEST(KernelCache, CapacityBelowOneIsAnError) {
  EXPECT_NE(error_message([] { fj::set_kernel_cache_capacity(0); }).find("set_kernel_cache_capacity"),
            std::string::npos);
  EXPECT_NE(error_message([] { fj::set_kernel_cache_capacity(-5); }).find("-5"), std::string::npos);
  EXPECT_EQ(fj::kernel_cache_capacity(), 4096);
}

// 3,000 kernels at capacity 1,000: 2,000 are evicted and their code freed, so the last 2,000
// kernels add far less memory than the first 1,000 did.
TEST(KernelCache, EvictsTheLeastRecentlyUsedAndFreesTheirMemory) {
  // The JIT, LLVM's per-thread state and the first kernel exist before anything is measured;
  // capacity 1 leaves that kernel (length 1) alone in the cache.
  ASSERT_TRUE(affine_is_right(1));
  CapacityGuard capacity(1);
  fj::set_kernel_cache_capacity(1000);
  fj::reset_stats();
  int64_t start = resident_bytes(), after_first_thousand = 0;
  for (int64_t length = 1; length <= 3000; ++length) {
    ASSERT_TRUE(affine_is_right(length)) << length;
    if (length == 1000) after_first_thousand = resident_bytes();
  }
  int64_t end = resident_bytes();
  EXPECT_EQ(fj::stats().kernels_compiled, 2999);
  EXPECT_EQ(fj::stats().kernels_evicted, 2000);
  double first = (after_first_thousand - start) / kMiB, rest = (end - after_first_thousand) / kMiB;
  std::printf("resident memory: +%.1f MiB for the first 1000 kernels, %+.1f MiB for the next 2000\n",
              first, rest);
  if (kResidentSizeIsMeaningful) {
    EXPECT_LT(rest, first / 4);
  }

  // Length 1 was evicted long ago: asked for again, it is compiled again and still right.
  ASSERT_TRUE(affine_is_right(1));
  EXPECT_EQ(fj::stats().kernels_compiled, 3000);
  fj::reset_stats();
  EXPECT_EQ(fj::stats().kernels_evicted, 0);
}

// A cached schedule keeps its kernels' code alive after the kernel cache evicted them: it runs
// without compiling. The next schedule remembered drops it, so that evicted code does not
// outlive the kernel cache's bound; its structure is then scheduled and compiled again.
TEST(KernelCache, ScheduleWhoseKernelWasEvictedStillRuns) {
  CapacityGuard capacity(1);
  ASSERT_TRUE(affine_is_right(5));  // alone in the cache
  fj::set_kernel_cache_capacity(2);
  fj::reset_stats();
  // dump() compiles without remembering a schedule: two new kernels evict the one of length 5.
  for (int64_t length : {6, 7}) fj::zeros({length}).dump("asm");
  EXPECT_EQ(fj::stats().kernels_evicted, 1);
  EXPECT_EQ(fj::stats().kernels_compiled, 2);
  ASSERT_TRUE(affine_is_right(5));  // its schedule's code: freed, this would crash
  EXPECT_EQ(fj::stats().kernels_compiled, 2);
  ASSERT_TRUE(affine_is_right(8));  // a new schedule is remembered; the stale one is dropped
  ASSERT_TRUE(affine_is_right(5));
  EXPECT_EQ(fj::stats().kernels_compiled, 4);
}

// Four threads compile new kernels at capacity 8, so kernels are evicted all the time, while two
// threads run the same few expressions over and over through cached schedules.
TEST(KernelCache, EvictionWhileOtherThreadsRunCachedSchedules) {
  CapacityGuard capacity(8);
  fj::reset_stats();
  std::atomic<bool> compiling_done{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int64_t t = 0; t < 4; ++t)
    threads.emplace_back([&wrong, t] {
      for (int64_t i = 0; i < 60; ++i)
        if (!affine_is_right(100 + 4 * i + t)) wrong++;
    });
  for (int64_t t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      std::vector<float> values = {1, 2, 3};
      do {
        Tensor x = fj::tensor(values, {3});
        std::vector<float> y = (t == 0 ? fj::relu(x - 2) * 3 : x * x + 1).to_vector<float>();
        std::vector<float> expected = t == 0 ? std::vector<float>{0, 0, 3} : std::vector<float>{2, 5, 10};
        if (y != expected) wrong++;
      } while (!compiling_done);
    });
  for (int t = 0; t < 4; ++t) threads[t].join();
  compiling_done = true;
  for (size_t t = 4; t < threads.size(); ++t) threads[t].join();
  EXPECT_EQ(wrong, 0);
  EXPECT_GE(fj::stats().kernels_evicted, 240 - 8);
}

// Freed tensors' buffers stay pooled for reuse until empty_cache() gives them back. Twice: once
// glibc has seen a large buffer freed, it serves the next ones from the heap, where free()
// alone returns nothing to the system.
TEST(BufferPool, EmptyCacheReturnsPooledMemoryToTheSystem) {
  constexpr int64_t kBuffers = 32, kFloats = 1 << 20;  // 32 x 4 MiB
  constexpr int64_t kPooledBytes = kBuffers * kFloats * 4;
  for (int round = 0; round < 2; ++round) {
    fj::empty_cache();
    int64_t before = resident_bytes();
    {
      Tensor base = fj::testing::random_tensor({kFloats}, 1);
      std::vector<Tensor> results;
      for (int64_t i = 0; i < kBuffers; ++i) results.push_back((base + base).eval());
      EXPECT_EQ(results.back().to_vector<float>()[5], 2 * base.to_vector<float>()[5]);
    }
    EXPECT_GE(fj::runtime::pooled_bytes(), kPooledBytes);
    int64_t pooled = resident_bytes();
    fj::empty_cache();
    EXPECT_EQ(fj::runtime::pooled_bytes(), 0);
    int64_t emptied = resident_bytes();
    std::printf("resident memory: %.1f MiB, %.1f MiB with %.0f MiB pooled, %.1f MiB after empty_cache()\n",
                before / kMiB, pooled / kMiB, kPooledBytes / kMiB, emptied / kMiB);
    if (kResidentSizeIsMeaningful) {
      EXPECT_LT(emptied, pooled - kPooledBytes * 3 / 4) << "round " << round;
    }
  }
}

// Large graphs' schedules are counted by their bytes: 20 distinct 20k-op graphs through a cache
// bounded at four of them.
TEST(ScheduleCache, BytesStayWithinTheBound) {
  constexpr int64_t kLength = 64;
  auto chain = [](const Tensor& x, int64_t steps) {  // 2 ops per step
    Tensor y = x;
    for (int64_t s = 0; s < steps; ++s) y = y * 1.0001f + 0.0001f;
    return y;
  };
  auto expected = [](float x, int64_t steps) {
    for (int64_t s = 0; s < steps; ++s) x = x * 1.0001f + 0.0001f;
    return x;
  };
  Tensor x = fj::testing::random_tensor({kLength}, 3);
  std::vector<float> inputs = x.to_vector<float>();

  fj::frontend::set_schedule_cache_bytes_limit(1);  // empties the cache
  fj::frontend::set_schedule_cache_bytes_limit(int64_t{1} << 40);
  chain(x, 10'000).eval();
  int64_t one_graph = fj::frontend::schedule_cache_bytes();
  std::printf("a 20k-op graph's schedule: %.2f MiB (estimated)\n", one_graph / kMiB);
  EXPECT_GT(one_graph, 20'000 * 64);  // at least a KernelOp per op

  int64_t bound = 4 * one_graph + one_graph / 2;
  fj::frontend::set_schedule_cache_bytes_limit(bound);
  for (int64_t graph = 1; graph <= 20; ++graph) {
    std::vector<float> y = chain(x, 10'000 + graph).to_vector<float>();
    for (int64_t i = 0; i < kLength; ++i) ASSERT_EQ(y[i], expected(inputs[i], 10'000 + graph)) << graph;
    EXPECT_LE(fj::frontend::schedule_cache_bytes(), bound) << graph;
  }
  EXPECT_GE(fj::frontend::schedule_cache_bytes(), 4 * one_graph);  // the last four stay
  fj::frontend::set_schedule_cache_bytes_limit(0);
}
