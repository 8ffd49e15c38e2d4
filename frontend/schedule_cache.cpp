#include "frontend/schedule_cache.h"

#include <bit>
#include <mutex>
#include <unordered_map>

#include "ir/key.h"

namespace fusejit::frontend {
namespace {

// Cleared when full: graphs that change structure on every evaluation (a new constant each
// time) must not grow it without bound.
constexpr size_t kMaxSchedules = 1024;

struct Cache {
  std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<const CachedSchedule>, ir::KeyHash, std::equal_to<>> schedules;
};

Cache& cache() {
  static Cache instance;
  return instance;
}

bool same_view(const ir::View& a, const ir::View& b) {
  return a.storage == b.storage && a.strides == b.strides && a.offset == b.offset;
}

}  // namespace

std::string_view structure_key(const LazyOrder& order, bool fuse, int64_t reduction_chunk) {
  static ir::KeyWriter key;  // scratch, guarded by graph_mutex(): a hit allocates no key
  key.clear();
  key.put(fuse);
  key.put(reduction_chunk);
  key.put(order.nodes.size());
  static uint64_t keys = 0;  // guarded by graph_mutex()
  uint64_t keyed = ++keys;
  uint32_t storages = 0;
  for (const ir::Node* node : order.nodes) {
    bool input = node->evaluated();
    key.put(input ? ir::OpCode::Input : node->op);
    key.put(node->dtype);
    key.put_list(node->shape);
    if (!input) {
      key.put(node->inputs.size());
      for (const auto& operand : node->inputs) key.put(operand->lowered_id);
      // Most ops (the elementwise ones) carry no parameters: one byte says so. Compared by bits,
      // so that a constant -0.0 does not pass for "none".
      const ir::OpParams p = ir::compiled_params(node->op, node->params);
      bool parameters = std::bit_cast<uint64_t>(p.value) != 0 || std::bit_cast<uint64_t>(p.step) != 0 ||
                        p.seed != 0 || p.axes != 0 || p.chunk != 0;
      key.put(parameters);
      if (!parameters) continue;
      key.put(p.value);
      key.put(p.step);
      key.put(p.seed);
      key.put(p.axes);
      key.put(p.chunk);
      continue;
    }
    key.put_list(node->value.strides);
    key.put(node->value.offset);
    // Inputs sharing storage are told apart by their first appearance (CSE merges equal ones).
    ir::Storage& storage = *node->value.storage;
    if (storage.keyed != keyed) {
      storage.keyed = keyed;
      storage.alias = storages++;
    }
    key.put(storage.alias);
  }
  key.put_list(order.outputs);
  return key.view();
}

std::shared_ptr<const CachedSchedule> unbind(const ir::Schedule& schedule, const ir::Graph& lowered,
                                             runtime::KernelFns kernels) {
  if (kernels.size() != schedule.kernels.size()) return nullptr;
  auto cached = std::make_shared<CachedSchedule>();
  cached->schedule = schedule;
  cached->kernels = std::move(kernels);
  std::unordered_map<const ir::Storage*, std::vector<ir::NodeId>> inputs_of;
  for (size_t id = 0; id < lowered.nodes.size(); ++id)
    if (lowered.nodes[id].op == ir::OpCode::Input)
      inputs_of[lowered.nodes[id].data.storage.get()].push_back(static_cast<ir::NodeId>(id));
  for (size_t b = 0; b < schedule.buffers.size(); ++b) {
    const ir::View& view = schedule.buffers[b].external;
    if (!view.storage) continue;
    ir::NodeId source = -1;
    for (ir::NodeId id : inputs_of[view.storage.get()])
      if (source < 0 && same_view(lowered.nodes[id].data, view)) source = id;
    if (source < 0) return nullptr;  // an input the passes made up: do not cache
    cached->bindings.push_back({static_cast<int32_t>(b), source});
    cached->schedule.buffers[b].external = {};
  }
  return cached;
}

std::vector<ir::View> bind(const CachedSchedule& cached, const LazyOrder& order) {
  std::vector<ir::View> external(cached.schedule.buffers.size());
  for (auto [buffer, node] : cached.bindings) external[buffer] = order.nodes[node]->value;
  return external;
}

std::vector<uint64_t> bind_parameters(const ir::Schedule& schedule, const LazyOrder& order) {
  std::vector<uint64_t> values;
  values.reserve(schedule.parameters.size());
  for (const ir::ScheduleParameter& parameter : schedule.parameters) {
    const ir::Node& node = *order.nodes[parameter.source];
    values.push_back(ir::run_time_value(node.op, node.params));
  }
  return values;
}

std::shared_ptr<const CachedSchedule> find_schedule(std::string_view key) {
  // A loop evaluates one structure over and over: its last hit is checked first, without
  // hashing or touching the table. (A schedule stays right for its key even after the cache is
  // cleared.)
  thread_local std::string last_key;
  thread_local std::shared_ptr<const CachedSchedule> last;
  if (last && key == last_key) return last;
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  auto it = c.schedules.find(key);
  if (it == c.schedules.end()) return nullptr;
  last_key = key;
  last = it->second;
  return last;
}

void remember_schedule(const std::string& key, std::shared_ptr<const CachedSchedule> cached) {
  if (!cached) return;
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  if (c.schedules.size() >= kMaxSchedules) c.schedules.clear();
  c.schedules.emplace(key, std::move(cached));
}

}  // namespace fusejit::frontend
