#include "codegen/strategies/product_emission.h"

#include <llvm/IR/Constants.h>

#include <vector>

#include "codegen/emit_kernel.h"

namespace fusejit::codegen {

ProductEmitter::ProductEmitter(KernelEmission& emission)
    : StrategyEmitter(emission),
      rank_(kernel_.domain.size()),
      lanes_(emission.lanes()),
      output_strides_(ir::contiguous_strides(kernel_.domain)),
      vector_(llvm::cast<llvm::FixedVectorType>(float_vector_)) {
  for (size_t i = 0; i < kernel_.ops.size(); ++i)
    if (ir::is_product(kernel_.ops[i].op)) product_ = static_cast<int32_t>(i);
  wanted_.assign(kernel_.ops.size(), false);
  for (int32_t output : kernel_.outputs) wanted_[output] = true;
  for (size_t i = kernel_.ops.size(); i-- > 0;)
    if (wanted_[i] && static_cast<int32_t>(i) != product_)
      for (int32_t a : kernel_.ops[i].args) wanted_[a] = true;
}

llvm::Value* ProductEmitter::operand_offset(int k, Value* row, Value* column) {
  const ir::KernelOp& op = operand(k);
  return b_.CreateAdd(loops_.outer_offset(op.strides, indices_),
                      b_.CreateAdd(b_.CreateMul(row, i64(stride(k, 2))), b_.CreateMul(column, i64(stride(k, 1)))));
}

llvm::Value* ProductEmitter::lane_positions(int lanes, Value* start) {
  std::vector<llvm::Constant*> steps;
  for (int l = 0; l < lanes; ++l) steps.push_back(b_.getInt64(l));
  return b_.CreateAdd(b_.CreateVectorSplat(static_cast<unsigned>(lanes), start), llvm::ConstantVector::get(steps));
}

llvm::Value* ProductEmitter::lanes_below(int lanes, Value* left) {
  std::vector<uint32_t> ids;
  for (int l = 0; l < lanes; ++l) ids.push_back(static_cast<uint32_t>(l));
  return b_.CreateICmpSLT(llvm::ConstantDataVector::get(b_.getContext(), ids),
                          b_.CreateVectorSplat(static_cast<unsigned>(lanes), b_.CreateTrunc(left, b_.getInt32Ty())));
}

llvm::Value* ProductEmitter::prologue_at(int k, Value* row, Value* column, Value* valid) {
  auto root = static_cast<size_t>(kernel_.ops[product_].args[k]);
  std::vector<bool> needed(root + 1, false);
  needed[root] = true;
  for (size_t i = root + 1; i-- > 0;)
    if (needed[i])
      for (int32_t a : kernel_.ops[i].args) needed[a] = true;
  std::vector<Value*> values(kernel_.ops.size(), nullptr);
  for (size_t i = 0; i <= root; ++i) {
    if (!needed[i]) continue;
    const ir::KernelOp& op = kernel_.ops[i];
    Value* offset = nullptr;
    Value* along = nullptr;  // null where the op does not vary along the columns
    Value* address = nullptr;
    if (!op.strides.empty()) {
      offset = b_.CreateAdd(loops_.outer_offset(op.strides, indices_), b_.CreateMul(row, i64(op.strides[rank_ - 2])));
      if (op.strides.back() != 0) along = column;
      if (along) address = elements_.contiguous_address(op, offset, along);
    }
    values[i] = elements_.emit_op(op, offset, along, valid, address, values);
  }
  return values[root];
}

llvm::Value* ProductEmitter::operand_value(int k) {
  return b_.CreateExtractElement(elements_.emit_op(operand(k), nullptr, nullptr, nullptr, nullptr, {}), i64(0));
}

llvm::Value* ProductEmitter::scratch(int64_t bytes) {
  llvm::Module* module = emission_.fn()->getParent();
  llvm::FunctionCallee workspace = module->getOrInsertFunction(
      kThreadWorkspaceSymbol, llvm::FunctionType::get(b_.getPtrTy(), {b_.getInt64Ty()}, false));
  return b_.CreateCall(workspace, {i64(bytes)});
}

void ProductEmitter::for_valid_rows(int count, Value* rows_left, const std::function<void(int)>& body) {
  for (int i = 0; i < count; ++i) {
    auto* run = llvm::BasicBlock::Create(b_.getContext(), "row", emission_.fn());
    auto* next = llvm::BasicBlock::Create(b_.getContext(), "row.next", emission_.fn());
    b_.CreateCondBr(b_.CreateICmpSLT(i64(i), rows_left), run, next);
    b_.SetInsertPoint(run);
    body(i);
    b_.CreateBr(next);
    b_.SetInsertPoint(next);
  }
}

void ProductEmitter::finish_row(Value* row, Value* n0, Value* value) {
  indices_.push_back(row);
  std::vector<Value*> known(kernel_.ops.size(), nullptr);
  known[product_] = value;
  Value* output_offset = loops_.outer_offset(output_strides_, indices_);
  Value* stop = smin(b_.CreateAdd(n0, i64(lanes_)), i64(columns()));
  emission_.sweep(n0, stop, indices_, known, wanted_,
                  [&](const StepValues& step) { emission_.store_outputs(step, output_offset, false); });
  indices_.pop_back();
}

}  // namespace fusejit::codegen
