// From pending tensors to computed values: lower, optimize, schedule, prepare, run, bind.
#include <algorithm>
#include <optional>
#include <span>
#include <unordered_map>

#include "frontend/lazy.h"
#include "frontend/schedule_cache.h"
#include "ir/kernel.h"
#include "ir/compiler.h"
#include "runtime/buffer_pool.h"
#include "runtime/disk_cache.h"
#include "runtime/executor.h"
#include "runtime/parallel.h"
#include "runtime/process.h"

namespace fusejit {
namespace frontend {

LazyOrder order_nodes(std::span<ir::Node* const> roots) {
  static uint64_t lowerings = 0;  // guarded by the graph mutex
  uint64_t lowering = ++lowerings;
  auto numbered = [lowering](const ir::Node* node) { return node->lowering == lowering; };
  LazyOrder order;
  order.nodes.reserve(16);
  static std::vector<std::pair<ir::Node*, bool>> stack;  // scratch, guarded by the graph mutex
  stack.clear();
  for (ir::Node* root : roots) stack.push_back({root, false});
  std::reverse(stack.begin(), stack.end());
  while (!stack.empty()) {
    auto [node, inputs_done] = stack.back();
    stack.pop_back();
    if (numbered(node)) continue;
    if (!inputs_done && !lowers_to_input(*node)) {
      stack.push_back({node, true});
      for (auto it = node->inputs.rbegin(); it != node->inputs.rend(); ++it)
        if (!numbered(it->get())) stack.push_back({it->get(), false});
      continue;
    }
    node->lowering = lowering;
    node->lowered_id = static_cast<ir::NodeId>(order.nodes.size());
    order.writing = order.writing || node->writing;
    order.nodes.push_back(node);
  }
  order.roots.reserve(roots.size());
  order.outputs.reserve(roots.size());
  std::vector<bool> is_root(roots.size() > 1 ? order.nodes.size() : 0);
  for (ir::Node* root : roots) {
    if (roots.size() > 1 && is_root[root->lowered_id]) continue;
    if (roots.size() > 1) is_root[root->lowered_id] = true;
    order.roots.push_back(root);
    order.outputs.push_back(root->lowered_id);
  }
  return order;
}

bool lowers_to_input(const ir::Node& node) {
  return node.evaluated() || (node.op == ir::OpCode::View && node.inputs[0]->evaluated());
}

ir::View input_data(const ir::Node& node) {
  if (node.evaluated()) return node.value;
  // A computed value is contiguous (ir::contiguous_outputs), so the view's strides over its
  // elements are its strides over the storage.
  const ir::View& viewed = node.inputs[0]->value;
  if (!ir::is_contiguous(node.inputs[0]->shape, viewed.strides))
    throw InternalError("input_data: a view of a strided computed value");
  return {viewed.storage, node.value.strides, viewed.offset + node.value.offset};
}

ir::Graph lower(const LazyOrder& order) {
  ir::Graph graph;
  graph.nodes.reserve(order.nodes.size());
  for (const ir::Node* node : order.nodes) {
    if (lowers_to_input(*node)) {
      graph.add({ir::OpCode::Input, node->dtype, node->shape, {}, {}, input_data(*node)});
      continue;
    }
    ir::GraphNode lowered{node->op, node->dtype, node->shape, {}, node->params, {}};
    if (node->op == ir::OpCode::View || node->op == ir::OpCode::Scatter)
      lowered.data = {nullptr, node->value.strides, node->value.offset};
    for (const auto& input : node->inputs) lowered.inputs.push_back(input->lowered_id);
    if (ir::has_run_time_value(node->op)) lowered.source = static_cast<ir::NodeId>(graph.nodes.size());
    graph.add(std::move(lowered));
  }
  graph.outputs = order.outputs;
  for (size_t i = 0; i < order.roots.size(); ++i)
    if (order.roots[i]->write_into) {
      graph.in_place.resize(order.roots.size());
      graph.in_place[i] = true;
    }
  return graph;
}

ir::Graph graph_of(const std::vector<Tensor>& outputs) {
  std::vector<ir::Node*> roots;
  for (const Tensor& t : outputs) roots.push_back(t.node().get());
  std::lock_guard lock(runtime::process().graph_mutex);
  return lower(order_nodes(roots));
}

namespace {

// A root that this evaluation may write into its tensor's storage (an in-place update).
struct InPlace {
  size_t root;           // index into the order's roots
  ir::Storage* storage;  // the root's write_into
};

// Whether the storage of `root`'s update is seen by nothing but the update's chain (inputs[0]
// down from the root), each node of it held only by the one above, which may end in the old
// value: the common case (x.mul_(0.9f).add_(g)), decided without a map.
bool only_the_chain_sees(const ir::Node& root) {
  const std::shared_ptr<ir::Storage>& target = root.write_into;
  const ir::Node* node = &root;
  bool old_value_read = false;
  while (!node->inputs.empty()) {
    const std::shared_ptr<ir::Node>& next = node->inputs[0];
    if (next.use_count() != 1) break;  // someone else sees it
    if (next->evaluated()) {
      old_value_read = next->value.storage == target;
      break;
    }
    node = next.get();
  }
  return target.use_count() == 1 + (old_value_read ? 1 : 0);
}

// Whether nothing outside the evaluation of `root` sees its update's storage: nothing but the
// nodes below the root holds it, and no pending value below the root that reads it is held from
// outside (it would read the new value when evaluated later).
bool nothing_outside_sees(const ir::Node& root) {
  const std::shared_ptr<ir::Storage>& target = root.write_into;
  struct Below {
    const std::shared_ptr<ir::Node>* held;  // one of its owners, for the owners' count
    long references = 0;                    // from the nodes below the root
    enum { kNew, kOpened, kDone } state = kNew;
    bool reads_target = false;  // holds the storage, or reads what does
  };
  static std::unordered_map<const ir::Node*, Below> below;  // scratch, guarded by the graph mutex
  static std::vector<const ir::Node*> stack;
  below.clear();
  stack.assign(1, &root);
  while (!stack.empty()) {  // every node below the root, with its references from there
    const ir::Node* node = stack.back();
    stack.pop_back();
    if (node->evaluated()) continue;
    for (const std::shared_ptr<ir::Node>& input : node->inputs) {
      auto [entry, first] = below.try_emplace(input.get(), Below{&input});
      entry->second.references++;
      if (first) stack.push_back(input.get());
    }
  }
  long holders = 0;
  for (const std::shared_ptr<ir::Node>& input : root.inputs) stack.push_back(input.get());
  while (!stack.empty()) {  // reads_target, inputs before their users
    const ir::Node* node = stack.back();
    Below& entry = below.at(node);
    if (entry.state == Below::kNew && !node->evaluated()) {
      entry.state = Below::kOpened;
      for (const std::shared_ptr<ir::Node>& input : node->inputs)
        if (below.at(input.get()).state == Below::kNew) stack.push_back(input.get());
      continue;
    }
    stack.pop_back();
    if (entry.state == Below::kDone) continue;
    entry.state = Below::kDone;
    if (node->evaluated()) {
      entry.reads_target = node->value.storage == target;
      holders += entry.reads_target ? 1 : 0;
    } else {
      for (const std::shared_ptr<ir::Node>& input : node->inputs)
        entry.reads_target = entry.reads_target || below.at(input.get()).reads_target;
    }
    if (entry.reads_target && entry.held->use_count() != entry.references) return false;
  }
  return target.use_count() == 1 + holders;
}

// Whether `root`'s update may overwrite its storage now: nothing outside this evaluation can see
// the old value. Inside it, the values the root is computed from may read the storage
// (ir::may_write_over then checks each kernel's reads against the writes). Call with the graph
// mutex held, before lowering or binding copies the storage.
std::optional<InPlace> in_place(const ir::Node& root, size_t index) {
  if (!root.write_into || !(only_the_chain_sees(root) || nothing_outside_sees(root))) return std::nullopt;
  return InPlace{index, root.write_into.get()};
}

// Points the output buffers of the `updates` at their storage where the schedule allows.
void write_in_place(const ir::Schedule& schedule, const std::vector<InPlace>& updates,
                    const std::vector<ir::Node*>& roots, std::vector<ir::View>& external) {
  external.resize(schedule.buffers.size());
  for (const InPlace& update : updates) {
    int32_t output = schedule.outputs[update.root];
    if (external[output].storage) continue;  // a graph input, or another update's
    bool safe = true;
    for (size_t read = 0; read < external.size() && safe; ++read)
      if (external[read].storage.get() == update.storage)
        safe = ir::may_write_over(schedule, output, static_cast<int32_t>(read));
    if (safe)
      external[output] = {roots[update.root]->write_into, ir::contiguous_strides(schedule.buffers[output].shape), 0};
  }
}

void check_defined(const Tensor& t) {
  if (!t.defined()) throw Error("eval: tensor is undefined (default-constructed)");
}

// The schedule of `graph` (left as lowered: a cached schedule binds to its Input nodes), with
// the graph and fused dumps that `dump` asks for.
ir::Schedule schedule_graph(const ir::Graph& graph, bool fuse, int64_t chunk, const runtime::DumpSink& dump) {
  const runtime::DumpStages& stages = dump.stages();
  ir::Compiled compiled = ir::compile(
      graph, {.fuse = fuse, .reduction_chunk = chunk, .trace = stages.graph, .explain = stages.fused});
  if (stages.graph) dump.write("graph", compiled.graph_text);
  if (stages.fused) dump.write("fused", compiled.fused_text);
  return std::move(compiled.schedule);
}

// Evaluates the pending ones among `outputs`, with the dumps FUSEJIT_DUMP asks for (read only
// when something is pending).
void evaluate(std::span<const Tensor> outputs) {
  for (const Tensor& t : outputs) check_defined(t);
  runtime::Process& process = runtime::process();
  bool fuse = process.fusion;
  int64_t chunk = process.reduction_chunk;

  // The caller's tensors keep the pending nodes alive; up to 8 are listed without allocating.
  constexpr size_t kFewOutputs = 8;
  ir::Node* few[kFewOutputs];
  std::vector<ir::Node*> many;
  size_t pending = 0;
  std::vector<ir::Node*> roots;
  runtime::DumpSink dump;
  std::string key;
  std::shared_ptr<const CachedSchedule> cached;
  std::vector<ir::View> external;
  std::vector<uint64_t> parameters;
  ir::Graph graph;
  std::unique_lock lock(process.graph_mutex);
  if (outputs.size() > kFewOutputs) many.resize(outputs.size());
  ir::Node** listed = outputs.size() > kFewOutputs ? many.data() : few;
  // A pending view is evaluated by evaluating what it views: it is then that value's storage
  // read through its strides (a graph output is a computed value, never a view).
  bool views = false;
  for (const Tensor& t : outputs) {
    ir::Node* node = t.node().get();
    if (node->evaluated()) continue;
    if (node->op == ir::OpCode::View) {
      views = true;
      if (node->inputs[0]->evaluated()) continue;
      node = node->inputs[0].get();
    }
    listed[pending++] = node;
  }
  auto bind_views = [&] {
    if (!views) return;
    for (const Tensor& t : outputs) {
      ir::Node& node = *t.node();
      if (node.evaluated() || node.op != ir::OpCode::View) continue;
      node.value = input_data(node);
      node.inputs.clear();
      node.depth.store(0, std::memory_order_relaxed);
    }
  };
  if (pending == 0) return bind_views();
  dump = runtime::DumpSink::from_environment();
  // Dumps need the passes' trace, the schedule's notes and each kernel's texts, so they always
  // schedule afresh.
  bool cacheable = !dump.stages().any();
  std::vector<InPlace> updates;
  {
    LazyOrder order = order_nodes({listed, pending});
    while (order.writing) {  // a node another evaluation is writing in place: wait for it
      process.in_place_done.wait(lock);
      order = order_nodes({listed, pending});
    }
    roots = std::move(order.roots);
    for (size_t i = 0; i < roots.size(); ++i)
      if (std::optional<InPlace> update = in_place(*roots[i], i)) {
        updates.push_back(*update);
        roots[i]->writing = true;
      }
    if (cacheable) {
      std::string_view written = structure_key(order, fuse, chunk);
      cached = find_schedule(written);
      if (!cached) key = written;  // kept past the lock to remember the new schedule
    }
    if (cached) {
      external = bind(*cached, order);
      parameters = bind_parameters(cached->prepared.schedule, order);
    } else {
      graph = lower(order);
    }
  }
  lock.unlock();  // compiling and running need no lazy node

  // Ends this evaluation's in-place claims (with the lock held), however it ends.
  auto end_claims = [&] {
    for (const InPlace& update : updates) roots[update.root]->writing = false;
    if (!updates.empty()) process.in_place_done.notify_all();
  };
  std::vector<ir::View> values;
  try {
    if (cached) {
      // Its kernels were found without looking them up: each counts as a kernel cache hit.
      process.counters.cache_hits += static_cast<int64_t>(cached->prepared.kernels.size());
    } else {
      ir::Schedule schedule = schedule_graph(graph, fuse, chunk, dump);
      for (const ir::ScheduleBuffer& buffer : schedule.buffers) external.push_back(buffer.external);
      for (const ir::ScheduleParameter& parameter : schedule.parameters) parameters.push_back(parameter.bits);
      cached = unbind(runtime::prepare(std::move(schedule), dump), external, graph);
      if (cacheable) remember_schedule(key, cached);
    }
    if (!updates.empty()) write_in_place(cached->prepared.schedule, updates, roots, external);
    // `cached` holds its kernels' code until they have run, even if both caches drop them.
    values = runtime::run(cached->prepared, std::move(external), parameters);
  } catch (...) {
    lock.lock();
    end_claims();
    throw;
  }
  lock.lock();
  end_claims();
  for (size_t i = 0; i < roots.size(); ++i) {
    if (roots[i]->evaluated()) continue;  // another thread got there first
    roots[i]->value = std::move(values[i]);
    roots[i]->inputs.clear();  // the history is no longer needed
    roots[i]->write_into.reset();
    roots[i]->depth.store(0, std::memory_order_relaxed);
  }
  bind_views();
}

// Schedules and prepares `t` (pending or not) with `dump`'s dumps, running nothing.
void prepare_for_dump(const Tensor& t, const runtime::DumpSink& dump) {
  check_defined(t);
  runtime::Process& process = runtime::process();
  bool fuse = process.fusion;
  int64_t chunk = process.reduction_chunk;
  ir::Graph graph;
  {
    std::lock_guard lock(process.graph_mutex);
    ir::Node* root = t.node().get();
    graph = lower(order_nodes({&root, 1}));
  }
  runtime::prepare(schedule_graph(graph, fuse, chunk, dump), dump);
}

}  // namespace

void set_reduction_chunk(int64_t elements) {
  runtime::process().reduction_chunk = elements > 0 ? elements : ir::kReductionChunk;
}

}  // namespace frontend

using frontend::evaluate;

void eval(const std::vector<Tensor>& outputs) { evaluate(outputs); }

const Tensor& Tensor::eval() const {
  evaluate({this, 1});
  return *this;
}

std::string Tensor::dump(const std::string& stages) const {
  std::string text;
  frontend::prepare_for_dump(*this, runtime::DumpSink::into(text, runtime::parse_dump_stages(stages)));
  return text;
}

void set_fusion_enabled(bool enabled) { runtime::process().fusion = enabled; }
bool fusion_enabled() { return runtime::process().fusion; }

void set_num_threads(int threads) {
  if (threads < 1 || threads > runtime::kMaxThreads)
    throw Error("set_num_threads: expected 1 to " + std::to_string(runtime::kMaxThreads) +
                " threads, got " + std::to_string(threads));
  runtime::process().threads = threads;
}
int num_threads() { return runtime::process().threads; }

FusionGuard::FusionGuard(bool enabled) : previous_(fusion_enabled()) { set_fusion_enabled(enabled); }
FusionGuard::~FusionGuard() { set_fusion_enabled(previous_); }
NumThreadsGuard::NumThreadsGuard(int threads) : previous_(num_threads()) { set_num_threads(threads); }
NumThreadsGuard::~NumThreadsGuard() { runtime::process().threads = previous_; }

void set_kernel_cache_capacity(int64_t kernels) {
  if (kernels < 1)
    throw Error("set_kernel_cache_capacity: expected at least 1 kernel, got " + std::to_string(kernels));
  runtime::set_kernel_cache_capacity(kernels);
}
int64_t kernel_cache_capacity() { return runtime::kernel_cache_capacity(); }

void empty_cache() { runtime::release_pooled_buffers(); }

void set_disk_cache_dir(const std::string& dir) { runtime::set_disk_cache_dir(dir); }
std::string disk_cache_dir() { return runtime::disk_cache_dir(); }
void set_disk_cache_limit(int64_t bytes) {
  if (bytes < 0) throw Error("set_disk_cache_limit: expected at least 0 bytes, got " + std::to_string(bytes));
  runtime::set_disk_cache_limit(bytes);
}
int64_t disk_cache_limit() { return runtime::disk_cache_limit(); }

Stats stats() {
  const runtime::Counters& c = runtime::process().counters;
  return {c.kernels_compiled, c.cache_hits,      c.cache_misses,       c.kernels_launched,
          c.kernels_evicted,  c.disk_hits,          c.compile_ns / 1e6, c.buffers_allocated};
}

void reset_stats() {
  runtime::Counters& c = runtime::process().counters;
  c.kernels_compiled = 0;
  c.cache_hits = 0;
  c.cache_misses = 0;
  c.kernels_launched = 0;
  c.kernels_evicted = 0;
  c.disk_hits = 0;
  c.compile_ns = 0;
  c.buffers_allocated = 0;
}

std::string target_description() { return runtime::target_description(); }

}  // namespace fusejit
