#include "ir/node.h"

#include <charconv>
#include <limits>

namespace fusejit::ir {
namespace {

// The shortest text that reads back as the same value: as a float when it is one (constants
// and scalars are), else as a double.
std::string exact(double value) {
  char text[32];
  auto single = static_cast<float>(value);
  bool is_float = static_cast<double>(single) == value || value != value;
  return {text, is_float ? std::to_chars(text, text + sizeof text, single).ptr
                         : std::to_chars(text, text + sizeof text, value).ptr};
}

}  // namespace

uint64_t OpParams::hash() const {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t word : words()) h = (h ^ word) * 0x100000001b3ull;
  return h;
}

std::string OpParams::text(OpCode op) const {
  switch (op_info(op).kind) {
    case OpKind::Leaf:
      return op == OpCode::Input ? "" : exact(value);
    case OpKind::Generator:
      if (op == OpCode::Arange) return "start=" + exact(value) + " step=" + exact(step);
      return "seed=" + std::to_string(seed);
    case OpKind::Reduce:
      return "dims=" + axes_string(axes) + (chunk ? " chunk=" + std::to_string(chunk) : "");
    case OpKind::Concat:
    case OpKind::Gather:
      return "dim=" + std::to_string(dim);
    case OpKind::Attention:
      if (dim == (kAttentionCausal | kAttentionDivides)) return "causal divides";
      return dim == kAttentionCausal ? "causal" : dim == kAttentionDivides ? "divides" : "";
    default:
      return "";
  }
}

uint64_t run_time_value(OpCode op, const OpParams& params) {
  if (op == OpCode::Scalar) return std::bit_cast<uint32_t>(static_cast<float>(params.value));
  return params.seed;
}

OpParams compiled_params(OpCode op, const OpParams& params) {
  OpParams compiled = params;
  if (op == OpCode::Scalar) compiled.value = 0;
  if (op == OpCode::Rand || op == OpCode::Randn) compiled.seed = 0;
  return compiled;
}

bool compiles_in(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  return bits == std::bit_cast<uint32_t>(0.0f) || bits == std::bit_cast<uint32_t>(-0.0f) ||
         value == 1.0f || value == 2.0f || value == -std::numeric_limits<float>::infinity();
}

std::shared_ptr<Node> float_leaf(Shape shape, float value) {
  return std::make_shared<Node>(compiles_in(value) ? OpCode::Constant : OpCode::Scalar,
                                DType::Float32, std::move(shape),
                                std::vector<std::shared_ptr<Node>>{}, OpParams{.value = value});
}

Node::~Node() {
  // Inputs only this node holds are unlinked before they die, so each destructor below sees an
  // empty input list and the teardown of a long chain never recurses.
  std::vector<std::shared_ptr<Node>> pending = std::move(inputs);
  while (!pending.empty()) {
    std::shared_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    if (node && node.use_count() == 1) {
      for (auto& input : node->inputs) pending.push_back(std::move(input));
      node->inputs.clear();
    }
  }
}

}  // namespace fusejit::ir
