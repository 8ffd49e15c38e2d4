// Frontend internals shared with the tests: lowering pending tensors into a graph. The lazy
// nodes are guarded by the graph mutex (runtime/process.h).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "fusejit/fusejit.h"
#include "ir/graph.h"
#include "ir/layout.h"

namespace fusejit::frontend {

// What a Tensor handle and its copies share: the node of its current value, which an in-place
// op replaces. A tensor and the views taken of it share a Base: the whole tensor's current
// value, which an in-place update through any of them replaces, and from which every other
// member's node is then derived again (so each sees the update).
struct TensorCell;
struct Base {
  std::shared_ptr<ir::Node> node;
  std::vector<std::weak_ptr<TensorCell>> members;
};
struct TensorCell {
  std::shared_ptr<ir::Node> node;
  std::shared_ptr<Base> base;  // set once a view of the tensor is taken, or the tensor is one
  ir::Layout layout;           // with a base: this tensor's elements among the base's
};

struct CellAccess {
  static TensorCell& of(const Tensor& t) { return *t.cell_; }
  static const std::shared_ptr<TensorCell>& shared(const Tensor& t) { return t.cell_; }
};

// The layout of `x` in the space its views address: its elements among its base's, or (no view
// taken yet) its node's layout. Call with the graph mutex held.
ir::Layout source_layout(const Tensor& x);

// Points every live member of `base` but `except` at its elements of the base's current node.
// Call with the graph mutex held.
void derive_members(Base& base, const TensorCell* except);

// `node` as `dtype`: itself, or a conversion (Bool counts as 0/1; a float converts into Int64
// truncated and saturated, NaN to 0, into Bool as "nonzero"; Int64 and Bool convert through
// Float32).
std::shared_ptr<ir::Node> cast(std::shared_ptr<ir::Node> node, DType dtype);

// "f32[2,3]": how errors name a tensor.
inline std::string describe(const Tensor& x) { return dtype_name(x.dtype()) + ir::shape_string(x.sizes()); }

// `x`, when it is defined; else Error "<op>: <what> is an undefined tensor".
inline const Tensor& defined_or_throw(const char* op, const Tensor& x, const char* what = "the input") {
  if (!x.defined()) throw Error(std::string(op) + ": " + what + " is an undefined tensor");
  return x;
}

// `x`'s elements read through `layout` (in source_layout's space), a view of `x` like those
// Tensor's view members make; the caller has checked that it stays within `x`.
Tensor strided_view(const Tensor& x, ir::Layout layout);

// A new node holding `node`'s value (Copy): contiguous whatever `node`'s layout, and a node of
// its own (an update's, which takes the write target; a concatenation's part).
std::shared_ptr<ir::Node> copy_of(std::shared_ptr<ir::Node> node);

// A pending result more than this many ops deep has its operands evaluated first, so a lazy
// history that is never evaluated (x = x * 0.9f + g in a loop) stays bounded in memory and
// in the compile work of its evaluation, and the same structure recurs (its schedule cached).
inline constexpr uint32_t kMaxPendingDepth = 1024;

// The nodes that compute `roots`, in the order lower() numbers them: each after its inputs,
// evaluated nodes as leaves (their history is not followed). Call with the graph mutex held;
// the pointers are valid only while it is held.
struct LazyOrder {
  std::vector<ir::Node*> nodes;
  std::vector<ir::Node*> roots;      // without repeats
  std::vector<ir::NodeId> outputs;   // each root's position in `nodes`
  bool writing = false;              // some node is being written in place (ir::Node::writing)
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
