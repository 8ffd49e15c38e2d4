// Strided layouts, and the zero-copy views between them: what reshape, permute, slice,
// select, unsqueeze and squeeze do to a tensor's shape, strides and offset (expand is
// broadcast_strides, in shape.h). Pure index arithmetic over arguments the caller has checked
// (dims in range, bounds clamped): the frontend names the op and shapes in its errors.
#pragma once

#include <optional>
#include <vector>

#include "ir/shape.h"

namespace fusejit::ir {

// Element (shape index) i1..in lives at offset + sum(i_d * strides[d]) of its storage.
struct Layout {
  Shape shape;
  Strides strides;
  int64_t offset = 0;
  bool operator==(const Layout&) const = default;
};

Layout contiguous_layout(const Shape& shape);

// Dim d of the result is dim order[d] of `layout`; `order` is a permutation of its dims.
Layout permuted(const Layout& layout, const std::vector<size_t>& order);
// Indices start, start + step, ... below end of `dim` (0 <= start <= end <= size, step > 0).
Layout sliced(const Layout& layout, size_t dim, int64_t start, int64_t end, int64_t step);
// Index `index` of `dim` (0 <= index < size), the dim dropped.
Layout selected(const Layout& layout, size_t dim, int64_t index);
// A new dim of size 1 before dim `dim` (0 <= dim <= rank).
Layout unsqueezed(const Layout& layout, size_t dim);
// Dim `dim`, of size 1, dropped.
Layout squeezed(const Layout& layout, size_t dim);
// `layout` read as shape `to` without copying, when its elements in row-major order lie at
// strides that `to` can express (every contiguous run of dims is split or merged only within
// itself); nullopt when the data would need a copy. numel(to) must equal numel(layout.shape).
std::optional<Layout> reshaped(const Layout& layout, const Shape& to);
// Whether every element of the layout (shape, strides, offset) lies in [0, elements) (strides
// are not negative); an empty layout addresses nothing.
bool within(const Shape& shape, const Strides& strides, int64_t offset, int64_t elements);
// Whether two different indices may address one element (a stretched dim, or dims whose strides
// interleave): writing through such a layout would be ill-defined.
bool has_overlap(const Layout& layout);

}  // namespace fusejit::ir
