// Fill kernels: one float32 output holding one value, a constant or a Scalar parameter. On x86
// a large part is written by `rep stosd`; the rest as an elementwise kernel.
#include <llvm/IR/InlineAsm.h>

#include <bit>

#include "codegen/strategies/kernel_emission.h"

namespace fusejit::codegen {
namespace {

using llvm::Value;

// A thread's range of at least 7/8 of the L2 cache is written with `rep stosd`, which fills
// whole cache lines without reading them first (4 MiB: 31 µs against 40 µs with vector
// stores); a smaller one stays in the L2, where vector stores are faster (512 KiB: 2.1 µs
// against 3.1 µs). The output is contiguous, so the range [begin, end) of dim 0 is one run.
// Streamed outputs (KernelEmission::streaming) skip the reads as well, with vector stores.
void emit_fill(KernelEmission& emission, Value* begin, Value* end) {
  if (emission.streaming() || !emission.target().string_fill) {
    kElementwiseStrategy.emit(emission, begin, end);
    return;
  }
  const ir::Kernel& kernel = emission.kernel();
  llvm::IRBuilderBase& b = emission.b();
  llvm::LLVMContext& context = b.getContext();
  int64_t per_index = ir::contiguous_strides(kernel.domain)[0];
  Value* count = b.CreateMul(b.CreateSub(end, begin), b.getInt64(per_index));
  int64_t string_minimum = emission.target().l2_cache_bytes / 8 * 7 / dtype_size(DType::Float32);
  auto* string_fill = llvm::BasicBlock::Create(context, "fill.string", emission.fn());
  auto* vector_fill = llvm::BasicBlock::Create(context, "fill.vector", emission.fn());
  auto* done = llvm::BasicBlock::Create(context, "fill.done", emission.fn());
  b.CreateCondBr(b.CreateICmpSGE(count, b.getInt64(string_minimum)), string_fill, vector_fill);

  b.SetInsertPoint(string_fill);
  Value* address = b.CreateInBoundsGEP(b.getFloatTy(), emission.output_pointer(0),
                                       b.CreateMul(begin, b.getInt64(per_index)));
  const ir::KernelOp& fill_op = kernel.ops[kernel.outputs[0]];
  Value* bits = fill_op.op == ir::OpCode::Scalar
                    ? b.CreateBitCast(emission.elements().scalar(fill_op.slot), b.getInt32Ty())
                    : b.getInt32(std::bit_cast<uint32_t>(static_cast<float>(fill_op.params.value)));
  llvm::Type* ptr = b.getPtrTy();
  llvm::Type* i64 = b.getInt64Ty();
  auto* type = llvm::FunctionType::get(llvm::StructType::get(context, {ptr, i64}),
                                       {ptr, i64, b.getInt32Ty()}, false);
  auto* fill = llvm::InlineAsm::get(type, "rep stosl",
                                    "={di},={cx},0,1,{ax},~{memory},~{dirflag},~{fpsr},~{flags}",
                                    /*hasSideEffects=*/true);
  b.CreateCall(fill, {address, count, bits});
  b.CreateBr(done);

  b.SetInsertPoint(vector_fill);
  kElementwiseStrategy.emit(emission, begin, end);
  b.CreateBr(done);
  b.SetInsertPoint(done);
}

}  // namespace

const Strategy kFillStrategy = {native_lanes, /*may_stream=*/true, emit_fill};

}  // namespace fusejit::codegen
