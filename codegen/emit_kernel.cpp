#include "codegen/emit_kernel.h"

#include <llvm/IR/Constants.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Intrinsics.h>

#include <algorithm>
#include <bit>
#include <functional>
#include <limits>

#include "codegen/elemental_emitter.h"
#include "codegen/loop_emitter.h"

namespace fusejit::codegen {
namespace {

using llvm::Value;

// Elements per loop step: two native vectors, which hides the latency of dependent ops. Row
// reductions of cheap values take four: their running sums form a dependency chain per
// vector, and four chains keep the loads streaming.
int lanes_for(const ir::Kernel& kernel, const Target& target) {
  if (kernel.kind != ir::KernelKind::RowReduction) return target.lanes();
  for (const ir::KernelOp& op : kernel.ops)
    if (ir::op_info(op.op).cost >= ir::kTranscendental && !ir::is_reduction(op.op)) return target.lanes();
  return 2 * target.lanes();
}

// The entry's argument slots (emit_kernel.h), loaded in the entry block.
std::vector<Value*> load_slots(llvm::IRBuilderBase& b, llvm::Function* fn, const ir::Kernel& kernel) {
  std::vector<Value*> slots;
  size_t count = kernel.input_dtypes.size() + kernel.outputs.size() + kernel.parameters;
  for (size_t slot = 0; slot < count; ++slot) {
    Value* address = b.CreateConstInBoundsGEP1_64(b.getPtrTy(), fn->getArg(0), slot);
    slots.push_back(b.CreateLoad(b.getPtrTy(), address, "slot" + std::to_string(slot)));
  }
  return slots;
}

class KernelEmitter {
 public:
  KernelEmitter(const ir::Kernel& kernel, const Target& target, llvm::Function* fn)
      : kernel_(kernel),
        target_(target),
        fn_(fn),
        context_(fn->getContext()),
        b_(llvm::BasicBlock::Create(context_, "entry", fn)),
        lanes_(lanes_for(kernel, target)),
        loops_(b_, fn, kernel, lanes_),
        slots_(load_slots(b_, fn, kernel)),
        elements_(b_, kernel, target, lanes_, slots_) {}

  void emit() {
    Value* begin = fn_->getArg(1);
    Value* end = fn_->getArg(2);
    streaming_ = streams_outputs();
    switch (kernel_.kind) {
      case ir::KernelKind::Fill:
        if (streaming_ || !target_.string_fill)
          emit_elementwise(begin, end);
        else
          emit_fill(begin, end);
        break;
      case ir::KernelKind::Elementwise: emit_elementwise(begin, end); break;
      case ir::KernelKind::RowReduction: emit_rows(begin, end); break;
      case ir::KernelKind::ColumnReduction: emit_columns(begin, end); break;
    }
    // Non-temporal stores are weakly ordered: make them visible before the caller moves on.
    if (streaming_) b_.CreateFence(llvm::AtomicOrdering::SequentiallyConsistent);
    b_.CreateRetVoid();
  }

 private:
  // What one step of a sweep hands on: the ops' values, the inner index, whether all lanes
  // are valid, and the valid lanes.
  struct Step {
    const std::vector<Value*>& values;
    Value* j;
    bool full;  // all lanes valid (else the sweep's partial last step)
    Value* mask;
    Value* offset;  // the sweep's output offset, when the caller asked for one
  };
  using Consume = std::function<void(const Step&)>;
  size_t rank() const { return loops_.rank(); }

  void emit_elementwise(Value* begin, Value* end) {
    std::vector<Value*> indices;
    Range range = loops_.entry_range(begin, end);
    std::vector<bool> wanted(kernel_.ops.size(), true);
    loops_.emit_nest(0, rank() - 1, range, indices, [&] {
      Value* output_offset = loops_.outer_offset(ir::contiguous_strides(kernel_.domain), indices);
      auto [start, stop] = loops_.inner_bounds(range);
      emit_sweep(start, stop, indices, {}, wanted, [&](const Step& step) {
        store_outputs(step, output_offset, false);
      });
    });
  }

  // A thread's range of at least 7/8 of the L2 cache is written with `rep stosd`, which fills
  // whole cache lines without reading them first (4 MiB: 31 µs against 40 µs with vector
  // stores); a smaller one stays in the L2, where vector stores are faster (512 KiB: 2.1 µs
  // against 3.1 µs). The output is contiguous, so the range [begin, end) of dim 0 is one run.
  void emit_fill(Value* begin, Value* end) {
    int64_t per_index = ir::contiguous_strides(kernel_.domain)[0];
    Value* count = b_.CreateMul(b_.CreateSub(end, begin), b_.getInt64(per_index));
    int64_t string_minimum = target_.l2_cache_bytes / 8 * 7 / dtype_size(DType::Float32);
    auto* string_fill = llvm::BasicBlock::Create(context_, "fill.string", fn_);
    auto* vector_fill = llvm::BasicBlock::Create(context_, "fill.vector", fn_);
    auto* done = llvm::BasicBlock::Create(context_, "fill.done", fn_);
    b_.CreateCondBr(b_.CreateICmpSGE(count, b_.getInt64(string_minimum)), string_fill, vector_fill);

    b_.SetInsertPoint(string_fill);
    Value* address = b_.CreateInBoundsGEP(b_.getFloatTy(), output_pointer(0),
                                          b_.CreateMul(begin, b_.getInt64(per_index)));
    const ir::KernelOp& fill_op = kernel_.ops[kernel_.outputs[0]];
    Value* bits = fill_op.op == ir::OpCode::Scalar
                      ? b_.CreateBitCast(elements_.scalar(fill_op.slot), b_.getInt32Ty())
                      : b_.getInt32(std::bit_cast<uint32_t>(static_cast<float>(fill_op.params.value)));
    llvm::Type* ptr = b_.getPtrTy();
    llvm::Type* i64 = b_.getInt64Ty();
    auto* type = llvm::FunctionType::get(llvm::StructType::get(context_, {ptr, i64}),
                                         {ptr, i64, b_.getInt32Ty()}, false);
    auto* fill = llvm::InlineAsm::get(type, "rep stosl",
                                      "={di},={cx},0,1,{ax},~{memory},~{dirflag},~{fpsr},~{flags}",
                                      /*hasSideEffects=*/true);
    b_.CreateCall(fill, {address, count, bits});
    b_.CreateBr(done);

    b_.SetInsertPoint(vector_fill);
    emit_elementwise(begin, end);
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
  }

  // Stores the outputs of this step (row kernels: only those computed per element).
  void store_outputs(const Step& step, Value* output_offset, bool skip_row_values) {
    std::vector<std::pair<size_t, Value*>> stores;  // output, value
    for (size_t o = 0; o < kernel_.outputs.size(); ++o) {
      if (skip_row_values && kernel_.ops[kernel_.outputs[o]].row) continue;
      Value* value = step.values[kernel_.outputs[o]];
      if (output_dtype(o) == DType::Bool) value = b_.CreateZExt(value, elements_.vector_of(b_.getInt8Ty()));
      stores.push_back({o, value});
    }
    if (stores.empty()) return;
    auto address = [&](size_t o) {
      return b_.CreateInBoundsGEP(elements_.element_type(output_dtype(o)), output_pointer(o),
                                  b_.CreateAdd(output_offset, step.j));
    };
    for (auto& [o, value] : stores) {
      if (!step.full) {
        b_.CreateMaskedStore(value, address(o), element_align(output_dtype(o)), step.mask);
      } else if (!streaming_) {
        b_.CreateAlignedStore(value, address(o), element_align(output_dtype(o)));
      } else {
        llvm::StoreInst* store =
            b_.CreateAlignedStore(value, address(o), llvm::Align(std::min(lanes_ * 4, 64)));
        store->setMetadata(llvm::LLVMContext::MD_nontemporal,
                           llvm::MDNode::get(context_, llvm::ConstantAsMetadata::get(b_.getInt32(1))));
      }
    }
  }

  Value* output_pointer(size_t output) { return slots_[kernel_.input_dtypes.size() + output]; }

  // ---- row reductions ----

  // Per op: how many reductions deep its value is (0: needs none).
  std::vector<int> reduction_stages() const {
    std::vector<int> stage(kernel_.ops.size(), 0);
    for (size_t i = 0; i < kernel_.ops.size(); ++i) {
      for (int32_t a : kernel_.ops[i].args) stage[i] = std::max(stage[i], stage[a]);
      if (ir::is_reduction(kernel_.ops[i].op)) ++stage[i];
    }
    return stage;
  }

  void emit_rows(Value* begin, Value* end) {
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
        if (output_dtype(o) == DType::Bool) value = b_.CreateZExt(value, b_.getInt8Ty());
        b_.CreateStore(value, b_.CreateInBoundsGEP(elements_.element_type(output_dtype(o)), output_pointer(o), row));
      }
    };
    compute_row_values(0);
    Stash stash = plan_stash(range, stages, stage);
    for (int s = 1; s <= stages; ++s) {
      std::vector<int32_t> reductions = reductions_of_sweep(s, stage);
      std::vector<RowAccumulator> accumulators;
      for (int32_t r : reductions) accumulators.push_back(start_row_reduction(kernel_.ops[r].op));
      std::vector<int32_t> sinks = sweep_sinks(s, stages, stage);
      sweep_row(indices, range, known, stash, sinks, [&](const Step& step) {
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
        known[reductions[k]] = b_.CreateVectorSplat(lanes_, result);
      }
      compute_row_values(s);
    }
    std::vector<int32_t> sinks = sweep_sinks(stages + 1, stages, stage);
    if (sinks.empty()) return;
    sweep_row(indices, range, known, stash, sinks, [&](const Step& step) {
      store_outputs(step, step.offset, true);
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
      acc.nan_seen = entry_alloca(elements_.float_vector());
      b_.CreateStore(elements_.math().c(0), acc.nan_seen);
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
      Value* seen = b_.CreateLoad(elements_.float_vector(), acc.nan_seen);
      b_.CreateStore(b_.CreateSelect(b_.CreateFCmpUNO(value, value), value, seen), acc.nan_seen);
      b_.CreateStore(plain_extreme(op, running, value), acc.value);
    } else if (acc.zero_seen) {
      auto* flags = elements_.vector_of(b_.getInt1Ty());
      Value* zero = b_.CreateFCmpOEQ(value, elements_.math().c(0));
      Value* infinite = b_.CreateFCmpOEQ(elements_.math().abs(value), elements_.math().c(std::numeric_limits<double>::infinity()));
      b_.CreateStore(b_.CreateOr(b_.CreateLoad(flags, acc.zero_seen), zero), acc.zero_seen);
      b_.CreateStore(b_.CreateOr(b_.CreateLoad(flags, acc.inf_seen), infinite), acc.inf_seen);
      Value* factor = b_.CreateSelect(zero, b_.CreateBinaryIntrinsic(llvm::Intrinsic::copysign, elements_.math().c(1), value), value);
      b_.CreateStore(b_.CreateFMul(running, b_.CreateFPExt(factor, running->getType())), acc.value);
    } else {
      b_.CreateStore(ir::apply_combine(elements_.math(), op, running, value), acc.value);
    }
  }

  // The row's result, as a float.
  Value* finish_row_reduction(ir::OpCode op, const RowAccumulator& acc) {
    Value* running = b_.CreateLoad(accumulator_type(op), acc.value);
    if (acc.nan_seen) {
      // A lane of `running` is NaN only when a NaN was seen, so the lanes combine with plain
      // max/min instructions and one test of `nan_seen` decides (in a row of 100 the NaN-aware
      // combine at each halving cost more than the sweep).
      Value* seen = b_.CreateLoad(elements_.float_vector(), acc.nan_seen);
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
    return horizontal(running, [&](Value* x, Value* y) { return ir::apply_combine(elements_.math(), op, x, y); });
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
  // per sweep (emit_sweep), never per step, so they must never be kept in a row buffer.
  std::vector<bool> varies_along_rows() const {
    size_t inner = rank() - 1;
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
    if (range.begin || kernel_.reduce_begin + 1 != static_cast<int32_t>(rank()) || length > kStashElements)
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
    int64_t padded = (length + lanes_ - 1) / lanes_ * lanes_;
    std::vector<bool> varies = varies_along_rows();
    for (size_t i = 0; i < count; ++i) {
      if (sweeps[i] < 2 || !varies[i] || ir::op_info(kernel_.ops[i].op).cost < ir::kTranscendental) continue;
      llvm::IRBuilder<> entry(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
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
    loops_.emit_nest(kernel_.reduce_begin, rank() - 1, range, indices, [&] {
      auto [start, stop] = loops_.inner_bounds(range);
      Value* offset = with_output_offset ? loops_.outer_offset(ir::contiguous_strides(kernel_.domain), indices) : nullptr;
      emit_sweep(start, stop, indices, known, wanted, consume, uses, offset);
    });
    indices.resize(depth);
    for (size_t i = 0; i < count; ++i) stash.filled[i] = stash.filled[i] || uses[i].buffer;
  }

  // ---- column reductions ----

  // Kept dims before and after the reduced ones; whole vectors of the trailing kept dims
  // accumulate in the outputs, which start at the identity. A chunked column reduction has no
  // leading kept dims: block p of the reduced rows accumulates into partial row p.
  void emit_columns(Value* begin, Value* end) {
    size_t lead = kernel_.reduce_begin;
    size_t trail = kernel_.reduce_end;
    Shape kept_shape(kernel_.domain.begin(), kernel_.domain.begin() + lead);
    kept_shape.insert(kept_shape.end(), kernel_.domain.begin() + trail, kernel_.domain.end());
    ir::Strides kept_strides = ir::contiguous_strides(kept_shape);
    ir::Strides output_strides(rank(), 0);
    for (size_t d = 0; d < rank(); ++d)
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
      loops_.emit_nest(trail, rank() - 1, range, zero_reduced, [&] {
        Value* offset = b_.CreateAdd(base, loops_.outer_offset(output_strides, zero_reduced));
        auto [start, stop] = loops_.inner_bounds(range);
        emit_sweep(start, stop, zero_reduced, {}, none, [&](const Step& step) {
          accumulate_columns(step, offset, true);
        });
      });
      loops_.emit_nest(lead, rank() - 1, range, indices, [&] {
        Value* offset = b_.CreateAdd(base, loops_.outer_offset(output_strides, indices));
        Value* element_offset = loops_.outer_offset(ir::contiguous_strides(kernel_.domain), indices);
        auto [start, stop] = loops_.inner_bounds(range);
        emit_sweep(start, stop, indices, {}, wanted, [&](const Step& step) {
          accumulate_columns(step, offset, false);
          store_outputs(step, element_offset, true);
        });
      });
    });
  }

  // out = combine(out, value) for every reduction output (or out = identity when `reset`).
  void accumulate_columns(const Step& step, Value* offset, bool reset) {
    std::vector<size_t> outputs;
    for (size_t o = 0; o < kernel_.outputs.size(); ++o)
      if (ir::is_reduction(kernel_.ops[kernel_.outputs[o]].op)) outputs.push_back(o);
    auto address = [&](size_t o) {
      return b_.CreateInBoundsGEP(b_.getFloatTy(), output_pointer(o), b_.CreateAdd(offset, step.j));
    };
    auto update = [&](size_t o, Value* old) {
      ir::OpCode op = kernel_.ops[kernel_.outputs[o]].op;
      if (reset) return elements_.reduction_identity(op);
      return ir::apply_combine(elements_.math(), op, old, step.values[kernel_.ops[kernel_.outputs[o]].args[0]]);
    };
    llvm::Align align = element_align(DType::Float32);
    for (size_t o : outputs) {
      Value* old = nullptr;
      if (!reset)
        old = step.full ? static_cast<Value*>(b_.CreateAlignedLoad(elements_.float_vector(), address(o), align))
                   : b_.CreateMaskedLoad(elements_.float_vector(), address(o), align, step.mask,
                                         llvm::Constant::getNullValue(elements_.float_vector()));
      if (step.full)
        b_.CreateAlignedStore(update(o, old), address(o), align);
      else
        b_.CreateMaskedStore(update(o, old), address(o), align, step.mask);
    }
  }

  // ---- shared pieces ----

  // A row's prod accumulates in double: float32 partial products overflow long before the
  // product itself leaves float's range (see RowAccumulator).
  static bool accumulates_in_double(ir::OpCode op) { return op == ir::OpCode::Prod; }
  llvm::Type* accumulator_type(ir::OpCode op) {
    return accumulates_in_double(op) ? elements_.vector_of(b_.getDoubleTy()) : elements_.float_vector();
  }
  Value* accumulator_identity(ir::OpCode op) {
    return llvm::ConstantFP::get(accumulator_type(op), ir::reduction_identity(op));
  }
  static bool is_extremum(ir::OpCode op) { return op == ir::OpCode::Amax || op == ir::OpCode::Amin; }
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
    for (int width = lanes_; width > 1; width /= 2) {
      std::vector<int> low(width / 2), high(width / 2);
      for (int i = 0; i < width / 2; ++i) low[i] = i, high[i] = i + width / 2;
      value = combine(b_.CreateShuffleVector(value, low), b_.CreateShuffleVector(value, high));
    }
    return b_.CreateExtractElement(value, uint64_t{0});
  }

  Value* entry_alloca(llvm::Type* type) {
    llvm::IRBuilder<> entry(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
    return entry.CreateAlloca(type);
  }

  struct StashUse {
    Value* buffer = nullptr;  // the op's row buffer
    bool read = false;        // read it (else compute the op and write it)
  };
  // One sweep of the innermost dim over [start, stop) at the outer `indices` (see
  // LoopEmitter::emit_sweep), computing the `wanted` ops that are not `known`. The partial
  // step's loads are masked, and `consume` handles its valid lanes.
  void emit_sweep(Value* start, Value* stop, const std::vector<Value*>& indices,
                  const std::vector<Value*>& known, const std::vector<bool>& wanted,
                  const Consume& consume, const std::vector<StashUse>& stash = {},
                  Value* output_offset = nullptr) {
    size_t inner = rank() - 1;
    size_t count = kernel_.ops.size();
    // Values that do not change along the innermost dim are computed once per sweep.
    std::vector<Value*> invariant = known;
    invariant.resize(count, nullptr);
    std::vector<Value*> offsets(count, nullptr);
    for (size_t i = 0; i < count; ++i) {
      const ir::KernelOp& op = kernel_.ops[i];
      if (invariant[i] || !wanted[i]) continue;
      if (!op.strides.empty()) offsets[i] = loops_.outer_offset(op.strides, indices);
      bool varies = !op.strides.empty() && op.strides[inner] != 0;
      for (int32_t a : op.args) varies = varies || invariant[a] == nullptr;
      if (!varies) invariant[i] = elements_.emit_op(op, offsets[i], nullptr, nullptr, nullptr, invariant);
    }

    loops_.emit_sweep(start, stop, [&](const SweepStep& at) {
      // Contiguous loads: their addresses at this step.
      std::vector<Value*> load_addresses(count, nullptr);
      for (size_t i = 0; i < count; ++i) {
        if (wanted[i] && !invariant[i])
          load_addresses[i] = elements_.contiguous_address(kernel_.ops[i], offsets[i], at.j);
      }
      Value* mask = loops_.valid_lanes(at);
      std::vector<Value*> values = invariant;
      for (size_t i = 0; i < count; ++i) {
        if (values[i] || !wanted[i]) continue;
        Value* stashed = i < stash.size() && stash[i].buffer
                             ? b_.CreateInBoundsGEP(b_.getFloatTy(), stash[i].buffer, at.j) : nullptr;
        if (stashed && stash[i].read) {
          values[i] = b_.CreateAlignedLoad(elements_.float_vector(), stashed, llvm::Align(64));
          continue;
        }
        values[i] = elements_.emit_op(kernel_.ops[i], offsets[i], at.j, mask, load_addresses[i], values);
        if (stashed) b_.CreateAlignedStore(values[i], stashed, llvm::Align(64));
      }
      consume(Step{values, at.j, at.full, mask, output_offset});
    });
  }

  DType output_dtype(size_t output) const { return kernel_.ops[kernel_.outputs[output]].dtype; }

  // Outputs far larger than the last-level cache are written with non-temporal stores: they
  // cannot stay cached anyway, and streaming them skips reading each line before writing it
  // (up to 1.5x on write-heavy kernels). Needs every full step's store aligned to a whole
  // vector: buffers are 64-byte aligned, a flat domain is split at whole vectors, and a
  // nested one must have rows of whole vectors.
  bool streams_outputs() const {
    if (kernel_.kind == ir::KernelKind::ColumnReduction) return false;
    int64_t bytes = 0;
    for (size_t o = 0; o < kernel_.outputs.size(); ++o) {
      if (kernel_.ops[kernel_.outputs[o]].row) continue;
      if (output_dtype(o) != DType::Float32) return false;
      bytes += kernel_.elements() * dtype_size(DType::Float32);
    }
    bool aligned = kernel_.chunk && kernel_.domain.size() == 1
                       ? kernel_.chunk % lanes_ == 0
                       : kernel_.domain.size() == 1 || kernel_.domain.back() % lanes_ == 0;
    return aligned && bytes >= 2 * target_.last_level_cache_bytes;
  }
  const ir::Kernel& kernel_;
  const Target& target_;
  llvm::Function* fn_;
  llvm::LLVMContext& context_;
  llvm::IRBuilder<> b_;
  int lanes_;
  LoopEmitter loops_;
  std::vector<Value*> slots_;
  ElementalEmitter elements_;
  bool streaming_ = false;
};

}  // namespace

std::unique_ptr<llvm::Module> emit_kernel(const ir::Kernel& kernel, const Target& target,
                                          llvm::LLVMContext& context, const std::string& name) {
  auto module = std::make_unique<llvm::Module>(name, context);
  module->setTargetTriple(target.triple);
  llvm::IRBuilder<> types(context);
  auto* signature = llvm::FunctionType::get(
      types.getVoidTy(), {types.getPtrTy(), types.getInt64Ty(), types.getInt64Ty()}, false);
  auto* fn = llvm::Function::Create(signature, llvm::Function::ExternalLinkage, name, *module);
  fn->addFnAttr("target-cpu", target.cpu);
  fn->addFnAttr("target-features", target.features);
  fn->addFnAttr("prefer-vector-width", std::to_string(target.vector_bits));
  fn->addFnAttr(llvm::Attribute::NoUnwind);
  fn->addParamAttr(0, llvm::Attribute::NoAlias);
  KernelEmitter(kernel, target, fn).emit();
  return module;
}

}  // namespace fusejit::codegen
