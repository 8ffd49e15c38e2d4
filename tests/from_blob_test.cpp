// from_blob with an owner: memory shared without a copy, held while any tensor reads it, read
// through strides, of every dtype; what the Python module's from_numpy and from_dlpack build on.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "test_util.h"

namespace fj = fusejit;
using fj::DType;
using fj::Tensor;
using fj::testing::error_message;

namespace {

// Memory whose release the test observes.
struct Owned {
  Owned(std::vector<float> values, bool* released) : values(std::move(values)), released(released) {
    *released = false;
  }
  ~Owned() { *released = true; }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  std::vector<float> values;
  bool* released;
};

std::shared_ptr<Owned> owned(std::vector<float> values, bool* released) {
  return std::make_shared<Owned>(std::move(values), released);
}

}  // namespace

TEST(FromBlobOwner, KeptAliveWhileATensorOrViewReadsTheMemory) {
  bool released;
  auto memory = owned({1, 2, 3, 4, 5, 6}, &released);
  float* data = memory->values.data();
  Tensor x = fj::from_blob(data, {2, 3}, {}, DType::Float32, std::move(memory));
  Tensor row = x.select(0, 1);
  EXPECT_EQ(x.data_ptr<float>(), data);
  x = Tensor();
  EXPECT_FALSE(released);
  EXPECT_EQ(row.to_vector<float>(), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(row.data_ptr<float>(), data + 3);
  row = Tensor();
  EXPECT_TRUE(released);
}

TEST(FromBlobOwner, ReleasedOnceAPendingResultNoLongerNeedsIt) {
  bool released;
  auto memory = owned({1, 2, 3}, &released);
  float* data = memory->values.data();
  Tensor y = fj::from_blob(data, {3}, {}, DType::Float32, std::move(memory)) * 2;
  EXPECT_FALSE(released);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{2, 4, 6}));
  EXPECT_TRUE(released);  // evaluation drops the inputs of what it computed
}

TEST(FromBlobOwner, StridedMemoryIsAViewOfWhatItSpans) {
  bool released;
  auto memory = owned({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, &released);
  float* data = memory->values.data();
  // Every other column of a 3x4 row-major matrix, transposed: [2, 3] at strides {2, 4}.
  Tensor x = fj::from_blob(data, {2, 3}, {2, 4}, DType::Float32, memory);
  EXPECT_FALSE(x.is_contiguous());
  EXPECT_EQ(x.strides(), (fj::Shape{2, 4}));
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{0, 4, 8, 2, 6, 10}));
  EXPECT_EQ(x.data_ptr<float>(), data);
  EXPECT_EQ(fj::sum(x + x.t().t()).item<float>(), 60);

  x.add_(100).eval();  // written through the view into the shared memory, nothing else touched
  EXPECT_EQ(memory->values, (std::vector<float>{100, 1, 102, 3, 104, 5, 106, 7, 108, 9, 110, 11}));
  EXPECT_EQ(x.data_ptr<float>(), data);
}

TEST(FromBlobOwner, StrideZeroReadsOneElementMany) {
  std::vector<float> values = {7};
  Tensor x = fj::from_blob(values.data(), {3, 2}, {0, 0}, DType::Float32, nullptr);
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>(6, 7)));
  EXPECT_NE(error_message([&] { x.add_(1); }).find("overlapping"), std::string::npos);
}

TEST(FromBlobOwner, BoolAndInt64Memory) {
  std::vector<uint8_t> mask = {1, 0, 0, 1};
  Tensor m = fj::from_blob(mask.data(), {4}, {}, DType::Bool, nullptr);
  EXPECT_EQ(m.dtype(), DType::Bool);
  EXPECT_EQ(m.to_vector<bool>(), (std::vector<bool>{true, false, false, true}));
  EXPECT_EQ(fj::where(m, 1.0f, -1.0f).to_vector<float>(), (std::vector<float>{1, -1, -1, 1}));

  std::vector<int64_t> ids = {2, 0, 2};
  Tensor index = fj::from_blob(ids.data(), {3}, {}, DType::Int64, nullptr);
  Tensor table = fj::tensor({10, 11, 20, 21, 30, 31}, {3, 2});
  EXPECT_EQ(fj::index_select(table, 0, index).to_vector<float>(), (std::vector<float>{30, 31, 10, 11, 30, 31}));
}

TEST(FromBlobOwner, MisuseNamesFromBlob) {
  std::vector<int64_t> memory(16);
  auto expect_error = [](auto&& call, const std::string& part) {
    std::string message = error_message(call);
    EXPECT_NE(message.find("from_blob"), std::string::npos) << message;
    EXPECT_NE(message.find(part), std::string::npos) << message;
  };
  expect_error([&] { fj::from_blob(nullptr, {2}, {}, DType::Float32, nullptr); }, "null");
  expect_error([&] { fj::from_blob(memory.data(), {2, 2}, {1}, DType::Int64, nullptr); }, "one stride per dim");
  expect_error([&] { fj::from_blob(memory.data(), {2, 2}, {-1, 1}, DType::Int64, nullptr); }, "negative strides");
  expect_error([&] { fj::from_blob(reinterpret_cast<char*>(memory.data()) + 4, {2}, {}, DType::Int64, nullptr); },
               "aligned");
  expect_error([&] { fj::from_blob(memory.data(), {2, 2}, {int64_t{1} << 62, 1}, DType::Int64, nullptr); },
               "span");
  expect_error([&] { fj::from_blob(memory.data(), {-2}, {}, DType::Int64, nullptr); }, "invalid shape");
}
