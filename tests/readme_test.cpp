// The README's promises, checked against the code: every row of "What fusejit rejects" throws
// exactly the message the table shows.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace fj = fusejit;
using fj::Tensor;

namespace {

std::string readme() {
  std::ifstream file(FUSEJIT_README);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// The README's section from `heading` to the next heading.
std::string section(const std::string& text, const std::string& heading) {
  size_t begin = text.find(heading);
  if (begin == std::string::npos) return "";
  size_t end = text.find("\n#", begin + heading.size());
  return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace

TEST(Readme, EveryRejectedMisuseThrowsItsDocumentedMessage) {
  const std::vector<std::function<void()>> misuses = {
      [] { fj::ones({3, 4}) + fj::ones({5}); },
      [] { fj::full({int64_t{1} << 31, 1}, 1) * fj::full({1, int64_t{1} << 31}, 2); },
      [] { fj::zeros({2, -1}); },
      [] { fj::tensor(std::vector<float>{1, 2, 3, 4, 5}, {2, 3}); },
      [] { fj::from_blob(nullptr, {3}); },
      [] { fj::arange(0, 10, 0); },
      [] { fj::arange(0, 10, -1); },
      [] { fj::exp(Tensor()); },
      [] { fj::sum(fj::ones({3, 4}), {2}); },
      [] { fj::sum(fj::ones({3, 4}), {1, -1}); },
      [] { fj::amax(fj::ones({0, 3}), {0}); },
      [] { fj::argmax(fj::ones({2, (int64_t{1} << 24) + 1}), 1); },
      [] { fj::layer_norm(fj::ones({2, 8}), {4}); },
      [] { fj::gelu(fj::ones({2}), "fast"); },
      [] { fj::ones({2}).item<float>(); },
      [] { fj::ones({2}).to_vector<bool>(); },
      [] { fj::ones({2}).size(1); },
      [] { fj::set_num_threads(0); },
      [] { fj::ones({int64_t{1} << 40}).eval(); },
      [] { fj::ones({2}).dump("ir"); },
      [] { fj::tensor({1, 2, 3, 4, 5, 6}, {2, 3}).view({4, 2}); },
      [] { fj::tensor({1, 2, 3, 4, 5, 6}, {2, 3}).t().view({6}); },
      [] { fj::tensor({1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 2); },
      [] { fj::tensor({1, 2, 3, 4, 5, 6}, {2, 3}).select(0, 2); },
      [] { fj::tensor({1, 2, 3, 4, 5, 6}, {2, 3}).expand({3, 3}); },
      [] { fj::tensor({1, 2, 3}, {3}).unsqueeze(1).expand({3, 4}).add_(1); },
      [] { fj::tensor({1, 2, 3}, {3}).add_(fj::ones({2, 3})); },
      [] { fj::cat({fj::ones({2, 3}), fj::ones({3, 2})}, 0); },
      [] { fj::index_select(fj::ones({4, 3}), 0, fj::tensor({4}, {1}).to(fj::DType::Int64)); },
      [] { fj::matmul(fj::ones({2, 3}), fj::ones({4, 5})); },
      [] { fj::matmul(fj::ones({2, 2, 3}), fj::ones({3, 3, 4})); },
      [] { fj::matmul(Tensor(2.0f), fj::ones({2, 3})); },
      [] { fj::linear(fj::ones({2, 3}), fj::ones({4, 5})); },
      [] { fj::linear(fj::ones({2, 3}), fj::ones({4, 3}), fj::ones({5})); },
      [] { fj::scaled_dot_product_attention(fj::ones({2, 5, 8}), fj::ones({2, 7, 9}), fj::ones({2, 7, 3})); },
      [] {
        fj::scaled_dot_product_attention(fj::ones({1, 2, 4}), fj::ones({1, 3, 4}), fj::ones({1, 3, 2}), fj::ones({2, 3}),
                                         true);
      },
  };
  std::string table = section(readme(), "### What fusejit rejects");
  ASSERT_FALSE(table.empty());
  size_t rows = 0;
  for (size_t at = table.find("\n| "); at != std::string::npos; at = table.find("\n| ", at + 1)) ++rows;
  EXPECT_EQ(rows, misuses.size() + 1) << "the table's rows (and its header) against the misuses here";
  for (const auto& misuse : misuses) {
    std::string message = fj::testing::error_message(misuse);
    EXPECT_NE(table.find("| `" + message + "` |"), std::string::npos)
        << "not in the README's table: " << message;
  }
}

TEST(Readme, ReductionsOfMoreThanSixtyFourDimsAreRejected) {
  EXPECT_NE(fj::testing::error_message([] { fj::sum(fj::ones(fj::Shape(65, 1))); }).find("sum: at most 64 dims"),
            std::string::npos);
  EXPECT_NE(readme().find("reductions take\n  tensors of at most 64 dims"), std::string::npos);
}
