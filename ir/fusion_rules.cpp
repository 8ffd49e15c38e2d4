#include "ir/fusion_rules.h"

namespace fusejit::ir {
namespace {

bool is_reduction_pattern(const GraphNode& node) {
  return op_info(node.op).pattern == FusionPattern::Reduction;
}

std::string space_text(const Space& space) {
  std::string text = shape_string(space.domain);
  if (space.axes) text += " reducing dims " + axes_string(space.axes);
  if (space.chunk) text += " in chunks of " + std::to_string(space.chunk);
  return text;
}

}  // namespace

Space space_of(const Graph& graph, NodeId id) {
  const GraphNode& node = graph.nodes[id];
  if (is_reduction_pattern(node)) return {graph.nodes[node.inputs[0]].shape, node.params.axes, node.params.chunk};
  return {node.shape, 0, 0};
}

bool reduces_trailing_dims(const Space& space) {
  bool reduced_seen = false;
  for (size_t d = 0; d < space.domain.size(); ++d) {
    if (space.domain[d] == 1) continue;
    bool reduced = reduces_dim(space.axes, d);
    if (reduced_seen && !reduced) return false;
    reduced_seen = reduced_seen || reduced;
  }
  return true;
}

FusionDecision within_reduction_stages(const Joining& node, const FusionOptions& options) {
  if (node.stage > options.max_reduction_stages) return FusionDecision::refuse(Refusal::TooManyStages);
  return FusionDecision::fuse();
}

// A kernel that reduces is never cut into runs afterwards (elementwise ones are, see
// fusion.cpp), so its size is bounded as it grows.
FusionDecision within_kernel_size(const Group& into, const Joining& node, const FusionOptions& options) {
  bool reduces = into.reduces() || is_reduction_pattern(node.node);
  if (reduces && into.size + 1 > options.max_ops_per_kernel) return FusionDecision::refuse(Refusal::TooManyOps);
  return FusionDecision::fuse();
}

FusionDecision computes_per_row(const Group& into, const Joining& node) {
  if (is_reduction_pattern(node.node) || !into.reduces()) return FusionDecision::refuse(Refusal::OtherSpace);
  const Space& own = into.space;
  const Shape& shape = node.node.shape;
  if (shape != reduced_shape(own.domain, own.axes, true) && shape != reduced_shape(own.domain, own.axes, false))
    return FusionDecision::refuse(Refusal::OtherSpace);
  if (into.single_pass()) return FusionDecision::refuse(Refusal::SinglePassRowValue);
  return FusionDecision::fuse(true);
}

FusionDecision reduces_alike(const Group& into, const Joining& node) {
  if (into.reduces() && (node.space.axes != into.space.axes || node.space.chunk != into.space.chunk))
    return FusionDecision::refuse(Refusal::OtherReduction);
  bool sweeps_again = reduces_trailing_dims(node.space) && node.space.chunk == 0;
  if (!sweeps_again && node.reads_row_value) return FusionDecision::refuse(Refusal::RowValueInSinglePass);
  return FusionDecision::fuse(true);
}

FusionDecision computes_per_element(const Group& into, const Joining& node) {
  if (into.single_pass())
    return node.reads_row_value ? FusionDecision::refuse(Refusal::RowValueInSinglePass) : FusionDecision::fuse();
  if (!node.row_values_broadcast_back) return FusionDecision::refuse(Refusal::RowValueNotBroadcast);
  return FusionDecision::fuse();
}

FusionDecision one_matmul(const Group& into, const Joining& node) {
  if (is_product(node.node.op) && (into.contracts || into.reduces())) return FusionDecision::refuse(Refusal::OneMatMul);
  if (into.contracts && is_reduction_pattern(node.node)) return FusionDecision::refuse(Refusal::OneMatMul);
  return FusionDecision::fuse();
}

FusionDecision can_join(const Group& into, const Joining& node, const FusionOptions& options) {
  bool stored_whole = into.reduces() || into.contracts;
  bool node_stored_whole = is_reduction_pattern(node.node) || is_product(node.node.op);
  if ((node.stores_into_concat && stored_whole) || (into.stores_into_concat && node_stored_whole))
    return FusionDecision::refuse(Refusal::ConcatInReduction);
  if (FusionDecision d = one_matmul(into, node); !d) return d;
  if (FusionDecision d = within_reduction_stages(node, options); !d) return d;
  if (FusionDecision d = within_kernel_size(into, node, options); !d) return d;
  if (node.space.domain != into.space.domain) return computes_per_row(into, node);
  if (is_reduction_pattern(node.node)) return reduces_alike(into, node);
  return computes_per_element(into, node);
}

FusionDecision can_merge(const Group& into, const Group& other, const std::function<bool()>& dependent,
                         const FusionOptions& options) {
  if (into.space.domain != other.space.domain) return FusionDecision::refuse(Refusal::OtherSpace);
  if (dependent()) return FusionDecision::refuse(Refusal::Dependent);
  if ((into.stores_into_concat && (other.reduces() || other.contracts)) ||
      (other.stores_into_concat && (into.reduces() || into.contracts)))
    return FusionDecision::refuse(Refusal::ConcatInReduction);
  if ((into.contracts && (other.contracts || other.reduces())) || (other.contracts && into.reduces()))
    return FusionDecision::refuse(Refusal::OneMatMul);
  if (into.reduces() && other.reduces() &&
      (into.space.axes != other.space.axes || into.space.chunk != other.space.chunk))
    return FusionDecision::refuse(Refusal::OtherReduction);
  if ((into.reduces() || other.reduces()) && into.size + other.size > options.max_ops_per_kernel)
    return FusionDecision::refuse(Refusal::TooManyOps);
  return FusionDecision::fuse();
}

std::string explain(const FusionDecision& decision, const Space& consumer, const Space& producer,
                    const FusionOptions& options, bool merging) {
  std::string who = merging ? "the consumer's kernel" : "the consumer";
  switch (decision.refusal) {
    case Refusal::None: return "fused";
    case Refusal::Eager: return "fusion is off (eager): every op is its own kernel";
    case Refusal::TooManyStages:
      return "the consumer would be reduction stage " + std::to_string(options.max_reduction_stages + 1) +
             " of a row kernel, which sweeps each row once per stage (at most " +
             std::to_string(options.max_reduction_stages) + ")";
    case Refusal::TooManyOps:
      return "a kernel that reduces holds at most " + std::to_string(options.max_ops_per_kernel) + " ops";
    case Refusal::OtherSpace:
      return who + " iterates over " + space_text(consumer) + ", the producer's kernel over " +
             space_text(producer);
    case Refusal::SinglePassRowValue:
      return "the consumer is a per-row value of " + space_text(producer) +
             ", which is swept once (only a row reduction sweeps a row again)";
    case Refusal::OtherReduction:
      return who + " reduces " + space_text(consumer) + ", the producer's kernel " + space_text(producer);
    case Refusal::RowValueInSinglePass:
      return "the consumer reads a reduction's result in a kernel over " + space_text(producer) +
             ", which is swept once (only a row reduction sweeps a row again)";
    case Refusal::RowValueNotBroadcast:
      return "the consumer reads a per-row value that does not broadcast back along dims " +
             axes_string(producer.axes);
    case Refusal::Cycle: return "fusing would make kernels depend on each other in a cycle";
    case Refusal::ReadsThroughView:
      return "reads the value from memory (through a view or a concatenation): it is stored whole first";
    case Refusal::OverwritesPart:
      return "an in-place update through a view is stored over the value it updates, by a later kernel";
    case Refusal::ConcatInReduction:
      return "a part of a concatenation is stored by an elementwise kernel, never a reduction's or a matmul's";
    case Refusal::OneMatMul:
      return "a matmul or attention kernel holds one of them and its elementwise epilogue, no other matmul, attention or reduction";
    case Refusal::Dependent:
      return "the producer's and the consumer's kernels could not merge: one reads the other's values";
    case Refusal::ChainCut:
      return "an elementwise kernel holds at most " + std::to_string(options.max_ops_per_kernel) +
             " ops: the chain is cut here";
  }
  return "";
}

}  // namespace fusejit::ir
