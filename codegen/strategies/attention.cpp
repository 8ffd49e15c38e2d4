// Attention kernels: softmax(q kᵀ · scale + mask) v over [batch..., L, Ev], tiled as
// FlashAttention-2 does, so that the L x S scores never reach memory. Per batch index, the keys
// are packed transposed into the thread's scratch (tiles of `tile` keys, each E rows of `tile`
// floats), then queries are taken in blocks of kBlockRows: for each tile of keys, each
// micro-tile of kRows queries computes its scores in registers (a broadcast query element
// times a packed row of keys per step of E), masks them, updates its rows' running maximum m
// and sum l (online softmax: the earlier sums and outputs are rescaled by exp(m_old - m_new)),
// and adds exp(s - m) times the tile's values to its rows' outputs, kept in scratch. The block
// of keys is read from cache kBlockRows / kRows times per load from memory. Finally each row's
// output is divided by its sum and the epilogue runs on it.
//
// With a causal mask, tiles wholly above a micro-tile's diagonal are skipped, and the keys
// above each row's diagonal in the tiles that cross it are never read (not even as 0 · v).
// A row's arithmetic does not depend on which rows share its tiles: the result is the same bits
// for any thread count.
#include <llvm/IR/Constants.h>

#include <limits>

#include "codegen/strategies/product_emission.h"
#include "codegen/vector_math.h"

namespace fusejit::codegen {
namespace {

using llvm::Value;

constexpr int kRows = 4;         // queries per micro-tile
constexpr int kBlockRows = 64;   // queries per block: each key tile is reused by 16 micro-tiles

enum Operand { kQuery = 0, kKey = 1, kValue = 2, kScale = 3, kMask = 4 };

class AttentionEmitter : public ProductEmitter {
 public:
  explicit AttentionEmitter(KernelEmission& emission)
      : ProductEmitter(emission),
        width_(lanes_ / 2),
        // Scores of a micro-tile (kRows x tile) and its outputs' step (kRows x chunk) fill half
        // the register file: 16 of AVX-512's 32 registers, 8 of AVX2's 16.
        tile_(width_ * (emission.target().vector_bits >= 512 ? 4 : 2)),
        chunk_(tile_),
        queries_(kernel_.domain[kernel_.domain.size() - 2]),
        keys_(kernel_.attended),
        depth_(kernel_.contraction),
        padded_keys_((keys_ + tile_ - 1) / tile_ * tile_),
        padded_values_((columns() + chunk_ - 1) / chunk_ * chunk_),
        flags_(kernel_.ops[product_].params.dim),
        masked_(kernel_.ops[product_].args.size() > kMask),
        tile_vector_(llvm::FixedVectorType::get(b_.getFloatTy(), static_cast<unsigned>(tile_))),
        chunk_vector_(llvm::FixedVectorType::get(b_.getFloatTy(), static_cast<unsigned>(chunk_))) {
    llvm::IRBuilder<> entry(&emission_.fn()->getEntryBlock(), emission_.fn()->getEntryBlock().begin());
    for (int r = 0; r < kRows; ++r) {
      scores_.push_back(entry.CreateAlloca(tile_vector_));
      weights_.push_back(entry.CreateAlloca(tile_vector_));
      outputs_.push_back(entry.CreateAlloca(chunk_vector_));
      rescale_.push_back(entry.CreateAlloca(b_.getFloatTy()));
    }
  }

  void emit(Value* begin, Value* end) {
    Range range = loops_.entry_range(begin, end);
    size_t rows = rank_ - 2;
    // Scratch: the packed keys, then per block row its outputs, maximum and sum.
    Value* packed = scratch((padded_keys_ * depth_ + kBlockRows * (padded_values_ + 2)) * 4);
    Value* outputs = float_at(packed, i64(padded_keys_ * depth_));
    Value* maxima = float_at(outputs, i64(kBlockRows * padded_values_));
    Value* sums = float_at(maxima, i64(kBlockRows));
    // The scale is a value; in memory when the same value is also a graph output (stored).
    scale_ = in_memory(kScale) ? b_.CreateLoad(b_.getFloatTy(), emission_.input_pointer(operand(kScale).slot))
                               : operand_value(kScale);
    loops_.emit_nest(0, rows, range, indices_, [&] {
      Value* row_begin = range.dim == rows ? range.begin : i64(0);
      Value* row_end = range.dim == rows ? range.end : i64(queries_);
      pack_keys(packed);
      loops_.emit_for(row_begin, row_end, kBlockRows, [&](Value* first) {
        block(packed, outputs, maxima, sums, first, smin(i64(kBlockRows), b_.CreateSub(row_end, first)));
      });
    });
  }

 private:
  Value* splat(int lanes, Value* x) { return b_.CreateVectorSplat(static_cast<unsigned>(lanes), x); }
  Value* minus_infinity() { return llvm::ConstantFP::getInfinity(b_.getFloatTy(), true); }
  bool causal() const { return flags_ & ir::kAttentionCausal; }

  // Operand k's element (row, column), a float.
  Value* element(int k, Value* row, Value* column) {
    if (!in_memory(k)) return operand_value(k);
    return b_.CreateLoad(b_.getFloatTy(), float_at(emission_.input_pointer(operand(k).slot), operand_offset(k, row, column)));
  }

  // Operand k's row `row` at columns [column, column + lanes): a vector of its memory's type,
  // the lanes off in `valid` zero.
  Value* run(int k, Value* row, Value* column, int lanes, Value* valid) {
    if (!in_memory(k)) return splat(lanes, operand_value(k));
    llvm::Type* scalar = emission_.kernel().input_dtypes[operand(k).slot] == DType::Bool ? b_.getInt8Ty() : b_.getFloatTy();
    auto* type = llvm::FixedVectorType::get(scalar, static_cast<unsigned>(lanes));
    Value* offset = operand_offset(k, row, column);
    Value* base = emission_.input_pointer(operand(k).slot);
    Value* zeros = llvm::Constant::getNullValue(type);
    if (stride(k, 1) == 1)
      return b_.CreateMaskedLoad(type, b_.CreateGEP(scalar, base, offset), llvm::Align(1), valid, zeros);
    Value* lane_offsets = b_.CreateAdd(splat(lanes, offset), b_.CreateMul(lane_positions(lanes, i64(0)), splat(lanes, i64(stride(k, 1)))));
    return b_.CreateMaskedGather(type, b_.CreateGEP(scalar, base, lane_offsets), llvm::Align(1), valid, zeros);
  }

  // The keys [0, S) of this batch index into `packed`: tile t holds E rows of `tile` floats,
  // key t * tile + c of row e at (t E + e) tile + c; keys past S are zeros.
  void pack_keys(Value* packed) {
    loops_.emit_for(i64(0), i64(padded_keys_), 1, [&](Value* s) {
      Value* inside = b_.CreateICmpSLT(s, i64(keys_));
      Value* key = smin(s, i64(keys_ - 1));
      Value* tile = b_.CreateSDiv(s, i64(tile_));
      Value* base = b_.CreateAdd(b_.CreateMul(tile, i64(depth_ * tile_)), b_.CreateSRem(s, i64(tile_)));
      loops_.emit_for(i64(0), i64(depth_), 1, [&](Value* e) {
        Value* value = b_.CreateSelect(inside, element(kKey, key, e), llvm::ConstantFP::get(b_.getFloatTy(), 0.0));
        b_.CreateStore(value, float_at(packed, b_.CreateAdd(base, b_.CreateMul(e, i64(tile_)))));
      });
    });
  }

  // Queries [first, first + count) of this batch index.
  void block(Value* packed, Value* outputs, Value* maxima, Value* sums, Value* first, Value* count) {
    loops_.emit_for(i64(0), i64(kBlockRows), 1, [&](Value* r) {
      b_.CreateStore(minus_infinity(), float_at(maxima, r));
      b_.CreateStore(llvm::ConstantFP::get(b_.getFloatTy(), 0.0), float_at(sums, r));
    });
    loops_.emit_for(i64(0), i64(kBlockRows * padded_values_), chunk_, [&](Value* at) {
      b_.CreateStore(llvm::Constant::getNullValue(chunk_vector_), float_at(outputs, at));
    });
    // The keys some query of the block attends: all, or up to its last query's diagonal.
    Value* key_end = causal() ? smin(i64(keys_), b_.CreateAdd(first, count)) : i64(keys_);
    loops_.emit_for(i64(0), key_end, tile_, [&](Value* s0) {
      Value* tile = float_at(packed, b_.CreateMul(s0, i64(depth_)));
      loops_.emit_for(i64(0), count, kRows, [&](Value* r0) {
        Value* m0 = b_.CreateAdd(first, r0);
        if (!causal()) {
          micro_tile(tile, outputs, maxima, sums, r0, m0, s0);
          return;
        }
        // Skipped when the tile lies wholly above the micro-tile's last diagonal.
        auto* run = llvm::BasicBlock::Create(b_.getContext(), "attend", emission_.fn());
        auto* next = llvm::BasicBlock::Create(b_.getContext(), "attend.next", emission_.fn());
        b_.CreateCondBr(b_.CreateICmpSLE(s0, b_.CreateAdd(m0, i64(kRows - 1))), run, next);
        b_.SetInsertPoint(run);
        micro_tile(tile, outputs, maxima, sums, r0, m0, s0);
        b_.CreateBr(next);
        b_.SetInsertPoint(next);
      });
    });
    // Each row's output divided by its sum, through the epilogue.
    loops_.emit_for(i64(0), count, 1, [&](Value* r) {
      Value* sum = splat(lanes_, b_.CreateLoad(b_.getFloatTy(), float_at(sums, r)));
      Value* row = float_at(outputs, b_.CreateMul(r, i64(padded_values_)));
      loops_.emit_for(i64(0), i64(columns()), lanes_, [&](Value* n0) {
        Value* output = b_.CreateLoad(vector_, float_at(row, n0));
        finish_row(b_.CreateAdd(first, r), n0, b_.CreateFDiv(output, sum));
      });
    });
  }

  // Queries m0 .. m0 + kRows (block rows r0 ..) against the keys of the tile at s0.
  void micro_tile(Value* tile, Value* outputs, Value* maxima, Value* sums, Value* r0, Value* m0, Value* s0) {
    for (llvm::AllocaInst* score : scores_) b_.CreateStore(llvm::Constant::getNullValue(tile_vector_), score);
    loops_.emit_for(i64(0), i64(depth_), 1, [&](Value* e) {
      Value* keys = b_.CreateAlignedLoad(tile_vector_, float_at(tile, b_.CreateMul(e, i64(tile_))), llvm::Align(4));
      for (int r = 0; r < kRows; ++r) {
        Value* query = splat(tile_, element(kQuery, smin(b_.CreateAdd(m0, i64(r)), i64(queries_ - 1)), e));
        Value* sum = b_.CreateLoad(tile_vector_, scores_[r]);
        b_.CreateStore(b_.CreateIntrinsic(llvm::Intrinsic::fma, {tile_vector_}, {query, keys, sum}), scores_[r]);
      }
    });
    Value* key_positions = lane_positions(tile_, s0);
    Value* valid = b_.CreateICmpSLT(key_positions, splat(tile_, i64(keys_)));
    Value* hidden = splat(tile_, minus_infinity());
    Value* scale = splat(tile_, scale_);
    for (int r = 0; r < kRows; ++r) {
      Value* query_row = b_.CreateAdd(m0, i64(r));
      Value* s = b_.CreateLoad(tile_vector_, scores_[r]);
      s = flags_ & ir::kAttentionDivides ? b_.CreateFDiv(s, scale) : b_.CreateFMul(s, scale);
      if (masked_) {
        Value* mask = run(kMask, smin(query_row, i64(queries_ - 1)), s0, tile_, valid);
        if (mask->getType()->getScalarType()->isFloatTy())
          s = b_.CreateFAdd(s, mask);
        else
          s = b_.CreateSelect(b_.CreateICmpNE(mask, llvm::Constant::getNullValue(mask->getType())), s, hidden);
      }
      Value* visible = valid;
      if (causal()) visible = b_.CreateAnd(visible, b_.CreateICmpSLE(key_positions, splat(tile_, query_row)));
      s = b_.CreateSelect(visible, s, hidden);
      // The running maximum (NaN-propagating); exponents taken from 0 while it is -inf, so
      // that masked scores weigh 0 instead of exp(-inf + inf).
      Value* row_max = float_at(maxima, b_.CreateAdd(r0, i64(r)));
      Value* old_max = b_.CreateLoad(b_.getFloatTy(), row_max);
      Value* new_max = math_.max(old_max, reduce_max(s));
      Value* base = b_.CreateSelect(b_.CreateFCmpOEQ(new_max, minus_infinity()), llvm::ConstantFP::get(b_.getFloatTy(), 0.0), new_max);
      Value* weights = vmath::exp(b_, emission_.target(), b_.CreateFSub(s, splat(tile_, base)));
      Value* rescale = b_.CreateExtractElement(
          vmath::exp(b_, emission_.target(), splat(width_, b_.CreateFSub(old_max, base))), i64(0));
      llvm::CallInst* weight_sum = b_.CreateFAddReduce(llvm::ConstantFP::getNegativeZero(b_.getFloatTy()), weights);
      weight_sum->setHasAllowReassoc(true);
      Value* row_sum = float_at(sums, b_.CreateAdd(r0, i64(r)));
      b_.CreateStore(b_.CreateFAdd(b_.CreateFMul(b_.CreateLoad(b_.getFloatTy(), row_sum), rescale), weight_sum), row_sum);
      b_.CreateStore(new_max, row_max);
      b_.CreateStore(weights, weights_[r]);
      b_.CreateStore(rescale, rescale_[r]);
    }
    accumulate_values(outputs, r0, m0, s0);
  }

  // The rows' outputs rescaled, plus their weights times the tile's values: keys every row
  // attends, then (causal) the keys up to each row's diagonal.
  void accumulate_values(Value* outputs, Value* r0, Value* m0, Value* s0) {
    Value* in_tile = smin(i64(tile_), b_.CreateSub(i64(keys_), s0));
    Value* shared = in_tile;
    Value* diagonal = in_tile;
    if (causal()) {
      shared = smax(i64(0), smin(in_tile, b_.CreateAdd(b_.CreateSub(m0, s0), i64(1))));
      diagonal = smax(i64(0), smin(in_tile, b_.CreateAdd(b_.CreateSub(m0, s0), i64(kRows))));
    }
    loops_.emit_for(i64(0), i64(padded_values_), chunk_, [&](Value* c0) {
      Value* valid = lanes_below(chunk_, b_.CreateSub(i64(columns()), c0));
      std::vector<Value*> at;
      for (int r = 0; r < kRows; ++r) {
        at.push_back(float_at(outputs, b_.CreateAdd(b_.CreateMul(b_.CreateAdd(r0, i64(r)), i64(padded_values_)), c0)));
        Value* rescale = splat(chunk_, b_.CreateLoad(b_.getFloatTy(), rescale_[r]));
        b_.CreateStore(b_.CreateFMul(b_.CreateLoad(chunk_vector_, at[r]), rescale), outputs_[r]);
      }
      auto add_key = [&](Value* j, bool bounded) {
        Value* values = run(kValue, b_.CreateAdd(s0, j), c0, chunk_, valid);
        for (int r = 0; r < kRows; ++r) {
          Value* weight = b_.CreateLoad(b_.getFloatTy(), b_.CreateGEP(b_.getFloatTy(), weights_[r], j));
          Value* sum = b_.CreateLoad(chunk_vector_, outputs_[r]);
          Value* added = b_.CreateIntrinsic(llvm::Intrinsic::fma, {chunk_vector_}, {splat(chunk_, weight), values, sum});
          if (bounded)
            added = b_.CreateSelect(b_.CreateICmpSLE(b_.CreateAdd(s0, j), b_.CreateAdd(m0, i64(r))), added, sum);
          b_.CreateStore(added, outputs_[r]);
        }
      };
      loops_.emit_for(i64(0), shared, 1, [&](Value* j) { add_key(j, false); });
      if (causal()) loops_.emit_for(shared, diagonal, 1, [&](Value* j) { add_key(j, true); });
      for (int r = 0; r < kRows; ++r) b_.CreateStore(b_.CreateLoad(chunk_vector_, outputs_[r]), at[r]);
    });
  }

  // The NaN-propagating maximum of a vector's lanes, halving it.
  Value* reduce_max(Value* x) {
    for (int lanes = tile_ / 2; lanes >= 1; lanes /= 2) {
      std::vector<int> low, high;
      for (int l = 0; l < lanes; ++l) {
        low.push_back(l);
        high.push_back(l + lanes);
      }
      x = math_.max(b_.CreateShuffleVector(x, low), b_.CreateShuffleVector(x, high));
    }
    return b_.CreateExtractElement(x, i64(0));
  }

  int width_;   // floats per native vector
  int tile_;    // keys per tile
  int chunk_;   // output columns per step of the values' accumulation
  int64_t queries_, keys_, depth_;
  int64_t padded_keys_, padded_values_;
  int64_t flags_;
  bool masked_;
  llvm::FixedVectorType* tile_vector_;
  llvm::FixedVectorType* chunk_vector_;
  Value* scale_ = nullptr;
  std::vector<llvm::AllocaInst*> scores_, weights_, outputs_, rescale_;
};

void emit_attention(KernelEmission& emission, Value* begin, Value* end) { AttentionEmitter(emission).emit(begin, end); }

}  // namespace

const Strategy kAttentionStrategy = {native_lanes, /*may_stream=*/false, emit_attention};

}  // namespace fusejit::codegen
