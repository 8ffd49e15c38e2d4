#include "ir/passes.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <optional>
#include <unordered_set>

#include "ir/reference.h"

namespace fusejit::ir {
namespace {

// By bits: -0.0 is not 0.0.
bool is_constant(const Graph& graph, NodeId id, double value) {
  const GraphNode& node = graph.nodes[id];
  return node.op == OpCode::Constant &&
         std::bit_cast<uint64_t>(node.params.value) == std::bit_cast<uint64_t>(value);
}

// Builds `out` (empty) from `graph` node by node, in order: `visit(id, node)` receives a copy of
// node `id` with its inputs renamed into `out`, and returns the node of `out` that stands for it
// (one it added, or an earlier one; -1 for a node nothing refers to). Outputs are renamed alike.
template <class Visit>
void rewrite(const Graph& graph, Graph& out, Visit&& visit) {
  out.nodes.reserve(graph.nodes.size());
  std::vector<NodeId> renamed(graph.nodes.size(), -1);
  for (size_t id = 0; id < graph.nodes.size(); ++id) {
    GraphNode node = graph.nodes[id];
    for (NodeId& input : node.inputs) input = renamed[input];
    renamed[id] = visit(id, std::move(node));
  }
  for (NodeId output : graph.outputs) out.outputs.push_back(renamed[output]);
  out.in_place = graph.in_place;
}

}  // namespace

Graph eliminate_dead_code(const Graph& graph) {
  std::vector<bool> live(graph.nodes.size(), false);
  for (NodeId output : graph.outputs) live[output] = true;
  for (size_t id = graph.nodes.size(); id-- > 0;)
    if (live[id])
      for (NodeId input : graph.nodes[id].inputs) live[input] = true;
  Graph out;
  rewrite(graph, out, [&](size_t id, GraphNode node) {
    return live[id] ? out.add(std::move(node)) : NodeId{-1};
  });
  return out;
}

namespace {

// Hashing and equality of the nodes of one graph, by everything that makes two nodes compute
// the same value (their inputs already canonical).
struct SameValue {
  const Graph* graph;
  bool operator()(NodeId x, NodeId y) const {
    const GraphNode& a = graph->nodes[x];
    const GraphNode& b = graph->nodes[y];
    return a.op == b.op && a.dtype == b.dtype && a.shape == b.shape && a.inputs == b.inputs &&
           a.params == b.params && a.data.storage == b.data.storage &&
           a.data.strides == b.data.strides && a.data.offset == b.data.offset;
  }
  size_t operator()(NodeId id) const {
    const GraphNode& n = graph->nodes[id];
    uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&](uint64_t v) { h = (h ^ v) * 0x100000001b3ull; };
    mix(static_cast<uint64_t>(n.op));
    for (int64_t d : n.shape) mix(static_cast<uint64_t>(d));
    for (NodeId i : n.inputs) mix(static_cast<uint64_t>(i));
    mix(n.params.hash());
    mix(reinterpret_cast<uintptr_t>(n.data.storage.get()));
    return h;
  }
};

// The constant `node` folds to, if its inputs are all constants and kernels would compute
// exactly the rounded double result (see Accuracy): folding never changes a value's bits.
std::optional<GraphNode> fold(const Graph& graph, const GraphNode& node) {
  // A view or gather of a value broadcast over its shape (a Constant, a Scalar) is that value
  // over the result's shape; a Scalar keeps its source, which binds its run-time value.
  if ((node.op == OpCode::View || node.op == OpCode::Gather) &&
      op_info(graph.nodes[node.inputs[0]].op).pattern == FusionPattern::Broadcast) {
    GraphNode value = graph.nodes[node.inputs[0]];
    value.shape = node.shape;
    return value;
  }
  // A copy stays: it is what stores a value into a concatenation.
  if (!is_elementwise(node.op) || !op_info(node.op).accuracy.exact() || node.op == OpCode::Copy) return std::nullopt;
  std::vector<double> args;
  for (NodeId input : node.inputs) {
    if (graph.nodes[input].op != OpCode::Constant) return std::nullopt;
    args.push_back(graph.nodes[input].params.value);
  }
  double value = evaluate_scalar(node.op, args);
  if (node.dtype == DType::Float32) value = static_cast<float>(value);
  return GraphNode{OpCode::Constant, node.dtype, node.shape, {}, {.value = value}, {}};
}

// The existing node that `node` reduces to by an algebraic identity, if any.
std::optional<NodeId> simplify(const Graph& graph, const GraphNode& node) {
  auto same_type = [&](NodeId id) {
    return graph.nodes[id].shape == node.shape && graph.nodes[id].dtype == node.dtype;
  };
  const auto& in = node.inputs;
  switch (node.op) {
    case OpCode::Mul:
      if (is_constant(graph, in[1], 1) && same_type(in[0])) return in[0];
      if (is_constant(graph, in[0], 1) && same_type(in[1])) return in[1];
      break;
    // x + -0 and x - +0 are x for every x; x + 0 is not (-0 + 0 is +0).
    case OpCode::Add:
      if (is_constant(graph, in[1], -0.0) && same_type(in[0])) return in[0];
      if (is_constant(graph, in[0], -0.0) && same_type(in[1])) return in[1];
      break;
    case OpCode::Sub:
    case OpCode::Div:
      if (is_constant(graph, in[1], node.op == OpCode::Sub ? 0 : 1) && same_type(in[0])) return in[0];
      break;
    case OpCode::Neg:
      if (graph.nodes[in[0]].op == OpCode::Neg) return graph.nodes[in[0]].inputs[0];
      break;
    default:
      break;
  }
  return std::nullopt;
}

}  // namespace

Graph canonicalize(const Graph& graph) {
  Graph out;
  SameValue same{&out};
  std::unordered_set<NodeId, SameValue, SameValue> seen(graph.nodes.size(), same, same);
  // A replacement must be a value a view may read in its place: in contiguous memory or
  // computed, not itself a view (a view's index map does not compose with another's).
  auto readable_in_place = [&](NodeId id) {
    const GraphNode& candidate = out.nodes[id];
    return candidate.op != OpCode::View &&
           (candidate.op != OpCode::Input || is_contiguous(candidate.shape, candidate.data.strides));
  };
  rewrite(graph, out, [&](size_t, GraphNode node) -> NodeId {
    std::optional<NodeId> existing = simplify(out, node);
    if (existing && readable_in_place(*existing)) return *existing;
    if (std::optional<GraphNode> constant = fold(out, node)) node = std::move(*constant);
    // Two run-time values equal now may differ in the next evaluation of the cached schedule.
    // A copy is a node of its own on purpose (an update's, a part of an assembled node): merged,
    // the two parts of a scatter became one node stored over itself (a cycle of kernels).
    if (has_run_time_value(node.op) || node.op == OpCode::Copy) return out.add(std::move(node));
    NodeId added = out.add(std::move(node));
    auto [it, inserted] = seen.insert(added);
    if (!inserted) out.nodes.pop_back();
    return *it;
  });
  return out;
}

Graph contiguous_outputs(const Graph& graph) {
  Graph out = graph;
  for (NodeId& output : out.outputs) {
    const GraphNode& node = out.nodes[output];
    if (node.op == OpCode::View || (node.op == OpCode::Input && !is_contiguous(node.shape, node.data.strides)))
      output = out.add({OpCode::Copy, node.dtype, node.shape, {output}, {}, {}});
  }
  return out;
}

namespace {

// Rows of the first split dim per block when `node` (a reduction of `domain`) should be split,
// else 0.
int64_t split_rows(const GraphNode& node, const Shape& domain, int64_t chunk) {
  size_t split = first_split_dim(domain);
  if (!is_reduction(node.op) || reduction_accumulation(node.op) == Accumulation::Product || node.params.chunk ||
      split == domain.size() ||
      !reduces_dim(node.params.axes, split))
    return 0;
  int64_t count = numel(domain);
  int64_t rows = domain[split];
  if (numel(node.shape) == 1) {
    if (count <= chunk) return 0;
    rows = std::max<int64_t>(1, chunk / (count / domain[split]));
  } else {
    // Leading reduced dims, then only kept ones (a column reduction)?
    size_t d = split;
    while (d < domain.size() && reduces_dim(node.params.axes, d)) ++d;
    for (; d < domain.size(); ++d)
      if (reduces_dim(node.params.axes, d) && domain[d] != 1) return 0;
    if (count <= 2 * chunk) return 0;
    rows = std::max<int64_t>(16, (domain[split] + 63) / 64);
  }
  return rows < domain[split] ? rows : 0;
}

}  // namespace

Graph split_reductions(const Graph& graph, int64_t chunk) {
  Graph out;
  rewrite(graph, out, [&](size_t, GraphNode node) {
    Shape domain = is_reduction(node.op) ? out.nodes[node.inputs[0]].shape : node.shape;
    if (int64_t rows = split_rows(node, domain, chunk)) {
      OpParams params = node.params;
      params.chunk = rows;
      node.inputs = {out.add({node.op, node.dtype, chunked_shape(domain, params.axes, rows),
                              node.inputs, params, {}})};
    }
    return out.add(std::move(node));
  });
  return out;
}

}  // namespace fusejit::ir
