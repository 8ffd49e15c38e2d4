// In-place updates: PyTorch's semantics (earlier values keep the old value, copies share the
// update), writes into the tensor's own storage when that is safe, copy-on-write when it is
// not, no buffer allocated by a training-style loop, and a lazy history that stays bounded.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cmath>
#include <thread>

#include "test_util.h"

namespace fj = fusejit;
using fj::Tensor;
using fj::testing::error_message;

namespace {

std::vector<float> values(std::initializer_list<float> list) { return list; }

// The storage the tensor's elements start at, evaluating it.
const float* storage(const Tensor& t) { return t.data_ptr<float>(); }

}  // namespace

TEST(InPlace, EveryOpUpdatesTheTensorAndItsCopies) {
  Tensor p = fj::tensor({1, -2, 3, -4}, {2, 2});
  Tensor copy = p;  // one tensor, as in libtorch
  p.add_(1);
  EXPECT_EQ(copy.to_vector<float>(), values({2, -1, 4, -3}));
  p.sub_(fj::tensor({1, 2}, {2}));  // broadcast
  EXPECT_EQ(p.to_vector<float>(), values({1, -3, 3, -5}));
  p.mul_(2).div_(4);
  EXPECT_EQ(p.to_vector<float>(), values({0.5f, -1.5f, 1.5f, -2.5f}));
  p.clamp_(-2, 1);
  EXPECT_EQ(p.to_vector<float>(), values({0.5f, -1.5f, 1, -2}));
  p.relu_();
  EXPECT_EQ(copy.to_vector<float>(), values({0.5f, 0, 1, 0}));
  p.copy_(fj::tensor({7, 8}, {2}));
  EXPECT_EQ(p.to_vector<float>(), values({7, 8, 7, 8}));
  p.fill_(3);
  EXPECT_EQ(p.to_vector<float>(), values({3, 3, 3, 3}));
  p.zero_();
  EXPECT_EQ(copy.to_vector<float>(), values({0, 0, 0, 0}));
}

TEST(InPlace, CopyFillAndZeroConvertToTheTensorsDtype) {
  Tensor flags = fj::tensor({1, -1, 0}, {3}) > 0;
  flags.copy_(fj::tensor({0, 2, -3}, {3}));
  EXPECT_EQ(flags.to_vector<bool>(), (std::vector<bool>{false, true, true}));
  flags.fill_(0);
  EXPECT_EQ(flags.to_vector<bool>(), (std::vector<bool>{false, false, false}));
  Tensor index = fj::argmax(fj::tensor({1, 5, 2, 7, 0, 3}, {3, 2}), 1);
  index.copy_(fj::tensor({2.9f, -1.5f, 4}, {3}));  // truncates, as torch's copy_ into Long
  EXPECT_EQ(index.to_vector<int64_t>(), (std::vector<int64_t>{2, -1, 4}));
  index.zero_();
  EXPECT_EQ(index.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0}));
}

// A value recorded before an update keeps the old value, pending or evaluated.
TEST(InPlace, EarlierValuesSeeTheOldValue) {
  Tensor p = fj::tensor({1, 2, 3}, {3});
  Tensor doubled = p * 2;    // pending
  Tensor halved = p * 0.5f;  // evaluated before the update
  halved.eval();
  p.add_(10);
  Tensor later = p * 2;
  p.mul_(0);
  EXPECT_EQ(doubled.to_vector<float>(), values({2, 4, 6}));
  EXPECT_EQ(halved.to_vector<float>(), values({0.5f, 1, 1.5f}));
  EXPECT_EQ(later.to_vector<float>(), values({22, 24, 26}));
  EXPECT_EQ(p.to_vector<float>(), values({0, 0, 0}));
}

TEST(InPlace, WritesTheTensorsOwnStorageWhenNothingElseSeesIt) {
  for (int threads : {1, 2}) {
    fj::NumThreadsGuard guard(threads);
    Tensor p = fj::testing::random_tensor({512, 300}, 1);
    Tensor g = fj::testing::random_tensor({512, 300}, 2);
    const float* memory = storage(p);
    std::vector<float> expected = p.to_vector<float>();
    std::vector<float> gradient = g.to_vector<float>();
    for (int step = 0; step < 3; ++step) {
      p.mul_(0.9f).add_(g * 0.1f);
      for (size_t i = 0; i < expected.size(); ++i) expected[i] = expected[i] * 0.9f + gradient[i] * 0.1f;
      EXPECT_EQ(storage(p), memory) << "step " << step;
    }
    std::vector<float> got = p.to_vector<float>();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], expected[i], 1e-5f * (1 + std::fabs(expected[i]))) << i;
  }
}

// Whatever else holds the old value or the storage, the update goes to new memory and the
// other holder keeps its value.
TEST(InPlace, CopiesOnWriteWhenTheOldValueIsVisible) {
  Tensor p = fj::tensor({1, 2, 3}, {3});
  const float* memory = storage(p);
  Tensor old = p * 1;  // simplifies to p itself: it shares the storage once evaluated
  old.eval();
  p.add_(1);
  EXPECT_NE(storage(p), memory);
  EXPECT_EQ(old.to_vector<float>(), values({1, 2, 3}));
  EXPECT_EQ(p.to_vector<float>(), values({2, 3, 4}));

  Tensor q = fj::tensor({1, 2, 3}, {3});
  const float* q_memory = storage(q);
  Tensor pending = q + 0;  // reads the old value later
  q.mul_(3);
  EXPECT_NE(storage(q), q_memory);
  EXPECT_EQ(pending.to_vector<float>(), values({1, 2, 3}));
}

TEST(InPlace, WritesIntoFromBlobMemory) {
  std::vector<float> memory = {1, 2, 3, 4};
  Tensor x = fj::from_blob(memory.data(), {4});
  x.mul_(10).eval();
  EXPECT_EQ(memory, values({10, 20, 30, 40}));
  EXPECT_EQ(storage(x), memory.data());
}

// The Adam step written in place: one kernel writes p, m and v into their own storage.
TEST(InPlace, AdamStepIsOneKernelWritingThreeTensorsInPlace) {
  const int64_t n = 1000;
  Tensor p = fj::testing::random_tensor({n}, 3);
  Tensor g = fj::testing::random_tensor({n}, 4);
  Tensor m = fj::testing::random_tensor({n}, 5, -0.1f, 0.1f);
  Tensor v = fj::testing::random_tensor({n}, 6, 0, 0.01f);
  const float *p_memory = storage(p), *m_memory = storage(m), *v_memory = storage(v);
  std::vector<float> pe = p.to_vector<float>(), ge = g.to_vector<float>(), me = m.to_vector<float>(),
                     ve = v.to_vector<float>();
  const float b1 = 0.9f, b2 = 0.999f, lr = 1e-3f, eps = 1e-8f;
  fj::reset_stats();
  m.mul_(b1).add_(g * (1 - b1));
  v.mul_(b2).add_(g * g * (1 - b2));
  p.sub_(lr * m / (fj::sqrt(v) + eps));
  fj::eval({p, m, v});
  EXPECT_EQ(fj::stats().kernels_launched, 1);
  EXPECT_EQ(fj::stats().buffers_allocated, 0);
  EXPECT_EQ(storage(p), p_memory);
  EXPECT_EQ(storage(m), m_memory);
  EXPECT_EQ(storage(v), v_memory);
  std::vector<float> pg = p.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    float mi = me[i] * b1 + ge[i] * (1 - b1);
    float vi = ve[i] * b2 + ge[i] * ge[i] * (1 - b2);
    float pi = pe[i] - lr * mi / (std::sqrt(vi) + eps);
    ASSERT_NEAR(pg[i], pi, 1e-6f) << i;
  }
}

// A training-style loop allocates no tensor memory after its first step; nor do views.
TEST(InPlace, AnUpdateLoopAndViewsAllocateNothing) {
  Tensor p = fj::testing::random_tensor({256, 256}, 7);
  Tensor g = fj::testing::random_tensor({256, 256}, 8);
  float lr = 0.01f;
  p.sub_(g * lr).eval();  // compiles, and may take new memory
  fj::reset_stats();
  for (int step = 0; step < 1000; ++step) p.sub_(g * lr).eval();
  EXPECT_EQ(fj::stats().buffers_allocated, 0);
  EXPECT_EQ(fj::stats().kernels_launched, 1000);

  fj::reset_stats();
  Tensor x = fj::testing::random_tensor({64, 48}, 9);
  int64_t copied = fj::stats().buffers_allocated;  // the vector into x
  Tensor y = x * 2;
  for (int i = 0; i < 100; ++i) {
    Tensor views[] = {x.t(), x.slice(1, 0, 48, 2), x.select(0, 3), x.reshape({48, 64}), x.unsqueeze(0).expand({4, 64, 48}),
                      y.t(), y.permute({1, 0}).narrow(0, 1, 5), y.flatten()};
    for (const Tensor& view : views) EXPECT_GE(view.numel(), 1);
  }
  EXPECT_EQ(fj::stats().buffers_allocated, copied);
  // Nor does the tensor's record of its views grow with views that are gone.
  for (int i = 0; i < 100000; ++i) EXPECT_EQ(x.slice(0, 1, 3).numel(), 2 * 48);
  EXPECT_LT(fj::frontend::CellAccess::of(x).base->members.size(), 64u);
}

TEST(InPlace, EvaluationsOnOtherThreadsSeeEachUpdateWhole) {
  Tensor p = fj::zeros({300, 300});
  p.eval();
  for (int step = 1; step <= 50; ++step) {
    p.add_(1);
    Tensor doubled = p * 2;
    std::vector<float> seen[3];
    std::thread a([&] { seen[0] = p.to_vector<float>(); });
    std::thread b([&] { seen[1] = doubled.to_vector<float>(); });
    seen[2] = p.to_vector<float>();
    a.join();
    b.join();
    for (int k : {0, 2})
      ASSERT_TRUE(std::all_of(seen[k].begin(), seen[k].end(), [&](float v) { return v == step; })) << step;
    ASSERT_TRUE(std::all_of(seen[1].begin(), seen[1].end(), [&](float v) { return v == 2 * step; })) << step;
  }
}

// A history of 100,000 steps never evaluated: built, evaluated and destroyed without deep
// recursion, in bounded memory (a pending result more than 1024 ops deep evaluates its
// operands first).
TEST(InPlace, LongLazyHistoriesStayBounded) {
  Tensor g = fj::full({1000}, 1);
  Tensor x = fj::zeros({1000});
  Tensor p = fj::zeros({1000});
  p.eval();
  for (int step = 0; step < 100000; ++step) {
    x = x * 0.5f + g;
    p.mul_(0.5f).add_(g);
    ASSERT_LE(x.node()->depth.load(), fj::frontend::kMaxPendingDepth);
    ASSERT_LE(p.node()->depth.load(), fj::frontend::kMaxPendingDepth);
  }
  EXPECT_FALSE(x.is_evaluated());
  EXPECT_NEAR(x.to_vector<float>()[0], 2.0f, 1e-6f);
  EXPECT_NEAR(p.to_vector<float>()[999], 2.0f, 1e-6f);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("peak RSS after 100,000 lazy steps: %.1f MiB\n", usage.ru_maxrss / 1024.0);
}

TEST(InPlace, ErrorsNameTheOpAndShapes) {
  Tensor p = fj::tensor({1, 2, 3}, {3});
  auto expect_error = [](const std::function<void()>& f, const std::vector<std::string>& parts) {
    std::string message = error_message(f);
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  };
  expect_error([&] { p.add_(fj::tensor({1, 2, 3, 4, 5, 6}, {2, 3})); }, {"add_", "[2,3]", "f32[3]"});
  expect_error([&] { p.copy_(fj::tensor({1, 2}, {2})); }, {"copy_", "f32[2]", "f32[3]"});
  expect_error([&] { (p > 0).add_(1); }, {"add_", "Float32", "bool[3]"});
  expect_error([&] { Tensor().mul_(2); }, {"mul_", "undefined"});
  expect_error([&] { p.copy_(Tensor()); }, {"copy_", "undefined"});
  Tensor m = fj::tensor({1, 2, 3, 4}, {2, 2});
  expect_error([&] { m.unsqueeze(0).expand({3, 2, 2}).zero_(); }, {"zero_", "expanded", "f32[3,2,2]"});
  expect_error([&] { fj::zeros({2}).unsqueeze(1).expand({2, 3}).fill_(1); }, {"fill_", "expanded"});
  std::vector<float> memory(4);
  expect_error([&] { fj::from_blob(memory.data(), {4}).unsqueeze(1).expand({4, 3}).add_(1); }, {"add_", "expanded"});
}

// Through a view, as in libtorch: the tensor viewed and every other view of it see the update.
TEST(InPlace, ThroughViewsEveryViewSeesTheUpdate) {
  for (bool fused : {true, false}) {
    fj::FusionGuard fusion(fused);
    Tensor t = fj::arange(0, 12).reshape({4, 3});
    Tensor row = t.select(0, 1);
    Tensor column = t.t().select(0, 2);
    Tensor before = t * 1;  // recorded before: keeps the old value
    row.fill_(0);
    EXPECT_EQ(t.to_vector<float>(), values({0, 1, 2, 0, 0, 0, 6, 7, 8, 9, 10, 11}));
    EXPECT_EQ(column.to_vector<float>(), values({2, 0, 8, 11}));
    t.slice(0, 2, 4).copy_(fj::tensor({9, 8, 7}, {3}));
    t.transpose(0, 1).add_(1);
    EXPECT_EQ(t.to_vector<float>(), values({1, 2, 3, 1, 1, 1, 10, 9, 8, 10, 9, 8}));
    EXPECT_EQ(row.to_vector<float>(), values({1, 1, 1}));
    column.mul_(10);
    EXPECT_EQ(t.to_vector<float>(), values({1, 2, 30, 1, 1, 10, 10, 9, 80, 10, 9, 80}));
    row.add_(row);  // reads and writes the same view
    EXPECT_EQ(t.to_vector<float>(), values({1, 2, 30, 2, 2, 20, 10, 9, 80, 10, 9, 80}));
    EXPECT_EQ(before.to_vector<float>(), values({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
    // An update of the whole tensor reaches its views, and writes its own storage.
    Tensor e = fj::tensor({1, 2, 3, 4}, {4});
    const float* memory = storage(e);
    Tensor square = e.view({2, 2});
    e.add_(100);
    EXPECT_EQ(square.to_vector<float>(), values({101, 102, 103, 104}));
    EXPECT_EQ(storage(e), memory);
    square.select(0, 0).zero_();
    EXPECT_EQ(e.to_vector<float>(), values({0, 0, 103, 104}));
  }
}

TEST(InPlace, ThroughViewsOfLargeTensorsAtAnyThreadCount) {
  for (int threads : {1, 2}) {
    fj::NumThreadsGuard guard(threads);
    Tensor x = fj::testing::random_tensor({300, 500}, 11);
    std::vector<float> expected = x.to_vector<float>();
    x.slice(1, 100, 400, 3).mul_(2);
    x.t().slice(0, 0, 2).add_(1);  // the first two columns
    for (int64_t r = 0; r < 300; ++r)
      for (int64_t c = 0; c < 500; ++c) {
        float& v = expected[r * 500 + c];
        if (c >= 100 && c < 400 && (c - 100) % 3 == 0) v *= 2;
        if (c < 2) v += 1;
      }
    EXPECT_EQ(x.to_vector<float>(), expected);
  }
}

// An update through a view writes the viewed tensor's storage: one kernel, no buffer, the
// elements outside the view left where they are.
TEST(InPlace, ThroughViewsWritesTheTensorsOwnStorage) {
  for (int threads : {1, 2}) {
    fj::NumThreadsGuard guard(threads);
    Tensor t = fj::testing::random_tensor({200, 300}, 12);
    std::vector<float> expected = t.to_vector<float>();
    const float* memory = storage(t);
    auto update_all = [&] {
      t.slice(0, 2, 150).add_(1);
      t.eval();
      t.transpose(0, 1).slice(0, 0, 300, 7).mul_(0.5f);
      t.eval();
      t.select(0, 3).fill_(0);
      t.eval();
    };
    update_all();  // compiles
    fj::reset_stats();
    for (int step = 0; step < 5; ++step) update_all();
    EXPECT_EQ(fj::stats().buffers_allocated, 0);
    EXPECT_EQ(fj::stats().kernels_launched, 15);
    EXPECT_EQ(storage(t), memory);
    for (int step = 0; step < 6; ++step)
      for (int64_t r = 0; r < 200; ++r)
        for (int64_t c = 0; c < 300; ++c) {
          float& v = expected[r * 300 + c];
          if (r >= 2 && r < 150) v += 1;
          if (c % 7 == 0) v *= 0.5f;
          if (r == 3) v = 0;
        }
    EXPECT_EQ(t.to_vector<float>(), expected);
  }
}

// Where an update reads elements of its tensor other than the ones it writes (a shifted view, a
// transpose, a gather), writing in place would read some of them already updated: those
// copy first, with the reference's result.
TEST(InPlace, UpdatesReadingOtherElementsOfTheTensorCopyFirst) {
  for (bool fused : {true, false}) {
    fj::FusionGuard fusion(fused);
    Tensor x = fj::arange(0, 8).eval();
    x.slice(0, 2, 6).add_(x.slice(0, 0, 4));
    EXPECT_EQ(x.to_vector<float>(), values({0, 1, 2, 4, 6, 8, 6, 7}));
    Tensor square = fj::arange(0, 9).reshape({3, 3}).contiguous().eval();
    square.t().copy_(square);
    EXPECT_EQ(square.to_vector<float>(), values({0, 3, 6, 1, 4, 7, 2, 5, 8}));
    Tensor rows = fj::arange(0, 8).reshape({4, 2}).contiguous().eval();
    rows.copy_(fj::index_select(rows, 0, fj::tensor({3, 2, 1, 0}, {4}).to(fj::DType::Int64)));
    EXPECT_EQ(rows.to_vector<float>(), values({6, 7, 4, 5, 2, 3, 0, 1}));
    Tensor sum_into = fj::arange(1, 5).eval();
    sum_into.select(0, 0).copy_(fj::sum(sum_into));  // a reduction of the tensor, read before
    EXPECT_EQ(sum_into.to_vector<float>(), values({10, 2, 3, 4}));
  }
}

// An update through a view of a pending constant whose new value folds to the old one: the
// scatter's two parts were copies of one constant, merged into one node stored over itself (the
// schedule found a cycle of kernels). Found by the fuzzer (seed 11200).
TEST(InPlace, UpdateThroughAViewOfAPendingConstant) {
  Tensor ones = fj::full({1, 1, 1}, 1.0f);
  Tensor strided = fj::slice(ones, 1, 0, INT64_MAX, 2);
  strided.mul_(ones);
  EXPECT_EQ(strided.to_vector<float>(), values({1}));
  Tensor square = fj::full({2, 2}, 3.0f);
  square.t().copy_(fj::full({2, 2}, 3.0f));
  EXPECT_EQ(square.to_vector<float>(), values({3, 3, 3, 3}));
}

// Two updates through views of one tensor: the second's new value joined the kernel of the
// first's, which had to run before the copy that the second overwrites, and after it (the
// schedule found a cycle of kernels). Found by the fuzzer (seed 20000).
TEST(InPlace, SecondUpdateThroughAViewWaitsForTheFirst) {
  for (bool fused : {true, false}) {
    fj::FusionGuard fusion(fused);
    Tensor x = fj::tensor({-3.0f}, {1});
    Tensor minus_one = fj::tensor({-1.0f}, {});
    Tensor updated = fj::squeeze(x).add_(minus_one).copy_(minus_one);
    EXPECT_EQ(updated.to_vector<float>(), values({-1}));
    EXPECT_EQ(x.to_vector<float>(), values({-1}));
  }
}

TEST(Conversion, ToConvertsAmongFloat32Int64AndBool) {
  Tensor x = fj::tensor({2.9f, -1.5f, 0, 4}, {4});
  EXPECT_EQ(x.to(fj::DType::Float32).node(), x.node());
  EXPECT_EQ(x.to(fj::DType::Int64).to_vector<int64_t>(), (std::vector<int64_t>{2, -1, 0, 4}));
  EXPECT_EQ(x.to(fj::DType::Bool).to_vector<bool>(), (std::vector<bool>{true, true, false, true}));
  EXPECT_EQ(x.to(fj::DType::Bool).to(fj::DType::Int64).to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 0, 1}));
  EXPECT_EQ(x.to(fj::DType::Int64).to(fj::DType::Bool).to_vector<bool>(), (std::vector<bool>{true, true, false, true}));
  EXPECT_EQ(x.to(fj::DType::Int64).to(fj::DType::Float32).to_vector<float>(), values({2, -1, 0, 4}));
  EXPECT_NE(error_message([] { Tensor().to(fj::DType::Bool); }).find("to"), std::string::npos);
  // Out of int64's range a float saturates, and NaN converts to 0 (fused, eager and folded alike).
  for (bool fused : {true, false}) {
    fj::FusionGuard fusion(fused);
    Tensor specials = fj::tensor({INFINITY, -INFINITY, NAN, 3e19f, -2.5f}, {5});
    EXPECT_EQ(specials.to(fj::DType::Int64).to_vector<int64_t>(),
              (std::vector<int64_t>{INT64_MAX, INT64_MIN, 0, INT64_MAX, -2}));
    EXPECT_EQ(fj::full({2}, -INFINITY).to(fj::DType::Int64).to_vector<int64_t>(), (std::vector<int64_t>{INT64_MIN, INT64_MIN}));
    // An integer has no -0: -0 converted to Int64 and back is +0, folded or not.
    Tensor zero = fj::argmax(fj::ones({1, 1}), -2);
    zero.fill_(-0.0f);
    EXPECT_FALSE(std::signbit(fj::silu(zero).item<float>()));
  }
}
