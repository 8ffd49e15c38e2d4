// The generated machine code: packed vector arithmetic in the loop, no library calls.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "test_util.h"

namespace fj = fusejit;

namespace {

bool wide_target() { return fj::target_description().find("avx512") != std::string::npos; }

std::string assembly(const fj::Tensor& t) { return t.dump("asm"); }

// Whether some instruction line starts with `mnemonic` and names a register of class `reg`.
bool has_instruction(const std::string& text, const std::string& mnemonic, const std::string& reg) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    size_t start = line.find_first_not_of(" \t");
    if (start != std::string::npos && line.compare(start, mnemonic.size(), mnemonic) == 0 &&
        line.find("%" + reg) != std::string::npos)
      return true;
  }
  return false;
}

}  // namespace

TEST(Codegen, ChainLoopUsesPackedVectorsAndNoCalls) {
  fj::Tensor x = fj::testing::random_tensor({4096, 4096 / 64}, 1);
  std::string text = assembly(fj::relu(fj::tanh(x * 2 + 1) * x - 0.5f) * 3);
  std::string reg = wide_target() ? "zmm" : "ymm";
  EXPECT_TRUE(has_instruction(text, "vmulps", reg)) << text;
  EXPECT_TRUE(has_instruction(text, "vfmadd", reg)) << text;
  if (!wide_target()) {
    EXPECT_EQ(text.find("zmm"), std::string::npos);
  }
  EXPECT_EQ(text.find("call"), std::string::npos) << text;
  EXPECT_EQ(text.find("tanhf"), std::string::npos);
}

TEST(Codegen, OutputsFarBeyondTheCacheUseStreamingStores) {
  fj::Tensor big = fj::testing::random_tensor({4096, 4096}, 5);
  EXPECT_NE(assembly(big * 2).find("vmovntps"), std::string::npos);
  fj::Tensor small = fj::testing::random_tensor({1000, 1000}, 6);
  EXPECT_EQ(assembly(small * 2).find("vmovntps"), std::string::npos);
}

TEST(Codegen, TranscendentalsAreInlineEverywhere) {
  fj::Tensor x = fj::testing::random_tensor({1000}, 2);
  const std::vector<fj::Tensor> ops = {
      fj::exp(x), fj::log(x), fj::sin(x), fj::cos(x), fj::tanh(x), fj::sigmoid(x), fj::gelu(x),
      fj::gelu(x, "tanh"), fj::silu(x), fj::elu(x), fj::softplus(x), fj::pow(x, 1.5f),
      fj::randn({1000}, 3)};
  for (const fj::Tensor& op : ops) {
    std::string text = assembly(op);
    EXPECT_EQ(text.find("call"), std::string::npos) << text;
  }
}

TEST(Codegen, LlvmDumpsBeforeAndAfterOptimization) {
  fj::Tensor x = fj::testing::random_tensor({100}, 3);
  std::string text = (x * 2 + 1).dump("llvm,opt");
  EXPECT_NE(text.find("=== kernel0.ll"), std::string::npos);
  EXPECT_NE(text.find("=== kernel0.opt.ll"), std::string::npos);
  EXPECT_NE(text.find("masked.store"), std::string::npos);  // the tail
}

TEST(Codegen, DumpEnvironmentWritesFiles) {
  // One directory per process: the .native and .avx2 runs of this test may run at once.
  std::string dir = ::testing::TempDir() + "fusejit_dump_test_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  setenv("FUSEJIT_DUMP", "graph,fused,asm", 1);
  setenv("FUSEJIT_DUMP_DIR", dir.c_str(), 1);
  (fj::testing::random_tensor({10}, 4) * 3 + 0.25f).eval();
  unsetenv("FUSEJIT_DUMP");
  unsetenv("FUSEJIT_DUMP_DIR");
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  ASSERT_EQ(names.size(), 4u);
  EXPECT_NE(names[0].find("graph"), std::string::npos);
  EXPECT_NE(names[1].find("fused"), std::string::npos);
  EXPECT_NE(names[2].find("kernel0.s"), std::string::npos);
  EXPECT_NE(names[3].find("cache"), std::string::npos);
}
