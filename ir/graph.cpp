#include "ir/graph.h"

#include <cstdio>

#include "ir/layout.h"

namespace fusejit::ir {

std::vector<int32_t> Graph::use_counts() const {
  std::vector<int32_t> uses(nodes.size(), 0);
  for (const auto& node : nodes)
    for (NodeId input : node.inputs) ++uses[input];
  for (NodeId output : outputs) ++uses[output];
  return uses;
}

namespace {

std::string type_string(DType dtype, const Shape& shape) {
  return std::string(dtype_name(dtype)) + shape_string(shape);
}

std::string types_string(std::span<const OperandType> inputs) {
  std::string text;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i) text += ", ";
    text += type_string(inputs[i].dtype, *inputs[i].shape);
  }
  return text;
}

}  // namespace

std::string describe_node(const Graph& graph, NodeId id) {
  const GraphNode& node = graph.nodes[id];
  std::string text(op_name(node.op));
  if (!node.inputs.empty()) {
    text += "(";
    for (size_t i = 0; i < node.inputs.size(); ++i) text += (i ? ", %" : "%") + std::to_string(node.inputs[i]);
    text += ")";
  }
  std::string params = node.params.text(node.op);
  if (!params.empty()) text += " " + params;
  bool strided = !is_contiguous(node.shape, node.data.strides) || node.data.offset != 0;
  if (node.op == OpCode::View || node.op == OpCode::Scatter || (node.op == OpCode::Input && strided))
    text += " strides=" + shape_string(node.data.strides) + " offset=" + std::to_string(node.data.offset);
  return text + " : " + type_string(node.dtype, node.shape);
}

PartRegion part_region(const Graph& graph, const GraphNode& node, size_t k) {
  Strides strides = contiguous_strides(node.shape);
  if (node.op == OpCode::Scatter) return k == 0 ? PartRegion{strides, 0} : PartRegion{node.data.strides, node.data.offset};
  auto dim = static_cast<size_t>(node.params.dim);
  int64_t start = 0;
  for (size_t i = 0; i < k; ++i) start += graph.nodes[node.inputs[i]].shape[dim];
  return {strides, start * strides[dim]};
}

std::string print(const Graph& graph) {
  std::string text;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    text += "  %" + std::to_string(i) + " = " + describe_node(graph, static_cast<NodeId>(i)) + "\n";
  text += "  outputs:";
  for (NodeId output : graph.outputs) text += " %" + std::to_string(output);
  return text + "\n";
}

TypedShape infer_type(OpCode op, std::span<const OperandType> inputs) {
  const OpInfo& info = op_info(op);
  auto fail = [&](const std::string& why) -> TypedShape {
    throw Error(std::string(info.name) + ": " + why + " (inputs: " + types_string(inputs) + ")");
  };
  if (static_cast<int>(inputs.size()) != info.arity)
    return fail("expects " + std::to_string(info.arity) + " inputs");
  auto expect_dtype = [&](size_t i, DType dtype) {
    if (inputs[i].dtype != dtype)
      fail("input " + std::to_string(i) + " must be " + dtype_name(dtype));
  };
  std::optional<Shape> merged = inputs.size() < 2 ? std::optional<Shape>(inputs.empty() ? Shape{} : *inputs[0].shape)
                                                 : broadcast_shapes(*inputs[0].shape, *inputs[1].shape);
  for (size_t i = 2; i < inputs.size() && merged; ++i) merged = broadcast_shapes(*merged, *inputs[i].shape);
  if (!merged) return fail("shapes cannot be broadcast together");
  Shape& shape = *merged;
  if (!addressable(shape))
    return fail("the result of shape " + shape_string(shape) + " has too many elements to address");
  switch (info.kind) {
    case OpKind::Leaf:
    case OpKind::Generator:
      return fail("has no inputs to infer from");
    case OpKind::Reduce:
      return fail("needs its dims (see reduced_shape)");
    case OpKind::View:
      return fail("needs its strides (see ir/layout)");
    case OpKind::Concat:
    case OpKind::Gather:
      return fail("needs its dim");
    case OpKind::Scatter:
      return fail("needs its strides");
    case OpKind::MatMul:
      return fail("is typed by matmul_shape");
    case OpKind::Attention:
      return fail("is typed by attention_shape");
    case OpKind::Unary:
    case OpKind::Binary:
    case OpKind::Ternary:
      for (size_t i = 0; i < inputs.size(); ++i) expect_dtype(i, DType::Float32);
      return {DType::Float32, std::move(shape)};
    case OpKind::Compare:
      for (size_t i = 0; i < inputs.size(); ++i) expect_dtype(i, DType::Float32);
      return {DType::Bool, std::move(shape)};
    case OpKind::Select:
      expect_dtype(0, DType::Bool);
      expect_dtype(1, DType::Float32);
      expect_dtype(2, DType::Float32);
      return {DType::Float32, std::move(shape)};
    case OpKind::ToFloat:
      if (inputs[0].dtype == DType::Float32) fail("input 0 must be bool or i64");
      return {DType::Float32, std::move(shape)};
    case OpKind::ToInt64:
      expect_dtype(0, DType::Float32);
      return {DType::Int64, std::move(shape)};
    case OpKind::ToBool:
      expect_dtype(0, DType::Float32);
      return {DType::Bool, std::move(shape)};
    case OpKind::Identity:
      return {inputs[0].dtype, std::move(shape)};
  }
  return fail("unknown op kind");
}

void verify(const Graph& graph) {
  auto fail = [&](size_t id, const std::string& why) {
    throw InternalError("verify: %" + std::to_string(id) + " = " +
                        describe_node(graph, static_cast<NodeId>(id)) + ": " + why);
  };
  for (size_t id = 0; id < graph.nodes.size(); ++id) {
    const GraphNode& node = graph.nodes[id];
    const OpInfo& info = op_info(node.op);
    if (info.arity >= 0 ? static_cast<int>(node.inputs.size()) != info.arity : node.inputs.empty())
      fail(id, "wrong number of inputs");
    std::vector<OperandType> inputs;
    for (NodeId input : node.inputs) {
      if (input < 0 || static_cast<size_t>(input) >= id) fail(id, "input not defined before use");
      inputs.push_back({graph.nodes[input].dtype, &graph.nodes[input].shape});
    }
    if (!addressable(node.shape)) fail(id, "invalid shape");
    if (node.op == OpCode::Input) {
      if (!node.data.storage) fail(id, "input without data");
      if (node.data.strides.size() != node.shape.size()) fail(id, "strides do not match shape");
    } else if (info.kind == OpKind::Reduce) {
      const Shape& in = *inputs[0].shape;
      uint64_t axes = node.params.axes;
      if (inputs[0].dtype != DType::Float32 || node.dtype != DType::Float32) fail(id, "must be f32");
      if (axes == 0 || (in.size() < 64 && axes >> in.size() != 0)) fail(id, "dims out of range");
      Shape expected = node.params.chunk ? chunked_shape(in, axes, node.params.chunk)
                                         : reduced_shape(in, axes, node.shape.size() == in.size());
      if (node.shape != expected) fail(id, "shape differs from its input's reduced shape");
    } else if (node.op == OpCode::Gather) {
      auto dim = static_cast<size_t>(node.params.dim);
      const Shape& from = *inputs[0].shape;
      Shape expected = from, index(from.size(), 1);
      if (dim < from.size()) expected[dim] = index[dim] = node.shape[dim];
      if (dim >= from.size() || *inputs[1].shape != index || inputs[1].dtype != DType::Int64 ||
          node.dtype != inputs[0].dtype || node.shape != expected)
        fail(id, "type differs from an index_select of its inputs");
    } else if (node.op == OpCode::Concat) {
      auto dim = static_cast<size_t>(node.params.dim);
      if (dim >= node.shape.size()) fail(id, "dim out of range");
      int64_t joined = 0;
      for (const OperandType& input : inputs) {
        Shape part = node.shape;
        part[dim] = (*input.shape)[dim < input.shape->size() ? dim : 0];
        if (input.dtype != node.dtype || *input.shape != part) fail(id, "an input's type does not fit");
        joined += part[dim];
      }
      if (joined != node.shape[dim]) fail(id, "its inputs do not add up to its size");
    } else if (node.op == OpCode::Scatter) {
      if (inputs[0].dtype != node.dtype || inputs[1].dtype != node.dtype || *inputs[0].shape != node.shape)
        fail(id, "its first input's type differs from its own");
      if (node.data.strides.size() != inputs[1].shape->size() ||
          !within(*inputs[1].shape, node.data.strides, node.data.offset, numel(node.shape)))
        fail(id, "its second input's region lies outside it");
    } else if (node.op == OpCode::MatMul) {
      std::optional<Shape> expected = matmul_shape(*inputs[0].shape, *inputs[1].shape);
      if (inputs[0].dtype != DType::Float32 || inputs[1].dtype != DType::Float32 || node.dtype != DType::Float32 ||
          !expected || node.shape != *expected)
        fail(id, "type differs from a matmul of its inputs");
    } else if (node.op == OpCode::Attention) {
      bool masked = inputs.size() == 5;
      std::optional<Shape> expected =
          inputs.size() < 4 || inputs.size() > 5
              ? std::nullopt
              : attention_shape(*inputs[0].shape, *inputs[1].shape, *inputs[2].shape, *inputs[3].shape,
                                masked ? inputs[4].shape : nullptr);
      bool floats = std::all_of(inputs.begin(), inputs.begin() + std::min<size_t>(4, inputs.size()),
                                [](const OperandType& input) { return input.dtype == DType::Float32; });
      if (!expected || !floats || node.shape != *expected || node.dtype != DType::Float32 ||
          (masked && inputs[4].dtype != DType::Float32 && inputs[4].dtype != DType::Bool) ||
          (node.params.dim & ~(kAttentionCausal | kAttentionDivides)) != 0)
        fail(id, "type differs from an attention of its inputs");
      if (op_info(graph.nodes[node.inputs[3]].op).pattern != FusionPattern::Broadcast)
        fail(id, "its scale is not a value (Scalar or Constant)");
    } else if (node.op == OpCode::View) {
      if (node.data.storage) fail(id, "a view with storage");
      if (node.data.strides.size() != node.shape.size()) fail(id, "strides do not match shape");
      if (node.dtype != inputs[0].dtype) fail(id, "dtype differs from its input's");
      if (!within(node.shape, node.data.strides, node.data.offset, numel(*inputs[0].shape)))
        fail(id, "addresses elements outside its input of shape " + shape_string(*inputs[0].shape));
    } else if (info.kind != OpKind::Leaf && info.kind != OpKind::Generator) {
      TypedShape expected = infer_type(node.op, inputs);
      if (expected.dtype != node.dtype || expected.shape != node.shape)
        fail(id, "type differs from its inputs' " + type_string(expected.dtype, expected.shape));
    }
    // An assembled node's parts are stored into it by the kernels that compute them.
    if (is_assembled(node.op))
      for (NodeId input : node.inputs)
        if (graph.nodes[input].is_leaf() || graph.nodes[input].op == OpCode::View ||
            is_assembled(graph.nodes[input].op))
          fail(id, "an input is not computed");
  }
  for (NodeId output : graph.outputs)
    if (output < 0 || static_cast<size_t>(output) >= graph.nodes.size())
      throw InternalError("verify: output %" + std::to_string(output) + " does not exist");
}

}  // namespace fusejit::ir
