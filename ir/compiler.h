// The compiler driver: a lowered graph to a schedule of kernels, through every pass in order,
// with the text of the `graph` and `fused` dumps. The one place that lists the passes.
#pragma once

#include <string>

#include "ir/kernel.h"
#include "ir/passes.h"

namespace fusejit::ir {

struct CompileOptions {
  bool fuse = true;                           // false: eager, no passes but split_reductions
  int64_t reduction_chunk = kReductionChunk;  // see split_reductions
  bool trace = false;    // fill Compiled::graph_text: the graph before and after each pass
  bool explain = false;  // fill Compiled::fused_text: the kernels and why each boundary is there
};

struct Compiled {
  Schedule schedule;
  std::string graph_text;
  std::string fused_text;
};

// verify -> canonicalize -> dce -> split_reductions -> verify -> fusion (schedule_kernels).
// Throws InternalError when a pass breaks the graph.
Compiled compile(const Graph& lowered, const CompileOptions& options);

}  // namespace fusejit::ir
