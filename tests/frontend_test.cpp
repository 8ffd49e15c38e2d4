// The public API end to end: values against the reference interpreter, errors, caching,
// fusion structure, threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "runtime/buffer_pool.h"
#include "test_util.h"

namespace fj = fusejit;
using fj::Tensor;
using fj::testing::error_message;
using fj::testing::expect_matches_reference;
using fj::testing::random_tensor;

namespace {

Tensor chain7(const Tensor& x) { return fj::relu(fj::tanh(x * 2 + 1) * x - 0.5f) * 3; }

// One float32 ULP relative: the reference is exact, a float32 op rounds once.
constexpr double kUlp = 0x1p-23;

// Sizes around the vector width and its tails.
const std::vector<fj::Shape> kShapes = {{0}, {1}, {7}, {16}, {17}, {1023}, {33, 65}, {4, 0, 3}, {300, 301}};

}  // namespace

TEST(Creation, TensorAndAccessors) {
  Tensor t = fj::tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.sizes(), (fj::Shape{2, 3}));
  EXPECT_EQ(t.dim(), 2);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.size(-1), 3);
  EXPECT_EQ(t.dtype(), fj::DType::Float32);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(fj::tensor({2.5f}, {}).item<float>(), 2.5f);
}

// An lvalue vector is copied (split across threads when large); a moved one is adopted.
TEST(Creation, TensorCopiesAnLvalueAndAdoptsAMovedVector) {
  for (int threads : {1, 2}) {
    fj::NumThreadsGuard guard(threads);
    for (int64_t n : {int64_t{0}, int64_t{5}, int64_t{1} << 20, (int64_t{1} << 20) + 13}) {
      std::vector<float> data(n);
      for (int64_t i = 0; i < n; ++i) data[i] = static_cast<float>(i % 4099);
      Tensor copied = fj::tensor(data, {n});
      std::vector<float> expected = data;
      std::fill(data.begin(), data.end(), -1.0f);
      EXPECT_EQ(copied.to_vector<float>(), expected) << n << " elements, " << threads << " threads";
      const float* memory = expected.data();
      Tensor adopted = fj::tensor(std::move(expected), {n});
      if (n > 0) {
        EXPECT_EQ(adopted.data_ptr<float>(), memory);
      }
    }
  }
}

TEST(Creation, FromBlobDoesNotCopy) {
  std::vector<float> data = {1, 2, 3};
  Tensor t = fj::from_blob(data.data(), {3});
  EXPECT_EQ(t.data_ptr<float>(), data.data());
  data[1] = 20;
  EXPECT_EQ((t + 0).to_vector<float>()[1], 20);
}

// Large fills are written by a string instruction over each thread's range, small ones by the
// vector loop: every element, and only those, takes the value on both paths.
TEST(Creation, LargeFillsCoverExactlyTheirRange) {
  for (int threads : {1, 2}) {
    fj::NumThreadsGuard guard(threads);
    for (fj::Shape shape : {fj::Shape{1001, 999}, fj::Shape{3, 7}, fj::Shape{600, 600}}) {
      Tensor big = fj::full(shape, -2.5f);
      Tensor after = fj::full({64}, 4.0f);
      std::vector<float> values = big.to_vector<float>();
      ASSERT_EQ(static_cast<int64_t>(values.size()), big.numel());
      EXPECT_EQ(std::count(values.begin(), values.end(), -2.5f), big.numel());
      EXPECT_EQ(after.to_vector<float>(), std::vector<float>(64, 4.0f));
      EXPECT_EQ(fj::sum(fj::zeros(shape)).item<float>(), 0);
    }
  }
}

TEST(Creation, ConstantsAndArange) {
  EXPECT_EQ(fj::zeros({2, 2}).to_vector<float>(), std::vector<float>(4, 0));
  EXPECT_EQ(fj::ones({3}).to_vector<float>(), std::vector<float>(3, 1));
  EXPECT_EQ(fj::full({2}, 7.5f).to_vector<float>(), std::vector<float>(2, 7.5f));
  EXPECT_EQ(fj::arange(0, 5).to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4}));
  EXPECT_EQ(fj::arange(1, 2, 0.25).to_vector<float>(), (std::vector<float>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(fj::arange(5, 0, -2).to_vector<float>(), (std::vector<float>{5, 3, 1}));
  EXPECT_EQ(fj::arange(3, 3).numel(), 0);
  expect_matches_reference(fj::arange(-100.5, 1e6, 0.7), kUlp / 2, 0);
}

TEST(Creation, RandomIsDeterministicAndWellSpread) {
  Tensor u = fj::rand({1000, 1000}, 7);
  std::vector<float> values = u.to_vector<float>();
  double sum = 0;
  for (float v : values) {
    ASSERT_GE(v, 0.0f);
    ASSERT_LT(v, 1.0f);
    sum += v;
  }
  EXPECT_NEAR(sum / values.size(), 0.5, 2e-3);
  EXPECT_EQ(fj::rand({1000, 1000}, 7).to_vector<float>(), values);
  EXPECT_NE(fj::rand({1000, 1000}, 8).to_vector<float>(), values);
  expect_matches_reference(fj::rand({1000}, 3), 0, 0);

  std::vector<float> normal = fj::randn({1000, 1000}, 11).to_vector<float>();
  double mean = 0, square = 0;
  for (float v : normal) mean += v, square += double(v) * v;
  mean /= normal.size();
  EXPECT_NEAR(mean, 0, 5e-3);
  EXPECT_NEAR(std::sqrt(square / normal.size() - mean * mean), 1, 5e-3);
  expect_matches_reference(fj::randn({4099}, 5), 1e-5, 1e-5);
}

TEST(Elementwise, BinaryOpsMatchReference) {
  using Op = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<const char*, Op>> ops = {
      {"add", fj::add}, {"sub", fj::sub}, {"mul", fj::mul}, {"div", fj::div},
      {"maximum", fj::maximum}, {"minimum", fj::minimum}};
  for (const auto& shape : kShapes) {
    Tensor a = random_tensor(shape, 1), b = random_tensor(shape, 2);
    for (const auto& [name, op] : ops)
      expect_matches_reference(op(a, b), kUlp / 2, 0, name);  // correctly rounded
  }
}

TEST(Elementwise, UnaryOpsMatchReference) {
  using Op = Tensor (*)(const Tensor&);
  // Relative tolerances: a few float32 ULPs for the polynomial approximations.
  const std::vector<std::tuple<const char*, Op, double>> ops = {
      {"neg", fj::neg, 0}, {"abs", fj::abs, 0}, {"exp", fj::exp, 3e-7}, {"sqrt", fj::sqrt, kUlp / 2},
      {"rsqrt", fj::rsqrt, 2e-7}, {"log", fj::log, 3e-7}, {"sin", fj::sin, 3e-7},
      {"cos", fj::cos, 3e-7}, {"relu", fj::relu, 0}, {"sigmoid", fj::sigmoid, 5e-7},
      {"tanh", fj::tanh, 5e-7}, {"silu", fj::silu, 1e-6}};
  for (const auto& shape : kShapes) {
    Tensor x = random_tensor(shape, 3, -10, 10);
    Tensor positive = random_tensor(shape, 4, 1e-3f, 100);
    for (const auto& [name, op, rtol] : ops) {
      bool needs_positive = std::string(name) == "sqrt" || std::string(name) == "rsqrt" ||
                            std::string(name) == "log";
      expect_matches_reference(op(needs_positive ? positive : x), rtol, 1e-30, name);
    }
  }
}

TEST(Elementwise, ActivationsWithParameters) {
  Tensor x = random_tensor({1000, 3}, 5, -8, 8);
  // Both forms cancel in 1 + erf / 1 + tanh for x < -1: absolute error there (as PyTorch's).
  expect_matches_reference(fj::gelu(x), 1e-6, 1e-6, "gelu");
  expect_matches_reference(fj::gelu(x, "tanh"), 1e-6, 1e-6, "gelu tanh");
  expect_matches_reference(fj::leaky_relu(x, 0.2f), kUlp / 2, 0, "leaky_relu");
  expect_matches_reference(fj::elu(x, 1.5f), 1e-6, 1e-7, "elu");
  expect_matches_reference(fj::softplus(x), 1e-6, 1e-7, "softplus");
  expect_matches_reference(fj::softplus(x, 2, 5), 1e-6, 1e-7, "softplus beta=2 threshold=5");
  expect_matches_reference(fj::clamp(x, -1, 2), 0, 0, "clamp");
  expect_matches_reference(fj::pow(fj::abs(x), 1.7f), 2e-6, 1e-30, "pow");
  expect_matches_reference(fj::pow(x, 2), kUlp / 2, 0, "pow 2");
}

TEST(Elementwise, BroadcastingAndScalarsOnEitherSide) {
  Tensor m = random_tensor({5, 7}, 6), row = random_tensor({7}, 7), col = random_tensor({5, 1}, 8);
  expect_matches_reference(m + row, kUlp / 2, 0, "matrix + row");
  expect_matches_reference(col * row, kUlp / 2, 0, "column * row");
  expect_matches_reference(m - col, kUlp / 2, 0, "matrix - column");
  expect_matches_reference(2 - m, kUlp / 2, 0, "scalar - matrix");
  expect_matches_reference(m / 4, 0, 0, "matrix / scalar");
  expect_matches_reference(1.0f / (1 + m * m), 2 * kUlp, 0, "scalar chain");
  expect_matches_reference(random_tensor({3, 1, 4}, 9) + random_tensor({2, 1}, 10), kUlp / 2, 0, "3-d");
  EXPECT_EQ((col * row).sizes(), (fj::Shape{5, 7}));
  // A broadcast row whose producer is expensive (materialized) and one that is cheap (recomputed).
  expect_matches_reference(m * fj::exp(row) + (row * 2), 3e-7, 1e-6, "mixed producers");
}

TEST(Elementwise, ComparisonsAndWhere) {
  Tensor a = fj::tensor({1, 2, 3, NAN}, {4}), b = fj::tensor({3, 2, 1, 0}, {4});
  EXPECT_EQ((a < b).dtype(), fj::DType::Bool);
  EXPECT_EQ((a < b).to_vector<bool>(), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ((a == b).to_vector<bool>(), (std::vector<bool>{false, true, false, false}));
  EXPECT_EQ((a != b).to_vector<bool>(), (std::vector<bool>{true, false, true, true}));
  EXPECT_EQ((a >= b).to_vector<bool>(), (std::vector<bool>{false, true, true, false}));
  EXPECT_EQ(fj::where(a > b, a, b).to_vector<float>(), (std::vector<float>{3, 2, 3, 0}));
  EXPECT_EQ(fj::where(b, a, 0).to_vector<float>()[3], 0);  // a float condition: nonzero
  EXPECT_EQ(((a > 1) + (a > 2)).to_vector<float>(), (std::vector<float>{0, 1, 2, 0}));
  Tensor x = random_tensor({1001}, 11);
  expect_matches_reference(fj::where(x > 0, x * 2, -x), kUlp / 2, 0, "where");
  Tensor mask = (x > 0.5f).eval();  // a materialized Bool tensor read back by a kernel
  expect_matches_reference(fj::where(mask, x, 1), 0, 0, "where on stored bools");
}

TEST(Elementwise, IeeeSpecialValuesPropagate) {
  const float inf = INFINITY;
  Tensor x = fj::tensor({NAN, inf, -inf, 0.0f, -0.0f, 1e-40f}, {6});
  auto v = [](const Tensor& t) { return t.to_vector<float>(); };
  std::vector<float> sum = v(x + 1);
  EXPECT_TRUE(std::isnan(sum[0]));
  EXPECT_EQ(sum[1], inf);
  EXPECT_TRUE(std::isnan(v(x * 0)[1]));
  EXPECT_TRUE(std::isnan(v(fj::relu(x))[0]));
  EXPECT_TRUE(std::isnan(v(fj::maximum(x, 0))[0]));
  EXPECT_TRUE(std::isnan(v(fj::maximum(0, x))[0]));
  EXPECT_TRUE(std::isnan(v(fj::clamp(x, -1, 1))[0]));
  EXPECT_EQ(v(fj::exp(x))[1], inf);
  EXPECT_EQ(v(fj::exp(x))[2], 0);
  EXPECT_EQ(v(fj::log(x))[3], -inf);
  EXPECT_EQ(v(1 / x)[4], -inf);
  EXPECT_EQ(v(fj::tanh(x))[2], -1);
  EXPECT_EQ(v(fj::sigmoid(x))[1], 1);
  EXPECT_GT(v(x * 1e30f)[5], 0);  // denormals are not flushed
}

TEST(Errors, NameTheOpAndTheShapes) {
  std::string m = error_message([] { fj::ones({3, 4}) + fj::ones({5}); });
  EXPECT_NE(m.find("add"), std::string::npos) << m;
  EXPECT_NE(m.find("[3,4]"), std::string::npos) << m;
  EXPECT_NE(m.find("[5]"), std::string::npos) << m;
  m = error_message([] { fj::where(fj::ones({2}), fj::ones({3}), 0); });
  EXPECT_NE(m.find("where"), std::string::npos) << m;
  m = error_message([] { fj::from_blob(nullptr, {2}); });
  EXPECT_NE(m.find("from_blob"), std::string::npos) << m;
  m = error_message([] {
    float x;
    fj::from_blob(&x, {int64_t{1} << 40, int64_t{1} << 40});
  });
  EXPECT_NE(m.find("overflow"), std::string::npos) << m;
  EXPECT_NE(error_message([] { fj::zeros({-1}); }).find("zeros"), std::string::npos);
  EXPECT_NE(error_message([] { fj::tensor({1, 2}, {3}); }).find("tensor"), std::string::npos);
  EXPECT_NE(error_message([] { fj::ones({2, 3}).size(2); }).find("dim 2"), std::string::npos);
  EXPECT_NE(error_message([] { fj::ones({2}).item<float>(); }).find("item"), std::string::npos);
  EXPECT_NE(error_message([] { fj::ones({2}).to_vector<bool>(); }).find("to_vector"), std::string::npos);
  EXPECT_NE(error_message([] { fj::gelu(fj::ones({2}), "fast"); }).find("gelu"), std::string::npos);
  EXPECT_NE(error_message([] { fj::arange(0, 1, 0); }).find("arange"), std::string::npos);
  EXPECT_NE(error_message([] { fj::arange(0, 1, -1); }).find("arange"), std::string::npos);
  EXPECT_NE(error_message([] { fj::set_num_threads(0); }).find("set_num_threads"), std::string::npos);
  EXPECT_NE(error_message([] { Tensor().eval(); }).find("undefined"), std::string::npos);
  EXPECT_NE(error_message([] { fj::relu(Tensor()); }).find("relu"), std::string::npos);
  EXPECT_NE(error_message([] { fj::ones({2}).dump("graph,typo"); }).find("typo"), std::string::npos);
  EXPECT_NE(error_message([] { fj::ones({int64_t{1} << 40}).eval(); }).find("allocate"), std::string::npos);
}

TEST(Caching, SevenOpChainIsOneKernelCompiledOncePerShape) {
  Tensor x = random_tensor({123, 457}, 12);
  fj::reset_stats();
  chain7(x).eval();
  EXPECT_EQ(fj::stats().kernels_compiled, 1);
  EXPECT_EQ(fj::stats().kernels_launched, 1);
  EXPECT_GT(fj::stats().compile_ms, 0);
  chain7(x).eval();
  EXPECT_EQ(fj::stats().kernels_compiled, 1);
  EXPECT_EQ(fj::stats().cache_hits, 1);
  chain7(random_tensor({124, 457}, 13)).eval();
  EXPECT_EQ(fj::stats().kernels_compiled, 2);
  EXPECT_EQ(fj::stats().cache_misses, 2);
  expect_matches_reference(chain7(x), 1e-6, 1e-6);
}

TEST(Fusion, EagerRunsEveryOpAloneWithTheSameResults) {
  Tensor x = random_tensor({1000, 10}, 14);
  std::vector<float> fused = chain7(x).to_vector<float>();
  fj::FusionGuard eager(false);
  fj::reset_stats();
  std::vector<float> eager_values = chain7(x).to_vector<float>();
  EXPECT_EQ(fj::stats().kernels_launched, 7);
  // No contraction or reassociation: each op rounds the same way fused or not.
  EXPECT_EQ(fj::testing::bits_of(eager_values), fj::testing::bits_of(fused));
}

TEST(Fusion, ValueWithSeveralConsumersIsRecomputedWhenCheapElseMaterialized) {
  Tensor m = random_tensor({64, 32}, 15), row = random_tensor({32}, 16);
  // `row * 2 + 1` (cost 2) feeds a kernel of another shape: recomputed there, one kernel.
  Tensor cheap = row * 2 + 1;
  fj::reset_stats();
  fj::eval({m * cheap});
  EXPECT_EQ(fj::stats().kernels_launched, 1);
  // exp(row) (cost 10) is materialized once: two kernels.
  Tensor costly = fj::exp(row);
  fj::reset_stats();
  Tensor out = m * costly;
  std::string fused = out.dump("fused");
  out.eval();
  EXPECT_EQ(fj::stats().kernels_launched, 2);
  EXPECT_NE(fused.find("expensive"), std::string::npos) << fused;
  expect_matches_reference(out, 3e-7, 0);
  // Two outputs of one shape that share work: one kernel computes both.
  Tensor x = random_tensor({1000}, 17);
  Tensor t = fj::tanh(x);
  Tensor a = t * 2, b = t + 1;
  fj::reset_stats();
  fj::eval({a, b});
  EXPECT_EQ(fj::stats().kernels_launched, 1);
  expect_matches_reference(a, 5e-7, 1e-30);
  expect_matches_reference(b, 5e-7, 1e-30);
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

// Every edge between kernels is explained in the fused dump, with the rule that kept it.
TEST(Fusion, DumpSaysWhyEachProducerWasNotFusedIntoItsConsumer) {
  Tensor x = random_tensor({64, 1000}, 21), y = random_tensor({10}, 22);
  std::string fused = (fj::softmax(x, -1) + fj::sum(y)).dump("fused");
  EXPECT_EQ(count_of(fused, "not fused: "), 1u) << fused;
  EXPECT_NE(fused.find("iterates over [64,1000] reducing dims [1], the producer's kernel over [10] reducing dims [0]"),
            std::string::npos)
      << fused;

  {
    fj::FusionGuard eager(false);
    std::string text = fj::relu(x * 2 + 1).dump("fused");
    EXPECT_EQ(count_of(text, "not fused: "), 2u) << text;
    EXPECT_EQ(count_of(text, "fusion is off (eager)"), 2u) << text;
  }

  // Five reductions chained along the rows: the fifth would be a row kernel's fifth stage.
  Tensor t = x;
  for (int stage = 0; stage < 5; ++stage) t = t - fj::amax(t, {1}, true);
  std::string staged = t.dump("fused");
  EXPECT_NE(staged.find("reduction stage 5 of a row kernel"), std::string::npos) << staged;

  // A column sum's result read back per element: the column kernel sweeps once.
  Tensor centered = x - fj::sum(x, {0});
  std::string column = centered.dump("fused");
  EXPECT_NE(column.find("not fused: "), std::string::npos) << column;
  expect_matches_reference(centered, 1e-5, 1e-4);
}

TEST(Fusion, ResultsDoNotDependOnThreadCount) {
  Tensor x = random_tensor({1024, 1031}, 18);
  std::vector<uint32_t> one, two;
  {
    fj::NumThreadsGuard threads(1);
    one = fj::testing::bits_of(chain7(x).to_vector<float>());
  }
  {
    fj::NumThreadsGuard threads(2);
    two = fj::testing::bits_of(chain7(x).to_vector<float>());
  }
  EXPECT_EQ(one, two);
  fj::NumThreadsGuard threads(2);
  expect_matches_reference(fj::gelu(x * 3 + fj::randn({1031}, 2)), 1e-6, 1e-6);
}

TEST(Fusion, OutputsBeyondTheCacheAreStreamedCorrectly) {
  // 64 MiB outputs take the non-temporal store path; check every element, both threadings.
  Tensor x = fj::rand({4096, 4096}, 9).eval();
  Tensor row = fj::rand({4096}, 10).eval();
  const float* px = x.data_ptr<float>();
  const float* prow = row.data_ptr<float>();
  for (int threads : {1, 2}) {
    fj::NumThreadsGuard guard(threads);
    Tensor flat = x * 2 + 1, broadcast = x * row;
    fj::eval({flat, broadcast});
    const float* pf = flat.data_ptr<float>();
    const float* pb = broadcast.data_ptr<float>();
    int64_t wrong = 0;
    for (int64_t i = 0; i < 4096 * 4096; ++i) {
      wrong += pf[i] != px[i] * 2 + 1;
      wrong += pb[i] != px[i] * prow[i % 4096];
    }
    EXPECT_EQ(wrong, 0) << threads << " threads";
  }
}

TEST(Fusion, MillionOpChainNeitherOverflowsTheStackNorLeaks) {
  Tensor x = fj::zeros({16});
  Tensor y = x;
  for (int i = 0; i < 1000000; ++i) y = y + 1;
  EXPECT_EQ(y.to_vector<float>()[0], 1000000);
  Tensor z = x;
  for (int i = 0; i < 1000000; ++i) z = z * 1.0f + 0.0f;
  z = Tensor();  // dropped unevaluated: destroyed without recursion
}

TEST(Threads, TwoThreadsCompilingDifferentKernelsAtOnce) {
  auto work = [](int thread, std::vector<float>* out) {
    Tensor x = random_tensor({333}, 19);
    for (int k = 0; k < 20; ++k) x = fj::sin(x * float(thread * 100 + k + 1)) + float(k);
    *out = x.to_vector<float>();
  };
  std::vector<float> r1, r2;
  std::thread t1(work, 1, &r1), t2(work, 2, &r2);
  t1.join();
  t2.join();
  std::vector<float> s1, s2;
  work(1, &s1);
  work(2, &s2);
  EXPECT_EQ(r1, s1);
  EXPECT_EQ(r2, s2);
}

TEST(Threads, SharedHistoryEvaluatedFromTwoThreads) {
  Tensor base = fj::tanh(random_tensor({5000}, 20)) * 3;
  std::vector<float> a, b;
  std::thread t1([&] { a = (base + 1).to_vector<float>(); });
  std::thread t2([&] { b = (base + 1).to_vector<float>(); });
  t1.join();
  t2.join();
  EXPECT_EQ(a, b);
}

TEST(Dump, EveryStageFromTheApi) {
  Tensor y = chain7(random_tensor({100, 100}, 21));
  std::string text = y.dump("graph,fused,llvm,opt,asm");
  EXPECT_NE(text.find("after dce"), std::string::npos);
  EXPECT_NE(text.find("kernel 0"), std::string::npos);
  EXPECT_NE(text.find("materialized: graph output"), std::string::npos);
  EXPECT_NE(text.find("define void @fusejit_kernel"), std::string::npos);
  EXPECT_NE(text.find("=== kernel0.opt.ll"), std::string::npos);
  EXPECT_NE(text.find("=== kernel0.s"), std::string::npos);
  EXPECT_FALSE(y.is_evaluated());  // dumping compiles but does not run
}

// Over its bound the buffer pool drops the sizes least recently used, not the one coming back:
// a pool full of earlier sizes must not make every new size a fresh allocation for good.
TEST(Memory, PoolMakesRoomForRecentSizes) {
  namespace rt = fj::runtime;
  rt::release_pooled_buffers();
  rt::set_pooled_bytes_limit(1 << 20);
  { auto older = rt::allocate(600 << 10); }
  EXPECT_EQ(rt::pooled_bytes(), 600 << 10);
  { auto recent = rt::allocate(700 << 10); }
  EXPECT_EQ(rt::pooled_bytes(), 700 << 10);
  { auto too_large = rt::allocate(2 << 20); }  // beyond the bound: freed, evicting nothing
  EXPECT_EQ(rt::pooled_bytes(), 700 << 10);
  {
    auto again = rt::allocate(700 << 10);  // served from the pool
    EXPECT_EQ(rt::pooled_bytes(), 0);
  }
  rt::set_pooled_bytes_limit(0);
  rt::release_pooled_buffers();
}

namespace {

// Four steps of centering the rows and squashing: as many reduction stages as one kernel takes,
// so each call ends a kernel whose result the next kernel reads.
Tensor four_centerings(Tensor t) {
  for (int step = 0; step < 4; ++step) t = fj::tanh(t - fj::mean(t, {-1}, true)) * 1.5f;
  return t;
}

void expect_near_reference(const std::vector<double>& expected, const Tensor& t, const std::string& what) {
  std::vector<float> actual = t.to_vector<float>();
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i)
    ASSERT_NEAR(actual[i], expected[i], 1e-5) << what << " element " << i;
}

}  // namespace

// A three-kernel chain holds at most two results at once: the first is released after the second
// kernel has read it, and the third kernel's output takes its memory. Both from a fresh schedule
// and from the cached one.
TEST(Memory, IntermediatesAreReleasedAfterTheirLastUse) {
  namespace rt = fj::runtime;
  constexpr int64_t kRows = 16, kCols = 512, kResultBytes = kRows * kCols * 4;
  Tensor x = random_tensor({kRows, kCols}, 11);
  Tensor probe = four_centerings(four_centerings(four_centerings(x)));
  ASSERT_NE(probe.dump("fused").find("=== fused\n3 kernels\n"), std::string::npos) << probe.dump("fused");
  for (int round = 0; round < 2; ++round) {
    Tensor y = four_centerings(four_centerings(four_centerings(x)));
    std::vector<double> expected = fj::testing::reference(y);
    rt::release_pooled_buffers();
    rt::reset_peak_bytes_in_use();
    int64_t before = rt::peak_bytes_in_use();
    y.eval();
    EXPECT_EQ(rt::peak_bytes_in_use() - before, 2 * kResultBytes) << "round " << round;
    expect_near_reference(expected, y, "round " + std::to_string(round));
  }
}

// Never released: a result that is also a graph output, nor one before its last reader has run
// (here the third kernel reads the first kernel's result too).
TEST(Memory, OutputsAndResultsReadLaterAreKept) {
  Tensor x = random_tensor({16, 512}, 12);
  for (int round = 0; round < 2; ++round) {
    Tensor first = four_centerings(x);
    Tensor second = four_centerings(first);
    Tensor third = four_centerings(second) + first;
    std::vector<double> expected_first = fj::testing::reference(first);
    std::vector<double> expected_second = fj::testing::reference(second);
    std::vector<double> expected_third = fj::testing::reference(third);
    fj::eval({second, third});
    expect_near_reference(expected_second, second, "second, round " + std::to_string(round));
    expect_near_reference(expected_third, third, "third, round " + std::to_string(round));
    expect_near_reference(expected_first, first.eval(), "first, round " + std::to_string(round));
  }
}

// The schedule of a graph is reused for the same structure on other data; structure includes
// which inputs are the same tensor, and the cache keeps no tensor's data alive.
TEST(Caching, SchedulesAreReusedPerStructureNotPerData) {
  for (int round = 0; round < 3; ++round) {
    Tensor x = random_tensor({33, 65}, 100 + round), y = random_tensor({65}, 200 + round);
    expect_matches_reference(fj::tanh(x * y + 1) - x, 4 * kUlp, 1e-6, "x*y");
    expect_matches_reference(fj::tanh(x * x + 1) - x, 4 * kUlp, 1e-6, "x*x (aliased inputs)");
    expect_matches_reference(fj::softmax(x, -1) + fj::sum(x), 1e-5, 1e-5, "reductions");
  }
  // Constants are part of the structure, by their bits: +0 and -0 schedule apart.
  for (float zero : {0.0f, -0.0f, 0.0f}) {
    std::vector<float> reciprocal = (1.0f / fj::full({3}, zero)).to_vector<float>();
    for (float v : reciprocal) EXPECT_EQ(v, std::signbit(zero) ? -INFINITY : INFINITY) << zero;
  }
  std::weak_ptr<fj::ir::Storage> data;
  {
    Tensor x = random_tensor({1000}, 7);
    data = x.node()->value.storage;
    (x * 3).eval();
  }
  EXPECT_TRUE(data.expired()) << "a cached schedule kept an input's data alive";
  // A dump after cached evaluations still shows the passes and the kernel notes.
  Tensor x = random_tensor({16}, 8);
  (x * 2).eval();
  std::string text = (x * 2).dump("graph,fused");
  EXPECT_NE(text.find("after canonicalize"), std::string::npos) << text;
  EXPECT_NE(text.find("materialized: graph output"), std::string::npos) << text;
  EXPECT_NE((x * 2).dump("asm").find("kernel0.s"), std::string::npos);
}
