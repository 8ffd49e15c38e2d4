// Elementwise kernels: every output stored contiguously over the whole domain, the outer dims
// in nested loops and the innermost in vector sweeps.
//
// A kernel that reads an input across its rows (x.t() + y: consecutive elements of a row lie a
// row of x apart) runs in tiles of kTileRows x kTileColumns, so that both that input and the
// others are read in runs of whole lines: x in runs of kTileRows, the rest in runs of
// kTileColumns. Such an input, when it is Float32 and contiguous along the rows, is transposed
// band by band (one native vector square of rows at a time) into a small buffer: vector loads
// along x's rows, shuffles, vector stores; the band's rows then read the buffer as a
// contiguous input. Every input's next tile is prefetched: the runs, a row apart, are too short
// for the hardware prefetcher. Gathers, what a strided load otherwise is, bring one element per
// lane: a gathered x.t() + y at 4096² ran 22x slower than x + y, tiled gathers 10x, buffered
// 128 x 128 tiles without prefetches 2.5x, these 1.6-2x (bench/in_place_bench.cpp times the
// tiles' own memory traffic without the transposition beside them). Other inputs read across
// rows (other dtypes, rows not contiguous) take the gathers.
#include <llvm/IR/Intrinsics.h>

#include "codegen/strategies/kernel_emission.h"

namespace fusejit::codegen {
namespace {

using llvm::Value;

constexpr int64_t kTileRows = 256;
constexpr int64_t kTileColumns = 64;

struct Across {
  bool any = false;             // some input is read across rows
  std::vector<size_t> buffered;  // the ops transposed through a tile buffer
  std::vector<size_t> along;     // the inputs read along the rows, a row apart
};

// The inputs read with a larger stride along the innermost dim than along the rows.
Across inputs_read_across_rows(const ir::Kernel& kernel) {
  Across across;
  size_t rank = kernel.domain.size();
  if (rank < 2) return across;
  for (size_t i = 0; i < kernel.ops.size(); ++i) {
    const ir::KernelOp& op = kernel.ops[i];
    if (op.op != ir::OpCode::Input) continue;
    int64_t along = op.strides[rank - 1];
    int64_t rows = op.strides[rank - 2];
    if (along == 1 && rows != 0) across.along.push_back(i);
    if (along <= 1 || rows == 0 || rows >= along) continue;
    across.any = true;
    if (rows == 1 && op.dtype == DType::Float32) across.buffered.push_back(i);
  }
  return across;
}

class ElementwiseEmitter : public StrategyEmitter {
 public:
  explicit ElementwiseEmitter(KernelEmission& emission)
      : StrategyEmitter(emission),
        wanted_(kernel_.ops.size(), true),
        output_strides_(ir::contiguous_strides(kernel_.domain)),
        across_(inputs_read_across_rows(kernel_)),
        square_(emission.target().vector_bits / 32) {}

  void emit(Value* begin, Value* end) {
    Range range = loops_.entry_range(begin, end);
    if (!across_.any) {
      loops_.emit_nest(0, loops_.rank() - 1, range, indices_, [&] {
        auto [start, stop] = loops_.inner_bounds(range);
        sweep_row(start, stop, {});
      });
      return;
    }
    std::vector<Value*> buffers;
    for (size_t k = 0; k < across_.buffered.size(); ++k) {
      llvm::IRBuilder<> entry(&emission_.fn()->getEntryBlock(), emission_.fn()->getEntryBlock().begin());
      llvm::AllocaInst* buffer = entry.CreateAlloca(b_.getFloatTy(), b_.getInt64(square_ * kTileColumns));
      buffer->setAlignment(llvm::Align(64));
      buffers.push_back(buffer);
    }
    size_t rows = loops_.rank() - 2;
    loops_.emit_nest(0, rows, range, indices_, [&] {
      Value* row_begin = range.dim == rows ? range.begin : b_.getInt64(0);
      Value* row_end = range.dim == rows ? range.end : b_.getInt64(kernel_.domain[rows]);
      auto [start, stop] = loops_.inner_bounds(range);
      loops_.emit_for(row_begin, row_end, kTileRows, [&](Value* tile_row) {
        Value* tile_row_end = smin(b_.CreateAdd(tile_row, b_.getInt64(kTileRows)), row_end);
        loops_.emit_for(start, stop, kTileColumns, [&](Value* tile_column) {
          Value* tile_column_end = smin(b_.CreateAdd(tile_column, b_.getInt64(kTileColumns)), stop);
          if (buffers.empty()) {
            tile(tile_row, tile_row_end, tile_column, tile_column_end, {});
            return;
          }
          loops_.emit_for(tile_row, tile_row_end, square_, [&](Value* band) {
            Value* band_end = smin(b_.CreateAdd(band, b_.getInt64(square_)), tile_row_end);
            for (size_t k = 0; k < buffers.size(); ++k)
              fill(across_.buffered[k], buffers[k], band, band_end, tile_column, tile_column_end);
            tile(band, band_end, tile_column, tile_column_end, buffers);
          });
        });
      });
    });
  }

 private:
  Value* smin(Value* a, Value* c) { return b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, a, c); }

  // A prefetch never faults: the ones past the domain's last tile need no guard. Locality 1
  // (prefetcht2: into L2 on AMD): a tile ahead is more than L1 holds, and filling L1's miss
  // buffers with it held back the loads; x.t() + y at 4096² ran 6% (1 thread) and 12% (2
  // threads) faster than with prefetcht0.
  void prefetch(Value* base, Value* byte_offset) {
    llvm::Function* intrinsic =
        llvm::Intrinsic::getDeclaration(emission_.fn()->getParent(), llvm::Intrinsic::prefetch, {b_.getPtrTy()});
    b_.CreateCall(intrinsic, {b_.CreateGEP(b_.getInt8Ty(), base, byte_offset), b_.getInt32(0), b_.getInt32(1),
                              b_.getInt32(1)});
  }

  void sweep_row(Value* start, Value* stop, const std::vector<StashUse>& stash) {
    std::vector<Value*> output_offsets;
    if (kernel_.output_strides.empty())
      output_offsets.assign(kernel_.outputs.size(), loops_.outer_offset(output_strides_, indices_));
    for (const ir::Strides& strides : kernel_.output_strides)
      output_offsets.push_back(loops_.outer_offset(strides, indices_));
    emission_.sweep(start, stop, indices_, {}, wanted_, [&](const StepValues& step) {
      emission_.store_outputs(step, output_offsets, false);
    }, stash);
  }

  // Rows [row_begin, row_end) of one tile; with `buffers`, the buffered inputs are read from them.
  void tile(Value* row_begin, Value* row_end, Value* column_begin, Value* column_end,
            const std::vector<Value*>& buffers) {
    loops_.emit_for(row_begin, row_end, 1, [&](Value* row) {
      indices_.push_back(row);
      std::vector<StashUse> stash;
      if (!buffers.empty()) {
        stash.resize(kernel_.ops.size());
        // The buffer row, indexed by the domain's inner index.
        Value* first = b_.CreateSub(b_.CreateMul(b_.CreateSub(row, row_begin), b_.getInt64(kTileColumns)),
                                    column_begin);
        for (size_t k = 0; k < buffers.size(); ++k)
          stash[across_.buffered[k]] = {b_.CreateInBoundsGEP(b_.getFloatTy(), buffers[k], first), true};
      }
      prefetch_next_tile(column_begin);
      sweep_row(column_begin, column_end, stash);
      indices_.pop_back();
    });
  }

  // Prefetches the current row of the next tile along the columns, of the inputs read along rows.
  void prefetch_next_tile(Value* column_begin) {
    Value* next = b_.CreateAdd(column_begin, b_.getInt64(kTileColumns));
    for (size_t i : across_.along) {
      const ir::KernelOp& op = kernel_.ops[i];
      int64_t size = dtype_size(op.dtype);
      Value* first = b_.CreateMul(b_.CreateAdd(loops_.outer_offset(op.strides, indices_), next), b_.getInt64(size));
      for (int64_t line = 0; line < kTileColumns * size; line += 64)
        prefetch(emission_.input_pointer(op.slot), b_.CreateAdd(first, b_.getInt64(line)));
    }
  }

  // Transposes input `op`'s rows [band, band_end) of the tile at tile_column into `buffer`,
  // row-major, in blocks of one vector square; lanes past the band's or the tile's end are not
  // read (masked loads). Each block prefetches its counterpart in the next tile.
  void fill(size_t op_index, Value* buffer, Value* band, Value* band_end, Value* tile_column,
            Value* tile_column_end) {
    const ir::KernelOp& op = kernel_.ops[op_index];
    int n = square_;
    auto* vector = llvm::FixedVectorType::get(b_.getFloatTy(), n);
    int64_t along = op.strides.back();
    Value* base = emission_.input_pointer(op.slot);
    Value* columns_left = b_.CreateSub(tile_column_end, tile_column);
    std::vector<llvm::Constant*> lanes;
    for (int l = 0; l < n; ++l) lanes.push_back(b_.getInt64(l));
    Value* in_rows = b_.CreateICmpSLT(llvm::ConstantVector::get(lanes),
                                      b_.CreateVectorSplat(n, b_.CreateSub(band_end, band)));
    Value* none = llvm::Constant::getNullValue(llvm::FixedVectorType::get(b_.getInt1Ty(), n));
    indices_.push_back(band);
    Value* corner = loops_.outer_offset(op.strides, indices_);
    indices_.pop_back();
    Value* whole_band = b_.CreateICmpEQ(b_.CreateSub(band_end, band), b_.getInt64(n));
    loops_.emit_for(b_.getInt64(0), columns_left, n, [&](Value* k0) {
      Value* column = b_.CreateAdd(tile_column, k0);
      // Whole blocks take plain loads: the masks' per-row selects cost branches.
      auto block = [&](bool masked) {
        std::vector<Value*> rows;
        for (int k = 0; k < n; ++k) {
          Value* offset =
              b_.CreateAdd(corner, b_.CreateMul(b_.CreateAdd(column, b_.getInt64(k)), b_.getInt64(along)));
          Value* address = b_.CreateGEP(b_.getFloatTy(), base, offset);
          if (masked) {
            Value* mask =
                b_.CreateSelect(b_.CreateICmpSLT(b_.CreateAdd(k0, b_.getInt64(k)), columns_left), in_rows, none);
            rows.push_back(b_.CreateMaskedLoad(vector, address, llvm::Align(4), mask, llvm::Constant::getNullValue(vector)));
          } else {
            rows.push_back(b_.CreateAlignedLoad(vector, address, llvm::Align(4)));
          }
          prefetch(base, b_.CreateMul(b_.CreateAdd(offset, b_.getInt64(kTileColumns * along)), b_.getInt64(4)));
        }
        transpose_square(b_, rows);
        for (int i = 0; i < n; ++i) {
          Value* at = b_.CreateAdd(b_.getInt64(i * kTileColumns), k0);
          b_.CreateAlignedStore(rows[i], b_.CreateInBoundsGEP(b_.getFloatTy(), buffer, at), llvm::Align(4 * n));
        }
      };
      Value* whole = b_.CreateAnd(whole_band, b_.CreateICmpSGE(b_.CreateSub(columns_left, k0), b_.getInt64(n)));
      auto* plain = llvm::BasicBlock::Create(b_.getContext(), "block.whole", emission_.fn());
      auto* edge = llvm::BasicBlock::Create(b_.getContext(), "block.edge", emission_.fn());
      auto* done = llvm::BasicBlock::Create(b_.getContext(), "block.done", emission_.fn());
      b_.CreateCondBr(whole, plain, edge);
      b_.SetInsertPoint(plain);
      block(false);
      b_.CreateBr(done);
      b_.SetInsertPoint(edge);
      block(true);
      b_.CreateBr(done);
      b_.SetInsertPoint(done);
    });
  }

  std::vector<bool> wanted_;
  ir::Strides output_strides_;
  Across across_;
  int square_;  // the side of the blocks transposed in registers: one native Float32 vector
  std::vector<Value*> indices_;
};

void emit_elementwise(KernelEmission& emission, Value* begin, Value* end) {
  ElementwiseEmitter(emission).emit(begin, end);
}

}  // namespace

const Strategy kElementwiseStrategy = {native_lanes, /*may_stream=*/true, emit_elementwise};

}  // namespace fusejit::codegen
