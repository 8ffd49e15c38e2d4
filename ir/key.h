// Binary cache keys: the bytes of each value appended in order. Equal keys mean equal inputs
// to whatever the key stands for (a kernel's code, a graph's schedule). Built on every
// evaluation, so no text formatting.
#pragma once

#include <string>
#include <type_traits>

namespace fusejit::ir {

class KeyWriter {
 public:
  KeyWriter() = default;
  explicit KeyWriter(size_t expected_bytes) { key_.reserve(expected_bytes); }
  template <class T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    key_.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  // The length, then the elements (so [1],[2] and [1,2] differ).
  template <class List>
  void put_list(const List& values) {
    put(values.size());
    for (auto value : values) put(value);
  }
  std::string take() { return std::move(key_); }

 private:
  std::string key_;
};

}  // namespace fusejit::ir
