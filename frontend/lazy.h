// Frontend internals shared with the tests: lowering pending tensors into a graph.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "fusejit/fusejit.h"
#include "ir/graph.h"

namespace fusejit::frontend {

// Guards the lazy nodes' inputs and values while graphs are built from them and results are
// bound back, so several threads may evaluate tensors that share history.
std::mutex& graph_mutex();

// The nodes that compute `roots`, in the order lower() numbers them: each after its inputs,
// evaluated nodes as leaves (their history is not followed). Call with graph_mutex() held;
// the pointers are valid only while it is held.
struct LazyOrder {
  std::vector<ir::Node*> nodes;
  std::vector<ir::Node*> roots;      // without repeats
  std::vector<ir::NodeId> outputs;   // each root's position in `nodes`
};
LazyOrder order_nodes(std::span<ir::Node* const> roots);

// The graph of `order`; evaluated nodes enter as Input leaves. Call with graph_mutex() held.
ir::Graph lower(const LazyOrder& order);

// The graph of `outputs` as they are now (for tests and tools).
ir::Graph graph_of(const std::vector<Tensor>& outputs);

// Elements per block of split full reductions (ir::split_reductions); 0 restores the
// default. Results depend on it, so tests force it small to check determinism across threads.
void set_reduction_chunk(int64_t elements);

}  // namespace fusejit::frontend
