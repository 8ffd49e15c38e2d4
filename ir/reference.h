// The reference interpreter: evaluates a graph in double precision, one op at a time, straight
// from the op table's formulas and the C library. Tests compare compiled kernels against it.
#pragma once

#include <cmath>
#include <vector>

#include "ir/graph.h"

namespace fusejit::ir {

// Scatter `node`'s value from its inputs' values (of any element type: doubles, bounds).
template <class T>
std::vector<T> scatter(const Graph& graph, const GraphNode& node, const std::vector<T>& whole,
                       const std::vector<T>& part) {
  std::vector<T> out = whole;
  const Shape& shape = graph.nodes[node.inputs[1]].shape;
  for (size_t j = 0; j < part.size(); ++j)
    out[node.data.offset + strided_offset(shape, node.data.strides, static_cast<int64_t>(j))] = part[j];
  return out;
}

// The flat index into Gather `node`'s first input of its element `flat`, given `index` (the
// values of its second input).
int64_t gather_source(const Graph& graph, const GraphNode& node, int64_t flat, const std::vector<double>& index);
// The input of Concat `node` holding its element `flat`, and that element's flat index there.
std::pair<NodeId, int64_t> concat_source(const Graph& graph, const GraphNode& node, int64_t flat);

// The double-precision math backend for the op table's formulas. Bools are 0.0 / 1.0.
struct ReferenceMath {
  using Value = double;
  Value c(double value) { return value; }
  Value add(Value a, Value b) { return a + b; }
  Value sub(Value a, Value b) { return a - b; }
  Value mul(Value a, Value b) { return a * b; }
  Value div(Value a, Value b) { return a / b; }
  Value neg(Value a) { return -a; }
  Value abs(Value a);
  Value max(Value a, Value b);  // NaN-propagating; max(-0, +0) is +0, max(+0, -0) is -0
  Value min(Value a, Value b);
  Value sqrt(Value a);
  Value exp(Value a);
  Value expm1(Value a);
  Value log(Value a);
  Value log1p(Value a);
  Value sin(Value a);
  Value cos(Value a);
  Value tanh(Value a);
  Value sigmoid(Value a);
  Value gelu(Value a);  // x Phi(x), Phi the standard normal distribution
  Value pow(Value a, Value b);
  Value eq(Value a, Value b) { return a == b; }
  Value ne(Value a, Value b) { return a != b; }
  Value lt(Value a, Value b) { return a < b; }
  Value le(Value a, Value b) { return a <= b; }
  Value gt(Value a, Value b) { return a > b; }
  Value ge(Value a, Value b) { return a >= b; }
  Value select(Value cond, Value a, Value b) { return cond != 0 ? a : b; }
  Value to_float(Value a) { return a; }
  // Truncated, saturating at int64's ends, NaN to 0 (the kernels' fptosi.sat); an integer has
  // no -0, so -0.5 and -0 give +0.
  Value to_int64(Value a) {
    if (std::isnan(a)) return 0;
    if (a >= 0x1p63) return 0x1p63;  // INT64_MAX, as a double
    if (a < -0x1p63) return -0x1p63;
    return std::trunc(a) + 0.0;
  }
};

// One elementwise op on scalar operands.
double evaluate_scalar(OpCode op, const std::vector<double>& args);

// Element `flat` (row-major over the node's shape) of an Input node's strided view.
double read_input(const GraphNode& node, int64_t flat);

// The value of a generator op (Arange, Rand, Randn) at a flat index.
double generate(OpCode op, const OpParams& params, int64_t index);

// The graph's outputs, each as a contiguous row-major array.
std::vector<std::vector<double>> interpret(const Graph& graph);

}  // namespace fusejit::ir
