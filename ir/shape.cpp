#include "ir/shape.h"

#include <algorithm>

namespace fusejit::ir {

std::string shape_string(const Shape& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ",";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

std::string axes_string(uint64_t axes) {
  Shape dims;
  for (size_t d = 0; d < 64; ++d)
    if (reduces_dim(axes, d)) dims.push_back(static_cast<int64_t>(d));
  return shape_string(dims);
}

bool addressable(const Shape& shape) {
  // Zero dims are skipped: strides are products of the other dims, and must fit too.
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) return false;
    if (dim == 0) continue;
    if (count > INT64_MAX / 8 / dim) return false;
    count *= dim;
  }
  return true;
}

int64_t numel(const Shape& shape) {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

int64_t strided_offset(const Shape& shape, const Strides& strides, int64_t flat) {
  int64_t offset = 0;
  for (size_t d = shape.size(); d-- > 0;) {
    offset += (flat % shape[d]) * strides[d];
    flat /= shape[d];
  }
  return offset;
}

Strides contiguous_strides(const Shape& shape) {
  Strides strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

bool is_contiguous(const Shape& shape, const Strides& strides) {
  if (strides.size() != shape.size()) return false;
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (strides[i] != stride) return false;
    stride *= shape[i];
  }
  return true;
}

std::optional<Shape> broadcast_shapes(const Shape& a, const Shape& b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) return std::nullopt;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::optional<Shape> matmul_shape(const Shape& a, const Shape& b) {
  size_t rank = a.size();
  if (rank < 2 || b.size() != rank || a[rank - 1] != b[rank - 2] ||
      !std::equal(a.begin(), a.end() - 2, b.begin()))
    return std::nullopt;
  Shape out = a;
  out[rank - 1] = b[rank - 1];
  return out;
}

std::optional<Shape> attention_shape(const Shape& q, const Shape& k, const Shape& v, const Shape& scale,
                                     const Shape* mask) {
  size_t rank = q.size();
  if (rank < 2 || k.size() != rank || v.size() != rank || !scale.empty() || q[rank - 1] != k[rank - 1] ||
      k[rank - 2] != v[rank - 2] || !std::equal(q.begin(), q.end() - 2, k.begin()) ||
      !std::equal(q.begin(), q.end() - 2, v.begin()))
    return std::nullopt;
  Shape out = q;
  out[rank - 1] = v[rank - 1];
  Shape scores = q;
  scores[rank - 1] = k[rank - 2];
  if (mask && *mask != scores) return std::nullopt;
  return out;
}

Strides broadcast_strides(const Shape& from, const Strides& strides, const Shape& to) {
  Strides out(to.size(), 0);
  size_t lead = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i) {
    if (from[i] != 1 || to[lead + i] == 1) out[lead + i] = strides[i];
  }
  return out;
}

Shape reduced_shape(const Shape& input, uint64_t axes, bool keepdim) {
  Shape out;
  for (size_t d = 0; d < input.size(); ++d) {
    if (!reduces_dim(axes, d))
      out.push_back(input[d]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

size_t first_split_dim(const Shape& shape) {
  size_t d = 0;
  while (d < shape.size() && shape[d] == 1) ++d;
  return d;
}

Shape chunked_shape(const Shape& input, uint64_t axes, int64_t chunk) {
  Shape out = reduced_shape(input, axes, true);
  size_t d = first_split_dim(input);
  if (d < input.size()) out[d] = (input[d] + chunk - 1) / chunk;
  return out;
}

}  // namespace fusejit::ir
