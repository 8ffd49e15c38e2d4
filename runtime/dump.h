// Dumps of each compilation stage: FUSEJIT_DUMP=graph,fused,llvm,opt,asm (any subset, or
// "all"), to stderr or to files in FUSEJIT_DUMP_DIR; or collected into a string by the API.
#pragma once

#include <string>

namespace fusejit::runtime {

struct DumpStages {
  bool graph = false, fused = false, llvm = false, opt = false, assembly = false;
  bool any() const { return graph || fused || llvm || opt || assembly; }
};

// Parses "graph,fused,llvm,opt,asm" / "all"; throws Error naming an unknown stage.
DumpStages parse_dump_stages(const std::string& list);

class DumpSink {
 public:
  // From the environment (FUSEJIT_DUMP, FUSEJIT_DUMP_DIR). The directory is created if missing;
  // throws Error when it cannot be (write() throws when a file cannot be written).
  static DumpSink from_environment();
  // Into `text` instead of stderr/files.
  static DumpSink into(std::string& text, DumpStages stages);

  const DumpStages& stages() const { return stages_; }
  // `name` becomes part of the file name in FUSEJIT_DUMP_DIR (e.g. "kernel3.opt.ll").
  void write(const std::string& name, const std::string& text) const;

 private:
  DumpStages stages_;
  std::string directory_;
  std::string* collect_ = nullptr;
};

}  // namespace fusejit::runtime
