// The fuzzer's oracle and minimizer: a program is evaluated fused at 2 and at 1 thread and
// eager, and each result is held against the reference bounds (tests/fuzz/bounds.h), against
// each other where the library promises bitwise equality, and against its own 1-thread run.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "tests/fuzz/program.h"

namespace fusejit::fuzz {

enum class Verdict : uint8_t {
  Pass,
  Invalid,           // the API rejects the program (only the minimizer makes such programs)
  Exception,         // evaluating a valid program threw
  OutsideReference,  // a result the reference does not allow
  FusedEagerDiffer,  // an elementwise program whose fused and eager results are not bitwise equal
  ThreadsDiffer,     // fused results differ between 1 and 2 threads
  Crash,             // (the forking driver only) the process died
};
const char* verdict_name(Verdict verdict);

struct Outcome {
  Verdict verdict = Verdict::Pass;
  std::string message;
  RunSettings settings;  // the run that showed it
};

Outcome check_program(const Program& program);

// The smallest program found (by deleting outputs and steps, bypassing ops, replacing leaves by
// constants, shrinking dims) for which `still_fails` holds, trying at most `budget` candidates.
Program minimize(Program program, const std::function<bool(const Program&)>& still_fails, int budget);

}  // namespace fusejit::fuzz
