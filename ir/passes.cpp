#include "ir/passes.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>
#include <unordered_set>
#include <utility>

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
// A visit that reads earlier nodes other than its inputs takes the renaming as a third argument
// (`renamed[old id]` is the node of `out` that stands for it).
template <class Visit>
void rewrite(const Graph& graph, Graph& out, Visit&& visit) {
  out.nodes.reserve(graph.nodes.size());
  std::vector<NodeId> renamed(graph.nodes.size(), -1);
  for (size_t id = 0; id < graph.nodes.size(); ++id) {
    GraphNode node = graph.nodes[id];
    for (NodeId& input : node.inputs) input = renamed[input];
    if constexpr (std::is_invocable_v<Visit, size_t, GraphNode, const std::vector<NodeId>&>)
      renamed[id] = visit(id, std::move(node), std::as_const(renamed));
    else
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

namespace {

struct AttentionMatch {
  NodeId q, keys_transposed, v, scale = -1, mask = -1;
  bool divides = false;
};

// The attention whose final product is `id`, if the nodes below it form one (see fuse_attention).
std::optional<AttentionMatch> match_attention(const Graph& graph, const std::vector<int32_t>& uses, NodeId id) {
  auto node = [&](NodeId n) -> const GraphNode& { return graph.nodes[n]; };
  auto only_here = [&](NodeId n, int32_t readers) { return uses[n] == readers; };
  auto is_value = [&](NodeId n) {
    return op_info(node(n).op).pattern == FusionPattern::Broadcast && numel(node(n).shape) == 1;
  };
  const GraphNode& product = node(id);
  if (product.op != OpCode::MatMul) return std::nullopt;
  NodeId weights = product.inputs[0];
  // e * (1 / sum(e, -1, keepdim)), either order.
  const GraphNode& normalize = node(weights);
  if (normalize.op != OpCode::Mul || !only_here(weights, 1)) return std::nullopt;
  NodeId e = normalize.inputs[0], reciprocal = normalize.inputs[1];
  if (node(e).op != OpCode::Exp) std::swap(e, reciprocal);
  size_t rank = product.shape.size();
  uint64_t last = uint64_t{1} << (rank - 1);
  auto row_reduction = [&](NodeId n, OpCode op, NodeId of) {
    return node(n).op == op && node(n).inputs[0] == of && node(n).params.axes == last && node(n).params.chunk == 0 &&
           node(n).shape.size() == rank && only_here(n, 1);
  };
  if (node(e).op != OpCode::Exp || !only_here(e, 2) || node(reciprocal).op != OpCode::Div || !only_here(reciprocal, 1) ||
      !is_constant(graph, node(reciprocal).inputs[0], 1.0) || !row_reduction(node(reciprocal).inputs[1], OpCode::Sum, e))
    return std::nullopt;
  NodeId shifted = node(e).inputs[0];
  if (node(shifted).op != OpCode::Sub || !only_here(shifted, 1)) return std::nullopt;
  NodeId scores = node(shifted).inputs[0];
  if (!row_reduction(node(shifted).inputs[1], OpCode::Amax, scores) || !only_here(scores, 2)) return std::nullopt;
  // A = P, P · c, c · P or P / c, P = matmul(q, kᵀ) of the scores' shape, read only by A.
  auto scaled_scores = [&](NodeId scaled, int32_t readers) -> std::optional<AttentionMatch> {
    if (!only_here(scaled, readers)) return std::nullopt;
    AttentionMatch match{};
    NodeId qk = scaled;
    const GraphNode& a = node(scaled);
    if (a.op == OpCode::Mul || a.op == OpCode::Div) {
      int value_side = is_value(a.inputs[1]) ? 1 : a.op == OpCode::Mul && is_value(a.inputs[0]) ? 0 : -1;
      if (value_side < 0) return std::nullopt;
      match.scale = a.inputs[value_side];
      match.divides = a.op == OpCode::Div;
      qk = a.inputs[1 - value_side];
      if (!only_here(qk, 1)) return std::nullopt;
    }
    if (node(qk).op != OpCode::MatMul || node(qk).shape != node(scores).shape) return std::nullopt;
    match.q = node(qk).inputs[0];
    match.keys_transposed = node(qk).inputs[1];
    return match;
  };
  const GraphNode& x = node(scores);
  std::optional<AttentionMatch> match;
  if (x.op == OpCode::Add && x.inputs[0] != x.inputs[1]) {
    for (int side : {0, 1})
      if (!match && (match = scaled_scores(x.inputs[side], 1))) match->mask = x.inputs[1 - side];
  } else if (x.op == OpCode::Where && is_constant(graph, x.inputs[2], -std::numeric_limits<double>::infinity())) {
    if ((match = scaled_scores(x.inputs[1], 1))) match->mask = x.inputs[0];
  }
  if (!match && !(match = scaled_scores(scores, 2))) return std::nullopt;
  match->v = product.inputs[1];
  return match;
}

// `id` read at shape `to` with `strides_over_source`: a broadcast op (a constant) is itself at
// that shape; an input or a view addresses its source's memory anew with those strides; any other
// value is read through a View node over it.
NodeId view_as(Graph& out, NodeId id, const Shape& to, const Strides& strides_over_source) {
  GraphNode node = out.nodes[id];
  if (op_info(node.op).pattern == FusionPattern::Broadcast) {
    node.shape = to;
    return out.add(std::move(node));
  }
  if (node.op == OpCode::Input || node.op == OpCode::View) {
    node.shape = to;
    node.data.strides = strides_over_source;
    return out.add(std::move(node));
  }
  return out.add({OpCode::View, node.dtype, to, {id}, {}, {nullptr, strides_over_source, 0}});
}

// The strides a node's elements are addressed by: its view's, or row-major.
Strides strides_of(const GraphNode& node) {
  return node.op == OpCode::Input || node.op == OpCode::View ? node.data.strides : contiguous_strides(node.shape);
}

}  // namespace

Graph fuse_attention(const Graph& graph) {
  std::vector<int32_t> uses = graph.use_counts();
  Graph out;
  rewrite(graph, out, [&](size_t id, GraphNode node, const std::vector<NodeId>& renamed) {
    std::optional<AttentionMatch> match = match_attention(graph, uses, static_cast<NodeId>(id));
    if (!match) return out.add(std::move(node));
    const GraphNode& keys_transposed = out.nodes[renamed[match->keys_transposed]];
    size_t rank = node.shape.size();
    Shape keys_shape = keys_transposed.shape;
    std::swap(keys_shape[rank - 1], keys_shape[rank - 2]);
    Strides keys_strides = strides_of(keys_transposed);
    std::swap(keys_strides[rank - 1], keys_strides[rank - 2]);
    NodeId keys = view_as(out, renamed[match->keys_transposed], keys_shape, keys_strides);
    NodeId scale = match->scale >= 0 ? view_as(out, renamed[match->scale], {}, {})
                                     : out.add({OpCode::Constant, DType::Float32, {}, {}, {.value = 1.0}, {}});
    std::vector<NodeId> inputs{renamed[match->q], keys, renamed[match->v], scale};
    if (match->mask >= 0) {
      const GraphNode& mask = out.nodes[renamed[match->mask]];
      Shape scores = out.nodes[renamed[match->q]].shape;
      scores[rank - 1] = keys_shape[rank - 2];
      inputs.push_back(mask.shape == scores
                           ? renamed[match->mask]
                           : view_as(out, renamed[match->mask], scores,
                                     broadcast_strides(mask.shape, strides_of(mask), scores)));
    }
    OpParams params{.dim = match->divides ? kAttentionDivides : 0};
    return out.add({OpCode::Attention, DType::Float32, node.shape, std::move(inputs), params, {}});
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
