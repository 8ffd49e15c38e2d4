// Elementwise kernels: every output stored contiguously over the whole domain, the outer dims
// in nested loops and the innermost in vector sweeps.
#include "codegen/strategies/kernel_emission.h"

namespace fusejit::codegen {
namespace {

using llvm::Value;

void emit_elementwise(KernelEmission& emission, Value* begin, Value* end) {
  const ir::Kernel& kernel = emission.kernel();
  LoopEmitter& loops = emission.loops();
  std::vector<Value*> indices;
  Range range = loops.entry_range(begin, end);
  std::vector<bool> wanted(kernel.ops.size(), true);
  loops.emit_nest(0, loops.rank() - 1, range, indices, [&] {
    Value* output_offset = loops.outer_offset(ir::contiguous_strides(kernel.domain), indices);
    auto [start, stop] = loops.inner_bounds(range);
    emission.sweep(start, stop, indices, {}, wanted, [&](const StepValues& step) {
      emission.store_outputs(step, output_offset, false);
    });
  });
}

}  // namespace

const Strategy kElementwiseStrategy = {native_lanes, /*may_stream=*/true, emit_elementwise};

}  // namespace fusejit::codegen
