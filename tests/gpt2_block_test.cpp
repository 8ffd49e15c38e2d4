// The GPT-2 block of examples/gpt2_block.h at a small size: the double-precision reference's
// answer, fused and eager, at 1 and 2 threads, in 8 kernels: two layer norms, four linear
// layers with their bias, gelu and residuals, the attention, and the copy that merges the heads.
#include "examples/gpt2_block.h"
#include "test_util.h"

namespace fusejit {
namespace {

TEST(Gpt2Block, MatchesTheReference) {
  gpt2::Block block = gpt2::Block::random({.model = 64, .heads = 4, .hidden = 256}, 7);
  for (int64_t t : {1, 16, 67}) {
    Tensor x = randn({t, 64}, 8).eval();
    std::string what = "T = " + std::to_string(t);
    reset_stats();
    Tensor y = block.forward(x);
    testing::expect_matches_reference(y, 1e-4, 1e-5, what);
    // One token's heads merge without a copy: 7 kernels then.
    EXPECT_EQ(stats().kernels_launched, t == 1 ? 7 : 8) << what;
    std::vector<float> fused = y.to_vector<float>();
    {
      NumThreadsGuard threads(2);
      EXPECT_EQ(testing::bits_of(block.forward(x).to_vector<float>()), testing::bits_of(fused)) << what;
    }
    FusionGuard eager(false);
    std::vector<float> apart = block.forward(x).to_vector<float>();
    for (size_t i = 0; i < fused.size(); ++i) ASSERT_NEAR(fused[i], apart[i], 1e-4) << what << " element " << i;
  }
}

}  // namespace
}  // namespace fusejit
