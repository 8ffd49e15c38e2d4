// matmul and linear: torch.matmul's shape rules over views (a 1-d operand gains a dim, batch
// dims broadcast by expanding), then one MatMul node of equal batch dims; attention likewise,
// one Attention node.
#include <cmath>

#include "frontend/lazy.h"
#include "fusejit/fusejit.h"

namespace fusejit {

using frontend::defined_or_throw;
using frontend::describe;

Tensor matmul(const Tensor& a, const Tensor& b) {
  defined_or_throw("matmul", a, "operand 0");
  defined_or_throw("matmul", b, "operand 1");
  auto fail = [&](const std::string& why) {
    throw Error("matmul: " + describe(a) + " and " + describe(b) + ": " + why);
  };
  if (a.dim() == 0 || b.dim() == 0) fail("both operands need at least 1 dim");
  Tensor x = a.to(DType::Float32), y = b.to(DType::Float32);
  if (x.dim() == 1) x = x.unsqueeze(0);
  if (y.dim() == 1) y = y.unsqueeze(1);
  const Shape &xs = x.sizes(), &ys = y.sizes();
  int64_t m = xs[xs.size() - 2], k = xs.back(), n = ys.back();
  if (ys[ys.size() - 2] != k)
    fail("the sizes that are summed over differ (" + std::to_string(k) + " and " + std::to_string(ys[ys.size() - 2]) +
         ")");
  Shape x_batch(xs.begin(), xs.end() - 2), y_batch(ys.begin(), ys.end() - 2);
  std::optional<Shape> batch = ir::broadcast_shapes(x_batch, y_batch);
  if (!batch)
    fail("the batch dims " + ir::shape_string(x_batch) + " and " + ir::shape_string(y_batch) + " do not broadcast");
  Shape shape = *batch;
  shape.insert(shape.end(), {m, n});
  if (!ir::addressable(shape)) fail("the result of shape " + ir::shape_string(shape) + " has too many elements");
  Shape x_shape = *batch, y_shape = *batch;
  x_shape.insert(x_shape.end(), {m, k});
  y_shape.insert(y_shape.end(), {k, n});
  x = x.expand(x_shape);
  y = y.expand(y_shape);
  Tensor product(std::make_shared<ir::Node>(ir::OpCode::MatMul, DType::Float32, std::move(shape),
                                            std::vector<std::shared_ptr<ir::Node>>{x.node(), y.node()}));
  if (b.dim() == 1) product = product.squeeze(-1);
  if (a.dim() == 1) product = product.squeeze(-1 - (b.dim() == 1 ? 0 : 1));
  return product;
}

Tensor Tensor::matmul(const Tensor& other) const { return fusejit::matmul(*this, other); }

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  defined_or_throw("linear", x);
  defined_or_throw("linear", weight, "the weight");
  if (weight.dim() != 2) throw Error("linear: the weight must be [out, in], got " + describe(weight));
  if (x.dim() == 0 || x.sizes().back() != weight.size(1))
    throw Error("linear: the input " + describe(x) + " does not end in the weight's " +
                std::to_string(weight.size(1)) + " input features (weight " + describe(weight) + ")");
  Tensor y = fusejit::matmul(x, weight.t());
  if (!bias.defined()) return y;
  if (ir::broadcast_shapes(bias.sizes(), y.sizes()) != y.sizes())
    throw Error("linear: the bias " + describe(bias) + " does not broadcast to the output " + describe(y));
  return y + bias;
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    bool is_causal, std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  defined_or_throw(op, q, "the query");
  defined_or_throw(op, k, "the key");
  defined_or_throw(op, v, "the value");
  auto fail = [&](const std::string& why) {
    std::string mask = attn_mask.defined() ? ", mask " + describe(attn_mask) : "";
    throw Error(std::string(op) + ": query " + describe(q) + ", key " + describe(k) + ", value " + describe(v) + mask +
                ": " + why);
  };
  if (q.dim() < 2 || k.dim() < 2 || v.dim() < 2) fail("query, key and value need at least 2 dims");
  const Shape &qs = q.sizes(), &ks = k.sizes(), &vs = v.sizes();
  int64_t l = qs.end()[-2], e = qs.back(), s = ks.end()[-2], ev = vs.back();
  if (ks.back() != e) fail("the query's and the key's last dims differ");
  if (vs.end()[-2] != s) fail("the key and the value hold different numbers of keys");
  std::optional<Shape> batch = ir::broadcast_shapes(Shape(qs.begin(), qs.end() - 2), Shape(ks.begin(), ks.end() - 2));
  if (batch) batch = ir::broadcast_shapes(*batch, Shape(vs.begin(), vs.end() - 2));
  if (!batch) fail("the leading dims do not broadcast");
  auto with = [&](int64_t rows, int64_t columns) {
    Shape shape = *batch;
    shape.insert(shape.end(), {rows, columns});
    return shape;
  };
  Shape shape = with(l, ev);
  if (!ir::addressable(shape)) fail("the result of shape " + ir::shape_string(shape) + " has too many elements");
  if (attn_mask.defined()) {
    if (is_causal) fail("is_causal and an attn_mask exclude each other");
    if (attn_mask.dtype() != DType::Bool && attn_mask.dtype() != DType::Float32)
      fail("the mask must be bool or float32");
    if (ir::broadcast_shapes(attn_mask.sizes(), with(l, s)) != with(l, s))
      fail("the mask does not broadcast to the scores' shape " + ir::shape_string(with(l, s)));
  }
  // Softmax over no keys times no values: zeros, as the composed ops give.
  if (s == 0 || ir::numel(shape) == 0) return zeros(shape);
  std::vector<std::shared_ptr<ir::Node>> inputs{
      q.to(DType::Float32).expand(with(l, e)).node(), k.to(DType::Float32).expand(with(s, e)).node(),
      v.to(DType::Float32).expand(with(s, ev)).node(),
      ir::float_leaf({}, static_cast<float>(scale ? *scale : 1.0 / std::sqrt(static_cast<double>(e))))};
  if (attn_mask.defined()) inputs.push_back(attn_mask.expand(with(l, s)).node());
  return Tensor(std::make_shared<ir::Node>(ir::OpCode::Attention, DType::Float32, std::move(shape), std::move(inputs),
                                           ir::OpParams{.dim = is_causal ? ir::kAttentionCausal : 0}));
}

}  // namespace fusejit
