// Output buffers, reused by size: a fresh large allocation costs page faults on every first
// touch (27.6 ms for 64 MiB against 3.3 ms to refill a reused one), which would swamp every
// large-tensor kernel.
#pragma once

#include <memory>

#include "ir/node.h"

namespace fusejit::runtime {

// 64-byte aligned storage of at least `bytes`; returned to the pool when the last view dies.
// Throws Error when the memory cannot be had.
std::shared_ptr<ir::Storage> allocate(int64_t bytes);

// Scratch memory of the calling thread, 64-byte aligned, at least `bytes` (kept and grown, never
// shrunk: kernels ask for a bounded size, a matmul's packed blocks of a few MiB). Valid until the
// thread's next call. Called from kernels, which cannot throw: aborts with a message when the
// memory cannot be had.
void* thread_workspace(int64_t bytes) noexcept;

// Frees every pooled buffer and returns the heap's free pages to the system.
void release_pooled_buffers();

// Bounds the free bytes the pool keeps (0: the default, 2 GiB or an eighth of the RAM, whichever
// is less), and reports them; for tests.
void set_pooled_bytes_limit(int64_t bytes);
int64_t pooled_bytes();

// The most bytes of allocate()'s buffers alive at once since reset_peak_bytes_in_use(), which
// starts over from those alive now; for tests of what a schedule holds at its peak.
int64_t peak_bytes_in_use();
void reset_peak_bytes_in_use();

}  // namespace fusejit::runtime
