// Matmul kernels: the product over [batch..., M, N] in blocks of `block_rows` rows by one step
// of columns (two native vectors), each block's sums in registers over the whole of K: a
// broadcast element of A times a vector of B's row, added with one fused multiply-add into
// each row's accumulator. The epilogue (the kernel's other ops) then runs on each row of the
// block while its sums are still in registers, through the same sweep as elementwise kernels,
// with the product's value known, and stores the outputs.
//
// Operands are read where they lie (any strides: a transposed weight is not copied); a row of
// B read across its memory is gathered. Sums run in float32 in the order k = 0, 1, ..., so a
// result is the same for any thread count.
#include <llvm/IR/Constants.h>
#include <llvm/IR/Intrinsics.h>

#include "codegen/strategies/kernel_emission.h"

namespace fusejit::codegen {
namespace {

using llvm::Value;

// Rows per block: their accumulators (two registers each), a vector of B and a broadcast fill
// the register file (16 registers below AVX-512, 32 with it).
int block_rows(const Target& target) { return target.vector_bits >= 512 ? 12 : 6; }

class MatMulEmitter : public StrategyEmitter {
 public:
  explicit MatMulEmitter(KernelEmission& emission)
      : StrategyEmitter(emission),
        rank_(kernel_.domain.size()),
        lanes_(emission.lanes()),
        block_rows_(block_rows(emission.target())),
        output_strides_(ir::contiguous_strides(kernel_.domain)) {
    for (size_t i = 0; i < kernel_.ops.size(); ++i)
      if (kernel_.ops[i].op == ir::OpCode::MatMul) product_ = static_cast<int32_t>(i);
    // The ops the outputs need, the product's operands aside (the product reads those itself).
    wanted_.assign(kernel_.ops.size(), false);
    for (int32_t output : kernel_.outputs) wanted_[output] = true;
    for (size_t i = kernel_.ops.size(); i-- > 0;)
      if (wanted_[i] && static_cast<int32_t>(i) != product_)
        for (int32_t a : kernel_.ops[i].args) wanted_[a] = true;
  }

  void emit(Value* begin, Value* end) {
    Range range = loops_.entry_range(begin, end);
    size_t rows = rank_ - 2;
    loops_.emit_nest(0, rows, range, indices_, [&] {
      Value* row_begin = range.dim == rows ? range.begin : b_.getInt64(0);
      Value* row_end = range.dim == rows ? range.end : b_.getInt64(kernel_.domain[rows]);
      loops_.emit_for(row_begin, row_end, block_rows_, [&](Value* m0) {
        loops_.emit_for(b_.getInt64(0), b_.getInt64(kernel_.domain.back()), lanes_,
                        [&](Value* n0) { block(m0, row_end, n0); });
      });
    });
  }

 private:
  Value* smin(Value* a, Value* c) { return b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, a, c); }

  const ir::KernelOp& operand(int k) const { return kernel_.ops[kernel_.ops[product_].args[k]]; }

  // Element offset of operand `k` at the current batch indices.
  Value* batch_offset(int k) { return loops_.outer_offset(operand(k).strides, indices_); }

  // Rows [m0, min(m0 + block_rows, row_end)) by columns [n0, n0 + lanes) of the result.
  void block(Value* m0, Value* row_end, Value* n0) {
    const ir::Kernel& kernel = kernel_;
    int64_t columns = kernel.domain.back();
    int64_t last_row = kernel.domain[rank_ - 2] - 1;
    auto* vector = llvm::cast<llvm::FixedVectorType>(float_vector_);
    std::vector<uint32_t> lane_ids;
    for (int l = 0; l < lanes_; ++l) lane_ids.push_back(static_cast<uint32_t>(l));
    Value* valid = b_.CreateICmpSLT(llvm::ConstantDataVector::get(b_.getContext(), lane_ids),
                                    b_.CreateVectorSplat(lanes_, b_.CreateTrunc(b_.CreateSub(b_.getInt64(columns), n0),
                                                                                b_.getInt32Ty())));
    const ir::KernelOp& a = operand(0);
    const ir::KernelOp& bm = operand(1);
    bool a_in_memory = a.op == ir::OpCode::Input;
    bool b_in_memory = bm.op == ir::OpCode::Input;
    // Rows past the result's last read its last row instead: their sums are never stored.
    std::vector<Value*> a_rows(block_rows_, nullptr);
    if (a_in_memory) {
      Value* base = batch_offset(0);
      for (int i = 0; i < block_rows_; ++i) {
        Value* row = smin(b_.CreateAdd(m0, b_.getInt64(i)), b_.getInt64(last_row));
        a_rows[i] = b_.CreateAdd(base, b_.CreateMul(row, b_.getInt64(a.strides[rank_ - 2])));
      }
    }
    Value* b_columns = nullptr;
    if (b_in_memory)
      b_columns = b_.CreateAdd(batch_offset(1), b_.CreateMul(n0, b_.getInt64(bm.strides[rank_ - 1])));
    std::vector<Value*> leaf(2, nullptr);
    for (int k = 0; k < 2; ++k)
      if (operand(k).op != ir::OpCode::Input)
        leaf[k] = elements_.emit_op(operand(k), nullptr, nullptr, nullptr, nullptr, {});

    std::vector<llvm::AllocaInst*> sums;
    {
      llvm::IRBuilder<> entry(&emission_.fn()->getEntryBlock(), emission_.fn()->getEntryBlock().begin());
      for (int i = 0; i < block_rows_; ++i) sums.push_back(entry.CreateAlloca(vector));
    }
    Value* zero = llvm::Constant::getNullValue(vector);
    for (llvm::AllocaInst* sum : sums) b_.CreateStore(zero, sum);
    loops_.emit_for(b_.getInt64(0), b_.getInt64(kernel.contraction), 1, [&](Value* k) {
      Value* row_of_b = leaf[1];
      if (b_in_memory) {
        Value* offset = b_.CreateAdd(b_columns, b_.CreateMul(k, b_.getInt64(bm.strides[rank_ - 2])));
        Value* base = emission_.input_pointer(bm.slot);
        Value* zeros = llvm::Constant::getNullValue(vector);
        if (bm.strides[rank_ - 1] == 1) {
          row_of_b = b_.CreateMaskedLoad(vector, b_.CreateGEP(b_.getFloatTy(), base, offset), llvm::Align(4), valid, zeros);
        } else {
          Value* addresses =
              b_.CreateGEP(b_.getFloatTy(), base, elements_.lane_indices(offset, b_.getInt64(0), bm.strides[rank_ - 1]));
          row_of_b = b_.CreateMaskedGather(vector, addresses, llvm::Align(4), valid, zeros);
        }
      }
      for (int i = 0; i < block_rows_; ++i) {
        Value* element = leaf[0];
        if (a_in_memory) {
          Value* offset = b_.CreateAdd(a_rows[i], b_.CreateMul(k, b_.getInt64(a.strides[rank_ - 1])));
          Value* scalar = b_.CreateLoad(b_.getFloatTy(), b_.CreateGEP(b_.getFloatTy(), emission_.input_pointer(a.slot), offset));
          element = b_.CreateVectorSplat(lanes_, scalar);
        }
        Value* sum = b_.CreateLoad(vector, sums[i]);
        b_.CreateStore(b_.CreateIntrinsic(llvm::Intrinsic::fma, {vector}, {element, row_of_b, sum}), sums[i]);
      }
    });

    Value* rows_left = b_.CreateSub(row_end, m0);
    Value* stop = smin(b_.CreateAdd(n0, b_.getInt64(lanes_)), b_.getInt64(columns));
    for (int i = 0; i < block_rows_; ++i) {
      auto* store = llvm::BasicBlock::Create(b_.getContext(), "row.store", emission_.fn());
      auto* next = llvm::BasicBlock::Create(b_.getContext(), "row.next", emission_.fn());
      b_.CreateCondBr(b_.CreateICmpSLT(b_.getInt64(i), rows_left), store, next);
      b_.SetInsertPoint(store);
      indices_.push_back(b_.CreateAdd(m0, b_.getInt64(i)));
      std::vector<Value*> known(kernel.ops.size(), nullptr);
      known[product_] = b_.CreateLoad(vector, sums[i]);
      Value* output_offset = loops_.outer_offset(output_strides_, indices_);
      emission_.sweep(n0, stop, indices_, known, wanted_,
                      [&](const StepValues& step) { emission_.store_outputs(step, output_offset, false); });
      indices_.pop_back();
      b_.CreateBr(next);
      b_.SetInsertPoint(next);
    }
  }

  size_t rank_;
  int lanes_;
  int block_rows_;
  ir::Strides output_strides_;
  int32_t product_ = -1;
  std::vector<bool> wanted_;
  std::vector<Value*> indices_;
};

void emit_matmul(KernelEmission& emission, Value* begin, Value* end) { MatMulEmitter(emission).emit(begin, end); }

}  // namespace

const Strategy kMatMulStrategy = {native_lanes, /*may_stream=*/false, emit_matmul};

}  // namespace fusejit::codegen
