// Compiled kernels as the executor and the frontend hold them, and the kernel cache's bound.
// No LLVM types: the JIT's side lives in runtime/kernel_cache.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace fusejit::runtime {

// A compiled kernel: runs [begin, end) of its parallel dim (codegen/emit_kernel.h).
using KernelFn = void (*)(void* const* args, int64_t begin, int64_t end);

// One kernel's code in the JIT. Copies share it, and the JIT frees the code when the last copy
// is destroyed. The kernel cache holds a copy while the kernel is cached; cached schedules and
// executions in flight hold theirs, so evicting a kernel never frees code that can still run.
class KernelCode {
 public:
  struct Jitted;  // the cache entry and the JIT's resource tracker (runtime/kernel_cache.cpp)

  KernelCode() = default;
  KernelCode(KernelFn fn, std::shared_ptr<const Jitted> jitted) : fn_(fn), jitted_(std::move(jitted)) {}

  KernelFn fn() const { return fn_; }
  // The kernel cache has dropped this code: only the copies held elsewhere keep it alive.
  bool evicted() const;

 private:
  KernelFn fn_ = nullptr;
  std::shared_ptr<const Jitted> jitted_;
};

using KernelCodes = std::vector<KernelCode>;

// The kernel cache keeps at most `kernels` compiled kernels, evicting the least recently looked
// up; lowering the capacity evicts at once. Expects kernels >= 1.
inline constexpr int64_t kDefaultKernelCacheCapacity = 4096;
void set_kernel_cache_capacity(int64_t kernels);
int64_t kernel_cache_capacity();

// Kernels evicted since the process started. Unlike Stats::kernels_evicted, never reset, so a
// change says that some KernelCode may have become evicted().
int64_t kernel_evictions_since_start();

}  // namespace fusejit::runtime
