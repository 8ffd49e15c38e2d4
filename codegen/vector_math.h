// Vectorized float32 math emitted as inline LLVM IR (no libm calls), for float or <N x float>.
//
// LLVM's vector-library tables cover neither tanh nor 16-wide x86, so scalar libm calls would
// stay in every loop. Each function here expands to polynomials over the operand's own type, so
// it vectorizes at whatever width the caller uses. Accuracy (max error against the correctly
// rounded result, over all float32 inputs tested) is stated at each definition.
#pragma once

#include <llvm/IR/IRBuilder.h>

namespace fusejit::codegen::vmath {

llvm::Value* exp(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* expm1(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* log(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* log1p(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* tanh(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* sigmoid(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* gelu(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* sin(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* cos(llvm::IRBuilderBase& b, llvm::Value* x);
llvm::Value* pow(llvm::IRBuilderBase& b, llvm::Value* x, llvm::Value* y);

}  // namespace fusejit::codegen::vmath
