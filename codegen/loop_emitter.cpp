#include "codegen/loop_emitter.h"

#include <llvm/IR/Constants.h>
#include <llvm/IR/Intrinsics.h>

namespace fusejit::codegen {

using llvm::Value;

LoopEmitter::LoopEmitter(llvm::IRBuilderBase& b, llvm::Function* fn, const ir::Kernel& kernel,
                         int lanes)
    : b_(b), fn_(fn), kernel_(kernel), lanes_(lanes) {
  std::vector<uint32_t> lane_ids(lanes_);
  for (int i = 0; i < lanes_; ++i) lane_ids[i] = i;
  lane_ids32_ = llvm::ConstantDataVector::get(b_.getContext(), lane_ids);
}

void LoopEmitter::emit_for(Value* start, Value* stop, int64_t step,
                           const std::function<void(Value*)>& body) {
  llvm::BasicBlock* preheader = b_.GetInsertBlock();
  auto* loop = llvm::BasicBlock::Create(b_.getContext(), "loop", fn_);
  auto* exit = llvm::BasicBlock::Create(b_.getContext(), "exit", fn_);
  b_.CreateCondBr(b_.CreateICmpSLT(start, stop), loop, exit);
  b_.SetInsertPoint(loop);
  llvm::PHINode* index = b_.CreatePHI(b_.getInt64Ty(), 2, "i");
  index->addIncoming(start, preheader);
  body(index);
  Value* next = b_.CreateAdd(index, b_.getInt64(step), "", true, true);
  index->addIncoming(next, b_.GetInsertBlock());
  b_.CreateCondBr(b_.CreateICmpSLT(next, stop), loop, exit);
  b_.SetInsertPoint(exit);
}

void LoopEmitter::emit_nest(size_t dim, size_t last, const Range& range,
                            std::vector<Value*>& indices, const std::function<void()>& inner) {
  if (dim == last) {
    inner();
    return;
  }
  Value* start = dim == range.dim ? range.begin : b_.getInt64(0);
  Value* stop = dim == range.dim ? range.end : b_.getInt64(kernel_.domain[dim]);
  emit_for(start, stop, 1, [&](Value* index) {
    indices.push_back(index);
    emit_nest(dim + 1, last, range, indices, inner);
    indices.pop_back();
  });
}

Range LoopEmitter::entry_range(Value* begin, Value* end) const {
  return Range{static_cast<size_t>(kernel_.parallel_range().dim), begin, end};
}

Range LoopEmitter::chunk_range(Value* p) {
  Value* first = b_.CreateMul(p, b_.getInt64(kernel_.chunk));
  Value* last = b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin,
                                         b_.CreateAdd(first, b_.getInt64(kernel_.chunk)),
                                         b_.getInt64(kernel_.domain[0]));
  return Range{0, first, last};
}

std::pair<Value*, Value*> LoopEmitter::inner_bounds(const Range& range) {
  if (range.dim == rank() - 1) return {range.begin, range.end};
  return {b_.getInt64(0), b_.getInt64(kernel_.domain.back())};
}

Value* LoopEmitter::outer_offset(const ir::Strides& strides, const std::vector<Value*>& indices) {
  Value* offset = b_.getInt64(0);
  for (size_t d = 0; d < indices.size(); ++d)
    if (strides[d] != 0)
      offset = b_.CreateAdd(offset, b_.CreateMul(indices[d], b_.getInt64(strides[d])));
  return offset;
}

void LoopEmitter::emit_sweep(Value* start, Value* stop,
                             const std::function<void(const SweepStep&)>& step) {
  // Full steps up to the last whole vector, then the partial step if any.
  Value* whole_stop = b_.CreateAdd(
      start, b_.CreateMul(b_.CreateSDiv(b_.CreateSub(stop, start), b_.getInt64(lanes_)), b_.getInt64(lanes_)));
  emit_for(start, whole_stop, lanes_, [&](Value* j) { step(SweepStep{j, true, stop}); });
  auto* partial = llvm::BasicBlock::Create(b_.getContext(), "partial.step", fn_);
  auto* done = llvm::BasicBlock::Create(b_.getContext(), "sweep.done", fn_);
  b_.CreateCondBr(b_.CreateICmpSLT(whole_stop, stop), partial, done);
  b_.SetInsertPoint(partial);
  step(SweepStep{whole_stop, false, stop});
  b_.CreateBr(done);
  b_.SetInsertPoint(done);
}

Value* LoopEmitter::valid_lanes(const SweepStep& step) {
  if (step.full) return llvm::Constant::getAllOnesValue(llvm::VectorType::get(b_.getInt1Ty(), lanes_, false));
  Value* remaining32 = b_.CreateTrunc(b_.CreateSub(step.stop, step.j), b_.getInt32Ty());
  return b_.CreateICmpSLT(lane_ids32_, b_.CreateVectorSplat(lanes_, remaining32));
}

}  // namespace fusejit::codegen
