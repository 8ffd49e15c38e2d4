#include "runtime/executor.h"

#include <algorithm>
#include <cstdio>

#include "codegen/target.h"
#include "runtime/buffer_pool.h"
#include "runtime/kernel_cache.h"
#include "runtime/parallel.h"
#include "runtime/process.h"

namespace fusejit::runtime {
namespace {

void launch(KernelFn fn, const ir::Kernel& kernel, void* const* args) {
  ir::ThreadSplit split = kernel.thread_split(process().threads, codegen::host_target().lanes());
  if (split.parts() <= 1) {
    fn(args, 0, split.extent);
    return;
  }
  parallel_parts(split.parts(), [&](int64_t part) {
    fn(args, part * split.part, std::min(split.extent, (part + 1) * split.part));
  });
}

// Storage for a kernel's output; the error names what could not be held.
std::shared_ptr<ir::Storage> allocate_result(const ir::ScheduleBuffer& buffer, size_t kernel) {
  try {
    return allocate(ir::numel(buffer.shape) * dtype_size(buffer.dtype));
  } catch (const Error& error) {
    throw Error("eval: no room for the " + std::string(dtype_name(buffer.dtype)) +
                ir::shape_string(buffer.shape) + " result of kernel " + std::to_string(kernel) +
                ": " + error.what());
  }
}

// Per kernel, the buffers it is the last to use: those computed by the schedule's kernels that
// are no graph output.
std::vector<std::vector<int32_t>> release_plan(const ir::Schedule& schedule) {
  constexpr int32_t kKept = -1;
  std::vector<int32_t> last_use(schedule.buffers.size(), kKept);
  for (size_t k = 0; k < schedule.kernels.size(); ++k) {
    auto kernel = static_cast<int32_t>(k);
    for (const ir::BufferRef& input : schedule.kernels[k].inputs) last_use[input.buffer] = kernel;
    for (int32_t output : schedule.kernels[k].outputs) last_use[output] = kernel;
  }
  for (int32_t output : schedule.outputs) last_use[output] = kKept;
  std::vector<std::vector<int32_t>> released_after(schedule.kernels.size());
  for (size_t b = 0; b < schedule.buffers.size(); ++b)
    if (last_use[b] != kKept && !schedule.buffers[b].external.storage)
      released_after[last_use[b]].push_back(static_cast<int32_t>(b));
  return released_after;
}

// Whether kernel `scheduled` copies an input onto the very elements it reads: the part of a
// tensor that an update through a view leaves alone, when the update writes the tensor's own
// storage. Such a kernel has nothing to do.
bool copies_onto_itself(const ir::ScheduledKernel& scheduled, const std::vector<ir::View>& buffers) {
  const ir::Kernel& kernel = scheduled.kernel;
  int32_t copied = kernel.copied_input();
  if (copied < 0) return false;
  const ir::View& read = buffers[scheduled.inputs[kernel.ops[copied].slot].buffer];
  const ir::View& written = buffers[scheduled.outputs[0]];
  return written.storage && written.storage == read.storage && scheduled.reads_where_it_writes(kernel.ops[copied], 0);
}

// Runs kernel k of `prepared` on `buffers`, allocating its outputs' buffers that are not yet.
void launch_scheduled(const PreparedSchedule& prepared, size_t k, std::vector<ir::View>& buffers,
                      const std::vector<uint64_t>& parameters) {
  const ir::Schedule& schedule = prepared.schedule;
  const ir::ScheduledKernel& scheduled = schedule.kernels[k];
  thread_local std::vector<void*> args;  // reused: one allocation per thread, not per launch
  args.clear();
  for (const ir::BufferRef& input : scheduled.inputs) {
    const ir::View& view = buffers[input.buffer];
    auto* base = static_cast<char*>(view.storage->data());
    args.push_back(base + input.offset * dtype_size(schedule.buffers[input.buffer].dtype));
  }
  for (size_t o = 0; o < scheduled.outputs.size(); ++o) {
    int32_t output = scheduled.outputs[o];
    const ir::ScheduleBuffer& buffer = schedule.buffers[output];
    // A concatenation's buffer is written by the kernel of each part: the first allocates it.
    if (!buffers[output].storage)
      buffers[output] = {allocate_result(buffer, k), ir::contiguous_strides(buffer.shape), 0};
    args.push_back(static_cast<char*>(buffers[output].storage->data()) +
                   scheduled.output_offset(o) * dtype_size(buffer.dtype));
  }
  for (int32_t parameter : scheduled.parameters) args.push_back(const_cast<uint64_t*>(&parameters[parameter]));
  if (scheduled.kernel.elements() > 0) {
    launch(prepared.kernels[k].fn(), scheduled.kernel, args.data());
    process().counters.kernels_launched++;
  }
}

}  // namespace

std::string target_description() { return codegen::host_target().description(); }

PreparedSchedule prepare(ir::Schedule schedule, const DumpSink& dump) {
  const DumpStages& stages = dump.stages();
  codegen::DumpRequest request{stages.llvm, stages.opt, stages.assembly};
  PreparedSchedule prepared;
  prepared.kernels.reserve(schedule.kernels.size());
  std::string cache_log;
  for (size_t k = 0; k < schedule.kernels.size(); ++k) {
    codegen::DumpTexts texts;
    KernelLookup lookup = get_kernel(schedule.kernels[k].kernel, request, &texts);
    prepared.kernels.push_back(std::move(lookup.code));
    if (stages.fused) {
      char line[96];
      if (lookup.source == KernelLookup::Source::memory)
        std::snprintf(line, sizeof line, "kernel %zu: cache hit\n", k);
      else if (lookup.source == KernelLookup::Source::disk)
        std::snprintf(line, sizeof line, "kernel %zu: loaded from the disk cache in %.2f ms\n", k, lookup.milliseconds);
      else
        std::snprintf(line, sizeof line, "kernel %zu: compiled in %.2f ms\n", k, lookup.milliseconds);
      cache_log += line;
    }
    if (stages.llvm || stages.opt || stages.assembly) {
      std::string name = "kernel" + std::to_string(k);
      if (stages.llvm) dump.write(name + ".ll", texts.llvm);
      if (stages.opt) dump.write(name + ".opt.ll", texts.opt);
      if (stages.assembly) dump.write(name + ".s", texts.assembly);
    }
  }
  if (stages.fused) dump.write("cache", cache_log);
  prepared.released_after = release_plan(schedule);
  for (ir::ScheduleBuffer& buffer : schedule.buffers) buffer.external = {};
  prepared.schedule = std::move(schedule);
  return prepared;
}

std::vector<ir::View> run(const PreparedSchedule& prepared, std::vector<ir::View> external,
                          const std::vector<uint64_t>& parameters) {
  const ir::Schedule& schedule = prepared.schedule;
  std::vector<ir::View> buffers = std::move(external);
  buffers.resize(schedule.buffers.size());
  for (size_t k = 0; k < schedule.kernels.size(); ++k) {
    if (!copies_onto_itself(schedule.kernels[k], buffers)) launch_scheduled(prepared, k, buffers, parameters);
    for (int32_t released : prepared.released_after[k]) buffers[released] = {};
  }
  std::vector<ir::View> outputs;
  outputs.reserve(schedule.outputs.size());
  for (int32_t output : schedule.outputs) outputs.push_back(buffers[output]);
  return outputs;
}

}  // namespace fusejit::runtime
