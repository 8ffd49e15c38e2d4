// Several user threads using fusejit at once: shared lazy history, the caches, run-time scalars
// and settings changed while others evaluate. Also run under ThreadSanitizer (the tsan preset).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "test_util.h"

namespace fj = fusejit;
using fj::Tensor;

namespace {

constexpr int kThreads = 8;

template <class Body>
void run_threads(int count, Body&& body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < count; ++t) threads.emplace_back([&body, t] { body(t); });
  for (std::thread& thread : threads) thread.join();
}

}  // namespace

TEST(Concurrency, ThreadsEvaluateOneSharedLazyTensor) {
  Tensor x = fj::arange(0, 4096);
  Tensor shared = x * 2 + 1;  // pending: every thread's graph contains it
  std::vector<std::vector<float>> results(kThreads);
  run_threads(kThreads, [&](int t) {
    Tensor mine = t % 2 ? fj::relu(shared - static_cast<float>(t)) : shared * static_cast<float>(t);
    if (t == 3) shared.eval();
    results[t] = mine.to_vector<float>();
  });
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < 4096; i += 511) {
      float s = 2.0f * static_cast<float>(i) + 1.0f;
      float expected = t % 2 ? std::max(0.0f, s - static_cast<float>(t)) : s * static_cast<float>(t);
      ASSERT_EQ(results[t][i], expected) << "thread " << t << " element " << i;
    }
}

// One cached schedule run by every thread, each with its own scalar and seed.
TEST(Concurrency, RunTimeScalarsStayWithTheirThread) {
  Tensor x = fj::arange(0, 1000);
  std::atomic<int> wrong{0};
  run_threads(kThreads, [&](int t) {
    for (int step = 0; step < 50; ++step) {
      float scale = static_cast<float>(t * 100 + step) + 0.5f;
      Tensor y = x * scale + fj::rand({1000}, static_cast<uint64_t>(t)) * 0;
      std::vector<float> values = y.to_vector<float>();
      if (values[7] != 7 * scale || values[999] != 999 * scale) ++wrong;
    }
  });
  EXPECT_EQ(wrong.load(), 0);
}

TEST(Concurrency, SettingsChangeWhileOthersEvaluate) {
  std::atomic<bool> done{false};
  std::thread toggler([&] {
    for (int i = 0; !done; ++i) {
      fj::set_fusion_enabled(i % 2 == 0);
      fj::set_num_threads(1 + i % 2);
      std::this_thread::yield();
    }
  });
  std::atomic<int> wrong{0};
  run_threads(4, [&](int t) {
    for (int step = 0; step < 40; ++step) {
      Tensor x = fj::full({300, 300}, static_cast<float>(t + 1));
      Tensor y = fj::softmax(x * 2, -1) * 300 + fj::sum(x, {1}, true);
      std::vector<float> values = y.to_vector<float>();
      float expected = 1.0f + 300.0f * static_cast<float>(t + 1);
      if (std::abs(values[12345] - expected) > 1e-3f * expected) ++wrong;
    }
  });
  done = true;
  toggler.join();
  fj::set_fusion_enabled(true);
  fj::set_num_threads(2);
  EXPECT_EQ(wrong.load(), 0);
}

TEST(Concurrency, ThreadsCompileDistinctShapesAtOnce) {
  std::atomic<int> wrong{0};
  run_threads(kThreads, [&](int t) {
    for (int step = 0; step < 10; ++step) {
      int64_t n = 1 + t * 37 + step * 301;
      Tensor y = fj::exp(fj::zeros({n})) * 3 - fj::mean(fj::ones({n, 2}), {1});
      std::vector<float> values = y.to_vector<float>();
      for (float v : values)
        if (v != 2.0f) ++wrong;
    }
  });
  EXPECT_EQ(wrong.load(), 0);
}
