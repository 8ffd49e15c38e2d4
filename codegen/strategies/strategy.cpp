#include "codegen/strategies/strategy.h"

namespace fusejit::codegen {

const Strategy& strategy_for(ir::KernelKind kind) {
  switch (kind) {
    case ir::KernelKind::Fill: return kFillStrategy;
    case ir::KernelKind::Elementwise: return kElementwiseStrategy;
    case ir::KernelKind::RowReduction: return kRowReductionStrategy;
    case ir::KernelKind::ColumnReduction: return kColumnReductionStrategy;
    case ir::KernelKind::MatMul: return kMatMulStrategy;
    case ir::KernelKind::Attention: return kAttentionStrategy;
  }
  throw InternalError("strategy_for: unknown kernel kind");
}

int native_lanes(const ir::Kernel&, const Target& target) { return target.lanes(); }

}  // namespace fusejit::codegen
