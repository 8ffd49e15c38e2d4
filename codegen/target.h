// The CPU kernels are compiled for: detected at run time, never assumed.
#pragma once

#include <cstdint>
#include <string>

namespace fusejit::codegen {

struct Target {
  std::string triple;
  std::string cpu;       // e.g. "znver4"
  std::string features;  // LLVM feature string, "+avx2,+fma,-avx512f,..."
  int vector_bits = 128; // widest native float vector: 128, 256 or 512
  // Instructions that some code paths need beyond the vector width. Those paths ask here, never
  // the LLVM feature string; FUSEJIT_TARGET's cap applies to these too.
  bool avx2 = false;         // 8-lane vpermps (gelu's piece tables)
  bool avx512 = false;       // AVX-512F: vscalefps (exp), 16-lane vpermps (gelu)
  bool string_fill = false;  // x86 `rep stosd`: fills whole cache lines without reading them
  int64_t l2_cache_bytes = 1 << 20;  // per core
  int64_t last_level_cache_bytes = 32 << 20;
  // Floats per vector in generated loops: two native registers per step, which hides the
  // latency of dependent ops without a separate unroll.
  int lanes() const { return 2 * vector_bits / 32; }
  std::string key;       // identity for cache keys: triple, CPU, features
  std::string description() const;
};

// The host CPU. FUSEJIT_TARGET=avx2 (or sse) caps the vector width below what the host has,
// to test the narrower paths on a wider machine.
const Target& host_target();

}  // namespace fusejit::codegen
