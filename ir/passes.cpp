#include "ir/passes.h"

#include <cmath>
#include <cstring>
#include <unordered_map>

#include "ir/reference.h"

namespace fusejit::ir {
namespace {

// Rebuilds a graph node by node. `rewrite(out, node)` receives each node with its inputs
// already renamed into `out` and returns the id that stands for it there.
template <class Rewrite>
Graph rebuild(const Graph& graph, Rewrite rewrite) {
  Graph out;
  std::vector<NodeId> renamed(graph.nodes.size(), -1);
  for (size_t id = 0; id < graph.nodes.size(); ++id) {
    GraphNode node = graph.nodes[id];
    for (NodeId& input : node.inputs) input = renamed[input];
    renamed[id] = rewrite(out, std::move(node), static_cast<NodeId>(id));
  }
  for (NodeId output : graph.outputs) out.outputs.push_back(renamed[output]);
  return out;
}

bool is_constant(const Graph& graph, NodeId id, double value) {
  const GraphNode& node = graph.nodes[id];
  return node.op == OpCode::Constant && node.params.value == value;
}

}  // namespace

Graph eliminate_dead_code(const Graph& graph) {
  std::vector<bool> live(graph.nodes.size(), false);
  for (NodeId output : graph.outputs) live[output] = true;
  for (size_t id = graph.nodes.size(); id-- > 0;)
    if (live[id])
      for (NodeId input : graph.nodes[id].inputs) live[input] = true;
  return rebuild(graph, [&](Graph& out, GraphNode node, NodeId old_id) {
    return live[old_id] ? out.add(std::move(node)) : NodeId{-1};
  });
}

Graph eliminate_common_subexpressions(const Graph& graph) {
  std::unordered_map<std::string, NodeId> seen;
  return rebuild(graph, [&](Graph& out, GraphNode node, NodeId) {
    std::string key(op_name(node.op));
    key += '|' + std::to_string(static_cast<int>(node.dtype)) + shape_string(node.shape);
    for (NodeId input : node.inputs) key += ',' + std::to_string(input);
    char params[sizeof(OpParams)];
    std::memcpy(params, &node.params, sizeof params);
    key.append(params, sizeof params);
    if (node.op == OpCode::Input) {
      key += std::to_string(reinterpret_cast<uintptr_t>(node.data.storage.get())) +
             shape_string(node.data.strides) + std::to_string(node.data.offset);
    }
    auto [it, inserted] = seen.emplace(std::move(key), -1);
    if (inserted) it->second = out.add(std::move(node));
    return it->second;
  });
}

Graph fold_constants(const Graph& graph) {
  return rebuild(graph, [&](Graph& out, GraphNode node, NodeId) {
    if (!is_elementwise(node.op) || node.inputs.empty()) return out.add(std::move(node));
    std::vector<double> args;
    for (NodeId input : node.inputs) {
      if (out.nodes[input].op != OpCode::Constant) return out.add(std::move(node));
      args.push_back(out.nodes[input].params.value);
    }
    double value = evaluate_scalar(node.op, args);
    if (node.dtype == DType::Float32) value = static_cast<float>(value);
    GraphNode constant{OpCode::Constant, node.dtype, node.shape, {}, {.value = value}, {}};
    return out.add(std::move(constant));
  });
}

Graph simplify_algebra(const Graph& graph) {
  return rebuild(graph, [&](Graph& out, GraphNode node, NodeId) {
    auto same_type = [&](NodeId id) {
      return out.nodes[id].shape == node.shape && out.nodes[id].dtype == node.dtype;
    };
    const auto& in = node.inputs;
    switch (node.op) {
      case OpCode::Mul:
        if (is_constant(out, in[1], 1) && same_type(in[0])) return in[0];
        if (is_constant(out, in[0], 1) && same_type(in[1])) return in[1];
        break;
      case OpCode::Add:
        if (is_constant(out, in[1], 0) && same_type(in[0])) return in[0];
        if (is_constant(out, in[0], 0) && same_type(in[1])) return in[1];
        break;
      case OpCode::Sub:
        if (is_constant(out, in[1], 0) && same_type(in[0])) return in[0];
        break;
      case OpCode::Div:
        if (is_constant(out, in[1], 1) && same_type(in[0])) return in[0];
        break;
      case OpCode::Neg:
        if (out.nodes[in[0]].op == OpCode::Neg) return out.nodes[in[0]].inputs[0];
        break;
      default:
        break;
    }
    return out.add(std::move(node));
  });
}

Graph run_passes(Graph graph, std::string* trace) {
  struct Pass {
    const char* name;
    Graph (*run)(const Graph&);
  };
  static constexpr Pass kPasses[] = {{"fold-constants", fold_constants},
                                     {"simplify-algebra", simplify_algebra},
                                     {"cse", eliminate_common_subexpressions},
                                     {"dce", eliminate_dead_code}};
  for (const Pass& pass : kPasses) {
    graph = pass.run(graph);
    verify(graph);
    if (trace) *trace += std::string("after ") + pass.name + ":\n" + print(graph);
  }
  return graph;
}

}  // namespace fusejit::ir
