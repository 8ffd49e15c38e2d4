// Views: values against index arithmetic written out here, zero copies, laziness, fusion
// through strided loads, and the errors of every misuse.
#include <gtest/gtest.h>

#include <functional>
#include <numeric>

#include "test_util.h"

namespace fj = fusejit;
using fj::Shape;
using fj::Tensor;
using fj::testing::error_message;
using fj::testing::expect_matches_reference;
using fj::testing::random_tensor;

namespace {

// 0, 1, 2, ... in row-major order over `shape`.
std::vector<float> iota(const Shape& shape) {
  std::vector<float> values(fj::ir::numel(shape));
  std::iota(values.begin(), values.end(), 0.0f);
  return values;
}

struct ViewCase {
  const char* name;
  Shape input;
  std::function<Tensor(const Tensor&)> view;
  Shape shape;                   // expected
  std::vector<float> expected;   // of the view of iota(input)
};

const std::vector<ViewCase>& view_cases() {
  static const std::vector<ViewCase> cases = {
      {"t", {2, 3}, [](const Tensor& x) { return x.t(); }, {3, 2}, {0, 3, 1, 4, 2, 5}},
      {"transpose(-1, 0)", {2, 1, 3}, [](const Tensor& x) { return x.transpose(-1, 0); }, {3, 1, 2},
       {0, 3, 1, 4, 2, 5}},
      {"permute", {2, 3, 2}, [](const Tensor& x) { return x.permute({2, 0, -2}); }, {2, 2, 3},
       {0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11}},
      {"slice step 2", {3, 4}, [](const Tensor& x) { return x.slice(1, 0, 4, 2); }, {3, 2}, {0, 2, 4, 6, 8, 10}},
      {"slice negative, clamped", {3, 4}, [](const Tensor& x) { return x.slice(-1, -3, 100, 2); }, {3, 2},
       {1, 3, 5, 7, 9, 11}},
      {"slice empty", {3, 4}, [](const Tensor& x) { return x.slice(0, 2, 1); }, {0, 4}, {}},
      {"slice before start", {5}, [](const Tensor& x) { return x.slice(0, -100, -3); }, {2}, {0, 1}},
      {"narrow", {3, 4}, [](const Tensor& x) { return x.narrow(0, 1, 2); }, {2, 4}, {4, 5, 6, 7, 8, 9, 10, 11}},
      {"select", {3, 4}, [](const Tensor& x) { return x.select(1, -2); }, {3}, {2, 6, 10}},
      {"select to 0-d", {4}, [](const Tensor& x) { return x.select(0, 3); }, {}, {3}},
      {"reshape -1", {2, 6}, [](const Tensor& x) { return x.reshape({3, -1}); }, {3, 4}, iota({12})},
      {"view", {2, 6}, [](const Tensor& x) { return x.view({2, 2, 3}); }, {2, 2, 3}, iota({12})},
      {"reshape of a transpose copies", {2, 3}, [](const Tensor& x) { return x.t().reshape({6}); }, {6},
       {0, 3, 1, 4, 2, 5}},
      {"expand", {1, 3}, [](const Tensor& x) { return x.expand({2, -1}); }, {2, 3}, {0, 1, 2, 0, 1, 2}},
      {"expand new dims", {3, 1}, [](const Tensor& x) { return x.expand({2, 3, 2}); }, {2, 3, 2},
       {0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2}},
      {"unsqueeze", {2, 3}, [](const Tensor& x) { return x.unsqueeze(-1); }, {2, 3, 1}, iota({6})},
      {"squeeze", {1, 3, 1}, [](const Tensor& x) { return x.squeeze(); }, {3}, {0, 1, 2}},
      {"squeeze dim", {1, 3, 1}, [](const Tensor& x) { return x.squeeze(2); }, {1, 3}, {0, 1, 2}},
      {"squeeze of a size-3 dim keeps it", {1, 3}, [](const Tensor& x) { return x.squeeze(1); }, {1, 3},
       {0, 1, 2}},
      {"flatten", {2, 3, 2}, [](const Tensor& x) { return x.flatten(1); }, {2, 6}, iota({12})},
      {"flatten 0-d", {}, [](const Tensor& x) { return x.flatten(); }, {1}, {0}},
      {"view of a view", {4, 6}, [](const Tensor& x) { return x.t().slice(0, 1, 6, 2).select(1, 3); }, {3},
       {19, 21, 23}},
      {"contiguous", {2, 3}, [](const Tensor& x) { return x.t().contiguous(); }, {3, 2}, {0, 3, 1, 4, 2, 5}},
  };
  return cases;
}

}  // namespace

// Of an evaluated tensor, of a pending one (a View node), and of a pending view's result
// evaluated and viewed again: the same values.
TEST(Views, ValuesOfEveryViewOp) {
  for (const ViewCase& c : view_cases()) {
    Tensor evaluated = fj::tensor(iota(c.input), c.input);
    Tensor view = c.view(evaluated);
    EXPECT_EQ(view.sizes(), c.shape) << c.name;
    EXPECT_EQ(view.to_vector<float>(), c.expected) << c.name << " of an evaluated tensor";

    Tensor pending = fj::tensor(iota(c.input), c.input) * 2;
    std::vector<float> doubled = c.expected;
    for (float& v : doubled) v *= 2;
    Tensor lazy = c.view(pending);
    EXPECT_EQ(lazy.to_vector<float>(), doubled) << c.name << " of a pending tensor";
    Tensor consumed = c.view(fj::tensor(iota(c.input), c.input) * 2) + 1;
    for (float& v : doubled) v += 1;
    EXPECT_EQ(consumed.to_vector<float>(), doubled) << c.name << " read by a kernel";
    expect_matches_reference(consumed, 0, 0, c.name);
  }
}

TEST(Views, StridesOffsetAndContiguity) {
  Tensor x = fj::tensor(iota({3, 4}), {3, 4});
  EXPECT_EQ(x.strides(), (Shape{4, 1}));
  EXPECT_TRUE(x.is_contiguous());
  Tensor t = x.t();
  EXPECT_EQ(t.strides(), (Shape{1, 4}));
  EXPECT_FALSE(t.is_contiguous());
  Tensor s = x.slice(1, 1, 4, 2);
  EXPECT_EQ(s.strides(), (Shape{4, 2}));
  EXPECT_EQ(s.storage_offset(), 1);
  EXPECT_EQ(x.select(0, 2).storage_offset(), 8);
  EXPECT_EQ(x.unsqueeze(0).expand({5, 3, 4}).strides(), (Shape{0, 4, 1}));
  // A pending tensor is contiguous; its views have their strides before anything runs.
  Tensor pending = x * 3;
  EXPECT_TRUE(pending.is_contiguous());
  EXPECT_EQ(pending.t().strides(), (Shape{1, 4}));
  EXPECT_EQ(pending.narrow(0, 1, 2).storage_offset(), 4);
  EXPECT_FALSE(pending.is_evaluated());
  // contiguous() of a contiguous tensor is the tensor itself.
  EXPECT_EQ(x.contiguous().node(), x.node());
  EXPECT_TRUE(t.contiguous().is_contiguous());
}

TEST(Views, ShareTheStorageOfAnEvaluatedTensor) {
  Tensor x = fj::tensor(iota({4, 5}), {4, 5});
  float* base = x.data_ptr<float>();
  EXPECT_EQ(x.t().data_ptr<float>(), base);
  EXPECT_EQ(x.select(0, 2).data_ptr<float>(), base + 10);
  EXPECT_EQ(x.slice(1, 3, 5).data_ptr<float>(), base + 3);
  EXPECT_EQ(x.reshape({20}).data_ptr<float>(), base);
  // A view keeps the storage alive after its base is gone.
  Tensor row = fj::tensor(iota({2, 3}), {2, 3}).select(0, 1);
  EXPECT_EQ(row.to_vector<float>(), (std::vector<float>{3, 4, 5}));
}

TEST(Views, OfFromBlobReadTheCallersMemoryInPlace) {
  std::vector<float> memory = iota({2, 3});
  Tensor x = fj::from_blob(memory.data(), {2, 3});
  Tensor column = x.select(1, 1);
  Tensor doubled = x.t() * 2;
  memory[1] = 10;  // before anything is evaluated
  EXPECT_EQ(column.data_ptr<float>(), memory.data() + 1);
  EXPECT_EQ(column.to_vector<float>(), (std::vector<float>{10, 4}));
  EXPECT_EQ(doubled.to_vector<float>(), (std::vector<float>{0, 6, 20, 8, 4, 10}));
}

TEST(Views, OfAPendingTensorStayLazyAndEvaluateWithIt) {
  Tensor x = random_tensor({6, 8}, 1);
  Tensor y = fj::exp(x);
  Tensor v = y.t().slice(0, 2, 6);
  EXPECT_FALSE(v.is_evaluated());
  EXPECT_FALSE(y.is_evaluated());
  v.eval();
  EXPECT_TRUE(v.is_evaluated());
  EXPECT_EQ(v.strides(), (Shape{1, 8}));
  EXPECT_EQ(v.storage_offset(), 2);
  expect_matches_reference(v + 0.0f, 1e-6, 0, "a viewed exp");
  // The viewed value was stored once; a later view of y reads the same storage.
  Tensor w = y.reshape({48});
  EXPECT_EQ(w.numel(), 48);
}

// The index map is part of the load: a kernel reads the view directly, without a copy.
TEST(Views, FuseIntoOneKernelWithoutACopy) {
  Tensor x = random_tensor({64, 48}, 2);
  Tensor y = random_tensor({48, 64}, 3);
  x.eval();
  y.eval();
  auto kernels_for = [](const Tensor& t) {
    fj::reset_stats();
    t.eval();
    return fj::stats().kernels_launched;
  };
  Tensor sum = x.t() + y;
  EXPECT_EQ(kernels_for(sum), 1);
  expect_matches_reference(sum, 0, 0, "x.t() + y");
  Tensor strided = x.slice(1, 0, 48, 2) * 2;
  EXPECT_EQ(kernels_for(strided), 1);
  expect_matches_reference(strided, 0, 0, "x.slice(1, 0, n, 2) * 2");
  // Attention's head split of an evaluated projection, feeding a softmax.
  Tensor q = random_tensor({2, 5, 4 * 6}, 4);
  q.eval();
  Tensor heads = fj::softmax(q.reshape({2, 5, 4, 6}).transpose(1, 2), -1);
  EXPECT_EQ(kernels_for(heads), 1);
  expect_matches_reference(heads, 1e-6, 1e-7, "softmax over split heads");
  // A view of a pending value: that value is stored once, then read through the view.
  Tensor pending = fj::softmax((x * 2).t(), -1);
  EXPECT_EQ(kernels_for(pending), 2);
  expect_matches_reference(pending, 1e-6, 1e-7, "softmax of a transposed product");
}

// A kernel may not read through a view a value it computes itself: that value is stored whole
// first (by another kernel).
TEST(Views, AValueAndItsViewInOneExpression) {
  Tensor x = random_tensor({33, 33}, 5);
  Tensor y = fj::exp(x);
  Tensor z = y + y.t();
  expect_matches_reference(z, 1e-6, 0, "y + y.t()");
  Tensor w = fj::sum(y.slice(0, 1, 33) - y.slice(0, 0, 32), {1});
  expect_matches_reference(w, 1e-5, 1e-4, "differences of rows");
}

TEST(Views, OfBoolAndInt64Tensors) {
  Tensor x = fj::tensor({1, -2, 3, -4, 5, -6}, {2, 3});
  Tensor positive = x > 0;
  EXPECT_EQ(positive.t().to_vector<bool>(), (std::vector<bool>{true, false, false, true, true, false}));
  EXPECT_EQ(positive.t().contiguous().to_vector<bool>(), (std::vector<bool>{true, false, false, true, true, false}));
  Tensor index = fj::argmax(x, 1, true);
  EXPECT_EQ(index.squeeze().to_vector<int64_t>(), (std::vector<int64_t>{2, 1}));
}

TEST(Views, ErrorsNameTheOpAndShape) {
  Tensor x = fj::tensor(iota({2, 3}), {2, 3});
  auto expect_error = [](const std::function<void()>& f, const std::vector<std::string>& parts) {
    std::string message = error_message(f);
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  };
  expect_error([&] { x.reshape({4, 2}); }, {"reshape", "[4,2]", "6 elements", "f32[2,3]"});
  expect_error([&] { x.reshape({-1, -1}); }, {"reshape", "[-1,-1]"});
  expect_error([&] { x.reshape({0, -1}); }, {"reshape", "[0,-1]"});
  expect_error([&] { x.t().view({6}); }, {"view", "[6]", "strides", "reshape"});
  expect_error([&] { x.transpose(0, 2); }, {"transpose", "dim 2", "f32[2,3]"});
  expect_error([&] { x.permute({0, 0}); }, {"permute", "twice", "[0,0]"});
  expect_error([&] { x.permute({0}); }, {"permute", "[0]"});
  expect_error([&] { x.slice(2, 0, 1); }, {"slice", "dim 2"});
  expect_error([&] { x.slice(0, 0, 1, 0); }, {"slice", "step"});
  expect_error([&] { x.narrow(1, 2, 2); }, {"narrow", "length 2", "size 3"});
  expect_error([&] { x.select(0, 2); }, {"select", "index 2", "size 2"});
  expect_error([&] { x.select(0, -3); }, {"select", "index -3"});
  expect_error([&] { x.expand({3, 3}); }, {"expand", "[3,3]", "f32[2,3]"});
  expect_error([&] { x.expand({3}); }, {"expand", "fewer dims"});
  expect_error([&] { x.expand({-1, 2, 3}); }, {"expand", "[-1,2,3]"});
  expect_error([&] { x.unsqueeze(4); }, {"unsqueeze", "dim 4"});
  expect_error([&] { x.squeeze(-3); }, {"squeeze", "dim -3"});
  expect_error([&] { x.flatten(1, 0); }, {"flatten", "start dim 1"});
  expect_error([&] { x.t().t().t().t().t().t().flatten(0, 5); }, {"flatten", "dim 5"});
  expect_error([&] { Tensor().t(); }, {"t", "undefined"});
  expect_error([&] { fj::tensor({1}, {}).slice(0, 0, 1); }, {"slice", "0-d"});
}
