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
  std::filesystem::remove_all(dir);
}

// Transposed reads run in tiles, a Float32 input read across rows through a transposing buffer
// (masked at the tiles' edges); other dtypes and strides gather. Every path is exact, at any
// thread count.
TEST(Codegen, TransposedReadsInTilesAreExact) {
  for (int threads : {1, 2}) {
    fj::NumThreadsGuard guard(threads);
    for (const fj::Shape& shape : std::vector<fj::Shape>{{128, 128}, {300, 260}, {513, 129}, {2, 256, 384}}) {
      fj::Tensor x = fj::testing::random_tensor(shape, 11);
      fj::Tensor y = fj::testing::random_tensor(fj::Shape(shape.rbegin(), shape.rend()), 12);
      x.eval();
      fj::Tensor both = fj::exp(x.transpose(-1, -2)) + y.permute(shape.size() == 2 ? fj::Shape{1, 0} : fj::Shape{2, 1, 0}).transpose(-1, -2);
      fj::testing::expect_matches_reference(both, 1e-6, 1e-6, "two transposed inputs " + fj::ir::shape_string(shape));
      fj::Tensor every_other = x.slice(-1, 0, shape.back(), 2).transpose(-1, -2) * 3;
      fj::testing::expect_matches_reference(every_other, 0x1p-23, 0, "a strided transpose " + fj::ir::shape_string(shape));
      fj::Tensor flags = (x > 0).transpose(-1, -2).contiguous();
      std::vector<double> expected = fj::testing::reference(flags);
      std::vector<bool> got = flags.to_vector<bool>();
      EXPECT_TRUE(std::equal(got.begin(), got.end(), expected.begin(), [](bool a, double b) { return a == (b != 0); }))
          << "a transposed Bool input " << fj::ir::shape_string(shape);
    }
  }
}

// Inner strides up to 4 load one masked span and keep every stride-th lane; larger ones gather.
// Neither reads an element outside the view (the last row's span ends inside the data).
TEST(Codegen, SmallInnerStridesLoadSpansExactly) {
  for (int threads : {1, 2}) {
    fj::NumThreadsGuard guard(threads);
    for (int64_t step : {2, 3, 4, 5}) {
      for (int64_t start : {0, 1}) {
        std::vector<float> data = fj::testing::random_floats(301 * 97, 13);
        fj::Tensor x = fj::from_blob(data.data(), {301, 97});
        fj::Tensor y = x.slice(1, start, 97, step) * 3 + 1;
        fj::testing::expect_matches_reference(y, 0x1p-22, 0, "step " + std::to_string(step) + " from " + std::to_string(start));
        fj::Tensor flat = x.reshape({301 * 97}).slice(0, start, 301 * 97, step) + 0.0f;
        fj::testing::expect_matches_reference(flat, 0, 0, "a flat strided read, step " + std::to_string(step));
      }
    }
  }
}
