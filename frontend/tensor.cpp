// Tensor accessors and creation.
#include <cmath>
#include <cstring>
#include <limits>

#include "frontend/lazy.h"
#include "ir/node.h"
#include "runtime/buffer_pool.h"
#include "runtime/parallel.h"
#include "runtime/process.h"

namespace fusejit {

Tensor::Tensor(std::shared_ptr<ir::Node> node) {
  if (!node) return;
  if (node->depth.load(std::memory_order_relaxed) > frontend::kMaxPendingDepth) {
    std::vector<Tensor> operands;
    for (const auto& input : node->inputs) operands.push_back(Tensor(input));
    fusejit::eval(operands);
    node->depth.store(1, std::memory_order_relaxed);
  }
  cell_ = std::make_shared<frontend::TensorCell>();
  cell_->node = std::move(node);
}

Tensor::Tensor(float value) : Tensor(ir::float_leaf({}, value)) {}

const std::shared_ptr<ir::Node>& Tensor::node() const {
  static const std::shared_ptr<ir::Node> none;
  return cell_ ? cell_->node : none;
}

const ir::Node& Tensor::checked_node() const {
  if (!cell_) throw Error("tensor is undefined (default-constructed)");
  return *cell_->node;
}

const Shape& Tensor::sizes() const { return checked_node().shape; }
int64_t Tensor::dim() const { return static_cast<int64_t>(sizes().size()); }
int64_t Tensor::numel() const { return ir::numel(sizes()); }
DType Tensor::dtype() const { return checked_node().dtype; }

int64_t Tensor::size(int64_t dim) const {
  int64_t rank = this->dim();
  int64_t wrapped = dim < 0 ? dim + rank : dim;
  if (wrapped < 0 || wrapped >= rank)
    throw Error("size: dim " + std::to_string(dim) + " out of range for a tensor of shape " +
                ir::shape_string(sizes()));
  return sizes()[wrapped];
}

bool Tensor::is_evaluated() const {
  const ir::Node& node = checked_node();
  std::lock_guard lock(runtime::process().graph_mutex);
  return node.evaluated();
}

namespace {

template <class T>
constexpr DType dtype_of = std::is_same_v<T, bool>      ? DType::Bool
                           : std::is_same_v<T, int64_t> ? DType::Int64
                                                        : DType::Float32;

template <class T>
void check_dtype(const Tensor& t, const char* what) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, bool> || std::is_same_v<T, int64_t>,
                "tensor elements are float (Float32), bool (Bool) or int64_t (Int64)");
  if (t.dtype() != dtype_of<T>)
    throw Error(std::string(what) + "<" + dtype_name(dtype_of<T>) + ">: the tensor is " +
                dtype_name(t.dtype()));
}

// Evaluated values never change, so the reference stays good.
const ir::View& evaluated_view(const Tensor& t) {
  {
    std::lock_guard lock(runtime::process().graph_mutex);
    if (t.node()->evaluated()) return t.node()->value;
  }
  t.eval();
  std::lock_guard lock(runtime::process().graph_mutex);
  return t.node()->value;
}

Shape checked_shape(const char* op, const Shape& shape) {
  if (!ir::addressable(shape))
    throw Error(std::string(op) + ": invalid shape " + ir::shape_string(shape) +
                " (negative size or element count overflows)");
  return shape;
}

Tensor leaf(ir::OpCode op, Shape shape, ir::OpParams params = {}) {
  return Tensor(std::make_shared<ir::Node>(op, DType::Float32, std::move(shape),
                                           std::vector<std::shared_ptr<ir::Node>>{}, params));
}

Tensor input(DType dtype, Shape shape, std::shared_ptr<ir::Storage> storage) {
  auto node = std::make_shared<ir::Node>(ir::OpCode::Input, dtype, shape);
  node->value = {std::move(storage), ir::contiguous_strides(shape), 0};
  return Tensor(std::move(node));
}

}  // namespace

template <class T>
std::vector<T> Tensor::to_vector() const {
  check_dtype<T>(*this, "to_vector");
  const ir::View& view = evaluated_view(*this);
  const Shape& shape = sizes();
  int64_t count = ir::numel(shape);
  std::vector<T> out(count);
  using Stored = std::conditional_t<std::is_same_v<T, bool>, uint8_t, T>;
  const auto* data = static_cast<const Stored*>(view.storage->data());
  for (int64_t i = 0; i < count; ++i)
    out[i] = static_cast<T>(data[view.offset + ir::strided_offset(shape, view.strides, i)]);
  return out;
}

template <class T>
T Tensor::item() const {
  if (numel() != 1)
    throw Error("item: expected a tensor with one element, got shape " + ir::shape_string(sizes()));
  return to_vector<T>()[0];
}

template <class T>
T* Tensor::data_ptr() const {
  check_dtype<T>(*this, "data_ptr");
  const ir::View& view = evaluated_view(*this);
  return static_cast<T*>(view.storage->data()) + view.offset;
}

template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<bool> Tensor::to_vector<bool>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template float Tensor::item<float>() const;
template bool Tensor::item<bool>() const;
template int64_t Tensor::item<int64_t>() const;
template float* Tensor::data_ptr<float>() const;
template bool* Tensor::data_ptr<bool>() const;
template int64_t* Tensor::data_ptr<int64_t>() const;

namespace {

void check_values_fill(size_t values, const Shape& shape) {
  checked_shape("tensor", shape);
  if (static_cast<int64_t>(values) != ir::numel(shape))
    throw Error("tensor: " + std::to_string(values) + " values do not fill shape " +
                ir::shape_string(shape) + " (" + std::to_string(ir::numel(shape)) + " elements)");
}

}  // namespace

Tensor tensor(const std::vector<float>& data, Shape shape) {
  check_values_fill(data.size(), shape);
  int64_t bytes = static_cast<int64_t>(data.size() * sizeof(float));
  std::shared_ptr<ir::Storage> storage = runtime::allocate(bytes);
  runtime::parallel_copy(storage->data(), data.data(), bytes);
  return input(DType::Float32, std::move(shape), std::move(storage));
}

Tensor tensor(std::vector<float>&& data, Shape shape) {
  check_values_fill(data.size(), shape);
  auto owner = std::make_shared<std::vector<float>>(std::move(data));
  auto storage = std::make_shared<ir::Storage>(owner->data(), static_cast<int64_t>(owner->size() * sizeof(float)),
                                               [owner](void*, int64_t) mutable { owner.reset(); });
  return input(DType::Float32, std::move(shape), std::move(storage));
}

Tensor from_blob(float* data, Shape shape) {
  checked_shape("from_blob", shape);
  if (!data) throw Error("from_blob: data is null (shape " + ir::shape_string(shape) + ")");
  int64_t bytes = ir::numel(shape) * static_cast<int64_t>(sizeof(float));
  return input(DType::Float32, std::move(shape), std::make_shared<ir::Storage>(data, bytes, nullptr));
}

Tensor from_blob(void* data, Shape shape, Shape strides, DType dtype, std::shared_ptr<void> owner) {
  checked_shape("from_blob", shape);
  auto fail = [&](const std::string& why) {
    return Error("from_blob: " + why + " (" + dtype_name(dtype) + ir::shape_string(shape) + ", strides " +
                 ir::shape_string(strides) + ")");
  };
  if (!data) throw fail("data is null");
  int64_t element_size = dtype_size(dtype);
  if (reinterpret_cast<uintptr_t>(data) % static_cast<uintptr_t>(element_size) != 0)
    throw fail("data is not aligned to " + std::to_string(element_size) + " bytes");
  if (strides.empty()) strides = ir::contiguous_strides(shape);
  if (strides.size() != shape.size()) throw fail("one stride per dim expected");
  // The elements the layout spans, from the first one to the last (none when it is empty).
  unsigned __int128 span = ir::numel(shape) == 0 ? 0 : 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (strides[d] < 0) throw fail("negative strides are not supported");
    if (span) span += static_cast<unsigned __int128>(shape[d] - 1) * static_cast<uint64_t>(strides[d]);
  }
  if (span > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max() / element_size))
    throw fail("the strides span more memory than can be addressed");
  auto elements = static_cast<int64_t>(span);
  auto storage = std::make_shared<ir::Storage>(data, elements * element_size,
                                               [owner = std::move(owner)](void*, int64_t) mutable { owner.reset(); });
  if (ir::is_contiguous(shape, strides)) return input(dtype, std::move(shape), std::move(storage));
  Tensor spanned = input(dtype, {elements}, std::move(storage));
  return frontend::strided_view(spanned, {std::move(shape), std::move(strides), 0});
}

Tensor full(Shape shape, float value) {
  return Tensor(ir::float_leaf(checked_shape("full", shape), value));
}
Tensor zeros(Shape shape) { return full(checked_shape("zeros", shape), 0); }
Tensor ones(Shape shape) { return full(checked_shape("ones", shape), 1); }

Tensor arange(double start, double end, double step) {
  auto fail = [&](const char* why) {
    return Error("arange(" + std::to_string(start) + ", " + std::to_string(end) + ", " +
                 std::to_string(step) + "): " + why);
  };
  if (!std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step))
    throw fail("bounds and step must be finite");
  if (step == 0) throw fail("step must be nonzero");
  if ((end - start) / step < 0) throw fail("the step's sign does not lead from start to end");
  double count = std::ceil((end - start) / step);
  if (count > 1e15) throw fail("too many elements");
  return leaf(ir::OpCode::Arange, {static_cast<int64_t>(count)}, {.value = start, .step = step});
}

Tensor rand(Shape shape, uint64_t seed) {
  return leaf(ir::OpCode::Rand, checked_shape("rand", shape), {.seed = seed});
}
Tensor randn(Shape shape, uint64_t seed) {
  return leaf(ir::OpCode::Randn, checked_shape("randn", shape), {.seed = seed});
}

}  // namespace fusejit
