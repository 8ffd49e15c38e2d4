#include "runtime/dump.h"

#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fusejit/core.h"
#include "runtime/process.h"

namespace fusejit::runtime {

DumpStages parse_dump_stages(const std::string& list) {
  DumpStages stages;
  std::stringstream items(list);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item == "graph") stages.graph = true;
    else if (item == "fused") stages.fused = true;
    else if (item == "llvm") stages.llvm = true;
    else if (item == "opt") stages.opt = true;
    else if (item == "asm") stages.assembly = true;
    else if (item == "all") stages = {true, true, true, true, true};
    else if (!item.empty())
      throw Error("dump: unknown stage '" + item + "' (expected graph, fused, llvm, opt, asm or all)");
  }
  return stages;
}

DumpSink DumpSink::from_environment() {
  DumpSink sink;
  const char* list = std::getenv("FUSEJIT_DUMP");
  if (!list) return sink;  // the common case, on every evaluation: one lookup
  sink.stages_ = parse_dump_stages(list);
  if (const char* dir = std::getenv("FUSEJIT_DUMP_DIR"); dir && *dir) {
    sink.directory_ = dir;
    std::error_code error;
    std::filesystem::create_directories(sink.directory_, error);
    if (error)
      throw Error("FUSEJIT_DUMP_DIR=" + sink.directory_ + ": cannot create the directory: " +
                  error.message());
  }
  return sink;
}

DumpSink DumpSink::into(std::string& text, DumpStages stages) {
  DumpSink sink;
  sink.stages_ = stages;
  sink.collect_ = &text;
  return sink;
}

void DumpSink::write(const std::string& name, const std::string& text) const {
  if (collect_) {
    *collect_ += "=== " + name + "\n" + text;
    return;
  }
  if (directory_.empty()) {
    std::fprintf(stderr, "=== fusejit %s\n%s", name.c_str(), text.c_str());
    return;
  }
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "%05d-", process().dump_files++);
  std::string path = directory_ + "/" + prefix + name;
  std::ofstream file(path);
  file << text;
  file.close();
  if (!file) throw Error("FUSEJIT_DUMP_DIR: cannot write " + path + ": " + std::strerror(errno));
}

}  // namespace fusejit::runtime
