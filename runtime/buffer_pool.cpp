#include "runtime/buffer_pool.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/process.h"

namespace fusejit::runtime {
namespace {

constexpr int64_t kAlignment = 64;

// Buffers of at least this size (always fresh mappings from glibc) ask for 2 MiB pages, where
// transparent huge pages are enabled (madvise mode or always). A fresh 64 MiB output then
// faults in 32 pages instead of 16384 (6-11 ms instead of 52-60 ms for x * 2 at 4096x4096 in
// a VM), and streaming it walks the page tables 512x less often (a 4096x4096 sum, 5-15%).
constexpr int64_t kHugePageMinimum = int64_t{32} << 20;
constexpr int64_t kHugePage = int64_t{2} << 20;

void* allocate_fresh(int64_t bytes) {
  if (bytes < kHugePageMinimum) return std::aligned_alloc(kAlignment, static_cast<size_t>(bytes));
  auto whole_pages = static_cast<size_t>((bytes + kHugePage - 1) / kHugePage * kHugePage);
  void* data = std::aligned_alloc(kHugePage, whole_pages);
  if (data) madvise(data, whole_pages, MADV_HUGEPAGE);  // a hint: without huge pages, 4 KiB ones
  return data;
}

// The default bound on pooled (free) bytes: 2 GiB (32 buffers of 4096x4096 floats), or an
// eighth of the RAM on smaller machines, where memory nobody uses weighs more.
int64_t default_pooled_bytes_limit() {
  static const int64_t limit = [] {
    long pages = sysconf(_SC_PHYS_PAGES), page_bytes = sysconf(_SC_PAGESIZE);
    int64_t two_gib = int64_t{2} << 30;
    return pages > 0 && page_bytes > 0 ? std::min(two_gib, int64_t{pages} * page_bytes / 8) : two_gib;
  }();
  return limit;
}

}  // namespace

class BufferPool {
 public:
  void* take(int64_t bytes) {
    {
      std::lock_guard lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.buffers.empty()) {
        void* data = it->second.buffers.back();
        it->second.buffers.pop_back();
        it->second.last_use = ++uses_;
        pooled_bytes_ -= bytes;
        count_handed_out(bytes);
        return data;
      }
    }
    void* data = allocate_fresh(bytes);
    if (data) {
      std::lock_guard lock(mutex_);
      count_handed_out(bytes);
    }
    return data;
  }

  // Keeps `data` for the next request of its size. Over the limit, the sizes least recently
  // used make room: a pool full of some sizes must not turn every other size into fresh
  // allocations (and page faults) for good.
  void give_back(void* data, int64_t bytes) {
    std::vector<void*> evicted;
    {
      std::lock_guard lock(mutex_);
      bytes_in_use_ -= bytes;
      while (bytes <= limit_ && pooled_bytes_ + bytes > limit_) {
        auto victim = free_.end();
        for (auto it = free_.begin(); it != free_.end(); ++it)
          if (it->first != bytes && !it->second.buffers.empty() &&
              (victim == free_.end() || it->second.last_use < victim->second.last_use))
            victim = it;
        if (victim == free_.end()) break;
        evicted.push_back(victim->second.buffers.back());
        victim->second.buffers.pop_back();
        pooled_bytes_ -= victim->first;
      }
      if (pooled_bytes_ + bytes <= limit_) {
        SizeClass& size = free_[bytes];
        size.buffers.push_back(data);
        size.last_use = ++uses_;
        pooled_bytes_ += bytes;
        data = nullptr;
      }
    }
    for (void* buffer : evicted) std::free(buffer);
    std::free(data);
  }

  void release_all() {
    {
      std::lock_guard lock(mutex_);
      for (auto& [bytes, size] : free_)
        for (void* data : size.buffers) std::free(data);
      free_.clear();
      pooled_bytes_ = 0;
    }
    // Buffers below glibc's mmap threshold (which rises up to 32 MiB as large buffers are freed)
    // come from the heap, whose free pages free() keeps unless they are at its top.
    malloc_trim(0);
  }

  void set_limit(int64_t bytes) {
    std::lock_guard lock(mutex_);
    limit_ = bytes;
  }

  int64_t pooled_bytes() {
    std::lock_guard lock(mutex_);
    return pooled_bytes_;
  }

  int64_t peak_bytes_in_use() {
    std::lock_guard lock(mutex_);
    return peak_bytes_in_use_;
  }

  void reset_peak_bytes_in_use() {
    std::lock_guard lock(mutex_);
    peak_bytes_in_use_ = bytes_in_use_;
  }

 private:
  // With mutex_ held.
  void count_handed_out(int64_t bytes) {
    bytes_in_use_ += bytes;
    peak_bytes_in_use_ = std::max(peak_bytes_in_use_, bytes_in_use_);
  }

  struct SizeClass {
    std::vector<void*> buffers;
    uint64_t last_use = 0;  // when a buffer of this size was last taken or given back
  };
  std::mutex mutex_;
  std::unordered_map<int64_t, SizeClass> free_;  // by size
  int64_t pooled_bytes_ = 0;
  int64_t bytes_in_use_ = 0;  // handed out and not given back yet
  int64_t peak_bytes_in_use_ = 0;
  int64_t limit_ = default_pooled_bytes_limit();
  uint64_t uses_ = 0;
};

BufferPool& Process::buffer_pool() {
  static BufferPool* instance = new BufferPool;
  return *instance;
}

std::shared_ptr<ir::Storage> allocate(int64_t bytes) {
  if (bytes < 0 || bytes > INT64_MAX - kAlignment)
    throw Error("cannot allocate " + std::to_string(bytes) + " bytes");
  int64_t rounded = (std::max<int64_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
  void* data = process().buffer_pool().take(rounded);
  process().counters.buffers_allocated++;
  if (!data)
    throw Error("cannot allocate " + std::to_string(bytes) + " bytes for a tensor: out of memory");
  return std::make_shared<ir::Storage>(data, rounded, [](void* released, int64_t size) {
    process().buffer_pool().give_back(released, size);
  });
}

void* thread_workspace(int64_t bytes) noexcept {
  struct Workspace {
    void* data = nullptr;
    int64_t bytes = 0;
    ~Workspace() { std::free(data); }
  };
  thread_local Workspace workspace;
  if (bytes > workspace.bytes) {
    std::free(workspace.data);
    int64_t rounded = (bytes + 63) / 64 * 64;
    workspace.data = std::aligned_alloc(64, static_cast<size_t>(rounded));
    workspace.bytes = rounded;
    // A kernel cannot throw: without its few MiB of scratch there is no way on.
    if (!workspace.data) {
      std::fprintf(stderr, "fusejit: cannot allocate %lld bytes of kernel scratch memory\n", static_cast<long long>(rounded));
      std::abort();
    }
  }
  return workspace.data;
}

void release_pooled_buffers() { process().buffer_pool().release_all(); }

void set_pooled_bytes_limit(int64_t bytes) {
  process().buffer_pool().set_limit(bytes > 0 ? bytes : default_pooled_bytes_limit());
}
int64_t pooled_bytes() { return process().buffer_pool().pooled_bytes(); }

int64_t peak_bytes_in_use() { return process().buffer_pool().peak_bytes_in_use(); }
void reset_peak_bytes_in_use() { process().buffer_pool().reset_peak_bytes_in_use(); }

}  // namespace fusejit::runtime
