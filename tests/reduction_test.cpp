// Reductions and what is composed of them: values against the reference interpreter, the
// kernels they fuse into, determinism across threads, accuracy of long sums, edge cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "test_util.h"

namespace fj = fusejit;
using fj::Tensor;
using fj::testing::bits_of;
using fj::testing::error_message;
using fj::testing::expect_matches_reference;
using fj::testing::random_tensor;
using fj::testing::reference;

namespace {

struct ReduceCase {
  const char* name;
  Tensor (*op)(const Tensor&, fj::Shape, bool);
};

const ReduceCase kReductions[] = {
    {"sum", [](const Tensor& x, fj::Shape d, bool k) { return fj::sum(x, d, k); }},
    {"mean", [](const Tensor& x, fj::Shape d, bool k) { return fj::mean(x, d, k); }},
    {"amax", [](const Tensor& x, fj::Shape d, bool k) { return fj::amax(x, d, k); }},
    {"amin", [](const Tensor& x, fj::Shape d, bool k) { return fj::amin(x, d, k); }},
    {"prod", [](const Tensor& x, fj::Shape d, bool k) { return fj::prod(x, d, k); }},
};

// Shapes with vector tails, size-1 dims and empty dims; every subset of dims is reduced.
const std::vector<fj::Shape> kShapes = {{1},     {7},        {17},      {1023},   {33, 65},
                                        {3, 1, 4}, {5, 6, 7}, {2, 0, 3}, {300, 301}, {4, 1}};

std::vector<fj::Shape> dim_subsets(int64_t rank) {
  std::vector<fj::Shape> subsets;
  for (int64_t mask = 1; mask < (int64_t{1} << rank); ++mask) {
    fj::Shape dims;
    for (int64_t d = 0; d < rank; ++d)
      if (mask >> d & 1) dims.push_back(d);
    subsets.push_back(dims);
  }
  return subsets;
}

// A float32 sum of n terms is within a few n*eps of the exact one relative to the sum of
// magnitudes, a product of n factors within n*eps relative; blocked accumulation keeps the
// effective n far below the element count (at most ~2048 sequential terms).
void expect_reduction_matches(const ReduceCase& c, const Tensor& x, const fj::Shape& dims,
                              bool keepdim, const std::string& what) {
  Tensor result = c.op(x, dims, keepdim);
  std::vector<double> expected = reference(result);
  std::vector<double> magnitude = reference(fj::sum(fj::abs(x), dims, keepdim));
  std::vector<float> actual = result.to_vector<float>();
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double count = static_cast<double>(x.numel()) / std::max<size_t>(1, expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    double tolerance = std::string(c.name) == "amax" || std::string(c.name) == "amin" ? 0
                       : std::string(c.name) == "prod"
                           ? 0x1p-24 * std::min(count, 2048.0) * std::fabs(expected[i])
                       : std::string(c.name) == "mean" ? 1e-6 * magnitude[i] / count + 1e-7
                                                       : 1e-6 * magnitude[i] + 1e-7;
    if (std::isnan(expected[i]) && std::isnan(actual[i])) continue;
    ASSERT_LE(std::fabs(actual[i] - expected[i]), tolerance)
        << what << " element " << i << ": got " << actual[i] << ", reference " << expected[i];
  }
}

}  // namespace

TEST(Reductions, EveryOpShapeAndDimSetMatchesTheReference) {
  for (bool fused : {true, false}) {
    fj::FusionGuard fusion(fused);
    for (const fj::Shape& shape : kShapes) {
      for (const ReduceCase& c : kReductions) {
        // prod stays near 1 over hundreds of factors.
        bool is_prod = std::string(c.name) == "prod";
        Tensor x = random_tensor(shape, 11, is_prod ? 0.99f : -3, is_prod ? 1.01f : 3);
        // amax/amin over an empty dim throw (tested below).
        bool throws_on_empty = std::string(c.name) == "amax" || std::string(c.name) == "amin";
        for (const fj::Shape& dims : dim_subsets(static_cast<int64_t>(shape.size())))
          for (bool keepdim : {false, true}) {
            std::string what = std::string(c.name) + fj::ir::shape_string(shape) + " dims " +
                               fj::ir::shape_string(dims) + (keepdim ? " keepdim" : "") +
                               (fused ? " fused" : " eager");
            bool empty_reduced = false;
            for (int64_t d : dims) empty_reduced = empty_reduced || shape[d] == 0;
            if (!(empty_reduced && throws_on_empty)) expect_reduction_matches(c, x, dims, keepdim, what);
          }
        if (!(x.numel() == 0 && throws_on_empty))
          expect_reduction_matches(c, x, {}, false, std::string(c.name) + " over all");
      }
    }
  }
}

TEST(Reductions, ShapesAndNegativeDims) {
  Tensor x = random_tensor({2, 3, 4}, 1);
  EXPECT_EQ(fj::sum(x).sizes(), fj::Shape{});
  EXPECT_EQ(fj::sum(x, {1}).sizes(), (fj::Shape{2, 4}));
  EXPECT_EQ(fj::sum(x, {-1}, true).sizes(), (fj::Shape{2, 3, 1}));
  EXPECT_EQ(fj::amax(x, {0, 2}).sizes(), (fj::Shape{3}));
  EXPECT_EQ(fj::mean(x, {}, true).sizes(), (fj::Shape{1, 1, 1}));
  EXPECT_EQ(bits_of(fj::sum(x, {-1}).to_vector<float>()), bits_of(fj::sum(x, {2}).to_vector<float>()));
}

TEST(Reductions, EmptyTensorsFollowPyTorch) {
  Tensor empty = fj::zeros({0, 3});
  EXPECT_EQ(fj::sum(empty).item<float>(), 0);
  EXPECT_EQ(fj::prod(empty).item<float>(), 1);
  EXPECT_TRUE(std::isnan(fj::mean(empty).item<float>()));
  EXPECT_EQ(fj::sum(empty, {0}).to_vector<float>(), std::vector<float>(3, 0));
  EXPECT_EQ(fj::sum(empty, {1}).numel(), 0);
  EXPECT_EQ(fj::amax(empty, {1}).numel(), 0);  // nothing to reduce per (absent) row
  for (auto op : {+[](const Tensor& t) { return fj::amax(t); }, +[](const Tensor& t) { return fj::min(t); }}) {
    std::string message = error_message([&] { op(empty); });
    EXPECT_TRUE(message.find("f32[0,3]") != std::string::npos) << message;
  }
}

TEST(Reductions, NanAndInfinityPropagate) {
  float nan = std::numeric_limits<float>::quiet_NaN();
  float inf = std::numeric_limits<float>::infinity();
  for (int64_t n : {5, 40, 100000}) {
    std::vector<float> data(n, 1.0f);
    data[n / 2] = nan;
    Tensor x = fj::tensor(data, {n});
    EXPECT_TRUE(std::isnan(fj::amax(x).item<float>())) << n;
    EXPECT_TRUE(std::isnan(fj::amin(x).item<float>())) << n;
    EXPECT_TRUE(std::isnan(fj::sum(x).item<float>())) << n;
    data[n / 2] = -inf;
    Tensor y = fj::tensor(data, {n});
    EXPECT_EQ(fj::amin(y).item<float>(), -inf) << n;
    EXPECT_EQ(fj::amax(y).item<float>(), 1.0f) << n;
    EXPECT_EQ(fj::sum(y).item<float>(), -inf) << n;
  }
}

// Row by row: a NaN decides only its own row, wherever it sits in the row (first step, partial
// last step), and the rows beside it keep their extremes.
TEST(Reductions, NanDecidesOnlyItsOwnRow) {
  float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t cols : {7, 37, 100, 1000}) {
    std::vector<float> data(4 * cols);
    for (int64_t i = 0; i < 4 * cols; ++i) data[i] = static_cast<float>((i * 7919) % 1013) - 500.0f;
    data[1 * cols + cols - 1] = nan;
    data[2 * cols] = nan;
    Tensor x = fj::tensor(data, {4, cols});
    std::vector<float> max = fj::amax(x, {1}).to_vector<float>();
    std::vector<float> min = fj::amin(x, {1}).to_vector<float>();
    for (int64_t r : {0, 3}) {
      auto row = data.begin() + r * cols;
      EXPECT_EQ(max[r], *std::max_element(row, row + cols)) << cols << " row " << r;
      EXPECT_EQ(min[r], *std::min_element(row, row + cols)) << cols << " row " << r;
    }
    for (int64_t r : {1, 2}) {
      EXPECT_TRUE(std::isnan(max[r])) << cols << " row " << r;
      EXPECT_TRUE(std::isnan(min[r])) << cols << " row " << r;
    }
  }
}

TEST(Reductions, BadDimsNameTheOpAndShape) {
  Tensor x = fj::zeros({2, 3});
  auto expect_error = [](auto make, const std::string& needle) {
    std::string message = error_message(make);
    EXPECT_NE(message.find(needle), std::string::npos) << message;
  };
  expect_error([&] { return fj::sum(x, {2}); }, "sum: dim 2 is out of range for f32[2,3]");
  expect_error([&] { return fj::mean(x, {-3}); }, "mean: dim -3");
  expect_error([&] { return fj::amax(x, {1, -1}); }, "appears twice");
  expect_error([&] { return fj::softmax(x, 5); }, "out of range");
  expect_error([&] { return fj::layer_norm(x, {2}); }, "layer_norm: normalized_shape [2]");
  expect_error([&] { return fj::layer_norm(x, {3}, fj::ones({2})); }, "weight and bias");
}

TEST(Reductions, VarianceStdSoftmaxLayerNormMatchTheReference) {
  for (bool fused : {true, false}) {
    fj::FusionGuard fusion(fused);
    for (fj::Shape shape : {fj::Shape{7, 33}, fj::Shape{64, 1000}, fj::Shape{3, 5, 17}}) {
      Tensor x = random_tensor(shape, 5, -4, 4);
      expect_matches_reference(fj::var(x, {-1}), 1e-5, 1e-6, "var");
      expect_matches_reference(fj::var(x, {0}, 0, true), 1e-5, 1e-6, "var over dim 0");
      expect_matches_reference(fj::std(x), 1e-5, 1e-6, "std");
      expect_matches_reference(fj::softmax(x, -1), 1e-5, 1e-9, "softmax");
      expect_matches_reference(fj::softmax(x, 0), 1e-5, 1e-9, "softmax over dim 0");
      expect_matches_reference(fj::log_softmax(x, -1), 1e-5, 1e-5, "log_softmax");
      int64_t last = shape.back();
      Tensor weight = random_tensor({last}, 6), bias = random_tensor({last}, 7);
      expect_matches_reference(fj::layer_norm(x, {last}, weight, bias), 1e-4, 1e-4, "layer_norm");
      expect_matches_reference(fj::layer_norm(x, {last}), 1e-4, 1e-4, "layer_norm without affine");
      expect_matches_reference(x - fj::mean(x, {-1}, true), 1e-5, 1e-5, "x - mean");
    }
  }
}

TEST(Reductions, SoftmaxRowsSumToOneEvenForLargeInputs) {
  Tensor x = random_tensor({100, 1001}, 3, -50, 50) + 1000;
  std::vector<float> y = fj::softmax(x, -1).to_vector<float>();
  for (int r = 0; r < 100; ++r) {
    double total = 0;
    for (int c = 0; c < 1001; ++c) total += y[r * 1001 + c];
    EXPECT_NEAR(total, 1.0, 1e-5) << "row " << r;
  }
}

// The kernels each composite promises (docs/ARCHITECTURE.md, "Reductions").
TEST(Reductions, FusedKernelCounts) {
  auto kernels = [](const Tensor& t) {
    fj::reset_stats();
    t.eval();
    return fj::stats().kernels_launched;
  };
  Tensor a = random_tensor({1000, 1000}, 1), b = random_tensor({1000, 1000}, 2);
  Tensor small_a = random_tensor({100, 100}, 1), small_b = random_tensor({100, 100}, 2);
  // One kernel reads a and b and reduces blocks; a second combines the 1e6/16384 partials and
  // divides. Up to one block, one kernel.
  EXPECT_EQ(kernels(fj::mean((a - b) * (a - b))), 2);
  EXPECT_EQ(kernels(fj::mean((small_a - small_b) * (small_a - small_b))), 1);
  // Row statistics stay in registers: max, sum and the output in one kernel.
  EXPECT_EQ(kernels(fj::softmax(a, -1)), 1);
  EXPECT_EQ(kernels(fj::log_softmax(a, -1)), 1);
  EXPECT_EQ(kernels(fj::layer_norm(a, {1000}, random_tensor({1000}, 3), random_tensor({1000}, 4))), 1);
  EXPECT_EQ(kernels(a - fj::mean(a, {-1}, true)), 1);
  EXPECT_EQ(kernels(fj::var(a, {1})), 1);
  EXPECT_EQ(kernels(fj::argmax(a, 1)), 1);  // the row max, then the first index holding it
  // Column statistics of 1000 rows: per statistic, partials of row blocks (parallel) and
  // their combine; then the kernel that broadcasts them back.
  EXPECT_EQ(kernels(fj::sum(a, {0})), 2);
  EXPECT_EQ(kernels(fj::softmax(a, 0)), 5);
  EXPECT_EQ(kernels(fj::sum(small_a, {0})), 1);
  // Two reductions of one input over the same dims share a kernel (and one read of it).
  fj::reset_stats();
  Tensor s = fj::sum(a, {1}), m = fj::amax(a, {1});
  fj::eval({s, m});
  EXPECT_EQ(fj::stats().kernels_launched, 1);
}

// Full reductions combine fixed blocks in a fixed order, rows and columns are never split:
// the same bits for any thread count.
TEST(Reductions, BitwiseEqualAcrossThreadCountsAndChunkSizes) {
  Tensor x = random_tensor({1000, 999}, 21, -1, 1);
  auto run = [&](int threads) {
    fj::NumThreadsGuard guard(threads);
    std::vector<std::vector<uint32_t>> results;
    for (const Tensor& t : {fj::sum(x), fj::mean(x * x), fj::amax(x), fj::sum(x, {0}),
                            fj::sum(x, {1}), fj::softmax(x, -1), fj::layer_norm(x, {999})})
      results.push_back(bits_of(t.to_vector<float>()));
    return results;
  };
  for (int64_t chunk : {0, 1000, 64}) {
    fj::frontend::set_reduction_chunk(chunk);
    EXPECT_EQ(run(1), run(2)) << "chunk " << chunk;
    EXPECT_EQ(run(1), run(3)) << "chunk " << chunk;
  }
  fj::frontend::set_reduction_chunk(0);
}

// A column reduction combines several reduced rows per step, still in row order: its sums are
// bitwise a float32 loop down each column, for every count of rows (steps of several rows and
// the rows left over) and a partial last vector, alone (8 rows per step) and in a kernel with
// more ops (fewer rows per step) whose elementwise output is stored for every row.
TEST(Reductions, ColumnReductionsCombineRowsInOrder) {
  const int64_t columns = 37;
  for (int64_t rows : {1, 2, 7, 8, 9, 15, 16, 17, 24, 75}) {
    Tensor x = random_tensor({rows, columns}, 31);
    std::vector<float> values = x.to_vector<float>();
    std::vector<float> expected_plain(columns, 0), expected_sums(columns, 0), expected_peaks(columns, -INFINITY);
    std::vector<float> expected_shifted;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < columns; ++c) {
        float v = values[r * columns + c];
        expected_plain[c] += v;
        expected_sums[c] += v * 2;
        expected_peaks[c] = std::max(expected_peaks[c], v);
        expected_shifted.push_back(v - 1);
      }
    EXPECT_EQ(bits_of(fj::sum(x, {0}).to_vector<float>()), bits_of(expected_plain)) << rows << " rows";
    Tensor sums = fj::sum(x * 2, {0}), peaks = fj::amax(x, {0}), shifted = x - 1;
    fj::reset_stats();
    fj::eval({sums, peaks, shifted});
    ASSERT_EQ(fj::stats().kernels_launched, 1) << rows << " rows";
    EXPECT_EQ(bits_of(sums.to_vector<float>()), bits_of(expected_sums)) << rows << " rows";
    EXPECT_EQ(bits_of(peaks.to_vector<float>()), bits_of(expected_peaks)) << rows << " rows";
    EXPECT_EQ(bits_of(shifted.to_vector<float>()), bits_of(expected_shifted)) << rows << " rows";
  }
}

// The float32 sum of 16M uniform [0, 1) values against the double reference: blocks of 16384
// accumulate in 2 x vector-width lanes (512 or 1024 terms per lane), then the 1024 partials
// the same way. Worst case |error| <= (terms per lane + partials per lane + 2 log2(lanes)) *
// 2^-24 * sum, about 3.4e-5 relative; random rounding errors cancel to far less.
TEST(Reductions, SixteenMillionElementSumIsAccurate) {
  int64_t n = 1 << 24;
  Tensor x = fj::rand({n}, 99);
  double exact = 0;
  for (float v : x.to_vector<float>()) exact += v;
  float total = fj::sum(x).item<float>();
  double relative = std::fabs(total - exact) / exact;
  std::printf("16M-element sum: float32 %.9g, double %.9g, relative error %.3g\n", total, exact,
              relative);
  EXPECT_LT(relative, 3.4e-5);
  EXPECT_LT(relative, 1e-6);  // the observed error, with margin
}

// Fusion must not merge kernels into a cycle: x2 feeds a row sum, whose total feeds y, which
// reads x2 again. y cannot join x2's kernel (it needs the total first).
TEST(Reductions, NoKernelCycleThroughAnotherReduction) {
  Tensor x = random_tensor({64, 300}, 8);
  Tensor x2 = x * 2;
  Tensor total = fj::sum(fj::sum(x2, {1}));
  Tensor y = x2 - total * 0.001f;
  expect_matches_reference(y, 1e-5, 1e-4, "x2 - sum(sum(x2, 1))");
}

// A reduced value without keepdim broadcasts right-aligned, as in PyTorch: x [n, n] minus the
// row means [n] subtracts mean of row j from column j. That is not a per-row broadcast back.
TEST(Reductions, SqueezedStatisticBroadcastsAlongTheOtherDim) {
  Tensor x = random_tensor({33, 33}, 9);
  expect_matches_reference(x - fj::mean(x, {1}), 1e-5, 1e-5, "x - mean(x, 1)");
  expect_matches_reference(x - fj::mean(x, {1}, true), 1e-5, 1e-5, "x - mean(x, 1, keepdim)");
}

// Two statistics of one row in one kernel, on a 3-d tensor normalized over its last two dims
// and with a broadcast prologue input (the reduced dims then stay two loops).
TEST(Reductions, MultiDimRowsWithBroadcastPrologue) {
  Tensor x = random_tensor({5, 6, 7}, 10), b = random_tensor({7}, 11);
  Tensor v = x + b;
  expect_matches_reference(fj::layer_norm(v, {6, 7}), 1e-4, 1e-4, "layer_norm over 2 dims");
  expect_matches_reference(fj::softmax(v, 1), 1e-5, 1e-7, "softmax over a middle dim");
  expect_matches_reference(fj::sum(v, {0, 2}), 1e-5, 1e-4, "sum over outer and inner dims");
}

TEST(Reductions, ArgmaxArgminPickTheFirstExtremeAndNaN) {
  float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = fj::tensor({1, 3, 3, 2, /**/ 5, 5, 0, 5, /**/ 2, nan, 7, nan}, {3, 4});
  EXPECT_EQ(fj::argmax(x, 1).dtype(), fj::DType::Int64);
  EXPECT_EQ(fj::argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(fj::argmin(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 1}));
  EXPECT_EQ(fj::argmax(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 2, 2}));
  EXPECT_EQ(fj::argmin(x, -2, true).sizes(), (fj::Shape{1, 4}));
  EXPECT_EQ(fj::argmin(x, -2, true).to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 1, 2}));
  // Indices take part in arithmetic as floats.
  EXPECT_EQ((fj::argmax(x, 1) * 2.0f).to_vector<float>(), (std::vector<float>{2, 0, 2}));
  EXPECT_THROW(fj::argmax(fj::zeros({2, 0}), 1), fj::Error);
  EXPECT_THROW(fj::argmax(x, 2), fj::Error);
}

TEST(Reductions, ArgmaxMatchesAScanOnRandomData) {
  for (bool fused : {true, false}) {
    fj::FusionGuard fusion(fused);
    for (fj::Shape shape : {fj::Shape{37, 1001}, fj::Shape{4, 5, 6}}) {
      // Few distinct values, so ties are common.
      Tensor x = fj::testing::random_tensor(shape, 12, 0, 8) * 0.5f;
      std::vector<float> v = (x - fj::testing::random_tensor(shape, 12, 0, 8) * 0.5f + x).to_vector<float>();
      Tensor data = fj::tensor(v, shape);
      for (int64_t dim = 0; dim < static_cast<int64_t>(shape.size()); ++dim) {
        std::vector<int64_t> got = fj::argmax(data, dim).to_vector<int64_t>();
        fj::Shape strides(shape.size(), 1);
        for (size_t d = shape.size() - 1; d-- > 0;) strides[d] = strides[d + 1] * shape[d + 1];
        size_t out = 0;
        for (int64_t flat = 0; flat < data.numel(); ++flat) {
          if ((flat / strides[dim]) % shape[dim] != 0) continue;  // first element of each line
          int64_t best = 0;
          for (int64_t k = 1; k < shape[dim]; ++k)
            if (v[flat + k * strides[dim]] > v[flat + best * strides[dim]]) best = k;
          ASSERT_EQ(got[out++], best) << "dim " << dim << " line " << flat;
        }
      }
    }
  }
}

// Consumers of one input over the same space share its read: an elementwise result and row
// statistics of x in one kernel; column and full statistics next to them stay correct.
TEST(Reductions, SiblingsOfOneInputShareAKernel) {
  Tensor x = random_tensor({300, 257}, 13);
  Tensor twice = x * 2, rows = fj::sum(x, {1}), peak = fj::amax(x, {1});
  fj::reset_stats();
  fj::eval({twice, rows, peak});
  EXPECT_EQ(fj::stats().kernels_launched, 1);
  Tensor cols = fj::sum(x, {0}), all = fj::sum(x), shifted = x - 1;
  fj::eval({cols, all, shifted});
  for (auto [t, what] : {std::pair{twice, "x*2"}, {rows, "rows"}, {peak, "peak"}, {cols, "cols"},
                         {all, "all"}, {shifted, "x-1"}})
    expect_matches_reference(t, 1e-5, 1e-3, what);
}
