#include "runtime/parallel.h"

#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

namespace fusejit::runtime {
namespace {

struct Arena {
  std::mutex mutex;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::shared_ptr<tbb::task_arena> arena;
};

Arena& arena_state() {
  static Arena state;
  return state;
}

}  // namespace

void set_num_threads(int threads) {
  Arena& state = arena_state();
  std::lock_guard lock(state.mutex);
  if (threads != state.threads) state.arena.reset();
  state.threads = threads;
}

int num_threads() {
  Arena& state = arena_state();
  std::lock_guard lock(state.mutex);
  return state.threads;
}

void parallel_parts(int64_t parts, const std::function<void(int64_t)>& body) {
  std::shared_ptr<tbb::task_arena> arena;
  {
    Arena& state = arena_state();
    std::lock_guard lock(state.mutex);
    if (state.threads > 1 && parts > 1) {
      // No more concurrency than oneTBB will staff (it warns on every larger request); the
      // parts stay as many as the threads asked for.
      if (!state.arena)
        state.arena = std::make_shared<tbb::task_arena>(
            std::min(state.threads, tbb::info::default_concurrency()));
      arena = state.arena;
    }
  }
  if (!arena) {
    for (int64_t part = 0; part < parts; ++part) body(part);
    return;
  }
  arena->execute([&] {
    tbb::parallel_for(int64_t{0}, parts, [&](int64_t part) { body(part); },
                      tbb::static_partitioner());
  });
}

void parallel_copy(void* to, const void* from, int64_t bytes) {
  constexpr int64_t kMinPartBytes = int64_t{1} << 18;  // below, a fork/join costs more than it saves
  int64_t parts = std::clamp<int64_t>(bytes / kMinPartBytes, 1, num_threads());
  int64_t part_bytes = (bytes / parts + 63) / 64 * 64;
  parallel_parts(parts, [&](int64_t part) {
    int64_t begin = part * part_bytes, end = std::min(bytes, begin + part_bytes);
    if (begin < end)
      std::memcpy(static_cast<char*>(to) + begin, static_cast<const char*>(from) + begin, end - begin);
  });
}

}  // namespace fusejit::runtime
