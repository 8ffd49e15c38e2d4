// Differential fuzzing: random elementwise graphs with broadcasting and reductions whose
// results broadcast back, evaluated fused, eager and by the reference interpreter.
#include <gtest/gtest.h>

#include <random>

#include "test_util.h"

namespace fj = fusejit;
using fj::Tensor;

namespace {

// Ops that keep values bounded, so float32 error stays comparable to the reference's.
Tensor unary(int choice, const Tensor& x) {
  switch (choice % 9) {
    case 0: return fj::tanh(x);
    case 1: return fj::sigmoid(x);
    case 2: return fj::sin(x);
    case 3: return fj::cos(x);
    case 4: return fj::relu(x);
    case 5: return fj::gelu(x);
    case 6: return fj::silu(x);
    case 7: return -x;
    default: return fj::abs(x);
  }
}

Tensor binary(int choice, const Tensor& a, const Tensor& b) {
  switch (choice % 6) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * fj::tanh(b);
    case 3: return fj::maximum(a, b);
    case 4: return fj::where(a > b, a, b * 0.5f);
    default: return fj::minimum(a, b) + 1;
  }
}

// A reduction of x whose result is combined back with x, so the shape stays the same.
Tensor reduce_back(int choice, const Tensor& x) {
  switch (choice % 5) {
    case 0: return x - fj::amax(x, {1}, true);
    case 1: return x * fj::mean(x, {0}, true);
    case 2: return fj::softmax(x, -1);
    case 3: return fj::layer_norm(x, {x.size(-1)});
    default: return x - fj::sum(x) * 0.01f;
  }
}

// One step of a random program: an op on earlier values (or on a fresh input).
struct Step {
  int choice;
  size_t a, b;
  int fresh_input;  // >= 0: b is this extra input instead of an earlier value
  bool reduction;   // reduce_back(a)
};

struct Program {
  std::vector<Tensor> inputs;  // inputs[0] has the full shape; the others broadcast
  std::vector<Step> steps;
};

Program random_program(std::mt19937& gen, const fj::Shape& shape) {
  Program p;
  p.inputs.push_back(fj::testing::random_tensor(shape, gen()));
  size_t values = 1;
  int ops = 2 + gen() % 12;
  for (int i = 0; i < ops; ++i, ++values) {
    Step step{static_cast<int>(gen() % 1000), gen() % values, gen() % values, -1, gen() % 5 == 0};
    if (!step.reduction && gen() % 3 == 0) {
      fj::Shape small = gen() % 2 ? fj::Shape{shape.back()} : fj::Shape{shape.front(), 1};
      step.fresh_input = static_cast<int>(p.inputs.size());
      p.inputs.push_back(fj::testing::random_tensor(small, gen()));
    }
    p.steps.push_back(step);
  }
  return p;
}

// The program's values; the last and a middle one are its outputs.
std::vector<Tensor> run(const Program& p) {
  std::vector<Tensor> values = {p.inputs[0]};
  for (const Step& s : p.steps) {
    if (s.reduction)
      values.push_back(reduce_back(s.choice, values[s.a]));
    else if (s.fresh_input >= 0)
      values.push_back(binary(s.choice, values[s.a], p.inputs[s.fresh_input]));
    else if (s.choice % 2)
      values.push_back(unary(s.choice / 2, values[s.a]));
    else
      values.push_back(binary(s.choice / 2, values[s.a], values[s.b]));
  }
  return {values.back(), values[values.size() / 2] * 2};
}

}  // namespace

TEST(Fuzz, FusedEagerAndReferenceAgree) {
  std::mt19937 gen(20261124);
  const std::vector<fj::Shape> shapes = {{1, 1}, {3, 7}, {17, 33}, {64, 129}, {2, 1023}, {130, 257}};
  for (int trial = 0; trial < 120; ++trial) {
    Program program = random_program(gen, shapes[trial % shapes.size()]);
    std::vector<Tensor> fused = run(program);
    std::vector<double> reference = fj::testing::reference(fused[0]);
    fj::eval(fused);
    std::vector<Tensor> eager;
    {
      fj::FusionGuard off(false);
      eager = run(program);
      fj::eval(eager);
    }
    // Elementwise kernels round the same ops the same way fused or eager; reductions may
    // accumulate in other lane counts (wider steps for cheap kernels), so their sums differ in
    // the last bits.
    bool reduces = false;
    for (const Step& step : program.steps) reduces = reduces || step.reduction;
    double tolerance = reduces ? 1e-5 : 1e-6;
    for (size_t o = 0; o < fused.size(); ++o) {
      std::vector<float> f = fused[o].to_vector<float>(), e = eager[o].to_vector<float>();
      ASSERT_EQ(f.size(), e.size());
      for (size_t i = 0; i < f.size(); ++i)
        ASSERT_NEAR(f[i], e[i], tolerance * (1 + std::fabs(e[i]))) << "trial " << trial << " output " << o
                                                               << " element " << i;
    }
    std::vector<float> f = fused[0].to_vector<float>();
    for (size_t i = 0; i < f.size(); ++i)
      ASSERT_NEAR(f[i], reference[i], 1e-5 + 1e-5 * std::fabs(reference[i]))
          << "trial " << trial << " element " << i;
  }
}
