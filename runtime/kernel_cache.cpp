#include "runtime/kernel_cache.h"

#include <llvm/ExecutionEngine/Orc/Core.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/raw_ostream.h>

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "codegen/emit_kernel.h"
#include "ir/key.h"
#include "runtime/buffer_pool.h"
#include "runtime/process.h"

namespace fusejit::runtime {

// Links compiled objects into the process and frees them again. Compilation happens outside
// (codegen, one TargetMachine per thread); the JIT is used under one lock.
class Linker {
 public:
  struct Linked {
    KernelFn fn;
    llvm::orc::ResourceTrackerSP tracker;  // owns the object's code and data in the JIT
  };

  // Each object gets its own resource tracker, so that it can be freed alone.
  Linked link(codegen::CompiledKernel compiled) {
    std::lock_guard lock(mutex_);
    if (!jit_) {
      auto created = llvm::orc::LLJITBuilder().create();
      if (!created) throw InternalError("cannot create the JIT: " + llvm::toString(created.takeError()));
      jit_ = std::move(*created);
      llvm::orc::SymbolMap runtime_symbols;
      runtime_symbols[jit_->mangleAndIntern(codegen::kThreadWorkspaceSymbol)] = {
          llvm::orc::ExecutorAddr::fromPtr(&thread_workspace), llvm::JITSymbolFlags::Exported};
      if (auto error = jit_->getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(runtime_symbols))))
        throw InternalError("cannot define the runtime's symbols: " + llvm::toString(std::move(error)));
    }
    llvm::orc::ResourceTrackerSP tracker = jit_->getMainJITDylib().createResourceTracker();
    if (auto error = jit_->addObjectFile(tracker, std::move(compiled.object)))
      throw InternalError("cannot link kernel " + compiled.symbol + ": " + llvm::toString(std::move(error)));
    auto address = jit_->lookup(compiled.symbol);
    if (!address) {
      std::string reason = llvm::toString(address.takeError());
      remove_locked(*tracker);
      throw InternalError("kernel " + compiled.symbol + " not found: " + reason);
    }
    return {address->toPtr<KernelFn>(), std::move(tracker)};
  }

  // Frees what was linked under `tracker`. Runs in destructors: reports errors, never throws.
  void unlink(llvm::orc::ResourceTracker& tracker) noexcept {
    std::lock_guard lock(mutex_);
    remove_locked(tracker);
  }

 private:
  static void remove_locked(llvm::orc::ResourceTracker& tracker) noexcept {
    if (auto error = tracker.remove())
      llvm::logAllUnhandledErrors(std::move(error), llvm::errs(), "fusejit: cannot free a kernel: ");
  }

  std::mutex mutex_;
  std::unique_ptr<llvm::orc::LLJIT> jit_;
};

Linker& Process::linker() {
  static Linker* instance = new Linker;
  return *instance;
}

// One key's entry in the cache and, through its resource tracker, the owner of the code.
struct KernelCode::Jitted {
  std::mutex compiling;   // held while compiling: a second asker for the key waits for the code
  std::string symbol;     // unique per entry: evicted code may still live beside its recompile
  KernelFn fn = nullptr;  // set under `compiling` once linked
  llvm::orc::ResourceTrackerSP tracker;
  std::atomic<bool> evicted{false};

  ~Jitted() {
    if (tracker) process().linker().unlink(*tracker);
  }
};

bool KernelCode::evicted() const { return jitted_ && jitted_->evicted.load(std::memory_order_relaxed); }

class KernelCache {
 public:
  KernelLookup get(const ir::Kernel& kernel, const codegen::DumpRequest& dump,
                   codegen::DumpTexts* texts) {
    const codegen::Target& target = codegen::host_target();
    static const size_t target_id = std::hash<std::string>()(target.key);
    std::string key = kernel.key();
    key.append(reinterpret_cast<const char*>(&target_id), sizeof target_id);
    std::shared_ptr<KernelCode::Jitted> jitted = entry_for(key);
    std::lock_guard compiling(jitted->compiling);
    bool want_texts = texts && (dump.llvm || dump.opt || dump.assembly);
    if (jitted->fn) {
      process().counters.cache_hits++;
      // Codegen is deterministic: regenerating gives the texts of the cached kernel.
      if (want_texts) codegen::compile_kernel(kernel, target, jitted->symbol, dump, texts);
      return {KernelCode(jitted->fn, jitted), true, 0};
    }
    process().counters.cache_misses++;
    auto start = std::chrono::steady_clock::now();
    try {
      Linker::Linked linked = process().linker().link(
          codegen::compile_kernel(kernel, target, jitted->symbol, dump, want_texts ? texts : nullptr));
      jitted->tracker = std::move(linked.tracker);
      jitted->fn = linked.fn;
    } catch (...) {
      forget(key, jitted);
      throw;
    }
    auto elapsed = std::chrono::steady_clock::now() - start;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
    process().counters.kernels_compiled++;
    process().counters.compile_ns += ns;
    return {KernelCode(jitted->fn, jitted), false, ns / 1e6};
  }

  void set_capacity(int64_t kernels) {
    Evicted evicted;  // destroyed after unlocking: freeing code takes the linker's lock
    std::lock_guard lock(mutex_);
    capacity_ = kernels;
    evict_beyond_capacity(evicted);
  }

  int64_t capacity() {
    std::lock_guard lock(mutex_);
    return capacity_;
  }

  // Read without the lock: the schedule cache polls it on every schedule it remembers.
  int64_t evictions_since_start() const { return evictions_since_start_; }

 private:
  using Evicted = std::vector<std::shared_ptr<KernelCode::Jitted>>;
  struct Entry {
    std::string key;
    std::shared_ptr<KernelCode::Jitted> jitted;
  };

  // The entry for `key`, now the most recently used; a new one, still to be compiled, may push
  // the least recently used out.
  std::shared_ptr<KernelCode::Jitted> entry_for(const std::string& key) {
    Evicted evicted;
    std::lock_guard lock(mutex_);
    if (auto found = index_.find(key); found != index_.end()) {
      lru_.splice(lru_.begin(), lru_, found->second);
      return found->second->jitted;
    }
    auto jitted = std::make_shared<KernelCode::Jitted>();
    jitted->symbol = "fusejit_kernel_" + std::to_string(entries_made_++);
    lru_.push_front({key, jitted});
    index_.emplace(lru_.front().key, lru_.begin());
    evict_beyond_capacity(evicted);
    return jitted;
  }

  // Drops the entry of a compile that failed, unless it was evicted (or replaced) meanwhile.
  void forget(const std::string& key, const std::shared_ptr<KernelCode::Jitted>& jitted) {
    std::lock_guard lock(mutex_);
    auto found = index_.find(key);
    if (found == index_.end() || found->second->jitted != jitted) return;
    auto position = found->second;
    index_.erase(found);
    lru_.erase(position);
  }

  // With mutex_ held. An entry still compiling may be evicted too: its askers get its code all
  // the same, and the next asker compiles it again.
  void evict_beyond_capacity(Evicted& evicted) {
    while (static_cast<int64_t>(lru_.size()) > capacity_) {
      Entry& victim = lru_.back();
      victim.jitted->evicted = true;
      evicted.push_back(std::move(victim.jitted));
      index_.erase(victim.key);
      lru_.pop_back();
      process().counters.kernels_evicted++;
      evictions_since_start_++;
    }
  }

  std::mutex mutex_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator, ir::KeyHash> index_;  // into lru_ keys
  int64_t capacity_ = kDefaultKernelCacheCapacity;
  uint64_t entries_made_ = 0;
  std::atomic<int64_t> evictions_since_start_{0};
};

KernelCache& Process::kernel_cache() {
  static KernelCache* instance = new KernelCache;
  return *instance;
}

KernelLookup get_kernel(const ir::Kernel& kernel, const codegen::DumpRequest& dump,
                        codegen::DumpTexts* texts) {
  return process().kernel_cache().get(kernel, dump, texts);
}

void set_kernel_cache_capacity(int64_t kernels) { process().kernel_cache().set_capacity(kernels); }
int64_t kernel_cache_capacity() { return process().kernel_cache().capacity(); }
int64_t kernel_evictions_since_start() { return process().kernel_cache().evictions_since_start(); }

}  // namespace fusejit::runtime
