#include "ir/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "ir/random.h"

namespace fusejit::ir {

using V = ReferenceMath::Value;
V ReferenceMath::abs(V a) { return std::fabs(a); }
// As the kernels choose (codegen's VectorMath::max): a NaN operand wins, and of two zeros the
// second, so that folding a constant maximum changes no bit.
V ReferenceMath::max(V a, V b) { return a > b || std::isnan(a) ? a : b; }
V ReferenceMath::min(V a, V b) { return a < b || std::isnan(a) ? a : b; }
V ReferenceMath::sqrt(V a) { return std::sqrt(a); }
V ReferenceMath::exp(V a) { return std::exp(a); }
V ReferenceMath::expm1(V a) { return std::expm1(a); }
V ReferenceMath::log(V a) { return std::log(a); }
V ReferenceMath::log1p(V a) { return std::log1p(a); }
V ReferenceMath::sin(V a) { return std::sin(a); }
V ReferenceMath::cos(V a) { return std::cos(a); }
V ReferenceMath::tanh(V a) { return std::tanh(a); }
V ReferenceMath::sigmoid(V a) { return 1 / (1 + std::exp(-a)); }
V ReferenceMath::gelu(V a) { return 0.5 * a * std::erfc(-a * M_SQRT1_2); }
V ReferenceMath::pow(V a, V b) { return std::pow(a, b); }

double evaluate_scalar(OpCode op, const std::vector<double>& args) {
  ReferenceMath math;
  return apply_formula(math, op, std::span<const double>(args));
}

double generate(OpCode op, const OpParams& params, int64_t index) {
  auto u = static_cast<uint64_t>(index);
  switch (op) {
    case OpCode::Arange:
      return params.value + static_cast<double>(index) * params.step;
    case OpCode::Rand:
      return random::uniform(params.seed, u);
    case OpCode::Randn: {
      double u1 = random::unit_interval(random::bits(random::stream_key(params.seed, 1), u)) +
                  0x1p-24;
      double u2 = random::unit_interval(random::bits(random::stream_key(params.seed, 2), u));
      return std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
    }
    default:
      throw InternalError("generate: " + std::string(op_name(op)) + " is not a generator");
  }
}

double read_input(const GraphNode& node, int64_t flat) {
  int64_t offset = node.data.offset + strided_offset(node.shape, node.data.strides, flat);
  const void* base = node.data.storage->data();
  if (node.dtype == DType::Float32) return static_cast<const float*>(base)[offset];
  if (node.dtype == DType::Int64) return static_cast<double>(static_cast<const int64_t*>(base)[offset]);
  return static_cast<const uint8_t*>(base)[offset] != 0;
}

int64_t gather_source(const Graph& graph, const GraphNode& node, int64_t flat, const std::vector<double>& index) {
  auto dim = static_cast<size_t>(node.params.dim);
  const Shape& from = graph.nodes[node.inputs[0]].shape;
  int64_t inner = 1;
  for (size_t d = dim + 1; d < node.shape.size(); ++d) inner *= node.shape[d];
  int64_t outer = flat / (inner * node.shape[dim]);
  auto at = static_cast<int64_t>(index[flat / inner % node.shape[dim]]);
  return (outer * from[dim] + at) * inner + flat % inner;
}

std::pair<NodeId, int64_t> concat_source(const Graph& graph, const GraphNode& node, int64_t flat) {
  auto dim = static_cast<size_t>(node.params.dim);
  int64_t inner = 1;
  for (size_t d = dim + 1; d < node.shape.size(); ++d) inner *= node.shape[d];
  int64_t outer = flat / (inner * node.shape[dim]);
  int64_t along = flat / inner % node.shape[dim];
  for (NodeId input : node.inputs) {
    int64_t size = graph.nodes[input].shape[dim];
    if (along < size) return {input, (outer * size + along) * inner + flat % inner};
    along -= size;
  }
  throw InternalError("concat_source: index past the concatenation");
}

namespace {

// Maps a flat index over `to` onto the flat index of `from` broadcast to it.
int64_t broadcast_index(const Shape& from, const Shape& to, int64_t flat) {
  return strided_offset(to, broadcast_strides(from, contiguous_strides(from), to), flat);
}

// Reduces `in` (shape `from`) over the dims in `params.axes` (or in chunks), in element order.
std::vector<double> reduce(OpCode op, const std::vector<double>& in, const Shape& from,
                           const OpParams& params) {
  Shape kept = params.chunk ? chunked_shape(from, params.axes, params.chunk)
                            : reduced_shape(from, params.axes, true);
  size_t split = first_split_dim(from);
  std::vector<double> out(numel(kept), reduction_identity(op));
  Strides strides = contiguous_strides(kept);
  ReferenceMath math;
  for (int64_t i = 0; i < static_cast<int64_t>(in.size()); ++i) {
    int64_t o = 0;
    for (size_t d = from.size(), flat = i; d-- > 0; flat /= from[d]) {
      int64_t index = static_cast<int64_t>(flat) % from[d];
      if (params.chunk && d == split)
        o += index / params.chunk * strides[d];
      else if (kept[d] != 1)
        o += index * strides[d];
    }
    out[o] = apply_combine(math, op, out[o], in[i]);
  }
  return out;
}

// The batched product of `a` (shape [batch..., M, K]) and `b` ([batch..., K, N]), in double.
std::vector<double> matmul(const Shape& a_shape, const std::vector<double>& a, const std::vector<double>& b,
                           const Shape& out_shape) {
  size_t rank = out_shape.size();
  int64_t m = out_shape[rank - 2], n = out_shape[rank - 1], k = a_shape[rank - 1];
  std::vector<double> out(numel(out_shape), 0.0);
  for (int64_t batch = 0; batch < numel(out_shape) / std::max<int64_t>(1, m * n); ++batch)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < k; ++p) sum += a[(batch * m + i) * k + p] * b[(batch * k + p) * n + j];
        out[(batch * m + i) * n + j] = sum;
      }
  return out;
}

// Attention `node` (see OpCode::Attention) over its inputs' values, in double.
std::vector<double> attention(const Graph& graph, const GraphNode& node, const std::vector<std::vector<double>>& values) {
  const Shape& out_shape = node.shape;
  size_t rank = out_shape.size();
  int64_t l_size = out_shape[rank - 2], ev = out_shape[rank - 1];
  int64_t e_size = graph.nodes[node.inputs[0]].shape.back(), s_size = graph.nodes[node.inputs[1]].shape[rank - 2];
  const std::vector<double>&q = values[node.inputs[0]], &k = values[node.inputs[1]], &v = values[node.inputs[2]];
  double scale = values[node.inputs[3]][0];
  const std::vector<double>* mask = node.inputs.size() > 4 ? &values[node.inputs[4]] : nullptr;
  bool boolean_mask = mask && graph.nodes[node.inputs[4]].dtype == DType::Bool;
  bool causal = node.params.dim & kAttentionCausal;
  std::vector<double> out(numel(out_shape), 0.0), scores(s_size);
  for (int64_t batch = 0; batch < numel(out_shape) / std::max<int64_t>(1, l_size * ev); ++batch)
    for (int64_t i = 0; i < l_size; ++i) {
      int64_t keys = causal ? std::min(s_size, i + 1) : s_size;
      double top = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < keys; ++j) {
        double dot = 0;
        for (int64_t p = 0; p < e_size; ++p) dot += q[(batch * l_size + i) * e_size + p] * k[(batch * s_size + j) * e_size + p];
        double s = node.params.dim & kAttentionDivides ? dot / scale : dot * scale;
        if (mask) {
          double m = (*mask)[(batch * l_size + i) * s_size + j];
          s = boolean_mask ? (m != 0 ? s : -std::numeric_limits<double>::infinity()) : s + m;
        }
        scores[j] = s;
        top = std::isnan(s) || std::isnan(top) ? std::numeric_limits<double>::quiet_NaN() : std::max(top, s);
      }
      if (keys == 0) continue;  // softmax over no keys, times no values: zeros
      double total = 0;
      double* row = &out[(batch * l_size + i) * ev];
      for (int64_t j = 0; j < keys; ++j) {
        double weight = std::exp(scores[j] - top);
        total += weight;
        for (int64_t c = 0; c < ev; ++c) row[c] += weight * v[(batch * s_size + j) * ev + c];
      }
      for (int64_t c = 0; c < ev; ++c) row[c] /= total;
    }
  return out;
}

}  // namespace

std::vector<std::vector<double>> interpret(const Graph& graph) {
  std::vector<std::vector<double>> values(graph.nodes.size());
  for (size_t id = 0; id < graph.nodes.size(); ++id) {
    const GraphNode& node = graph.nodes[id];
    if (is_reduction(node.op)) {
      values[id] = reduce(node.op, values[node.inputs[0]], graph.nodes[node.inputs[0]].shape,
                          node.params);
      continue;
    }
    if (node.op == OpCode::MatMul) {
      values[id] = matmul(graph.nodes[node.inputs[0]].shape, values[node.inputs[0]], values[node.inputs[1]],
                          node.shape);
      continue;
    }
    if (node.op == OpCode::Attention) {
      values[id] = attention(graph, node, values);
      continue;
    }
    if (node.op == OpCode::Scatter) {
      values[id] = scatter(graph, node, values[node.inputs[0]], values[node.inputs[1]]);
      continue;
    }
    int64_t count = numel(node.shape);
    std::vector<double>& out = values[id];
    out.resize(count);
    std::vector<double> args(node.inputs.size());
    for (int64_t i = 0; i < count; ++i) {
      switch (op_info(node.op).kind) {
        case OpKind::Leaf:
          out[i] = node.op == OpCode::Input ? read_input(node, i) : node.params.value;
          break;
        case OpKind::Generator:
          out[i] = generate(node.op, node.params, i);
          break;
        case OpKind::View:
          out[i] = values[node.inputs[0]][node.data.offset + strided_offset(node.shape, node.data.strides, i)];
          break;
        case OpKind::Concat: {
          auto [input, flat] = concat_source(graph, node, i);
          out[i] = values[input][flat];
          break;
        }
        case OpKind::Gather:
          out[i] = values[node.inputs[0]][gather_source(graph, node, i, values[node.inputs[1]])];
          break;
        default:
          for (size_t k = 0; k < node.inputs.size(); ++k) {
            const GraphNode& input = graph.nodes[node.inputs[k]];
            args[k] = values[node.inputs[k]][broadcast_index(input.shape, node.shape, i)];
          }
          out[i] = evaluate_scalar(node.op, args);
      }
    }
  }
  std::vector<std::vector<double>> outputs;
  for (NodeId output : graph.outputs) outputs.push_back(values[output]);
  return outputs;
}

}  // namespace fusejit::ir
