#include "tests/fuzz/program.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>

#include "ir/shape.h"

namespace fusejit::fuzz {

// Compiled here and printed verbatim into reproducers: both draw the same values.
#define FUSEJIT_FUZZ_COMPILED_AND_PRINTED(...) \
  __VA_ARGS__                                  \
  const char* input_value_source() { return #__VA_ARGS__; }

FUSEJIT_FUZZ_COMPILED_AND_PRINTED(
float input_value(uint64_t seed, int64_t i, Distribution distribution) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(i + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  float unit = static_cast<float>(z >> 40) * 0x1p-24f;
  const float specials[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-40f, -3e-45f, 1e30f,
                            -1e30f, 3e38f, 1.17549435e-38f, 1e-7f, 88.8f, -104.0f};
  switch (distribution) {
    case Distribution::Positive: return 0.125f + 4 * unit;
    case Distribution::SmallIntegers: return static_cast<float>(static_cast<int>(z >> 8 & 7) - 3);
    case Distribution::Special:
      if ((z & 3) == 0) return specials[(z >> 2) % (sizeof(specials) / sizeof(float))];
      break;
    case Distribution::Uniform: break;
  }
  return 6 * unit - 3;
})

namespace {

bool is_leaf(Op op) { return op <= Op::Scalar; }

Tensor input_tensor(const Step& step) {
  std::vector<float> values(ir::numel(step.shape));
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = input_value(step.seed, static_cast<int64_t>(i), step.distribution);
  return tensor(std::move(values), step.shape);
}

// The value of one step from the values of the earlier ones.
Tensor apply(const Step& s, const std::vector<Tensor>& v, bool evaluate_early) {
  auto arg = [&](size_t k) -> const Tensor& { return v.at(s.args.at(k)); };
  auto optional_arg = [&](size_t k) { return s.args.at(k) < 0 ? Tensor() : arg(k); };
  switch (s.op) {
    case Op::Input: return input_tensor(s);
    case Op::Full: return full(s.shape, s.x);
    case Op::Arange: return arange(s.x, s.y, s.z);
    case Op::Rand: return rand(s.shape, s.seed);
    case Op::Randn: return randn(s.shape, s.seed);
    case Op::Scalar: return Tensor(s.x);
    case Op::Neg: return -arg(0);
    case Op::Abs: return abs(arg(0));
    case Op::Exp: return exp(arg(0));
    case Op::Log: return log(arg(0));
    case Op::Sqrt: return sqrt(arg(0));
    case Op::Rsqrt: return rsqrt(arg(0));
    case Op::Sin: return sin(arg(0));
    case Op::Cos: return cos(arg(0));
    case Op::Relu: return relu(arg(0));
    case Op::Sigmoid: return sigmoid(arg(0));
    case Op::Tanh: return tanh(arg(0));
    case Op::Gelu: return gelu(arg(0));
    case Op::GeluTanh: return gelu(arg(0), "tanh");
    case Op::Silu: return silu(arg(0));
    case Op::Add: return arg(0) + arg(1);
    case Op::Sub: return arg(0) - arg(1);
    case Op::Mul: return arg(0) * arg(1);
    case Op::Div: return arg(0) / arg(1);
    case Op::Pow: return pow(arg(0), arg(1));
    case Op::Maximum: return maximum(arg(0), arg(1));
    case Op::Minimum: return minimum(arg(0), arg(1));
    case Op::Eq: return arg(0) == arg(1);
    case Op::Ne: return arg(0) != arg(1);
    case Op::Lt: return arg(0) < arg(1);
    case Op::Le: return arg(0) <= arg(1);
    case Op::Gt: return arg(0) > arg(1);
    case Op::Ge: return arg(0) >= arg(1);
    case Op::Where: return where(arg(0), arg(1), arg(2));
    case Op::PowScalar: return pow(arg(0), s.x);
    case Op::Clamp: return clamp(arg(0), s.x, s.y);
    case Op::LeakyRelu: return leaky_relu(arg(0), s.x);
    case Op::Elu: return elu(arg(0), s.x);
    case Op::Softplus: return softplus(arg(0), s.x, s.y);
    case Op::Sum: return s.all_elements ? sum(arg(0)) : sum(arg(0), s.dims, s.keepdim);
    case Op::Mean: return s.all_elements ? mean(arg(0)) : mean(arg(0), s.dims, s.keepdim);
    case Op::Prod: return s.all_elements ? prod(arg(0)) : prod(arg(0), s.dims, s.keepdim);
    case Op::Amax: return s.all_elements ? amax(arg(0)) : amax(arg(0), s.dims, s.keepdim);
    case Op::Amin: return s.all_elements ? amin(arg(0)) : amin(arg(0), s.dims, s.keepdim);
    case Op::Var: return s.all_elements ? var(arg(0)) : var(arg(0), s.dims, s.x, s.keepdim);
    case Op::Std: return s.all_elements ? std(arg(0)) : std(arg(0), s.dims, s.x, s.keepdim);
    case Op::Max: return max(arg(0));
    case Op::Min: return min(arg(0));
    case Op::Argmax: return argmax(arg(0), s.dims.at(0), s.keepdim);
    case Op::Argmin: return argmin(arg(0), s.dims.at(0), s.keepdim);
    case Op::Softmax: return softmax(arg(0), s.dims.at(0));
    case Op::LogSoftmax: return log_softmax(arg(0), s.dims.at(0));
    case Op::LayerNorm: {
      const Shape& shape = arg(0).sizes();
      int64_t trailing = s.dims.at(0);
      if (trailing < 1 || trailing > static_cast<int64_t>(shape.size()))
        throw Error("fuzz: layer_norm over more dims than the input has");
      return layer_norm(arg(0), Shape(shape.end() - trailing, shape.end()), optional_arg(1),
                        optional_arg(2), s.x);
    }
    case Op::Transpose: return arg(0).transpose(s.dims.at(0), s.dims.at(1));
    case Op::Permute: return arg(0).permute(s.dims);
    case Op::Slice: return arg(0).slice(s.dims.at(0), s.dims.at(1), s.dims.at(2), s.dims.at(3));
    case Op::Select: return arg(0).select(s.dims.at(0), s.dims.at(1));
    case Op::Reshape: return arg(0).reshape(s.shape);
    case Op::Expand: return arg(0).expand(s.shape);
    case Op::Unsqueeze: return arg(0).unsqueeze(s.dims.at(0));
    case Op::Squeeze: return arg(0).squeeze();
    case Op::Contiguous: return arg(0).contiguous();
    case Op::AddInPlace: return Tensor(arg(0)).add_(arg(1));
    case Op::SubInPlace: return Tensor(arg(0)).sub_(arg(1));
    case Op::MulInPlace: return Tensor(arg(0)).mul_(arg(1));
    case Op::DivInPlace: return Tensor(arg(0)).div_(arg(1));
    case Op::CopyInPlace: return Tensor(arg(0)).copy_(arg(1));
    case Op::FillInPlace: return Tensor(arg(0)).fill_(s.x);
    case Op::ClampInPlace: return Tensor(arg(0)).clamp_(s.x, s.y);
    case Op::ReluInPlace: return Tensor(arg(0)).relu_();
    case Op::IndexSelect: {
      std::vector<float> index(s.dims.begin() + 1, s.dims.end());
      auto count = static_cast<int64_t>(index.size());
      return index_select(arg(0), s.dims.at(0), tensor(std::move(index), {count}).to(DType::Int64));
    }
    case Op::MatMul: return matmul(arg(0), arg(1));
    case Op::Linear: return linear(arg(0), arg(1), optional_arg(2));
    case Op::Attention:
      return scaled_dot_product_attention(arg(0), arg(1), arg(2), optional_arg(3), s.keepdim,
                                          s.all_elements ? std::optional<double>(s.x) : std::nullopt);
    case Op::Cat:
    case Op::Stack: {
      std::vector<Tensor> parts;
      for (size_t k = 0; k < s.args.size(); ++k) parts.push_back(arg(k));
      return s.op == Op::Cat ? cat(parts, s.dims.at(0)) : stack(parts, s.dims.at(0));
    }
    case Op::Eval:
      if (evaluate_early) arg(0).eval();
      return arg(0);
  }
  throw Error("fuzz: unknown op");
}

// ---- the generator ----

class Generator {
 public:
  explicit Generator(uint64_t seed) : gen_(seed) {
    static const std::vector<Shape> kShapes = {
        {}, {1}, {1, 1}, {7}, {3, 7}, {5, 1, 4}, {4, 5, 6}, {17, 33}, {2, 1023}, {9, 100}, {1, 130}, {70, 24}, {2, 65, 9}, {100, 3}};
    base_ = chance(0.03) ? Shape{2, 16411} : kShapes[below(kShapes.size())];
    special_ = chance(0.25);
  }

  Program run() {
    int ops = 3 + static_cast<int>(below(12));
    bool early_eval = chance(0.15);
    int eval_at = early_eval ? static_cast<int>(below(ops)) : -1;
    add_leaf(base_);
    for (int i = 0; i < ops; ++i) {
      for (int attempt = 0; attempt < 20; ++attempt)
        if (add_op()) break;
      if (i == eval_at) {
        int target = pick_value();
        if (!is_leaf(program_.steps[target].op)) add({.op = Op::Eval, .args = {target}});
      }
    }
    int last = static_cast<int>(values_.size()) - 1;
    program_.outputs.push_back(last);
    for (int extra = static_cast<int>(below(3)); extra > 0; --extra) program_.outputs.push_back(pick_value());
    std::reverse(program_.outputs.begin(), program_.outputs.end());
    return std::move(program_);
  }

 private:
  uint64_t below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(gen_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(gen_); }
  template <class T>
  T one_of(std::initializer_list<T> items) {
    return items.begin()[below(items.size())];
  }

  // Adds the step if the API accepts it; returns its index or -1.
  int add(Step step) {
    try {
      Tensor value = apply(step, values_, false);
      if (value.numel() > 70000) return -1;  // broadcasting two large shapes
      values_.push_back(std::move(value));
    } catch (const Error&) {
      return -1;
    }
    program_.steps.push_back(std::move(step));
    return static_cast<int>(values_.size()) - 1;
  }

  const Shape& shape_of(int value) const { return values_[value].sizes(); }

  // A shape that broadcasts to `shape`: a suffix of it, some dims 1, sometimes 0-d.
  Shape broadcastable(const Shape& shape) {
    if (chance(0.12)) return {};
    Shape out(shape.end() - static_cast<int64_t>(below(shape.size() + 1)), shape.end());
    for (int64_t& d : out)
      if (chance(0.3)) d = 1;
    return out;
  }

  float interesting_constant() {
    if (special_ && chance(0.3)) return one_of<float>({NAN, INFINITY, -INFINITY, 1e30f, 1e-40f, -0.0f});
    return one_of<float>({0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 2.0f, 3.5f, -2.5f, 1e-3f, 10.0f});
  }

  int add_leaf(const Shape& shape) {
    double r = std::uniform_real_distribution<double>(0, 1)(gen_);
    Step s{.shape = shape, .seed = gen_()};
    if (r < 0.5) {
      s.op = Op::Input;
      s.distribution = special_ && chance(0.6) ? Distribution::Special
                                                 : one_of({Distribution::Uniform, Distribution::Uniform,
                                                           Distribution::Positive, Distribution::SmallIntegers});
    } else if (r < 0.65) {
      s.op = Op::Full;
      s.x = interesting_constant();
    } else if (r < 0.73) {
      s.op = Op::Rand;
    } else if (r < 0.81) {
      s.op = Op::Randn;
    } else if (!shape.empty() && shape.back() > 1) {
      // arange along the last dim, with steps that make its length exact.
      s.op = Op::Arange;
      s.x = one_of<float>({0, -2, 1.5f, -50, 3});
      s.z = one_of<float>({1, 0.5f, -1, 0.25f, 3});
      s.y = s.x + s.z * static_cast<float>(shape.back());
      s.shape.clear();
    } else {
      s.op = Op::Scalar;
      s.x = interesting_constant();
      s.shape.clear();
    }
    return add(std::move(s));
  }

  // Mostly the newest value (deep chains), else any.
  int pick_value() {
    int n = static_cast<int>(values_.size());
    return chance(0.55) ? n - 1 : static_cast<int>(below(n));
  }

  // An operand that broadcasts with `with`: an existing value, a fresh leaf or a scalar.
  int pick_partner(int with) {
    double r = std::uniform_real_distribution<double>(0, 1)(gen_);
    if (r < 0.2) return add({.op = Op::Scalar, .x = interesting_constant()});
    if (r < 0.3) return reversed(with);
    if (r < 0.6)
      for (int attempt = 0; attempt < 6; ++attempt) {
        int other = static_cast<int>(below(values_.size()));
        if (ir::broadcast_shapes(shape_of(with), shape_of(other))) return other;
      }
    return add_leaf(broadcastable(shape_of(with)));
  }

  // `a` reversed along one of its dims (an index_select): the same shape, every element read
  // from another place. As the operand of an in-place update of `a`, it reads elements of the
  // tensor that the update writes.
  int reversed(int a) {
    const Shape shape = shape_of(a);
    auto rank = static_cast<int64_t>(shape.size());
    if (rank == 0) return add_leaf(shape);
    int64_t dim = random_dim(rank);
    int64_t size = shape[dim < 0 ? dim + rank : dim];
    if (size == 0 || size > 64) return add_leaf(shape);
    Step s{.op = Op::IndexSelect, .args = {a}, .dims = {dim}};
    for (int64_t k = size - 1; k >= 0; --k) s.dims.push_back(k);
    return add(std::move(s));
  }

  // A value constant along the rows of `shape` (what a reduction kernel computes once per
  // row): a fill, a broadcast row or scalar, possibly through an op.
  int row_invariant(const Shape& shape) {
    Shape narrow = shape;
    for (size_t d = 0; d < narrow.size(); ++d)
      if (chance(0.7)) narrow[d] = 1;
    int value;
    switch (below(4)) {
      case 0: value = add({.op = Op::Full, .shape = shape, .x = interesting_constant()}); break;
      case 1: value = add_leaf(narrow); break;
      case 2: {
        int small = add_leaf(narrow);
        int fill = add({.op = Op::Full, .shape = shape, .x = one_of<float>({0.0f, 1.0f, 2.0f})});
        value = small < 0 || fill < 0 ? -1
                                      : add({.op = one_of({Op::Mul, Op::Add}), .args = {small, fill}});
        break;
      }
      default: value = add({.op = Op::Scalar, .x = interesting_constant()}); break;
    }
    if (value >= 0 && chance(0.4))
      value = add({.op = one_of({Op::Exp, Op::Sigmoid, Op::Neg, Op::Tanh}), .args = {value}});
    return value;
  }

  Shape random_dims(int64_t rank) {
    Shape dims;
    for (int64_t d = 0; d < rank; ++d)
      if (chance(0.5)) dims.push_back(chance(0.4) ? d - rank : d);
    if (dims.empty() && rank > 0 && chance(0.8)) dims.push_back(static_cast<int64_t>(below(rank)) - (chance(0.5) ? rank : 0));
    std::shuffle(dims.begin(), dims.end(), gen_);
    return dims;
  }

  bool add_op() {
    if (chance(0.05) && add_packed_matmul()) return true;
    double r = std::uniform_real_distribution<double>(0, 1)(gen_);
    if (r < 0.08) return add_leaf(broadcastable(base_)) >= 0;
    if (r < 0.33) return add_unary(pick_value());
    if (r < 0.55) return add_binary(pick_value());
    if (r < 0.68) return add_view(pick_value());
    if (r < 0.78) return add_in_place(pick_value());
    if (r < 0.84) return add_join(pick_value());
    if (r < 0.88) return add_index_select(pick_value());
    if (r < 0.90) return add_matmul(pick_value());
    if (r < 0.92) return add_attention(pick_value());
    return add_reduction();
  }

  // A matmul of `a` (torch.matmul's forms: a column, a matrix, a batch, sometimes a transposed
  // operand or an op on it) or a linear layer on it, with a fresh operand of fitting shape, then
  // mostly an op on the result (an epilogue).
  bool add_matmul(int a) {
    const Shape shape = shape_of(a);
    if (shape.empty()) return false;
    int64_t k = shape.back();
    auto n = static_cast<int64_t>(chance(0.1) ? 0 : chance(0.2) ? 40 + below(60) : 1 + below(20));
    int product;
    if (chance(0.4)) {
      int weight = add_leaf({n, k});
      int bias = chance(0.6) ? add_leaf(chance(0.7) ? Shape{n} : Shape{1}) : -1;
      if (weight < 0) return false;
      product = add({.op = Op::Linear, .args = {a, weight, bias}});
    } else {
      Shape other{k, n};
      switch (below(4)) {
        case 0: other = {k}; break;
        case 1: if (shape.size() >= 3) other.insert(other.begin(), shape.end() - 3, shape.end() - 2); break;
        case 2: other.insert(other.begin(), static_cast<int64_t>(1 + below(3))); break;
        default: break;
      }
      int b;
      if (other.size() == 2 && chance(0.4)) {
        int stored = add_leaf({n, k});
        b = stored < 0 ? -1 : add({.op = Op::Transpose, .args = {stored}, .dims = {0, 1}});
      } else {
        b = add_leaf(other);
        // Sometimes an op on it: a product of many rows computes it while packing it.
        if (b >= 0 && chance(0.3) && add_unary(b)) b = static_cast<int>(values_.size()) - 1;
      }
      if (b < 0) return false;
      product = add({.op = Op::MatMul, .args = {a, b}});
    }
    if (product < 0) return false;
    if (chance(0.7)) return add_unary(product) || add_binary(product);
    return true;
  }

  // A matmul of many rows (the packed form) of a value computed from one of the program's tall
  // values: mostly an elementwise op or a layer_norm over its last dim (the operand's prologue,
  // when cheap enough to recompute).
  bool add_packed_matmul() {
    std::vector<int> tall;
    for (size_t v = 0; v < values_.size(); ++v)
      if (shape_of(static_cast<int>(v)).size() >= 2 && shape_of(static_cast<int>(v)).end()[-2] >= 64)
        tall.push_back(static_cast<int>(v));
    if (tall.empty()) return false;
    int a = tall[below(tall.size())];
    if (chance(0.3)) {
      Step s{.op = Op::LayerNorm, .args = {a}, .x = one_of<float>({1e-5f, 1e-2f}), .dims = {1}};
      Shape normalized{shape_of(a).back()};
      for (int k = 0; k < 2; ++k) s.args.push_back(chance(0.7) ? add_leaf(normalized) : -1);
      a = add(std::move(s));
    } else if (chance(0.9) && (chance(0.7) ? add_binary(a) : add_unary(a))) {
      a = static_cast<int>(values_.size()) - 1;
    }
    return a >= 0 && add_matmul(a);
  }

  // Attention with `a` as the queries [..., L, E] against fresh keys and values (the keys
  // sometimes a transposed view), sometimes a Bool or Float32 mask or causal, sometimes a given
  // scale; then mostly an op on the result (an epilogue).
  bool add_attention(int a) {
    const Shape shape = shape_of(a);
    if (shape.size() < 2) return false;
    int64_t e = shape.back(), l = shape.end()[-2];
    auto s = static_cast<int64_t>(chance(0.05) ? 0 : chance(0.3) ? 60 + below(90) : 1 + below(20));
    auto ev = static_cast<int64_t>(chance(0.5) ? e : 1 + below(40));
    Shape batch(shape.begin(), shape.end() - 2);
    if (!batch.empty() && chance(0.3)) batch.erase(batch.begin());  // broadcast
    auto with = [&](int64_t rows, int64_t columns) {
      Shape out = batch;
      out.insert(out.end(), {rows, columns});
      return out;
    };
    int k;
    if (chance(0.3)) {
      int stored = add_leaf(with(e, s));
      k = stored < 0 ? -1 : add({.op = Op::Transpose, .args = {stored}, .dims = {-2, -1}});
    } else {
      k = add_leaf(with(s, e));
    }
    int v = add_leaf(with(s, ev));
    if (k < 0 || v < 0) return false;
    Step step{.op = Op::Attention, .args = {a, k, v, -1}};
    double kind = std::uniform_real_distribution<double>(0, 1)(gen_);
    if (kind < 0.3) {
      step.keepdim = true;
    } else if (kind < 0.5) {
      step.args[3] = add_leaf(chance(0.5) ? Shape{l, s} : Shape{1, s});
    } else if (kind < 0.65) {
      int scores = add_leaf({l, s});
      if (scores >= 0) step.args[3] = add({.op = Op::Gt, .args = {scores, add({.op = Op::Scalar, .x = 0.5f})}});
    }
    if (chance(0.3)) {
      step.all_elements = true;
      step.x = one_of<float>({0.125f, 1.0f, -0.5f, 3.0f});
    }
    int attended = add(std::move(step));
    if (attended < 0) return false;
    if (chance(0.7)) return add_unary(attended) || add_binary(attended);
    return true;
  }

  // index_select of `a` along a random dim at in-range positions (repeats, any order), then
  // mostly an op on it.
  bool add_index_select(int a) {
    const Shape shape = shape_of(a);
    auto rank = static_cast<int64_t>(shape.size());
    if (rank == 0) return false;
    int64_t dim = random_dim(rank);
    int64_t size = shape[dim < 0 ? dim + rank : dim];
    if (size == 0) return false;
    Step s{.op = Op::IndexSelect, .args = {a}, .dims = {dim}};
    for (int64_t k = static_cast<int64_t>(below(5)); k > 0; --k) s.dims.push_back(static_cast<int64_t>(below(size)));
    int selected = add(std::move(s));
    if (selected < 0) return false;
    if (chance(0.6)) return add_unary(selected) || add_binary(selected);
    return true;
  }

  // A concatenation or stack of `a` with itself or with other values of fitting shapes, then
  // mostly an op on it.
  bool add_join(int a) {
    const Shape shape = shape_of(a);
    auto rank = static_cast<int64_t>(shape.size());
    Step s{.op = chance(0.7) ? Op::Cat : Op::Stack, .args = {a}};
    if (s.op == Op::Cat && rank == 0) return false;
    int64_t dim = s.op == Op::Cat ? random_dim(rank) : static_cast<int64_t>(below(rank + 1)) - (chance(0.3) ? rank + 1 : 0);
    for (int parts = 1 + static_cast<int>(below(3)); parts > 0; --parts) {
      Shape other = shape;
      if (s.op == Op::Cat) other[dim < 0 ? dim + rank : dim] = static_cast<int64_t>(below(4));
      int b = chance(0.3) ? a : chance(0.5) ? add_leaf(other) : add_unary(a) ? static_cast<int>(values_.size()) - 1 : -1;
      if (b < 0 || shape_of(b).size() != shape.size()) return false;
      s.args.push_back(b);
    }
    std::shuffle(s.args.begin(), s.args.end(), gen_);
    s.dims = {dim};
    int joined = add(std::move(s));
    if (joined < 0) return false;
    if (chance(0.6)) return add_unary(joined) || add_binary(joined);
    return true;
  }

  // An in-place update of `a` (the tensor every step holding it sees), sometimes evaluated
  // first so that the update may write into its storage.
  bool add_in_place(int a) {
    if (program_.steps[a].op == Op::Scalar) return false;  // a float literal in reproducers
    Step s{.op = one_of({Op::AddInPlace, Op::SubInPlace, Op::MulInPlace, Op::DivInPlace, Op::CopyInPlace,
                         Op::FillInPlace, Op::ClampInPlace, Op::ReluInPlace, Op::MulInPlace, Op::AddInPlace}),
           .args = {a}};
    switch (s.op) {
      case Op::FillInPlace: s.x = interesting_constant(); break;
      case Op::ClampInPlace:
        s.x = one_of<float>({-1, 0, -INFINITY});
        s.y = one_of<float>({1, 0.5f, INFINITY});
        break;
      case Op::ReluInPlace: break;
      default: {
        int b = pick_partner(a);
        if (b < 0) return false;
        s.args.push_back(b);
      }
    }
    if (chance(0.4) && !is_leaf(program_.steps[a].op)) add({.op = Op::Eval, .args = {a}});
    int updated = add(std::move(s));
    if (updated < 0) return false;
    if (chance(0.3)) return add_in_place(updated);
    return true;
  }

  // A dim of a tensor of `rank` dims, sometimes counted from the end.
  int64_t random_dim(int64_t rank) {
    int64_t d = static_cast<int64_t>(below(rank));
    return chance(0.3) ? d - rank : d;
  }

  // A view of `a` (or a chain of two), then mostly an op on it, so kernels read through it.
  bool add_view(int a) {
    const Shape shape = shape_of(a);
    auto rank = static_cast<int64_t>(shape.size());
    Step s{.op = one_of({Op::Transpose, Op::Transpose, Op::Permute, Op::Slice, Op::Slice, Op::Select,
                         Op::Reshape, Op::Expand, Op::Unsqueeze, Op::Squeeze, Op::Contiguous}),
           .args = {a}};
    switch (s.op) {
      case Op::Transpose:
        if (rank < 2) return false;
        s.dims = {random_dim(rank), random_dim(rank)};
        break;
      case Op::Permute: {
        for (int64_t d = 0; d < rank; ++d) s.dims.push_back(chance(0.2) ? d - rank : d);
        std::shuffle(s.dims.begin(), s.dims.end(), gen_);
        break;
      }
      case Op::Slice: {
        if (rank == 0) return false;
        int64_t d = random_dim(rank);
        int64_t size = shape[d < 0 ? d + rank : d];
        int64_t start = static_cast<int64_t>(below(size + 1)) - (chance(0.2) ? size : 0);
        int64_t end = chance(0.2) ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(below(size + 2));
        s.dims = {d, start, end, one_of<int64_t>({1, 1, 2, 3})};
        break;
      }
      case Op::Select: {
        if (rank == 0) return false;
        int64_t d = random_dim(rank);
        int64_t size = shape[d < 0 ? d + rank : d];
        if (size == 0) return false;
        s.dims = {d, static_cast<int64_t>(below(size)) - (chance(0.3) ? size : 0)};
        break;
      }
      case Op::Reshape: {
        // Merge two neighbouring dims, split one, or flatten; sometimes with -1.
        s.shape = shape;
        if (rank >= 2 && chance(0.5)) {
          size_t d = below(rank - 1);
          s.shape[d] *= s.shape[d + 1];
          s.shape.erase(s.shape.begin() + static_cast<std::ptrdiff_t>(d) + 1);
        } else if (rank >= 1 && chance(0.6)) {
          size_t d = below(rank);
          int64_t size = s.shape[d];
          int64_t factor = size % 3 == 0 ? 3 : size % 2 == 0 ? 2 : 1;
          s.shape[d] = size / factor;
          s.shape.insert(s.shape.begin() + static_cast<std::ptrdiff_t>(d), factor);
        } else {
          s.shape = {ir::numel(shape)};
        }
        if (!s.shape.empty() && chance(0.3)) s.shape[below(s.shape.size())] = -1;
        break;
      }
      case Op::Expand: {
        s.shape = shape;
        for (int64_t& d : s.shape)
          if (d == 1 && chance(0.7)) d = one_of<int64_t>({2, 3, 5});
          else if (chance(0.2)) d = -1;
        if (chance(0.3)) s.shape.insert(s.shape.begin(), 2);
        break;
      }
      case Op::Unsqueeze: s.dims = {static_cast<int64_t>(below(rank + 1)) - (chance(0.3) ? rank + 1 : 0)}; break;
      default: break;
    }
    int view = add(std::move(s));
    if (view < 0) return false;
    if (chance(0.3)) return add_view(view);
    if (chance(0.7)) return add_unary(view) || add_binary(view);
    return true;
  }

  bool add_unary(int a) {
    static constexpr Op kUnary[] = {Op::Neg, Op::Abs, Op::Exp, Op::Log, Op::Sqrt, Op::Rsqrt,
                                    Op::Sin, Op::Cos, Op::Relu, Op::Sigmoid, Op::Tanh, Op::Gelu,
                                    Op::GeluTanh, Op::Silu, Op::PowScalar, Op::Clamp,
                                    Op::LeakyRelu, Op::Elu, Op::Softplus};
    Step s{.op = kUnary[below(std::size(kUnary))], .args = {a}};
    bool needs_positive = s.op == Op::Log || s.op == Op::Sqrt || s.op == Op::Rsqrt || s.op == Op::PowScalar;
    if (needs_positive && chance(0.6)) {
      // Mostly keep the domain, so that not everything downstream is NaN.
      s.args[0] = add({.op = Op::Abs, .args = {a}});
      if (s.args[0] < 0) return false;
    }
    switch (s.op) {
      case Op::PowScalar: s.x = one_of<float>({2, 3, 0.5f, -1, -2, 1.5f, 0, 4, -0.5f}); break;
      case Op::Clamp:
        s.x = one_of<float>({-1, 0, -0.5f, -INFINITY});
        s.y = one_of<float>({1, 0, 2.5f, INFINITY});
        break;
      case Op::LeakyRelu: s.x = one_of<float>({0.01f, 0.2f, 0, 1.5f}); break;
      case Op::Elu: s.x = one_of<float>({1, 0.5f, 2}); break;
      case Op::Softplus:
        s.x = one_of<float>({1, 2, 0.5f});
        s.y = one_of<float>({20, 1, 5});
        break;
      default: break;
    }
    return add(std::move(s)) >= 0;
  }

  bool add_binary(int a) {
    static constexpr Op kBinary[] = {Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Pow, Op::Maximum,
                                     Op::Minimum, Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge,
                                     Op::Where, Op::Add, Op::Mul, Op::Sub};
    Op op = kBinary[below(std::size(kBinary))];
    int b = pick_partner(a);
    if (b < 0) return false;
    if (op == Op::Where) {
      int c = pick_partner(a);
      if (c < 0) return false;
      // The condition: mostly a comparison, sometimes a float tensor (nonzero is true).
      int cond = chance(0.7) ? add({.op = one_of({Op::Gt, Op::Lt, Op::Eq, Op::Ge}), .args = {a, b}}) : a;
      return cond >= 0 && add({.op = Op::Where, .args = {cond, chance(0.5) ? b : a, c}}) >= 0;
    }
    if (chance(0.25)) std::swap(a, b);  // scalars and broadcast operands on either side
    return add({.op = op, .args = {a, b}}) >= 0;
  }

  bool add_reduction() {
    static constexpr Op kReductions[] = {Op::Sum, Op::Mean, Op::Prod, Op::Amax, Op::Amin, Op::Var,
                                         Op::Std, Op::Max, Op::Min, Op::Argmax, Op::Argmin,
                                         Op::Softmax, Op::LogSoftmax, Op::LayerNorm, Op::Softmax,
                                         Op::Sum, Op::Mean};
    Step s{.op = kReductions[below(std::size(kReductions))]};
    // Reductions straight of a leaf too (prod(arange(...)), sum(full(...))).
    int x = chance(0.2) ? add_leaf(base_) : pick_value();
    if (x < 0) return false;
    if (chance(0.3)) {
      // Row-invariant values inside the reduction, alone or mixed with a varying one.
      int invariant = row_invariant(shape_of(x));
      if (invariant < 0) return false;
      x = chance(0.5) ? invariant
                      : add({.op = one_of({Op::Add, Op::Mul, Op::Sub}), .args = {x, invariant}});
      if (x < 0) return false;
    }
    s.args = {x};
    auto rank = static_cast<int64_t>(shape_of(x).size());
    s.keepdim = chance(0.5);
    switch (s.op) {
      case Op::Argmax:
      case Op::Argmin:
      case Op::Softmax:
      case Op::LogSoftmax:
        if (rank == 0) return false;
        s.dims = {chance(0.6) ? -1 : static_cast<int64_t>(below(rank)) - (chance(0.5) ? rank : 0)};
        break;
      case Op::LayerNorm: {
        if (rank == 0) return false;
        int64_t trailing = 1 + static_cast<int64_t>(below(std::min<int64_t>(rank, 2)));
        s.dims = {trailing};
        s.x = one_of<float>({1e-5f, 1e-5f, 1e-2f, 0});
        Shape normalized(shape_of(x).end() - trailing, shape_of(x).end());
        for (int k = 0; k < 2; ++k) s.args.push_back(chance(0.5) ? add_leaf(normalized) : -1);
        break;
      }
      case Op::Max:
      case Op::Min: s.all_elements = true; break;
      default:
        s.all_elements = chance(0.2);
        s.dims = chance(0.1) ? Shape{} : random_dims(rank);
        s.x = one_of<float>({1, 1, 0, 2});  // var/std correction
        break;
    }
    return add(std::move(s)) >= 0;
  }

  std::mt19937_64 gen_;
  Shape base_;
  bool special_;
  Program program_;
  std::vector<Tensor> values_;  // lazy, never evaluated: they give shapes and dtypes
};

// ---- printing ----

std::string literal(float x) {
  if (std::isnan(x)) return "NAN";
  if (std::isinf(x)) return x > 0 ? "INFINITY" : "-INFINITY";
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", static_cast<double>(x));
  std::string s = text;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s + "f";
}

std::string shape_literal(const Shape& shape) {
  std::string s = "{";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "}";
}

const char* function_name(Op op) {
  switch (op) {
    case Op::Abs: return "abs";
    case Op::Exp: return "exp";
    case Op::Log: return "log";
    case Op::Sqrt: return "sqrt";
    case Op::Rsqrt: return "rsqrt";
    case Op::Sin: return "sin";
    case Op::Cos: return "cos";
    case Op::Relu: return "relu";
    case Op::Sigmoid: return "sigmoid";
    case Op::Tanh: return "tanh";
    case Op::Gelu: return "gelu";
    case Op::Silu: return "silu";
    case Op::Pow: case Op::PowScalar: return "pow";
    case Op::Maximum: return "maximum";
    case Op::Minimum: return "minimum";
    case Op::Where: return "where";
    case Op::Clamp: return "clamp";
    case Op::LeakyRelu: return "leaky_relu";
    case Op::Elu: return "elu";
    case Op::Softplus: return "softplus";
    case Op::Sum: return "sum";
    case Op::Mean: return "mean";
    case Op::Prod: return "prod";
    case Op::Amax: return "amax";
    case Op::Amin: return "amin";
    case Op::Var: return "var";
    case Op::Std: return "std";
    case Op::Max: return "max";
    case Op::Min: return "min";
    case Op::Argmax: return "argmax";
    case Op::Argmin: return "argmin";
    case Op::Softmax: return "softmax";
    case Op::LogSoftmax: return "log_softmax";
    case Op::LayerNorm: return "layer_norm";
    case Op::Transpose: return "transpose";
    case Op::Permute: return "permute";
    case Op::Slice: return "slice";
    case Op::Select: return "select";
    case Op::Reshape: return "reshape";
    case Op::Expand: return "expand";
    case Op::Unsqueeze: return "unsqueeze";
    case Op::Squeeze: return "squeeze";
    case Op::Contiguous: return "contiguous";
    case Op::AddInPlace: return "add_";
    case Op::SubInPlace: return "sub_";
    case Op::MulInPlace: return "mul_";
    case Op::DivInPlace: return "div_";
    case Op::CopyInPlace: return "copy_";
    case Op::FillInPlace: return "fill_";
    case Op::ClampInPlace: return "clamp_";
    case Op::ReluInPlace: return "relu_";
    case Op::Cat: return "cat";
    case Op::IndexSelect: return "index_select";
    case Op::Stack: return "stack";
    case Op::MatMul: return "matmul";
    case Op::Linear: return "linear";
    case Op::Attention: return "scaled_dot_product_attention";
    default: return nullptr;
  }
}

const char* operator_symbol(Op op) {
  switch (op) {
    case Op::Add: return "+";
    case Op::Sub: return "-";
    case Op::Mul: return "*";
    case Op::Div: return "/";
    case Op::Eq: return "==";
    case Op::Ne: return "!=";
    case Op::Lt: return "<";
    case Op::Le: return "<=";
    case Op::Gt: return ">";
    case Op::Ge: return ">=";
    default: return nullptr;
  }
}

}  // namespace

uint64_t program_seed(uint64_t run_seed, uint64_t index) {
  return run_seed * 0x9e3779b97f4a7c15ull + index * 0xd1b54a32d192ed03ull + 1;
}

Program generate_program(uint64_t seed) { return Generator(seed).run(); }

std::vector<Tensor> build(const Program& program, bool evaluate_early) {
  std::vector<Tensor> values;
  values.reserve(program.steps.size());
  for (const Step& step : program.steps) {
    for (int a : step.args)
      if (a >= static_cast<int>(values.size())) throw Error("fuzz: a step uses a later value");
    values.push_back(apply(step, values, evaluate_early));
  }
  for (int output : program.outputs)
    if (output < 0 || output >= static_cast<int>(values.size())) throw Error("fuzz: no such output");
  return values;
}

int64_t program_size(const Program& program) {
  int64_t size = 0;
  for (const Step& step : program.steps)
    if (is_leaf(step.op)) size += step.op == Op::Arange ? static_cast<int64_t>(std::fabs((step.y - step.x) / step.z))
                                                        : ir::numel(step.shape);
  return size;
}

std::string to_cpp(const Program& program, const RunSettings& settings, const std::string& note) {
  const std::vector<Tensor> values = build(program, false);  // for dtypes
  auto name = [&](int v) -> std::string {
    const Step& s = program.steps[v];
    return s.op == Op::Scalar ? literal(s.x) : "v" + std::to_string(v);
  };
  // A scalar operand of an operator needs a Tensor beside it (2.0f * 3.0f is float math).
  auto operand = [&](int v, int other) {
    bool both_scalars = program.steps[v].op == Op::Scalar && program.steps[other].op == Op::Scalar;
    return both_scalars ? "fj::Tensor(" + name(v) + ")" : name(v);
  };
  bool uses_generated_inputs = false;
  std::string body;
  for (size_t i = 0; i < program.steps.size(); ++i) {
    const Step& s = program.steps[i];
    if (s.op == Op::Scalar) continue;
    std::string rhs;
    auto a = [&](size_t k) { return s.args[k] < 0 ? std::string("fj::Tensor()") : name(s.args[k]); };
    switch (s.op) {
      case Op::Input: {
        int64_t count = ir::numel(s.shape);
        if (count > 24) {
          uses_generated_inputs = true;
          rhs = "fj::tensor(input_values(" + std::to_string(count) + ", " + std::to_string(s.seed) +
                "ull, Distribution(" + std::to_string(static_cast<int>(s.distribution)) + ")), " +
                shape_literal(s.shape) + ")";
        } else {
          rhs = "fj::tensor({";
          for (int64_t e = 0; e < count; ++e) rhs += (e ? ", " : "") + literal(input_value(s.seed, e, s.distribution));
          rhs += "}, " + shape_literal(s.shape) + ")";
        }
        break;
      }
      case Op::Full: rhs = "fj::full(" + shape_literal(s.shape) + ", " + literal(s.x) + ")"; break;
      case Op::Arange: rhs = "fj::arange(" + literal(s.x) + ", " + literal(s.y) + ", " + literal(s.z) + ")"; break;
      case Op::Rand:
      case Op::Randn:
        rhs = std::string(s.op == Op::Rand ? "fj::rand(" : "fj::randn(") + shape_literal(s.shape) + ", " +
              std::to_string(s.seed) + "ull)";
        break;
      case Op::Neg: rhs = "-" + name(s.args[0]); break;
      case Op::GeluTanh: rhs = "fj::gelu(" + a(0) + ", \"tanh\")"; break;
      case Op::Eval: rhs = name(s.args[0]) + ".eval()"; break;
      case Op::AddInPlace: case Op::SubInPlace: case Op::MulInPlace: case Op::DivInPlace: case Op::CopyInPlace:
        rhs = name(s.args[0]) + "." + function_name(s.op) + "(" + name(s.args[1]) + ")";
        break;
      case Op::FillInPlace: rhs = name(s.args[0]) + ".fill_(" + literal(s.x) + ")"; break;
      case Op::ClampInPlace: rhs = name(s.args[0]) + ".clamp_(" + literal(s.x) + ", " + literal(s.y) + ")"; break;
      case Op::ReluInPlace: rhs = name(s.args[0]) + ".relu_()"; break;
      case Op::IndexSelect: {
        rhs = "fj::index_select(" + name(s.args[0]) + ", " + std::to_string(s.dims[0]) + ", fj::tensor({";
        for (size_t k = 1; k < s.dims.size(); ++k) rhs += (k > 1 ? ", " : "") + std::to_string(s.dims[k]);
        rhs += "}, {" + std::to_string(s.dims.size() - 1) + "}).to(fj::DType::Int64))";
        break;
      }
      case Op::Cat:
      case Op::Stack:
        rhs = std::string("fj::") + function_name(s.op) + "({";
        for (size_t k = 0; k < s.args.size(); ++k) rhs += (k ? ", " : "") + name(s.args[k]);
        rhs += "}, " + std::to_string(s.dims[0]) + ")";
        break;
      default:
        if (const char* symbol = operator_symbol(s.op)) {
          rhs = operand(s.args[0], s.args[1]) + " " + symbol + " " + operand(s.args[1], s.args[0]);
          break;
        }
        rhs = std::string("fj::") + function_name(s.op) + "(" + a(0);
        switch (s.op) {
          case Op::Pow: case Op::Maximum: case Op::Minimum: case Op::MatMul: rhs += ", " + a(1); break;
          case Op::Linear: rhs += ", " + a(1) + ", " + a(2); break;
          case Op::Attention:
            rhs += ", " + a(1) + ", " + a(2) + ", " + a(3) + (s.keepdim ? ", true" : ", false");
            if (s.all_elements) rhs += ", " + literal(s.x);
            break;
          case Op::Where: rhs += ", " + a(1) + ", " + a(2); break;
          case Op::PowScalar: case Op::LeakyRelu: case Op::Elu: rhs += ", " + literal(s.x); break;
          case Op::Clamp: case Op::Softplus: rhs += ", " + literal(s.x) + ", " + literal(s.y); break;
          case Op::Sum: case Op::Mean: case Op::Prod: case Op::Amax: case Op::Amin: case Op::Var: case Op::Std:
            if (s.all_elements) break;
            rhs += ", " + shape_literal(s.dims);
            if (s.op == Op::Var || s.op == Op::Std) rhs += ", " + literal(s.x);
            rhs += s.keepdim ? ", true" : ", false";
            break;
          case Op::Argmax: case Op::Argmin:
            rhs += ", " + std::to_string(s.dims[0]) + (s.keepdim ? ", true" : ", false");
            break;
          case Op::Softmax: case Op::LogSoftmax: rhs += ", " + std::to_string(s.dims[0]); break;
          case Op::Transpose: case Op::Slice: case Op::Select: case Op::Unsqueeze:
            for (int64_t d : s.dims)
              rhs += ", " + (d == std::numeric_limits<int64_t>::max() ? std::string("INT64_MAX") : std::to_string(d));
            break;
          case Op::Permute: rhs += ", " + shape_literal(s.dims); break;
          case Op::Reshape: case Op::Expand: rhs += ", " + shape_literal(s.shape); break;
          case Op::LayerNorm: {
            const Shape& shape = values[s.args[0]].sizes();
            rhs += ", " + shape_literal(Shape(shape.end() - s.dims[0], shape.end())) + ", " + a(1) + ", " +
                   a(2) + ", " + literal(s.x);
            break;
          }
          default: break;
        }
        rhs += ")";
    }
    body += "  fj::Tensor v" + std::to_string(i) + " = " + rhs + ";\n";
  }
  std::string outputs;
  for (size_t k = 0; k < program.outputs.size(); ++k) outputs += (k ? ", " : "") + name(program.outputs[k]);
  body += "  fj::eval({" + outputs + "});\n";
  for (int output : program.outputs) {
    DType dtype = values[output].dtype();
    const char* type = dtype == DType::Float32 ? "float" : dtype == DType::Bool ? "bool" : "int64_t";
    body += "  show<" + std::string(type) + ">(\"" + name(output) + "\", " + name(output) + ");\n";
  }

  std::string text = "// " + note + "\n";
  for (size_t pos = 0; (pos = text.find('\n', pos)) != std::string::npos && pos + 1 < text.size(); pos += 3)
    text.insert(pos + 1, "// ");
  text +=
      "#include <fusejit/fusejit.h>\n\n#include <cmath>\n#include <cstdint>\n#include <cstdio>\n"
      "#include <vector>\n\nnamespace fj = fusejit;\n\n";
  if (uses_generated_inputs) {
    text += "enum class Distribution : uint8_t { Uniform, Positive, SmallIntegers, Special };\n";
    text += std::string(input_value_source()) + "\n\n";
    text +=
        "std::vector<float> input_values(int64_t count, uint64_t seed, Distribution distribution) {\n"
        "  std::vector<float> values(count);\n"
        "  for (int64_t i = 0; i < count; ++i) values[i] = input_value(seed, i, distribution);\n"
        "  return values;\n}\n\n";
  }
  text +=
      "template <class T>\nvoid show(const char* name, const fj::Tensor& t) {\n"
      "  std::printf(\"%s =\", name);\n"
      "  for (T v : t.to_vector<T>()) std::printf(\" %.9g\", static_cast<double>(v));\n"
      "  std::printf(\"\\n\");\n}\n\n";
  text += "int main() {\n";
  if (!settings.fused) text += "  fj::set_fusion_enabled(false);\n";
  text += "  fj::set_num_threads(" + std::to_string(settings.threads) + ");\n";
  return text + body + "}\n";
}

}  // namespace fusejit::fuzz
