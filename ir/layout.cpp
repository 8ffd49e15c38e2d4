#include "ir/layout.h"

#include <algorithm>
#include <cstdlib>

namespace fusejit::ir {

Layout contiguous_layout(const Shape& shape) { return {shape, contiguous_strides(shape), 0}; }

Layout permuted(const Layout& layout, const std::vector<size_t>& order) {
  Layout out{{}, {}, layout.offset};
  for (size_t d : order) {
    out.shape.push_back(layout.shape[d]);
    out.strides.push_back(layout.strides[d]);
  }
  return out;
}

Layout sliced(const Layout& layout, size_t dim, int64_t start, int64_t end, int64_t step) {
  Layout out = layout;
  out.shape[dim] = end > start ? (end - start + step - 1) / step : 0;
  out.strides[dim] = layout.strides[dim] * step;
  // An empty slice addresses nothing: its offset stays where the data starts.
  if (out.shape[dim] > 0) out.offset += start * layout.strides[dim];
  return out;
}

Layout selected(const Layout& layout, size_t dim, int64_t index) {
  Layout out = layout;
  out.offset += index * layout.strides[dim];
  out.shape.erase(out.shape.begin() + static_cast<std::ptrdiff_t>(dim));
  out.strides.erase(out.strides.begin() + static_cast<std::ptrdiff_t>(dim));
  return out;
}

Layout unsqueezed(const Layout& layout, size_t dim) {
  Layout out = layout;
  // The stride a contiguous tensor would have there, so a contiguous input stays contiguous.
  int64_t stride = dim < layout.shape.size() ? layout.shape[dim] * layout.strides[dim] : 1;
  out.shape.insert(out.shape.begin() + static_cast<std::ptrdiff_t>(dim), 1);
  out.strides.insert(out.strides.begin() + static_cast<std::ptrdiff_t>(dim), stride);
  return out;
}

Layout squeezed(const Layout& layout, size_t dim) { return selected(layout, dim, 0); }

// As PyTorch's computeStride: walk the old dims from the last, in runs that are contiguous
// among themselves (size-1 dims join any run); each run must be covered exactly by a run of
// new dims, which get strides contiguous within the run.
std::optional<Layout> reshaped(const Layout& layout, const Shape& to) {
  const Shape& from = layout.shape;
  Layout out{to, Strides(to.size(), 0), layout.offset};
  if (from.empty() || numel(from) == 0) {
    out.strides = contiguous_strides(to);
    return out;
  }
  auto view_d = static_cast<int64_t>(to.size()) - 1;
  int64_t run_stride = layout.strides.back();  // the stride of the run's last dim
  int64_t run_numel = 1, view_numel = 1;
  for (auto d = static_cast<int64_t>(from.size()) - 1; d >= 0; --d) {
    run_numel *= from[d];
    bool run_ends = d == 0 || (from[d - 1] != 1 && layout.strides[d - 1] != run_numel * run_stride);
    if (!run_ends) continue;
    while (view_d >= 0 && (view_numel < run_numel || to[view_d] == 1)) {
      out.strides[view_d] = view_numel * run_stride;
      view_numel *= to[view_d];
      --view_d;
    }
    if (view_numel != run_numel) return std::nullopt;
    if (d > 0) {
      run_stride = layout.strides[d - 1];
      run_numel = view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

bool has_overlap(const Layout& layout) {
  if (numel(layout.shape) <= 1) return false;
  std::vector<size_t> dims;
  for (size_t d = 0; d < layout.shape.size(); ++d)
    if (layout.shape[d] > 1) dims.push_back(d);
  auto magnitude = [&](size_t d) { return std::abs(layout.strides[d]); };
  std::sort(dims.begin(), dims.end(), [&](size_t a, size_t b) { return magnitude(a) < magnitude(b); });
  // Sorted by stride, each dim must step past everything the smaller ones reach.
  int64_t reach = 0;
  for (size_t d : dims) {
    if (magnitude(d) <= reach) return true;
    reach += (layout.shape[d] - 1) * magnitude(d);
  }
  return false;
}

bool within(const Shape& shape, const Strides& strides, int64_t offset, int64_t elements) {
  if (numel(shape) == 0) return true;
  int64_t last = offset;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (strides[d] < 0) return false;
    last += (shape[d] - 1) * strides[d];
  }
  return offset >= 0 && last < elements;
}

}  // namespace fusejit::ir
