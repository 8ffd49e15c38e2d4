// scaled_dot_product_attention: torch's shape rules, results within a float32 bound of the
// double-precision reference (masks, causal, odd sizes, operands that are views), one kernel
// with its epilogue, the hand-written pattern in the same one kernel, special values, the same
// bits at any thread count, and errors that name the op and the shapes.
#include <cmath>
#include <functional>

#include "test_util.h"

namespace fusejit {
namespace {

using testing::error_message;
using testing::random_tensor;
using testing::reference;

// Float32 scores are off by at most ~E 2^-24 (scale Σ_e |q||k|), which moves each weight by that
// relative amount; the weighted sum of S values adds ~S 2^-24 Σ p|v|; exp a few ulps. So each
// output is within (2 E 2^-24 max_j |s_ij| + (S + 16) 2^-24) Σ_j p_ij |v_j| of the exact one.
void expect_within_bound(const Tensor& result, const Tensor& q, const Tensor& k, const Tensor& v,
                         const Tensor& mask, bool causal, std::optional<double> scale, const std::string& what) {
  double e = static_cast<double>(q.size(-1)), s = static_cast<double>(k.size(-2));
  double factor = scale ? *scale : 1.0 / std::sqrt(e);
  std::vector<double> exact = reference(result);
  std::vector<double> weighted = reference(scaled_dot_product_attention(q, k, abs(v), mask, causal, scale));
  std::vector<double> score_size = reference(amax(matmul(abs(q), abs(k).transpose(-2, -1)), {-1}, true));
  std::vector<float> actual = result.to_vector<float>();
  ASSERT_EQ(actual.size(), exact.size()) << what;
  int64_t ev = result.size(-1);
  int reported = 0;
  for (size_t i = 0; i < actual.size() && reported < 5; ++i) {
    double scores = std::fabs(factor) * score_size[i / static_cast<size_t>(ev)];
    double bound = 4 * (2 * e * 0x1p-24 * scores + (s + 16) * 0x1p-24) * weighted[i] + 1e-30;
    if (std::isnan(exact[i]) && std::isnan(actual[i])) continue;
    if (!(std::fabs(actual[i] - exact[i]) <= bound)) {
      ADD_FAILURE() << what << " element " << i << ": got " << actual[i] << ", reference " << exact[i] << ", bound "
                    << bound;
      ++reported;
    }
  }
}

void expect_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask = Tensor(),
                      bool causal = false, std::optional<double> scale = std::nullopt) {
  std::string what = "q " + ir::shape_string(q.sizes()) + " k " + ir::shape_string(k.sizes()) + " v " +
                     ir::shape_string(v.sizes()) + (mask.defined() ? " mask " + ir::shape_string(mask.sizes()) : "") +
                     (causal ? " causal" : "");
  expect_within_bound(scaled_dot_product_attention(q, k, v, mask, causal, scale), q, k, v, mask, causal, scale, what);
}

TEST(Attention, MatchesTheReferenceAtOddSizes) {
  uint32_t seed = 1;
  for (int64_t l : {1, 3, 17, 64, 70})
    for (int64_t s : {1, 5, 64, 65, 130})
      for (int64_t e : {1, 16, 64}) {
        Tensor q = random_tensor({2, l, e}, seed++), k = random_tensor({2, s, e}, seed++);
        Tensor v = random_tensor({2, s, e == 1 ? 3 : e}, seed++);
        expect_attention(q, k, v);
        expect_attention(q, k, v, Tensor(), true);
      }
}

TEST(Attention, MasksAndScale) {
  Tensor q = random_tensor({3, 40, 24}, 1), k = random_tensor({3, 90, 24}, 2), v = random_tensor({3, 90, 33}, 3);
  Tensor additive = random_tensor({40, 90}, 4);
  expect_attention(q, k, v, additive);
  Tensor allowed = random_tensor({3, 1, 90}, 5) > 0.0f;  // broadcast over the queries
  expect_attention(q, k, v, allowed);
  expect_attention(q, k, v, Tensor(), false, 0.5);
  // Operands that are values broadcast over their shape (never stored): read as that value.
  expect_attention(q, k, v, ones({40, 90}).to(DType::Bool));
  expect_attention(q, k, v, full({40, 90}, -1.5f));
  expect_attention(zeros({3, 40, 24}), k, full({3, 90, 33}, 2.0f), Tensor(), true);
  expect_attention(q, ones({3, 90, 24}), v);
  // Values that are graph outputs as well are stored, and the attention reads them there:
  // E = 1 makes the default scale 1, the same value as `one`.
  Tensor one = full({}, 1.0f), value = full({1, 1, 1}, 1.0f);
  Tensor attended = scaled_dot_product_attention(value, value, value);
  eval({one, value, attended});
  EXPECT_EQ(attended.item<float>(), 1.0f);
  expect_attention(q, k, v, Tensor(), true, 2.0);
  // Causal with fewer queries than keys: query i attends keys 0..i (torch's top-left diagonal),
  // as the same lower-triangular Bool mask does.
  Tensor lower = arange(0, 90).unsqueeze(0) <= arange(0, 40).unsqueeze(1);
  std::vector<float> causal = scaled_dot_product_attention(q, k, v, Tensor(), true).to_vector<float>();
  std::vector<float> masked = scaled_dot_product_attention(q, k, v, lower).to_vector<float>();
  ASSERT_EQ(causal.size(), masked.size());
  for (size_t i = 0; i < causal.size(); ++i) EXPECT_NEAR(causal[i], masked[i], 1e-5) << i;
}

// GPT-2's head split: q, k and v are strided views of one [T, 3 d] projection, never copied.
TEST(Attention, OperandsThatAreViews) {
  int64_t t = 50, heads = 3, e = 16, d = heads * e;
  Tensor qkv = random_tensor({t, 3 * d}, 7).eval();
  auto head = [&](int64_t part) { return qkv.narrow(1, part * d, d).view({t, heads, e}).transpose(0, 1); };
  expect_attention(head(0), head(1), head(2), Tensor(), true);
  Tensor pending = random_tensor({t, 3 * d}, 8) * 0.5f;
  auto pending_head = [&](int64_t part) { return pending.narrow(1, part * d, d).view({t, heads, e}).transpose(0, 1); };
  expect_attention(pending_head(0), pending_head(1), pending_head(2));
  // Keys read transposed and a broadcast batch.
  Tensor k = random_tensor({e, 30}, 9).eval();
  expect_attention(random_tensor({2, heads, 10, e}, 10), k.t(), random_tensor({heads, 30, 8}, 11));
}

TEST(Attention, OneKernelWithItsEpilogue) {
  Tensor q = random_tensor({4, 64, 32}, 12).eval(), k = random_tensor({4, 80, 32}, 13).eval();
  Tensor v = random_tensor({4, 80, 32}, 14).eval(), residual = random_tensor({4, 64, 32}, 15).eval();
  reset_stats();
  Tensor out = residual + scaled_dot_product_attention(q, k, v, Tensor(), true) * 2.0f;
  out.eval();
  EXPECT_EQ(stats().kernels_launched, 1);
  testing::expect_matches_reference(out, 1e-4, 1e-4, "residual + 2 attention");
  std::string fused = (residual + scaled_dot_product_attention(q, k, v)).dump("fused");
  EXPECT_NE(fused.find("attention, domain [4,64,32] over S = 80 keys of E = 32"), std::string::npos) << fused;
}

// Attention written as its ops runs as the same one kernel as the API call (ir::fuse_attention),
// in each of the forms users write; when a step's value is wanted too, the ops run apart.
TEST(Attention, TheHandWrittenPatternIsOneKernel) {
  Tensor q = random_tensor({2, 3, 48, 16}, 36).eval(), k = random_tensor({2, 3, 56, 16}, 37).eval();
  Tensor v = random_tensor({2, 3, 56, 24}, 38).eval(), mask = random_tensor({48, 56}, 39).eval();
  Tensor allowed = (random_tensor({48, 56}, 40) > -2.0f).eval();
  Tensor kt = k.transpose(-2, -1);
  float d = 16;
  std::vector<std::pair<std::string, std::function<Tensor()>>> programs = {
      {"/ sqrt(d) + mask", [&] { return softmax(q.matmul(kt) / std::sqrt(d) + mask, -1).matmul(v); }},
      {"mask + * scale", [&] { return softmax(mask + q.matmul(kt) * 0.3f, -1).matmul(v); }},
      {"scale * , where(mask, ., -inf)",
       [&] { return softmax(where(allowed, 0.25f * q.matmul(kt), -INFINITY), -1).matmul(v); }},
      {"no scale", [&] { return softmax(q.matmul(kt), -1).matmul(v); }},
      {"keys computed", [&] { return softmax(q.matmul((k * 0.5f).transpose(-2, -1)) * 0.1f, -1).matmul(v); }},
  };
  for (auto& [name, program] : programs) {
    Tensor fused = program();
    reset_stats();
    std::vector<float> values = fused.to_vector<float>();
    EXPECT_EQ(stats().kernels_launched, name == "keys computed" ? 2 : 1) << name;
    EXPECT_NE(program().dump("fused").find("attention("), std::string::npos) << name;
    testing::expect_matches_reference(fused, 1e-4, 1e-5, name);
    FusionGuard eager(false);
    Tensor apart = program();
    EXPECT_EQ(apart.dump("fused").find("attention("), std::string::npos) << name;
    std::vector<float> eager_values = apart.to_vector<float>();
    for (size_t i = 0; i < values.size(); ++i) ASSERT_NEAR(values[i], eager_values[i], 1e-5) << name << " " << i;
  }
  reset_stats();
  scaled_dot_product_attention(q, k, v, mask, false).eval();
  EXPECT_EQ(stats().kernels_launched, 1);
  // The weights wanted as well: nothing is replaced, and both results are right.
  Tensor weights = softmax(q.matmul(kt) * 0.25f, -1);
  Tensor out = weights.matmul(v);
  reset_stats();
  eval({weights, out});
  EXPECT_EQ(stats().kernels_launched, 3);  // the scores, the softmax, the product
  testing::expect_matches_reference(out, 1e-4, 1e-5, "weights kept");
  testing::expect_matches_reference(weights, 1e-4, 1e-6, "the weights");
}

TEST(Attention, SpecialValues) {
  Tensor q = random_tensor({1, 6, 8}, 16), k = random_tensor({1, 6, 8}, 17);
  // Every key masked: the row is NaN, as softmax of all -inf gives; the other rows are not.
  std::vector<float> mask(36, 1.0f);
  for (int j = 0; j < 6; ++j) mask[2 * 6 + j] = 0.0f;
  Tensor allowed = tensor(mask, {6, 6}).to(DType::Bool);
  std::vector<float> out = scaled_dot_product_attention(q, k, random_tensor({1, 6, 4}, 18), allowed).to_vector<float>();
  for (int i = 0; i < 6; ++i)
    for (int c = 0; c < 4; ++c) EXPECT_EQ(std::isnan(out[i * 4 + c]), i == 2) << i << "," << c;
  // An infinite value at a key hidden by the causal mask is never read.
  std::vector<float> values = testing::random_floats(24, 19);
  values[5 * 4 + 1] = INFINITY;
  std::vector<float> causal =
      scaled_dot_product_attention(q, k, tensor(values, {1, 6, 4}), Tensor(), true).to_vector<float>();
  for (int i = 0; i < 5 * 4; ++i) EXPECT_TRUE(std::isfinite(causal[i])) << i;
  EXPECT_TRUE(std::isinf(causal[5 * 4 + 1]));
  // A NaN score makes its row NaN; an additive -inf hides a key.
  std::vector<float> additive(36, 0.0f);
  additive[0] = NAN;
  additive[6 + 3] = -INFINITY;
  expect_attention(q, k, random_tensor({1, 6, 4}, 20), tensor(additive, {6, 6}));
  // No keys: zeros, as softmax over nothing times nothing.
  EXPECT_EQ(scaled_dot_product_attention(random_tensor({2, 3, 4}, 21), zeros({2, 0, 4}), zeros({2, 0, 5})).to_vector<float>(),
            std::vector<float>(30, 0.0f));
}

TEST(Attention, SameBitsAtAnyThreadCount) {
  Tensor q = random_tensor({3, 300, 64}, 22).eval(), k = random_tensor({3, 300, 64}, 23).eval();
  Tensor v = random_tensor({3, 300, 64}, 24).eval();
  Tensor single_q = random_tensor({1, 333, 64}, 25).eval();
  std::vector<float> one, two, single_one, single_two;
  {
    NumThreadsGuard threads(1);
    one = scaled_dot_product_attention(q, k, v, Tensor(), true).to_vector<float>();
    single_one = scaled_dot_product_attention(single_q, k.select(0, 0).unsqueeze(0), v.select(0, 0).unsqueeze(0)).to_vector<float>();
  }
  {
    NumThreadsGuard threads(2);
    two = scaled_dot_product_attention(q, k, v, Tensor(), true).to_vector<float>();
    single_two = scaled_dot_product_attention(single_q, k.select(0, 0).unsqueeze(0), v.select(0, 0).unsqueeze(0)).to_vector<float>();
  }
  EXPECT_EQ(testing::bits_of(one), testing::bits_of(two));
  EXPECT_EQ(testing::bits_of(single_one), testing::bits_of(single_two));
}

TEST(Attention, ErrorsNameTheOpAndShapes) {
  Tensor q = random_tensor({2, 5, 8}, 26), k = random_tensor({2, 7, 8}, 27), v = random_tensor({2, 7, 3}, 28);
  auto message = [&](const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& mask = Tensor(),
                     bool causal = false) {
    return error_message([&] { scaled_dot_product_attention(a, b, c, mask, causal); });
  };
  EXPECT_NE(message(q, random_tensor({2, 7, 9}, 29), v).find("query f32[2,5,8], key f32[2,7,9]"), std::string::npos);
  EXPECT_NE(message(q, k, random_tensor({2, 6, 3}, 30)).find("different numbers of keys"), std::string::npos);
  EXPECT_NE(message(random_tensor({8}, 31), k, v).find("at least 2 dims"), std::string::npos);
  EXPECT_NE(message(random_tensor({3, 5, 8}, 32), k, v).find("leading dims do not broadcast"), std::string::npos);
  EXPECT_NE(message(q, k, v, random_tensor({5, 6}, 33)).find("does not broadcast to the scores' shape [2,5,7]"),
            std::string::npos);
  EXPECT_NE(message(q, k, v, random_tensor({5, 7}, 34), true).find("exclude each other"), std::string::npos);
  EXPECT_NE(message(q, k, v, random_tensor({5, 7}, 35).to(DType::Int64)).find("bool or float32"), std::string::npos);
  EXPECT_NE(message(q, Tensor(), v).find("scaled_dot_product_attention: the key is an undefined tensor"),
            std::string::npos);
}

}  // namespace
}  // namespace fusejit

