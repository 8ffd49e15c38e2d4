// matmul and linear: torch.matmul's shape rules, results within the float32 bound of the
// double-precision reference, operands of any layout, epilogues fused into the matmul's
// kernel, the same bits at any thread count, and errors that name the op and the shapes.
#include "test_util.h"

namespace fusejit {
namespace {

using testing::error_message;
using testing::random_tensor;
using testing::reference;

// A float32 product summed with one rounding per step: |c - exact| <= K 2^-24 sum_k |a||b|.
void expect_within_bound(const Tensor& product, const Tensor& a, const Tensor& b, const std::string& what = "") {
  int64_t k = a.dim() == 1 ? a.size(0) : a.size(-1);
  std::vector<double> exact = reference(product);
  std::vector<double> magnitude = reference(matmul(abs(a), abs(b)));
  std::vector<float> actual = product.to_vector<float>();
  ASSERT_EQ(actual.size(), exact.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < actual.size() && reported < 5; ++i) {
    double bound = static_cast<double>(k) * 0x1p-24 * magnitude[i] + 1e-30;
    if (std::fabs(actual[i] - exact[i]) > bound) {
      ADD_FAILURE() << what << " element " << i << ": got " << actual[i] << ", reference " << exact[i]
                    << ", bound " << bound;
      ++reported;
    }
  }
}

TEST(MatMul, FollowsTorchShapeRules) {
  struct Case {
    Shape a, b, result;
  };
  std::vector<Case> cases = {
      {{5}, {5}, {}},                        // dot product
      {{5}, {5, 3}, {3}},                    // row times matrix
      {{4, 5}, {5}, {4}},                    // matrix times column
      {{4, 5}, {5, 3}, {4, 3}},              // mm
      {{2, 4, 5}, {2, 5, 3}, {2, 4, 3}},     // bmm
      {{2, 1, 4, 5}, {3, 5, 3}, {2, 3, 4, 3}},  // batch dims broadcast
      {{5}, {2, 5, 3}, {2, 3}},              // a 1-d operand against a batch
      {{2, 4, 5}, {5}, {2, 4}},
      {{1, 4, 5}, {5, 3}, {1, 4, 3}},
  };
  for (const Case& c : cases) {
    Tensor a = random_tensor(c.a, 1), b = random_tensor(c.b, 2);
    std::string what = ir::shape_string(c.a) + " @ " + ir::shape_string(c.b);
    Tensor product = matmul(a, b);
    EXPECT_EQ(product.sizes(), c.result) << what;
    expect_within_bound(product, a, b, what);
    EXPECT_EQ(a.matmul(b).to_vector<float>(), product.to_vector<float>()) << what;
  }
}

TEST(MatMul, OddAndEmptySizes) {
  for (int64_t m : {1, 7, 13, 33})
    for (int64_t k : {1, 3, 64, 101})
      for (int64_t n : {1, 15, 16, 17, 33, 100}) {
        Tensor a = random_tensor({m, k}, 3), b = random_tensor({k, n}, 4);
        expect_within_bound(matmul(a, b), a, b, std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n));
      }
  EXPECT_EQ(matmul(random_tensor({3, 0}, 5), random_tensor({0, 4}, 6)).to_vector<float>(), std::vector<float>(12, 0.0f));
  EXPECT_EQ(matmul(random_tensor({0, 3}, 5), random_tensor({3, 4}, 6)).sizes(), (Shape{0, 4}));
  EXPECT_EQ(matmul(random_tensor({2, 3}, 5), random_tensor({3, 0}, 6)).numel(), 0);
}

// Results of 64 rows or more take the blocked form (packed blocks, K in slices of 1024, columns
// in panels): the sizes around each block's edge, operands of any layout, K = 0, a batch. The
// row counts leave a last tile of every height the tiles sum (12, 8 or 4 rows of 12 with
// AVX-512, 6, 4 or 2 of 6 without): 71, 80, 64 and 145 leave 11, 8, 4 and 1 rows, or 5, 2, 4
// and 1.
TEST(MatMul, BlockedFormAtItsEdges) {
  for (int64_t m : {64, 71, 80, 145})
    for (int64_t k : {1, 17, 1023, 1025, 2100})
      for (int64_t n : {1, 33}) {
        Tensor a = random_tensor({m, k}, 25), b = random_tensor({k, n}, 26);
        expect_within_bound(matmul(a, b), a, b, std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n));
      }
  Tensor a = random_tensor({200, 1100}, 27).eval(), weight = random_tensor({1100, 1100}, 28).eval();
  expect_within_bound(matmul(a, weight.t()), a, weight.t(), "a transposed weight over two column panels");
  Tensor one_block = random_tensor({70, 1100}, 32).eval();
  expect_within_bound(matmul(one_block, weight.t()), one_block, weight.t(), "rows of one block of A, B packed a step at a time");
  expect_within_bound(matmul(a.t().t(), ones({1100, 40})), a, ones({1100, 40}), "a constant operand");
  Tensor batch = random_tensor({3, 70, 1100}, 29).eval();
  expect_within_bound(matmul(batch, weight.t()), batch, weight.t(), "a batch");
  EXPECT_EQ(matmul(random_tensor({100, 0}, 30), random_tensor({0, 20}, 31)).to_vector<float>(),
            std::vector<float>(2000, 0.0f));
  // A Bool result alone: no float output to keep partial sums in, so K is one slice.
  Tensor positive = matmul(a, weight.t()) > 0.0f;
  std::vector<double> exact = reference(matmul(a, weight.t()));
  std::vector<bool> signs = positive.to_vector<bool>();
  std::vector<double> magnitude = reference(matmul(abs(a), abs(weight.t())));
  for (size_t i = 0; i < signs.size(); ++i) {
    if (std::fabs(exact[i]) > 1100 * 0x1p-24 * magnitude[i]) {
      EXPECT_EQ(signs[i], exact[i] > 0) << i;
    }
  }
}

TEST(MatMul, ReadsOperandsOfAnyLayoutInPlace) {
  Tensor a = random_tensor({40, 30}, 7).eval(), b = random_tensor({30, 50}, 8).eval();
  Tensor weight = random_tensor({50, 30}, 9).eval();
  expect_within_bound(matmul(a, weight.t()), a, weight.t(), "transposed weight");
  // Few rows against a transposed weight: dot products along K (1 row by 8 columns, 4 by 4).
  for (int64_t m : {1, 2, 3, 5})
    for (int64_t k : {1, 17, 300}) {
      Tensor x = random_tensor({m, k}, 40), w = random_tensor({70, k}, 41).eval();
      expect_within_bound(linear(x, w), x, w.t(), "linear of " + std::to_string(m) + " rows, K = " + std::to_string(k));
    }
  expect_within_bound(matmul(b.t(), a.t()), b.t(), a.t(), "both transposed");
  Tensor wide = random_tensor({40, 90}, 10).eval();
  Tensor strided = wide.slice(1, 0, 90, 3);
  expect_within_bound(matmul(strided, b), strided, b, "a slice with step 3");
  Tensor row = random_tensor({1, 30}, 11).eval().expand({40, 30});
  expect_within_bound(matmul(row, b), row, b, "an expanded operand (stride 0)");
  std::vector<float> data = testing::random_floats(30 * 50, 12);
  Tensor blob = from_blob(data.data(), {30, 50});
  expect_within_bound(matmul(a, blob), a, blob, "from_blob memory");
  // Pending and broadcast-value operands.
  expect_within_bound(matmul(a * 2.0f, b.t().t()), a * 2.0f, b, "a pending operand");
  expect_within_bound(matmul(ones({4, 30}), b), ones({4, 30}), b, "a constant operand");
  expect_within_bound(matmul(full({4, 30}, 0.3f), b), full({4, 30}, 0.3f), b, "a scalar operand");
}

TEST(MatMul, EpilogueRunsInTheMatmulKernel) {
  Tensor x = random_tensor({64, 96}, 13).eval(), w = random_tensor({80, 96}, 14).eval();
  Tensor bias = random_tensor({80}, 15).eval(), residual = random_tensor({64, 80}, 16).eval();
  std::vector<std::pair<std::string, Tensor>> programs = {
      {"gelu(linear)", gelu(linear(x, w, bias))},
      {"relu(linear - 2)", relu(linear(x, w, bias) - 2.0f)},
      {"residual + linear", residual + linear(x, w, bias)},
      {"scaled product", matmul(x, w.t()) * 0.125f},
  };
  for (auto& [name, program] : programs) {
    reset_stats();
    std::vector<float> fused = program.to_vector<float>();
    EXPECT_EQ(stats().kernels_launched, 1) << name;
    testing::expect_matches_reference(program, 1e-4, 1e-3, name);
    FusionGuard eager(false);
    Tensor again = name == "gelu(linear)"       ? gelu(linear(x, w, bias))
                   : name == "relu(linear - 2)" ? relu(linear(x, w, bias) - 2.0f)
                   : name == "residual + linear" ? residual + linear(x, w, bias)
                                                 : matmul(x, w.t()) * 0.125f;
    EXPECT_EQ(again.to_vector<float>(), fused) << name << ": eager and fused differ";
  }
  std::string fused = gelu(linear(x, w, bias)).dump("fused");
  EXPECT_NE(fused.find("matmul, domain [64,80]"), std::string::npos) << fused;
  EXPECT_NE(fused.find("gelu("), std::string::npos) << fused;
}

// A product of 64 rows or more computes an operand's elementwise producers while packing it
// (its prologue): one kernel, the same bits as eager (which stores the operand first), and
// the operand never stored. Fewer rows read it stored.
TEST(MatMul, PrologueRunsWhilePacking) {
  Tensor x = random_tensor({96, 200}, 50).eval(), w = random_tensor({200, 150}, 51).eval();
  Tensor stored_t = random_tensor({200, 96}, 52).eval(), weight = random_tensor({150, 200}, 53).eval();
  Tensor bias = random_tensor({150}, 54).eval(), batch = random_tensor({3, 70, 200}, 55).eval();
  Tensor long_x = random_tensor({70, 2100}, 56).eval(), long_w = random_tensor({2100, 40}, 57).eval();
  auto programs = [&] {
    return std::vector<std::pair<std::string, Tensor>>{
        {"a scaled operand", matmul(x * 0.5f, w)},
        {"prologue and epilogue", gelu(linear(relu(x) + 1.0f, weight, bias))},
        {"a scaled weight", matmul(x, w * 2.0f)},
        {"a scaled transposed weight", matmul(x, weight.t() * 2.0f)},
        {"both operands", matmul(x - 1.0f, abs(w))},
        {"a transposed operand's prologue", matmul(stored_t.t() * 3.0f, w)},
        {"a cast", matmul((x > 0.0f).to(DType::Float32), w)},
        {"generated values", matmul(rand({96, 200}, 7) * x, w)},
        {"a batch and a broadcast weight", matmul(batch * 2.0f, w)},
        {"K in several slices", matmul(long_x * long_x, long_w)},
    };
  };
  std::vector<std::vector<float>> fused;
  for (auto& [name, program] : programs()) {
    reset_stats();
    fused.push_back(program.to_vector<float>());
    EXPECT_EQ(stats().kernels_launched, 1) << name;
    testing::expect_matches_reference(program, 1e-4, 1e-3, name);
  }
  {
    NumThreadsGuard threads(2);
    size_t i = 0;
    for (auto& [name, program] : programs())
      EXPECT_EQ(testing::bits_of(program.to_vector<float>()), testing::bits_of(fused[i++])) << name << ", 2 threads";
  }
  FusionGuard eager(false);
  size_t i = 0;
  for (auto& [name, program] : programs())
    EXPECT_EQ(testing::bits_of(program.to_vector<float>()), testing::bits_of(fused[i++])) << name << ": eager differs";
}

TEST(MatMul, PrologueIsInTheDumpAndNeedsThePackedForm) {
  Tensor x = random_tensor({96, 200}, 58).eval(), w = random_tensor({200, 150}, 59).eval();
  std::string fused = matmul(x * 0.5f, w).dump("fused");
  EXPECT_NE(fused.find("computed while packing operand 0"), std::string::npos) << fused;
  Tensor few = random_tensor({16, 200}, 60).eval();
  reset_stats();
  Tensor product = matmul(few * 0.5f, w);
  product.eval();
  EXPECT_EQ(stats().kernels_launched, 2);
  testing::expect_matches_reference(product, 1e-4, 1e-3, "few rows");
  // Stored whole when something else reads it: a graph output, or a view.
  reset_stats();
  Tensor scaled = x * 0.5f, output = matmul(scaled, w);
  eval({output, scaled});
  EXPECT_EQ(stats().kernels_launched, 2);
  testing::expect_matches_reference(output, 1e-4, 1e-3, "with the operand an output");
  // A layer_norm's normalization and affine part: its kernel stores each row's mean and 1/std,
  // and the matmul computes the normalized operand from them while packing it.
  Tensor gamma = random_tensor({200}, 63).eval(), beta = random_tensor({200}, 64).eval();
  Tensor normalized = linear(layer_norm(x, {200}, gamma, beta), w.t());
  std::string dump = normalized.dump("fused");
  EXPECT_NE(dump.find("computed while packing operand 0"), std::string::npos) << dump;
  EXPECT_NE(dump.find("stored for a matmul that computes its consumer while packing it"), std::string::npos) << dump;
  reset_stats();
  normalized.eval();
  EXPECT_EQ(stats().kernels_launched, 2);
  testing::expect_matches_reference(normalized, 1e-4, 1e-3, "layer_norm, then linear");
  // A Bool result alone takes K in one slice: the staged rows of a prologue lie K apart, not
  // 64-byte aligned (an aligned load there faulted; found by the fuzzer, seed 20000).
  Tensor narrow = random_tensor({70, 24}, 65).eval(), column = random_tensor({1, 24}, 66).eval();
  Tensor positive = linear(maximum(narrow, 0.5f), column) > 1.0f;
  std::vector<bool> signs = positive.to_vector<bool>();
  std::vector<double> exact = reference(linear(maximum(narrow, 0.5f), column));
  for (size_t i = 0; i < signs.size(); ++i) {
    if (std::fabs(exact[i] - 1.0) > 1e-4) {
      EXPECT_EQ(signs[i], exact[i] > 1.0) << i;
    }
  }
  // An update in place of an operand that the prologue reads.
  Tensor updated = random_tensor({70, 70}, 61).eval(), square = random_tensor({70, 70}, 62).eval();
  std::vector<double> expected = reference(matmul(updated * 2.0f, square));
  updated.copy_(matmul(updated * 2.0f, square));
  std::vector<float> actual = updated.to_vector<float>();
  for (size_t i = 0; i < actual.size(); ++i) ASSERT_NEAR(actual[i], expected[i], 1e-3) << i;
}

// A reduction over a product, and a product of a product, read the product from memory: one
// matmul per kernel, and a matmul is never recomputed inside another kernel.
TEST(MatMul, ReductionsAndProductsOfAProductReadItFromMemory) {
  Tensor a = random_tensor({30, 20}, 22).eval(), b = random_tensor({20, 25}, 23).eval();
  Tensor c = random_tensor({25, 10}, 24).eval();
  std::vector<std::pair<std::string, Tensor>> programs = {
      {"amax of a product", amax(matmul(a, b), {1})},
      {"softmax of a product", softmax(matmul(a, b) * 0.1f, -1)},
      {"a product of a product", matmul(relu(matmul(a, b)), c)},
  };
  for (auto& [name, program] : programs) {
    reset_stats();
    program.eval();
    EXPECT_EQ(stats().kernels_launched, 2) << name;
    testing::expect_matches_reference(program, 1e-4, 1e-3, name);
  }
  std::string fused = amax(matmul(a, b), {1}).dump("fused");
  EXPECT_NE(fused.find("a matmul consumed by 1 other kernel"), std::string::npos) << fused;
}

// An operand that fusing folds to a constant (a comparison of constants) but eager stores sums
// in the same order: the form of a few rows' product depends on the weight's layout alone.
TEST(MatMul, AFoldedOperandSumsAsTheStoredOne) {
  Tensor w = random_tensor({14, 4}, 40).eval();
  auto program = [&] {
    Tensor row = (ones({4}) == ones({4})).to(DType::Float32);
    return gelu(elu(matmul(row, w.t()), 0.5f), "tanh");
  };
  std::vector<float> fused = program().to_vector<float>(), eager;
  {
    FusionGuard off(false);
    eager = program().to_vector<float>();
  }
  EXPECT_EQ(testing::bits_of(fused), testing::bits_of(eager));
}

TEST(MatMul, SameBitsAtAnyThreadCount) {
  Tensor a = random_tensor({300, 200}, 17).eval(), b = random_tensor({200, 260}, 18).eval();
  std::vector<float> one, two;
  {
    NumThreadsGuard threads(1);
    one = relu(matmul(a, b)).to_vector<float>();
  }
  {
    NumThreadsGuard threads(2);
    two = relu(matmul(a, b)).to_vector<float>();
  }
  EXPECT_EQ(testing::bits_of(one), testing::bits_of(two));
  // At least as many columns as rows: the threads split the columns (at whole vector steps),
  // each packing its own columns of B.
  Tensor wide = random_tensor({200, 333}, 36).eval(), rows = random_tensor({100, 200}, 37).eval();
  std::vector<float> wide_one, wide_two;
  {
    NumThreadsGuard threads(1);
    wide_one = relu(matmul(rows * 2.0f, wide)).to_vector<float>();
  }
  {
    NumThreadsGuard threads(2);
    wide_two = relu(matmul(rows * 2.0f, wide)).to_vector<float>();
    expect_within_bound(matmul(rows, wide), rows, wide, "columns split, 2 threads");
  }
  EXPECT_EQ(testing::bits_of(wide_one), testing::bits_of(wide_two));
  // One row: the threads split its columns (at whole vector steps, an odd count of them).
  Tensor token = random_tensor({1, 768}, 32).eval(), weight = random_tensor({3000, 768}, 33).eval();
  Tensor row = random_tensor({768}, 34).eval(), matrix = random_tensor({768, 1000}, 35).eval();
  std::vector<float> token_one, token_two, row_one, row_two;
  {
    NumThreadsGuard threads(1);
    token_one = gelu(linear(token, weight)).to_vector<float>();
    row_one = matmul(row, matrix).to_vector<float>();
  }
  {
    NumThreadsGuard threads(2);
    token_two = gelu(linear(token, weight)).to_vector<float>();
    row_two = matmul(row, matrix).to_vector<float>();
    expect_within_bound(linear(token, weight), token, weight.t(), "one row, 2 threads");
    expect_within_bound(matmul(row, matrix), row, matrix, "a 1-d row, 2 threads");
  }
  EXPECT_EQ(testing::bits_of(token_one), testing::bits_of(token_two));
  EXPECT_EQ(testing::bits_of(row_one), testing::bits_of(row_two));
  Tensor batched = random_tensor({4, 70, 200}, 19).eval();
  NumThreadsGuard threads(2);
  expect_within_bound(matmul(batched, b), batched, b, "batched, 2 threads");
}

TEST(MatMul, UpdatesInPlaceReadTheOldValue) {
  Tensor x = random_tensor({20, 20}, 20).eval(), w = random_tensor({20, 20}, 21).eval();
  std::vector<double> expected = reference(matmul(x, w));
  x.copy_(matmul(x, w));
  std::vector<float> actual = x.to_vector<float>();
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], 1e-4) << i;
}

TEST(MatMul, MisuseThrowsNamingTheOpAndShapes) {
  Tensor m23 = ones({2, 3}), m45 = ones({4, 5}), v3 = ones({3});
  EXPECT_EQ(error_message([&] { matmul(Tensor(2.0f), m23); }),
            "matmul: f32[] and f32[2,3]: both operands need at least 1 dim");
  EXPECT_EQ(error_message([&] { matmul(m23, m45); }),
            "matmul: f32[2,3] and f32[4,5]: the sizes that are summed over differ (3 and 4)");
  EXPECT_EQ(error_message([&] { matmul(ones({2, 2, 3}), ones({3, 3, 4})); }),
            "matmul: f32[2,2,3] and f32[3,3,4]: the batch dims [2] and [3] do not broadcast");
  EXPECT_EQ(error_message([&] { matmul(Tensor(), v3); }), "matmul: operand 0 is an undefined tensor");
  EXPECT_EQ(error_message([&] { linear(m23, v3); }), "linear: the weight must be [out, in], got f32[3]");
  EXPECT_EQ(error_message([&] { linear(m23, m45); }),
            "linear: the input f32[2,3] does not end in the weight's 5 input features (weight f32[4,5])");
  EXPECT_EQ(error_message([&] { linear(m23, ones({4, 3}), ones({5})); }),
            "linear: the bias f32[5] does not broadcast to the output f32[2,4]");
}

}  // namespace
}  // namespace fusejit
