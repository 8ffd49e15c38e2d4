// Row reductions: each row (an index of the kept leading dims, or a chunk of dim 0) is reduced
// in registers, swept once per reduction stage and once more to store the outputs computed per
// element (ir/kernel.h).
#include <llvm/IR/Constants.h>
#include <llvm/IR/Intrinsics.h>

#include <algorithm>
#include <limits>

#include "codegen/strategies/kernel_emission.h"

namespace fusejit::codegen {
namespace {

using llvm::Value;

// Row reductions of cheap values take four native vectors per step, not two: their running
// sums form a dependency chain per vector, and four chains keep the loads streaming.
int row_lanes(const ir::Kernel& kernel, const Target& target) {
  for (const ir::KernelOp& op : kernel.ops)
    if (ir::op_info(op.op).cost >= ir::kTranscendental && !ir::is_reduction(op.op)) return target.lanes();
  return 2 * target.lanes();
}

class RowReduction : StrategyEmitter {
 public:
  explicit RowReduction(KernelEmission& emission) : StrategyEmitter(emission) {}

  void emit(Value* begin, Value* end) {
    size_t kept = kernel_.reduce_begin;
    std::vector<Value*> indices;
    if (kernel_.chunk) {
      // Rows are blocks of `chunk` indices of dim 0; row p's results go to index p.
      loops_.emit_for(begin, end, 1, [&](Value* p) { emit_row(indices, p, loops_.chunk_range(p)); });
      return;
    }
    if (kept == 0) {
      loops_.emit_for(begin, end, 1, [&](Value* p) { emit_row(indices, p, Range{}); });
      return;
    }
    loops_.emit_nest(0, kept, loops_.entry_range(begin, end), indices, [&] {
      Shape kept_shape(kernel_.domain.begin(), kernel_.domain.begin() + kept);
      emit_row(indices, loops_.outer_offset(ir::contiguous_strides(kept_shape), indices), Range{});
    });
  }

 private:
  // Per op: how many reductions deep its value is (0: needs none).
  std::vector<int> reduction_stages() const {
    std::vector<int> stage(kernel_.ops.size(), 0);
    for (size_t i = 0; i < kernel_.ops.size(); ++i) {
      for (int32_t a : kernel_.ops[i].args) stage[i] = std::max(stage[i], stage[a]);
      if (ir::is_reduction(kernel_.ops[i].op)) ++stage[i];
    }
    return stage;
  }

  // One row at the kept `indices`: a sweep per reduction stage, then one storing the outputs
  // computed per element. Per-row values are computed between sweeps and stored at `row`.
  void emit_row(std::vector<Value*>& indices, Value* row, const Range& range) {
    size_t count = kernel_.ops.size();
    std::vector<int> stage = reduction_stages();
    int stages = count ? *std::max_element(stage.begin(), stage.end()) : 0;
    std::vector<Value*> known(count, nullptr);
    auto compute_row_values = [&](int done) {
      for (size_t i = 0; i < count; ++i) {
        const ir::KernelOp& op = kernel_.ops[i];
        if (!op.row || known[i] || ir::is_reduction(op.op) || stage[i] != done) continue;
        Value* offset = op.strides.empty() ? nullptr : loops_.outer_offset(op.strides, indices);
        known[i] = elements_.emit_op(op, offset, nullptr, nullptr, nullptr, known);
      }
      for (size_t o = 0; o < kernel_.outputs.size(); ++o) {
        int32_t out = kernel_.outputs[o];
        if (!kernel_.ops[out].row || stage[out] != done) continue;
        Value* value = b_.CreateExtractElement(known[out], uint64_t{0});
        if (emission_.output_dtype(o) == DType::Bool) value = b_.CreateZExt(value, b_.getInt8Ty());
        llvm::Type* element = elements_.element_type(emission_.output_dtype(o));
        b_.CreateStore(value, b_.CreateInBoundsGEP(element, emission_.output_pointer(o), row));
      }
    };
    compute_row_values(0);
    Stash stash = plan_stash(range, stages, stage);
    for (int s = 1; s <= stages; ++s) {
      std::vector<int32_t> reductions = reductions_of_sweep(s, stage);
      std::vector<RowAccumulator> accumulators;
      for (int32_t r : reductions) accumulators.push_back(start_row_reduction(kernel_.ops[r].op));
      std::vector<int32_t> sinks = sweep_sinks(s, stages, stage);
      sweep_row(indices, range, known, stash, sinks, [&](const StepValues& step) {
        // Only a partial step masks its lanes: a mask in every step would turn each load into
        // a masked one.
        for (size_t k = 0; k < reductions.size(); ++k) {
          ir::OpCode op = kernel_.ops[reductions[k]].op;
          Value* value = step.values[sinks[k]];
          if (!step.full) value = b_.CreateSelect(step.mask, value, elements_.reduction_identity(op));
          accumulate_row(op, accumulators[k], value);
        }
      });
      for (size_t k = 0; k < reductions.size(); ++k) {
        Value* result = finish_row_reduction(kernel_.ops[reductions[k]].op, accumulators[k]);
        known[reductions[k]] = b_.CreateVectorSplat(emission_.lanes(), result);
      }
      compute_row_values(s);
    }
    std::vector<int32_t> sinks = sweep_sinks(stages + 1, stages, stage);
    if (sinks.empty()) return;
    sweep_row(indices, range, known, stash, sinks, [&](const StepValues& step) {
      emission_.store_outputs(step, step.offset, true);
    }, true);
  }

  // One row reduction's running state, per lane: the accumulator, and what is kept apart from
  // it. amax/amin keep the last NaN seen apart: the running max is then one vmaxps, not a
  // NaN-propagating compare-and-blend chain. prod multiplies in double, with its zeros (as +-1)
  // and infinities noted apart: once lanes combine, a lane's overflow times another's zero
  // would be NaN where the product is a zero (prod(arange(0, 511)) is 0).
  struct RowAccumulator {
    Value* value = nullptr;
    Value* nan_seen = nullptr;   // amax, amin: a float vector, NaN where a NaN was seen
    Value* zero_seen = nullptr;  // prod: an i1 vector
    Value* inf_seen = nullptr;   // prod: an i1 vector
  };

  RowAccumulator start_row_reduction(ir::OpCode op) {
    RowAccumulator acc;
    acc.value = entry_alloca(accumulator_type(op));
    b_.CreateStore(accumulator_identity(op), acc.value);
    auto* flags = elements_.vector_of(b_.getInt1Ty());
    if (is_extremum(op)) {
      acc.nan_seen = entry_alloca(float_vector_);
      b_.CreateStore(math_.c(0), acc.nan_seen);
    } else if (accumulates_in_double(op)) {
      acc.zero_seen = entry_alloca(flags);
      acc.inf_seen = entry_alloca(flags);
      b_.CreateStore(llvm::Constant::getNullValue(flags), acc.zero_seen);
      b_.CreateStore(llvm::Constant::getNullValue(flags), acc.inf_seen);
    }
    return acc;
  }

  void accumulate_row(ir::OpCode op, const RowAccumulator& acc, Value* value) {
    Value* running = b_.CreateLoad(accumulator_type(op), acc.value);
    if (acc.nan_seen) {
      Value* seen = b_.CreateLoad(float_vector_, acc.nan_seen);
      b_.CreateStore(b_.CreateSelect(b_.CreateFCmpUNO(value, value), value, seen), acc.nan_seen);
      b_.CreateStore(plain_extreme(op, running, value), acc.value);
    } else if (acc.zero_seen) {
      auto* flags = elements_.vector_of(b_.getInt1Ty());
      Value* zero = b_.CreateFCmpOEQ(value, math_.c(0));
      Value* infinite = b_.CreateFCmpOEQ(math_.abs(value), math_.c(std::numeric_limits<double>::infinity()));
      b_.CreateStore(b_.CreateOr(b_.CreateLoad(flags, acc.zero_seen), zero), acc.zero_seen);
      b_.CreateStore(b_.CreateOr(b_.CreateLoad(flags, acc.inf_seen), infinite), acc.inf_seen);
      Value* factor = b_.CreateSelect(zero, b_.CreateBinaryIntrinsic(llvm::Intrinsic::copysign, math_.c(1), value), value);
      b_.CreateStore(b_.CreateFMul(running, b_.CreateFPExt(factor, running->getType())), acc.value);
    } else {
      b_.CreateStore(ir::apply_combine(math_, op, running, value), acc.value);
    }
  }

  // The row's result, as a float.
  Value* finish_row_reduction(ir::OpCode op, const RowAccumulator& acc) {
    Value* running = b_.CreateLoad(accumulator_type(op), acc.value);
    if (acc.nan_seen) {
      // A lane of `running` is NaN only when a NaN was seen, so the lanes combine with plain
      // max/min instructions and one test of `nan_seen` decides (in a row of 100 the NaN-aware
      // combine at each halving cost more than the sweep).
      Value* seen = b_.CreateLoad(float_vector_, acc.nan_seen);
      Value* any_nan = b_.CreateOrReduce(b_.CreateFCmpUNO(seen, seen));
      return b_.CreateSelect(any_nan, llvm::ConstantFP::getNaN(b_.getFloatTy()),
                             horizontal(running, [&](Value* x, Value* y) { return plain_extreme(op, x, y); }));
    }
    if (acc.zero_seen) {
      // With a zero among the factors the product is a zero of the product's sign, or NaN when
      // an infinity (0 * inf) or a NaN is among them too.
      auto* flags = elements_.vector_of(b_.getInt1Ty());
      Value* product = horizontal(running, [&](Value* x, Value* y) { return b_.CreateFMul(x, y); });
      Value* any_zero = b_.CreateOrReduce(b_.CreateLoad(flags, acc.zero_seen));
      Value* any_inf = b_.CreateOrReduce(b_.CreateLoad(flags, acc.inf_seen));
      Value* nan = b_.CreateOr(any_inf, b_.CreateFCmpUNO(product, product));
      Value* zero = b_.CreateBinaryIntrinsic(llvm::Intrinsic::copysign,
                                             llvm::ConstantFP::get(product->getType(), 0.0), product);
      Value* with_zero = b_.CreateSelect(nan, llvm::ConstantFP::getNaN(product->getType()), zero);
      return b_.CreateFPTrunc(b_.CreateSelect(any_zero, with_zero, product), b_.getFloatTy());
    }
    return horizontal(running, [&](Value* x, Value* y) { return ir::apply_combine(math_, op, x, y); });
  }

  // The reductions accumulated by sweep s (1 .. stages) of a row.
  std::vector<int32_t> reductions_of_sweep(int s, const std::vector<int>& stage) const {
    std::vector<int32_t> reductions;
    for (size_t i = 0; i < kernel_.ops.size(); ++i)
      if (ir::is_reduction(kernel_.ops[i].op) && stage[i] == s) reductions.push_back(static_cast<int32_t>(i));
    return reductions;
  }

  // What sweep s of a row computes for its consumer: the operands of its reductions, or in the
  // last sweep (stages + 1) the outputs stored per element.
  std::vector<int32_t> sweep_sinks(int s, int stages, const std::vector<int>& stage) const {
    std::vector<int32_t> sinks;
    if (s <= stages) {
      for (int32_t r : reductions_of_sweep(s, stage)) sinks.push_back(kernel_.ops[r].args[0]);
    } else {
      for (int32_t out : kernel_.outputs)
        if (!kernel_.ops[out].row) sinks.push_back(out);
    }
    return sinks;
  }

  // Per op: whether its value changes along the innermost dim. The others are computed once
  // per sweep (KernelEmission::sweep), never per step, so they must never be kept in a row
  // buffer.
  std::vector<bool> varies_along_rows() const {
    size_t inner = loops_.rank() - 1;
    std::vector<bool> varies(kernel_.ops.size(), false);
    for (size_t i = 0; i < kernel_.ops.size(); ++i) {
      const ir::KernelOp& op = kernel_.ops[i];
      if (op.row) continue;
      varies[i] = !op.strides.empty() && op.strides[inner] != 0;
      for (int32_t a : op.args) varies[i] = varies[i] || varies[a];
    }
    return varies;
  }

  // Expensive per-element values that several sweeps of a row need (softmax's exp(x - max))
  // are kept in a row-sized stack buffer by the first sweep and read back by the others,
  // instead of being recomputed: rows of one reduced dim up to kStashElements.
  static constexpr int64_t kStashElements = 1 << 14;
  struct Stash {
    std::vector<Value*> buffers;  // per op: its row buffer, or null
    std::vector<bool> filled;     // per op: a sweep has written it this row
  };
  Stash plan_stash(const Range& range, int stages, const std::vector<int>& stage) {
    size_t count = kernel_.ops.size();
    Stash stash{std::vector<Value*>(count, nullptr), std::vector<bool>(count, false)};
    int64_t length = kernel_.domain.back();
    if (range.begin || kernel_.reduce_begin + 1 != static_cast<int32_t>(loops_.rank()) || length > kStashElements)
      return stash;
    std::vector<int> sweeps(count, 0);
    for (int s = 1; s <= stages + 1; ++s) {
      std::vector<bool> wanted(count, false);
      for (int32_t sink : sweep_sinks(s, stages, stage)) wanted[sink] = true;
      for (size_t i = count; i-- > 0;)
        if (wanted[i])
          for (int32_t a : kernel_.ops[i].args) wanted[a] = wanted[a] || !kernel_.ops[a].row;
      for (size_t i = 0; i < count; ++i) sweeps[i] += wanted[i] && !kernel_.ops[i].row;
    }
    int64_t padded = (length + emission_.lanes() - 1) / emission_.lanes() * emission_.lanes();
    std::vector<bool> varies = varies_along_rows();
    for (size_t i = 0; i < count; ++i) {
      if (sweeps[i] < 2 || !varies[i] || ir::op_info(kernel_.ops[i].op).cost < ir::kTranscendental) continue;
      llvm::IRBuilder<> entry(&emission_.fn()->getEntryBlock(), emission_.fn()->getEntryBlock().begin());
      llvm::AllocaInst* buffer = entry.CreateAlloca(b_.getFloatTy(), b_.getInt64(padded));
      buffer->setAlignment(llvm::Align(64));
      stash.buffers[i] = buffer;
    }
    return stash;
  }

  // Sweeps the reduced dims of one row, computing what `sinks` need beyond `known` and the
  // filled `stash` buffers; fills the others that it computes.
  void sweep_row(std::vector<Value*>& indices, const Range& range, const std::vector<Value*>& known,
                 Stash& stash, const std::vector<int32_t>& sinks, const Consume& consume,
                 bool with_output_offset = false) {
    size_t count = kernel_.ops.size();
    std::vector<bool> wanted(count, false);
    for (int32_t sink : sinks) wanted[sink] = !known[sink];
    for (size_t i = count; i-- > 0;)
      if (wanted[i] && !stash.filled[i])
        for (int32_t a : kernel_.ops[i].args) wanted[a] = wanted[a] || !known[a];
    std::vector<StashUse> uses(count);
    for (size_t i = 0; i < count; ++i)
      if (wanted[i] && stash.buffers[i]) uses[i] = {stash.buffers[i], stash.filled[i]};
    size_t depth = indices.size();
    loops_.emit_nest(kernel_.reduce_begin, loops_.rank() - 1, range, indices, [&] {
      auto [start, stop] = loops_.inner_bounds(range);
      Value* offset =
          with_output_offset ? loops_.outer_offset(ir::contiguous_strides(kernel_.domain), indices) : nullptr;
      emission_.sweep(start, stop, indices, known, wanted, consume, uses, offset);
    });
    indices.resize(depth);
    for (size_t i = 0; i < count; ++i) stash.filled[i] = stash.filled[i] || uses[i].buffer;
  }

  // A product accumulates in double: float32 partial products overflow long before the
  // product itself leaves float's range (see RowAccumulator, ir::Accumulation).
  static bool accumulates_in_double(ir::OpCode op) {
    return ir::reduction_accumulation(op) == ir::Accumulation::Product;
  }
  llvm::Type* accumulator_type(ir::OpCode op) {
    return accumulates_in_double(op) ? elements_.vector_of(b_.getDoubleTy()) : float_vector_;
  }
  Value* accumulator_identity(ir::OpCode op) {
    return llvm::ConstantFP::get(accumulator_type(op), ir::reduction_identity(op));
  }
  static bool is_extremum(ir::OpCode op) { return ir::reduction_accumulation(op) == ir::Accumulation::Extremum; }
  // The larger (Amax) or smaller (Amin) of x and y, y when either is NaN: one vmaxps/vminps,
  // for callers that keep NaNs apart.
  Value* plain_extreme(ir::OpCode op, Value* x, Value* y) {
    Value* keep = op == ir::OpCode::Amax ? b_.CreateFCmpOGT(x, y) : b_.CreateFCmpOLT(x, y);
    return b_.CreateSelect(keep, x, y);
  }

  // Combines the lanes of `value` pairwise with `combine`, halves first: a fixed order for a
  // given width.
  template <class Combine>
  Value* horizontal(Value* value, Combine&& combine) {
    for (int width = emission_.lanes(); width > 1; width /= 2) {
      std::vector<int> low(width / 2), high(width / 2);
      for (int i = 0; i < width / 2; ++i) low[i] = i, high[i] = i + width / 2;
      value = combine(b_.CreateShuffleVector(value, low), b_.CreateShuffleVector(value, high));
    }
    return b_.CreateExtractElement(value, uint64_t{0});
  }

  Value* entry_alloca(llvm::Type* type) {
    llvm::IRBuilder<> entry(&emission_.fn()->getEntryBlock(), emission_.fn()->getEntryBlock().begin());
    return entry.CreateAlloca(type);
  }
};

}  // namespace

const Strategy kRowReductionStrategy = {
    row_lanes, /*may_stream=*/true,
    [](KernelEmission& emission, Value* begin, Value* end) { RowReduction(emission).emit(begin, end); }};

}  // namespace fusejit::codegen
