// The fuzzer's reference: for every element of a graph's outputs, the set of results a correct
// float32 implementation may produce, as an interval (plus "may be NaN").
//
// The double-precision interpreter alone is no oracle for float32 kernels: a cancellation or an
// overflow that float32 suffers and double does not turns a few ULP into any difference at all,
// and a fixed tolerance is either blind to garbage or fails correct kernels. Here every op is
// evaluated in interval arithmetic over the op table's formulas, each primitive widened by the
// error the kernels are allowed (correctly rounded + - * / sqrt, the documented ULP bounds of the
// vector math, the worst-case error of a sum in any order), then rounded outward to float. An
// element that is well-conditioned gets a tight interval (often a single float); one whose value
// float32 cannot pin down gets a wide one. Comparisons whose operands' intervals overlap may go
// either way, so `where` joins both branches there.
#pragma once

#include <vector>

#include "ir/graph.h"

namespace fusejit::fuzz {

struct Bound {
  double lo, hi;  // the non-NaN results lie in [lo, hi]; none when lo > hi
  bool nan;       // NaN is a possible result
  bool allows(double value) const;
};

// One vector per graph output, in row-major order.
std::vector<std::vector<Bound>> reference_bounds(const ir::Graph& graph);

}  // namespace fusejit::fuzz
