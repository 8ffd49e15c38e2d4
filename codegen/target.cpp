#include "codegen/target.h"

#include <llvm/ADT/StringMap.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/Triple.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string_view>

#include "fusejit/core.h"

namespace fusejit::codegen {

std::string Target::description() const {
  const char* isa = vector_bits == 512 ? "avx512" : vector_bits == 256 ? "avx2" : "sse";
  return cpu + " (" + isa + ", " + std::to_string(lanes()) + " floats per loop step)";
}

namespace {

Target detect() {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::InitializeNativeTargetAsmParser();

  Target target;
  target.triple = llvm::sys::getProcessTriple();
  target.cpu = llvm::sys::getHostCPUName().str();
  std::map<std::string, bool> features;
  for (const auto& feature : llvm::sys::getHostCPUFeatures()) features[feature.getKey().str()] = feature.getValue();

  const char* cap = std::getenv("FUSEJIT_TARGET");
  std::string_view limit = cap ? cap : "native";
  if (limit != "native" && limit != "avx2" && limit != "sse")
    throw Error("FUSEJIT_TARGET=" + std::string(limit) + ": expected native, avx2 or sse");
  if (limit != "native") {
    for (auto& [name, enabled] : features) {
      bool wide = name.rfind("avx512", 0) == 0 || name == "evex512" || name == "amx-tile";
      if (wide || (limit == "sse" && (name.rfind("avx", 0) == 0 || name == "fma" || name == "f16c")))
        enabled = false;
    }
    // Keep the CPU's scheduling model but not its implied ISA.
    target.cpu = limit == "avx2" ? "x86-64-v3" : "x86-64-v2";
  }
  for (const auto& [name, enabled] : features)
    target.features += (target.features.empty() ? "" : ",") + std::string(enabled ? "+" : "-") + name;
  auto has = [&](const char* name) {
    auto it = features.find(name);
    return it != features.end() && it->second;
  };
  target.vector_bits = has("avx512f") ? 512 : has("avx2") && has("fma") ? 256 : 128;
  target.avx2 = has("avx2");
  target.avx512 = has("avx512f");
  target.string_fill = llvm::Triple(target.triple).isX86();
  // "1024K", "32768K" from sysfs; kept at the defaults where the files are missing.
  auto cache_bytes = [](const char* index, int64_t& bytes) {
    std::ifstream size(std::string("/sys/devices/system/cpu/cpu0/cache/") + index + "/size");
    int64_t kib = 0;
    if (size >> kib && kib > 0) bytes = kib << 10;
  };
  cache_bytes("index2", target.l2_cache_bytes);
  cache_bytes("index3", target.last_level_cache_bytes);
  target.key = target.triple + "|" + target.cpu + "|" + target.features + "|l2 " +
               std::to_string(target.l2_cache_bytes) + "|llc " +
               std::to_string(target.last_level_cache_bytes);
  return target;
}

}  // namespace

const Target& host_target() {
  static const Target target = detect();
  return target;
}

}  // namespace fusejit::codegen
