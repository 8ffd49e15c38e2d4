// Views: new shapes, strides and offsets over a tensor's elements, without a copy.
//
// A view of an evaluated tensor is an Input over the same storage; a view of a pending one is
// a View node over it (views of views compose, so a View's input is never a View). Either
// way the layout arithmetic is ir/layout's; this file checks arguments and names the op and
// shapes in its errors, as PyTorch's checks do.
#include <algorithm>
#include <limits>
#include <mutex>

#include "fusejit/fusejit.h"
#include "ir/layout.h"
#include "frontend/lazy.h"
#include "ir/node.h"
#include "runtime/process.h"

namespace fusejit {
namespace {

using ir::Layout;
using ir::Node;
using ir::OpCode;

using frontend::describe;

const Tensor& checked(const char* op, const Tensor& x) { return frontend::defined_or_throw(op, x); }

[[noreturn]] void fail(const char* op, const Tensor& x, const std::string& why) {
  throw Error(std::string(op) + ": " + why + " (input " + describe(x) + ")");
}

// `dim` counted from the end when negative, checked against `rank` dims (rank + 1 where a new
// dim may be inserted).
size_t wrap_dim(const char* op, const Tensor& x, int64_t dim, int64_t rank) {
  int64_t wrapped = dim < 0 ? dim + rank : dim;
  if (wrapped < 0 || wrapped >= rank)
    fail(op, x, "dim " + std::to_string(dim) + " is out of range [" + std::to_string(-rank) + ", " +
                    std::to_string(rank - 1) + "]");
  return static_cast<size_t>(wrapped);
}

// The layout of `node` in the space its views address: an evaluated node's storage, a pending
// View's input, any other pending node's own elements. Call with the graph mutex held.
Layout layout_of(const Node& node) {
  if (node.evaluated() || node.op == OpCode::View)
    return {node.shape, node.value.strides, node.value.offset};
  return ir::contiguous_layout(node.shape);
}

// The node of `x` read through `layout` (in the space of layout_of(x)). Call with the graph
// mutex held; make the Tensor after releasing it (a deep history evaluates there).
std::shared_ptr<Node> make_view(const std::shared_ptr<Node>& x, Layout layout) {
  if (x->evaluated()) {
    auto node = std::make_shared<Node>(OpCode::Input, x->dtype, std::move(layout.shape));
    node->value = {x->value.storage, std::move(layout.strides), layout.offset};
    return node;
  }
  // A broadcast value is the same at every index.
  if (ir::op_info(x->op).pattern == ir::FusionPattern::Broadcast)
    return std::make_shared<Node>(x->op, x->dtype, std::move(layout.shape), std::vector<std::shared_ptr<Node>>{},
                                  x->params);
  const std::shared_ptr<Node>& source = x->op == OpCode::View ? x->inputs[0] : x;
  if (layout == ir::contiguous_layout(source->shape)) return source;
  auto node = std::make_shared<Node>(OpCode::View, x->dtype, std::move(layout.shape),
                                     std::vector<std::shared_ptr<Node>>{source});
  node->value.strides = std::move(layout.strides);
  node->value.offset = layout.offset;
  return node;
}

}  // namespace

namespace frontend {

Layout source_layout(const Tensor& x) {
  const TensorCell& cell = CellAccess::of(x);
  return cell.base ? cell.layout : layout_of(*cell.node);
}

}  // namespace frontend

using frontend::source_layout;

namespace {

// The node of the view of `x` at `layout` (in source_layout's space). Call with the graph mutex
// held.
std::shared_ptr<Node> view_node(const Tensor& x, Layout layout) {
  const frontend::TensorCell& cell = frontend::CellAccess::of(x);
  return make_view(cell.base ? cell.base->node : cell.node, std::move(layout));
}

// Adds `cell` to `base`'s members, first dropping the dead ones when the list is full: a loop
// that takes views of a long-lived tensor keeps the list bounded, at amortized constant work.
void add_member(frontend::Base& base, const std::shared_ptr<frontend::TensorCell>& cell) {
  if (base.members.size() == base.members.capacity())
    std::erase_if(base.members, [](const std::weak_ptr<frontend::TensorCell>& member) { return member.expired(); });
  base.members.push_back(cell);
}

// `view` (of `layout` in source_layout's space), a view of `source`, made a member of their
// base (frontend::Base), which is made on the first view of a tensor.
Tensor joined(const Tensor& source, Tensor view, Layout layout) {
  frontend::TensorCell& from = frontend::CellAccess::of(source);
  std::lock_guard lock(runtime::process().graph_mutex);
  if (!from.base) {
    if (layout_of(*from.node) != ir::contiguous_layout(from.node->shape))
      throw InternalError("a view of a strided tensor that is no view itself");
    from.base = std::make_shared<frontend::Base>(frontend::Base{from.node, {}});
    from.layout = ir::contiguous_layout(from.node->shape);
    add_member(*from.base, frontend::CellAccess::shared(source));
  }
  frontend::TensorCell& to = frontend::CellAccess::of(view);
  to.base = from.base;
  to.layout = std::move(layout);
  add_member(*from.base, frontend::CellAccess::shared(view));
  return view;
}

// `x` through the layout `change` makes of its current one.
template <class Change>
Tensor change_layout(const Tensor& x, Change&& change) {
  std::shared_ptr<Node> node;
  Layout layout;
  {
    std::lock_guard lock(runtime::process().graph_mutex);
    layout = change(source_layout(x));
    node = view_node(x, layout);
  }
  return joined(x, Tensor(std::move(node)), std::move(layout));
}

// `shape` with one -1 inferred from `numel` elements, checked.
Shape inferred_shape(const char* op, const Tensor& x, const Shape& shape) {
  Shape out = shape;
  int64_t known = 1;
  std::optional<size_t> inferred;
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == -1 && !inferred) {
      inferred = d;
    } else if (out[d] < 0) {
      fail(op, x, "invalid shape " + ir::shape_string(shape));
    } else if (known != 0 && out[d] > std::numeric_limits<int64_t>::max() / known) {
      fail(op, x, "shape " + ir::shape_string(shape) + " has too many elements");
    } else {
      known *= out[d];
    }
  }
  int64_t count = x.numel();
  if (inferred) {
    if (known == 0 || count % known != 0)
      fail(op, x, "shape " + ir::shape_string(shape) + " cannot hold " + std::to_string(count) + " elements");
    out[*inferred] = count / known;
  } else if (known != count) {
    fail(op, x, "shape " + ir::shape_string(shape) + " is invalid for " + std::to_string(count) + " elements");
  }
  return out;
}

}  // namespace

namespace frontend {

Tensor strided_view(const Tensor& x, Layout layout) {
  return change_layout(x, [&](const Layout&) { return layout; });
}

void derive_members(Base& base, const TensorCell* except) {
  std::erase_if(base.members, [](const std::weak_ptr<TensorCell>& member) { return member.expired(); });
  for (const std::weak_ptr<TensorCell>& member : base.members) {
    std::shared_ptr<TensorCell> cell = member.lock();
    if (cell && cell.get() != except) cell->node = make_view(base.node, cell->layout);
  }
}

}  // namespace frontend

Shape Tensor::strides() const {
  checked("strides", *this);
  std::lock_guard lock(runtime::process().graph_mutex);
  return source_layout(*this).strides;
}

int64_t Tensor::storage_offset() const {
  checked("storage_offset", *this);
  std::lock_guard lock(runtime::process().graph_mutex);
  return source_layout(*this).offset;
}

bool Tensor::is_contiguous() const {
  checked("is_contiguous", *this);
  std::lock_guard lock(runtime::process().graph_mutex);
  Layout layout = source_layout(*this);
  return ir::is_contiguous(layout.shape, layout.strides);
}

Tensor Tensor::contiguous() const {
  if (checked("contiguous", *this).is_contiguous()) return *this;
  return Tensor(frontend::copy_of(node()));
}

Tensor Tensor::view(Shape shape) const {
  Shape to = inferred_shape("view", checked("view", *this), shape);
  std::shared_ptr<Node> viewed;
  std::optional<Layout> layout;
  {
    std::lock_guard lock(runtime::process().graph_mutex);
    Layout from = source_layout(*this);
    layout = ir::reshaped(from, to);
    if (!layout)
      fail("view", *this, "shape " + ir::shape_string(shape) + " is not compatible with the strides " +
                              ir::shape_string(from.strides) + " without a copy (use reshape)");
    viewed = view_node(*this, *layout);
  }
  return joined(*this, Tensor(std::move(viewed)), std::move(*layout));
}

Tensor Tensor::reshape(Shape shape) const {
  Shape to = inferred_shape("reshape", checked("reshape", *this), shape);
  std::shared_ptr<Node> viewed;
  std::optional<Layout> layout;
  {
    std::lock_guard lock(runtime::process().graph_mutex);
    layout = ir::reshaped(source_layout(*this), to);
    if (layout) viewed = view_node(*this, *layout);
  }
  if (!viewed) return contiguous().view(to);
  return joined(*this, Tensor(std::move(viewed)), std::move(*layout));
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  int64_t rank = checked("transpose", *this).dim();
  // A 0-d tensor accepts dims 0 and -1, as in PyTorch.
  size_t a = wrap_dim("transpose", *this, dim0, std::max<int64_t>(rank, 1));
  size_t b = wrap_dim("transpose", *this, dim1, std::max<int64_t>(rank, 1));
  if (rank == 0) return *this;
  std::vector<size_t> order(rank);
  for (size_t d = 0; d < order.size(); ++d) order[d] = d;
  std::swap(order[a], order[b]);
  return change_layout(*this, [&](const Layout& layout) { return ir::permuted(layout, order); });
}

Tensor Tensor::t() const {
  if (checked("t", *this).dim() > 2) fail("t", *this, "expects a tensor of at most 2 dims");
  return dim() < 2 ? *this : transpose(0, 1);
}

Tensor Tensor::permute(Shape dims) const {
  int64_t rank = checked("permute", *this).dim();
  if (static_cast<int64_t>(dims.size()) != rank)
    fail("permute", *this, "dims " + ir::shape_string(dims) + " do not list each of " + std::to_string(rank) + " dims");
  std::vector<size_t> order;
  std::vector<bool> seen(rank, false);
  for (int64_t dim : dims) {
    size_t d = wrap_dim("permute", *this, dim, rank);
    if (seen[d]) fail("permute", *this, "dim " + std::to_string(dim) + " appears twice in " + ir::shape_string(dims));
    seen[d] = true;
    order.push_back(d);
  }
  return change_layout(*this, [&](const Layout& layout) { return ir::permuted(layout, order); });
}

Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  int64_t rank = checked("slice", *this).dim();
  if (rank == 0) fail("slice", *this, "cannot slice a 0-d tensor");
  size_t d = wrap_dim("slice", *this, dim, rank);
  if (step <= 0) fail("slice", *this, "step must be positive, got " + std::to_string(step));
  int64_t size = sizes()[d];
  // As Python slicing: negative bounds count from the end, then both clamp to [0, size].
  auto clamp_bound = [size](int64_t bound) {
    if (bound < 0) bound = bound < -size ? 0 : bound + size;
    return std::min(bound, size);
  };
  int64_t from = clamp_bound(start);
  int64_t to = std::max(from, clamp_bound(end));
  return change_layout(*this, [&](const Layout& layout) { return ir::sliced(layout, d, from, to, step); });
}

Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  int64_t rank = checked("narrow", *this).dim();
  if (rank == 0) fail("narrow", *this, "cannot narrow a 0-d tensor");
  size_t d = wrap_dim("narrow", *this, dim, rank);
  int64_t size = sizes()[d];
  int64_t from = start < 0 ? start + size : start;
  if (from < 0 || from > size || length < 0 || length > size - from)
    fail("narrow", *this, "start " + std::to_string(start) + " and length " + std::to_string(length) +
                              " are out of range for dim " + std::to_string(dim) + " of size " + std::to_string(size));
  return change_layout(*this, [&](const Layout& layout) { return ir::sliced(layout, d, from, from + length, 1); });
}

Tensor Tensor::select(int64_t dim, int64_t index) const {
  int64_t rank = checked("select", *this).dim();
  if (rank == 0) fail("select", *this, "cannot select from a 0-d tensor");
  size_t d = wrap_dim("select", *this, dim, rank);
  int64_t size = sizes()[d];
  int64_t wrapped = index < 0 ? index + size : index;
  if (wrapped < 0 || wrapped >= size)
    fail("select", *this, "index " + std::to_string(index) + " is out of range for dim " + std::to_string(dim) +
                              " of size " + std::to_string(size));
  return change_layout(*this, [&](const Layout& layout) { return ir::selected(layout, d, wrapped); });
}

Tensor Tensor::expand(Shape shape) const {
  const Shape& from = checked("expand", *this).sizes();
  if (shape.size() < from.size())
    fail("expand", *this, "shape " + ir::shape_string(shape) + " has fewer dims than the tensor");
  Shape to = shape;
  size_t lead = shape.size() - from.size();
  for (size_t d = 0; d < to.size(); ++d) {
    bool existing = d >= lead;
    if (to[d] == -1 && existing) to[d] = from[d - lead];
    if (to[d] < 0 || (existing && from[d - lead] != 1 && from[d - lead] != to[d]))
      fail("expand", *this, "cannot expand to shape " + ir::shape_string(shape));
  }
  if (!ir::addressable(to)) fail("expand", *this, "shape " + ir::shape_string(shape) + " has too many elements");
  return change_layout(*this, [&](const Layout& layout) {
    return Layout{to, ir::broadcast_strides(layout.shape, layout.strides, to), layout.offset};
  });
}

Tensor Tensor::unsqueeze(int64_t dim) const {
  size_t d = wrap_dim("unsqueeze", checked("unsqueeze", *this), dim, this->dim() + 1);
  return change_layout(*this, [&](const Layout& layout) { return ir::unsqueezed(layout, d); });
}

Tensor Tensor::squeeze() const {
  return change_layout(checked("squeeze", *this), [&](Layout layout) {
    for (size_t d = layout.shape.size(); d-- > 0;)
      if (layout.shape[d] == 1) layout = ir::squeezed(layout, d);
    return layout;
  });
}

Tensor Tensor::squeeze(int64_t dim) const {
  int64_t rank = checked("squeeze", *this).dim();
  size_t d = wrap_dim("squeeze", *this, dim, std::max<int64_t>(rank, 1));
  if (rank == 0 || sizes()[d] != 1) return *this;  // as PyTorch: only a size-1 dim goes
  return change_layout(*this, [&](const Layout& layout) { return ir::squeezed(layout, d); });
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  int64_t rank = checked("flatten", *this).dim();
  if (rank == 0) return reshape({1});
  size_t first = wrap_dim("flatten", *this, start, rank);
  size_t last = wrap_dim("flatten", *this, end, rank);
  if (first > last) fail("flatten", *this, "start dim " + std::to_string(start) + " is after end dim " + std::to_string(end));
  Shape shape(sizes().begin(), sizes().begin() + static_cast<std::ptrdiff_t>(first));
  int64_t merged = 1;
  for (size_t d = first; d <= last; ++d) merged *= sizes()[d];
  shape.push_back(merged);
  shape.insert(shape.end(), sizes().begin() + static_cast<std::ptrdiff_t>(last) + 1, sizes().end());
  return reshape(shape);
}

Tensor reshape(const Tensor& x, Shape shape) { return x.reshape(std::move(shape)); }
Tensor view(const Tensor& x, Shape shape) { return x.view(std::move(shape)); }
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) { return x.transpose(dim0, dim1); }
Tensor t(const Tensor& x) { return x.t(); }
Tensor permute(const Tensor& x, Shape dims) { return x.permute(std::move(dims)); }
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  return x.slice(dim, start, end, step);
}
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) { return x.narrow(dim, start, length); }
Tensor select(const Tensor& x, int64_t dim, int64_t index) { return x.select(dim, index); }
Tensor expand(const Tensor& x, Shape shape) { return x.expand(std::move(shape)); }
Tensor unsqueeze(const Tensor& x, int64_t dim) { return x.unsqueeze(dim); }
Tensor squeeze(const Tensor& x) { return x.squeeze(); }
Tensor squeeze(const Tensor& x, int64_t dim) { return x.squeeze(dim); }
Tensor flatten(const Tensor& x, int64_t start, int64_t end) { return x.flatten(start, end); }
Tensor contiguous(const Tensor& x) { return x.contiguous(); }

}  // namespace fusejit
