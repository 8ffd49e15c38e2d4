#include "ir/node.h"

namespace fusejit::ir {

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
         value == 1.0f || value == 2.0f;
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
