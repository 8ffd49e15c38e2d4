// cat and stack: values against the reference, each part stored straight into its place by the
// kernel computing it, and the errors of every misuse.
#include <gtest/gtest.h>

#include <functional>

#include "test_util.h"

namespace fj = fusejit;
using fj::Tensor;
using fj::testing::error_message;
using fj::testing::expect_matches_reference;
using fj::testing::random_tensor;

TEST(Join, CatAlongEveryDim) {
  Tensor a = fj::tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = fj::tensor({7, 8}, {2, 1});
  EXPECT_EQ(fj::cat({a, b}, 1).to_vector<float>(), (std::vector<float>{1, 2, 3, 7, 4, 5, 6, 8}));
  Tensor row = b.t().slice(1, 0, 1).expand({1, 3});  // a view with a stride-0 dim
  EXPECT_EQ(fj::cat({a, row, a * 0}, -2).sizes(), (fj::Shape{5, 3}));
  EXPECT_EQ(fj::cat({a, row}, 0).to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 7, 7}));
  EXPECT_EQ(fj::cat({a}, 0).to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(fj::cat({a.slice(1, 0, 0), b}, 1).to_vector<float>(), (std::vector<float>{7, 8}));  // an empty part
  for (int threads : {1, 2}) {
    fj::NumThreadsGuard guard(threads);
    for (int64_t dim : {0, 1, 2}) {
      Tensor x = random_tensor({40, 50, 60}, 1);
      fj::Shape other = {40, 50, 60};
      other[dim] = 7;
      Tensor y = random_tensor(other, 2);
      Tensor joined = fj::cat({fj::exp(x), y * 2, x.transpose(0, 1).transpose(0, 1) + 1}, dim);
      expect_matches_reference(joined, 1e-6, 0, "cat along dim " + std::to_string(dim));
      expect_matches_reference(fj::sum(joined, {dim}), 1e-5, 1e-4, "a reduction of a concatenation");
    }
  }
}

TEST(Join, StackAlongEveryDim) {
  Tensor a = fj::tensor({1, 2, 3}, {3});
  Tensor b = fj::tensor({4, 5, 6}, {3});
  EXPECT_EQ(fj::stack({a, b}, 0).to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(fj::stack({a, b}, -1).to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(fj::stack({a, b}, 1).sizes(), (fj::Shape{3, 2}));
  EXPECT_EQ(fj::stack({fj::tensor({1}, {}), fj::tensor({2}, {})}).to_vector<float>(), (std::vector<float>{1, 2}));
  fj::NumThreadsGuard guard(2);
  Tensor x = random_tensor({300, 400}, 3);
  expect_matches_reference(fj::stack({x, fj::sigmoid(x), x * x}, -1), 1e-6, 0, "stack along a new last dim");
}

TEST(Join, PartsAreStoredByTheKernelsComputingThem) {
  Tensor x = random_tensor({256, 256}, 4);
  x.eval();
  fj::reset_stats();
  Tensor both = fj::cat({x * 2, fj::exp(x)}, 0);
  both.eval();
  EXPECT_EQ(fj::stats().kernels_launched, 1);  // one pass over x, writing both halves
  EXPECT_EQ(fj::stats().buffers_allocated, 1);
  expect_matches_reference(both, 1e-6, 0, "cat of two elementwise results");
  // A reduction's result is stored by an elementwise kernel of its own.
  Tensor rows = fj::cat({fj::sum(x, {1}, true), fj::amax(x, {1}, true)}, 1);
  expect_matches_reference(rows, 1e-5, 1e-4, "cat of two reductions");
  // A value and the concatenation it is part of, read in one expression.
  Tensor y = fj::exp(x);
  Tensor mixed = fj::cat({y, y}, 1).slice(1, 128, 384) + y;
  expect_matches_reference(mixed, 1e-6, 0, "a value plus a view of its concatenation");
}

TEST(Join, BoolAndInt64Parts) {
  Tensor x = fj::tensor({1, -2, 3}, {3});
  EXPECT_EQ(fj::cat({x > 0, x < 0}).to_vector<bool>(), (std::vector<bool>{true, false, true, false, true, false}));
  Tensor index = fj::argmax(fj::tensor({1, 5, 2, 7}, {2, 2}), 1);
  EXPECT_EQ(fj::stack({index, index}, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 1, 1}));
}

TEST(Join, ErrorsNameTheOpAndShapes) {
  Tensor a = fj::tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  auto expect_error = [](const std::function<void()>& f, const std::vector<std::string>& parts) {
    std::string message = error_message(f);
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  };
  expect_error([&] { fj::cat({}, 0); }, {"cat", "at least one"});
  expect_error([&] { fj::cat({a, fj::tensor({1, 2}, {2})}, 0); }, {"cat", "f32[2,3]", "f32[2]"});
  expect_error([&] { fj::cat({a, a.t()}, 0); }, {"cat", "f32[2,3]", "f32[3,2]", "other than 0"});
  expect_error([&] { fj::cat({a, a > 0}, 0); }, {"cat", "dtypes", "bool[2,3]"});
  expect_error([&] { fj::cat({a, a}, 2); }, {"cat", "dim 2", "f32[2,3]"});
  expect_error([&] { fj::cat({fj::tensor({1}, {})}, 0); }, {"cat", "0-d"});
  expect_error([&] { fj::cat({a, Tensor()}, 0); }, {"cat", "tensor 1", "undefined"});
  expect_error([&] { fj::stack({a, a.t()}, 0); }, {"stack", "one shape", "f32[3,2]"});
  expect_error([&] { fj::stack({a}, 3); }, {"stack", "dim 3"});
}

TEST(Gather, IndexSelectAlongEveryDim) {
  Tensor table = fj::arange(0, 12).reshape({4, 3});
  Tensor ids = fj::tensor({3, 0, 3, 1}, {4}).to(fj::DType::Int64);
  EXPECT_EQ(fj::index_select(table, 0, ids).to_vector<float>(),
            (std::vector<float>{9, 10, 11, 0, 1, 2, 9, 10, 11, 3, 4, 5}));
  EXPECT_EQ(fj::index_select(table, -1, fj::tensor({2, 0}, {2}).to(fj::DType::Int64)).to_vector<float>(),
            (std::vector<float>{2, 0, 5, 3, 8, 6, 11, 9}));
  EXPECT_EQ(fj::index_select(table, 0, fj::tensor({2}, {}).to(fj::DType::Int64)).sizes(), (fj::Shape{1, 3}));
  EXPECT_EQ(fj::index_select(table.t(), 1, ids).sizes(), (fj::Shape{3, 4}));
  EXPECT_EQ(fj::index_select(table.t(), 1, ids).to_vector<float>(),
            (std::vector<float>{9, 0, 9, 3, 10, 1, 10, 4, 11, 2, 11, 5}));
  EXPECT_EQ(fj::index_select(table > 4, 0, ids).to_vector<bool>(),
            (std::vector<bool>{true, true, true, false, false, false, true, true, true, false, false, true}));
}

// An embedding lookup: the gather fuses with the work on the rows it reads, at any thread count.
TEST(Gather, EmbeddingLookupFusesWithItsConsumers) {
  Tensor table = random_tensor({1000, 64}, 5);
  table.eval();
  std::vector<float> positions;
  for (int i = 0; i < 300; ++i) positions.push_back(static_cast<float>((i * 7919) % 1000));
  Tensor ids = fj::tensor(positions, {300}).to(fj::DType::Int64);
  ids.eval();
  for (int threads : {1, 2}) {
    fj::NumThreadsGuard guard(threads);
    Tensor embedded = fj::index_select(table, 0, ids) * 8 + 1;
    fj::reset_stats();
    embedded.eval();
    EXPECT_EQ(fj::stats().kernels_launched, 1);
    expect_matches_reference(embedded, 1e-6, 0, "an embedding lookup");
    Tensor normalized = fj::softmax(fj::index_select(table * 2, 0, ids), -1);
    expect_matches_reference(normalized, 1e-5, 1e-7, "a softmax of gathered rows of a computed table");
  }
}

TEST(Gather, ErrorsNameTheOpShapesAndIndex) {
  Tensor table = fj::arange(0, 12).reshape({4, 3});
  auto expect_error = [](const std::function<void()>& f, const std::vector<std::string>& parts) {
    std::string message = error_message(f);
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  };
  auto index = [](std::vector<float> values) {
    auto count = static_cast<int64_t>(values.size());
    return fj::tensor(std::move(values), {count}).to(fj::DType::Int64);
  };
  expect_error([&] { fj::index_select(table, 0, index({1, 4})); }, {"index_select", "index 4", "size 4", "f32[4,3]"});
  expect_error([&] { fj::index_select(table, 1, index({-1})); }, {"index_select", "index -1"});
  expect_error([&] { fj::index_select(table, 2, index({0})); }, {"index_select", "dim 2"});
  expect_error([&] { fj::index_select(table, 0, fj::tensor({1}, {1})); }, {"index_select", "Int64", "f32[1]"});
  expect_error([&] { fj::index_select(table, 0, index({0, 1}).reshape({1, 2})); }, {"index_select", "1 dim"});
  expect_error([&] { fj::index_select(fj::tensor({1}, {}), 0, index({0})); }, {"index_select", "0-d"});
}
