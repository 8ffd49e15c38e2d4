// Programs that once gave wrong answers, crashed or misreported, each kept here under the
// behaviour it checks. Every value is checked fused, eager and at 1 and 2 threads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <random>

#include "ir/kernel.h"
#include "test_util.h"

namespace fj = fusejit;
using fj::Tensor;
using fj::testing::bits_of;
using fj::testing::error_message;

namespace {

// The values of the tensors `build` returns, evaluated together in one schedule, in each mode:
// fused and eager, at 1 and 2 threads.
struct Mode {
  bool fuse;
  int threads;
};
constexpr Mode kModes[] = {{true, 1}, {true, 2}, {false, 1}, {false, 2}};

std::string mode_name(const Mode& mode) {
  return std::string(mode.fuse ? "fused" : "eager") + ", " + std::to_string(mode.threads) +
         " thread" + (mode.threads > 1 ? "s" : "");
}

std::vector<std::vector<float>> evaluate(const std::function<std::vector<Tensor>()>& build,
                                         const Mode& mode) {
  fj::FusionGuard fusion(mode.fuse);
  fj::NumThreadsGuard threads(mode.threads);
  std::vector<Tensor> outputs = build();
  fj::eval(outputs);
  std::vector<std::vector<float>> values;
  for (const Tensor& t : outputs) values.push_back(t.to_vector<float>());
  return values;
}

// The bits of `values`, every NaN as one: NaN's sign and payload are not specified.
std::vector<uint32_t> canonical_bits(const std::vector<float>& values) {
  std::vector<uint32_t> bits = bits_of(values);
  for (size_t i = 0; i < values.size(); ++i)
    if (std::isnan(values[i])) bits[i] = 0x7fc00000u;
  return bits;
}

// Every mode gives `expected` bit for bit (signed zeros included), NaN where NaN is expected.
void expect_in_every_mode(const std::function<std::vector<Tensor>()>& build,
                          const std::vector<std::vector<float>>& expected) {
  for (const Mode& mode : kModes) {
    std::vector<std::vector<float>> values = evaluate(build, mode);
    ASSERT_EQ(values.size(), expected.size());
    for (size_t o = 0; o < values.size(); ++o)
      EXPECT_EQ(canonical_bits(values[o]), canonical_bits(expected[o]))
          << mode_name(mode) << ", output " << o;
  }
}

std::vector<float> repeated(size_t count, float value) { return std::vector<float>(count, value); }

// The most reductions any kernel of `t`'s fused schedule holds.
size_t most_reductions_per_kernel(const Tensor& t) {
  fj::ir::Schedule schedule = fj::ir::schedule_kernels(fj::frontend::graph_of({t}), {});
  size_t most = 0;
  for (const fj::ir::ScheduledKernel& scheduled : schedule.kernels) {
    size_t reductions = 0;
    for (const fj::ir::KernelOp& op : scheduled.kernel.ops) reductions += fj::ir::is_reduction(op.op);
    most = std::max(most, reductions);
  }
  return most;
}

// A scoped environment variable.
class EnvironmentVariable {
 public:
  EnvironmentVariable(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) previous_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~EnvironmentVariable() {
    if (previous_)
      setenv(name_, previous_->c_str(), 1);
    else
      unsetenv(name_);
  }
  EnvironmentVariable(const EnvironmentVariable&) = delete;
  EnvironmentVariable& operator=(const EnvironmentVariable&) = delete;

 private:
  const char* name_;
  std::optional<std::string> previous_;
};

}  // namespace

// Values that do not vary along a row (constants, broadcast inputs, rows of length 1) were
// computed once per sweep and never kept for the later sweeps that read them back.
TEST(RowReductions, ValuesConstantAlongTheRowReachEverySweep) {
  expect_in_every_mode([] { return std::vector<Tensor>{fj::softmax(fj::zeros({4}), -1)}; },
                       {repeated(4, 0.25f)});
  expect_in_every_mode([] { return std::vector<Tensor>{fj::softmax(fj::full({3, 1000}, 7), -1)}; },
                       {repeated(3000, 0.001f)});
  expect_in_every_mode(
      [] {
        Tensor row = fj::tensor({0.0f, 0.0f}, {1, 2});
        return std::vector<Tensor>{fj::softmax(row * fj::ones({5, 2}), -1)};
      },
      {repeated(10, 0.5f)});
  expect_in_every_mode([] { return std::vector<Tensor>{fj::softmax(fj::tensor({3.0f, -2.0f}, {2, 1}), 1)}; },
                       {repeated(2, 1.0f)});
  std::vector<float> y = {0.5f};
  float e = fj::exp(fj::tensor(y, {1})).item<float>();
  expect_in_every_mode(
      [&] {
        Tensor t = fj::tensor(y, {1});
        return std::vector<Tensor>{fj::sigmoid(fj::sum(fj::exp(t), {0})), -fj::exp(t)};
      },
      {{fj::sigmoid(Tensor(e)).item<float>()}, {-e}});
}

// A graph input read both per element and per row of one kernel was one load, which has no
// value between sweeps (argmax segfaulted here).
TEST(RowReductions, InputReadPerElementAndPerRowLoadsForEach) {
  expect_in_every_mode(
      [] {
        Tensor t1 = fj::tensor({2.0f}, {1, 1});
        return std::vector<Tensor>{t1 * fj::argmax(t1 * fj::ones({9, 100}), -1, true)};
      },
      {repeated(9, 0.0f)});
  expect_in_every_mode(
      [] {
        Tensor t1 = fj::tensor({2.0f}, {1, 1});
        return std::vector<Tensor>{t1 * fj::sum(t1 * fj::ones({9, 100}), {1}, true)};
      },
      {repeated(9, 400.0f)});
}

// Reducing a 0-d tensor (sum(sum(x)), mean(loss)) threw InternalError.
TEST(Reductions, OfZeroDimTensorsGiveTheElement) {
  expect_in_every_mode(
      [] {
        Tensor x = fj::tensor({1, 2, 3}, {3});
        Tensor loss = fj::sum(x);
        return std::vector<Tensor>{fj::sum(loss), fj::mean(loss), fj::prod(loss), fj::amax(loss),
                                   fj::amin(loss, {-1}), fj::sum(loss, {0}, true), fj::var(loss)};
      },
      {{6}, {6}, {6}, {6}, {6}, {6}, {std::numeric_limits<float>::quiet_NaN()}});
  Tensor scalar = fj::full({}, 4);
  EXPECT_EQ(fj::argmax(scalar, 0).item<int64_t>(), 0);
  EXPECT_EQ(fj::sum(scalar).dim(), 0);
  EXPECT_NE(error_message([&] { fj::sum(scalar, {1}); }).find("sum: dim 1 is out of range for f32[]"),
            std::string::npos);
}

// Per-lane float32 partial products overflowed to inf, and 0 * inf made the product NaN.
TEST(Reductions, ProdWithAZeroAmongLargeFactorsIsZero) {
  expect_in_every_mode([] { return std::vector<Tensor>{fj::prod(fj::arange(0, 100))}; }, {{0}});
  expect_in_every_mode(
      [] {
        std::vector<float> values(300);
        for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
        return std::vector<Tensor>{fj::prod(fj::tensor(values, {3, 100}), {1})};
      },
      {{0, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity()}});
}

// x + 0 -> x turned -0 into +0's opposite, and CSE merged the constants 0.0 and -0.0.
TEST(Canonicalize, KeepsSignedZeros) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  expect_in_every_mode(
      [] {
        Tensor z = fj::tensor({-0.0f}, {1});
        return std::vector<Tensor>{1.0f / (z + 0.0f), 1.0f / (z + -0.0f), 1.0f / (z - 0.0f),
                                   1.0f / (0.0f - z)};
      },
      {{inf}, {-inf}, {-inf}, {inf}});
  expect_in_every_mode(
      [] {
        Tensor x = fj::tensor({1.0f}, {1});
        return std::vector<Tensor>{1.0f / (x * -0.0f), 1.0f / (x * 0.0f)};
      },
      {{-inf}, {inf}});
}

// A broadcast whose element count overflowed wrapped around: a write past a 64-byte buffer, or
// a silent 0.
TEST(Shapes, BroadcastTooLargeToAddressIsAnError) {
  auto big = int64_t{1} << 31;
  EXPECT_NE(error_message([&] { fj::full({big, 1}, 1) + fj::full({1, big}, 1); })
                .find("add: the result of shape [2147483648,2147483648] has too many elements"),
            std::string::npos);
  auto huge = int64_t{1} << 32;
  EXPECT_NE(error_message([&] { fj::sum(fj::ones({huge, 1}) * fj::ones({1, huge})); })
                .find("mul: the result of shape [4294967296,4294967296]"),
            std::string::npos);
  EXPECT_NE(error_message([&] { fj::zeros({0, int64_t{1} << 62}); }).find("zeros: invalid shape"),
            std::string::npos);
}

// set_num_threads(INT_MAX) crashed inside oneTBB.
TEST(Settings, ThreadCountsBeyondTheLimitAreErrors) {
  for (int threads : {INT_MAX, 100'000'000, 10'000'000, 1025, 0, -1})
    EXPECT_NE(error_message([&] { fj::set_num_threads(threads); })
                  .find("set_num_threads: expected 1 to 1024 threads, got " + std::to_string(threads)),
              std::string::npos);
  fj::NumThreadsGuard many(1024);
  EXPECT_EQ(fj::sum(fj::ones({1000, 1000})).item<float>(), 1e6f);
}

TEST(Errors, SoftmaxNamesItselfNotAmax) {
  EXPECT_NE(error_message([] { fj::softmax(fj::zeros({4}), 3); }).find("softmax: dim 3 is out of range"),
            std::string::npos);
  EXPECT_NE(error_message([] { fj::log_softmax(fj::zeros({4}), -2); }).find("log_softmax: dim -2"),
            std::string::npos);
  EXPECT_EQ(fj::softmax(fj::zeros({3, 0}), 1).numel(), 0);
}

// More than 64 dims shifted a 64-bit mask by 64 or more (undefined behaviour, caught by UBSan).
TEST(Shapes, MoreThanSixtyFourDims) {
  fj::Shape shape(70, 1);
  shape[3] = 2;
  expect_in_every_mode([&] { return std::vector<Tensor>{fj::exp(fj::zeros(shape)) + 1}; },
                       {repeated(2, 2.0f)});
}

// A missing FUSEJIT_DUMP_DIR dropped the dumps without a word.
TEST(Dumps, DumpDirectoryIsCreatedOrItsFailureReported) {
  // One directory per process: CTest runs the .native and .avx2 variants side by side.
  std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("fusejit_dump_dir_test_" + std::to_string(getpid()));
  std::filesystem::remove_all(root);
  {
    EnvironmentVariable stages("FUSEJIT_DUMP", "fused");
    EnvironmentVariable directory("FUSEJIT_DUMP_DIR", (root / "new" / "dir").string());
    fj::Tensor x = fj::ones({3}) * 5;
    x.eval();
    EXPECT_FALSE(std::filesystem::is_empty(root / "new" / "dir"));
  }
  std::filesystem::create_directories(root);
  std::ofstream(root / "a_file") << "not a directory";
  {
    EnvironmentVariable stages("FUSEJIT_DUMP", "fused");
    EnvironmentVariable directory("FUSEJIT_DUMP_DIR", (root / "a_file" / "sub").string());
    fj::Tensor x = fj::ones({3}) * 6;
    EXPECT_NE(error_message([&] { x.eval(); }).find("FUSEJIT_DUMP_DIR=" + (root / "a_file" / "sub").string() +
                                                    ": cannot create the directory"),
              std::string::npos);
  }
  std::filesystem::remove_all(root);
}

// Constant-only subexpressions were folded in double, 1 ULP away from the vector math that eager
// evaluation runs.
TEST(FusedAndEager, ConstantSubexpressionsAreBitIdentical) {
  auto build = [] {
    Tensor c = fj::full({5}, 0.3f);
    Tensor x = fj::arange(0, 5);
    return std::vector<Tensor>{fj::exp(c), fj::rsqrt(c + 1) * x, fj::tanh(c * 3) + fj::sin(c),
                               fj::pow(c, 1.7f), fj::sqrt(c) / 3 - x};
  };
  std::vector<std::vector<float>> eager = evaluate(build, {false, 1});
  expect_in_every_mode(build, eager);
}

// Scalars and seeds were compiled in as immediates: a learning-rate schedule or rand(shape, step)
// compiled a new kernel (and kept a new schedule) on every step.
TEST(Caching, ChangingScalarsAndSeedsReuseKernelsAndSchedules) {
  Tensor p = fj::testing::random_tensor({1000}, 1);
  Tensor g = fj::testing::random_tensor({1000}, 2);
  fj::reset_stats();
  for (int step = 0; step < 200; ++step) {
    float lr = 0.1f / static_cast<float>(1 + step);
    Tensor next = p - lr * g + fj::rand({1000}, static_cast<uint64_t>(step)) * 1e-3f;
    if (step % 50 == 49) fj::testing::expect_matches_reference(next, 1e-6, 1e-6, "step " + std::to_string(step));
    p = next.eval();
  }
  EXPECT_EQ(fj::stats().kernels_compiled, 1);
  EXPECT_GE(fj::stats().cache_hits, 199);
  // The values really change: two seeds give two different draws, two scalars two results.
  EXPECT_NE(fj::rand({4}, 1).to_vector<float>(), fj::rand({4}, 2).to_vector<float>());
  Tensor x = fj::ones({4});
  EXPECT_EQ((x * 3.0f).to_vector<float>(), repeated(4, 3.0f));
  EXPECT_EQ((x * 5.0f).to_vector<float>(), repeated(4, 5.0f));
  EXPECT_EQ(fj::full({3}, 2.5f).to_vector<float>(), repeated(3, 2.5f));
  EXPECT_EQ(fj::full({1 << 20}, 0.75f).to_vector<float>(), repeated(1 << 20, 0.75f));
}

// Equal scalars in one evaluation are not merged: the cached schedule must hold when they differ.
TEST(Caching, EqualScalarsStayApartForLaterValues) {
  Tensor x = fj::arange(0, 4);
  auto step = [&](float a, float b) { return (x * a + x * b).to_vector<float>(); };
  EXPECT_EQ(step(2, 2), (std::vector<float>{0, 4, 8, 12}));
  EXPECT_EQ(step(2, 3), (std::vector<float>{0, 5, 10, 15}));
}

// Row kernels were never cut: 2,000 chained row-mean subtractions made one kernel of 2,000
// stages (21 s to compile, quadratic work per row).
TEST(Fusion, ChainedRowReductionsAreCutIntoBoundedKernels) {
  auto chain = [] {
    Tensor x = fj::testing::random_tensor({8, 100}, 3);
    for (int i = 0; i < 2000; ++i) x = x - fj::mean(x, {-1}, true);
    return x;
  };
  EXPECT_LE(most_reductions_per_kernel(chain()), 4u);
  fj::reset_stats();
  std::vector<float> fused = chain().to_vector<float>();
  EXPECT_LE(fj::stats().kernels_compiled, 4);
  fj::FusionGuard eager(false);
  std::vector<float> expected = chain().to_vector<float>();
  for (size_t i = 0; i < fused.size(); ++i) EXPECT_NEAR(fused[i], expected[i], 1e-5) << i;
}

// A residual stack of 200 layers was one kernel whose compile time grew with the square of its
// depth.
TEST(Fusion, ResidualStackCompilesAFewBoundedKernels) {
  Tensor w = fj::testing::random_tensor({64}, 4);
  auto stack = [&](int layers) {
    Tensor x = fj::testing::random_tensor({16, 64}, 5);
    for (int i = 0; i < layers; ++i) x = fj::layer_norm(x + fj::gelu(x * w), {64});
    return x;
  };
  EXPECT_LE(most_reductions_per_kernel(stack(200)), 4u);
  fj::reset_stats();
  std::vector<float> fused = stack(200).to_vector<float>();
  EXPECT_LE(fj::stats().kernels_compiled, 20);
  fj::FusionGuard eager(false);
  std::vector<float> expected = stack(200).to_vector<float>();
  for (size_t i = 0; i < fused.size(); ++i) EXPECT_NEAR(fused[i], expected[i], 1e-3) << i;
}

// Keying and scheduling a left-deep sum of N distinct inputs took time quadratic in N.
TEST(Scaling, LeftDeepSumOfFortyThousandInputs) {
  std::vector<Tensor> inputs;
  for (int i = 0; i < 40000; ++i) inputs.push_back(fj::tensor({static_cast<float>(i % 7)}, {1}));
  Tensor sum = inputs[0];
  for (size_t i = 1; i < inputs.size(); ++i) sum = sum + inputs[i];
  int64_t expected = 0;
  for (int i = 0; i < 40000; ++i) expected += i % 7;
  EXPECT_EQ(sum.item<float>(), static_cast<float>(expected));
}

// Scheduling an eager chain visited every node once per kernel: 100k steps took 34 s.
TEST(Scaling, EagerChainOfAHundredThousandSteps) {
  fj::FusionGuard eager(false);
  Tensor x = fj::ones({4});
  float expected = 1;
  for (int i = 0; i < 100000; ++i) {
    x = x * 1.0001f;
    expected *= 1.0001f;
  }
  EXPECT_EQ(x.to_vector<float>(), repeated(4, expected));
}

// The README's statement of what is bit-identical: elementwise results and arg-extrema, fused
// against eager, on random programs over every elementwise op of the table with special values.
TEST(FusedAndEager, ElementwiseResultsAndArgExtremaAreBitIdentical) {
  std::mt19937 gen(7);
  std::vector<float> values = fj::testing::random_floats(6 * 37, 8, -4, 4);
  const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                            1e-40f, -1e-40f, 3e38f};
  for (size_t i = 0; i < values.size(); i += 5) values[i] = specials[i % std::size(specials)];
  auto program = [&](uint32_t seed) {
    std::mt19937 pick(seed);
    Tensor x = fj::tensor(values, {6, 37});
    Tensor row = fj::tensor(std::vector<float>(values.begin(), values.begin() + 37), {37});
    std::vector<Tensor> live = {x, row, Tensor(0.75f), fj::full({6, 1}, -2.5f)};
    for (int step = 0; step < 12; ++step) {
      const Tensor& a = live[pick() % live.size()];
      const Tensor& b = live[pick() % live.size()];
      switch (pick() % 12) {
        case 0: live.push_back(fj::exp(a) - b); break;
        case 1: live.push_back(fj::sigmoid(a) * b + 1.5f); break;
        case 2: live.push_back(fj::where(a > b, fj::tanh(a), fj::log(fj::abs(b)))); break;
        case 3: live.push_back(fj::pow(fj::abs(a), 1.3f) / b); break;
        case 4: live.push_back(fj::gelu(a) + fj::gelu(b, "tanh")); break;
        case 5: live.push_back(fj::silu(a) - fj::softplus(b, 2.0f, 10.0f)); break;
        case 6: live.push_back(fj::elu(a, 0.5f) * fj::leaky_relu(b, 0.1f)); break;
        case 7: live.push_back(fj::sin(a) + fj::cos(b) * fj::rsqrt(fj::abs(a) + 2)); break;
        case 8: live.push_back(fj::clamp(a, -1.5f, 2.25f) + fj::maximum(a, b) - fj::minimum(b, 0.5f)); break;
        case 9: live.push_back(fj::sqrt(fj::relu(a)) + (a == b) + (a != b) * 2); break;
        case 10: live.push_back(a * 0.0f + -0.0f - b * 1.0f); break;
        default: live.push_back(fj::rand({6, 37}, pick()) + fj::randn({37}, pick()) * a); break;
      }
    }
    Tensor last = live.back() + live[live.size() - 2] + fj::zeros({6, 37});
    return std::vector<Tensor>{last, fj::argmax(last, 1), fj::argmin(last, 0, true)};
  };
  for (uint32_t seed = 0; seed < 40; ++seed) {
    auto build = [&] {
      std::vector<Tensor> outputs = program(seed);
      outputs[1] = outputs[1] * 1.0f;  // Int64 indices, compared as floats
      outputs[2] = outputs[2] * 1.0f;
      return outputs;
    };
    std::vector<std::vector<float>> eager = evaluate(build, {false, 1});
    expect_in_every_mode(build, eager);
    if (HasFailure()) FAIL() << "program " << seed;
  }
}

// gelu(-0) was +0 (the vector form's fma cancels to +0), and maximum/minimum of two zeros folded
// differently from the kernels.
TEST(FusedAndEager, SignedZerosOfGeluAndClamp) {
  expect_in_every_mode(
      [] {
        Tensor z = fj::full({1, 1}, -0.0f);
        return std::vector<Tensor>{fj::gelu(z), fj::clamp(z, 0.0f, 1.0f), fj::maximum(z, 0.0f),
                                   fj::minimum(0.0f, z)};
      },
      {{-0.0f}, {0.0f}, {0.0f}, {-0.0f}});
}
