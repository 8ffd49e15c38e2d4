#include "codegen/elemental_emitter.h"

#include <llvm/IR/Constants.h>

#include <numbers>
#include <span>

#include "ir/random.h"

namespace fusejit::codegen {

// Inner strides up to this are loaded as one span and thinned (see emit_load).
constexpr int64_t kLoadSpanStrides = 4;

using llvm::Value;

llvm::Align element_align(DType dtype) { return llvm::Align(dtype_size(dtype)); }

ElementalEmitter::ElementalEmitter(llvm::IRBuilderBase& b, const ir::Kernel& kernel,
                                   const Target& target, int lanes,
                                   const std::vector<Value*>& slots)
    : b_(b),
      kernel_(kernel),
      lanes_(lanes),
      slots_(slots),
      i64_(b_.getInt64Ty()),
      float_vector_(llvm::FixedVectorType::get(b_.getFloatTy(), lanes_)),
      index_vector_(llvm::FixedVectorType::get(i64_, lanes_)),
      math_(b_, target, float_vector_) {
  load_parameters();
  std::vector<uint64_t> lane_ids(lanes_);
  for (int i = 0; i < lanes_; ++i) lane_ids[i] = i;
  lane_ids_ = llvm::ConstantDataVector::get(b_.getContext(), lane_ids);
}

llvm::VectorType* ElementalEmitter::vector_of(llvm::Type* element) const {
  return llvm::FixedVectorType::get(element, lanes_);
}

llvm::Type* ElementalEmitter::element_type(DType dtype) const {
  switch (dtype) {
    case DType::Float32: return b_.getFloatTy();
    case DType::Bool: return b_.getInt8Ty();
    case DType::Int64: return b_.getInt64Ty();
  }
  return nullptr;
}

// The run-time values, read once in the entry block: each Scalar's float, and the stream keys
// of each generator's seed (ir::random::stream_key).
void ElementalEmitter::load_parameters() {
  size_t first = kernel_.input_dtypes.size() + kernel_.outputs.size();
  scalars_.resize(kernel_.parameters, nullptr);
  for (const ir::KernelOp& op : kernel_.ops) {
    if (!ir::has_run_time_value(op.op)) continue;
    Value* pointer = slots_[first + op.slot];
    if (op.op == ir::OpCode::Scalar && !scalars_[op.slot]) {
      scalars_[op.slot] = b_.CreateLoad(b_.getFloatTy(), pointer, "scalar");
    } else if (op.op != ir::OpCode::Scalar) {
      Value* seed = b_.CreateLoad(i64_, pointer, "seed");
      for (uint32_t stream : op.op == ir::OpCode::Rand ? std::vector<uint32_t>{0} : std::vector<uint32_t>{1, 2})
        if (!stream_keys_.count({op.slot, stream})) stream_keys_[{op.slot, stream}] = stream_key(seed, stream);
    }
  }
}

// ir::random::stream_key of a seed loaded at run time.
Value* ElementalEmitter::stream_key(Value* seed, uint32_t stream) {
  llvm::Type* u32 = b_.getInt32Ty();
  Value* high = mix(b_.CreateXor(b_.CreateTrunc(b_.CreateLShr(seed, 32), u32),
                                 b_.getInt32(stream * 0x9e3779b9u + 0x632be5abu)));
  return mix(b_.CreateXor(b_.CreateTrunc(seed, u32), high));
}

Value* ElementalEmitter::contiguous_address(const ir::KernelOp& op, Value* offset, Value* j) {
  if (op.op != ir::OpCode::Input || op.strides.back() != 1) return nullptr;
  return b_.CreateInBoundsGEP(element_type(op.dtype), slots_[op.slot], b_.CreateAdd(offset, j));
}

// The flat indices of the lanes: offset + (j + lane) * stride, or a splat of the offset when
// `j` is null (invariant along the innermost dim).
Value* ElementalEmitter::lane_indices(Value* offset, Value* j, int64_t stride) {
  if (!j) return b_.CreateVectorSplat(lanes_, offset);
  Value* first = b_.CreateAdd(offset, b_.CreateMul(j, b_.getInt64(stride)));
  Value* steps = stride == 1 ? lane_ids_ : b_.CreateMul(lane_ids_, llvm::ConstantInt::get(index_vector_, stride));
  return b_.CreateAdd(b_.CreateVectorSplat(lanes_, first), steps);
}

Value* ElementalEmitter::emit_op(const ir::KernelOp& op, Value* offset, Value* j, Value* mask,
                                 Value* address, const std::vector<Value*>& values) {
  VectorMath& math = math_;
  size_t inner = kernel_.domain.size() - 1;
  int64_t stride = op.strides.empty() ? 0 : op.strides[inner];
  switch (op.op) {
    case ir::OpCode::Input:
      return emit_load(op, offset, j, mask, address, stride);
    case ir::OpCode::Gather: {
      llvm::Type* element = element_type(op.dtype);
      Value* index = b_.CreateMul(values[op.args[0]], llvm::ConstantInt::get(index_vector_, op.gather_stride));
      Value* addresses = b_.CreateInBoundsGEP(element, slots_[op.slot], b_.CreateAdd(lane_indices(offset, j, stride), index));
      Value* valid = mask ? mask : llvm::Constant::getAllOnesValue(vector_of(b_.getInt1Ty()));
      Value* gathered = b_.CreateMaskedGather(vector_of(element), addresses, element_align(op.dtype), valid);
      if (op.dtype == DType::Bool) return b_.CreateICmpNE(gathered, llvm::Constant::getNullValue(gathered->getType()));
      return gathered;
    }
    case ir::OpCode::Constant:
      if (op.dtype == DType::Bool)
        return llvm::ConstantInt::get(vector_of(b_.getInt1Ty()), op.params.value != 0);
      if (op.dtype == DType::Int64) {
        // As cvttsd2si converts what int64 cannot hold: to INT64_MIN.
        double value = op.params.value;
        bool fits = value >= -0x1p63 && value < 0x1p63;
        return llvm::ConstantInt::get(index_vector_, fits ? static_cast<int64_t>(value) : INT64_MIN, true);
      }
      return math.c(op.params.value);
    case ir::OpCode::Scalar:
      return b_.CreateVectorSplat(lanes_, scalars_[op.slot]);
    case ir::OpCode::Arange: {
      llvm::Type* doubles = vector_of(b_.getDoubleTy());
      Value* index = b_.CreateSIToFP(lane_indices(offset, j, stride), doubles);
      Value* value = b_.CreateFAdd(llvm::ConstantFP::get(doubles, op.params.value),
                                   b_.CreateFMul(index, llvm::ConstantFP::get(doubles, op.params.step)));
      return b_.CreateFPTrunc(value, float_vector_);
    }
    case ir::OpCode::Rand:
      return unit_interval(random_bits(op.slot, 0, lane_indices(offset, j, stride)));
    case ir::OpCode::Randn: {
      Value* index = lane_indices(offset, j, stride);
      Value* u1 = math.add(unit_interval(random_bits(op.slot, 1, index)), math.c(0x1p-24));
      Value* u2 = unit_interval(random_bits(op.slot, 2, index));
      Value* radius = math.sqrt(math.mul(math.c(-2), math.log(u1)));
      return math.mul(radius, math.cos(math.mul(math.c(2 * std::numbers::pi), u2)));
    }
    default: {
      std::vector<Value*> args;
      for (int32_t a : op.args) args.push_back(values[a]);
      return ir::apply_formula(math, op.op, std::span<Value* const>(args));
    }
  }
}

Value* ElementalEmitter::emit_load(const ir::KernelOp& op, Value* offset, Value* j, Value* mask,
                                   Value* address, int64_t stride) {
  llvm::Type* element = element_type(op.dtype);
  Value* base = slots_[op.slot];
  Value* loaded;
  if (!j) {
    Value* scalar = b_.CreateLoad(element, b_.CreateInBoundsGEP(element, base, offset));
    loaded = b_.CreateVectorSplat(lanes_, scalar);
  } else if (stride == 1) {
    // Lanes past the end read as 0, which every consumer of a partial step masks again.
    loaded = b_.CreateMaskedLoad(vector_of(element), address, element_align(op.dtype), mask,
                                 llvm::Constant::getNullValue(vector_of(element)));
  } else if (stride >= 2 && stride <= kLoadSpanStrides) {
    // A small stride: one masked load of the span, then every stride-th lane. A gather brings
    // one element per lane and defeats the hardware prefetcher: x.slice(1, 0, n, 2) * 2 at
    // 4096² ran 1.3x slower than libtorch with gathers. Only the lanes kept are read.
    int wide = lanes_ * static_cast<int>(stride);
    std::vector<int> spread(wide), picked(lanes_);
    std::vector<llvm::Constant*> kept(wide);
    for (int k = 0; k < wide; ++k) {
      spread[k] = k / static_cast<int>(stride);
      kept[k] = b_.getInt1(k % stride == 0);
    }
    for (int l = 0; l < lanes_; ++l) picked[l] = l * static_cast<int>(stride);
    Value* span_mask = b_.CreateAnd(b_.CreateShuffleVector(mask, spread), llvm::ConstantVector::get(kept));
    auto* span = llvm::FixedVectorType::get(element, wide);
    Value* first = b_.CreateInBoundsGEP(element, base, b_.CreateAdd(offset, b_.CreateMul(j, b_.getInt64(stride))));
    Value* wide_load = b_.CreateMaskedLoad(span, first, element_align(op.dtype), span_mask,
                                           llvm::Constant::getNullValue(span));
    loaded = b_.CreateShuffleVector(wide_load, picked);
  } else {
    Value* addresses = b_.CreateInBoundsGEP(element, base, lane_indices(offset, j, stride));
    loaded = b_.CreateMaskedGather(vector_of(element), addresses, element_align(op.dtype), mask);
  }
  if (op.dtype == DType::Bool)
    return b_.CreateICmpNE(loaded, llvm::Constant::getNullValue(loaded->getType()));
  return loaded;
}

// ir::random::mix on an i32 or a vector of them.
Value* ElementalEmitter::mix(Value* x) {
  auto k = [&](uint32_t value) { return llvm::ConstantInt::get(x->getType(), value); };
  x = b_.CreateXor(x, b_.CreateLShr(x, k(16)));
  x = b_.CreateMul(x, k(ir::random::kMix1));
  x = b_.CreateXor(x, b_.CreateLShr(x, k(15)));
  x = b_.CreateMul(x, k(ir::random::kMix2));
  return b_.CreateXor(x, b_.CreateLShr(x, k(16)));
}

// ir::random::bits on a vector of flat indices, for the seed in parameter `slot`.
Value* ElementalEmitter::random_bits(int32_t slot, uint32_t stream, Value* index) {
  auto* u32 = vector_of(b_.getInt32Ty());
  Value* low = b_.CreateTrunc(index, u32);
  Value* high = b_.CreateTrunc(b_.CreateLShr(index, llvm::ConstantInt::get(index_vector_, 32)), u32);
  Value* key = b_.CreateVectorSplat(lanes_, stream_keys_.at({slot, stream}));
  return mix(b_.CreateXor(mix(b_.CreateXor(low, key)), high));
}

Value* ElementalEmitter::unit_interval(Value* bits) {
  Value* top = b_.CreateLShr(bits, llvm::ConstantInt::get(bits->getType(), 8));
  return b_.CreateFMul(b_.CreateUIToFP(top, float_vector_), llvm::ConstantFP::get(float_vector_, 0x1p-24));
}

}  // namespace fusejit::codegen
