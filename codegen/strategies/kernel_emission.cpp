#include "codegen/strategies/kernel_emission.h"

#include <llvm/IR/Constants.h>
#include <llvm/IR/Metadata.h>

#include <algorithm>
#include <string>
#include <utility>

namespace fusejit::codegen {
namespace {

using llvm::Value;

// The entry's argument slots (emit_kernel.h), loaded in the entry block.
std::vector<Value*> load_slots(llvm::IRBuilderBase& b, llvm::Function* fn, const ir::Kernel& kernel) {
  std::vector<Value*> slots;
  size_t count = kernel.input_dtypes.size() + kernel.outputs.size() + kernel.parameters;
  for (size_t slot = 0; slot < count; ++slot) {
    Value* address = b.CreateConstInBoundsGEP1_64(b.getPtrTy(), fn->getArg(0), slot);
    slots.push_back(b.CreateLoad(b.getPtrTy(), address, "slot" + std::to_string(slot)));
  }
  return slots;
}

// Whether the outputs are streamed (KernelEmission::streaming). Needs every full step's store
// aligned to a whole vector: buffers are 64-byte aligned, a flat domain is split at whole
// vectors, and a nested one must have rows of whole vectors.
bool streams_outputs(const ir::Kernel& kernel, const Target& target, int lanes, bool may_stream) {
  if (!may_stream || kernel.in_place || !kernel.output_strides.empty()) return false;
  int64_t bytes = 0;
  for (int32_t output : kernel.outputs) {
    if (kernel.ops[output].row) continue;
    if (kernel.ops[output].dtype != DType::Float32) return false;
    bytes += kernel.elements() * dtype_size(DType::Float32);
  }
  bool aligned = kernel.chunk && kernel.domain.size() == 1
                     ? kernel.chunk % lanes == 0
                     : kernel.domain.size() == 1 || kernel.domain.back() % lanes == 0;
  return aligned && bytes >= 2 * target.last_level_cache_bytes;
}

}  // namespace

KernelEmission::KernelEmission(const ir::Kernel& kernel, const Target& target, llvm::Function* fn,
                               const Strategy& strategy)
    : kernel_(kernel),
      target_(target),
      fn_(fn),
      b_(llvm::BasicBlock::Create(fn->getContext(), "entry", fn)),
      lanes_(strategy.lanes(kernel, target)),
      loops_(b_, fn, kernel, lanes_),
      slots_(load_slots(b_, fn, kernel)),
      elements_(b_, kernel, target, lanes_, slots_),
      streaming_(streams_outputs(kernel, target, lanes_, strategy.may_stream)) {}

Value* KernelEmission::output_pointer(size_t output) const {
  return slots_[kernel_.input_dtypes.size() + output];
}

DType KernelEmission::output_dtype(size_t output) const {
  return kernel_.ops[kernel_.outputs[output]].dtype;
}

void KernelEmission::sweep(Value* start, Value* stop, const std::vector<Value*>& indices,
                           const std::vector<Value*>& known, const std::vector<bool>& wanted,
                           const Consume& consume, const std::vector<StashUse>& stash,
                           Value* output_offset) {
  lockstep_sweep(start, stop, {indices}, known, wanted,
                 [&](const std::vector<StepValues>& steps) { consume(steps[0]); }, stash, output_offset);
}

void KernelEmission::lockstep_sweep(Value* start, Value* stop,
                                    const std::vector<std::vector<Value*>>& index_sets,
                                    const std::vector<Value*>& known, const std::vector<bool>& wanted,
                                    const ConsumeSteps& consume, const std::vector<StashUse>& stash,
                                    Value* output_offset) {
  size_t inner = loops_.rank() - 1;
  size_t count = kernel_.ops.size();
  size_t sets = index_sets.size();
  // Values that do not change along the innermost dim are computed once per sweep.
  std::vector<std::vector<Value*>> invariant(sets, known);
  std::vector<std::vector<Value*>> offsets(sets, std::vector<Value*>(count, nullptr));
  for (size_t s = 0; s < sets; ++s) {
    invariant[s].resize(count, nullptr);
    for (size_t i = 0; i < count; ++i) {
      const ir::KernelOp& op = kernel_.ops[i];
      if (invariant[s][i] || !wanted[i]) continue;
      if (!op.strides.empty()) offsets[s][i] = loops_.outer_offset(op.strides, index_sets[s]);
      bool varies = !op.strides.empty() && op.strides[inner] != 0;
      for (int32_t a : op.args) varies = varies || invariant[s][a] == nullptr;
      if (!varies) invariant[s][i] = elements_.emit_op(op, offsets[s][i], nullptr, nullptr, nullptr, invariant[s]);
    }
  }

  loops_.emit_sweep(start, stop, [&](const SweepStep& at) {
    // Contiguous loads: their addresses at this step.
    std::vector<std::vector<Value*>> load_addresses(sets, std::vector<Value*>(count, nullptr));
    for (size_t s = 0; s < sets; ++s)
      for (size_t i = 0; i < count; ++i)
        if (wanted[i] && !invariant[s][i])
          load_addresses[s][i] = elements_.contiguous_address(kernel_.ops[i], offsets[s][i], at.j);
    Value* mask = loops_.valid_lanes(at);
    std::vector<std::vector<Value*>> values = invariant;
    for (size_t s = 0; s < sets; ++s) {
      for (size_t i = 0; i < count; ++i) {
        if (values[s][i] || !wanted[i]) continue;
        Value* stashed = i < stash.size() && stash[i].buffer
                             ? b_.CreateInBoundsGEP(b_.getFloatTy(), stash[i].buffer, at.j) : nullptr;
        if (stashed && stash[i].read) {
          values[s][i] = b_.CreateAlignedLoad(elements_.float_vector(), stashed, llvm::Align(64));
          continue;
        }
        values[s][i] = elements_.emit_op(kernel_.ops[i], offsets[s][i], at.j, mask, load_addresses[s][i], values[s]);
        if (stashed) b_.CreateAlignedStore(values[s][i], stashed, llvm::Align(64));
      }
    }
    std::vector<StepValues> steps;
    for (size_t s = 0; s < sets; ++s) steps.push_back(StepValues{values[s], at.j, at.full, mask, output_offset});
    consume(steps);
  });
}

void transpose_square(llvm::IRBuilderBase& b, std::vector<Value*>& rows) {
  int n = static_cast<int>(rows.size());
  for (int h = n / 2; h >= 1; h /= 2) {
    std::vector<int> upper(n), lower(n);
    for (int l = 0; l < n; ++l) {
      upper[l] = (l & h) == 0 ? l : n + l - h;
      lower[l] = (l & h) == 0 ? l + h : n + l;
    }
    for (int i = 0; i < n; ++i) {
      if (i & h) continue;
      Value* top = rows[i];
      Value* bottom = rows[i + h];
      rows[i] = b.CreateShuffleVector(top, bottom, upper);
      rows[i + h] = b.CreateShuffleVector(top, bottom, lower);
    }
  }
}

void KernelEmission::store_outputs(const StepValues& step, Value* output_offset, bool skip_row_values) {
  store_outputs(step, std::vector<Value*>(kernel_.outputs.size(), output_offset), skip_row_values);
}

void KernelEmission::store_outputs(const StepValues& step, const std::vector<Value*>& output_offsets,
                                   bool skip_row_values) {
  std::vector<std::pair<size_t, Value*>> stores;  // output, value
  for (size_t o = 0; o < kernel_.outputs.size(); ++o) {
    if (skip_row_values && kernel_.ops[kernel_.outputs[o]].row) continue;
    Value* value = step.values[kernel_.outputs[o]];
    if (output_dtype(o) == DType::Bool) value = b_.CreateZExt(value, elements_.vector_of(b_.getInt8Ty()));
    stores.push_back({o, value});
  }
  if (stores.empty()) return;
  auto address = [&](size_t o) {
    return b_.CreateInBoundsGEP(elements_.element_type(output_dtype(o)), output_pointer(o),
                                b_.CreateAdd(output_offsets[o], step.j));
  };
  for (auto& [o, value] : stores) {
    int64_t stride = kernel_.output_strides.empty() ? 1 : kernel_.output_strides[o].back();
    if (stride != 1) {
      llvm::Type* element = elements_.element_type(output_dtype(o));
      Value* addresses = b_.CreateInBoundsGEP(element, output_pointer(o),
                                              elements_.lane_indices(output_offsets[o], step.j, stride));
      b_.CreateMaskedScatter(value, addresses, element_align(output_dtype(o)), step.mask);
    } else if (!step.full) {
      b_.CreateMaskedStore(value, address(o), element_align(output_dtype(o)), step.mask);
    } else if (!streaming_) {
      b_.CreateAlignedStore(value, address(o), element_align(output_dtype(o)));
    } else {
      llvm::StoreInst* store =
          b_.CreateAlignedStore(value, address(o), llvm::Align(std::min(lanes_ * 4, 64)));
      store->setMetadata(llvm::LLVMContext::MD_nontemporal,
                         llvm::MDNode::get(b_.getContext(), llvm::ConstantAsMetadata::get(b_.getInt32(1))));
    }
  }
}

}  // namespace fusejit::codegen
