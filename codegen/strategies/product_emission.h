// What the strategies of ops that read their operands whole share (matmul.cpp, attention.cpp):
// the operands where they lie, the thread's scratch memory, and the epilogue, which runs on a
// row's finished values (known to the sweep as the product's) and stores the outputs.
#pragma once

#include <llvm/IR/Intrinsics.h>

#include "codegen/strategies/kernel_emission.h"

namespace fusejit::codegen {

class ProductEmitter : public StrategyEmitter {
 protected:
  explicit ProductEmitter(KernelEmission& emission);

  using Value = llvm::Value;
  Value* i64(int64_t value) { return b_.getInt64(value); }
  Value* smin(Value* a, Value* c) { return b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, a, c); }
  Value* smax(Value* a, Value* c) { return b_.CreateBinaryIntrinsic(llvm::Intrinsic::smax, a, c); }
  Value* float_at(Value* base, Value* offset) { return b_.CreateGEP(b_.getFloatTy(), base, offset); }
  int64_t columns() const { return kernel_.domain.back(); }
  const ir::KernelOp& operand(int k) const { return kernel_.ops[kernel_.ops[product_].args[k]]; }
  // Whether operand k is read from memory; else it is a value broadcast over its shape, or
  // (has_prologue) computed by ops of its own.
  bool in_memory(int k) const { return operand(k).op == ir::OpCode::Input; }
  // Whether operand k is computed by its prologue: elementwise ops over the operand's
  // [batch..., rows, columns] (ir::KernelOp::operand), applied as the operand is packed.
  bool has_prologue(int k) const {
    return !in_memory(k) && ir::op_info(operand(k).op).pattern != ir::FusionPattern::Broadcast;
  }
  // Operand k's prologue at row `row`, columns [column, column + lanes) (the lanes off in
  // `valid` are not read), at the current outer indices.
  Value* prologue_at(int k, Value* row, Value* column, Value* valid);
  // Operand k's stride along its rows (-2) or columns (-1).
  int64_t stride(int k, int from_end) const { return operand(k).strides[rank_ - from_end]; }
  // The offset of operand k's element (row, column) at the current outer indices.
  Value* operand_offset(int k, Value* row, Value* column);
  // Operand k's value where it is a value broadcast over its shape (not in memory), as a scalar.
  Value* operand_value(int k);

  // A vector of `lanes` i64 whose lane l is start + l.
  Value* lane_positions(int lanes, Value* start);
  // A mask of `lanes` lanes: those below `left` (an i64 count below 2^31) set.
  Value* lanes_below(int lanes, Value* left);

  // The thread's scratch memory of `bytes` (runtime's thread workspace).
  Value* scratch(int64_t bytes);
  // `body` for each of the first `count` rows i that lie below `rows_left`.
  void for_valid_rows(int count, Value* rows_left, const std::function<void(int)>& body);
  // The epilogue at row `row`, columns [n0, n0 + lanes) (those inside the result): the product's
  // value there is `value`; the outputs are stored.
  void finish_row(Value* row, Value* n0, Value* value);

  size_t rank_;
  int lanes_;
  ir::Strides output_strides_;
  llvm::FixedVectorType* vector_;
  int32_t product_ = -1;
  std::vector<bool> wanted_;  // the ops the outputs need, the product's operands aside
  std::vector<Value*> indices_;
};

}  // namespace fusejit::codegen
