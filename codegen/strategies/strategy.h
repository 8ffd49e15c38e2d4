// How each kind of kernel is emitted: one strategy per ir::KernelKind, each in its own file
// here, over what all kinds share (KernelEmission). strategy_for picks the kind's strategy, so
// a new kind is a new file and a row there.
#pragma once

#include <llvm/IR/Value.h>

#include "codegen/target.h"
#include "ir/kernel.h"

namespace fusejit::codegen {

class KernelEmission;

struct Strategy {
  // Floats per loop step.
  int (*lanes)(const ir::Kernel& kernel, const Target& target);
  // Whether the kind's outputs may be written with non-temporal stores (KernelEmission).
  bool may_stream;
  // The body of the kernel function for the entry's range [begin, end).
  void (*emit)(KernelEmission& emission, llvm::Value* begin, llvm::Value* end);
};

const Strategy& strategy_for(ir::KernelKind kind);

extern const Strategy kFillStrategy;             // fill.cpp
extern const Strategy kElementwiseStrategy;      // elementwise.cpp
extern const Strategy kRowReductionStrategy;     // row_reduction.cpp
extern const Strategy kColumnReductionStrategy;  // column_reduction.cpp
extern const Strategy kMatMulStrategy;           // matmul.cpp
extern const Strategy kAttentionStrategy;        // attention.cpp

// Two native vectors per step (Target::lanes), which hides the latency of dependent ops.
int native_lanes(const ir::Kernel& kernel, const Target& target);

}  // namespace fusejit::codegen
