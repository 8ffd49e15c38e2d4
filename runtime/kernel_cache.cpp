#include "runtime/kernel_cache.h"

#include <llvm/ExecutionEngine/Orc/Core.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/raw_ostream.h>

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "codegen/emit_kernel.h"
#include "ir/key.h"
#include "runtime/buffer_pool.h"
#include "runtime/disk_cache.h"
#include "runtime/process.h"

namespace fusejit::runtime {

// Links compiled objects into the process and frees them again. Compilation happens outside
// (codegen, one TargetMachine per thread); the JIT is used under one lock.
//
// Each object is linked into a JITDylib of its own, which resolves the runtime's symbols through
// the main one: every kernel's function has the same name (kKernelSymbol), so an object is the
// same bytes whichever process compiled it (the disk cache shares them), and a kernel evicted
// and linked again sits beside its old code, which may still be running.
class Linker {
 public:
  struct Linked {
    KernelFn fn;
    llvm::orc::JITDylib* library;  // owns the object's code and data in the JIT
  };

  // Links a copy of `object` (the JIT owns it) into a new JITDylib named `name` (unique in the
  // process).
  Linked link(std::string_view object, const std::string& name) {
    std::lock_guard lock(mutex_);
    if (!jit_) create_jit();
    auto library = jit_->createJITDylib(name);
    if (!library) throw InternalError("cannot create a JITDylib for " + name + ": " + llvm::toString(library.takeError()));
    library->addToLinkOrder(jit_->getMainJITDylib());
    auto fail = [&](const std::string& what, llvm::Error error) {
      std::string reason = llvm::toString(std::move(error));
      remove_locked(*library);
      return InternalError(what + " " + name + ": " + reason);
    };
    if (auto error = jit_->addObjectFile(*library, llvm::MemoryBuffer::getMemBufferCopy(object, name)))
      throw fail("cannot link kernel", std::move(error));
    auto address = jit_->lookup(*library, codegen::kKernelSymbol);
    if (!address) throw fail("no kernel function in", address.takeError());
    return {address->toPtr<KernelFn>(), &*library};
  }

  // Frees what was linked into `library`. Runs in destructors: reports errors, never throws.
  void unlink(llvm::orc::JITDylib& library) noexcept {
    std::lock_guard lock(mutex_);
    remove_locked(library);
  }

 private:
  void create_jit() {
    auto created = llvm::orc::LLJITBuilder().create();
    if (!created) throw InternalError("cannot create the JIT: " + llvm::toString(created.takeError()));
    jit_ = std::move(*created);
    llvm::orc::SymbolMap runtime_symbols;
    runtime_symbols[jit_->mangleAndIntern(codegen::kThreadWorkspaceSymbol)] = {
        llvm::orc::ExecutorAddr::fromPtr(&thread_workspace), llvm::JITSymbolFlags::Exported};
    if (auto error = jit_->getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(runtime_symbols))))
      throw InternalError("cannot define the runtime's symbols: " + llvm::toString(std::move(error)));
  }

  void remove_locked(llvm::orc::JITDylib& library) noexcept {
    if (auto error = jit_->getExecutionSession().removeJITDylib(library))
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
  std::string name;       // unique per entry: evicted code may still live beside its recompile
  KernelFn fn = nullptr;  // set under `compiling` once linked
  llvm::orc::JITDylib* library = nullptr;
  std::atomic<bool> evicted{false};

  ~Jitted() {
    if (library) process().linker().unlink(*library);
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
    const size_t kernel_key_size = key.size();
    key.append(reinterpret_cast<const char*>(&target_id), sizeof target_id);
    std::shared_ptr<KernelCode::Jitted> jitted = entry_for(key);
    std::lock_guard compiling(jitted->compiling);
    bool want_texts = texts && (dump.llvm || dump.opt || dump.assembly);
    if (jitted->fn) {
      process().counters.cache_hits++;
      // Codegen is deterministic: regenerating gives the texts of the cached kernel.
      if (want_texts) codegen::compile_kernel(kernel, target, dump, texts);
      return {KernelCode(jitted->fn, jitted), KernelLookup::Source::memory, 0};
    }
    process().counters.cache_misses++;
    try {
      KernelLookup lookup = load_or_compile(*jitted, kernel, std::string_view(key).substr(0, kernel_key_size), dump,
                                            want_texts ? texts : nullptr);
      lookup.code = KernelCode(jitted->fn, jitted);
      return lookup;
    } catch (...) {
      forget(key, jitted);
      throw;
    }
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

  // Links `jitted`'s code: the disk cache's object for the kernel if it has an intact one that
  // links, else a compiled one (then stored there). Dumps need the compile's texts: with
  // `texts`, the kernel is compiled. `kernel_key` is kernel.key().
  KernelLookup load_or_compile(KernelCode::Jitted& jitted, const ir::Kernel& kernel, std::string_view kernel_key,
                               const codegen::DumpRequest& dump, codegen::DumpTexts* texts) {
    auto start = std::chrono::steady_clock::now();
    auto milliseconds = [&] {
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    };
    auto link = [&](std::string_view object) {
      Linker::Linked linked = process().linker().link(object, jitted.name);
      jitted.library = linked.library;
      jitted.fn = linked.fn;
    };
    const std::string& prefix = disk_key_prefix();
    std::string disk_key = prefix.empty() ? std::string() : prefix + std::string(kernel_key);
    if (!texts && !disk_key.empty()) {
      if (std::optional<std::string> object = load_kernel_object(disk_key)) {
        try {
          link(*object);
          process().counters.disk_hits++;
          return {{}, KernelLookup::Source::disk, milliseconds()};
        } catch (const InternalError&) {
          // Intact bytes that do not link: compiled below and written over.
        }
      }
    }
    std::unique_ptr<llvm::MemoryBuffer> object = codegen::compile_kernel(kernel, codegen::host_target(), dump, texts);
    link(object->getBuffer());
    double compile_ms = milliseconds();
    process().counters.kernels_compiled++;
    process().counters.compile_ns += static_cast<int64_t>(compile_ms * 1e6);
    if (!disk_key.empty()) store_kernel_object(disk_key, object->getBuffer());
    return {{}, KernelLookup::Source::compiler, compile_ms};
  }

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
    jitted->name = "fusejit_kernel_" + std::to_string(entries_made_++);
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
