// Reductions, and the ops composed of them: mean, var, std, softmax, log_softmax, layer_norm.
#include <algorithm>
#include <bit>
#include <limits>

#include "frontend/lazy.h"
#include "fusejit/fusejit.h"
#include "ir/node.h"

namespace fusejit {
namespace {

using ir::OpCode;

using frontend::describe;

const Tensor& checked(const char* op, const Tensor& x) {
  frontend::defined_or_throw(op, x);
  if (x.dim() > 64) throw Error(std::string(op) + ": at most 64 dims, got " + describe(x));
  return x;
}

// The reduced dims as a bit set: negative dims count from the end; an empty list means all.
// A 0-d tensor has no dims to reduce (none set), but accepts dim 0 or -1, as in PyTorch.
uint64_t axes_of(const char* op, const Tensor& x, const Shape& dims) {
  int64_t rank = x.dim();
  if (dims.empty()) return rank == 64 ? ~uint64_t{0} : (uint64_t{1} << rank) - 1;
  uint64_t axes = 0;
  int64_t range = std::max<int64_t>(rank, 1);
  for (int64_t dim : dims) {
    int64_t d = dim < 0 ? dim + range : dim;
    if (d < 0 || d >= range)
      throw Error(std::string(op) + ": dim " + std::to_string(dim) + " is out of range for " +
                  describe(x));
    if (rank == 0) continue;
    if (axes >> d & 1)
      throw Error(std::string(op) + ": dim " + std::to_string(dim) + " appears twice in " +
                  ir::shape_string(dims));
    axes |= uint64_t{1} << d;
  }
  return axes;
}

int64_t reduced_count(const Shape& shape, uint64_t axes) {
  int64_t count = 1;
  for (size_t d = 0; d < shape.size(); ++d)
    if (ir::reduces_dim(axes, d)) count *= shape[d];
  return count;
}

// The Float32 values of `x`: a Bool tensor counts as 0/1, an Int64 one as its values (x * 1
// converts them).
Tensor as_float(const char* op, const Tensor& x) {
  return checked(op, x).dtype() != DType::Float32 ? x * 1.0f : x;
}

Tensor reduce_node(OpCode op, const Tensor& x, uint64_t axes, bool keepdim) {
  Shape shape = ir::reduced_shape(x.sizes(), axes, keepdim);
  ir::OpParams params;
  params.axes = axes;
  return Tensor(std::make_shared<ir::Node>(op, DType::Float32, std::move(shape),
                                           std::vector<std::shared_ptr<ir::Node>>{x.node()}, params));
}

Tensor reduce(OpCode op, const char* name, const Tensor& input, const Shape& dims, bool keepdim) {
  Tensor x = as_float(name, input);
  uint64_t axes = axes_of(name, x, dims);
  if (axes == 0) return x;  // a 0-d tensor: its one element is the result
  const Shape& shape = x.sizes();
  if (reduced_count(shape, axes) == 0) {
    if (op == OpCode::Amax || op == OpCode::Amin)
      throw Error(std::string(name) + ": cannot reduce over an empty dim of " + describe(x) +
                  " (dims " + ir::shape_string(dims) + ")");
    return full(ir::reduced_shape(shape, axes, keepdim), static_cast<float>(ir::reduction_identity(op)));
  }
  // Runs of reduced dims separated by kept ones (size-1 dims separate nothing) are reduced one
  // run at a time, innermost first: each kernel then reduces one contiguous range of dims.
  std::vector<uint64_t> runs;
  bool in_run = false;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool reduced = ir::reduces_dim(axes, d);
    if (reduced && !in_run) runs.push_back(0);
    if (reduced) runs.back() |= uint64_t{1} << d;
    in_run = reduced;
  }
  if (runs.empty() && keepdim) return x;  // only size-1 dims: the values are unchanged
  for (size_t r = runs.size(); r-- > 1;) x = reduce_node(op, x, runs[r], true);
  return reduce_node(op, x, axes, keepdim);
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce(OpCode::Sum, "sum", x, {}, false); }
Tensor sum(const Tensor& x, Shape dims, bool keepdim) {
  return reduce(OpCode::Sum, "sum", x, dims, keepdim);
}
Tensor prod(const Tensor& x) { return reduce(OpCode::Prod, "prod", x, {}, false); }
Tensor prod(const Tensor& x, Shape dims, bool keepdim) {
  return reduce(OpCode::Prod, "prod", x, dims, keepdim);
}
Tensor amax(const Tensor& x) { return reduce(OpCode::Amax, "amax", x, {}, false); }
Tensor amax(const Tensor& x, Shape dims, bool keepdim) {
  return reduce(OpCode::Amax, "amax", x, dims, keepdim);
}
Tensor amin(const Tensor& x) { return reduce(OpCode::Amin, "amin", x, {}, false); }
Tensor amin(const Tensor& x, Shape dims, bool keepdim) {
  return reduce(OpCode::Amin, "amin", x, dims, keepdim);
}
Tensor max(const Tensor& x) { return reduce(OpCode::Amax, "max", x, {}, false); }
Tensor min(const Tensor& x) { return reduce(OpCode::Amin, "min", x, {}, false); }

namespace {

// The first index along `dim` of the row's max (or min), NaN counting as the extreme, as in
// PyTorch: the rows' extreme m, then the least index i with x[i] == m or x[i] NaN. Indices
// are carried as floats, exact up to 2^24.
Tensor as_index(const Tensor& first) {
  return Tensor(std::make_shared<ir::Node>(OpCode::ToInt64, DType::Int64, first.sizes(),
                                           std::vector<std::shared_ptr<ir::Node>>{first.node()}));
}

Tensor arg_extreme(OpCode extreme, const char* name, const Tensor& input, int64_t dim, bool keepdim) {
  Tensor x = as_float(name, input);
  uint64_t axes = axes_of(name, x, {dim});
  if (axes == 0) return as_index(full({}, 0));  // a 0-d tensor: its one element is at 0
  int64_t d = std::countr_zero(axes);
  int64_t size = x.size(d);
  if (size == 0)
    throw Error(std::string(name) + ": cannot reduce over the empty dim " + std::to_string(dim) +
                " of " + describe(x));
  if (size > (int64_t{1} << 24))
    throw Error(std::string(name) + ": dim " + std::to_string(dim) + " of " + describe(x) +
                " is longer than 2^24, the largest index this version can return");
  Tensor m = reduce(extreme, name, x, {dim}, true);
  // 0, 1, ..., size-1 along dim d: a generator over [size, 1, ..., 1] counts along its first
  // dim, which right-aligned broadcasting puts at d.
  Shape index_shape(x.dim() - d, 1);
  index_shape[0] = size;
  ir::OpParams counting;
  counting.step = 1;
  Tensor index(std::make_shared<ir::Node>(OpCode::Arange, DType::Float32, index_shape,
                                          std::vector<std::shared_ptr<ir::Node>>{}, counting));
  Tensor hit = where(ne(x, x), 1.0f, eq(x, m));
  return as_index(reduce(OpCode::Amin, name,
                         where(hit, index, std::numeric_limits<float>::infinity()), {dim}, keepdim));
}

}  // namespace

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return arg_extreme(OpCode::Amax, "argmax", x, dim, keepdim);
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  return arg_extreme(OpCode::Amin, "argmin", x, dim, keepdim);
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }
Tensor mean(const Tensor& x, Shape dims, bool keepdim) {
  int64_t count = reduced_count(checked("mean", x).sizes(), axes_of("mean", x, dims));
  return reduce(OpCode::Sum, "mean", x, dims, keepdim) / static_cast<float>(count);
}

Tensor var(const Tensor& x) { return var(x, {}, 1, false); }
Tensor var(const Tensor& x, Shape dims, double correction, bool keepdim) {
  int64_t count = reduced_count(checked("var", x).sizes(), axes_of("var", x, dims));
  Tensor centered = x - mean(x, dims, true);
  Tensor squares = reduce(OpCode::Sum, "var", centered * centered, dims, keepdim);
  return squares / static_cast<float>(std::max(0.0, static_cast<double>(count) - correction));
}
Tensor std(const Tensor& x) { return sqrt(var(x)); }
Tensor std(const Tensor& x, Shape dims, double correction, bool keepdim) {
  return sqrt(var(x, dims, correction, keepdim));
}

// Scales by the reciprocal of the row sum, as PyTorch's CPU kernel does: one divide per row
// instead of one per element.
Tensor softmax(const Tensor& x, int64_t dim) {
  axes_of("softmax", checked("softmax", x), {dim});
  if (x.numel() == 0) return as_float("softmax", x);  // nothing to normalize, no max to take
  Tensor shifted = x - amax(x, {dim}, true);
  Tensor e = exp(shifted);
  return e * (1.0f / sum(e, {dim}, true));
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  axes_of("log_softmax", checked("log_softmax", x), {dim});
  if (x.numel() == 0) return as_float("log_softmax", x);  // nothing to normalize, no max to take
  Tensor shifted = x - amax(x, {dim}, true);
  return shifted - log(sum(exp(shifted), {dim}, true));
}

Tensor layer_norm(const Tensor& x, Shape normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const Shape& shape = checked("layer_norm", x).sizes();
  size_t k = normalized_shape.size();
  if (k == 0 || k > shape.size() ||
      !std::equal(normalized_shape.begin(), normalized_shape.end(), shape.end() - k))
    throw Error("layer_norm: normalized_shape " + ir::shape_string(normalized_shape) +
                " must be the trailing dims of " + describe(x));
  for (const Tensor* affine : {&weight, &bias})
    if (affine->defined() && affine->sizes() != normalized_shape)
      throw Error("layer_norm: weight and bias must have shape " +
                  ir::shape_string(normalized_shape) + ", got " + describe(*affine));
  Shape dims;
  for (size_t d = shape.size() - k; d < shape.size(); ++d) dims.push_back(static_cast<int64_t>(d));
  Tensor centered = x - mean(x, dims, true);
  Tensor variance = mean(centered * centered, dims, true);
  Tensor y = centered * rsqrt(variance + static_cast<float>(eps));
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

}  // namespace fusejit
