// Differential fuzzing: random programs over the whole public API (tests/fuzz/program.h),
// evaluated fused at 1 and 2 threads and eager, each result held against interval bounds from
// the reference (tests/fuzz/bounds.h). A failure prints a minimized, self-contained reproducer.
// Long runs: build/release/tests/fusejit_fuzz --seed S --count N --seconds T.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "frontend/lazy.h"
#include "ir/ops.h"
#include "tests/fuzz/bounds.h"
#include "tests/fuzz/check.h"

namespace fj = fusejit;

namespace {

// FUSEJIT_FUZZ_GRAPHS sets the count; by default 2,000 in optimized builds and fewer in the
// sanitizer build (FUSEJIT_FUZZ_DEFAULT_GRAPHS, set by tests/CMakeLists.txt), where each graph
// costs several times more.
int graph_count() {
  if (const char* text = std::getenv("FUSEJIT_FUZZ_GRAPHS")) return std::atoi(text);
  return FUSEJIT_FUZZ_DEFAULT_GRAPHS;
}

}  // namespace

TEST(Fuzz, RandomProgramsStayWithinTheReference) {
  constexpr uint64_t kSeed = 20261124;
  constexpr int kReported = 3;  // failures minimized and printed before the test gives up
  int failures = 0;
  for (int i = 0, count = graph_count(); i < count && failures < kReported; ++i) {
    fj::fuzz::Program program = fj::fuzz::generate_program(fj::fuzz::program_seed(kSeed, i));
    fj::fuzz::Outcome outcome = fj::fuzz::check_program(program);
    if (outcome.verdict == fj::fuzz::Verdict::Pass) continue;
    ++failures;
    ASSERT_NE(outcome.verdict, fj::fuzz::Verdict::Invalid) << "the generator made an invalid program: "
                                                           << outcome.message;
    fj::fuzz::Program small = fj::fuzz::minimize(
        program, [&](const fj::fuzz::Program& p) { return fj::fuzz::check_program(p).verdict == outcome.verdict; },
        300);
    fj::fuzz::Outcome shown = fj::fuzz::check_program(small);
    ADD_FAILURE() << "graph " << i << " (seed " << kSeed << "): " << fj::fuzz::verdict_name(outcome.verdict)
                  << "\n" << outcome.message << "\nminimized:\n"
                  << fj::fuzz::to_cpp(small, shown.settings, shown.message);
  }
}

// The fuzzer is what tests an op against the reference in every context (fused, eager,
// broadcast, reduced, special values): every op of the op table must appear in the graphs it
// generates, so a new op cannot go untested.
TEST(Fuzz, GeneratesEveryOpOfTheTable) {
  std::vector<bool> seen(fj::ir::op_count(), false);
  for (int i = 0; i < 400; ++i) {
    fj::fuzz::Program program = fj::fuzz::generate_program(fj::fuzz::program_seed(1, i));
    fj::ir::Graph graph = fj::frontend::graph_of(fj::fuzz::build(program, false));
    for (const fj::ir::GraphNode& node : graph.nodes) seen[static_cast<size_t>(node.op)] = true;
  }
  for (size_t op = 0; op < seen.size(); ++op)
    EXPECT_TRUE(seen[op]) << fj::ir::op_name(static_cast<fj::ir::OpCode>(op)) << " is never generated";
}

// The reference's bounds must hold what the library computes. gelu over an interval reaching
// -inf rises towards -0 (the interval of argmin + 1 here is [1, inf]: the reference does not
// know which element is the least); its bound once held only gelu(-1).
// A key masked out by a Bool mask weighs 0 and its value is still read, as in the composed
// ops: 0 times an infinite value is NaN. The attention's bound once widened the masked keys'
// zero weights away from 0 (a large score spread made its slack exceed 1) and excluded that NaN.
TEST(FuzzReference, AttentionAllowsNaNFromAMaskedInfiniteValue) {
  fj::Tensor q = fj::tensor({1.0f, -1.0f}, {1, 1, 2});
  fj::Tensor k = fj::tensor({1.0f, 2.0f, 1e30f, 0.5f, 1.0f, 1.0f}, {1, 3, 2});
  fj::Tensor v = fj::tensor({-INFINITY, 1.0f, 2.0f}, {1, 3, 1});
  fj::Tensor allowed = fj::tensor({0.0f, 1.0f, 1.0f}, {3}).to(fj::DType::Bool);
  fj::Tensor y = fj::scaled_dot_product_attention(q, k, v, allowed);
  std::vector<std::vector<fj::fuzz::Bound>> bounds = fj::fuzz::reference_bounds(fj::frontend::graph_of({y}));
  float value = y.item<float>();
  EXPECT_TRUE(std::isnan(value));
  EXPECT_TRUE(bounds.at(0).at(0).allows(value)) << value << " outside [" << bounds[0][0].lo << ", " << bounds[0][0].hi
                                                 << "], NaN " << bounds[0][0].nan;
}

TEST(FuzzReference, GeluOverAnIntervalToMinusInfinityReachesMinusZero) {
  fj::Tensor x = fj::tensor({1.22689152f, 0.684911251f}, {1, 1, 2}) - 0.001f;
  fj::Tensor y = fj::gelu(-(fj::argmin(x, -1) + 1.0f));
  std::vector<std::vector<fj::fuzz::Bound>> bounds = fj::fuzz::reference_bounds(fj::frontend::graph_of({y}));
  float value = y.item<float>();
  EXPECT_NEAR(value, -0.0455002f, 1e-6f);
  EXPECT_TRUE(bounds.at(0).at(0).allows(value))
      << value << " outside [" << bounds[0][0].lo << ", " << bounds[0][0].hi << "]";
}
