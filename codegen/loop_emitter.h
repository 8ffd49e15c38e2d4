// The loops of a kernel: nests over the domain's dims, the ranges that the entry's [begin, end)
// and a reduction's chunks select, and sweeps of the innermost dim in vector steps. It knows
// the domain, not the ops: what a step computes is the caller's.
#pragma once

#include <llvm/IR/IRBuilder.h>

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "ir/kernel.h"

namespace fusejit::codegen {

// Overrides the range of one dim: the dim threads split, or a chunk of a reduction.
struct Range {
  size_t dim = SIZE_MAX;
  llvm::Value* begin = nullptr;
  llvm::Value* end = nullptr;
};

// One step of a sweep: elements [j, j + lanes) of the innermost dim, all of them valid
// (`full`), or the sweep's partial last step, whose valid elements end at `stop`.
struct SweepStep {
  llvm::Value* j;
  bool full;
  llvm::Value* stop;
};

class LoopEmitter {
 public:
  LoopEmitter(llvm::IRBuilderBase& b, llvm::Function* fn, const ir::Kernel& kernel, int lanes);

  size_t rank() const { return kernel_.domain.size(); }

  // `for (i = start; i < stop; i += step) body(i)`; the builder ends in the exit block.
  void emit_for(llvm::Value* start, llvm::Value* stop, int64_t step,
                const std::function<void(llvm::Value*)>& body);
  // Loops over dims [dim, last) (none of them the innermost) around `inner`, collecting their
  // indices; `range` overrides the extent of one of them.
  void emit_nest(size_t dim, size_t last, const Range& range, std::vector<llvm::Value*>& indices,
                 const std::function<void()>& inner);
  // The entry's [begin, end) as a range of the dim it indexes (Kernel::parallel_range); a
  // chunked kernel's entry range indexes chunks instead (chunk_range).
  Range entry_range(llvm::Value* begin, llvm::Value* end) const;
  // Block p of a chunked reduction: indices [p * chunk, min((p + 1) * chunk, size)) of dim 0.
  Range chunk_range(llvm::Value* p);
  // The innermost loop's bounds under `range`.
  std::pair<llvm::Value*, llvm::Value*> inner_bounds(const Range& range);
  // Element offset of an access at the current outer indices.
  llvm::Value* outer_offset(const ir::Strides& strides, const std::vector<llvm::Value*>& indices);

  // One sweep of the innermost dim over [start, stop): a loop of full steps of `lanes`
  // elements with no partial-step test in it (a test in every step cost 10-15% on memory-bound
  // reductions and more on rows of 100), then at most one partial step.
  void emit_sweep(llvm::Value* start, llvm::Value* stop,
                  const std::function<void(const SweepStep&)>& step);
  // The step's valid lanes as an i1 vector: all of them in a full step (so that masked loads
  // and stores become plain ones).
  llvm::Value* valid_lanes(const SweepStep& step);

 private:
  llvm::IRBuilderBase& b_;
  llvm::Function* fn_;
  const ir::Kernel& kernel_;
  int lanes_;
  llvm::Value* lane_ids32_;  // 0, 1, ... as i32: remaining < lanes, cheaper than 64-bit compares
};

}  // namespace fusejit::codegen
