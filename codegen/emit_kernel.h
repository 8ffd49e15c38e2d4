// Kernel description -> LLVM IR: one module, one function per kernel.
//
// The function is `void fusejit_kernel(void* const* args, int64_t begin, int64_t end)`: `args` holds
// the input slots then the output slots (pointers to their first element), then the parameter
// slots (pointers to 8-byte words: a Scalar's float32 in the low bytes, a generator's uint64
// seed), and [begin, end) is the range of the domain's outermost dim to run, so threads split a
// kernel by calling it on disjoint ranges.
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <memory>
#include <string>

#include "codegen/target.h"
#include "ir/kernel.h"

namespace fusejit::codegen {

// Kernels that need scratch memory (a matmul's packed blocks) call this function of the
// runtime: `void* fusejit_thread_workspace(int64_t bytes)`, the calling thread's scratch of at
// least `bytes` (runtime::thread_workspace).
inline constexpr const char* kThreadWorkspaceSymbol = "fusejit_thread_workspace";

// The kernel's function: one name for every kernel, so that compiled code does not depend on
// the process that compiled it (the runtime links each kernel apart).
inline constexpr const char* kKernelSymbol = "fusejit_kernel";

std::unique_ptr<llvm::Module> emit_kernel(const ir::Kernel& kernel, const Target& target,
                                          llvm::LLVMContext& context);

}  // namespace fusejit::codegen
