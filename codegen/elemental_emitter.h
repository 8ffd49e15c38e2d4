// The value of one kernel op at a step of the loops, as a vector of the loop's width: loads
// through the op's strides, constants, the run-time parameters (a Scalar's float, the stream
// keys of a generator's seed), the generators (arange, and rand and randn's bit mixing of
// ir/random.h), and the op table's formulas and combines through VectorMath.
#pragma once

#include <llvm/IR/IRBuilder.h>

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "codegen/target.h"
#include "codegen/vector_math.h"
#include "ir/kernel.h"

namespace fusejit::codegen {

llvm::Align element_align(DType dtype);

class ElementalEmitter {
 public:
  // `slots` are the kernel's argument slots, loaded (emit_kernel.h). Reads the run-time
  // parameters where the builder is: once, in the entry block.
  ElementalEmitter(llvm::IRBuilderBase& b, const ir::Kernel& kernel, const Target& target,
                   int lanes, const std::vector<llvm::Value*>& slots);

  // One op at inner index `j` (null when invariant along the innermost dim) and element
  // offset `offset` at the outer indices. `mask` marks the valid lanes (for gathers); `address`
  // is where a contiguous load reads this step (contiguous_address); `values` are the earlier
  // ops' values.
  llvm::Value* emit_op(const ir::KernelOp& op, llvm::Value* offset, llvm::Value* j,
                       llvm::Value* mask, llvm::Value* address,
                       const std::vector<llvm::Value*>& values);
  // Where `op` reads at inner index `j` when it loads the innermost dim contiguously; else null.
  llvm::Value* contiguous_address(const ir::KernelOp& op, llvm::Value* offset, llvm::Value* j);

  // A Scalar parameter's float, as read in the entry block.
  llvm::Value* scalar(int32_t slot) const { return scalars_[slot]; }
  // A reduction's identity in every lane.
  llvm::Value* reduction_identity(ir::OpCode op) { return math_.c(ir::reduction_identity(op)); }

  VectorMath& math() { return math_; }
  llvm::Type* float_vector() const { return float_vector_; }
  llvm::VectorType* vector_of(llvm::Type* element) const;
  llvm::Type* element_type(DType dtype) const;
  // The element offsets offset + (j + lane) * stride of a step's lanes (offset alone, j null).
  llvm::Value* lane_indices(llvm::Value* offset, llvm::Value* j, int64_t stride);

 private:
  void load_parameters();
  llvm::Value* stream_key(llvm::Value* seed, uint32_t stream);
  llvm::Value* emit_load(const ir::KernelOp& op, llvm::Value* offset, llvm::Value* j,
                         llvm::Value* mask, llvm::Value* address, int64_t stride);
  llvm::Value* mix(llvm::Value* x);
  llvm::Value* random_bits(int32_t slot, uint32_t stream, llvm::Value* index);
  llvm::Value* unit_interval(llvm::Value* bits);

  llvm::IRBuilderBase& b_;
  const ir::Kernel& kernel_;
  int lanes_;
  const std::vector<llvm::Value*>& slots_;
  llvm::Type* i64_;
  llvm::Type* float_vector_;
  llvm::VectorType* index_vector_;
  llvm::Value* lane_ids_;  // 0, 1, ... as i64 (flat indices)
  VectorMath math_;
  std::vector<llvm::Value*> scalars_;                                 // per parameter slot
  std::map<std::pair<int32_t, uint32_t>, llvm::Value*> stream_keys_;  // (parameter slot, stream)
};

}  // namespace fusejit::codegen
