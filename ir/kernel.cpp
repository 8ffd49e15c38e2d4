#include <algorithm>
#include <cstdio>

#include "ir/kernel.h"
#include "ir/key.h"

namespace fusejit::ir {
namespace {

std::string value_ref(int32_t op) { return "v" + std::to_string(op); }

}  // namespace

std::string_view kernel_kind_name(KernelKind kind) {
  switch (kind) {
    case KernelKind::Fill: return "fill";
    case KernelKind::Elementwise: return "elementwise";
    case KernelKind::RowReduction: return "row reduction";
    case KernelKind::ColumnReduction: return "column reduction";
    case KernelKind::MatMul: return "matmul";
    case KernelKind::Attention: return "attention";
  }
  return "?";
}

KernelKind classify(const Kernel& kernel) {
  for (const KernelOp& op : kernel.ops) {
    if (op.op == OpCode::MatMul) return KernelKind::MatMul;
    if (op.op == OpCode::Attention) return KernelKind::Attention;
  }
  if (kernel.reduces())
    return kernel.reduce_end == static_cast<int32_t>(kernel.domain.size()) ? KernelKind::RowReduction
                                                                           : KernelKind::ColumnReduction;
  if (kernel.outputs.size() == 1 && kernel.output_strides.empty()) {
    const KernelOp& output = kernel.ops[kernel.outputs[0]];
    if (output.dtype == DType::Float32 && op_info(output.op).pattern == FusionPattern::Broadcast)
      return KernelKind::Fill;
  }
  return KernelKind::Elementwise;
}

ParallelRange Kernel::parallel_range() const {
  auto rank = static_cast<int32_t>(domain.size());
  switch (kind) {
    case KernelKind::Fill:
    case KernelKind::Elementwise:
      return {0, false, domain[0], rank == 1};
    case KernelKind::RowReduction:
    case KernelKind::ColumnReduction:
      if (reduce_begin > 0) return {0, false, domain[0], false};
      if (chunk) return {0, true, (domain[0] + chunk - 1) / chunk, false};
      if (kind == KernelKind::RowReduction) return {0, false, 1, false};
      return {reduce_end, false, domain[reduce_end], reduce_end + 1 == rank};
    case KernelKind::MatMul:
    case KernelKind::Attention: {
      int32_t dim = 0;
      while (dim < rank - 2 && domain[dim] == 1) ++dim;
      // A matmul's one row (a single token through a linear layer): its columns, at whole
      // vector steps. An attention's columns each need the whole row's softmax.
      if (domain[dim] == 1 && kind == KernelKind::MatMul) return {rank - 1, false, domain[rank - 1], true};
      // A packed product (one matrix) split by rows has every thread pack all of B; split by
      // columns, each packs its columns of B and all of A, once per panel of its columns: fewer
      // bytes when N >= M (at 2048^3 on 2 threads, against oneDNN: 0.90x by rows).
      if (kind == KernelKind::MatMul && dim == rank - 2 && domain[dim] >= kPackedProductRows &&
          domain[rank - 1] >= domain[dim])
        return {rank - 1, false, domain[rank - 1], true};
      return {dim, false, domain[dim], false};
    }
  }
  throw InternalError("parallel_range: unknown kernel kind");
}

int32_t Kernel::copied_input() const {
  if (kind != KernelKind::Elementwise || outputs.size() != 1) return -1;
  int32_t op = outputs[0];
  while (ops[op].op == OpCode::Copy) op = ops[op].args[0];
  return ops[op].op == OpCode::Input ? op : -1;
}

ThreadSplit Kernel::thread_split(int threads, int64_t lanes) const {
  ParallelRange range = parallel_range();
  // A matmul's work grows with K as well: a [1, 768] result of K = 768 (~30 µs) is worth
  // splitting; an attention's with the keys and their length.
  int64_t work = kind == KernelKind::MatMul      ? elements() * std::max<int64_t>(1, contraction / 4)
                 : kind == KernelKind::Attention ? elements() * std::max<int64_t>(1, attended * contraction / 64)
                                                 : elements();
  if (threads <= 1 || work < kParallelThreshold || range.extent < 2) return {range.extent, range.extent};
  int64_t parts = std::min<int64_t>(threads, range.extent);
  int64_t align = range.innermost ? lanes : 1;
  return {range.extent, ((range.extent + parts - 1) / parts + align - 1) / align * align};
}

std::string print_kernel(const Kernel& kernel) {
  std::string text = std::string(kernel_kind_name(kernel.kind)) + ", domain " + shape_string(kernel.domain);
  if (kernel.kind == KernelKind::MatMul) text += " summing over K = " + std::to_string(kernel.contraction);
  if (kernel.kind == KernelKind::Attention)
    text += " over S = " + std::to_string(kernel.attended) + " keys of E = " + std::to_string(kernel.contraction);
  if (kernel.reduces()) {
    text += " over dims " + std::to_string(kernel.reduce_begin) + ".." + std::to_string(kernel.reduce_end - 1);
    if (kernel.chunk) text += " in chunks of " + std::to_string(kernel.chunk);
  }
  text += "\n";
  for (size_t i = 0; i < kernel.ops.size(); ++i) {
    const KernelOp& op = kernel.ops[i];
    text += "  " + value_ref(static_cast<int32_t>(i)) + " = ";
    if (op.op == OpCode::Input) {
      text += std::string(op.operand ? "operand in" : "load in") + std::to_string(op.slot) + " strides " +
              shape_string(op.strides);
    } else if (op.op == OpCode::Gather) {
      text += "gather in" + std::to_string(op.slot) + " strides " + shape_string(op.strides) + " + " +
              value_ref(op.args[0]) + " * " + std::to_string(op.gather_stride);
    } else if (is_elementwise(op.op) || is_reduction(op.op) || is_product(op.op)) {
      text += std::string(op_name(op.op)) + "(";
      for (size_t a = 0; a < op.args.size(); ++a) text += (a ? ", " : "") + value_ref(op.args[a]);
      text += ")";
      if (op.op == OpCode::Attention && op.params.dim) text += " " + op.params.text(op.op);
    } else {
      text += op_name(op.op);
      if (op.slot >= 0) text += " p" + std::to_string(op.slot);
      text += " " + op.params.text(op.op);
      if (!op.strides.empty()) text += " strides " + shape_string(op.strides);
    }
    text += std::string(" : ") + dtype_name(op.dtype) + (op.row ? " per row" : "") + "\n";
  }
  for (size_t o = 0; o < kernel.outputs.size(); ++o)
    text += "  store out" + std::to_string(o) + " = " + value_ref(kernel.outputs[o]) + "\n";
  return text;
}

std::string Kernel::key() const {
  KeyWriter key;
  key.put(kind);
  key.put_list(domain);
  key.put(reduce_begin);
  key.put(reduce_end);
  key.put(chunk);
  key.put(contraction);
  key.put(attended);
  key.put_list(input_dtypes);
  key.put(parameters);
  for (const KernelOp& op : ops) {
    key.put(op.op);
    key.put(op.dtype);
    key.put(op.slot);
    compiled_params(op.op, op.params).write_key(key);
    key.put_list(op.args);
    key.put_list(op.strides);
    key.put(op.gather_stride);
    key.put(op.row);
    key.put(op.operand);
  }
  key.put_list(outputs);
  key.put(output_strides.size());
  for (const Strides& strides : output_strides) key.put_list(strides);
  key.put(in_place);
  return key.take();
}

std::string print_schedule(const Schedule& schedule) {
  std::string text;
  for (size_t k = 0; k < schedule.kernels.size(); ++k) {
    const ScheduledKernel& scheduled = schedule.kernels[k];
    text += "kernel " + std::to_string(k) + ": " +
            std::to_string(scheduled.nodes.size()) + " graph node" +
            (scheduled.nodes.size() == 1 ? "" : "s") + " (";
    for (size_t i = 0; i < scheduled.nodes.size(); ++i)
      text += (i ? " %" : "%") + std::to_string(scheduled.nodes[i]);
    text += ")\n";
    for (const std::string& note : scheduled.notes) text += "  # " + note + "\n";
    for (size_t i = 0; i < scheduled.inputs.size(); ++i) {
      const ScheduleBuffer& buffer = schedule.buffers[scheduled.inputs[i].buffer];
      text += "  in" + std::to_string(i) + " = buffer " + std::to_string(scheduled.inputs[i].buffer) +
              " " + dtype_name(buffer.dtype) + shape_string(buffer.shape) +
              (buffer.external.storage ? " (evaluated tensor)" : "") + "\n";
    }
    for (size_t i = 0; i < scheduled.outputs.size(); ++i)
      text += "  out" + std::to_string(i) + " = buffer " + std::to_string(scheduled.outputs[i]) +
              " <- %" + std::to_string(scheduled.output_nodes[i]) + "\n";
    text += "  " + print_kernel(scheduled.kernel);
  }
  return text;
}

bool ScheduledKernel::reads_where_it_writes(const KernelOp& op, size_t output) const {
  const Strides& stored = kernel.output_strides.empty() ? contiguous_strides(kernel.domain) : kernel.output_strides[output];
  return inputs[op.slot].offset == output_offset(output) && op.strides == stored;
}

bool may_write_over(const Schedule& schedule, int32_t output, int32_t input) {
  auto writes = [output](const ScheduledKernel& scheduled) {
    return std::find(scheduled.outputs.begin(), scheduled.outputs.end(), output) != scheduled.outputs.end();
  };
  auto first_writer = std::find_if(schedule.kernels.begin(), schedule.kernels.end(), writes);
  if (first_writer == schedule.kernels.end()) return false;
  for (auto it = first_writer; it != schedule.kernels.end(); ++it) {
    const ScheduledKernel& scheduled = *it;
    const Kernel& kernel = scheduled.kernel;
    auto written = std::find(scheduled.outputs.begin(), scheduled.outputs.end(), output);
    for (const KernelOp& op : kernel.ops) {
      bool reads_memory = op.op == OpCode::Input || op.op == OpCode::Gather;
      if (!reads_memory || scheduled.inputs[op.slot].buffer != input) continue;
      if (op.op == OpCode::Gather || written == scheduled.outputs.end() || kernel.kind != KernelKind::Elementwise)
        return false;
      if (!scheduled.reads_where_it_writes(op, static_cast<size_t>(written - scheduled.outputs.begin()))) return false;
    }
  }
  return true;
}

}  // namespace fusejit::ir
