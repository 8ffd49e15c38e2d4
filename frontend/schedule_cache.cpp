#include "frontend/schedule_cache.h"

#include <algorithm>
#include <list>
#include <mutex>
#include <unordered_map>

#include "ir/key.h"
#include "runtime/process.h"

namespace fusejit::frontend {

struct ScheduleCache {
  struct Entry {
    std::string key;
    std::shared_ptr<const CachedSchedule> schedule;
    int64_t bytes = 0;  // estimated, key included
  };
  std::mutex mutex;
  std::list<Entry> lru;  // most recently found first
  std::unordered_map<std::string_view, std::list<Entry>::iterator, ir::KeyHash> index;  // into lru keys
  int64_t bytes = 0;
  int64_t bytes_limit = kDefaultScheduleCacheBytes;
  int64_t kernel_evictions_seen = 0;  // runtime::kernel_evictions_since_start() at the last sweep
};

}  // namespace fusejit::frontend

namespace fusejit::runtime {

frontend::ScheduleCache& Process::schedule_cache() {
  static auto* instance = new frontend::ScheduleCache;
  return *instance;
}

}  // namespace fusejit::runtime

namespace fusejit::frontend {
namespace {

using Entry = ScheduleCache::Entry;
using Dropped = std::vector<std::shared_ptr<const CachedSchedule>>;

// With the cache's mutex held; the caller destroys `dropped` after unlocking, since freeing a
// schedule may free kernels, which takes the JIT's lock.
void drop(ScheduleCache& c, std::list<Entry>::iterator entry, Dropped& dropped) {
  c.bytes -= entry->bytes;
  dropped.push_back(std::move(entry->schedule));
  c.index.erase(entry->key);
  c.lru.erase(entry);
}

void evict_beyond_limit(ScheduleCache& c, Dropped& dropped) {
  while (c.bytes > c.bytes_limit) drop(c, std::prev(c.lru.end()), dropped);
}

// Drops the schedules holding evicted kernels, when kernels were evicted since the last look.
void drop_evicted_kernels(ScheduleCache& c, Dropped& dropped) {
  int64_t evictions = runtime::kernel_evictions_since_start();
  if (evictions == c.kernel_evictions_seen) return;
  c.kernel_evictions_seen = evictions;
  for (auto entry = c.lru.begin(); entry != c.lru.end();) {
    const runtime::KernelCodes& kernels = entry->schedule->prepared.kernels;
    auto next = std::next(entry);
    if (std::any_of(kernels.begin(), kernels.end(), [](const runtime::KernelCode& k) { return k.evicted(); }))
      drop(c, entry, dropped);
    entry = next;
  }
}

// What malloc hands out for `bytes` (glibc: an 8-byte header, 16-byte granules, 32 at least).
int64_t heap_block(size_t bytes) {
  return bytes == 0 ? 0 : std::max<int64_t>(32, static_cast<int64_t>((bytes + 8 + 15) / 16 * 16));
}
template <class T>
int64_t heap_bytes(const std::vector<T>& values) {
  return heap_block(values.capacity() * sizeof(T));
}
int64_t heap_bytes(const std::string& text) {
  return text.capacity() > std::string().capacity() ? heap_block(text.capacity() + 1) : 0;
}

// The memory that caching `cached` under `key` takes: the schedule with every vector it owns,
// the key and the cache's nodes for the entry (not the kernels' code: the kernel cache bounds
// that).
int64_t estimated_bytes(const std::string& key, const CachedSchedule& cached) {
  const runtime::PreparedSchedule& prepared = cached.prepared;
  const ir::Schedule& schedule = prepared.schedule;
  int64_t bytes = heap_block(sizeof(CachedSchedule) + 16) +            // with make_shared's counts
                  heap_block(sizeof(Entry) + 2 * sizeof(void*)) +      // the list node
                  heap_block(sizeof(std::string_view) + 4 * sizeof(void*)) +  // the index node
                  heap_block(key.size() + 1) + heap_bytes(cached.bindings) + heap_bytes(prepared.kernels) +
                  heap_bytes(prepared.released_after) + heap_bytes(schedule.buffers) +
                  heap_bytes(schedule.parameters) + heap_bytes(schedule.kernels) + heap_bytes(schedule.outputs);
  for (const ir::ScheduleBuffer& buffer : schedule.buffers) bytes += heap_bytes(buffer.shape);
  for (const std::vector<int32_t>& released : prepared.released_after) bytes += heap_bytes(released);
  for (const ir::ScheduledKernel& scheduled : schedule.kernels) {
    const ir::Kernel& kernel = scheduled.kernel;
    bytes += heap_bytes(kernel.domain) + heap_bytes(kernel.input_dtypes) + heap_bytes(kernel.ops) +
             heap_bytes(kernel.outputs) + heap_bytes(scheduled.inputs) + heap_bytes(scheduled.parameters) +
             heap_bytes(scheduled.outputs) +
             heap_bytes(scheduled.nodes) + heap_bytes(scheduled.output_nodes) + heap_bytes(scheduled.notes);
    for (const ir::KernelOp& op : kernel.ops) bytes += heap_bytes(op.args) + heap_bytes(op.strides);
    for (const std::string& note : scheduled.notes) bytes += heap_bytes(note);
  }
  return bytes;
}

bool same_view(const ir::View& a, const ir::View& b) {
  return a.storage == b.storage && a.strides == b.strides && a.offset == b.offset;
}

}  // namespace

std::string_view structure_key(const LazyOrder& order, bool fuse, int64_t reduction_chunk) {
  static ir::KeyWriter key;  // scratch, guarded by the graph mutex: a hit allocates no key
  key.clear();
  key.put(fuse);
  key.put(reduction_chunk);
  key.put(order.nodes.size());
  static uint64_t keys = 0;  // guarded by the graph mutex
  uint64_t keyed = ++keys;
  uint32_t storages = 0;
  for (const ir::Node* node : order.nodes) {
    bool input = lowers_to_input(*node);
    key.put(input ? ir::OpCode::Input : node->op);
    key.put(node->dtype);
    key.put_list(node->shape);
    if (!input) {
      key.put(node->inputs.size());
      for (const auto& operand : node->inputs) key.put(operand->lowered_id);
      ir::compiled_params(node->op, node->params).write_key(key);
      if (node->op == ir::OpCode::View || node->op == ir::OpCode::Scatter) {
        key.put_list(node->value.strides);
        key.put(node->value.offset);
      }
      continue;
    }
    ir::View composed;
    const ir::View& data = node->evaluated() ? node->value : (composed = input_data(*node));
    key.put_list(data.strides);
    key.put(data.offset);
    // Inputs sharing storage are told apart by their first appearance (CSE merges equal ones).
    ir::Storage& storage = *data.storage;
    if (storage.keyed != keyed) {
      storage.keyed = keyed;
      storage.alias = storages++;
    }
    key.put(storage.alias);
  }
  key.put_list(order.outputs);
  for (const ir::Node* root : order.roots) key.put(root->write_into != nullptr);
  return key.view();
}

std::shared_ptr<const CachedSchedule> unbind(runtime::PreparedSchedule prepared,
                                             const std::vector<ir::View>& external,
                                             const ir::Graph& lowered) {
  auto cached = std::make_shared<CachedSchedule>();
  cached->prepared = std::move(prepared);
  std::unordered_map<const ir::Storage*, std::vector<ir::NodeId>> inputs_of;
  for (size_t id = 0; id < lowered.nodes.size(); ++id)
    if (lowered.nodes[id].op == ir::OpCode::Input)
      inputs_of[lowered.nodes[id].data.storage.get()].push_back(static_cast<ir::NodeId>(id));
  for (size_t b = 0; b < external.size(); ++b) {
    const ir::View& view = external[b];
    if (!view.storage) continue;
    ir::NodeId source = -1;
    for (ir::NodeId id : inputs_of[view.storage.get()])
      if (source < 0 && same_view(lowered.nodes[id].data, view)) source = id;
    if (source < 0) {  // an input the passes made up
      cached->reusable = false;
      return cached;
    }
    cached->bindings.push_back({static_cast<int32_t>(b), source});
  }
  return cached;
}

std::vector<ir::View> bind(const CachedSchedule& cached, const LazyOrder& order) {
  std::vector<ir::View> external(cached.prepared.schedule.buffers.size());
  for (auto [buffer, node] : cached.bindings) external[buffer] = input_data(*order.nodes[node]);
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
  // hashing or touching the table. Held weakly, so that it keeps nothing alive once the table
  // drops it (only the bytes of the schedule object itself, not what it owns), and locking it
  // costs what copying a shared_ptr would. A schedule stays right for its key after it is
  // dropped, so one that an execution in flight still holds may be used meanwhile. Hits here
  // leave the LRU order alone: a structure found only here ages, and is scheduled once more
  // after its eviction.
  thread_local std::string last_key;
  thread_local std::weak_ptr<const CachedSchedule> last;
  if (key == last_key)
    if (auto hit = last.lock()) return hit;
  ScheduleCache& c = runtime::process().schedule_cache();
  std::lock_guard lock(c.mutex);
  auto found = c.index.find(key);
  if (found == c.index.end()) return nullptr;
  c.lru.splice(c.lru.begin(), c.lru, found->second);
  last_key = key;
  last = found->second->schedule;
  return found->second->schedule;
}

void remember_schedule(const std::string& key, std::shared_ptr<const CachedSchedule> cached) {
  if (!cached->reusable) return;
  int64_t bytes = estimated_bytes(key, *cached);
  Dropped dropped;  // destroyed after unlocking
  ScheduleCache& c = runtime::process().schedule_cache();
  std::lock_guard lock(c.mutex);
  if (bytes > c.bytes_limit || c.index.contains(key)) return;  // too large; or another thread's
  c.lru.push_front({key, std::move(cached), bytes});
  c.index.emplace(c.lru.front().key, c.lru.begin());
  c.bytes += bytes;
  drop_evicted_kernels(c, dropped);
  evict_beyond_limit(c, dropped);
}

void set_schedule_cache_bytes_limit(int64_t bytes) {
  Dropped dropped;
  ScheduleCache& c = runtime::process().schedule_cache();
  std::lock_guard lock(c.mutex);
  c.bytes_limit = bytes > 0 ? bytes : kDefaultScheduleCacheBytes;
  evict_beyond_limit(c, dropped);
}

int64_t schedule_cache_bytes() {
  ScheduleCache& c = runtime::process().schedule_cache();
  std::lock_guard lock(c.mutex);
  return c.bytes;
}

}  // namespace fusejit::frontend
