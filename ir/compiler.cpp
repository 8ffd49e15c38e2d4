#include "ir/compiler.h"

namespace fusejit::ir {

Compiled compile(const Graph& lowered, const CompileOptions& options) {
  struct Pass {
    const char* name;
    bool when_fusing_only;
    Graph (*run)(const Graph&, int64_t reduction_chunk);
  };
  static constexpr Pass kPasses[] = {
      {"canonicalize", true, [](const Graph& g, int64_t) { return canonicalize(g); }},
      {"fuse_attention", true, [](const Graph& g, int64_t) { return fuse_attention(g); }},
      {"dce", true, [](const Graph& g, int64_t) { return eliminate_dead_code(g); }},
      {"split_reductions", false, split_reductions},
      {"contiguous_outputs", false, [](const Graph& g, int64_t) { return contiguous_outputs(g); }},
  };
  Compiled compiled;
  verify(lowered);
  if (options.trace) compiled.graph_text = "before passes:\n" + print(lowered);
  Graph graph;
  const Graph* current = &lowered;  // the input is read, never copied
  for (const Pass& pass : kPasses) {
    if (pass.when_fusing_only && !options.fuse) continue;
    graph = pass.run(*current, options.reduction_chunk);
    current = &graph;
    if (options.trace) compiled.graph_text += std::string("after ") + pass.name + ":\n" + print(graph);
  }
  verify(*current);
  compiled.schedule = schedule_kernels(*current, {.fuse = options.fuse, .explain = options.explain});
  if (options.explain) {
    size_t kernels = compiled.schedule.kernels.size();
    compiled.fused_text = std::to_string(kernels) + " kernel" + (kernels == 1 ? "" : "s") + "\n" +
                          print_schedule(compiled.schedule);
  }
  return compiled;
}

}  // namespace fusejit::ir
