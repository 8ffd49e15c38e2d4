// LLVM IR -> optimized IR -> machine code (an object file in memory), with dumps of each step.
#pragma once

#include <llvm/Support/MemoryBuffer.h>

#include <memory>
#include <string>

#include "codegen/target.h"
#include "ir/kernel.h"

namespace fusejit::codegen {

// Which intermediate texts to keep while compiling.
struct DumpRequest {
  bool llvm = false;  // IR as emitted
  bool opt = false;   // IR after optimization
  bool assembly = false;
};

struct DumpTexts {
  std::string llvm, opt, assembly;
};

struct CompiledKernel {
  std::unique_ptr<llvm::MemoryBuffer> object;  // relocatable ELF for the JIT linker
  std::string symbol;
};

// Thread-safe: each thread compiles with its own TargetMachine and LLVMContext.
CompiledKernel compile_kernel(const ir::Kernel& kernel, const Target& target,
                              const std::string& symbol, const DumpRequest& dump = {},
                              DumpTexts* texts = nullptr);

}  // namespace fusejit::codegen
