// The vocabulary shared by the public API and the compiler's internals: shapes, dtypes, errors.
// Standard library only.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fusejit {

using Shape = std::vector<int64_t>;

// Int64 holds indices (argmax, argmin); arithmetic on it converts to Float32.
enum class DType : uint8_t { Float32, Bool, Int64 };

inline const char* dtype_name(DType dtype) {
  return dtype == DType::Float32 ? "f32" : dtype == DType::Bool ? "bool" : "i64";
}
inline int64_t dtype_size(DType dtype) {
  return dtype == DType::Float32 ? 4 : dtype == DType::Bool ? 1 : 8;
}

// Every misuse of the API throws this; the message names the op and the offending values.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A broken invariant inside fusejit (a bug, not a misuse): never caught by fusejit itself.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace fusejit
