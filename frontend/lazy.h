// Frontend internals shared with the tests: lowering pending tensors into a graph. The lazy
// nodes are guarded by the graph mutex (runtime/process.h).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "fusejit/fusejit.h"
#include "ir/graph.h"

namespace fusejit::frontend {

// The nodes that compute `roots`, in the order lower() numbers them: each after its inputs,
// evaluated nodes as leaves (their history is not followed). Call with the graph mutex held;
// the pointers are valid only while it is held.
struct LazyOrder {
  std::vector<ir::Node*> nodes;
  std::vector<ir::Node*> roots;      // without repeats
  std::vector<ir::NodeId> outputs;   // each root's position in `nodes`
};
LazyOrder order_nodes(std::span<ir::Node* const> roots);

// Whether `node` enters a graph as an Input leaf: evaluated, or a view of an evaluated node.
// Call with the graph mutex held.
bool lowers_to_input(const ir::Node& node);
// The data such a node reads: its value, or the view's strides over its input's storage.
ir::View input_data(const ir::Node& node);

// The graph of `order`; evaluated nodes enter as Input leaves. Call with the graph mutex held.
ir::Graph lower(const LazyOrder& order);

// The graph of `outputs` as they are now (for tests and tools).
ir::Graph graph_of(const std::vector<Tensor>& outputs);

// Elements per block of split full reductions (ir::split_reductions); 0 restores the
// default. Results depend on it, so tests force it small to check determinism across threads.
void set_reduction_chunk(int64_t elements);

}  // namespace fusejit::frontend
