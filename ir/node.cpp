#include "ir/node.h"

namespace fusejit::ir {

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
