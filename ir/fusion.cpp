// Fusion: groups a graph into kernels and decides which values live in memory.
#include <algorithm>
#include <map>
#include <numeric>
#include <queue>

#include "ir/kernel.h"

namespace fusejit::ir {
namespace {

struct UnionFind {
  std::vector<int32_t> parent;
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int32_t find(int32_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(int32_t a, int32_t b) { parent[find(b)] = find(a); }
};

std::string node_ref(NodeId id) { return "%" + std::to_string(id); }

// Assigns every computed node to a kernel ("group"); -1 for leaves that are inlined.
// Same-shape nodes that are connected, or that read a common value, share a group; groups over
// `max_ops` are cut into runs of consecutive nodes, which keeps the groups acyclic. (Without
// reductions a value only flows into shapes at least as large, so merging same-shape groups
// cannot close a cycle through a group of another shape.)
std::vector<int32_t> group_nodes(const Graph& graph, const FusionOptions& options,
                                 std::map<int32_t, std::string>& cut_notes) {
  size_t n = graph.nodes.size();
  std::vector<bool> is_output(n, false);
  for (NodeId output : graph.outputs) is_output[output] = true;
  auto computed = [&](size_t id) {
    return !graph.nodes[id].is_leaf() || (graph.nodes[id].op == OpCode::Constant && is_output[id]);
  };
  UnionFind sets(n);
  if (options.fuse) {
    // Consumers of one value that have the same shape share a kernel too, so the value is
    // read once (eval({x * 2, exp(x)}) is one pass over x).
    std::map<std::pair<NodeId, Shape>, NodeId> first_consumer;
    for (size_t id = 0; id < n; ++id) {
      const GraphNode& node = graph.nodes[id];
      if (node.is_leaf()) continue;
      for (NodeId input : node.inputs) {
        if (computed(input) && graph.nodes[input].shape == node.shape)
          sets.unite(input, static_cast<int32_t>(id));
        if (graph.nodes[input].op == OpCode::Constant) continue;
        auto [it, first] = first_consumer.try_emplace({input, node.shape}, static_cast<NodeId>(id));
        if (!first) sets.unite(it->second, static_cast<int32_t>(id));
      }
    }
  }
  std::vector<int32_t> group(n, -1);
  std::map<int32_t, std::pair<int32_t, int32_t>> runs;  // set root -> (group, size)
  int32_t groups = 0;
  for (size_t id = 0; id < n; ++id) {
    if (!computed(id)) continue;
    auto [it, fresh] = runs.try_emplace(sets.find(static_cast<int32_t>(id)), groups, 0);
    if (!fresh && it->second.second >= options.max_ops_per_kernel) {
      cut_notes[groups] = "cut before " + node_ref(id) + ": a kernel holds at most " +
                          std::to_string(options.max_ops_per_kernel) + " ops";
      it->second = {groups, 0};
    }
    if (it->second.first == groups) ++groups;
    group[id] = it->second.first;
    ++it->second.second;
  }
  return group;
}

// Reads of one node inside the kernel being built: strides over the kernel's domain.
Strides access_strides(const Shape& shape, const Strides& strides, const Shape& domain) {
  return broadcast_strides(shape, strides, domain);
}

// Merges adjacent domain dims that every access walks contiguously, and drops size-1 dims.
void collapse_domain(Kernel& kernel) {
  std::vector<Strides*> accesses;
  for (KernelOp& op : kernel.ops)
    if (!op.strides.empty()) accesses.push_back(&op.strides);
  Shape domain;
  std::vector<Strides> collapsed(accesses.size());
  for (size_t d = 0; d < kernel.domain.size(); ++d) {
    int64_t size = kernel.domain[d];
    if (size == 1) continue;
    bool merge = !domain.empty();
    for (size_t a = 0; a < accesses.size() && merge; ++a)
      merge = collapsed[a].back() == (*accesses[a])[d] * size;
    if (merge) {
      domain.back() *= size;
      for (size_t a = 0; a < accesses.size(); ++a) collapsed[a].back() = (*accesses[a])[d];
    } else {
      domain.push_back(size);
      for (size_t a = 0; a < accesses.size(); ++a) collapsed[a].push_back((*accesses[a])[d]);
    }
  }
  if (domain.empty()) {
    domain.push_back(1);
    for (auto& strides : collapsed) strides.push_back(0);
  }
  kernel.domain = domain;
  for (size_t a = 0; a < accesses.size(); ++a) *accesses[a] = collapsed[a];
}

}  // namespace

Schedule schedule_kernels(const Graph& graph, const FusionOptions& options) {
  size_t n = graph.nodes.size();
  std::map<int32_t, std::string> cut_notes;
  std::vector<int32_t> group = group_nodes(graph, options, cut_notes);
  int32_t groups = group.empty() ? 0 : *std::max_element(group.begin(), group.end()) + 1;

  std::vector<std::vector<NodeId>> consumers(n);
  for (size_t id = 0; id < n; ++id)
    for (NodeId input : graph.nodes[id].inputs) consumers[input].push_back(static_cast<NodeId>(id));
  std::vector<bool> is_output(n, false);
  for (NodeId output : graph.outputs) is_output[output] = true;

  // Materialize or recompute: decided producers first, so a node's cost counts only the
  // producers that would be recomputed along with it.
  constexpr int kCostCap = 1 << 20;
  std::vector<int> cost(n, 0);
  std::vector<bool> materialized(n, false);
  std::vector<std::string> reason(n);
  for (size_t id = 0; id < n; ++id) {
    const GraphNode& node = graph.nodes[id];
    if (group[id] < 0) continue;
    cost[id] = op_info(node.op).cost;
    for (NodeId input : node.inputs)
      if (!materialized[input]) cost[id] = std::min(kCostCap, cost[id] + cost[input]);
    std::vector<int32_t> other_kernels;
    for (NodeId consumer : consumers[id])
      if (group[consumer] != group[id]) other_kernels.push_back(group[consumer]);
    std::sort(other_kernels.begin(), other_kernels.end());
    other_kernels.erase(std::unique(other_kernels.begin(), other_kernels.end()),
                        other_kernels.end());
    if (is_output[id]) {
      materialized[id] = true;
      reason[id] = "graph output";
    } else if (!options.fuse) {
      materialized[id] = true;
      reason[id] = "eager: every result is materialized";
    } else if (!other_kernels.empty()) {
      std::string where = std::to_string(other_kernels.size()) + " other kernel" +
                          (other_kernels.size() > 1 ? "s" : "") + ", cost " +
                          std::to_string(cost[id]);
      if (cost[id] > options.recompute_cost_limit) {
        materialized[id] = true;
        reason[id] = "consumed by " + where + " > " +
                     std::to_string(options.recompute_cost_limit) + ": expensive";
      } else {
        reason[id] = "recomputed: consumed by " + where + ": cheap";
      }
    }
  }

  Schedule schedule;
  std::vector<int32_t> node_buffer(n, -1);
  auto external_buffer = [&](NodeId id) {
    if (node_buffer[id] < 0) {
      const GraphNode& node = graph.nodes[id];
      node_buffer[id] = static_cast<int32_t>(schedule.buffers.size());
      schedule.buffers.push_back({node.dtype, node.shape, node.data});
    }
    return node_buffer[id];
  };
  for (size_t id = 0; id < n; ++id) {
    if (materialized[id]) {
      node_buffer[id] = static_cast<int32_t>(schedule.buffers.size());
      schedule.buffers.push_back({graph.nodes[id].dtype, graph.nodes[id].shape, {}});
    }
  }

  std::vector<ScheduledKernel> kernels(groups);
  std::vector<std::vector<int32_t>> producer_kernels(groups);
  for (int32_t g = 0; g < groups; ++g) {
    ScheduledKernel& scheduled = kernels[g];
    Kernel& kernel = scheduled.kernel;
    for (size_t id = 0; id < n && kernel.domain.empty(); ++id)
      if (group[id] == g) kernel.domain = graph.nodes[id].shape;
    std::map<NodeId, int32_t> op_of;

    auto emit = [&](KernelOp op) {
      kernel.ops.push_back(std::move(op));
      return static_cast<int32_t>(kernel.ops.size() - 1);
    };
    auto load = [&](NodeId id, int32_t buffer, const Strides& strides, int64_t offset) {
      Strides over_domain = access_strides(graph.nodes[id].shape, strides, kernel.domain);
      for (size_t s = 0; s < kernel.ops.size(); ++s) {
        const KernelOp& op = kernel.ops[s];
        if (op.op == OpCode::Input && scheduled.inputs[op.slot].buffer == buffer &&
            scheduled.inputs[op.slot].offset == offset && op.strides == over_domain)
          return static_cast<int32_t>(s);
      }
      KernelOp op{OpCode::Input, graph.nodes[id].dtype, {}, 0, {}, over_domain};
      op.slot = static_cast<int32_t>(scheduled.inputs.size());
      scheduled.inputs.push_back({buffer, offset});
      kernel.input_dtypes.push_back(graph.nodes[id].dtype);
      return emit(std::move(op));
    };
    // Emits `root` and whatever it needs that is not in memory, producers first.
    auto require = [&](NodeId root) {
      std::vector<std::pair<NodeId, bool>> stack{{root, false}};
      while (!stack.empty()) {
        auto [id, inputs_done] = stack.back();
        stack.pop_back();
        if (op_of.count(id)) continue;
        const GraphNode& node = graph.nodes[id];
        bool in_memory = (materialized[id] && group[id] != g) || node.op == OpCode::Input;
        if (in_memory) {
          op_of[id] = node.op == OpCode::Input
                          ? load(id, external_buffer(id), node.data.strides, node.data.offset)
                          : load(id, node_buffer[id], contiguous_strides(node.shape), 0);
          if (node.op != OpCode::Input) producer_kernels[g].push_back(group[id]);
          continue;
        }
        if (!inputs_done) {
          stack.push_back({id, true});
          for (auto input = node.inputs.rbegin(); input != node.inputs.rend(); ++input)
            if (!op_of.count(*input)) stack.push_back({*input, false});
          continue;
        }
        KernelOp op{node.op, node.dtype, {}, -1, node.params, {}};
        if (node.op == OpCode::Constant) op.params = {.value = node.params.value};
        if (op_info(node.op).kind == OpKind::Generator)
          op.strides = access_strides(node.shape, contiguous_strides(node.shape), kernel.domain);
        for (NodeId input : node.inputs) op.args.push_back(op_of.at(input));
        op_of[id] = emit(std::move(op));
        if (group[id] != g && node.op != OpCode::Constant) {
          scheduled.notes.push_back(node_ref(id) + " " + reason[id]);
        }
      }
    };
    for (size_t id = 0; id < n; ++id) {
      if (group[id] != g) continue;
      require(static_cast<NodeId>(id));
      scheduled.nodes.push_back(static_cast<NodeId>(id));
      if (materialized[id]) {
        kernel.outputs.push_back(op_of.at(static_cast<NodeId>(id)));
        scheduled.outputs.push_back(node_buffer[id]);
        scheduled.output_nodes.push_back(static_cast<NodeId>(id));
        scheduled.notes.push_back(node_ref(id) + " materialized: " + reason[id]);
      }
    }
    collapse_domain(kernel);
  }
  for (auto& [g, note] : cut_notes) kernels[g].notes.insert(kernels[g].notes.begin(), note);

  // Kernels in dependency order (stable: lowest first among the ready ones).
  std::vector<int32_t> pending(groups, 0);
  std::vector<std::vector<int32_t>> dependents(groups);
  for (int32_t g = 0; g < groups; ++g) {
    auto& producers = producer_kernels[g];
    std::sort(producers.begin(), producers.end());
    producers.erase(std::unique(producers.begin(), producers.end()), producers.end());
    pending[g] = static_cast<int32_t>(producers.size());
    for (int32_t p : producers) dependents[p].push_back(g);
  }
  std::priority_queue<int32_t, std::vector<int32_t>, std::greater<>> ready;
  for (int32_t g = 0; g < groups; ++g)
    if (pending[g] == 0) ready.push(g);
  while (!ready.empty()) {
    int32_t g = ready.top();
    ready.pop();
    // A group whose every value was recomputed by its consumers has nothing left to do.
    if (!kernels[g].outputs.empty()) schedule.kernels.push_back(std::move(kernels[g]));
    for (int32_t d : dependents[g])
      if (--pending[d] == 0) ready.push(d);
  }
  for (int32_t g = 0; g < groups; ++g)
    if (pending[g] != 0) throw InternalError("schedule_kernels: kernels depend on each other in a cycle");

  for (NodeId output : graph.outputs)
    schedule.outputs.push_back(graph.nodes[output].op == OpCode::Input ? external_buffer(output)
                                                                       : node_buffer[output]);
  return schedule;
}

}  // namespace fusejit::ir
