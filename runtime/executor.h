// Runs schedules in two steps: prepare looks up (or compiles) each kernel and plans when each
// intermediate buffer is released; run allocates the kernels' outputs, launches them across
// threads when large enough, and returns the views holding the graph outputs. The narrow entry
// the frontend uses; no LLVM types cross it.
#pragma once

#include <vector>

#include "ir/kernel.h"
#include "runtime/dump.h"
#include "runtime/kernel_code.h"

namespace fusejit::runtime {

// A schedule ready to run any number of times, from any number of threads at once. It holds no
// tensor's data: each run brings the graph inputs' views.
struct PreparedSchedule {
  ir::Schedule schedule;  // its graph-input buffers' external views cleared
  KernelCodes kernels;    // each kernel's code, alive as long as this even once the caches drop it
  // Per kernel, the buffers it is the last to use, dropped as soon as it has run so that the
  // buffer pool hands their memory to the kernels after it. Never a graph input or output.
  std::vector<std::vector<int32_t>> released_after;
};

// Looks up or compiles every kernel of `schedule`, writing the llvm/opt/asm dumps and the cache
// log (with `fused`) that `dump` asks for.
PreparedSchedule prepare(ir::Schedule schedule, const DumpSink& dump);

// `external` holds the data of the schedule's graph-input buffers, and of the computed buffers
// to be written into given memory (in-place updates; contiguous, of the buffer's size; the
// others are allocated), `parameters` the bits of each of its run-time values (scalars, seeds; see
// ir::run_time_value). The caller keeps `prepared` alive until run returns.
std::vector<ir::View> run(const PreparedSchedule& prepared, std::vector<ir::View> external,
                          const std::vector<uint64_t>& parameters);

// The CPU kernels are compiled for, e.g. "znver3 (avx2, 16 floats per loop step)".
std::string target_description();

}  // namespace fusejit::runtime
