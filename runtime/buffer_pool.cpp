#include "runtime/buffer_pool.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace fusejit::runtime {
namespace {

constexpr int64_t kAlignment = 64;
// Pooled bytes beyond this are freed at once rather than kept.
constexpr int64_t kMaxPooledBytes = int64_t{2} << 30;

class BufferPool {
 public:
  ~BufferPool() { release_all(); }

  void* take(int64_t bytes) {
    {
      std::lock_guard lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* data = it->second.back();
        it->second.pop_back();
        pooled_bytes_ -= bytes;
        return data;
      }
    }
    return std::aligned_alloc(kAlignment, static_cast<size_t>(bytes));
  }

  void give_back(void* data, int64_t bytes) {
    {
      std::lock_guard lock(mutex_);
      if (pooled_bytes_ + bytes <= kMaxPooledBytes) {
        free_[bytes].push_back(data);
        pooled_bytes_ += bytes;
        return;
      }
    }
    std::free(data);
  }

  void release_all() {
    std::lock_guard lock(mutex_);
    for (auto& [bytes, buffers] : free_)
      for (void* data : buffers) std::free(data);
    free_.clear();
    pooled_bytes_ = 0;
  }

 private:
  std::mutex mutex_;
  std::map<int64_t, std::vector<void*>> free_;
  int64_t pooled_bytes_ = 0;
};

BufferPool& pool() {
  static BufferPool* instance = new BufferPool;  // outlives tensors destroyed at exit
  return *instance;
}

}  // namespace

std::shared_ptr<ir::Storage> allocate(int64_t bytes) {
  if (bytes < 0 || bytes > INT64_MAX - kAlignment)
    throw Error("cannot allocate " + std::to_string(bytes) + " bytes");
  int64_t rounded = (std::max<int64_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
  void* data = pool().take(rounded);
  if (!data)
    throw Error("cannot allocate " + std::to_string(bytes) + " bytes for a tensor: out of memory");
  return std::make_shared<ir::Storage>(
      data, rounded, [](void* released, int64_t size) { pool().give_back(released, size); });
}

void release_pooled_buffers() { pool().release_all(); }

}  // namespace fusejit::runtime
