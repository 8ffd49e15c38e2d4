#include "runtime/process.h"

namespace fusejit::runtime {

Process& process() {
  static Process* instance = new Process;  // never destroyed (see process.h)
  return *instance;
}

}  // namespace fusejit::runtime
