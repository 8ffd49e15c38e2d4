#include "runtime/kernel_cache.h"

#include <llvm/ExecutionEngine/Orc/LLJIT.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "runtime/counters.h"

namespace fusejit::runtime {
namespace {

// Links compiled objects into the process. Compilation happens outside (codegen, one
// TargetMachine per thread); the JIT only links, under its own lock.
class Linker {
 public:
  KernelFn link(codegen::CompiledKernel compiled) {
    std::lock_guard lock(mutex_);
    if (!jit_) {
      auto created = llvm::orc::LLJITBuilder().create();
      if (!created) throw InternalError("cannot create the JIT: " + llvm::toString(created.takeError()));
      jit_ = std::move(*created);
    }
    if (auto error = jit_->addObjectFile(std::move(compiled.object)))
      throw InternalError("cannot link kernel " + compiled.symbol + ": " + llvm::toString(std::move(error)));
    auto address = jit_->lookup(compiled.symbol);
    if (!address)
      throw InternalError("kernel " + compiled.symbol + " not found: " + llvm::toString(address.takeError()));
    return address->toPtr<KernelFn>();
  }

 private:
  std::mutex mutex_;
  std::unique_ptr<llvm::orc::LLJIT> jit_;
};

struct Entry {
  std::mutex compiling;
  KernelFn fn = nullptr;
};

class KernelCache {
 public:
  KernelLookup get(const ir::Kernel& kernel, const codegen::DumpRequest& dump,
                   codegen::DumpTexts* texts) {
    const codegen::Target& target = codegen::host_target();
    static const size_t target_id = std::hash<std::string>()(target.key);
    std::string key = kernel.key();
    key.append(reinterpret_cast<const char*>(&target_id), sizeof target_id);
    std::shared_ptr<Entry> entry;
    {
      std::lock_guard lock(mutex_);
      auto& slot = entries_[key];
      if (!slot) slot = std::make_shared<Entry>();
      entry = slot;
    }
    std::lock_guard compiling(entry->compiling);
    bool want_texts = texts && (dump.llvm || dump.opt || dump.assembly);
    if (entry->fn) {
      counters().cache_hits++;
      // Codegen is deterministic: regenerating gives the texts of the cached kernel.
      if (want_texts) codegen::compile_kernel(kernel, target, symbol_for(key), dump, texts);
      return {entry->fn, true, 0};
    }
    counters().cache_misses++;
    auto start = std::chrono::steady_clock::now();
    codegen::CompiledKernel compiled =
        codegen::compile_kernel(kernel, target, symbol_for(key), dump, want_texts ? texts : nullptr);
    entry->fn = linker_.link(std::move(compiled));
    auto elapsed = std::chrono::steady_clock::now() - start;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
    counters().kernels_compiled++;
    counters().compile_ns += ns;
    return {entry->fn, false, ns / 1e6};
  }

 private:
  std::string symbol_for(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto [it, fresh] = symbols_.try_emplace(key, "fusejit_kernel_" + std::to_string(symbols_.size()));
    return it->second;
  }

  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries_;
  std::unordered_map<std::string, std::string> symbols_;
  Linker linker_;
};

KernelCache& cache() {
  static KernelCache* instance = new KernelCache;  // kernels stay callable during exit
  return *instance;
}

}  // namespace

KernelLookup get_kernel(const ir::Kernel& kernel, const codegen::DumpRequest& dump,
                        codegen::DumpTexts* texts) {
  return cache().get(kernel, dump, texts);
}

}  // namespace fusejit::runtime
