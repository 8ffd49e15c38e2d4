// Vectorized float32 math emitted as inline LLVM IR (no libm calls), for float or <N x float>.
//
// LLVM's vector-library tables cover neither tanh nor 16-wide x86, so scalar libm calls would
// stay in every loop. Each function here expands to polynomials over the operand's own type, so
// it vectorizes at whatever width the caller uses. Accuracy (max error against the correctly
// rounded result, over all float32 inputs tested) is stated at each definition. exp, sigmoid,
// gelu and pow have faster forms on whole AVX-512 or AVX2 registers, used where the target has
// them.
//
// VectorMath is the LLVM backend of the op table's formulas (ir/ops.h), as ReferenceMath
// (ir/reference.h) is the double-precision one.
#pragma once

#include <llvm/IR/Constants.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>

#include "codegen/target.h"

namespace fusejit::codegen {
namespace vmath {

llvm::Value* exp(llvm::IRBuilderBase& b, const Target& target, llvm::Value* x);
llvm::Value* expm1(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* log(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* log1p(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* tanh(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* sigmoid(llvm::IRBuilderBase& b, const Target& target, llvm::Value* x);
llvm::Value* gelu(llvm::IRBuilderBase& b, const Target& target, llvm::Value* x);
llvm::Value* sin(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* cos(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* pow(llvm::IRBuilderBase& b, const Target& target, llvm::Value* x, llvm::Value* y);

}  // namespace vmath

// The LLVM backend of the op table's formulas: every value is a vector of the loop's width.
class VectorMath {
 public:
  using Value = llvm::Value*;
  VectorMath(llvm::IRBuilderBase& b, const Target& target, llvm::Type* float_type)
      : b_(b), target_(target), float_type_(float_type) {}

  Value c(double value) { return llvm::ConstantFP::get(float_type_, value); }
  Value add(Value x, Value y) { return b_.CreateFAdd(x, y); }
  Value sub(Value x, Value y) { return b_.CreateFSub(x, y); }
  Value mul(Value x, Value y) { return b_.CreateFMul(x, y); }
  Value div(Value x, Value y) { return b_.CreateFDiv(x, y); }
  Value neg(Value x) { return b_.CreateFNeg(x); }
  Value abs(Value x) { return b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, x); }
  Value sqrt(Value x) { return b_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, x); }
  Value max(Value x, Value y);
  Value min(Value x, Value y);
  Value exp(Value x) { return vmath::exp(b_, target_, x); }
  Value expm1(Value x) { return vmath::expm1(b_, x); }
  Value log(Value x) { return vmath::log(b_, x); }
  Value log1p(Value x) { return vmath::log1p(b_, x); }
  Value sin(Value x) { return vmath::sin(b_, x); }
  Value cos(Value x) { return vmath::cos(b_, x); }
  Value tanh(Value x) { return vmath::tanh(b_, x); }
  Value sigmoid(Value x) { return vmath::sigmoid(b_, target_, x); }
  Value gelu(Value x) { return vmath::gelu(b_, target_, x); }
  Value pow(Value x, Value y) { return vmath::pow(b_, target_, x, y); }
  Value eq(Value x, Value y) { return b_.CreateFCmpOEQ(x, y); }
  Value ne(Value x, Value y) { return b_.CreateFCmpUNE(x, y); }
  Value lt(Value x, Value y) { return b_.CreateFCmpOLT(x, y); }
  Value le(Value x, Value y) { return b_.CreateFCmpOLE(x, y); }
  Value gt(Value x, Value y) { return b_.CreateFCmpOGT(x, y); }
  Value ge(Value x, Value y) { return b_.CreateFCmpOGE(x, y); }
  Value select(Value cond, Value x, Value y) { return b_.CreateSelect(cond, x, y); }
  Value to_float(Value x);
  Value to_int64(Value x);

 private:
  llvm::IRBuilderBase& b_;
  const Target& target_;
  llvm::Type* float_type_;
};

}  // namespace fusejit::codegen
