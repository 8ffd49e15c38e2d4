// Binary cache keys: the bytes of each value appended in order. Equal keys mean equal inputs
// to whatever the key stands for (a kernel's code, a graph's schedule). Built on every
// evaluation, so no text formatting.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace fusejit::ir {

class KeyWriter {
 public:
  explicit KeyWriter(size_t expected_bytes = 256) : key_(expected_bytes, '\0') {}
  template <class T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    // A plain copy into room made ahead: keys are built on every cached evaluation.
    if (size_ + sizeof value > key_.size()) key_.resize(2 * key_.size() + sizeof value);
    std::memcpy(key_.data() + size_, &value, sizeof value);
    size_ += sizeof value;
  }
  // The length, then the elements (so [1],[2] and [1,2] differ).
  template <class List>
  void put_list(const List& values) {
    put(values.size());
    for (auto value : values) put(value);
  }
  std::string take() {
    key_.resize(size_);
    return std::move(key_);
  }
  // For a writer reused as scratch: the bytes so far, and starting over.
  std::string_view view() const { return {key_.data(), size_}; }
  void clear() { size_ = 0; }

 private:
  std::string key_;
  size_t size_ = 0;
};

// Hashes a key word by word (std::hash of a string goes byte-wise); for the hash maps that keys
// index.
struct KeyHash {
  using is_transparent = void;  // lookups by string_view need no std::string
  size_t operator()(std::string_view key) const noexcept {
    uint64_t hash = 0x9e3779b97f4a7c15ull ^ key.size();
    size_t at = 0;
    auto mix = [&hash](uint64_t word) {
      hash = (hash ^ word) * 0xff51afd7ed558ccdull;
      hash ^= hash >> 32;
    };
    for (; at + 8 <= key.size(); at += 8) {
      uint64_t word;
      std::memcpy(&word, key.data() + at, 8);
      mix(word);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, key.data() + at, key.size() - at);
    mix(tail);
    return static_cast<size_t>(hash);
  }
};

}  // namespace fusejit::ir
