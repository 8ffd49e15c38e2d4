// The op table: every op fusejit knows, in one place.
//
// A row gives the op's name, arity, cost class (for the recompute-or-materialize rule), its
// typing kind (which fixes the dtype and shape rule), and its formula over a math backend `m`.
// The same formula is instantiated with the double-precision reference backend (ir/reference)
// and the LLVM vector backend (codegen), so adding an elementwise op is one row here. Only a
// new primitive (a new `m.something`) needs code in the backends.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>

#include "fusejit/core.h"

namespace fusejit::ir {

// How an op is typed:
//   Unary/Binary/Ternary: Float32 inputs -> Float32, shapes broadcast.
//   Compare:        Float32, Float32 -> Bool, shapes broadcast.
//   Select:         Bool, Float32, Float32 -> Float32, shapes broadcast.
//   ToFloat:        Bool or Int64 -> Float32, same shape.
//   ToBool:         Float32 -> Bool; ToInt64: Float32 -> Int64 (truncated, saturating, NaN to 0).
//   Reduce:         Float32 -> Float32 over the dims in OpParams::axes (see FUSEJIT_REDUCTION_OPS).
//   Identity:       any dtype -> the same dtype and shape.
//   View:           any dtype, kept; the node's own shape (see OpCode::View).
//   Concat:         any number of inputs of one dtype, joined along OpParams::dim.
//   Gather:         any dtype, Int64 index -> the first input's dtype, its dim OpParams::dim of size
//                   k; the index's shape is all 1 but k at that dim (so it broadcasts along it).
//   Scatter:        two inputs of one dtype -> the first's type (see OpCode::Scatter).
//   MatMul:         Float32 [batch..., M, K] and [batch..., K, N] -> Float32 [batch..., M, N].
//   Attention:      Float32 q [batch..., L, E], k [batch..., S, E], v [batch..., S, Ev], a 0-d
//                   scale, and optionally a Bool or Float32 mask [batch..., L, S] -> Float32
//                   [batch..., L, Ev] (see attention_shape).
enum class OpKind : uint8_t {
  Leaf, Generator, Unary, Binary, Ternary, Compare, Select, ToFloat, ToBool, ToInt64, Identity, Reduce, View,
  Concat, Gather, Scatter, MatMul, Attention
};

// How an op combines with its neighbours in one kernel (in the spirit of TVM's OpPatternKind).
// The fusion rules (ir/fusion_rules) ask this, never the op itself.
//   Elementwise:   each output element from the same element of each input (broadcasting);
//                  also generators, computed from the element's index.
//   Broadcast:     one value over the whole shape (Constant, Scalar): inlined wherever used.
//   Injective:     each output element from one input element anywhere (views, gathers).
//   Reduction:     combines elements along dims; elementwise work may run before it in its
//                  kernel, and (over the last dims) work on its per-row result after it.
//   OutputFusable: a complex op (matmul, attention) whose result elementwise work may follow in
//                  its kernel; it reads its operands from memory itself.
//   Opaque:        never computed in a kernel: its value is in memory (Input).
enum class FusionPattern : uint8_t { Elementwise, Broadcast, Injective, Reduction, OutputFusable, Opaque };

// Cost units for the recompute rule: 1 for an add, ~10 for a transcendental.
inline constexpr int kCheap = 1;
inline constexpr int kDivide = 2;
inline constexpr int kTranscendental = 10;
// A reduction, a matmul or an attention is never recomputed by another kernel: its value is always
// materialized there.
inline constexpr int kNeverRecomputed = 1 << 20;

// How far a kernel's float32 result may be from the exact result, where the result is a normal
// float: `ulp` float steps from the correctly rounded result, or within `absolute` (where the
// formula cancels: gelu below -1). kExact is correctly rounded (one IEEE operation, or
// selects and compares), so a constant folded in double and rounded is bitwise what kernels
// compute; only such ops are folded, so fused and eager results stay bitwise the same. The
// tests hold every op of the table to its accuracy (tests/vector_math_accuracy_test.cpp).
struct Accuracy {
  int ulp = 0;
  double absolute = 0;
  bool exact() const { return ulp == 0 && absolute == 0; }
};
inline constexpr Accuracy kExact{};
constexpr Accuracy ulp(int steps, double absolute = 0) { return {steps, absolute}; }

// X(Enum, "name", kind, cost, accuracy, formula). `a`, `b`, `c` are the operands; `m` the backend.
#define FUSEJIT_ELEMENTWISE_OPS(X)                                                              \
  X(Neg, "neg", Unary, kCheap, kExact, m.neg(a))                                                \
  X(Abs, "abs", Unary, kCheap, kExact, m.abs(a))                                                \
  X(Exp, "exp", Unary, kTranscendental, ulp(1), m.exp(a))                                       \
  X(Log, "log", Unary, kTranscendental, ulp(1), m.log(a))                                       \
  X(Sqrt, "sqrt", Unary, kDivide, kExact, m.sqrt(a))                                            \
  X(Rsqrt, "rsqrt", Unary, kDivide, ulp(1), m.div(m.c(1), m.sqrt(a)))                           \
  X(Sin, "sin", Unary, kTranscendental, ulp(2), m.sin(a))                                       \
  X(Cos, "cos", Unary, kTranscendental, ulp(2), m.cos(a))                                       \
  X(Relu, "relu", Unary, kCheap, kExact, m.select(m.lt(a, m.c(0)), m.c(0), a))                  \
  X(Sigmoid, "sigmoid", Unary, kTranscendental, ulp(3), m.sigmoid(a))                           \
  X(Tanh, "tanh", Unary, kTranscendental, ulp(4), m.tanh(a))                                    \
  X(Gelu, "gelu", Unary, kTranscendental, ulp(4, 3e-7), m.gelu(a))                              \
  X(GeluTanh, "gelu_tanh", Unary, kTranscendental, ulp(4, 1e-6),                                \
    m.mul(m.mul(m.c(0.5), a),                                                                   \
          m.add(m.c(1), m.tanh(m.mul(m.c(0.79788456080286535588),                               \
                                     m.add(a, m.mul(m.c(0.044715), m.mul(a, m.mul(a, a))))))))) \
  X(Silu, "silu", Unary, kTranscendental, ulp(4), m.mul(a, m.sigmoid(a)))                       \
  X(Add, "add", Binary, kCheap, kExact, m.add(a, b))                                            \
  X(Sub, "sub", Binary, kCheap, kExact, m.sub(a, b))                                            \
  X(Mul, "mul", Binary, kCheap, kExact, m.mul(a, b))                                            \
  X(Div, "div", Binary, kDivide, kExact, m.div(a, b))                                           \
  X(Pow, "pow", Binary, kTranscendental, ulp(2), m.pow(a, b))                                   \
  X(Maximum, "maximum", Binary, kCheap, kExact, m.max(a, b))                                    \
  X(Minimum, "minimum", Binary, kCheap, kExact, m.min(a, b))                                    \
  /* b is the negative slope */                                                                 \
  X(LeakyRelu, "leaky_relu", Binary, kCheap, kExact, m.select(m.gt(a, m.c(0)), a, m.mul(a, b))) \
  /* b is alpha */                                                                              \
  X(Elu, "elu", Binary, kTranscendental, ulp(2),                                                \
    m.select(m.gt(a, m.c(0)), a, m.mul(b, m.expm1(a))))                                         \
  /* b is beta, c the threshold above which softplus is linear; 2 ULP at beta = 1, and the */   \
  /* rounding of x * beta, |x * beta| / 2 ULP, beyond (8 for |x * beta| <= 16) */               \
  X(Softplus, "softplus", Ternary, kTranscendental, ulp(8),                                     \
    m.select(m.gt(m.mul(a, b), c), a, m.div(m.log1p(m.exp(m.mul(a, b))), b)))                   \
  X(Eq, "eq", Compare, kCheap, kExact, m.eq(a, b))                                              \
  X(Ne, "ne", Compare, kCheap, kExact, m.ne(a, b))                                              \
  X(Lt, "lt", Compare, kCheap, kExact, m.lt(a, b))                                              \
  X(Le, "le", Compare, kCheap, kExact, m.le(a, b))                                              \
  X(Gt, "gt", Compare, kCheap, kExact, m.gt(a, b))                                              \
  X(Ge, "ge", Compare, kCheap, kExact, m.ge(a, b))                                              \
  X(Where, "where", Select, kCheap, kExact, m.select(a, b, c))                                  \
  X(ToFloat, "to_float", ToFloat, kCheap, kExact, m.to_float(a))                                \
  X(ToBool, "to_bool", ToBool, kCheap, kExact, m.ne(a, m.c(0)))                                 \
  X(ToInt64, "to_int64", ToInt64, kCheap, kExact, m.to_int64(a))                               \
  /* the value itself: makes a view's elements contiguous (Tensor::contiguous) */               \
  X(Copy, "copy", Identity, kCheap, kExact, a)

// Ops that are not a formula over operands: data (Input), constants and generators.
//   Input:    a materialized buffer (a tensor's storage, possibly a view of it).
//   Constant: one value broadcast over the node's shape, compiled into kernels: the values
//             passes and LLVM simplify by (0, -0, 1, 2; see compiles_in), and what folding makes.
//   Scalar:   one float32 value broadcast over the node's shape, passed to kernels when they
//             run, so that a value changing between evaluations (a learning rate) reuses the
//             compiled kernels and the cached schedule.
//   Arange:   start + i * step over the flat index i (any shape: [n, 1] counts along dim 0).
//   Rand:     uniform [0, 1) from a counter-based hash of (seed, flat index); the seed is
//             passed when the kernel runs, as a Scalar's value is.
//   Randn:    standard normal from the same hash (Box-Muller).
//   View:     its input's elements at other indices, without a copy: element i of the view is
//             element offset + strided_offset(shape, strides, i) of the input in row-major
//             order (the node's View: strides and offset, no storage). Its input is in memory
//             (materialized, or a graph input); consumers' loads read through the view.
//   Gather:   index_select: element i of dim OpParams::dim is element index[i] of its first
//             input's (in range: the frontend checks the index). The first input is read from
//             memory (materialized, or a graph input), at an offset loaded from the index.
//   Scatter:  an in-place update through a view: its first input, but the elements the node's
//             View (strides and offset, as a View's) addresses hold its second input. Both
//             inputs are computed nodes (copies) whose kernels store them, the first whole and
//             then the second over it.
//   Concat:   its inputs joined along OpParams::dim, in order. Each input is a computed node
//             (the frontend copies what is not) whose kernel stores it into its part of the
//             concatenation's memory; consumers read that memory.
//   MatMul:   batched matrix product: element [b..., m, n] is the float32 sum over k of
//             a[b..., m, k] * b[b..., k, n]; both inputs have the result's batch dims (the
//             frontend expands them: torch.matmul's broadcasting). Each input is read from
//             memory (materialized, or a graph input, possibly strided), or is a value
//             broadcast over its shape.
//   Attention: softmax(q kᵀ · scale + mask) v over the last two dims, each batch index apart:
//             score (i, j) is the float32 dot product of q's row i and k's row j, times the
//             scale (divided by it with kAttentionDivides), plus a Float32 mask's element, or
//             -inf where a Bool mask is false; with kAttentionCausal, keys j > i are not
//             attended at all (their values are never read: an infinite value there cannot
//             make the row NaN). Row i is then Σ_j exp(s_ij - m_i) v_j / Σ_j exp(s_ij - m_i),
//             m_i the NaN-propagating row maximum: a row whose scores are all -inf is NaN, as
//             softmax gives. Inputs as a MatMul's; the scale is a value (Scalar, Constant).
//             OpParams::dim holds the flags.
// X(Enum, "name", kind, fusion pattern). The formula rows above are Elementwise, the
// reductions below Reduction.
#define FUSEJIT_SPECIAL_OPS(X)                  \
  X(Input, "input", Leaf, Opaque)               \
  X(Constant, "constant", Leaf, Broadcast)      \
  X(Scalar, "scalar", Leaf, Broadcast)          \
  X(Arange, "arange", Generator, Elementwise)   \
  X(Rand, "rand", Generator, Elementwise)       \
  X(Randn, "randn", Generator, Elementwise)     \
  X(View, "view", View, Injective)             \
  X(Concat, "cat", Concat, Injective)          \
  X(Gather, "index_select", Gather, Injective)  \
  X(Scatter, "scatter", Scatter, Injective)     \
  X(MatMul, "matmul", MatMul, OutputFusable) \
  X(Attention, "attention", Attention, OutputFusable)

// How a reduction accumulates a row (codegen) and whether it may be split into blocks whose
// float32 partials are combined afterwards (split_reductions):
//   Plain:    with its combine, in float32; splittable.
//   Extremum: with plain max/min instructions, a NaN noted apart (NaN-propagating, as
//             torch.amax); splittable.
//   Product:  in double, zeros and infinities noted apart; never split, since float32 partial
//             products overflow long before the product leaves float's range.
enum class Accumulation : uint8_t { Plain, Extremum, Product };

// Reductions: X(Enum, "name", identity, accumulation, combine). `combine` folds value `b` into
// the running result `a` with backend `m`; `identity` is the result over no elements. The
// combine order is the code generator's (blocked, fixed per target) and the reference's (in
// order, in double).
#define FUSEJIT_REDUCTION_OPS(X)                                                        \
  X(Sum, "sum", 0.0, Plain, m.add(a, b))                                                \
  X(Prod, "prod", 1.0, Product, m.mul(a, b))                                            \
  X(Amax, "amax", -std::numeric_limits<double>::infinity(), Extremum, m.max(a, b))      \
  X(Amin, "amin", std::numeric_limits<double>::infinity(), Extremum, m.min(a, b))

enum class OpCode : uint8_t {
#define FUSEJIT_SPECIAL_ENUM(Enum, name, kind, pattern) Enum,
#define FUSEJIT_ELEMENTWISE_ENUM(Enum, name, kind, cost, accuracy, formula) Enum,
#define FUSEJIT_REDUCTION_ENUM(Enum, name, identity, accumulation, combine) Enum,
  FUSEJIT_SPECIAL_OPS(FUSEJIT_SPECIAL_ENUM) FUSEJIT_ELEMENTWISE_OPS(FUSEJIT_ELEMENTWISE_ENUM)
      FUSEJIT_REDUCTION_OPS(FUSEJIT_REDUCTION_ENUM)
#undef FUSEJIT_SPECIAL_ENUM
#undef FUSEJIT_ELEMENTWISE_ENUM
#undef FUSEJIT_REDUCTION_ENUM
};

struct OpInfo {
  std::string_view name;
  OpKind kind;
  int arity;
  int cost;
  Accuracy accuracy;  // elementwise ops; kExact for the others, which round nothing themselves
  FusionPattern pattern;
};

constexpr int arity_of(OpKind kind) {
  switch (kind) {
    case OpKind::Leaf:
    case OpKind::Generator:
      return 0;
    case OpKind::Unary:
    case OpKind::ToFloat:
    case OpKind::ToBool:
    case OpKind::ToInt64:
    case OpKind::Identity:
    case OpKind::Reduce:
    case OpKind::View:
      return 1;
    case OpKind::Binary:
    case OpKind::Compare:
    case OpKind::Gather:
    case OpKind::Scatter:
    case OpKind::MatMul:
      return 2;
    case OpKind::Ternary:
    case OpKind::Select:
      return 3;
    case OpKind::Concat:
      return -1;  // any number, at least one
    case OpKind::Attention:
      return -1;  // q, k, v, scale, and an optional mask
  }
  return 0;
}

const OpInfo& op_info(OpCode op);
// The number of ops in the table: OpCode values are 0 to op_count() - 1.
size_t op_count();
std::string_view op_name(OpCode op);

inline bool is_elementwise(OpCode op) {
  OpKind kind = op_info(op).kind;
  return kind != OpKind::Leaf && kind != OpKind::Generator && kind != OpKind::Reduce &&
         kind != OpKind::View && kind != OpKind::Concat && kind != OpKind::Gather && kind != OpKind::Scatter &&
         kind != OpKind::MatMul && kind != OpKind::Attention;
}

// The flags of an Attention op (OpParams::dim).
inline constexpr int64_t kAttentionCausal = 1;   // key j > query i is not attended
inline constexpr int64_t kAttentionDivides = 2;  // scores are q kᵀ / scale (else q kᵀ · scale)

// Matmuls and attentions: ops that read their operands whole from memory and whose result
// elementwise work may follow in their kernel.
inline bool is_product(OpCode op) { return op_info(op).pattern == FusionPattern::OutputFusable; }

inline bool is_reduction(OpCode op) { return op_info(op).kind == OpKind::Reduce; }

// The result of reducing over no elements (0 for sum, 1 for prod, -inf for amax).
double reduction_identity(OpCode op);
Accumulation reduction_accumulation(OpCode op);

// Folds `value` into the running result `acc` of reduction `op` with backend M.
template <class M>
typename M::Value apply_combine(M& m, OpCode op, typename M::Value a, typename M::Value b) {
  switch (op) {
#define FUSEJIT_COMBINE_CASE(Enum, name, identity, accumulation, combine) \
  case OpCode::Enum:                                         \
    return combine;
    FUSEJIT_REDUCTION_OPS(FUSEJIT_COMBINE_CASE)
#undef FUSEJIT_COMBINE_CASE
    default:
      break;
  }
  throw InternalError("apply_combine: " + std::string(op_name(op)) + " is not a reduction");
}

// Evaluates an elementwise op's formula with backend M (M::Value is its value type).
template <class M>
typename M::Value apply_formula(M& m, OpCode op, std::span<const typename M::Value> args) {
  using V = typename M::Value;
  V a = args.size() > 0 ? args[0] : V{};
  V b = args.size() > 1 ? args[1] : V{};
  V c = args.size() > 2 ? args[2] : V{};
  switch (op) {
#define FUSEJIT_FORMULA_CASE(Enum, name, kind, cost, accuracy, formula) \
  case OpCode::Enum:                                          \
    return formula;
    FUSEJIT_ELEMENTWISE_OPS(FUSEJIT_FORMULA_CASE)
#undef FUSEJIT_FORMULA_CASE
    default:
      break;
  }
  throw InternalError("apply_formula: " + std::string(op_name(op)) + " is not elementwise");
}

}  // namespace fusejit::ir
