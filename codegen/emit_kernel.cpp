#include "codegen/emit_kernel.h"

#include <llvm/IR/IRBuilder.h>

#include "codegen/strategies/kernel_emission.h"
#include "codegen/strategies/strategy.h"

namespace fusejit::codegen {

std::unique_ptr<llvm::Module> emit_kernel(const ir::Kernel& kernel, const Target& target,
                                          llvm::LLVMContext& context) {
  auto module = std::make_unique<llvm::Module>(kKernelSymbol, context);
  module->setTargetTriple(target.triple);
  llvm::IRBuilder<> types(context);
  auto* signature = llvm::FunctionType::get(
      types.getVoidTy(), {types.getPtrTy(), types.getInt64Ty(), types.getInt64Ty()}, false);
  auto* fn = llvm::Function::Create(signature, llvm::Function::ExternalLinkage, kKernelSymbol, *module);
  fn->addFnAttr("target-cpu", target.cpu);
  fn->addFnAttr("target-features", target.features);
  fn->addFnAttr("prefer-vector-width", std::to_string(target.vector_bits));
  fn->addFnAttr(llvm::Attribute::NoUnwind);
  fn->addParamAttr(0, llvm::Attribute::NoAlias);
  const Strategy& strategy = strategy_for(kernel.kind);
  KernelEmission emission(kernel, target, fn, strategy);
  strategy.emit(emission, fn->getArg(1), fn->getArg(2));
  // Non-temporal stores are weakly ordered: make them visible before the caller moves on.
  if (emission.streaming()) emission.b().CreateFence(llvm::AtomicOrdering::SequentiallyConsistent);
  emission.b().CreateRetVoid();
  return module;
}

}  // namespace fusejit::codegen
