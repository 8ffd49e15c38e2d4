#include "runtime/parallel.h"

#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "runtime/process.h"

// oneTBB is not built for ThreadSanitizer, so the fork and join of its workers are invisible to
// it; parallel_parts states them (see tests/tsan.supp for what remains suppressed).
#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* address);
extern "C" void __tsan_release(void* address);
#define FUSEJIT_TSAN_ACQUIRE(address) __tsan_acquire(address)
#define FUSEJIT_TSAN_RELEASE(address) __tsan_release(address)
#else
#define FUSEJIT_TSAN_ACQUIRE(address)
#define FUSEJIT_TSAN_RELEASE(address)
#endif

namespace fusejit::runtime {
namespace {

// Each user thread enters an arena of its own: in a shared one, oneTBB may run one thread's
// parallel region on another user thread that entered it (a hand-off ThreadSanitizer cannot
// see, and a wait on someone else's work). No more concurrency than oneTBB will staff (it
// warns on every larger request); the parts stay as many as the threads asked for.
tbb::task_arena& arena_for(int threads) {
  thread_local std::unique_ptr<tbb::task_arena> arena;
  thread_local int made_for = 0;
  if (!arena || made_for != threads) {
    arena = std::make_unique<tbb::task_arena>(std::min(threads, tbb::info::default_concurrency()));
    made_for = threads;
  }
  return *arena;
}

}  // namespace

void parallel_parts(int64_t parts, const std::function<void(int64_t)>& body) {
  int threads = process().threads;
  if (threads == 1 || parts < 2) {
    for (int64_t part = 0; part < parts; ++part) body(part);
    return;
  }
  // Every part starts after the fork and ends before the join; parts are not ordered among
  // themselves (a race between two parts is still reported).
  [[maybe_unused]] char fork = 0, join = 0;
  FUSEJIT_TSAN_RELEASE(&fork);
  arena_for(threads).execute([&] {
    tbb::parallel_for(int64_t{0}, parts, [&](int64_t part) {
      FUSEJIT_TSAN_ACQUIRE(&fork);
      body(part);
      FUSEJIT_TSAN_RELEASE(&join);
    }, tbb::static_partitioner());
  });
  FUSEJIT_TSAN_ACQUIRE(&join);
}

void parallel_copy(void* to, const void* from, int64_t bytes) {
  constexpr int64_t kMinPartBytes = int64_t{1} << 18;  // below, a fork/join costs more than it saves
  int64_t parts = std::clamp<int64_t>(bytes / kMinPartBytes, 1, process().threads.load());
  int64_t part_bytes = (bytes / parts + 63) / 64 * 64;
  parallel_parts(parts, [&](int64_t part) {
    int64_t begin = part * part_bytes, end = std::min(bytes, begin + part_bytes);
    if (begin < end)
      std::memcpy(static_cast<char*>(to) + begin, static_cast<const char*>(from) + begin, end - begin);
  });
}

}  // namespace fusejit::runtime
