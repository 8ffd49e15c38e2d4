// The kernel function being emitted, as every strategy sees it: its builder, its loops
// (LoopEmitter), its ops' values (ElementalEmitter), and what all kinds do with them: sweep the
// ops along the innermost dim and store the outputs.
#pragma once

#include <llvm/IR/IRBuilder.h>

#include <functional>
#include <vector>

#include "codegen/elemental_emitter.h"
#include "codegen/loop_emitter.h"
#include "codegen/strategies/strategy.h"
#include "codegen/target.h"
#include "ir/kernel.h"

namespace fusejit::codegen {

// What one step of a sweep hands on: the ops' values, the inner index, whether all lanes
// are valid, and the valid lanes.
struct StepValues {
  const std::vector<llvm::Value*>& values;
  llvm::Value* j;
  bool full;  // all lanes valid (else the sweep's partial last step)
  llvm::Value* mask;
  llvm::Value* offset;  // the sweep's output offset, when the caller asked for one
};
using Consume = std::function<void(const StepValues&)>;
using ConsumeSteps = std::function<void(const std::vector<StepValues>&)>;

// An op's values along a sweep kept in a buffer indexed by the inner index.
struct StashUse {
  llvm::Value* buffer = nullptr;  // the op's row buffer
  bool read = false;              // read it (else compute the op and write it)
};

class KernelEmission {
 public:
  // Starts `fn`'s entry block: loads the argument slots and the run-time parameters.
  KernelEmission(const ir::Kernel& kernel, const Target& target, llvm::Function* fn,
                 const Strategy& strategy);

  const ir::Kernel& kernel() const { return kernel_; }
  const Target& target() const { return target_; }
  llvm::Function* fn() const { return fn_; }
  llvm::IRBuilderBase& b() { return b_; }
  int lanes() const { return lanes_; }
  LoopEmitter& loops() { return loops_; }
  ElementalEmitter& elements() { return elements_; }
  // Outputs far larger than the last-level cache are written with non-temporal stores: they
  // cannot stay cached anyway, and streaming them skips reading each line before writing it
  // (up to 1.5x on write-heavy kernels).
  bool streaming() const { return streaming_; }

  // One sweep of the innermost dim over [start, stop) at the outer `indices` (see
  // LoopEmitter::emit_sweep), computing the `wanted` ops that are not `known`. The partial
  // step's loads are masked, and `consume` handles its valid lanes.
  void sweep(llvm::Value* start, llvm::Value* stop, const std::vector<llvm::Value*>& indices,
             const std::vector<llvm::Value*>& known, const std::vector<bool>& wanted,
             const Consume& consume, const std::vector<StashUse>& stash = {},
             llvm::Value* output_offset = nullptr);
  // `sweep` at several sets of outer indices at once: each step computes the ops at every
  // set, in order, then `consume` takes the sets' steps together. A stash serves one set only.
  void lockstep_sweep(llvm::Value* start, llvm::Value* stop,
                      const std::vector<std::vector<llvm::Value*>>& index_sets,
                      const std::vector<llvm::Value*>& known, const std::vector<bool>& wanted,
                      const ConsumeSteps& consume, const std::vector<StashUse>& stash = {},
                      llvm::Value* output_offset = nullptr);
  // Stores the outputs of this step (row kernels: only those computed per element), all at one
  // offset (contiguous over the domain), or each at its own offset along its own inner stride
  // (Kernel::output_strides).
  void store_outputs(const StepValues& step, llvm::Value* output_offset, bool skip_row_values);
  void store_outputs(const StepValues& step, const std::vector<llvm::Value*>& output_offsets, bool skip_row_values);

  llvm::Value* input_pointer(size_t slot) const { return slots_[slot]; }
  llvm::Value* output_pointer(size_t output) const;
  DType output_dtype(size_t output) const;

 private:
  const ir::Kernel& kernel_;
  const Target& target_;
  llvm::Function* fn_;
  llvm::IRBuilder<> b_;
  int lanes_;
  LoopEmitter loops_;
  std::vector<llvm::Value*> slots_;  // inputs, outputs, parameters (emit_kernel.h)
  ElementalEmitter elements_;
  bool streaming_;
};

// Transposes `rows` (n vectors of n lanes, n a power of two) in place: swaps the off-diagonal
// blocks of each 2h x 2h block, for h = n/2 down to 1 (n log n shuffles).
void transpose_square(llvm::IRBuilderBase& b, std::vector<llvm::Value*>& rows);

// Base of a strategy's emitter class: the parts of the emission it uses throughout.
class StrategyEmitter {
 protected:
  explicit StrategyEmitter(KernelEmission& emission)
      : emission_(emission),
        kernel_(emission.kernel()),
        b_(emission.b()),
        loops_(emission.loops()),
        elements_(emission.elements()),
        math_(elements_.math()),
        float_vector_(elements_.float_vector()) {}

  KernelEmission& emission_;
  const ir::Kernel& kernel_;
  llvm::IRBuilderBase& b_;
  LoopEmitter& loops_;
  ElementalEmitter& elements_;
  VectorMath& math_;
  llvm::Type* float_vector_;
};

}  // namespace fusejit::codegen
