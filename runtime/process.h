// Everything fusejit keeps for the whole process, in one place: what each piece holds, what
// guards it and how long it lives.
//
// process() makes the one Process on first use and never destroys it, nor what its accessors
// return: tensors, schedules and kernels that die during exit, after ordinary statics are gone,
// still give their buffers back to the pool and their code back to the JIT.
//
// Locks nest only so: the graph mutex over the schedule cache's (finding a schedule) and the
// pool's (a dropped history frees its buffers); a kernel's compile lock over the kernel cache's and
// the JIT's. Whatever a cache evicts is destroyed after it unlocks, since freeing code takes the
// JIT's lock.
//
// Per thread, and so unlocked (thread_local where used): the oneTBB arena of each user thread's
// launches (runtime/parallel.cpp), a launch's argument list (runtime/executor.cpp), the schedule
// cache's last hit, held weakly (frontend/schedule_cache.cpp), and codegen's TargetMachines
// (codegen/compile.cpp). Fixed once computed: the host target (codegen/target.cpp) and the
// pool's default bound (from the RAM).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "ir/passes.h"

namespace fusejit::frontend {
struct ScheduleCache;
}

namespace fusejit::runtime {

class BufferPool;
class KernelCache;
class Linker;

// The counts behind fusejit::stats(). Each stands alone: atomics, with no order among them.
struct Counters {
  std::atomic<int64_t> kernels_compiled{0};
  std::atomic<int64_t> cache_hits{0};
  std::atomic<int64_t> cache_misses{0};
  std::atomic<int64_t> kernels_launched{0};
  std::atomic<int64_t> kernels_evicted{0};
  std::atomic<int64_t> disk_hits{0};
  std::atomic<int64_t> compile_ns{0};
  std::atomic<int64_t> buffers_allocated{0};
};

struct Process {
  // Settings: atomics that any thread may change at any time. An evaluation reads `fusion` and
  // `reduction_chunk` once, at its start, and a launch reads `threads` (1 to kMaxThreads) once.
  std::atomic<bool> fusion{true};
  std::atomic<int64_t> reduction_chunk{ir::kReductionChunk};
  std::atomic<int> threads{static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};

  Counters counters;

  // Numbers the files written to FUSEJIT_DUMP_DIR in the order they are written.
  std::atomic<int> dump_files{0};

  // The frontend's lock over the lazy graph: every ir::Node's inputs, value and lowering stamp,
  // and the scratch that order_nodes() and structure_key() reuse. Held while pending nodes are
  // ordered, lowered, keyed and bound, and while results are stored into them; never while
  // scheduling, compiling or running, so evaluations overlap there.
  std::mutex graph_mutex;
  // Signalled (under graph_mutex) when an evaluation that writes a tensor's storage in place
  // ends: evaluations that need one of its nodes wait for it (ir::Node::writing).
  std::condition_variable in_place_done;

  // Each defined in, and private to, the file named; each guarded by a mutex of its own, held
  // only for its own bookkeeping.
  // Free output buffers by size, within a bound (runtime/buffer_pool.cpp).
  BufferPool& buffer_pool();
  // Compiled kernels by key, the least recently used evicted (runtime/kernel_cache.cpp). Each
  // entry also has a compile lock, held while its kernel compiles: a second asker waits for it.
  KernelCache& kernel_cache();
  // The ORC LLJIT, which links compiled kernels and frees them (runtime/kernel_cache.cpp).
  Linker& linker();
  // Prepared schedules by graph structure, within a bound on their bytes
  // (frontend/schedule_cache.cpp).
  frontend::ScheduleCache& schedule_cache();
};

Process& process();

}  // namespace fusejit::runtime
