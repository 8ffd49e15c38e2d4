// Graph-to-graph passes. Each keeps the graph's outputs (in order) and its meaning.
#pragma once

#include "ir/graph.h"

namespace fusejit::ir {

// Drops nodes that no output needs.
Graph eliminate_dead_code(const Graph& graph);

// One forward sweep applying, at each node:
// - constant folding: elementwise ops on constants become a constant, where the kernel's result
//   is the exact result rounded once (Accuracy kExact), so folding changes no bit; a view of
//   a constant or scalar is that value over the view's shape;
// - algebra: x*1, 1*x, x/1, x+(-0), (-0)+x, x-0 -> x and neg(neg(x)) -> x, where x already has
//   the result's shape and is no view or strided input (a view of the result must still read
//   contiguous or computed memory): identities that hold bit for bit for every x, signed zeros
//   included;
// - CSE: a node equal to an earlier one (same op, type, inputs, parameters by their bits) is
//   replaced by it; nodes with a run-time value (Scalar, Rand, Randn) are never merged, since
//   a cached schedule must hold for any values.
Graph canonicalize(const Graph& graph);

// Finds attention written as its ops, softmax(q kᵀ · c + mask, -1) v, and replaces it by one
// Attention node (with its flags), so that it runs as one tiled kernel:
//   matmul(softmax(X, -1), v), softmax as the frontend composes it (e · (1 / sum(e)) with
//   e = exp(X - amax(X))), X = A, A + mask, mask + A (a Float32 mask) or where(mask, A, -inf)
//   (a Bool mask), A = P, P · c, c · P or P / c (c a value: Scalar or Constant), P = matmul(q, kᵀ).
// Every node of the pattern but q, kᵀ, v, c and the mask is read only by the pattern (its
// values are not wanted elsewhere). The keys enter as a view of kᵀ transposed back; a mask
// that broadcasts enters as a view of it at the scores' shape. Run when fusing only: eager
// runs each op as its own kernel.
Graph fuse_attention(const Graph& graph);

// Copies an output that is a view or a strided graph input (what x.t() * 1 simplifies to)
// into a contiguous result: a computed tensor is always contiguous, as in PyTorch, so views of
// it compose with its strides.
Graph contiguous_outputs(const Graph& graph);

// Elements per block of a split full reduction (see split_reductions).
inline constexpr int64_t kReductionChunk = 1 << 14;

// Splits large reductions whose leading dims are reduced in two, so that they run in parallel
// over fixed blocks of those dims: a partial reduction of each block, then the reduction of the
// partials in order. The result is bitwise the same for any thread count; it depends on
// `chunk` and the shape only.
// - A reduction of all of more than `chunk` elements: blocks of whole leading rows of about
//   `chunk` elements each.
// - A column reduction (leading dims reduced, trailing kept) of more than 2 x `chunk`
//   elements: at most 64 blocks of at least 16 rows, so the partials stay small.
// A reduction that accumulates as a Product (prod) is never split (see Accumulation).
Graph split_reductions(const Graph& graph, int64_t chunk);

}  // namespace fusejit::ir
