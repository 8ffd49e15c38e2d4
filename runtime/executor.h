// Runs a schedule: looks up (or compiles) each kernel, allocates its outputs, launches it
// across threads when it is large enough, and returns the views holding the graph outputs.
// The narrow entry the frontend uses; no LLVM types cross it.
#pragma once

#include <vector>

#include "ir/kernel.h"
#include "runtime/dump.h"
#include "runtime/kernel_code.h"

namespace fusejit::runtime {

// `external` holds the data of the schedule's graph-input buffers (entries of the other
// buffers are ignored), `parameters` the bits of each of its run-time values (scalars, seeds;
// see ir::run_time_value). `run = false` compiles (and dumps) without launching anything; the
// result is then empty. `known` (the kernels' code from an earlier execute of this schedule)
// skips looking each kernel up; the caller keeps it alive until execute returns. `resolved`,
// when given, receives the code used.
std::vector<ir::View> execute(const ir::Schedule& schedule, std::vector<ir::View> external,
                              const std::vector<uint64_t>& parameters, const DumpSink& dump,
                              bool run = true, const KernelCodes* known = nullptr,
                              KernelCodes* resolved = nullptr);

// The CPU kernels are compiled for, e.g. "znver3 (avx2, 16 floats per loop step)".
std::string target_description();

}  // namespace fusejit::runtime
