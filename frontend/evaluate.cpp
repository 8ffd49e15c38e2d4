// From pending tensors to computed values: lower, optimize, schedule, execute, bind.
#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "frontend/lazy.h"
#include "frontend/schedule_cache.h"
#include "ir/kernel.h"
#include "ir/passes.h"
#include "runtime/counters.h"
#include "runtime/executor.h"
#include "runtime/parallel.h"

namespace fusejit {
namespace frontend {

std::mutex& graph_mutex() {
  static std::mutex mutex;
  return mutex;
}

ir::Graph lower(const std::vector<std::shared_ptr<ir::Node>>& roots) {
  ir::Graph graph;
  std::unordered_map<const ir::Node*, ir::NodeId> ids;
  std::vector<std::pair<const ir::Node*, bool>> stack;
  for (const auto& root : roots) stack.push_back({root.get(), false});
  while (!stack.empty()) {
    auto [node, inputs_done] = stack.back();
    stack.pop_back();
    if (ids.count(node)) continue;
    if (node->evaluated()) {
      ir::GraphNode input{ir::OpCode::Input, node->dtype, node->shape, {}, {}, node->value};
      ids[node] = graph.add(std::move(input));
      continue;
    }
    if (!inputs_done) {
      stack.push_back({node, true});
      for (auto it = node->inputs.rbegin(); it != node->inputs.rend(); ++it)
        if (!ids.count(it->get())) stack.push_back({it->get(), false});
      continue;
    }
    ir::GraphNode lowered{node->op, node->dtype, node->shape, {}, node->params, {}};
    for (const auto& input : node->inputs) lowered.inputs.push_back(ids.at(input.get()));
    ids[node] = graph.add(std::move(lowered));
  }
  for (const auto& root : roots) graph.outputs.push_back(ids.at(root.get()));
  return graph;
}

ir::Graph graph_of(const std::vector<Tensor>& outputs) {
  std::vector<std::shared_ptr<ir::Node>> roots;
  for (const Tensor& t : outputs) roots.push_back(t.node());
  std::lock_guard lock(graph_mutex());
  return lower(roots);
}

namespace {

std::atomic<bool> fusion_on{true};
std::atomic<int64_t> reduction_chunk{ir::kReductionChunk};

// Evaluates the pending ones among `outputs`; with `run` false, only compiles and dumps.
void evaluate(const std::vector<Tensor>& outputs, const runtime::DumpSink& dump, bool run) {
  std::vector<std::shared_ptr<ir::Node>> roots;
  std::unordered_set<const ir::Node*> seen;
  for (const Tensor& t : outputs) {
    if (!t.defined()) throw Error("eval: tensor is undefined (default-constructed)");
    if ((!t.is_evaluated() || !run) && seen.insert(t.node().get()).second) roots.push_back(t.node());
  }
  if (roots.empty()) return;
  ir::Graph graph;
  {
    std::lock_guard lock(graph_mutex());
    graph = lower(roots);
  }
  const runtime::DumpStages& stages = dump.stages();
  bool fuse = fusion_on.load();
  int64_t chunk = reduction_chunk.load();
  // Dumps need the passes' trace, the schedule's notes and each kernel's texts, so they always
  // schedule afresh.
  bool cacheable = !stages.any();
  std::string key = cacheable ? structure_key(graph, fuse, chunk) : std::string();
  std::vector<ir::View> values;
  if (auto cached = cacheable ? find_schedule(key) : nullptr) {
    values = runtime::execute(cached->schedule, bind(*cached, graph), dump, run, &cached->kernels);
  } else {
    // `graph` stays as lowered: a cached schedule binds to its Input nodes.
    std::string trace;
    ir::verify(graph);
    ir::Graph optimized = fuse ? ir::run_passes(graph, stages.graph ? &trace : nullptr) : ir::Graph();
    ir::Graph split = ir::split_reductions(fuse ? optimized : graph, chunk);
    if (stages.graph) {
      dump.write("graph", (fuse ? trace : "eager: no passes\n") +
                              "after split_reductions:\n" + ir::print(split));
    }
    ir::Schedule schedule = ir::schedule_kernels(split, {.fuse = fuse, .explain = stages.fused});
    if (stages.fused)
      dump.write("fused", std::to_string(schedule.kernels.size()) + " kernel" +
                              (schedule.kernels.size() == 1 ? "" : "s") + "\n" +
                              ir::print_schedule(schedule));
    std::vector<ir::View> external;
    for (const ir::ScheduleBuffer& buffer : schedule.buffers) external.push_back(buffer.external);
    runtime::KernelFns kernels;
    values = runtime::execute(schedule, std::move(external), dump, run, nullptr, &kernels);
    if (cacheable) remember_schedule(key, unbind(schedule, graph, std::move(kernels)));
  }
  if (!run) return;
  std::lock_guard lock(graph_mutex());
  for (size_t i = 0; i < roots.size(); ++i) {
    if (roots[i]->evaluated()) continue;  // another thread got there first
    roots[i]->value = values[i];
    roots[i]->inputs.clear();  // the history is no longer needed
  }
}

}  // namespace

void set_reduction_chunk(int64_t elements) {
  reduction_chunk = elements > 0 ? elements : ir::kReductionChunk;
}

}  // namespace frontend

using frontend::evaluate;

void eval(const std::vector<Tensor>& outputs) {
  evaluate(outputs, runtime::DumpSink::from_environment(), true);
}

const Tensor& Tensor::eval() const {
  fusejit::eval({*this});
  return *this;
}

std::string Tensor::dump(const std::string& stages) const {
  std::string text;
  evaluate({*this}, runtime::DumpSink::into(text, runtime::parse_dump_stages(stages)), false);
  return text;
}

void set_fusion_enabled(bool enabled) { frontend::fusion_on = enabled; }
bool fusion_enabled() { return frontend::fusion_on; }

void set_num_threads(int threads) {
  if (threads < 1) throw Error("set_num_threads: expected at least 1 thread, got " + std::to_string(threads));
  runtime::set_num_threads(threads);
}
int num_threads() { return runtime::num_threads(); }

FusionGuard::FusionGuard(bool enabled) : previous_(fusion_enabled()) { set_fusion_enabled(enabled); }
FusionGuard::~FusionGuard() { set_fusion_enabled(previous_); }
NumThreadsGuard::NumThreadsGuard(int threads) : previous_(num_threads()) { set_num_threads(threads); }
NumThreadsGuard::~NumThreadsGuard() { runtime::set_num_threads(previous_); }

Stats stats() {
  const runtime::Counters& c = runtime::counters();
  return {c.kernels_compiled, c.cache_hits, c.cache_misses, c.kernels_launched, c.compile_ns / 1e6};
}

void reset_stats() {
  runtime::Counters& c = runtime::counters();
  c.kernels_compiled = 0;
  c.cache_hits = 0;
  c.cache_misses = 0;
  c.kernels_launched = 0;
  c.compile_ns = 0;
}

std::string target_description() { return runtime::target_description(); }

}  // namespace fusejit
