// Random tensor programs for the differential fuzzer: a program is a list of steps over the
// public API, each producing one value from earlier ones, plus the values it evaluates at the
// end. A program can be run (into lazy tensors), printed as a self-contained C++ reproducer,
// and shrunk by the minimizer, so it is plain data rather than a closure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fusejit/fusejit.h"

namespace fusejit::fuzz {

enum class Op : uint8_t {
  // Leaves.
  Input,   // tensor(values, shape): values from input_value(seed, i, distribution)
  Full,    // full(shape, x)
  Arange,  // arange(x, y, z)
  Rand,
  Randn,
  Scalar,  // a float operand (a 0-d constant)
  // Elementwise on args[0] (and args[1], args[2]).
  Neg, Abs, Exp, Log, Sqrt, Rsqrt, Sin, Cos, Relu, Sigmoid, Tanh, Gelu, GeluTanh, Silu,
  Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge, Where,
  PowScalar,  // pow(a, x)
  Clamp,      // clamp(a, x, y)
  LeakyRelu,  // leaky_relu(a, x)
  Elu,        // elu(a, x)
  Softplus,   // softplus(a, x, y)
  // Reductions of args[0]: over `dims` (keepdim) or, with all_elements, the one-argument form.
  Sum, Mean, Prod, Amax, Amin, Var, Std,  // Var/Std: correction x
  Max, Min,                               // always over all elements
  Argmax, Argmin,                         // dim = dims[0]
  Softmax, LogSoftmax,                    // dim = dims[0]
  LayerNorm,  // over the trailing dims[0] dims; args[1], args[2] weight and bias or -1; eps x
  // Views of args[0] (and contiguous(), which copies a strided one).
  Transpose,   // dims[0], dims[1]
  Permute,     // dims
  Slice,       // dim dims[0], start dims[1], end dims[2], step dims[3]
  Select,      // dim dims[0], index dims[1]
  Reshape,     // to `shape` (one dim may be -1)
  Expand,      // to `shape`
  Unsqueeze,   // dims[0]
  Squeeze,     // every size-1 dim
  Contiguous,
  // In-place updates of args[0] (the step's value is that tensor, updated): by args[1], or x.
  AddInPlace, SubInPlace, MulInPlace, DivInPlace, CopyInPlace,
  FillInPlace,   // fill_(x)
  ClampInPlace,  // clamp_(x, y)
  ReluInPlace,
  // Joins of args (all of them) along dims[0].
  Cat, Stack,
  IndexSelect,  // index_select(args[0], dims[0], the Int64 index dims[1..])
  MatMul,       // matmul(args[0], args[1])
  Linear,       // linear(args[0], weight args[1], bias args[2] or -1)
  // scaled_dot_product_attention(q args[0], k args[1], v args[2], mask args[3] or -1,
  // causal = keepdim, scale x when all_elements, else the default)
  Attention,
  // Evaluates args[0] now; the value is args[0]'s.
  Eval,
};

// How Input values are drawn (see input_value).
enum class Distribution : uint8_t { Uniform, Positive, SmallIntegers, Special };

struct Step {
  Op op = Op::Input;
  std::vector<int> args = {};  // indices of earlier steps (-1: none)
  Shape shape = {};       // leaves
  Distribution distribution = Distribution::Uniform;
  uint64_t seed = 0;  // Input, Rand, Randn
  float x = 0, y = 0, z = 0;
  Shape dims = {};
  bool keepdim = false;
  bool all_elements = false;
};

struct Program {
  std::vector<Step> steps;
  std::vector<int> outputs;  // evaluated together at the end: fusejit::eval({...})
};

// Element i of an Input drawn with `distribution` from `seed`. The same function is printed
// into reproducers (input_value_source()), so they rebuild large inputs without listing them.
float input_value(uint64_t seed, int64_t i, Distribution distribution);
const char* input_value_source();

// The seed of program `index` of a run seeded `run_seed`.
uint64_t program_seed(uint64_t run_seed, uint64_t index);

// A random valid program (every op's shapes and dims accepted by the API).
Program generate_program(uint64_t seed);

// The program's values, one per step, as lazy tensors. With `evaluate_early`, Eval steps
// evaluate their value when reached; without, nothing is evaluated (for the reference).
// Throws fusejit::Error when the program is invalid (the minimizer makes such candidates).
std::vector<Tensor> build(const Program& program, bool evaluate_early);

// What a reproducer sets before building the program.
struct RunSettings {
  bool fused = true;
  int threads = 1;
};

// A self-contained main() that builds and evaluates the program and prints its outputs;
// `note` goes into a comment (the failure it shows).
std::string to_cpp(const Program& program, const RunSettings& settings, const std::string& note);

// The number of elements over all leaves (a measure the minimizer shrinks).
int64_t program_size(const Program& program);

}  // namespace fusejit::fuzz
