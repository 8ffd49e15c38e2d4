// In-place updates: a tensor's value replaced by a new lazy node, written into the tensor's
// own storage at evaluation when nothing else can see the old value (see evaluate.cpp).
#include <mutex>

#include "frontend/lazy.h"
#include "ir/layout.h"
#include "ir/node.h"
#include "runtime/process.h"

namespace fusejit {
namespace {

using ir::Node;
using ir::OpCode;

using frontend::describe;

const Tensor& updatable(const char* op, const Tensor& self) {
  if (!self.defined()) throw Error(std::string(op) + ": the tensor is undefined (default-constructed)");
  bool overlapping;
  {
    std::lock_guard lock(runtime::process().graph_mutex);
    overlapping = ir::has_overlap(frontend::source_layout(self));
  }
  if (overlapping)
    throw Error(std::string(op) + ": the tensor " + describe(self) + " is an expanded (stride-0) or overlapping " +
                "view: several of its elements are one element in memory");
  return self;
}

const Tensor& arithmetic(const char* op, const Tensor& self) {
  if (updatable(op, self).dtype() != DType::Float32)
    throw Error(std::string(op) + ": arithmetic in place needs a Float32 tensor, got " + describe(self));
  return self;
}

// `node` converted to `dtype` (frontend::cast), always as a new node: the update's own, which
// takes the write target.
std::shared_ptr<Node> converted(std::shared_ptr<Node> node, DType dtype) {
  if (node->dtype != dtype) return frontend::cast(std::move(node), dtype);
  return frontend::copy_of(std::move(node));
}

// The new value of the base of `cell`, a view of it, updated to `value` there: the old value
// but the view's elements, which hold `value` (a Scatter of copies of both: their kernels store
// them, the old value first).
std::shared_ptr<Node> scattered(const frontend::TensorCell& cell, const std::shared_ptr<Node>& value) {
  const std::shared_ptr<Node>& whole = cell.base->node;
  Shape shape = whole->shape;
  auto node = std::make_shared<Node>(OpCode::Scatter, whole->dtype, std::move(shape),
                                     std::vector<std::shared_ptr<Node>>{frontend::copy_of(whole), frontend::copy_of(value)});
  node->value.strides = cell.layout.strides;
  node->value.offset = cell.layout.offset;
  return node;
}

// The storage that `update`, the new value of `old`, is to be written into when nothing else
// sees the old value (evaluate.cpp decides): old's own if it is evaluated and fills it
// contiguously, or the one that a pending update before it was to be written into.
void take_storage(Node& update, Node& old) {
  if (!old.evaluated()) {
    update.write_into = std::move(old.write_into);
    return;
  }
  const ir::View& data = old.value;
  bool whole = data.offset == 0 && ir::is_contiguous(old.shape, data.strides) &&
               data.storage->bytes() >= ir::numel(old.shape) * dtype_size(old.dtype);
  if (whole) update.write_into = data.storage;
}

// Makes `value` (a new node of `self`'s type) the value of `self` and every copy of it, and of
// its base (the views of it, or of what it views, see it).
void assign(const char* op, Tensor& self, const Tensor& value) {
  if (value.sizes() != self.sizes())
    throw Error(std::string(op) + ": the result's shape " + ir::shape_string(value.sizes()) +
                " differs from the tensor's " + describe(self) + " (the operand must broadcast to it)");
  if (value.dtype() != self.dtype()) throw InternalError(std::string(op) + ": the update changes the dtype");
  const std::shared_ptr<Node>& node = value.node();
  frontend::TensorCell& cell = frontend::CellAccess::of(self);
  if (cell.base && cell.layout != ir::contiguous_layout(cell.base->node->shape)) {
    // Through a view: the base gets a new value, and every member (this one too) reads it.
    std::shared_ptr<Node> whole;
    {
      std::lock_guard lock(runtime::process().graph_mutex);
      whole = scattered(cell, node);
      take_storage(*whole, *cell.base->node);
    }
    Tensor bounded(whole);  // a deep history is evaluated here
    std::lock_guard lock(runtime::process().graph_mutex);
    cell.base->node = bounded.node();
    frontend::derive_members(*cell.base, nullptr);
    return;
  }
  {
    std::lock_guard lock(runtime::process().graph_mutex);
    take_storage(*node, *cell.node);
    cell.node = node;
    if (cell.base) {
      cell.base->node = node;
      frontend::derive_members(*cell.base, &cell);
    }
  }
}

}  // namespace

Tensor& Tensor::add_(const Tensor& other) {
  assign("add_", *this, add(arithmetic("add_", *this), other));
  return *this;
}

Tensor& Tensor::sub_(const Tensor& other) {
  assign("sub_", *this, sub(arithmetic("sub_", *this), other));
  return *this;
}

Tensor& Tensor::mul_(const Tensor& other) {
  assign("mul_", *this, mul(arithmetic("mul_", *this), other));
  return *this;
}

Tensor& Tensor::div_(const Tensor& other) {
  assign("div_", *this, div(arithmetic("div_", *this), other));
  return *this;
}

Tensor& Tensor::clamp_(float min, float max) {
  assign("clamp_", *this, clamp(arithmetic("clamp_", *this), min, max));
  return *this;
}

Tensor& Tensor::relu_() {
  assign("relu_", *this, relu(arithmetic("relu_", *this)));
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  updatable("copy_", *this);
  if (!src.defined()) throw Error("copy_: the source is an undefined tensor (into " + describe(*this) + ")");
  if (!ir::broadcast_shapes(src.sizes(), sizes()) || *ir::broadcast_shapes(src.sizes(), sizes()) != sizes())
    throw Error("copy_: the source " + describe(src) + " does not broadcast to the tensor's " + describe(*this));
  Tensor source = src.sizes() == sizes() ? src : src.expand(sizes());
  assign("copy_", *this, Tensor(converted(source.node(), dtype())));
  return *this;
}

namespace {

void fill(const char* op, Tensor& self, float value) {
  updatable(op, self);
  std::shared_ptr<Node> filled = ir::float_leaf(self.sizes(), value);
  if (self.dtype() != DType::Float32) filled = converted(std::move(filled), self.dtype());
  assign(op, self, Tensor(std::move(filled)));
}

}  // namespace

Tensor& Tensor::fill_(float value) {
  fill("fill_", *this, value);
  return *this;
}

Tensor& Tensor::zero_() {
  fill("zero_", *this, 0);
  return *this;
}

}  // namespace fusejit
