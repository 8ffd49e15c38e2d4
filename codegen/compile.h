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

// The kernel's relocatable object (ELF) for the JIT linker, defining kKernelSymbol
// (codegen/emit_kernel.h). Thread-safe: each thread compiles with its own TargetMachine and
// LLVMContext.
std::unique_ptr<llvm::MemoryBuffer> compile_kernel(const ir::Kernel& kernel, const Target& target,
                                                   const DumpRequest& dump = {}, DumpTexts* texts = nullptr);

// The pass pipeline and code generation options compile_kernel uses, as text: compiled code
// kept beyond this process (the disk cache) is valid only under the same settings.
std::string optimization_settings();

}  // namespace fusejit::codegen
