#include "codegen/compile.h"

#include <llvm/Analysis/CGSCCPassManager.h>
#include <llvm/Analysis/LoopAnalysisManager.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/PassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>
#include <llvm/Transforms/Utils/Cloning.h>

#include <map>

#include "codegen/emit_kernel.h"

namespace fusejit::codegen {
namespace {

// The code is emitted already vectorized, so a short function pipeline suffices: it promotes
// the reduction accumulators to registers, folds the polynomial constants, merges repeated
// address math and cleans up control flow, at a fraction of the default O2 pipeline's compile
// time.
constexpr const char* kPassPipeline = "function(mem2reg,early-cse,instcombine<no-verify-fixpoint>,simplifycfg)";
constexpr llvm::CodeGenOptLevel kCodeGenLevel = llvm::CodeGenOptLevel::Default;

std::unique_ptr<llvm::TargetMachine> create_target_machine(const Target& target) {
  std::string error;
  const llvm::Target* llvm_target = llvm::TargetRegistry::lookupTarget(target.triple, error);
  if (!llvm_target) throw InternalError("no LLVM target for " + target.triple + ": " + error);
  llvm::TargetOptions options;
  // Same relocation model and code model as the JIT linker expects.
  return std::unique_ptr<llvm::TargetMachine>(llvm_target->createTargetMachine(
      target.triple, target.cpu, target.features, options, llvm::Reloc::PIC_,
      llvm::CodeModel::Small, kCodeGenLevel));
}

// One TargetMachine per thread and target: TargetMachines are not safe to share.
llvm::TargetMachine& target_machine(const Target& target) {
  thread_local std::map<std::string, std::unique_ptr<llvm::TargetMachine>> machines;
  auto& machine = machines[target.key];
  if (!machine) machine = create_target_machine(target);
  return *machine;
}

std::string module_text(const llvm::Module& module) {
  std::string text;
  llvm::raw_string_ostream stream(text);
  module.print(stream, nullptr);
  return text;
}

void optimize(llvm::Module& module, llvm::TargetMachine& machine) {
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager cgscc;
  llvm::ModuleAnalysisManager modules;
  llvm::PassBuilder builder(&machine);
  builder.registerModuleAnalyses(modules);
  builder.registerCGSCCAnalyses(cgscc);
  builder.registerFunctionAnalyses(functions);
  builder.registerLoopAnalyses(loops);
  builder.crossRegisterProxies(loops, functions, cgscc, modules);
  llvm::ModulePassManager passes;
  if (auto error = builder.parsePassPipeline(passes, kPassPipeline))
    throw InternalError("bad pass pipeline: " + llvm::toString(std::move(error)));
  passes.run(module, modules);
}

std::string emit_machine_code(llvm::Module& module, llvm::TargetMachine& machine,
                              llvm::CodeGenFileType type) {
  llvm::SmallVector<char, 0> bytes;
  llvm::raw_svector_ostream stream(bytes);
  llvm::legacy::PassManager passes;
  if (machine.addPassesToEmitFile(passes, stream, nullptr, type))
    throw InternalError("the target cannot emit this file type");
  passes.run(module);
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

std::string optimization_settings() {
  return std::string(kPassPipeline) + " codegen-level " + std::to_string(static_cast<int>(kCodeGenLevel)) +
         " pic small-code-model";
}

std::unique_ptr<llvm::MemoryBuffer> compile_kernel(const ir::Kernel& kernel, const Target& target,
                                                   const DumpRequest& dump, DumpTexts* texts) {
  llvm::LLVMContext context;
  llvm::TargetMachine& machine = target_machine(target);
  std::unique_ptr<llvm::Module> module = emit_kernel(kernel, target, context);
  module->setDataLayout(machine.createDataLayout());
  std::string problems;
  llvm::raw_string_ostream problem_stream(problems);
  if (llvm::verifyModule(*module, &problem_stream))
    throw InternalError("codegen produced invalid IR: " + problems);
  if (texts && dump.llvm) texts->llvm = module_text(*module);
  optimize(*module, machine);
  if (texts && dump.opt) texts->opt = module_text(*module);
  if (texts && dump.assembly) {
    std::unique_ptr<llvm::Module> copy = llvm::CloneModule(*module);
    texts->assembly = emit_machine_code(*copy, machine, llvm::CodeGenFileType::AssemblyFile);
  }
  std::string object = emit_machine_code(*module, machine, llvm::CodeGenFileType::ObjectFile);
  return llvm::MemoryBuffer::getMemBufferCopy(object, kKernelSymbol);
}

}  // namespace fusejit::codegen
