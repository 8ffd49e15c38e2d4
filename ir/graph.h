// The flat graph that passes work on: nodes in topological order, inputs by index.
//
// Built at evaluation from the pending lazy nodes; evaluated nodes enter it as Input leaves
// that carry their data.
#pragma once

#include <cstdint>
#include <string>
#include <span>
#include <vector>

#include "ir/node.h"

namespace fusejit::ir {

using NodeId = int32_t;

struct GraphNode {
  OpCode op = OpCode::Input;
  DType dtype = DType::Float32;
  Shape shape;
  std::vector<NodeId> inputs;
  OpParams params;
  View data;  // Input: its data; View: strides and offset into its input; Scatter: its region's
  // Ops with a run-time value (has_run_time_value): the node of the lowered graph, before any
  // pass, whose value it is. A cached schedule reads each new value from there.
  NodeId source = -1;

  bool is_leaf() const { return op_info(op).kind == OpKind::Leaf; }
};

struct Graph {
  std::vector<GraphNode> nodes;
  std::vector<NodeId> outputs;
  // Per output, or empty for none: an in-place update, which the evaluation will likely write
  // over memory its kernel has just read (so its stores should go through the cache).
  std::vector<bool> in_place;

  NodeId add(GraphNode node) {
    nodes.push_back(std::move(node));
    return static_cast<NodeId>(nodes.size() - 1);
  }
  // Number of consumers of each node (graph outputs count as one each).
  std::vector<int32_t> use_counts() const;
};

// Nodes assembled in memory from parts that the parts' kernels store: Concat and Scatter.
inline bool is_assembled(OpCode op) { return op == OpCode::Concat || op == OpCode::Scatter; }
// Where part `k` (input k) of assembled node `node` lies in its memory: element strides over
// the part's shape, and an offset. A Scatter's second part overwrites the first there.
struct PartRegion {
  Strides strides;
  int64_t offset = 0;
};
PartRegion part_region(const Graph& graph, const GraphNode& node, size_t k);

// Stable text form: one line per node, `%3 = mul(%1, %2) : f32[4096,4096]`.
std::string print(const Graph& graph);
std::string describe_node(const Graph& graph, NodeId id);  // the right-hand side of one line

// Throws InternalError naming the node when the graph breaks a typing or ordering rule.
void verify(const Graph& graph);

// The dtype and shape an op produces from its inputs, or an Error naming the op and shapes.
struct TypedShape {
  DType dtype;
  Shape shape;
};
struct OperandType {  // refers to a shape that outlives the call
  DType dtype;
  const Shape* shape;
};
TypedShape infer_type(OpCode op, std::span<const OperandType> inputs);

}  // namespace fusejit::ir
