// The lazy nodes that tensors hold: an op, its dtype and shape, its inputs, and — once
// evaluated — the storage holding its value. Evaluation drops a node's inputs, so a long
// history is freed as soon as it has been computed.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fusejit/core.h"
#include "ir/key.h"
#include "ir/ops.h"
#include "ir/shape.h"

namespace fusejit::ir {

// A block of memory holding tensor data, released through `release` when the last view dies.
class Storage {
 public:
  using Release = std::function<void(void* data, int64_t bytes)>;
  Storage(void* data, int64_t bytes, Release release)
      : data_(data), bytes_(bytes), release_(std::move(release)) {}
  ~Storage() {
    if (release_) release_(data_, bytes_);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  int64_t bytes() const { return bytes_; }

  // Scratch of the frontend's structure keys (under its mutex): the key `keyed` numbered this
  // storage `alias`, so inputs sharing storage are found without a search.
  uint64_t keyed = 0;
  uint32_t alias = 0;

 private:
  void* data_;
  int64_t bytes_;
  Release release_;
};

// A strided view of a storage.
struct View {
  std::shared_ptr<Storage> storage;
  Strides strides;     // in elements
  int64_t offset = 0;  // in elements
};

// Parameters of the non-formula ops (see FUSEJIT_SPECIAL_OPS).
struct OpParams {
  double value = 0;  // Constant: the value; Arange: start
  double step = 0;   // Arange
  uint64_t seed = 0;  // Rand, Randn
  uint64_t axes = 0;  // Reduce: bit d set = input dim d is reduced
  // Reduce, when nonzero: a partial reduction over blocks of `chunk` indices of the input's
  // first dim larger than 1, a reduced one (see split_reductions); that dim of the result
  // counts blocks.
  int64_t chunk = 0;
  int64_t dim = 0;  // Concat: the dim its inputs are joined along; Gather: the dim indexed;
                    // Attention: its flags (kAttentionCausal, kAttentionDivides)
  // Every field as a word, values by their bits: 0.0 and -0.0 (or two NaNs) are different
  // constants to fold, merge or key on. The one list of the fields; what follows derives from it.
  std::array<uint64_t, 6> words() const {
    return {std::bit_cast<uint64_t>(value), std::bit_cast<uint64_t>(step), seed, axes,
            static_cast<uint64_t>(chunk), static_cast<uint64_t>(dim)};
  }
  bool operator==(const OpParams& other) const { return words() == other.words(); }
  // Whether every field is zero (+0.0): the elementwise ops', written to keys as one byte.
  bool none() const { return words() == OpParams{}.words(); }
  void write_key(KeyWriter& key) const {
    key.put(none());
    if (!none())
      for (uint64_t word : words()) key.put(word);
  }
  uint64_t hash() const;
  // The fields op `op` uses, exactly: "0.5" (a constant's value), "start=0 step=1", "seed=7",
  // "dims=[1] chunk=16"; empty for ops without parameters.
  std::string text(OpCode op) const;
};

// Ops with a value supplied when their kernel runs rather than compiled in: a Scalar's value
// and a generator's seed. Keys leave that value out; passes never fold or merge such nodes.
inline bool has_run_time_value(OpCode op) {
  return op == OpCode::Scalar || op == OpCode::Rand || op == OpCode::Randn;
}
// The run-time value's bits: a Scalar's float32 (in the low 32 bits), a generator's seed.
uint64_t run_time_value(OpCode op, const OpParams& params);
// `params` without the run-time value: what a key holds.
OpParams compiled_params(OpCode op, const OpParams& params);
// Whether a float is compiled into kernels as a Constant: the values passes simplify by
// (x * 1, x + -0, x - 0), and 2, which LLVM makes x * 2 = x + x of (a cycle shorter in a
// dependent chain: chain7 ran 8% slower with 2 as a kernel argument), and -inf, which masks
// scores (ir::fuse_attention recognizes where(mask, scores, -inf)). Every other float is a
// Scalar.
bool compiles_in(float value);

struct Node {
  OpCode op = OpCode::Input;
  DType dtype = DType::Float32;
  Shape shape;
  std::vector<std::shared_ptr<Node>> inputs;
  OpParams params;
  // Set when evaluated (and from the start for Input nodes). A pending View node holds its
  // strides and offset into its input here, without storage; a Scatter those of its region.
  View value;
  // The value of an in-place update (Tensor::add_ and the like): the storage of the tensor it
  // updates, which the evaluation writes into when nothing else can observe the old value
  // (copy-on-write otherwise). Only the latest pending update of a tensor holds it.
  std::shared_ptr<Storage> write_into;
  // Being computed into `write_into` by an evaluation in flight: others that need this node
  // wait for it (the old value they would read is being overwritten).
  bool writing = false;
  // Ops between this node and evaluated values, along its longest pending path: 1 for a node
  // whose inputs are evaluated, 0 once evaluated. Bounds a lazy history (see
  // frontend/lazy.h, kMaxPendingDepth).
  std::atomic<uint32_t> depth = 1;
  // Scratch of the frontend's lowering (under its mutex): this node's position in the graph
  // numbered by lowering `lowering`. Saves a node-to-id map on every evaluation.
  uint64_t lowering = 0;
  int32_t lowered_id = -1;

  Node(OpCode op, DType dtype, Shape shape, std::vector<std::shared_ptr<Node>> inputs = {},
       OpParams params = {})
      : op(op), dtype(dtype), shape(std::move(shape)), inputs(std::move(inputs)), params(params) {
    uint32_t deepest = 0;
    for (const auto& input : this->inputs) deepest = std::max(deepest, input->depth.load(std::memory_order_relaxed));
    depth.store(deepest + 1, std::memory_order_relaxed);
  }
  // Frees a chain of any length without recursion.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  bool evaluated() const { return value.storage != nullptr; }
};

// A Float32 leaf of `shape` holding `value`: a Constant or a Scalar (see compiles_in).
std::shared_ptr<Node> float_leaf(Shape shape, float value);

}  // namespace fusejit::ir
