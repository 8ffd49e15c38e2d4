#include "tests/fuzz/bounds.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <initializer_list>
#include <numbers>

#include "ir/random.h"
#include "ir/reference.h"

namespace fusejit::fuzz {

bool Bound::allows(double value) const {
  return std::isnan(value) ? nan : lo <= value && value <= hi;
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kUlp = 0x1p-23;          // a float's ULP relative to its value (at most)
constexpr double kDenormalUlp = 0x1p-149;  // the spacing of denormals

Bound nothing() { return {kInf, -kInf, false}; }
Bound point(double v) { return std::isnan(v) ? Bound{kInf, -kInf, true} : Bound{v, v, false}; }
bool has_values(const Bound& b) { return b.lo <= b.hi; }
bool contains(const Bound& b, double v) { return b.lo <= v && v <= b.hi; }
bool has_infinity(const Bound& b) { return has_values(b) && (std::isinf(b.lo) || std::isinf(b.hi)); }
bool has_finite(const Bound& b) { return has_values(b) && !(b.lo == b.hi && std::isinf(b.lo)); }

Bound join(Bound a, const Bound& b) {
  a.lo = std::min(a.lo, b.lo);
  a.hi = std::max(a.hi, b.hi);
  a.nan = a.nan || b.nan;
  return a;
}

// The values f is evaluated at for an interval argument: its ends, and NaN if possible.
std::vector<double> ends(const Bound& b) {
  std::vector<double> points;
  if (has_values(b)) points = {b.lo, b.hi};
  if (b.nan) points.push_back(NAN);
  return points;
}

// f over every combination of the arguments' ends: the exact range when f is monotone in each
// argument (callers add what lies inside).
template <class F>
Bound at_ends(F f, std::initializer_list<Bound> args) {
  std::vector<std::vector<double>> points;
  for (const Bound& b : args) points.push_back(ends(b));
  Bound out = nothing();
  std::vector<size_t> at(points.size(), 0);
  for (const auto& p : points)
    if (p.empty()) return out;
  while (true) {
    std::vector<double> x(points.size());
    for (size_t k = 0; k < points.size(); ++k) x[k] = points[k][at[k]];
    out = join(out, point(f(x)));
    size_t k = 0;
    while (k < at.size() && ++at[k] == points[k].size()) at[k++] = 0;
    if (k == at.size()) return out;
  }
}

float float_below(double x) {
  auto f = static_cast<float>(x);
  return static_cast<double>(f) > x ? std::nextafter(f, -INFINITY) : f;
}
float float_above(double x) {
  auto f = static_cast<float>(x);
  return static_cast<double>(f) < x ? std::nextafter(f, INFINITY) : f;
}

// The floats that a correctly rounded result in b can be.
Bound rounded(Bound b) {
  if (!has_values(b)) return b;
  return {float_below(b.lo), float_above(b.hi), b.nan};
}

// b widened by `ulps` of its values and `absolute`, then rounded.
Bound widened(Bound b, double ulps, double absolute = 0) {
  if (!has_values(b)) return b;
  absolute += ulps * kDenormalUlp;
  if (std::isfinite(b.lo)) b.lo -= std::fabs(b.lo) * ulps * kUlp + absolute;
  if (std::isfinite(b.hi)) b.hi += std::fabs(b.hi) * ulps * kUlp + absolute;
  return rounded(b);
}

// A monotone function over b (increasing or decreasing), defined on [domain_lo, inf): values
// below the domain give NaN.
template <class F>
Bound monotone(F f, Bound b, double domain_lo = -kInf) {
  if (has_values(b) && b.lo < domain_lo) {
    b.nan = true;
    b.lo = domain_lo;
  }
  return at_ends([&](const std::vector<double>& x) { return f(x[0]); }, {b});
}

// The double-precision math of the reference interpreter, on intervals, with each primitive
// widened by the float32 error that the kernels' vector math is allowed (README, "Accuracy").
struct IntervalMath {
  using Value = Bound;
  ir::ReferenceMath exact;

  // The kernels' constants are floats.
  Value c(double value) { return point(static_cast<float>(value)); }

  Value add(Value a, Value b) { return rounded(at_ends([](auto& x) { return x[0] + x[1]; }, {a, b})); }
  Value sub(Value a, Value b) { return rounded(at_ends([](auto& x) { return x[0] - x[1]; }, {a, b})); }
  Value mul(Value a, Value b) {
    Bound out = at_ends([](auto& x) { return x[0] * x[1]; }, {a, b});
    // Inside the intervals: 0 * inf, and 0 * a finite value when the other's ends are infinite.
    if ((contains(a, 0) && has_infinity(b)) || (contains(b, 0) && has_infinity(a))) out.nan = true;
    if ((contains(a, 0) && has_finite(b)) || (contains(b, 0) && has_finite(a))) out = join(out, point(0));
    return rounded(out);
  }
  Value div(Value a, Value b) {
    Bound out = at_ends([](auto& x) { return x[0] / x[1]; }, {a, b});
    if (contains(b, 0)) {
      if (contains(a, 0)) out.nan = true;
      if (has_values(a) && (a.lo != 0 || a.hi != 0)) out = join(out, {-kInf, kInf, false});
    }
    return rounded(out);
  }
  Value neg(Value a) { return has_values(a) ? Bound{-a.hi, -a.lo, a.nan} : a; }
  Value abs(Value a) {
    Bound out = monotone([](double x) { return std::fabs(x); }, a);
    if (contains(a, 0)) out.lo = 0;
    return out;
  }
  Value max(Value a, Value b) { return at_ends([&](auto& x) { return exact.max(x[0], x[1]); }, {a, b}); }
  Value min(Value a, Value b) { return at_ends([&](auto& x) { return exact.min(x[0], x[1]); }, {a, b}); }
  Value sqrt(Value a) { return rounded(monotone([](double x) { return std::sqrt(x); }, a, 0)); }
  Value exp(Value a) { return widened(monotone([](double x) { return std::exp(x); }, a), 2); }
  Value expm1(Value a) { return widened(monotone([](double x) { return std::expm1(x); }, a), 4); }
  Value log(Value a) { return widened(monotone([](double x) { return std::log(x); }, a, 0), 2); }
  Value log1p(Value a) { return widened(monotone([](double x) { return std::log1p(x); }, a, -1), 4); }
  Value tanh(Value a) { return widened(monotone([](double x) { return std::tanh(x); }, a), 4); }
  // 2.4 ULP where the result is a normal float; a few denormal steps below.
  Value sigmoid(Value a) {
    return widened(monotone([&](double x) { return exact.sigmoid(x); }, a), 4, 8 * FLT_MIN);
  }
  Value sin(Value a) { return periodic(a, [](double x) { return std::sin(x); }, 0); }
  Value cos(Value a) { return periodic(a, [](double x) { return std::cos(x); }, std::numbers::pi / 2); }
  // gelu has one minimum, at x ~ -0.7518 (value ~ -0.17); its error below -1 is absolute.
  // Towards -inf it rises to -0, a limit that the end itself (-inf * 0, NaN) does not give.
  Value gelu(Value a) {
    Bound out = at_ends([&](auto& x) { return exact.gelu(x[0]); }, {a});
    constexpr double kArgMin = -0.751791524693564457;
    if (contains(a, kArgMin)) out.lo = std::min(out.lo, exact.gelu(kArgMin));
    if (has_values(a) && a.lo == -kInf) out = join(out, point(-0.0));
    return widened(out, 4, 2e-7);
  }
  Value pow(Value a, Value b) {
    Bound out = at_ends([](auto& x) { return std::pow(x[0], x[1]); }, {a, b});
    // Where the base crosses 0 (or -0), and an exponent range over negative bases (the sign
    // alternates with the exponent's parity).
    if (contains(a, 0))
      for (double zero : {0.0, -0.0}) out = join(out, at_ends([&](auto& x) { return std::pow(zero, x[0]); }, {b}));
    // Inside an exponent range lie odd integers, where a zero base keeps its sign: pow(-0, -1)
    // is -inf, pow(-0, 3) is -0.
    if (contains(a, 0) && has_values(b) && b.lo != b.hi) out = join(out, {-kInf, kInf, false});
    if (has_values(b) && b.lo != b.hi && has_values(a) && a.lo < 0) out = {-kInf, kInf, true};
    // pow(1, y) and pow(x, 0) are 1 even for a NaN y or x.
    if ((contains(a, 1) && b.nan) || (contains(b, 0) && a.nan)) out = join(out, point(1));
    // A fixed non-integer exponent of a negative base is NaN inside the interval too.
    if (has_values(b) && b.lo == b.hi && std::isfinite(b.lo) && b.lo != std::trunc(b.lo) && has_finite(a) && a.lo < 0)
      out.nan = true;
    // About 1 + |y ln x| / 32 ULP.
    double worst = 0;
    for (double x : ends(a))
      for (double y : ends(b))
        if (std::isfinite(x) && std::isfinite(y) && x != 0) worst = std::max(worst, std::fabs(y * std::log(std::fabs(x))));
    return widened(out, 2 + worst / 32 + 1);
  }
  Value eq(Value a, Value b) { return truth(overlap(a, b), !(single(a) && single(b) && a.lo == b.lo) || a.nan || b.nan); }
  Value ne(Value a, Value b) { Bound e = eq(a, b); return {1 - e.hi, 1 - e.lo, false}; }
  Value lt(Value a, Value b) { return order(a, b, [](double x, double y) { return x < y; }); }
  Value le(Value a, Value b) { return order(a, b, [](double x, double y) { return x <= y; }); }
  Value gt(Value a, Value b) { return order(a, b, [](double x, double y) { return x > y; }); }
  Value ge(Value a, Value b) { return order(a, b, [](double x, double y) { return x >= y; }); }
  Value select(Value cond, Value a, Value b) {
    bool can_be_true = has_values(cond) && (cond.hi != 0 || cond.lo != 0);
    bool can_be_false = contains(cond, 0);
    return can_be_true && can_be_false ? join(a, b) : can_be_true ? a : b;
  }
  Value to_float(Value a) { return a; }
  Value to_int64(Value a) {
    Bound out = monotone([&](double x) { return exact.to_int64(x); }, {a.lo, a.hi, false});
    if (a.nan) out = has_values(out) ? Bound{std::min(out.lo, 0.0), std::max(out.hi, 0.0), false} : Bound{0, 0, false};
    return out;
  }

 private:
  static bool single(const Bound& b) { return has_values(b) && b.lo == b.hi; }
  static bool overlap(const Bound& a, const Bound& b) {
    return has_values(a) && has_values(b) && a.lo <= b.hi && b.lo <= a.hi;
  }
  static Bound truth(bool can_be_true, bool can_be_false) {
    return {can_be_false ? 0.0 : 1.0, can_be_true ? 1.0 : 0.0, false};
  }
  // A monotone comparison: true somewhere iff true at some pair of ends; NaN compares false.
  template <class F>
  static Bound order(const Bound& a, const Bound& b, F f) {
    if (!has_values(a) || !has_values(b)) return truth(false, true);
    bool can_be_true = false, can_be_false = a.nan || b.nan;
    for (double x : {a.lo, a.hi})
      for (double y : {b.lo, b.hi}) (f(x, y) ? can_be_true : can_be_false) = true;
    return truth(can_be_true, can_be_false);
  }
  // sin or cos (`shift`: cos(x) = sin(x + pi/2)): extremes inside the interval count; beyond
  // 2^22 the kernels give NaN by design (no Payne-Hanek reduction).
  template <class F>
  Value periodic(Bound a, F f, double shift) {
    constexpr double kLimit = 0x1p22;
    Bound out = nothing();
    out.nan = a.nan || (has_values(a) && (a.lo < -kLimit || a.hi > kLimit));
    if (!has_values(a)) return out;
    a.lo = std::max(a.lo, -kLimit);
    a.hi = std::min(a.hi, kLimit);
    if (a.lo > a.hi) return out;
    if (a.hi - a.lo >= 2 * std::numbers::pi) return join(out, {-1, 1, false});
    out = join(out, at_ends([&](auto& x) { return f(x[0]); }, {a}));
    // sin has its maxima at pi/2 + 2k pi and minima at -pi/2 + 2k pi.
    for (double extreme : {std::numbers::pi / 2, -std::numbers::pi / 2}) {
      double k = std::ceil((a.lo + shift - extreme) / (2 * std::numbers::pi));
      if (extreme + 2 * k * std::numbers::pi <= a.hi + shift) out = join(out, point(extreme > 0 ? 1 : -1));
    }
    return widened(out, 6, 1e-9);
  }
};

// The reduction of one row of intervals.
// `trailing`: the reduced dims come after the kept ones (a row kernel, which notes a prod's
// zeros apart); otherwise columns are multiplied in element order in float32, as a loop would.
Bound reduce_row(ir::OpCode op, const std::vector<Bound>& row, bool trailing) {
  IntervalMath m;
  for (const Bound& b : row)
    if (!has_values(b)) return {kInf, -kInf, true};  // always NaN
  bool nan = false;
  for (const Bound& b : row) nan = nan || b.nan;
  switch (op) {
    case ir::OpCode::Amax:
    case ir::OpCode::Amin: {
      bool is_max = op == ir::OpCode::Amax;
      Bound out = point(is_max ? -kInf : kInf);
      for (const Bound& b : row)
        out = is_max ? Bound{std::max(out.lo, b.lo), std::max(out.hi, b.hi), false}
                     : Bound{std::min(out.lo, b.lo), std::min(out.hi, b.hi), false};
      out.nan = nan;
      return out;
    }
    case ir::OpCode::Prod: {
      // A zero among finite factors makes the product a zero, whatever partial products
      // overflow first (kernels note zeros apart from the running product).
      bool zero = false, infinite = false;
      for (const Bound& b : row) {
        zero = zero || (b.lo == 0 && b.hi == 0 && !b.nan);
        infinite = infinite || has_infinity(b);
      }
      if (trailing && zero && !infinite) return {0, 0, nan};
      // In element order, rounded at each step; then any order's extra error (n ULP).
      Bound out = point(1);
      for (const Bound& b : row) out = m.mul(out, b);
      return widened(out, static_cast<double>(row.size()));
    }
    default: {
      // Any order of float additions is within (n - 1) u sum|x| of the exact sum (u = 2^-24),
      // as long as no partial sum overflows.
      double lo = 0, hi = 0, magnitude = 0, positive = 0, negative = 0;
      bool may_be_inf = false, may_be_minus_inf = false, is_inf = false, is_minus_inf = false;
      for (const Bound& b : row) {
        may_be_inf |= b.hi == kInf;
        may_be_minus_inf |= b.lo == -kInf;
        is_inf |= b.lo == kInf;
        is_minus_inf |= b.hi == -kInf;
        if (std::isfinite(b.lo)) lo += b.lo;
        if (std::isfinite(b.hi)) hi += b.hi;
        double largest = std::max(std::isfinite(b.lo) ? std::fabs(b.lo) : 0.0, std::isfinite(b.hi) ? std::fabs(b.hi) : 0.0);
        magnitude += largest;
        if (std::isfinite(b.hi) && b.hi > 0) positive += b.hi;
        if (std::isfinite(b.lo) && b.lo < 0) negative -= b.lo;
      }
      double error = static_cast<double>(row.size()) * 0x1p-24 * magnitude;
      Bound out{lo - error, hi + error, nan || (may_be_inf && may_be_minus_inf)};
      // A partial sum may overflow in some order although the total does not.
      if (positive * (1 + 1e-6) >= FLT_MAX) may_be_inf = true;
      if (negative * (1 + 1e-6) >= FLT_MAX) may_be_minus_inf = true;
      out.nan = out.nan || (may_be_inf && may_be_minus_inf && (positive >= FLT_MAX || negative >= FLT_MAX));
      if (may_be_inf) out.hi = kInf;
      if (may_be_minus_inf) out.lo = -kInf;
      if (is_inf) out.lo = may_be_minus_inf ? -kInf : kInf;
      if (is_minus_inf) out.hi = may_be_inf ? kInf : -kInf;
      return rounded(out);
    }
  }
}

std::vector<Bound> reduce(const ir::GraphNode& node, const std::vector<Bound>& in, const Shape& from) {
  Shape kept = ir::reduced_shape(from, node.params.axes, true);
  ir::Strides strides = ir::contiguous_strides(kept);
  std::vector<std::vector<Bound>> rows(ir::numel(kept));
  for (int64_t i = 0; i < static_cast<int64_t>(in.size()); ++i) {
    int64_t o = 0;
    for (size_t d = from.size(), flat = i; d-- > 0; flat /= from[d])
      if (kept[d] != 1) o += static_cast<int64_t>(flat % from[d]) * strides[d];
    rows[o].push_back(in[i]);
  }
  bool trailing = true, reduced_seen = false;
  for (size_t d = 0; d < from.size(); ++d) {
    if (from[d] == 1) continue;
    bool reduced = ir::reduces_dim(node.params.axes, d);
    trailing = trailing && !(reduced_seen && !reduced);
    reduced_seen = reduced_seen || reduced;
  }
  std::vector<Bound> out;
  out.reserve(rows.size());
  for (const auto& row : rows) out.push_back(reduce_row(node.op, row, trailing));
  return out;
}

// Box-Muller as the kernels compute it, in float32 primitives.
Bound randn(uint64_t seed, int64_t index) {
  IntervalMath m;
  auto u = static_cast<uint64_t>(index);
  Bound u1 = m.add(point(ir::random::unit_interval(ir::random::bits(ir::random::stream_key(seed, 1), u))),
                   m.c(0x1p-24));
  Bound u2 = point(ir::random::unit_interval(ir::random::bits(ir::random::stream_key(seed, 2), u)));
  Bound radius = m.sqrt(m.mul(m.c(-2), m.log(u1)));
  return m.mul(radius, m.cos(m.mul(m.c(2 * std::numbers::pi), u2)));
}

// A batched product: each element the float32 sum of its K products (reduce_row's bound on a
// sum in any order, which covers one fused multiply-add per term).
std::vector<Bound> matmul(const Shape& a_shape, const std::vector<Bound>& a, const std::vector<Bound>& b,
                          const Shape& out_shape) {
  IntervalMath m;
  size_t rank = out_shape.size();
  int64_t rows = out_shape[rank - 2], columns = out_shape[rank - 1], k = a_shape[rank - 1];
  std::vector<Bound> out(ir::numel(out_shape));
  std::vector<Bound> terms(k);
  for (int64_t o = 0; o < static_cast<int64_t>(out.size()); ++o) {
    int64_t batch = o / (rows * columns), i = o / columns % rows, j = o % columns;
    for (int64_t p = 0; p < k; ++p) terms[p] = m.mul(a[(batch * rows + i) * k + p], b[(batch * k + p) * columns + j]);
    out[o] = reduce_row(ir::OpCode::Sum, terms, true);
  }
  return out;
}

// An attention (ir::OpCode::Attention) as its kernel computes it, tile by tile: each score a
// product's sum, scaled, masked; each key's weight exp(s - M) for M the row maximum's bound,
// widened by what the online softmax adds: the rounding of s - m (|s - m| 2^-24 of the weight),
// and per tile of at least 8 keys a rescaling of the sums (exp's 2 ULP, two roundings). The
// weighted sums and their total are sums in any order, then divided.
std::vector<Bound> attention(const ir::Graph& graph, const ir::GraphNode& node,
                             const std::vector<std::vector<Bound>>& values) {
  IntervalMath m;
  size_t rank = node.shape.size();
  int64_t queries = node.shape[rank - 2], columns = node.shape[rank - 1];
  int64_t depth = graph.nodes[node.inputs[0]].shape.back(), keys = graph.nodes[node.inputs[1]].shape[rank - 2];
  const std::vector<Bound>&q = values[node.inputs[0]], &k = values[node.inputs[1]], &v = values[node.inputs[2]];
  const Bound scale = values[node.inputs[3]].at(0);
  bool masked = node.inputs.size() > 4;
  bool boolean_mask = masked && graph.nodes[node.inputs[4]].dtype == DType::Bool;
  bool causal = node.params.dim & ir::kAttentionCausal;
  std::vector<Bound> out(ir::numel(node.shape));
  std::vector<Bound> terms(depth), scores, weights, weighted;
  for (int64_t batch = 0; batch < ir::numel(node.shape) / std::max<int64_t>(1, queries * columns); ++batch)
    for (int64_t i = 0; i < queries; ++i) {
      int64_t attended = causal ? std::min(keys, i + 1) : keys;
      scores.assign(attended, Bound{});
      for (int64_t j = 0; j < attended; ++j) {
        for (int64_t p = 0; p < depth; ++p)
          terms[p] = m.mul(q[(batch * queries + i) * depth + p], k[(batch * keys + j) * depth + p]);
        Bound dot = reduce_row(ir::OpCode::Sum, terms, true);
        Bound s = node.params.dim & ir::kAttentionDivides ? m.div(dot, scale) : m.mul(dot, scale);
        if (masked) {
          const Bound& mask = values[node.inputs[4]][(batch * queries + i) * keys + j];
          if (!boolean_mask)
            s = m.add(s, mask);
          else if (mask.hi <= 0)
            s = point(-kInf);
          else if (mask.lo <= 0)
            s = join(s, point(-kInf));
        }
        scores[j] = s;
      }
      Bound top = reduce_row(ir::OpCode::Amax, scores, true);
      double lowest = std::isfinite(top.hi) ? top.hi : 0;
      for (const Bound& s : scores)
        if (has_values(s) && std::isfinite(s.lo)) lowest = std::min(lowest, s.lo);
      double spread = std::isfinite(top.hi) ? top.hi - lowest : 0;
      double tiles = static_cast<double>((keys + 7) / 8);
      double slack = (2 * spread + 8 * tiles + 16) * 0x1p-24;
      weights.clear();
      for (const Bound& s : scores) {
        Bound w = m.exp(m.sub(s, top));
        // Weights are never negative; a slack of 1 or more leaves them anywhere down to 0.
        if (has_values(w)) w = rounded({std::max(0.0, w.lo) * std::max(0.0, 1 - slack), w.hi * (1 + slack), w.nan});
        weights.push_back(w);
      }
      Bound total = reduce_row(ir::OpCode::Sum, weights, true);
      for (int64_t c = 0; c < columns; ++c) {
        weighted.clear();
        for (int64_t j = 0; j < attended; ++j) weighted.push_back(m.mul(weights[j], v[(batch * keys + j) * columns + c]));
        out[(batch * queries + i) * columns + c] =
            attended == 0 ? point(0) : m.div(reduce_row(ir::OpCode::Sum, weighted, true), total);
      }
    }
  return out;
}

}  // namespace

std::vector<std::vector<Bound>> reference_bounds(const ir::Graph& graph) {
  std::vector<std::vector<Bound>> values(graph.nodes.size());
  IntervalMath math;
  for (size_t id = 0; id < graph.nodes.size(); ++id) {
    const ir::GraphNode& node = graph.nodes[id];
    if (ir::is_reduction(node.op)) {
      values[id] = reduce(node, values[node.inputs[0]], graph.nodes[node.inputs[0]].shape);
      continue;
    }
    if (node.op == ir::OpCode::Scatter) {
      values[id] = ir::scatter(graph, node, values[node.inputs[0]], values[node.inputs[1]]);
      continue;
    }
    if (node.op == ir::OpCode::Attention) {
      values[id] = attention(graph, node, values);
      continue;
    }
    if (node.op == ir::OpCode::MatMul) {
      values[id] = matmul(graph.nodes[node.inputs[0]].shape, values[node.inputs[0]], values[node.inputs[1]], node.shape);
      continue;
    }
    int64_t count = ir::numel(node.shape);
    std::vector<Bound>& out = values[id];
    out.resize(count);
    std::vector<ir::Strides> strides;
    for (ir::NodeId input : node.inputs) {
      if (!ir::is_elementwise(node.op)) break;
      const Shape& shape = graph.nodes[input].shape;
      strides.push_back(ir::broadcast_strides(shape, ir::contiguous_strides(shape), node.shape));
    }
    std::vector<Bound> args(node.inputs.size());
    for (int64_t i = 0; i < count; ++i) {
      switch (node.op) {
        case ir::OpCode::Input: out[i] = point(ir::read_input(node, i)); break;
        case ir::OpCode::Constant:
        case ir::OpCode::Scalar: out[i] = point(node.params.value); break;
        case ir::OpCode::Arange: out[i] = point(static_cast<float>(ir::generate(node.op, node.params, i))); break;
        case ir::OpCode::Rand: out[i] = point(ir::generate(node.op, node.params, i)); break;
        case ir::OpCode::Randn: out[i] = randn(node.params.seed, i); break;
        case ir::OpCode::View:
          out[i] = values[node.inputs[0]][node.data.offset + ir::strided_offset(node.shape, node.data.strides, i)];
          break;
        case ir::OpCode::Concat: {
          auto [input, flat] = ir::concat_source(graph, node, i);
          out[i] = values[input][flat];
          break;
        }
        case ir::OpCode::Gather: {
          // The index is exact (the frontend has read it): each bound is one point.
          std::vector<double> index;
          for (const Bound& b : values[node.inputs[1]]) index.push_back(b.lo);
          out[i] = values[node.inputs[0]][ir::gather_source(graph, node, i, index)];
          break;
        }
        default:
          for (size_t k = 0; k < node.inputs.size(); ++k)
            args[k] = values[node.inputs[k]][ir::strided_offset(node.shape, strides[k], i)];
          out[i] = ir::apply_formula(math, node.op, std::span<const Bound>(args));
      }
    }
  }
  std::vector<std::vector<Bound>> outputs;
  for (ir::NodeId output : graph.outputs) outputs.push_back(values[output]);
  return outputs;
}

}  // namespace fusejit::fuzz
