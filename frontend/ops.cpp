// Op constructors: type promotion, shape checks, and one lazy node per call.
#include "frontend/lazy.h"
#include "fusejit/fusejit.h"
#include "ir/graph.h"

namespace fusejit {
namespace frontend {

std::shared_ptr<ir::Node> cast(std::shared_ptr<ir::Node> node, DType dtype) {
  if (node->dtype == dtype) return node;
  if (dtype != DType::Float32 && node->dtype != DType::Float32) node = cast(std::move(node), DType::Float32);
  ir::OpCode op = dtype == DType::Float32 ? ir::OpCode::ToFloat
                  : dtype == DType::Bool  ? ir::OpCode::ToBool
                                          : ir::OpCode::ToInt64;
  Shape shape = node->shape;
  return std::make_shared<ir::Node>(op, dtype, std::move(shape), std::vector<std::shared_ptr<ir::Node>>{std::move(node)});
}

std::shared_ptr<ir::Node> copy_of(std::shared_ptr<ir::Node> node) {
  DType dtype = node->dtype;
  Shape shape = node->shape;
  return std::make_shared<ir::Node>(ir::OpCode::Copy, dtype, std::move(shape),
                                    std::vector<std::shared_ptr<ir::Node>>{std::move(node)});
}

}  // namespace frontend

namespace {

using ir::OpCode;
using frontend::cast;

Tensor make(OpCode op, std::initializer_list<Tensor> operands) {
  constexpr size_t kMaxOperands = 3;  // the widest op kind, Select
  if (operands.size() > kMaxOperands) throw InternalError(std::string(ir::op_name(op)) + ": too many operands");
  std::vector<std::shared_ptr<ir::Node>> inputs;
  inputs.reserve(operands.size());
  ir::OperandType types[kMaxOperands];
  ir::OpKind kind = ir::op_info(op).kind;
  for (const Tensor& operand : operands) {
    if (!operand.defined())
      throw Error(std::string(ir::op_name(op)) + ": operand " + std::to_string(inputs.size()) +
                  " is an undefined tensor");
    bool condition = kind == ir::OpKind::Select && inputs.empty();
    inputs.push_back(cast(operand.node(), condition ? DType::Bool : DType::Float32));
    types[inputs.size() - 1] = {inputs.back()->dtype, &inputs.back()->shape};
  }
  ir::TypedShape type = ir::infer_type(op, {types, inputs.size()});
  return Tensor(std::make_shared<ir::Node>(op, type.dtype, std::move(type.shape), std::move(inputs)));
}

}  // namespace

Tensor Tensor::to(DType dtype) const {
  if (!defined()) throw Error("to: the input is an undefined tensor");
  if (this->dtype() == dtype) return *this;
  return Tensor(cast(node(), dtype));
}

Tensor add(const Tensor& a, const Tensor& b) { return make(OpCode::Add, {a, b}); }
Tensor sub(const Tensor& a, const Tensor& b) { return make(OpCode::Sub, {a, b}); }
Tensor mul(const Tensor& a, const Tensor& b) { return make(OpCode::Mul, {a, b}); }
Tensor div(const Tensor& a, const Tensor& b) { return make(OpCode::Div, {a, b}); }
Tensor pow(const Tensor& a, const Tensor& b) { return make(OpCode::Pow, {a, b}); }
Tensor pow(const Tensor& a, float exponent) {
  // x*x is exact where exp(2 log x) is not.
  if (exponent == 2) return make(OpCode::Mul, {a, a});
  return make(OpCode::Pow, {a, Tensor(exponent)});
}
Tensor maximum(const Tensor& a, const Tensor& b) { return make(OpCode::Maximum, {a, b}); }
Tensor minimum(const Tensor& a, const Tensor& b) { return make(OpCode::Minimum, {a, b}); }
Tensor clamp(const Tensor& x, float min, float max) {
  return minimum(maximum(x, Tensor(min)), Tensor(max));
}

Tensor neg(const Tensor& x) { return make(OpCode::Neg, {x}); }
Tensor abs(const Tensor& x) { return make(OpCode::Abs, {x}); }
Tensor exp(const Tensor& x) { return make(OpCode::Exp, {x}); }
Tensor log(const Tensor& x) { return make(OpCode::Log, {x}); }
Tensor sqrt(const Tensor& x) { return make(OpCode::Sqrt, {x}); }
Tensor rsqrt(const Tensor& x) { return make(OpCode::Rsqrt, {x}); }
Tensor sin(const Tensor& x) { return make(OpCode::Sin, {x}); }
Tensor cos(const Tensor& x) { return make(OpCode::Cos, {x}); }

Tensor eq(const Tensor& a, const Tensor& b) { return make(OpCode::Eq, {a, b}); }
Tensor ne(const Tensor& a, const Tensor& b) { return make(OpCode::Ne, {a, b}); }
Tensor lt(const Tensor& a, const Tensor& b) { return make(OpCode::Lt, {a, b}); }
Tensor le(const Tensor& a, const Tensor& b) { return make(OpCode::Le, {a, b}); }
Tensor gt(const Tensor& a, const Tensor& b) { return make(OpCode::Gt, {a, b}); }
Tensor ge(const Tensor& a, const Tensor& b) { return make(OpCode::Ge, {a, b}); }
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  return make(OpCode::Where, {cond, a, b});
}

Tensor relu(const Tensor& x) { return make(OpCode::Relu, {x}); }
Tensor sigmoid(const Tensor& x) { return make(OpCode::Sigmoid, {x}); }
Tensor tanh(const Tensor& x) { return make(OpCode::Tanh, {x}); }
Tensor gelu(const Tensor& x, const std::string& approximate) {
  if (approximate == "none") return make(OpCode::Gelu, {x});
  if (approximate == "tanh") return make(OpCode::GeluTanh, {x});
  throw Error("gelu: approximate must be \"none\" or \"tanh\", got \"" + approximate + "\"");
}
Tensor silu(const Tensor& x) { return make(OpCode::Silu, {x}); }
Tensor leaky_relu(const Tensor& x, float negative_slope) {
  return make(OpCode::LeakyRelu, {x, Tensor(negative_slope)});
}
Tensor elu(const Tensor& x, float alpha) { return make(OpCode::Elu, {x, Tensor(alpha)}); }
Tensor softplus(const Tensor& x, float beta, float threshold) {
  return make(OpCode::Softplus, {x, Tensor(beta), Tensor(threshold)});
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }

}  // namespace fusejit
