// The fusion rules: whether a node may compute in a kernel in the making, and whether two of
// them may merge. Each rule is a named predicate returning a decision that says why it refuses
// (in the spirit of XLA's FusionDecision); ir/fusion.cpp walks the graph and asks them, and the
// `fused` dump prints each refusal at a kernel boundary as
// `not fused: <producer> -> <consumer>: <reason>`. Rules ask an op's FusionPattern, not the op.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ir/kernel.h"

namespace fusejit::ir {

// The space a node iterates over: its shape, or a reduction's input shape and reduced dims.
struct Space {
  Shape domain;
  uint64_t axes = 0;
  int64_t chunk = 0;
};
Space space_of(const Graph& graph, NodeId id);

// Whether the reduced dims (those larger than 1) come after every kept dim larger than 1.
bool reduces_trailing_dims(const Space& space);

// A kernel in the making.
struct Group {
  Space space;
  bool rows = false;           // a reduction over the trailing dims: may hold per-row values
  std::vector<int32_t> reads;  // the groups whose values it reads
  int32_t size = 0;            // nodes
  bool stores_into_concat = false;  // stores parts of a concatenation (strided stores)
  bool contracts = false;           // holds a matmul or an attention (its other nodes: the epilogue)

  bool reduces() const { return space.axes != 0; }
  // Only a row reduction sweeps each row more than once (once per reduction stage), with
  // per-row values computed between the sweeps; every other kernel sweeps its domain once.
  bool single_pass() const { return !reduces() || !rows || space.chunk != 0; }
};

// What a node brings to a group it may join, worked out by the caller from the group's members.
struct Joining {
  const GraphNode& node;
  Space space;
  int32_t stage = 0;  // how many of the group's reductions it would depend on, itself included
  // Reads a per-row value of the group, directly or through a node that broadcasts one back.
  bool reads_row_value = false;
  // Every per-row value of the group it reads broadcasts back along the reduced dims.
  bool row_values_broadcast_back = true;
  bool stores_into_concat = false;  // is a part of a concatenation
};

enum class Refusal : uint8_t {
  None,
  Eager,                  // fusion is off
  TooManyStages,          // a row kernel's work grows with the square of its stages
  TooManyOps,             // compile time grows with a kernel's size
  OtherSpace,             // iterates over another domain, and is no per-row value of it
  SinglePassRowValue,     // a per-row value in a kernel that sweeps once
  OtherReduction,         // reduces other dims (or chunks) than the kernel
  RowValueInSinglePass,   // reads a reduction's result in a kernel that sweeps once
  RowValueNotBroadcast,   // reads a per-row value that does not broadcast back over the row
  Cycle,                  // kernels would depend on each other
  ReadsThroughView,       // reads a value of the kernel through a view, which needs it in memory
  ConcatInReduction,      // a concatenation's part and a reduction or matmul: only elementwise kernels store parts
  OneMatMul,              // a matmul or attention kernel holds one of them and no reduction
  OverwritesPart,         // a scatter's second part is stored over its first, by a later kernel
  Dependent,              // (merging) one kernel reads the other's values
  ChainCut,               // a long elementwise chain is cut into kernels of bounded size
};

struct FusionDecision {
  Refusal refusal = Refusal::None;
  bool row = false;  // when fusing: the node computes a value per row, not per element

  explicit operator bool() const { return refusal == Refusal::None; }
  static FusionDecision fuse(bool row = false) { return {Refusal::None, row}; }
  static FusionDecision refuse(Refusal refusal) { return {refusal, false}; }
};

// The rules a node must pass to join `into`, in the order they are asked.
FusionDecision within_reduction_stages(const Joining& node, const FusionOptions& options);
FusionDecision within_kernel_size(const Group& into, const Joining& node, const FusionOptions& options);
// A node over another domain is a per-row value of a row reduction, or stays out.
FusionDecision computes_per_row(const Group& into, const Joining& node);
// A reduction joins a kernel of the same reduction, reading no row value unless it can sweep again.
FusionDecision reduces_alike(const Group& into, const Joining& node);
// Elementwise work over the domain, after a row value only where the kernel sweeps again.
FusionDecision computes_per_element(const Group& into, const Joining& node);
// A matmul or attention and its epilogue: one of them per kernel, no reduction beside it.
FusionDecision one_matmul(const Group& into, const Joining& node);

// All of the above: whether (and how) `node` may compute in `into`.
FusionDecision can_join(const Group& into, const Joining& node, const FusionOptions& options);
// Whether `other` may merge into `into`; `dependent()` (asked only for groups over one domain):
// whether one reads the other's values.
FusionDecision can_merge(const Group& into, const Group& other, const std::function<bool()>& dependent,
                         const FusionOptions& options);

// A refusal in words, for the fused dump: why the consumer (iterating over `consumer`) did not
// join the producer's kernel (iterating over `producer`). For a refused merge, `consumer` is the
// consumer's kernel's space and `merging` is set.
std::string explain(const FusionDecision& decision, const Space& consumer, const Space& producer,
                    const FusionOptions& options, bool merging = false);

}  // namespace fusejit::ir
