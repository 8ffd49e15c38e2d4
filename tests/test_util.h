// Helpers shared by the test suites.
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "frontend/lazy.h"
#include "fusejit/fusejit.h"
#include "ir/reference.h"

namespace fusejit::testing {

// The tensor's value from the double-precision reference interpreter (does not evaluate it).
inline std::vector<double> reference(const Tensor& t) {
  return ir::interpret(frontend::graph_of({t}))[0];
}

inline std::vector<float> random_floats(int64_t count, uint32_t seed, float lo = -3, float hi = 3) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(count);
  for (float& v : values) v = dist(gen);
  return values;
}

inline Tensor random_tensor(const Shape& shape, uint32_t seed, float lo = -3, float hi = 3) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return tensor(random_floats(count, seed, lo, hi), shape);
}

// Distance in units in the last place between two floats (0 for equal, NaN==NaN, +0==-0).
inline int64_t ulp_distance(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : INT64_MAX;
  if (a == b) return 0;
  auto ordered = [](float f) {
    auto bits = static_cast<int64_t>(std::bit_cast<int32_t>(f));
    return bits < 0 ? INT32_MIN - bits : bits;
  };
  int64_t d = ordered(a) - ordered(b);
  return d < 0 ? -d : d;
}

// Every element within atol + rtol*|ref| of the reference (NaN where the reference is NaN).
inline void expect_matches_reference(const Tensor& t, double rtol, double atol,
                                     const std::string& what = "") {
  std::vector<double> expected = reference(t);
  std::vector<float> actual = t.to_vector<float>();
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < actual.size() && reported < 5; ++i) {
    double e = expected[i];
    double a = actual[i];
    bool ok = std::isnan(e) ? std::isnan(a)
              : std::isinf(e) ? a == e
                              : std::fabs(a - e) <= atol + rtol * std::fabs(e);
    if (!ok) {
      ADD_FAILURE() << what << " element " << i << ": got " << a << ", reference " << e;
      ++reported;
    }
  }
}

// The message of the fusejit::Error that f() throws, or "no error".
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

inline std::vector<uint32_t> bits_of(const std::vector<float>& values) {
  std::vector<uint32_t> bits;
  for (float v : values) bits.push_back(std::bit_cast<uint32_t>(v));
  return bits;
}

}  // namespace fusejit::testing
