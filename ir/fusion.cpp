// Fusion: groups a graph into kernels and decides which values live in memory.
#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <queue>
#include <set>

#include "ir/fusion_rules.h"

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

// A value broadcast over its shape (Constant, Scalar): inlined wherever it is used.
bool is_value_leaf(OpCode op) { return op_info(op).pattern == FusionPattern::Broadcast; }

// Ops a MatMul's operand prologue may compute: each element of the operand from the same
// element of the values it reads, or from its index.
bool recomputable_in_operand(OpCode op) {
  return is_elementwise(op) || is_value_leaf(op) || op_info(op).kind == OpKind::Generator;
}

// The nodes whose stored values `consumer` reads from memory when it reads `input`: a view's
// input, a concatenation's parts (also through a view of it), a gathered input itself, a
// matmul's or attention's operand itself (unless a value broadcast over its shape); none for
// other inputs.
std::vector<NodeId> memory_sources(const Graph& graph, const GraphNode& consumer, NodeId input) {
  const GraphNode& node = graph.nodes[input];
  bool read_whole = (consumer.op == OpCode::Gather && input == consumer.inputs[0]) ||
                    (is_product(consumer.op) && !is_value_leaf(node.op));
  if (read_whole && node.op != OpCode::View && !is_assembled(node.op)) return {input};
  if (node.op == OpCode::View) {
    NodeId viewed = node.inputs[0];
    if (is_assembled(graph.nodes[viewed].op)) return graph.nodes[viewed].inputs;
    return {viewed};
  }
  if (is_assembled(node.op)) return node.inputs;
  return {};
}

// Whether `id` is a part of an assembled node (is_assembled), which its kernel stores.
bool stored_as_part(const std::vector<std::vector<NodeId>>& consumers, const Graph& graph, NodeId id) {
  return std::any_of(consumers[id].begin(), consumers[id].end(),
                     [&](NodeId consumer) { return is_assembled(graph.nodes[consumer].op); });
}

// The first part of the Scatter that `id` is the second part of, or -1: it must be stored
// before `id`, by an earlier kernel.
NodeId overwritten_part(const std::vector<std::vector<NodeId>>& consumers, const Graph& graph, NodeId id) {
  for (NodeId consumer : consumers[id]) {
    const GraphNode& scatter = graph.nodes[consumer];
    if (scatter.op == OpCode::Scatter && scatter.inputs[1] == id) return scatter.inputs[0];
  }
  return -1;
}

// Strides over `domain` of a value of `shape` (with `strides`) that is a per-row value of a
// reduction over `axes`: the reduced dims are either kept as size 1 or dropped from `shape`.
Strides row_strides(const Shape& shape, const Strides& strides, const Shape& domain, uint64_t axes) {
  if (shape.size() == domain.size()) return broadcast_strides(shape, strides, domain);
  Strides out;
  size_t next = 0;
  for (size_t d = 0; d < domain.size(); ++d)
    out.push_back(reduces_dim(axes, d) ? 0 : strides[next++]);
  return out;
}

// The kernels fusion formed: each computed node's kernel (-1 for leaves that are inlined),
// each kernel's space, and (when explaining) why kernels stayed apart.
struct Grouping {
  std::vector<int32_t> kernel_of;
  std::vector<Space> spaces;
  std::map<int32_t, std::string> cut_notes;  // kernel -> why a chain was cut before it
  // (producer, consumer) -> why the consumer did not join the producer's kernel
  struct Refused {
    bool merging;  // the producer's kernel could not merge into another one the consumer tried
    std::string reason;
  };
  std::map<std::pair<NodeId, NodeId>, Refused> refusals;
};

// Assigns every computed node to a kernel ("group").
//
// Nodes are taken in order; each joins the first group of its operands (or of another consumer
// of the same value over the same space, so eval({x * 2, exp(x)}) and eval({x * 2, sum(x, {1})})
// are one pass over x) that the rules (ir/fusion_rules) let it join without a cycle between
// groups, and the other such groups are merged in when the rules allow. A group iterates over
// one space: an elementwise group over its shape, a reduction group over the reductions' input.
// There, nodes of that shape compute per element (the prologue, and for row reductions also
// what broadcasts a per-row value back); other nodes of a row reduction group compute per row.
// Elementwise groups over `max_ops` are cut into runs of consecutive nodes.
Grouping group_nodes(const Graph& graph, const FusionOptions& options) {
  size_t n = graph.nodes.size();
  std::vector<bool> is_output(n, false);
  for (NodeId output : graph.outputs) is_output[output] = true;
  std::vector<std::vector<NodeId>> consumers(n);
  for (size_t id = 0; id < n; ++id)
    for (NodeId input : graph.nodes[id].inputs) consumers[input].push_back(static_cast<NodeId>(id));
  // Views and concatenations compute nothing: their consumers' loads read memory.
  auto computed = [&](size_t id) {
    const GraphNode& node = graph.nodes[id];
    if (node.op == OpCode::View || is_assembled(node.op)) return false;
    return !node.is_leaf() || (is_value_leaf(node.op) && is_output[id]);
  };
  Grouping grouping;
  std::vector<int32_t> group(n, -1);
  std::vector<Group> groups;
  UnionFind merged(0);
  auto find = [&](int32_t g) { return merged.find(g); };
  // Per node: computed per row, or per element after reading a per-row value of its group.
  std::vector<bool> per_row(n, false), after_row(n, false);
  // Per node: how many reductions of its group it depends on, itself included. A row kernel
  // sweeps each row once per stage and recomputes earlier stages' values in later sweeps, so
  // its work and compile time grow with the square of its stages.
  std::vector<int32_t> stage(n, 0);
  auto in_group = [&](NodeId input, int32_t g) { return group[input] >= 0 && find(group[input]) == g; };
  auto stage_in = [&](int32_t g, size_t id) {
    int32_t deepest = 0;
    for (NodeId input : graph.nodes[id].inputs)
      if (in_group(input, g)) deepest = std::max(deepest, stage[input]);
    return deepest + (is_reduction(graph.nodes[id].op) ? 1 : 0);
  };
  // What node `id` brings to group `g`.
  auto joining = [&](int32_t g, size_t id) {
    const GraphNode& node = graph.nodes[id];
    Joining facts{node, space_of(graph, static_cast<NodeId>(id)), stage_in(g, id)};
    facts.stores_into_concat = stored_as_part(consumers, graph, static_cast<NodeId>(id));
    const Space& domain = groups[g].space;
    for (NodeId input : node.inputs) {
      if (!in_group(input, g)) continue;
      facts.reads_row_value = facts.reads_row_value || per_row[input] || after_row[input];
      if (!per_row[input]) continue;
      const Shape& shape = graph.nodes[input].shape;
      Strides strides = contiguous_strides(shape);
      if (broadcast_strides(shape, strides, domain.domain) != row_strides(shape, strides, domain.domain, domain.axes))
        facts.row_values_broadcast_back = false;
    }
    return facts;
  };

  auto depends = [&](int32_t from, int32_t target) {
    std::vector<int32_t> stack{from};
    std::vector<bool> seen(groups.size(), false);
    while (!stack.empty()) {
      int32_t g = find(stack.back());
      stack.pop_back();
      if (g == target) return true;
      if (seen[g]) continue;
      seen[g] = true;
      for (int32_t r : groups[g].reads)
        if (find(r) != g) stack.push_back(r);
    }
    return false;
  };
  // Notes why `id` did not join group `g`, against each of its inputs computed there: `g`
  // refused it, or (`into` set) `g` could not merge into the group `into` it tried. The first
  // refusal by the producer's own group is the one kept.
  auto refused = [&](int32_t g, size_t id, const FusionDecision& decision, int32_t into = -1) {
    if (!options.explain) return;
    const GraphNode& node = graph.nodes[id];
    bool merging = into >= 0;
    Space consumer = merging ? groups[into].space : space_of(graph, static_cast<NodeId>(id));
    for (NodeId input : node.inputs) {
      if (!in_group(input, g) || is_value_leaf(graph.nodes[input].op)) continue;
      auto [it, fresh] = grouping.refusals.try_emplace({input, static_cast<NodeId>(id)});
      if (fresh || (it->second.merging && !merging))
        it->second = {merging, explain(decision, consumer, groups[g].space, options, merging)};
    }
  };
  auto add_reads = [&](int32_t g, size_t id) {
    for (NodeId input : graph.nodes[id].inputs) {
      std::vector<NodeId> sources = memory_sources(graph, graph.nodes[id], input);
      if (sources.empty()) sources = {input};
      for (NodeId source : sources)
        if (group[source] >= 0 && find(group[source]) != g) groups[g].reads.push_back(group[source]);
    }
    NodeId overwritten = overwritten_part(consumers, graph, static_cast<NodeId>(id));
    if (overwritten >= 0 && group[overwritten] >= 0) groups[g].reads.push_back(group[overwritten]);
  };
  auto join = [&](int32_t g, size_t id, bool row) {
    stage[id] = stage_in(g, id);
    ++groups[g].size;
    groups[g].stores_into_concat =
        groups[g].stores_into_concat || stored_as_part(consumers, graph, static_cast<NodeId>(id));
    group[id] = g;
    groups[g].contracts = groups[g].contracts || is_product(graph.nodes[id].op);
    per_row[id] = row;
    for (NodeId input : graph.nodes[id].inputs)
      if (in_group(input, g) && (per_row[input] || after_row[input])) after_row[id] = !row;
    if (is_reduction(graph.nodes[id].op) && !groups[g].reduces()) {
      groups[g].space = space_of(graph, static_cast<NodeId>(id));
      groups[g].rows = reduces_trailing_dims(groups[g].space);
    }
    add_reads(g, id);
  };
  // Merges group `other` into `g` when the rules allow; else notes why for `id`'s inputs there.
  auto try_merge = [&](int32_t g, int32_t other, size_t id) {
    Group& a = groups[g];
    Group& b = groups[other];
    FusionDecision decision =
        can_merge(a, b, [&] { return depends(g, other) || depends(other, g); }, options);
    if (!decision) {
      refused(other, id, decision, g);
      return;
    }
    a.size += b.size;
    a.stores_into_concat = a.stores_into_concat || b.stores_into_concat;
    a.contracts = a.contracts || b.contracts;
    if (!a.reduces()) {
      a.space = b.space;
      a.rows = b.rows;
    }
    a.reads.insert(a.reads.end(), b.reads.begin(), b.reads.end());
    merged.parent[other] = g;
  };

  std::map<std::pair<NodeId, Shape>, NodeId> first_consumer;
  for (size_t id = 0; id < n; ++id) {
    if (!computed(id)) continue;
    const GraphNode& node = graph.nodes[id];
    std::vector<int32_t> candidates;
    if (options.fuse) {
      for (NodeId input : node.inputs)
        if (group[input] >= 0) candidates.push_back(find(group[input]));
      Shape domain = space_of(graph, static_cast<NodeId>(id)).domain;
      for (NodeId input : node.inputs) {
        if (is_value_leaf(graph.nodes[input].op)) continue;
        auto [it, first] = first_consumer.try_emplace({input, domain}, static_cast<NodeId>(id));
        if (!first && group[it->second] >= 0) candidates.push_back(find(group[it->second]));
      }
    } else {
      for (NodeId input : node.inputs)
        if (group[input] >= 0) refused(find(group[input]), id, FusionDecision::refuse(Refusal::Eager));
    }
    int32_t chosen = -1;
    for (int32_t g : candidates) {
      g = find(g);
      for (int32_t other : candidates)
        if (find(other) != g) try_merge(g, find(other), id);
      FusionDecision decision = can_join(groups[g], joining(g, id), options);
      if (decision) {
        NodeId overwritten = overwritten_part(consumers, graph, static_cast<NodeId>(id));
        if (overwritten >= 0 && in_group(overwritten, g)) decision = FusionDecision::refuse(Refusal::OverwritesPart);
        // It is stored after the part it overwrites, so that part's kernel must not wait for this one.
        else if (overwritten >= 0 && group[overwritten] >= 0 && depends(group[overwritten], g))
          decision = FusionDecision::refuse(Refusal::Cycle);
        for (NodeId input : node.inputs) {
          std::vector<NodeId> sources = memory_sources(graph, node, input);
          bool from_memory = !sources.empty();
          if (sources.empty()) sources = {input};
          for (NodeId source : sources) {
            if (from_memory && in_group(source, g))
              decision = FusionDecision::refuse(Refusal::ReadsThroughView);
            else if (decision && group[source] >= 0 && find(group[source]) != g && depends(group[source], g))
              decision = FusionDecision::refuse(Refusal::Cycle);
          }
        }
      }
      if (!decision) {
        refused(g, id, decision);
        continue;
      }
      join(g, id, decision.row);
      chosen = g;
      break;
    }
    if (chosen < 0) {
      Space space = space_of(graph, static_cast<NodeId>(id));
      bool rows = space.axes != 0 && reduces_trailing_dims(space);
      chosen = static_cast<int32_t>(groups.size());
      groups.push_back({space, rows, {}});
      merged.parent.push_back(chosen);
      join(chosen, id, is_reduction(node.op));
    }
  }

  // Number the groups in order of their first node; cut long elementwise groups into runs.
  std::vector<int32_t>& out = grouping.kernel_of;
  out.assign(n, -1);
  std::map<int32_t, std::pair<int32_t, int32_t>> runs;  // group -> (kernel, size)
  int32_t kernels = 0;
  for (size_t id = 0; id < n; ++id) {
    if (group[id] < 0) continue;
    int32_t g = find(group[id]);
    auto [it, fresh] = runs.try_emplace(g, kernels, 0);
    if (!fresh && !groups[g].reduces() && it->second.second >= options.max_ops_per_kernel) {
      grouping.cut_notes[kernels] = "cut before " + node_ref(static_cast<NodeId>(id)) +
                                    ": a kernel holds at most " +
                                    std::to_string(options.max_ops_per_kernel) + " ops";
      it->second = {kernels, 0};
    }
    if (it->second.first == kernels) {
      grouping.spaces.push_back(groups[g].space);
      ++kernels;
    }
    out[id] = it->second.first;
    ++it->second.second;
  }
  if (options.explain) {
    for (size_t id = 0; id < n; ++id)
      for (NodeId input : graph.nodes[id].inputs)
        if (out[id] >= 0 && out[input] >= 0 && out[input] != out[id] && group[input] >= 0 &&
            find(group[input]) == find(group[id]))
          grouping.refusals[{input, static_cast<NodeId>(id)}] = {
              false, explain(FusionDecision::refuse(Refusal::ChainCut), {}, {}, options)};
  }
  return grouping;
}

// Merges adjacent domain dims that every access walks contiguously (never a reduced dim with a
// kept one), drops size-1 dims, and sets the kernel's reduced range and chunk from `space`.
void collapse_domain(Kernel& kernel, const Space& space) {
  // A matmul's or attention's operands address their own [rows, columns]: its domain stays.
  kernel.kind = classify(kernel);
  if (kernel.kind == KernelKind::MatMul || kernel.kind == KernelKind::Attention) return;
  std::vector<Strides*> accesses;
  for (KernelOp& op : kernel.ops)
    if (op.op == OpCode::Input || op.op == OpCode::Gather || op_info(op.op).kind == OpKind::Generator)
      accesses.push_back(&op.strides);
  for (Strides& strides : kernel.output_strides) accesses.push_back(&strides);
  Shape domain;
  std::vector<bool> reduced;
  std::vector<Strides> collapsed(accesses.size());
  for (size_t d = 0; d < kernel.domain.size(); ++d) {
    int64_t size = kernel.domain[d];
    if (size == 1) continue;
    bool reduces = reduces_dim(space.axes, d);
    bool merge = !domain.empty() && reduced.back() == reduces;
    for (size_t a = 0; a < accesses.size() && merge; ++a)
      merge = collapsed[a].back() == (*accesses[a])[d] * size;
    if (merge) {
      domain.back() *= size;
      for (size_t a = 0; a < accesses.size(); ++a) collapsed[a].back() = (*accesses[a])[d];
    } else {
      domain.push_back(size);
      reduced.push_back(reduces);
      for (size_t a = 0; a < accesses.size(); ++a) collapsed[a].push_back((*accesses[a])[d]);
    }
  }
  // A reduction over size-1 dims only still needs a (trivial) reduced dim.
  bool any_reduced = std::find(reduced.begin(), reduced.end(), true) != reduced.end();
  if (domain.empty() || (space.axes != 0 && !any_reduced)) {
    domain.push_back(1);
    reduced.push_back(space.axes != 0);
    for (auto& strides : collapsed) strides.push_back(0);
  }
  if (space.chunk) {
    size_t split = first_split_dim(kernel.domain);
    kernel.chunk = split < kernel.domain.size()
                       ? space.chunk * (domain[0] / kernel.domain[split]) : domain[0];
  }
  auto first = std::find(reduced.begin(), reduced.end(), true);
  auto last = std::find(first, reduced.end(), false);
  if (std::find(last, reduced.end(), true) != reduced.end())
    throw InternalError("collapse_domain: reduced dims are not contiguous");
  kernel.reduce_begin = static_cast<int32_t>(first - reduced.begin());
  kernel.reduce_end = static_cast<int32_t>(last - reduced.begin());
  kernel.domain = domain;
  for (size_t a = 0; a < accesses.size(); ++a) *accesses[a] = collapsed[a];
  kernel.kind = classify(kernel);
}

}  // namespace

Schedule schedule_kernels(const Graph& graph, const FusionOptions& options) {
  size_t n = graph.nodes.size();
  Grouping grouping = group_nodes(graph, options);
  const std::vector<int32_t>& group = grouping.kernel_of;
  const std::vector<Space>& spaces = grouping.spaces;
  auto groups = static_cast<int32_t>(spaces.size());

  std::vector<std::vector<NodeId>> consumers(n);
  for (size_t id = 0; id < n; ++id)
    for (NodeId input : graph.nodes[id].inputs) consumers[input].push_back(static_cast<NodeId>(id));
  std::vector<bool> is_output(n, false), in_place(n, false);
  for (size_t o = 0; o < graph.outputs.size(); ++o) {
    is_output[graph.outputs[o]] = true;
    if (o < graph.in_place.size() && graph.in_place[o]) in_place[graph.outputs[o]] = true;
  }

  // Materialize or recompute: decided producers first, so a node's cost counts only the
  // producers that would be recomputed along with it.
  constexpr int kCostCap = 1 << 20;
  enum class Boundary : uint8_t { Inside, Output, Viewed, Joined, Eager, NeverRecomputed, Expensive, Cheap, ForPrologue };
  std::vector<int> cost(n, 0);
  std::vector<bool> materialized(n, false);
  std::vector<Boundary> boundary(n, Boundary::Inside);
  std::vector<size_t> other_kernel_count(n, 0);
  // Whether recomputing `id` in another kernel computes only elementwise ops and generators
  // over the values it reads (stored ones, and values broadcast over their shapes).
  auto recomputes_elementwise = [&](size_t id) {
    std::vector<size_t> stack{id};
    while (!stack.empty()) {
      size_t at = stack.back();
      stack.pop_back();
      const GraphNode& node = graph.nodes[at];
      if (group[at] < 0 || (at != id && materialized[at])) continue;
      if (!recomputable_in_operand(node.op)) return false;
      for (NodeId input : node.inputs) stack.push_back(static_cast<size_t>(input));
    }
    return true;
  };
  // Whether `reader` reads `id` from memory (through a view, as a gathered input, or as a
  // product's operand), not element by element in its own kernel.
  auto reads_stored = [&](const GraphNode& reader, size_t id) {
    return reader.op == OpCode::View || is_product(reader.op) ||
           (reader.op == OpCode::Gather && reader.inputs[0] == static_cast<NodeId>(id));
  };
  // A MatMul of enough result rows to pack its operands (kPackedProductRows).
  auto packs_operands = [](const GraphNode& reader) {
    return reader.op == OpCode::MatMul && reader.shape.end()[-2] >= kPackedProductRows;
  };
  // Whether MatMul `reader` computes its operand `id` while packing it (the operand's
  // prologue) rather than reading it stored: when fusing, for results of enough rows to pack,
  // and for values whose recomputation is elementwise. Whether `id` is then recomputed is the
  // rule below's (its cost), as for any consumer kernel.
  auto applies_prologue = [&](const GraphNode& reader, size_t id) {
    return options.fuse && packs_operands(reader) && recomputes_elementwise(id);
  };
  // When the only readers of `id` that read it stored are MatMuls that pack it, and
  // recomputing `id` reaches reductions only through values smaller than it (a layer_norm's
  // per-row mean and 1/std), with ops above those within the recompute limit: those values are
  // stored instead (Boundary::ForPrologue), and the MatMuls compute `id` from them while packing
  // it, rather than reading it stored whole.
  auto store_values_for_prologue = [&](size_t id) {
    const GraphNode& node = graph.nodes[id];
    if (!options.fuse || is_output[id] || cost[id] <= options.recompute_cost_limit) return;
    bool packing_readers = false;
    for (NodeId consumer : consumers[id]) {
      const GraphNode& reader = graph.nodes[consumer];
      if (!reads_stored(reader, id)) continue;
      if (!packs_operands(reader)) return;
      packing_readers = true;
    }
    if (!packing_readers) return;
    std::vector<size_t> stored, stack{id};
    std::set<size_t> seen;
    int above = 0;
    while (!stack.empty()) {
      size_t at = stack.back();
      stack.pop_back();
      const GraphNode& value = graph.nodes[at];
      if (!seen.insert(at).second || group[at] < 0 || (at != id && materialized[at])) continue;
      if (at != id && cost[at] >= kNeverRecomputed && numel(value.shape) < numel(node.shape)) {
        stored.push_back(at);
        continue;
      }
      if (!recomputable_in_operand(value.op)) return;
      above += op_info(value.op).cost;
      for (NodeId input : value.inputs) stack.push_back(static_cast<size_t>(input));
    }
    if (stored.empty() || above > options.recompute_cost_limit) return;
    for (size_t value : stored) {
      materialized[value] = true;
      boundary[value] = Boundary::ForPrologue;
    }
    cost[id] = above;
  };
  for (size_t id = 0; id < n; ++id) {
    const GraphNode& node = graph.nodes[id];
    if (is_assembled(node.op)) {
      boundary[id] = Boundary::Joined;
      materialized[id] = true;
    }
    if (group[id] < 0) continue;
    cost[id] = op_info(node.op).cost;
    for (NodeId input : node.inputs)
      if (!materialized[input]) cost[id] = std::min(kCostCap, cost[id] + cost[input]);
    std::vector<int32_t> other_kernels;
    for (NodeId consumer : consumers[id])
      if (group[consumer] != group[id] && !is_assembled(graph.nodes[consumer].op))
        other_kernels.push_back(group[consumer]);
    std::sort(other_kernels.begin(), other_kernels.end());
    other_kernels.erase(std::unique(other_kernels.begin(), other_kernels.end()),
                        other_kernels.end());
    other_kernel_count[id] = other_kernels.size();
    store_values_for_prologue(id);
    bool viewed = std::any_of(consumers[id].begin(), consumers[id].end(), [&](NodeId consumer) {
      const GraphNode& reader = graph.nodes[consumer];
      return reads_stored(reader, id) && !applies_prologue(reader, id);
    });
    if (is_output[id])
      boundary[id] = Boundary::Output;
    else if (viewed)
      boundary[id] = Boundary::Viewed;
    else if (!options.fuse)
      boundary[id] = Boundary::Eager;
    else if (other_kernels.empty())
      boundary[id] = Boundary::Inside;
    else if (op_info(node.op).cost >= kNeverRecomputed)
      boundary[id] = Boundary::NeverRecomputed;
    else if (cost[id] > options.recompute_cost_limit)
      boundary[id] = Boundary::Expensive;
    else
      boundary[id] = Boundary::Cheap;
    materialized[id] = boundary[id] != Boundary::Inside && boundary[id] != Boundary::Cheap;
  }
  // Why a value is materialized or recomputed, for the fused dump (built only when asked for:
  // the strings would cost more than scheduling a small graph).
  auto reason = [&](size_t id) -> std::string {
    size_t count = other_kernel_count[id];
    std::string kernels = std::to_string(count) + " other kernel" + (count > 1 ? "s" : "");
    std::string costed = "consumed by " + kernels + ", cost " + std::to_string(cost[id]);
    switch (boundary[id]) {
      case Boundary::Output: return "graph output";
      case Boundary::Viewed: return "read from memory through a view, an index, or a matmul or attention";
      case Boundary::ForPrologue: return "stored for a matmul that computes its consumer while packing it";
      case Boundary::Joined: return "assembled in memory, its parts stored by their kernels";
      case Boundary::Eager: return "eager: every result is materialized";
      case Boundary::NeverRecomputed:
        return std::string(is_reduction(graph.nodes[id].op)              ? "a reduction"
                           : graph.nodes[id].op == OpCode::Attention ? "an attention"
                                                                       : "a matmul") +
               " consumed by " + kernels;
      case Boundary::Expensive:
        return costed + " > " + std::to_string(options.recompute_cost_limit) + ": expensive";
      case Boundary::Cheap: return "recomputed: " + costed + ": cheap";
      case Boundary::Inside: break;
    }
    return "";
  };

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

  std::vector<int32_t> schedule_parameter(n, -1);  // per node: its Schedule::parameters index
  std::vector<std::vector<NodeId>> members(groups);  // each kernel's nodes, in order
  for (size_t id = 0; id < n; ++id)
    if (group[id] >= 0) members[group[id]].push_back(static_cast<NodeId>(id));
  std::vector<ScheduledKernel> kernels(groups);
  std::vector<std::vector<int32_t>> producer_kernels(groups);
  for (int32_t g = 0; g < groups; ++g) {
    ScheduledKernel& scheduled = kernels[g];
    Kernel& kernel = scheduled.kernel;
    const Space& space = spaces[g];
    kernel.domain = space.domain;
    // Values are computed in a frame: the domain, or (row reductions) the shape of a per-row
    // value, which maps onto the domain with stride 0 along the reduced dims.
    auto to_domain = [&](const Shape& frame, const Strides& strides) {
      return frame == space.domain ? strides : row_strides(frame, strides, space.domain, space.axes);
    };
    // A node's op in a frame; `operand` >= 0 for the frame of that operand of the kernel's MatMul
    // (its prologue's ops), whose [batch..., rows, columns] is not the domain's even where the
    // shapes are equal.
    struct Framed {
      NodeId id;
      Shape frame;
      int operand = -1;
      auto operator<=>(const Framed&) const = default;
    };
    std::map<Framed, int32_t> op_of;
    // The kernel's parameter slot for the run-time value of node `id`.
    auto parameter_slot = [&](NodeId id) {
      if (schedule_parameter[id] < 0) {
        schedule_parameter[id] = static_cast<int32_t>(schedule.parameters.size());
        const GraphNode& node = graph.nodes[id];
        schedule.parameters.push_back({node.source, run_time_value(node.op, node.params)});
      }
      auto& slots = scheduled.parameters;
      auto found = std::find(slots.begin(), slots.end(), schedule_parameter[id]);
      if (found != slots.end()) return static_cast<int32_t>(found - slots.begin());
      slots.push_back(schedule_parameter[id]);
      kernel.parameters = static_cast<int32_t>(slots.size());
      return kernel.parameters - 1;
    };

    auto emit = [&](KernelOp op) {
      kernel.ops.push_back(std::move(op));
      return static_cast<int32_t>(kernel.ops.size() - 1);
    };
    // Strides over `frame` addressed in the kernel: over the domain, or over an operand's frame.
    auto in_kernel = [&](const Shape& frame, const Strides& strides, bool operand_frame) {
      return operand_frame ? strides : to_domain(frame, strides);
    };
    auto load = [&](NodeId id, const Shape& frame, bool operand_frame, int32_t buffer, const Strides& strides,
                    int64_t offset) {
      Strides over = in_kernel(frame, broadcast_strides(graph.nodes[id].shape, strides, frame), operand_frame);
      // A load serves only its own frame: a per-row value is computed between sweeps, where a
      // per-element load has no value.
      bool row = !operand_frame && frame != space.domain;
      for (size_t s = 0; s < kernel.ops.size(); ++s) {
        const KernelOp& op = kernel.ops[s];
        if (op.op == OpCode::Input && op.operand == operand_frame && op.row == row &&
            scheduled.inputs[op.slot].buffer == buffer && scheduled.inputs[op.slot].offset == offset &&
            op.strides == over)
          return static_cast<int32_t>(s);
      }
      KernelOp op{OpCode::Input, graph.nodes[id].dtype, {}, 0, {}, over, row};
      op.operand = operand_frame;
      op.slot = static_cast<int32_t>(scheduled.inputs.size());
      scheduled.inputs.push_back({buffer, offset});
      kernel.input_dtypes.push_back(graph.nodes[id].dtype);
      return emit(std::move(op));
    };
    // The kernels that store node `id`'s value: its own, or those of a concatenation's parts.
    auto add_writers = [&](NodeId id) {
      if (!is_assembled(graph.nodes[id].op)) {
        producer_kernels[g].push_back(group[id]);
        return;
      }
      for (NodeId part : graph.nodes[id].inputs) producer_kernels[g].push_back(group[part]);
    };
    // Where the value of `id`, stored before this kernel, lies: a graph input's data, a
    // materialized node's buffer (an earlier kernel's), or a view of either (a view's input is
    // contiguous: the frontend composes views of strided data).
    struct Memory {
      int32_t buffer;
      Strides strides;
      int64_t offset;
    };
    std::function<Memory(NodeId)> memory_of = [&](NodeId id) -> Memory {
      const GraphNode& node = graph.nodes[id];
      if (node.op == OpCode::Input) return {external_buffer(id), node.data.strides, node.data.offset};
      if (node.op == OpCode::View) {
        Memory viewed = memory_of(node.inputs[0]);
        if (!is_contiguous(graph.nodes[node.inputs[0]].shape, viewed.strides))
          throw InternalError("schedule_kernels: view %" + std::to_string(id) + " of strided data");
        return {viewed.buffer, node.data.strides, viewed.offset + node.data.offset};
      }
      if (!materialized[id] || group[id] == g)
        throw InternalError("schedule_kernels: %" + std::to_string(id) + " is read from memory, but no earlier " +
                            "kernel stores it");
      add_writers(id);
      return {node_buffer[id], contiguous_strides(node.shape), 0};
    };
    // Gather `id` in `frame`, its index computed by op `index`: a load of its input's memory at
    // offsets taken from the index along the gathered dim.
    auto gather = [&](NodeId id, const Shape& frame, int32_t index) {
      const GraphNode& node = graph.nodes[id];
      auto [buffer, strides, offset] = memory_of(node.inputs[0]);
      auto dim = static_cast<size_t>(node.params.dim);
      KernelOp op{OpCode::Gather, node.dtype, {index}, static_cast<int32_t>(scheduled.inputs.size()), {}, {},
                  frame != space.domain};
      op.gather_stride = strides[dim];
      strides[dim] = 0;
      op.strides = to_domain(frame, broadcast_strides(node.shape, strides, frame));
      scheduled.inputs.push_back({buffer, offset});
      kernel.input_dtypes.push_back(node.dtype);
      return emit(std::move(op));
    };
    // MatMul or Attention `id`: each operand read from its memory (an operand op addressing its
    // [batch..., rows, columns]); or, when a value broadcast over its shape, that value
    // (`value_of`); or, when a MatMul computes it while packing it (applies_prologue), the
    // operand's own ops in its frame (`prologue_of`).
    auto product = [&](NodeId id, const std::function<int32_t(NodeId)>& value_of,
                       const std::function<int32_t(NodeId, int)>& prologue_of) {
      const GraphNode& node = graph.nodes[id];
      KernelOp op{node.op, node.dtype, {}, -1, node.params, {}, false};
      for (size_t k = 0; k < node.inputs.size(); ++k) {
        NodeId input = node.inputs[k];
        if (is_value_leaf(graph.nodes[input].op)) {
          op.args.push_back(value_of(input));
          continue;
        }
        if (group[input] >= 0 && !materialized[input]) {
          op.args.push_back(prologue_of(input, static_cast<int>(k)));
          if (options.explain)
            scheduled.notes.push_back(node_ref(input) + " computed while packing operand " + std::to_string(k) +
                                      " of " + node_ref(id) + " (its prologue)");
          continue;
        }
        auto [buffer, strides, offset] = memory_of(input);
        DType dtype = graph.nodes[input].dtype;  // Float32, or an attention's Bool mask
        KernelOp operand{OpCode::Input, dtype, {}, static_cast<int32_t>(scheduled.inputs.size()), {}, strides};
        operand.operand = true;
        scheduled.inputs.push_back({buffer, offset});
        kernel.input_dtypes.push_back(dtype);
        op.args.push_back(emit(std::move(operand)));
      }
      kernel.contraction = graph.nodes[node.inputs[0]].shape.back();
      if (node.op == OpCode::Attention) kernel.attended = graph.nodes[node.inputs[1]].shape.end()[-2];
      return emit(std::move(op));
    };
    // Emits `root` and whatever it needs that is not in memory, producers first; returns its op.
    // Nodes of this kernel compute in their own frame (a reduction's input in the domain); nodes
    // recomputed from other kernels in their consumer's; with `operand` >= 0, `root` and all it
    // recomputes in the frame of that operand of the kernel's MatMul (its prologue).
    std::function<int32_t(NodeId, int)> require = [&](NodeId root, int operand) {
      struct Item {
        NodeId id;
        Shape frame;
        bool inputs_done;
      };
      bool operand_frame = operand >= 0;
      auto framed = [&](NodeId id, const Shape& frame) { return Framed{id, frame, operand}; };
      std::vector<Item> stack{{root, graph.nodes[root].shape, false}};
      while (!stack.empty()) {
        Item item = std::move(stack.back());
        stack.pop_back();
        NodeId id = item.id;
        if (op_of.count(framed(id, item.frame))) continue;
        const GraphNode& node = graph.nodes[id];
        bool in_memory = (materialized[id] && group[id] != g) || node.op == OpCode::Input || node.op == OpCode::View;
        if (in_memory) {
          auto [buffer, strides, offset] = memory_of(id);
          op_of[framed(id, item.frame)] = load(id, item.frame, operand_frame, buffer, strides, offset);
          continue;
        }
        if (operand_frame && (group[id] == g || !recomputable_in_operand(node.op)))
          throw InternalError("schedule_kernels: %" + std::to_string(id) + " in the prologue of operand " +
                              std::to_string(operand) + " is not an elementwise value of another kernel");
        const Shape& consumer_frame = is_reduction(node.op) ? space.domain : item.frame;
        auto frame_of = [&](NodeId input) -> const Shape& {
          return group[input] == g ? graph.nodes[input].shape : consumer_frame;
        };
        // A gathered input, and a matmul's or attention's operands that are not a broadcast
        // value, are read from memory by the op itself, not computed here.
        auto computed_input = [&](size_t k) {
          if (is_product(node.op)) return is_value_leaf(graph.nodes[node.inputs[k]].op);
          return !(node.op == OpCode::Gather && k == 0);
        };
        if (!item.inputs_done) {
          stack.push_back({id, item.frame, true});
          for (size_t k = node.inputs.size(); k-- > 0;) {
            NodeId input = node.inputs[k];
            if (computed_input(k) && !op_of.count(framed(input, frame_of(input))))
              stack.push_back({input, frame_of(input), false});
          }
          continue;
        }
        auto op_of_input = [&](NodeId input) { return op_of.at(framed(input, frame_of(input))); };
        if (node.op == OpCode::Gather) {
          op_of[framed(id, item.frame)] = gather(id, item.frame, op_of_input(node.inputs[1]));
          continue;
        }
        if (is_product(node.op)) {
          op_of[framed(id, item.frame)] = product(id, op_of_input, require);
          continue;
        }
        KernelOp op{node.op, node.dtype, {}, -1, node.params, {}, !operand_frame && item.frame != space.domain};
        if (is_value_leaf(node.op)) op.params = {.value = node.params.value};
        if (has_run_time_value(node.op)) op.slot = parameter_slot(id);
        op.row = op.row || is_reduction(node.op);
        if (op_info(node.op).kind == OpKind::Generator) {
          op.strides = in_kernel(item.frame, broadcast_strides(node.shape, contiguous_strides(node.shape), item.frame),
                                 operand_frame);
          op.operand = operand_frame;
        }
        for (NodeId input : node.inputs) op.args.push_back(op_of_input(input));
        op_of[framed(id, item.frame)] = emit(std::move(op));
        if (options.explain && group[id] != g && !is_value_leaf(node.op) && !operand_frame)
          scheduled.notes.push_back(node_ref(id) + " " + reason(id));
      }
      return op_of.at(framed(root, graph.nodes[root].shape));
    };
    bool strided_stores = false;
    for (NodeId node : members[g]) {
      size_t id = static_cast<size_t>(node);
      int32_t value = require(node, -1);
      scheduled.nodes.push_back(node);
      if (options.explain) {
        for (NodeId input : graph.nodes[id].inputs) {
          if (group[input] < 0 || group[input] == g || is_value_leaf(graph.nodes[input].op)) continue;
          if (is_product(graph.nodes[id].op) && !materialized[input]) continue;  // its prologue: noted there
          auto found = grouping.refusals.find({input, node});
          if (found == grouping.refusals.end())
            throw InternalError("schedule_kernels: no reason why " + node_ref(input) + " and " +
                                node_ref(node) + " are in different kernels");
          scheduled.notes.push_back("not fused: " + node_ref(input) + " -> " + node_ref(node) + ": " +
                                    found->second.reason);
        }
      }
      if (materialized[id]) {
        kernel.outputs.push_back(value);
        kernel.output_strides.push_back(contiguous_strides(space.domain));
        scheduled.outputs.push_back(node_buffer[id]);
        scheduled.output_offsets.push_back(0);
        scheduled.output_nodes.push_back(node);
        kernel.in_place = kernel.in_place || in_place[id];
        if (options.explain) scheduled.notes.push_back(node_ref(node) + " materialized: " + reason(id));
      }
      // It as a part of assembled nodes: stored where it lies in their memory.
      for (auto it = consumers[id].begin(); it != consumers[id].end(); ++it) {
        NodeId consumer = *it;
        const GraphNode& assembled = graph.nodes[consumer];
        // Once per assembled node, however many of its parts this node is.
        if (!is_assembled(assembled.op) || std::find(consumers[id].begin(), it, consumer) != it) continue;
        for (size_t k = 0; k < assembled.inputs.size(); ++k) {
          if (assembled.inputs[k] != node) continue;
          PartRegion region = part_region(graph, assembled, k);
          kernel.outputs.push_back(value);
          kernel.output_strides.push_back(region.strides);
          scheduled.outputs.push_back(node_buffer[consumer]);
          scheduled.output_offsets.push_back(region.offset);
          scheduled.output_nodes.push_back(node);
          strided_stores = true;
          if (options.explain)
            scheduled.notes.push_back(node_ref(node) + " stored into " + node_ref(consumer) + " as part " +
                                      std::to_string(k) + ", from element " + std::to_string(region.offset));
        }
        if (assembled.op == OpCode::Scatter && assembled.inputs[1] == node && group[assembled.inputs[0]] >= 0)
          producer_kernels[g].push_back(group[assembled.inputs[0]]);
      }
    }
    if (!strided_stores) {
      kernel.output_strides.clear();
      scheduled.output_offsets.clear();
    }
    collapse_domain(kernel, space);
  }
  for (auto& [g, note] : grouping.cut_notes) kernels[g].notes.insert(kernels[g].notes.begin(), note);

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

  for (NodeId output : graph.outputs) {
    if (graph.nodes[output].op == OpCode::View)
      throw InternalError("schedule_kernels: view %" + std::to_string(output) + " is a graph output");
    schedule.outputs.push_back(graph.nodes[output].op == OpCode::Input ? external_buffer(output)
                                                                       : node_buffer[output]);
  }
  return schedule;
}

}  // namespace fusejit::ir
