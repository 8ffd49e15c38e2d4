// The counter-based generator behind rand and randn: each element's value is a hash of
// (seed, stream, flat index), so results do not depend on fusion, threading or evaluation
// order. Codegen emits the same hash on vectors; this is the scalar definition.
#pragma once

#include <cstdint>

namespace fusejit::ir::random {

// Chris Wellons' lowbias32 integer hash.
inline constexpr uint32_t kMix1 = 0x7feb352du;
inline constexpr uint32_t kMix2 = 0x846ca68bu;
inline constexpr uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= kMix1;
  x ^= x >> 15;
  x *= kMix2;
  x ^= x >> 16;
  return x;
}

// Streams: 0 feeds rand, 1 and 2 feed randn's two uniforms.
inline constexpr uint32_t stream_key(uint64_t seed, uint32_t stream) {
  uint32_t high = mix(static_cast<uint32_t>(seed >> 32) ^ (stream * 0x9e3779b9u + 0x632be5abu));
  return mix(static_cast<uint32_t>(seed) ^ high);
}

inline constexpr uint32_t bits(uint32_t key, uint64_t index) {
  return mix(mix(static_cast<uint32_t>(index) ^ key) ^ static_cast<uint32_t>(index >> 32));
}

// 24 random bits as a float in [0, 1) (exact in float32).
inline constexpr double unit_interval(uint32_t bits) { return (bits >> 8) * 0x1p-24; }

inline double uniform(uint64_t seed, uint64_t index) {
  return unit_interval(bits(stream_key(seed, 0), index));
}

}  // namespace fusejit::ir::random
