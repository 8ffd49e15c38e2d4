// Matmul kernels: the product over [batch..., M, N] in micro-tiles of `rows` rows by one step of
// columns (two native vectors, `lanes`), each tile's sums in registers: per k, a vector of B's
// row and one broadcast element of A per row, one fused multiply-add each. The epilogue (the
// kernel's other ops) then runs on each row of a finished tile while its sums are in
// registers, through the same sweep as elementwise kernels with the product's value known, and
// stores the outputs.
//
// Results of at least ir::kPackedProductRows rows take the blocked form of Goto's GEMM: a panel
// of B (kc x nc) and then a block of A (mc x kc) are copied into the thread's scratch memory
// (runtime's thread workspace) in the order the micro-tiles read them, contiguous, so the tiles
// read cache-resident lines whatever the operands' strides; the sums over one kc slice are
// added to those of the earlier slices, kept in the first output until the last slice, when
// the epilogue runs. An operand with a prologue (elementwise ops computing it) is computed as it
// is copied, never stored whole. Fewer rows read the operands where they lie (packing B would
// cost as much as the product): against B's columns contiguous along K (a transposed weight) as
// dot products, else a broadcast element of A times a step of B's row.
//
// Sums run in float32, each slice of K in the order k = 0, 1, ..., then added to the earlier
// slices' total: the result is the same bits for any thread count.
#include <llvm/IR/Constants.h>
#include <llvm/IR/Intrinsics.h>

#include "codegen/strategies/product_emission.h"

namespace fusejit::codegen {
namespace {

using llvm::Value;

// The blocking: `rows` per micro-tile (their sums, two registers each, a vector of B and a
// broadcast fill the register file: 16 registers below AVX-512, 32 with it); kc deep slices; mc
// rows of A per block (in L2); nc columns of B per panel (in the last-level cache). Each slice
// after the first reads and writes the partial sums of the whole result again: against oneDNN
// in one run, kc = 256 (nc 2048) gave 0.73-0.81x at 1024^3 and 2048^3, kc = 1024 (nc 1024)
// 0.91-0.95x.
struct Blocking {
  int rows;
  int64_t kc, mc, nc;
};

Blocking blocking(const Target& target, int lanes) {
  int rows = target.vector_bits >= 512 ? 12 : 6;
  return {rows, 1024, rows * 12, lanes * 32};
}

class MatMulEmitter : public ProductEmitter {
 public:
  explicit MatMulEmitter(KernelEmission& emission)
      : ProductEmitter(emission), block_(blocking(emission.target(), emission.lanes())) {
    // Partial sums wait in the first output between slices of K: it must hold floats.
    if (emission.output_dtype(0) != DType::Float32) block_.kc = std::max<int64_t>(1, kernel_.contraction);
    {
      llvm::IRBuilder<> entry(&emission_.fn()->getEntryBlock(), emission_.fn()->getEntryBlock().begin());
      for (int i = 0; i < block_.rows; ++i) sums_.push_back(entry.CreateAlloca(vector_));
    }
  }

  void emit(Value* begin, Value* end) {
    Range range = loops_.entry_range(begin, end);
    size_t rows = rank_ - 2;
    bool packed = kernel_.domain[rows] >= ir::kPackedProductRows;
    if (!packed && (has_prologue(0) || has_prologue(1)))
      throw InternalError("matmul: an operand's prologue with fewer rows than the packed form's");
    // The packed blocks of A and B, then (A with a prologue) A's rows of one micro-tile as computed.
    int64_t staged = has_prologue(0) ? block_.rows * block_.kc : 0;
    Value* workspace = packed ? scratch((block_.mc * block_.kc + packed_b_floats() + staged) * 4) : nullptr;
    // The columns' range: all of them, or a thread's part (parallel_range: one row, or a packed
    // product split by columns).
    column_begin_ = range.dim == rank_ - 1 ? range.begin : b_.getInt64(0);
    column_end_ = range.dim == rank_ - 1 ? range.end : b_.getInt64(columns());
    loops_.emit_nest(0, rows, range, indices_, [&] {
      Value* row_begin = range.dim == rows ? range.begin : b_.getInt64(0);
      Value* row_end = range.dim == rows ? range.end : b_.getInt64(kernel_.domain[rows]);
      if (packed)
        blocked(workspace, row_begin, row_end);
      else if (columns_along_k())
        dots(row_begin, row_end);
      else
        direct(row_begin, row_end);
    });
  }

 private:
  int64_t rows_of_result() const { return kernel_.domain[rank_ - 2]; }

  // Lanes [0, lanes) of a step at column n0 that lie inside the result.
  Value* valid_columns(Value* n0) { return lanes_below(lanes_, b_.CreateSub(i64(columns()), n0)); }

  // A step of B's row k at columns [n0, n0 + lanes): masked to the result's columns.
  Value* row_of_b(Value* k, Value* n0, Value* valid) {
    const ir::KernelOp& b = operand(1);
    if (has_prologue(1)) return prologue_at(1, k, n0, valid);
    if (!in_memory(1)) return elements_.emit_op(b, nullptr, nullptr, nullptr, nullptr, {});
    Value* offset = operand_offset(1, k, n0);
    Value* base = emission_.input_pointer(b.slot);
    Value* zeros = llvm::Constant::getNullValue(vector_);
    if (stride(1, 1) == 1) return b_.CreateMaskedLoad(vector_, float_at(base, offset), llvm::Align(4), valid, zeros);
    Value* addresses = float_at(base, elements_.lane_indices(offset, i64(0), stride(1, 1)));
    return b_.CreateMaskedGather(vector_, addresses, llvm::Align(4), valid, zeros);
  }

  // Element (row, k) of A; rows past the result's read its last row (their sums are not stored).
  Value* element_of_a(Value* row, Value* k) {
    if (!in_memory(0)) return operand_value(0);
    Value* offset = operand_offset(0, smin(row, i64(rows_of_result() - 1)), k);
    return b_.CreateLoad(b_.getFloatTy(), float_at(emission_.input_pointer(operand(0).slot), offset));
  }

  void accumulate(int i, Value* element, Value* row) {
    Value* sum = b_.CreateLoad(vector_, sums_[i]);
    b_.CreateStore(b_.CreateIntrinsic(llvm::Intrinsic::fma, {vector_}, {b_.CreateVectorSplat(lanes_, element), row, sum}),
                   sums_[i]);
  }

  // `body` for each row i of a tile that lies below `rows_left`.
  void for_valid_rows(Value* rows_left, const std::function<void(int)>& body) {
    ProductEmitter::for_valid_rows(block_.rows, rows_left, body);
  }

  // The epilogue on the tile at rows m0.. and columns [n0, n0 + lanes): each row's outputs.
  void finish(Value* m0, Value* rows_left, Value* n0) {
    for_valid_rows(rows_left,
                   [&](int i) { finish_row(b_.CreateAdd(m0, i64(i)), n0, b_.CreateLoad(vector_, sums_[i])); });
  }

  // Where row m0 + i, column n0 of the first output lies (its partial sums between slices).
  Value* partial_address(Value* m0, int i, Value* n0) {
    indices_.push_back(b_.CreateAdd(m0, i64(i)));
    Value* offset = b_.CreateAdd(loops_.outer_offset(output_strides_, indices_), n0);
    indices_.pop_back();
    return float_at(emission_.output_pointer(0), offset);
  }

  // ---- operands where they lie (few rows) ----

  void direct(Value* row_begin, Value* row_end) {
    loops_.emit_for(row_begin, row_end, block_.rows, [&](Value* m0) {
      loops_.emit_for(column_begin_, column_end_, lanes_, [&](Value* n0) {
        Value* valid = valid_columns(n0);
        for (llvm::AllocaInst* sum : sums_) b_.CreateStore(llvm::Constant::getNullValue(vector_), sum);
        loops_.emit_for(i64(0), i64(kernel_.contraction), 1, [&](Value* k) {
          Value* row = row_of_b(k, n0, valid);
          for (int i = 0; i < block_.rows; ++i) accumulate(i, element_of_a(b_.CreateAdd(m0, i64(i)), k), row);
        });
        finish(m0, b_.CreateSub(row_end, m0), n0);
      });
    });
  }

  // ---- dot products (few rows, B's columns contiguous: a weight read transposed) ----

  // Decided by B alone: an A that is a value (a folded constant when fusing) sums in the same
  // order as that A stored (eager), so fused and eager agree bit for bit.
  bool columns_along_k() const { return in_memory(1) && stride(1, 2) == 1 && stride(1, 1) != 1; }

  // A native vector of operand k_operand's row (A) or column (B) `line` at k .. k + width (lines
  // past the result's read its last one; a value's, that value), the lanes off in `valid` zero.
  Value* run_along_k(int k_operand, Value* line, int64_t lines, Value* k, Value* valid, llvm::FixedVectorType* native) {
    const ir::KernelOp& op = operand(k_operand);
    if (!in_memory(k_operand))
      return b_.CreateSelect(valid, b_.CreateVectorSplat(static_cast<unsigned>(native->getNumElements()), operand_value(k_operand)),
                             llvm::Constant::getNullValue(native));
    int64_t k_stride = k_operand == 0 ? stride(0, 1) : stride(1, 2);
    line = smin(line, i64(lines - 1));
    Value* offset = k_operand == 0 ? operand_offset(0, line, k) : operand_offset(1, k, line);
    Value* base = emission_.input_pointer(op.slot);
    Value* zeros = llvm::Constant::getNullValue(native);
    if (k_stride == 1) return b_.CreateMaskedLoad(native, float_at(base, offset), llvm::Align(4), valid, zeros);
    Value* indices = b_.CreateVectorSplat(static_cast<unsigned>(native->getNumElements()), offset);
    std::vector<llvm::Constant*> steps;
    for (unsigned l = 0; l < native->getNumElements(); ++l) steps.push_back(b_.getInt64(static_cast<int64_t>(l) * k_stride));
    indices = b_.CreateAdd(indices, llvm::ConstantVector::get(steps));
    return b_.CreateMaskedGather(native, float_at(base, indices), llvm::Align(4), valid, zeros);
  }

  // Up to 4 rows by 4 columns of results at a time (one row by 8 columns for a single row with
  // AVX-512's registers), each a dot product summed in native vectors along k and then across
  // their lanes (in a fixed tree: the same bits at any thread count); a step of columns' results
  // is collected per row, then the epilogue runs on it. Packing would copy the whole weight for
  // a few rows of results.
  void dots(Value* row_begin, Value* row_end) {
    int width = lanes_ / 2;
    const int dot_rows = static_cast<int>(std::min<int64_t>(4, rows_of_result()));
    const int dot_columns = dot_rows == 1 && emission_.target().vector_bits >= 512 ? 8 : 4;
    auto* native = llvm::FixedVectorType::get(b_.getFloatTy(), static_cast<unsigned>(width));
    int64_t depth = kernel_.contraction;
    std::vector<llvm::AllocaInst*> partial;
    {
      llvm::IRBuilder<> entry(&emission_.fn()->getEntryBlock(), emission_.fn()->getEntryBlock().begin());
      for (int i = 0; i < dot_rows * dot_columns; ++i) partial.push_back(entry.CreateAlloca(native));
    }
    loops_.emit_for(row_begin, row_end, dot_rows, [&](Value* m0) {
      loops_.emit_for(column_begin_, column_end_, lanes_, [&](Value* n0) {
        loops_.emit_for(i64(0), i64(lanes_), dot_columns, [&](Value* c0) {
          for (llvm::AllocaInst* sum : partial) b_.CreateStore(llvm::Constant::getNullValue(native), sum);
          loops_.emit_for(i64(0), i64(depth), width, [&](Value* k) {
            Value* valid = lanes_below(width, b_.CreateSub(i64(depth), k));
            std::vector<Value*> rows, cols;
            for (int r = 0; r < dot_rows; ++r)
              rows.push_back(run_along_k(0, b_.CreateAdd(m0, i64(r)), rows_of_result(), k, valid, native));
            for (int c = 0; c < dot_columns; ++c)
              cols.push_back(run_along_k(1, b_.CreateAdd(n0, b_.CreateAdd(c0, i64(c))), columns(), k, valid, native));
            for (int r = 0; r < dot_rows; ++r)
              for (int c = 0; c < dot_columns; ++c) {
                llvm::AllocaInst* sum = partial[r * dot_columns + c];
                b_.CreateStore(b_.CreateIntrinsic(llvm::Intrinsic::fma, {native}, {rows[r], cols[c], b_.CreateLoad(native, sum)}),
                               sum);
              }
          });
          for (int r = 0; r < dot_rows; ++r)
            for (int c = 0; c < dot_columns; ++c) {
              llvm::CallInst* total = b_.CreateFAddReduce(llvm::ConstantFP::getNegativeZero(b_.getFloatTy()),
                                                          b_.CreateLoad(native, partial[r * dot_columns + c]));
              total->setHasAllowReassoc(true);
              b_.CreateStore(total, b_.CreateGEP(b_.getFloatTy(), sums_[r], b_.CreateAdd(c0, i64(c))));
            }
        });
        finish(m0, smin(b_.CreateSub(row_end, m0), i64(dot_rows)), n0);
      });
    });
  }

  // ---- packed blocks (many rows) ----

  void blocked(Value* workspace, Value* row_begin, Value* row_end) {
    Value* packed_a = workspace;
    Value* packed_b = float_at(workspace, i64(block_.mc * block_.kc));
    Value* staging = has_prologue(0) ? float_at(packed_b, i64(packed_b_floats())) : nullptr;
    bool one_block = packs_b_per_step();
    int64_t depth = kernel_.contraction;
    loops_.emit_for(column_begin_, column_end_, block_.nc, [&](Value* jc) {
      Value* nc = smin(i64(block_.nc), b_.CreateSub(column_end_, jc));
      // At least one slice, so that K = 0 still stores its zeros.
      loops_.emit_for(i64(0), i64(std::max<int64_t>(depth, 1)), block_.kc, [&](Value* pc) {
        Value* kc = smax(i64(0), smin(i64(block_.kc), b_.CreateSub(i64(depth), pc)));
        Value* first = b_.CreateICmpEQ(pc, i64(0));
        Value* last = b_.CreateICmpSGE(b_.CreateAdd(pc, i64(block_.kc)), i64(depth));
        if (!one_block) pack_b(packed_b, jc, nc, pc, kc);
        loops_.emit_for(row_begin, row_end, block_.mc, [&](Value* ic) {
          Value* mc = smin(i64(block_.mc), b_.CreateSub(row_end, ic));
          pack_a(packed_a, staging, ic, mc, pc, kc);
          loops_.emit_for(i64(0), nc, lanes_, [&](Value* jr) {
            if (one_block) pack_b(packed_b, b_.CreateAdd(jc, jr), smin(i64(lanes_), b_.CreateSub(nc, jr)), pc, kc);
            loops_.emit_for(i64(0), mc, block_.rows, [&](Value* ir) {
              Value* a_tile = float_at(packed_a, b_.CreateMul(ir, kc));
              Value* b_tile = one_block ? packed_b : float_at(packed_b, b_.CreateMul(jr, kc));
              tile(b_.CreateAdd(ic, ir), b_.CreateSub(mc, ir), b_.CreateAdd(jc, jr), kc, first, last, a_tile, b_tile);
            });
          });
        });
      });
    });
  }

  // Rows that fit one block of A use each step of B's panel once: packed just before its tiles,
  // it is read back from L2, not the whole panel from the last-level cache (1.01-1.03x at 64 and
  // 128 rows by 768x3072; GPT-2's block at T = 128, 1.02x).
  bool packs_b_per_step() const { return rows_of_result() <= block_.mc; }
  int64_t packed_b_floats() const { return block_.kc * (packs_b_per_step() ? lanes_ : block_.nc); }

  // B's rows [pc, pc + kc), columns [jc, jc + nc) into `packed`: per step of `lanes` columns, kc
  // vectors in k order (columns past the result are zeros, or copies of its last). B is walked
  // along its memory: row by row when a row is contiguous, else a step of columns at a time.
  void pack_b(Value* packed, Value* jc, Value* nc, Value* pc, Value* kc) {
    auto copy = [&](Value* k, Value* jr) {
      Value* n0 = b_.CreateAdd(jc, jr);
      Value* row = row_of_b(b_.CreateAdd(pc, k), n0, valid_columns(n0));
      Value* at = b_.CreateAdd(b_.CreateMul(jr, kc), b_.CreateMul(k, i64(lanes_)));
      b_.CreateAlignedStore(row, float_at(packed, at), llvm::Align(64));
    };
    if (!in_memory(1) || stride(1, 1) == 1) {
      loops_.emit_for(i64(0), kc, 1, [&](Value* k) {
        loops_.emit_for(i64(0), nc, lanes_, [&](Value* jr) { copy(k, jr); });
      });
    } else if (stride(1, 2) != 1) {
      loops_.emit_for(i64(0), nc, lanes_, [&](Value* jr) {
        loops_.emit_for(i64(0), kc, 1, [&](Value* k) { copy(k, jr); });
      });
    } else {
      // Columns contiguous along k (a transposed weight): a native vector of k from each column,
      // transposed in registers per square; the k left over gathered.
      int width = lanes_ / 2;
      auto* native = llvm::FixedVectorType::get(b_.getFloatTy(), static_cast<unsigned>(width));
      Value* all = llvm::Constant::getAllOnesValue(llvm::FixedVectorType::get(b_.getInt1Ty(), width));
      Value* whole = b_.CreateAnd(kc, i64(-width));
      loops_.emit_for(i64(0), nc, lanes_, [&](Value* jr) {
        loops_.emit_for(i64(0), whole, width, [&](Value* k0) {
          for (int half = 0; half < 2; ++half) {
            // Columns past the result read its last one: their sums are never stored.
            std::vector<Value*> columns_of_b;
            for (int i = 0; i < width; ++i)
              columns_of_b.push_back(run_along_k(1, b_.CreateAdd(b_.CreateAdd(jc, jr), i64(half * width + i)),
                                                 columns(), b_.CreateAdd(pc, k0), all, native));
            transpose_square(b_, columns_of_b);
            for (int j = 0; j < width; ++j) {
              Value* at = b_.CreateAdd(b_.CreateMul(jr, kc),
                                       b_.CreateAdd(b_.CreateMul(b_.CreateAdd(k0, i64(j)), i64(lanes_)), i64(half * width)));
              b_.CreateAlignedStore(columns_of_b[j], float_at(packed, at), llvm::Align(4 * width));
            }
          }
        });
        loops_.emit_for(whole, kc, 1, [&](Value* k) { copy(k, jr); });
      });
    }
  }

  // A's rows [ic, ic + mc), columns [pc, pc + kc) into `packed`: per `rows` rows, kc groups of
  // `rows` elements in k order. Rows contiguous along k are read a native vector of k at a time
  // and transposed in registers (a square of vectors, rows past `rows` zero), the k left over
  // one element at a time: element by element, packing A had cost ~20% of a 256^3 product. With
  // a prologue, each `rows` rows are first computed into `staging`, contiguous along k.
  void pack_a(Value* packed, Value* staging, Value* ic, Value* mc, Value* pc, Value* kc) {
    int width = lanes_ / 2;
    auto* native = llvm::FixedVectorType::get(b_.getFloatTy(), static_cast<unsigned>(width));
    bool transposed = (staging || (in_memory(0) && stride(0, 1) == 1)) && width >= block_.rows;
    // Row m0 + i's elements from k (relative to pc) on: a native vector of them, or one.
    std::function<Value*(Value*, int, Value*)> run, element;
    Value* all = llvm::Constant::getAllOnesValue(llvm::FixedVectorType::get(b_.getInt1Ty(), width));
    if (staging) {
      run = [&](Value*, int i, Value* k) {
        return b_.CreateAlignedLoad(native, float_at(staging, b_.CreateAdd(i64(i * block_.kc), k)), llvm::Align(4));
      };
      element = [&](Value*, int i, Value* k) {
        return b_.CreateLoad(b_.getFloatTy(), float_at(staging, b_.CreateAdd(i64(i * block_.kc), k)));
      };
    } else {
      run = [&](Value* m0, int i, Value* k) {
        return run_along_k(0, b_.CreateAdd(m0, i64(i)), rows_of_result(), b_.CreateAdd(pc, k), all, native);
      };
      element = [&](Value* m0, int i, Value* k) { return element_of_a(b_.CreateAdd(m0, i64(i)), b_.CreateAdd(pc, k)); };
    }
    loops_.emit_for(i64(0), mc, block_.rows, [&](Value* ir) {
      Value* sliver = float_at(packed, b_.CreateMul(ir, kc));
      Value* m0 = b_.CreateAdd(ic, ir);
      if (staging) stage_rows(staging, m0, pc, kc);
      auto elements = [&](Value* from, Value* to) {
        loops_.emit_for(from, to, 1, [&](Value* k) {
          Value* at = b_.CreateMul(k, i64(block_.rows));
          for (int i = 0; i < block_.rows; ++i) b_.CreateStore(element(m0, i, k), float_at(sliver, b_.CreateAdd(at, i64(i))));
        });
      };
      if (!transposed) {
        elements(i64(0), kc);
        return;
      }
      std::vector<llvm::Constant*> kept;
      for (int l = 0; l < width; ++l) kept.push_back(b_.getInt1(l < block_.rows));
      Value* first_rows = llvm::ConstantVector::get(kept);
      Value* whole = b_.CreateAnd(kc, i64(-width));
      loops_.emit_for(i64(0), whole, width, [&](Value* k0) {
        std::vector<Value*> rows;
        for (int i = 0; i < width; ++i) rows.push_back(i < block_.rows ? run(m0, i, k0) : llvm::Constant::getNullValue(native));
        transpose_square(b_, rows);
        for (int j = 0; j < width; ++j)
          b_.CreateMaskedStore(rows[j], float_at(sliver, b_.CreateMul(b_.CreateAdd(k0, i64(j)), i64(block_.rows))),
                               llvm::Align(4), first_rows);
      });
      elements(whole, kc);
    });
  }

  // A's rows m0.. (`rows` of them; rows past the result compute its last), columns [pc, pc + kc),
  // computed by its prologue into `staging`, row i from element i * kc (the largest kc).
  void stage_rows(Value* staging, Value* m0, Value* pc, Value* kc) {
    for (int i = 0; i < block_.rows; ++i) {
      Value* row = smin(b_.CreateAdd(m0, i64(i)), i64(rows_of_result() - 1));
      loops_.emit_for(i64(0), kc, lanes_, [&](Value* k0) {
        Value* valid = lanes_below(lanes_, b_.CreateSub(kc, k0));
        Value* values = prologue_at(0, row, b_.CreateAdd(pc, k0), valid);
        b_.CreateMaskedStore(values, float_at(staging, b_.CreateAdd(i64(i * block_.kc), k0)), llvm::Align(4), valid);
      });
    }
  }

  // One micro-tile from the packed slivers: this slice's products, plus the earlier slices' sums
  // (unless `first`); then the epilogue (`last`) or the partial sums kept in the first output.
  void tile(Value* m0, Value* rows_left, Value* n0, Value* kc, Value* first, Value* last, Value* a_tile,
            Value* b_tile) {
    Value* valid = valid_columns(n0);
    for (llvm::AllocaInst* sum : sums_) b_.CreateStore(llvm::Constant::getNullValue(vector_), sum);
    // The tile's lines of the first output (the earlier slices' sums, or where it stores) are
    // fetched while the slice is summed, and added after it: loaded before it, their misses
    // stalled every tile (against oneDNN at 2048^3 on 1 thread: 0.88-0.89x, 0.95-0.98x so).
    for_valid_rows(rows_left, [&](int i) {
      Value* at = partial_address(m0, i, n0);
      for (int line = 0; line < lanes_ * 4; line += 64)
        b_.CreateIntrinsic(llvm::Intrinsic::prefetch, {b_.getPtrTy()},
                           {b_.CreateGEP(b_.getInt8Ty(), at, i64(line)), b_.getInt32(1), b_.getInt32(3), b_.getInt32(1)});
    });
    // A tile with fewer rows left (the last of a block) sums only a third, or two thirds, of its
    // rows when that covers them: at 512 rows, 12-row tiles leave one of 8 rows, and summing all
    // 12 wasted 0.8% of the product (at 128 rows, 3%). The rows past those summed stay zero.
    int step = block_.rows / 3;
    auto* summed = llvm::BasicBlock::Create(b_.getContext(), "tile.summed", emission_.fn());
    for (int height = block_.rows; height > 0; height -= step) {
      llvm::BasicBlock* fewer = nullptr;
      if (height > step) {
        auto* these = llvm::BasicBlock::Create(b_.getContext(), "tile.rows", emission_.fn());
        fewer = llvm::BasicBlock::Create(b_.getContext(), "tile.fewer", emission_.fn());
        b_.CreateCondBr(b_.CreateICmpSGT(rows_left, i64(height - step)), these, fewer);
        b_.SetInsertPoint(these);
      }
      loops_.emit_for(i64(0), kc, 1, [&](Value* k) {
        Value* row = b_.CreateAlignedLoad(vector_, float_at(b_tile, b_.CreateMul(k, i64(lanes_))), llvm::Align(64));
        Value* column = b_.CreateMul(k, i64(block_.rows));
        for (int i = 0; i < height; ++i)
          accumulate(i, b_.CreateLoad(b_.getFloatTy(), float_at(a_tile, b_.CreateAdd(column, i64(i)))), row);
      });
      b_.CreateBr(summed);
      if (fewer) b_.SetInsertPoint(fewer);
    }
    b_.SetInsertPoint(summed);
    auto* resume = llvm::BasicBlock::Create(b_.getContext(), "tile.resume", emission_.fn());
    auto* added = llvm::BasicBlock::Create(b_.getContext(), "tile.added", emission_.fn());
    b_.CreateCondBr(first, added, resume);
    b_.SetInsertPoint(resume);
    for_valid_rows(rows_left, [&](int i) {
      Value* earlier = b_.CreateMaskedLoad(vector_, partial_address(m0, i, n0), llvm::Align(4), valid,
                                           llvm::Constant::getNullValue(vector_));
      b_.CreateStore(b_.CreateFAdd(earlier, b_.CreateLoad(vector_, sums_[i])), sums_[i]);
    });
    b_.CreateBr(added);
    b_.SetInsertPoint(added);
    auto* final_slice = llvm::BasicBlock::Create(b_.getContext(), "tile.final", emission_.fn());
    auto* keep = llvm::BasicBlock::Create(b_.getContext(), "tile.keep", emission_.fn());
    auto* done = llvm::BasicBlock::Create(b_.getContext(), "tile.done", emission_.fn());
    b_.CreateCondBr(last, final_slice, keep);
    b_.SetInsertPoint(final_slice);
    finish(m0, rows_left, n0);
    b_.CreateBr(done);
    b_.SetInsertPoint(keep);
    for_valid_rows(rows_left, [&](int i) {
      b_.CreateMaskedStore(b_.CreateLoad(vector_, sums_[i]), partial_address(m0, i, n0), llvm::Align(4), valid);
    });
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
  }

  Blocking block_;
  llvm::Value* column_begin_ = nullptr;
  llvm::Value* column_end_ = nullptr;
  std::vector<llvm::AllocaInst*> sums_;
};

void emit_matmul(KernelEmission& emission, Value* begin, Value* end) { MatMulEmitter(emission).emit(begin, end); }

}  // namespace

const Strategy kMatMulStrategy = {native_lanes, /*may_stream=*/false, emit_matmul};

}  // namespace fusejit::codegen
