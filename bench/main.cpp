// The benchmark binary: registers every family, then runs what the command line selects.
#include <benchmark/benchmark.h>
#include <fusejit/fusejit.h>

#include <exception>
#include <string>

#include "harness.h"

int main(int argc, char** argv) {
  fusejit::set_disk_cache_dir("");  // compile times are among the figures: every run compiles
  fjbench::register_elementwise();
  fjbench::register_reductions();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  try {
    benchmark::AddCustomContext("fusejit_target", fusejit::target_description());
    benchmark::AddCustomContext("fusejit_default_threads", std::to_string(fusejit::num_threads()));
  } catch (const std::exception& e) {
    benchmark::AddCustomContext("fusejit_target", std::string("unavailable: ") + e.what());
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
