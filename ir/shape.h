// Shapes, strides and NumPy broadcasting.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fusejit/core.h"

namespace fusejit::ir {

using Strides = std::vector<int64_t>;

std::string shape_string(const Shape& shape);  // "[4096,4096]"

// Whether a tensor of `shape` can be addressed: no negative dim, and its size in bytes (of the
// widest dtype, 8 bytes) fits int64, and so do its strides (a zero dim does not excuse the
// others).
bool addressable(const Shape& shape);
int64_t numel(const Shape& shape);  // for shapes already checked

Strides contiguous_strides(const Shape& shape);
// The offset, in elements, of element `flat` (row-major over `shape`) under `strides`.
int64_t strided_offset(const Shape& shape, const Strides& strides, int64_t flat);
bool is_contiguous(const Shape& shape, const Strides& strides);  // == contiguous_strides(shape)

// NumPy broadcasting of two shapes (right-aligned, size-1 dims stretch), or nullopt.
std::optional<Shape> broadcast_shapes(const Shape& a, const Shape& b);

// The result of a MatMul node of inputs [batch..., M, K] and [batch..., K, N] (the same batch
// dims, rank >= 2): [batch..., M, N]; nullopt when the inputs do not fit.
std::optional<Shape> matmul_shape(const Shape& a, const Shape& b);
// The result of an Attention node of q [batch..., L, E], k [batch..., S, E], v [batch..., S, Ev]
// (the same batch dims), a 0-d scale and, when given, a mask [batch..., L, S]: [batch..., L, Ev].
std::optional<Shape> attention_shape(const Shape& q, const Shape& k, const Shape& v, const Shape& scale,
                                     const Shape* mask);

// Strides that read a tensor of shape `from` (with strides `strides`) broadcast to shape `to`:
// stretched and missing dims get stride 0. `from` must broadcast to `to`.
Strides broadcast_strides(const Shape& from, const Strides& strides, const Shape& to);

// Whether bit `d` of a reduction's `axes` is set. Tensors may have more than 64 dims (only
// reductions are limited to 64), so `d` may be past the last bit.
inline bool reduces_dim(uint64_t axes, size_t d) { return d < 64 && (axes >> d & 1); }
// The dims set in `axes` as a list: "[0,2]".
std::string axes_string(uint64_t axes);

// The shape left after reducing the dims whose bits are set in `axes`: those dims become 1
// (keepdim) or are dropped.
Shape reduced_shape(const Shape& input, uint64_t axes, bool keepdim);

// The first dim larger than 1, or the rank when there is none.
size_t first_split_dim(const Shape& shape);

// The shape of a partial reduction of `input` over the dims in `axes`, of which the
// first_split_dim is taken in blocks of `chunk` indices: that dim counts the blocks, the other
// reduced dims are 1, the kept dims stay.
Shape chunked_shape(const Shape& input, uint64_t axes, int64_t chunk);

}  // namespace fusejit::ir
