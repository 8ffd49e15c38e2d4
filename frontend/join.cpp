// Joins and gathers: cat, stack and index_select. A concatenation is a Concat node over copies
// of its parts: the kernel computing each part stores it straight into its place (ir/fusion).
// A gather is a Gather node: kernels load its input at offsets read from the index.
#include "frontend/lazy.h"
#include "ir/node.h"

namespace fusejit {
namespace {

using frontend::describe;

void check_defined(const char* op, const std::vector<Tensor>& tensors) {
  if (tensors.empty()) throw Error(std::string(op) + ": expected at least one tensor");
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!tensors[i].defined()) throw Error(std::string(op) + ": tensor " + std::to_string(i) + " is undefined");
}

std::string describe_all(const std::vector<Tensor>& tensors) {
  std::string text;
  for (size_t i = 0; i < tensors.size(); ++i) text += (i ? ", " : "") + describe(tensors[i]);
  return text;
}

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  check_defined("cat", tensors);
  const Tensor& first = tensors[0];
  auto fail = [&](const std::string& why) { return Error("cat: " + why + " (inputs " + describe_all(tensors) + ")"); };
  int64_t rank = first.dim();
  if (rank == 0) throw fail("cannot join 0-d tensors (stack them)");
  int64_t wrapped = dim < 0 ? dim + rank : dim;
  if (wrapped < 0 || wrapped >= rank)
    throw fail("dim " + std::to_string(dim) + " is out of range [" + std::to_string(-rank) + ", " +
               std::to_string(rank - 1) + "]");
  auto d = static_cast<size_t>(wrapped);
  Shape shape = first.sizes();
  shape[d] = 0;
  std::vector<std::shared_ptr<ir::Node>> parts;
  for (const Tensor& t : tensors) {
    if (t.dtype() != first.dtype()) throw fail("the tensors' dtypes differ");
    Shape expected = first.sizes();
    expected[d] = t.dim() == rank ? t.sizes()[d] : -1;
    if (t.sizes() != expected) throw fail("the tensors' sizes differ in a dim other than " + std::to_string(dim));
    shape[d] += t.sizes()[d];
    // Each part is a copy of its own, which its kernel stores into the concatenation.
    parts.push_back(frontend::copy_of(t.node()));
  }
  if (!ir::addressable(shape)) throw fail("the result of shape " + ir::shape_string(shape) + " is too large");
  ir::OpParams params;
  params.dim = wrapped;
  return Tensor(std::make_shared<ir::Node>(ir::OpCode::Concat, first.dtype(), std::move(shape), std::move(parts), params));
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  check_defined("stack", tensors);
  int64_t rank = tensors[0].dim() + 1;
  int64_t wrapped = dim < 0 ? dim + rank : dim;
  if (wrapped < 0 || wrapped >= rank)
    throw Error("stack: dim " + std::to_string(dim) + " is out of range [" + std::to_string(-rank) + ", " +
                std::to_string(rank - 1) + "] (inputs " + describe_all(tensors) + ")");
  std::vector<Tensor> rows;
  for (const Tensor& t : tensors) {
    if (t.sizes() != tensors[0].sizes() || t.dtype() != tensors[0].dtype())
      throw Error("stack: expected tensors of one shape and dtype (inputs " + describe_all(tensors) + ")");
    rows.push_back(t.unsqueeze(wrapped));
  }
  return cat(rows, wrapped);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  if (!x.defined() || !index.defined()) throw Error("index_select: an undefined tensor");
  auto fail = [&](const std::string& why) {
    return Error("index_select: " + why + " (input " + describe(x) + ", index " + describe(index) + ")");
  };
  int64_t rank = x.dim();
  if (rank == 0) throw fail("cannot index a 0-d tensor");
  int64_t wrapped = dim < 0 ? dim + rank : dim;
  if (wrapped < 0 || wrapped >= rank)
    throw fail("dim " + std::to_string(dim) + " is out of range [" + std::to_string(-rank) + ", " +
               std::to_string(rank - 1) + "]");
  if (index.dtype() != DType::Int64) throw fail("the index must be Int64");
  if (index.dim() > 1) throw fail("the index must have at most 1 dim");
  Tensor flat = index.dim() == 0 ? index.reshape({1}) : index;
  // An index is read now, once: an index out of range throws here, not in a kernel.
  int64_t size = x.sizes()[wrapped];
  std::vector<int64_t> values = flat.to_vector<int64_t>();
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i] < 0 || values[i] >= size)
      throw fail("index " + std::to_string(values[i]) + " (at " + std::to_string(i) + ") is out of range for dim " +
                 std::to_string(dim) + " of size " + std::to_string(size));
  Shape shape = x.sizes();
  shape[wrapped] = flat.numel();
  const ir::Node& from = *x.node();
  if (ir::op_info(from.op).pattern == ir::FusionPattern::Broadcast)  // the same value everywhere
    return Tensor(std::make_shared<ir::Node>(from.op, from.dtype, std::move(shape),
                                             std::vector<std::shared_ptr<ir::Node>>{}, from.params));
  // Along the indexed dim, so that it broadcasts over the others.
  Shape along(rank, 1);
  along[wrapped] = flat.numel();
  Tensor placed = flat.reshape(along);
  ir::OpParams params;
  params.dim = wrapped;
  return Tensor(std::make_shared<ir::Node>(ir::OpCode::Gather, x.dtype(), std::move(shape),
                                           std::vector<std::shared_ptr<ir::Node>>{x.node(), placed.node()}, params));
}

}  // namespace fusejit
