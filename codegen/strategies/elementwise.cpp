// Elementwise kernels: every output stored contiguously over the whole domain, the outer dims
// in nested loops and the innermost in vector sweeps.
//
// A kernel that reads an input across its rows (x.t() + y: consecutive elements of a row lie a
// row of x apart) runs in tiles of kTileRows x kTileColumns, so that both the input and the
// outputs are touched in runs of whole lines. Such an input, when it is Float32 and contiguous
// along the rows, is first transposed into a tile buffer (64 KiB, in L2) in blocks of one
// native vector square (vector loads along x's rows, shuffles, vector stores), so that every
// read from memory is a whole vector and the sweeps read the buffer as a contiguous input.
// Gathers, what a strided load otherwise is, bring one element per lane and defeat the
// hardware prefetcher: a gathered x.t() + y at 4096² ran 22x slower than x + y, tiled gathers
// 10x, the buffered tiles 2.1x (64 x 64 tiles: 2.5x). Tiles at the domain's edges, and other
// inputs read across rows, take the gathers.
#include <llvm/IR/Intrinsics.h>

#include "codegen/strategies/kernel_emission.h"

namespace fusejit::codegen {
namespace {

using llvm::Value;

constexpr int64_t kTileRows = 128;
constexpr int64_t kTileColumns = 128;

struct Across {
  bool any = false;             // some input is read across rows
  std::vector<size_t> buffered;  // the ops transposed through a tile buffer
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
    if (along <= 1 || rows == 0 || rows >= along) continue;
    across.any = true;
    if (rows == 1 && op.dtype == DType::Float32) across.buffered.push_back(i);
  }
  return across;
}

// Transposes `rows` (n vectors of n lanes) in place: swaps the off-diagonal blocks of each
// 2h x 2h block, for h = n/2 down to 1.
void transpose_square(llvm::IRBuilderBase& b, std::vector<Value*>& rows) {
  int n = static_cast<int>(rows.size());
  for (int h = n / 2; h >= 1; h /= 2) {
    std::vector<int> upper(n), lower(n);
    for (int l = 0; l < n; ++l) {
      upper[l] = (l & h) == 0 ? l : n + l - h;
      lower[l] = (l & h) == 0 ? l + h : n + l;
    }
    for (int i = 0; i < n; ++i) {
      if (i & h) continue;
      Value* top = rows[i];
      Value* bottom = rows[i + h];
      rows[i] = b.CreateShuffleVector(top, bottom, upper);
      rows[i + h] = b.CreateShuffleVector(top, bottom, lower);
    }
  }
}

class ElementwiseEmitter : public StrategyEmitter {
 public:
  explicit ElementwiseEmitter(KernelEmission& emission)
      : StrategyEmitter(emission),
        wanted_(kernel_.ops.size(), true),
        output_strides_(ir::contiguous_strides(kernel_.domain)),
        across_(inputs_read_across_rows(kernel_)) {}

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
      llvm::AllocaInst* buffer = entry.CreateAlloca(b_.getFloatTy(), b_.getInt64(kTileRows * kTileColumns));
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
          Value* whole = b_.CreateAnd(
              b_.CreateICmpEQ(b_.CreateSub(tile_row_end, tile_row), b_.getInt64(kTileRows)),
              b_.CreateICmpEQ(b_.CreateSub(tile_column_end, tile_column), b_.getInt64(kTileColumns)));
          auto* buffered = llvm::BasicBlock::Create(b_.getContext(), "tile.buffered", emission_.fn());
          auto* gathered = llvm::BasicBlock::Create(b_.getContext(), "tile.gathered", emission_.fn());
          auto* done = llvm::BasicBlock::Create(b_.getContext(), "tile.done", emission_.fn());
          b_.CreateCondBr(whole, buffered, gathered);
          b_.SetInsertPoint(buffered);
          for (size_t k = 0; k < buffers.size(); ++k) fill(across_.buffered[k], buffers[k], tile_row, tile_column);
          tile(tile_row, tile_row_end, tile_column, tile_column_end, buffers);
          b_.CreateBr(done);
          b_.SetInsertPoint(gathered);
          tile(tile_row, tile_row_end, tile_column, tile_column_end, {});
          b_.CreateBr(done);
          b_.SetInsertPoint(done);
        });
      });
    });
  }

 private:
  Value* smin(Value* a, Value* c) { return b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, a, c); }

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

  // The rows of one tile; with `buffers`, the buffered inputs are read from them.
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
      sweep_row(column_begin, column_end, stash);
      indices_.pop_back();
    });
  }

  // Transposes input `op`'s whole tile at (tile_row, tile_column) into `buffer`, row-major.
  void fill(size_t op_index, Value* buffer, Value* tile_row, Value* tile_column) {
    const ir::KernelOp& op = kernel_.ops[op_index];
    int n = emission_.target().vector_bits / 32;
    auto* vector = llvm::FixedVectorType::get(b_.getFloatTy(), n);
    int64_t along = op.strides.back();
    Value* base = emission_.input_pointer(op.slot);
    loops_.emit_for(b_.getInt64(0), b_.getInt64(kTileRows), n, [&](Value* i0) {
      indices_.push_back(b_.CreateAdd(tile_row, i0));
      Value* corner = loops_.outer_offset(op.strides, indices_);
      indices_.pop_back();
      loops_.emit_for(b_.getInt64(0), b_.getInt64(kTileColumns), n, [&](Value* k0) {
        std::vector<Value*> rows;
        Value* column = b_.CreateAdd(tile_column, k0);
        for (int k = 0; k < n; ++k) {
          Value* offset = b_.CreateAdd(corner, b_.CreateMul(b_.CreateAdd(column, b_.getInt64(k)), b_.getInt64(along)));
          rows.push_back(b_.CreateAlignedLoad(vector, b_.CreateInBoundsGEP(b_.getFloatTy(), base, offset),
                                              llvm::Align(4)));
        }
        transpose_square(b_, rows);
        for (int i = 0; i < n; ++i) {
          Value* at = b_.CreateAdd(b_.CreateMul(b_.CreateAdd(i0, b_.getInt64(i)), b_.getInt64(kTileColumns)), k0);
          b_.CreateAlignedStore(rows[i], b_.CreateInBoundsGEP(b_.getFloatTy(), buffer, at), llvm::Align(4 * n));
        }
      });
    });
  }

  std::vector<bool> wanted_;
  ir::Strides output_strides_;
  Across across_;
  std::vector<Value*> indices_;
};

void emit_elementwise(KernelEmission& emission, Value* begin, Value* end) {
  ElementwiseEmitter(emission).emit(begin, end);
}

}  // namespace

const Strategy kElementwiseStrategy = {native_lanes, /*may_stream=*/true, emit_elementwise};

}  // namespace fusejit::codegen
