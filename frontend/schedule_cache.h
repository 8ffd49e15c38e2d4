// Schedules of recently evaluated graphs, keyed by their structure. Evaluating the same
// expression again on other data (the common case in a loop) reuses the schedule and skips
// the passes and fusion, which cost more than a small kernel runs.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "frontend/lazy.h"
#include "ir/kernel.h"
#include "runtime/executor.h"

namespace fusejit::frontend {

// A prepared schedule, and which lowered graph node fills each of its graph-input buffers. Held
// by the cache and by each evaluation running it: its kernels' code stays alive while it runs.
struct CachedSchedule {
  runtime::PreparedSchedule prepared;
  std::vector<std::pair<int32_t, ir::NodeId>> bindings;  // (schedule buffer, Input node)
  bool reusable = true;  // false: it reads an input the passes made up, which no other graph has
};

// Everything that decides the schedule of `order`'s lowered graph: ops, types, shapes,
// parameters, edges and outputs, the layout of each input and which inputs share storage, and
// the settings. Not the data itself, nor the run-time values (scalars, seeds). Built from the lazy nodes, so that a cached schedule
// needs no graph, into a buffer reused by the next call. Call with the graph mutex held.
std::string_view structure_key(const LazyOrder& order, bool fuse, int64_t reduction_chunk);

// `prepared` with what it needs to be reused for another graph of the same key: it was made
// from `lowered`, and `external` holds the views its graph-input buffers had.
std::shared_ptr<const CachedSchedule> unbind(runtime::PreparedSchedule prepared,
                                             const std::vector<ir::View>& external,
                                             const ir::Graph& lowered);

// The external views for a cached schedule, taken from the evaluated nodes of `order` (which
// lower() makes Input nodes). Call with the graph mutex held.
std::vector<ir::View> bind(const CachedSchedule& cached, const LazyOrder& order);
// The run-time values (scalars, seeds) of `order` for each of the schedule's parameters. Call
// with the graph mutex held.
std::vector<uint64_t> bind_parameters(const ir::Schedule& schedule, const LazyOrder& order);

// Thread-safe. Holds reusable schedules up to a bound on their estimated bytes, evicting the least
// recently found first. Remembering a schedule also drops those holding a kernel that the kernel
// cache has evicted since: they would keep its code alive beyond the kernel cache's capacity.
// (Until then they run correctly: they own their kernels' code.)
std::shared_ptr<const CachedSchedule> find_schedule(std::string_view key);
void remember_schedule(const std::string& key, std::shared_ptr<const CachedSchedule> cached);

// The default bound: a 200k-op graph's schedule takes about 47 MiB, an `a + b` one about 2 KiB.
inline constexpr int64_t kDefaultScheduleCacheBytes = int64_t{128} << 20;
// For tests: sets the bound (0: the default), evicting at once; the bytes held now.
void set_schedule_cache_bytes_limit(int64_t bytes);
int64_t schedule_cache_bytes();

}  // namespace fusejit::frontend
