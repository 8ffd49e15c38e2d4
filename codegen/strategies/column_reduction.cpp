// Column reductions: the reduced dims are followed by kept ones, and whole vectors of the
// trailing kept dims accumulate in the outputs (ir/kernel.h).
#include <llvm/IR/Constants.h>

#include "codegen/strategies/kernel_emission.h"

namespace fusejit::codegen {
namespace {

using llvm::Value;

class ColumnReduction : StrategyEmitter {
 public:
  explicit ColumnReduction(KernelEmission& emission) : StrategyEmitter(emission) {}

  // Kept dims before and after the reduced ones; whole vectors of the trailing kept dims
  // accumulate in the outputs, which start at the identity. A chunked column reduction has no
  // leading kept dims: block p of the reduced rows accumulates into partial row p.
  void emit(Value* begin, Value* end) {
    size_t lead = kernel_.reduce_begin;
    size_t trail = kernel_.reduce_end;
    Shape kept_shape(kernel_.domain.begin(), kernel_.domain.begin() + lead);
    kept_shape.insert(kept_shape.end(), kernel_.domain.begin() + trail, kernel_.domain.end());
    ir::Strides kept_strides = ir::contiguous_strides(kept_shape);
    ir::Strides output_strides(loops_.rank(), 0);
    for (size_t d = 0; d < loops_.rank(); ++d)
      if (d < lead) output_strides[d] = kept_strides[d];
      else if (d >= trail) output_strides[d] = kept_strides[d - (trail - lead)];
    if (!kernel_.chunk) {
      emit_column_block(loops_.entry_range(begin, end), output_strides, b_.getInt64(0));
      return;
    }
    loops_.emit_for(begin, end, 1, [&](Value* p) {
      emit_column_block(loops_.chunk_range(p), output_strides, b_.CreateMul(p, b_.getInt64(ir::numel(kept_shape))));
    });
  }

 private:
  // The column reduction over `range` into the outputs at `base` + the kept dims' offsets.
  void emit_column_block(const Range& range, const ir::Strides& output_strides, Value* base) {
    size_t lead = kernel_.reduce_begin;
    size_t trail = kernel_.reduce_end;
    std::vector<bool> wanted(kernel_.ops.size(), true);
    for (size_t i = 0; i < wanted.size(); ++i) wanted[i] = !ir::is_reduction(kernel_.ops[i].op);
    std::vector<bool> none(kernel_.ops.size(), false);
    std::vector<Value*> indices;
    loops_.emit_nest(0, lead, range, indices, [&] {
      // The outputs start at the identity over this part of the trailing dims.
      std::vector<Value*> zero_reduced = indices;
      zero_reduced.resize(trail, b_.getInt64(0));
      loops_.emit_nest(trail, loops_.rank() - 1, range, zero_reduced, [&] {
        Value* offset = b_.CreateAdd(base, loops_.outer_offset(output_strides, zero_reduced));
        auto [start, stop] = loops_.inner_bounds(range);
        emission_.sweep(start, stop, zero_reduced, {}, none, [&](const StepValues& step) {
          accumulate_columns(step, offset, true);
        });
      });
      loops_.emit_nest(lead, loops_.rank() - 1, range, indices, [&] {
        Value* offset = b_.CreateAdd(base, loops_.outer_offset(output_strides, indices));
        Value* element_offset = loops_.outer_offset(ir::contiguous_strides(kernel_.domain), indices);
        auto [start, stop] = loops_.inner_bounds(range);
        emission_.sweep(start, stop, indices, {}, wanted, [&](const StepValues& step) {
          accumulate_columns(step, offset, false);
          emission_.store_outputs(step, element_offset, true);
        });
      });
    });
  }

  // out = combine(out, value) for every reduction output (or out = identity when `reset`).
  void accumulate_columns(const StepValues& step, Value* offset, bool reset) {
    std::vector<size_t> outputs;
    for (size_t o = 0; o < kernel_.outputs.size(); ++o)
      if (ir::is_reduction(kernel_.ops[kernel_.outputs[o]].op)) outputs.push_back(o);
    auto address = [&](size_t o) {
      return b_.CreateInBoundsGEP(b_.getFloatTy(), emission_.output_pointer(o), b_.CreateAdd(offset, step.j));
    };
    auto update = [&](size_t o, Value* old) {
      ir::OpCode op = kernel_.ops[kernel_.outputs[o]].op;
      if (reset) return elements_.reduction_identity(op);
      return ir::apply_combine(math_, op, old, step.values[kernel_.ops[kernel_.outputs[o]].args[0]]);
    };
    llvm::Align align = element_align(DType::Float32);
    for (size_t o : outputs) {
      Value* old = nullptr;
      if (!reset)
        old = step.full ? static_cast<Value*>(b_.CreateAlignedLoad(float_vector_, address(o), align))
                   : b_.CreateMaskedLoad(float_vector_, address(o), align, step.mask,
                                         llvm::Constant::getNullValue(float_vector_));
      if (step.full)
        b_.CreateAlignedStore(update(o, old), address(o), align);
      else
        b_.CreateMaskedStore(update(o, old), address(o), align, step.mask);
    }
  }
};

}  // namespace

// Never streamed: the outputs are read back at every step.
const Strategy kColumnReductionStrategy = {
    native_lanes, /*may_stream=*/false,
    [](KernelEmission& emission, Value* begin, Value* end) { ColumnReduction(emission).emit(begin, end); }};

}  // namespace fusejit::codegen
