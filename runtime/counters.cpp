#include "runtime/counters.h"

namespace fusejit::runtime {

Counters& counters() {
  static Counters instance;
  return instance;
}

}  // namespace fusejit::runtime
