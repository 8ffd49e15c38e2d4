// Compiled kernels, keyed by the canonical kernel text plus the target; compiled once per key
// through one lazily created ORC LLJIT, and kept up to kernel_cache_capacity() (least recently
// used evicted first).
#pragma once

#include <cstdint>
#include <string>

#include "codegen/compile.h"
#include "ir/kernel.h"
#include "runtime/kernel_code.h"

namespace fusejit::runtime {

struct KernelLookup {
  enum class Source { memory, disk, compiler };
  KernelCode code;
  Source source = Source::memory;
  double milliseconds = 0;  // to load it from disk, or to compile it
};

// Thread-safe; two threads asking for the same new key compile it once (or load it from the
// disk cache, runtime/disk_cache.h, and a compiled kernel is written there). A compile that throws
// leaves no entry behind, so the next call tries again. A kernel evicted and asked for again is
// compiled again (under a new symbol: its old code may still be alive).
KernelLookup get_kernel(const ir::Kernel& kernel, const codegen::DumpRequest& dump = {},
                        codegen::DumpTexts* texts = nullptr);

}  // namespace fusejit::runtime
