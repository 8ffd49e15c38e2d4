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
  KernelCode code;
  bool cache_hit = false;
  double compile_ms = 0;
};

// Thread-safe; two threads asking for the same new key compile it once. A compile that throws
// leaves no entry behind, so the next call tries again. A kernel evicted and asked for again is
// compiled again (under a new symbol: its old code may still be alive).
KernelLookup get_kernel(const ir::Kernel& kernel, const codegen::DumpRequest& dump = {},
                        codegen::DumpTexts* texts = nullptr);

}  // namespace fusejit::runtime
