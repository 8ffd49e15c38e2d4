// Column reductions: the reduced dims are followed by kept ones, and whole vectors of the
// trailing kept dims accumulate in the outputs (ir/kernel.h).
#include <llvm/IR/Constants.h>

#include <algorithm>

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
          accumulate_columns({step}, offset, true);
        });
      });
      // The reduced dims but the last; the last in groups of `rows` consecutive indices, then
      // one index at a time for the rest.
      size_t last = trail - 1;
      int64_t rows = column_rows_per_step();
      loops_.emit_nest(lead, last, range, indices, [&] {
        Value* first = last == range.dim ? range.begin : b_.getInt64(0);
        Value* end = last == range.dim ? range.end : b_.getInt64(kernel_.domain[last]);
        auto accumulate = [&](Value* row, int64_t count) {
          accumulate_rows(range, output_strides, base, indices, row, count);
        };
        Value* grouped_end = first;
        if (rows > 1) {
          Value* groups = b_.CreateSDiv(b_.CreateSub(end, first), b_.getInt64(rows));
          grouped_end = b_.CreateAdd(first, b_.CreateMul(groups, b_.getInt64(rows)));
          loops_.emit_for(first, grouped_end, rows, [&](Value* row) { accumulate(row, rows); });
        }
        loops_.emit_for(grouped_end, end, 1, [&](Value* row) { accumulate(row, 1); });
      });
    });
  }

  // Reduced rows that one step of a column reduction combines per load and store of the
  // running outputs. Those stores slow the stream of input rows from memory: hand-written, a
  // 4096x4096 column sum took 1.3-1.4x the row sum's time at one row per step, 1.1-1.2x at 4
  // and 1.0-1.1x at 8. Each row repeats the kernel's math in the step, and compile time grows
  // faster than the code (a 100-op prologue compiled 9x slower at 8 rows), so the rows share
  // a budget of about 40 cheap ops; a prologue of some 20 ops (compute-bound) gets one row.
  int64_t column_rows_per_step() const {
    constexpr int kStepCost = 40;
    int row_cost = 0;
    for (const ir::KernelOp& op : kernel_.ops)
      row_cost += ir::is_reduction(op.op) ? ir::kCheap : std::max(ir::kCheap, ir::op_info(op.op).cost);
    return std::clamp(kStepCost / row_cost, 1, 8);
  }

  // Reduced rows [row, row + count) of the last reduced dim at the outer `indices`, swept in
  // lockstep into the outputs at `base` (see emit_column_block).
  void accumulate_rows(const Range& range, const ir::Strides& output_strides, Value* base,
                       std::vector<Value*>& indices, Value* row, int64_t count) {
    std::vector<bool> wanted(kernel_.ops.size(), true);
    for (size_t i = 0; i < wanted.size(); ++i) wanted[i] = !ir::is_reduction(kernel_.ops[i].op);
    indices.push_back(row);
    loops_.emit_nest(kernel_.reduce_end, loops_.rank() - 1, range, indices, [&] {
      Value* offset = b_.CreateAdd(base, loops_.outer_offset(output_strides, indices));
      std::vector<std::vector<Value*>> index_sets;
      std::vector<Value*> element_offsets;
      size_t last = kernel_.reduce_end - 1;
      for (int64_t k = 0; k < count; ++k) {
        index_sets.push_back(indices);
        index_sets.back()[last] = b_.CreateAdd(row, b_.getInt64(k));
        element_offsets.push_back(loops_.outer_offset(ir::contiguous_strides(kernel_.domain), index_sets.back()));
      }
      auto [start, stop] = loops_.inner_bounds(range);
      emission_.lockstep_sweep(start, stop, index_sets, {}, wanted, [&](const std::vector<StepValues>& steps) {
        accumulate_columns(steps, offset, false);
        for (int64_t k = 0; k < count; ++k) emission_.store_outputs(steps[k], element_offsets[k], true);
      });
    });
    indices.pop_back();
  }

  // out = combine(...combine(out, v0)..., vn) for every reduction output, over the steps of
  // consecutive reduced rows in their order (or out = identity when `reset`).
  void accumulate_columns(const std::vector<StepValues>& steps, Value* offset, bool reset) {
    const StepValues& step = steps[0];  // the steps share j and the valid lanes
    std::vector<size_t> outputs;
    for (size_t o = 0; o < kernel_.outputs.size(); ++o)
      if (ir::is_reduction(kernel_.ops[kernel_.outputs[o]].op)) outputs.push_back(o);
    auto address = [&](size_t o) {
      return b_.CreateInBoundsGEP(b_.getFloatTy(), emission_.output_pointer(o), b_.CreateAdd(offset, step.j));
    };
    auto update = [&](size_t o, Value* old) {
      ir::OpCode op = kernel_.ops[kernel_.outputs[o]].op;
      if (reset) return elements_.reduction_identity(op);
      for (const StepValues& row : steps)
        old = ir::apply_combine(math_, op, old, row.values[kernel_.ops[kernel_.outputs[o]].args[0]]);
      return old;
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
