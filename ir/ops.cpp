#include "ir/ops.h"

#include <array>

namespace fusejit::ir {
namespace {

constexpr auto kOpTable = std::to_array<OpInfo>({
#define FUSEJIT_SPECIAL_ROW(Enum, name, kind) {name, OpKind::kind, 0, kCheap},
#define FUSEJIT_ELEMENTWISE_ROW(Enum, name, kind, cost, formula) \
  {name, OpKind::kind, arity_of(OpKind::kind), cost},
    FUSEJIT_SPECIAL_OPS(FUSEJIT_SPECIAL_ROW) FUSEJIT_ELEMENTWISE_OPS(FUSEJIT_ELEMENTWISE_ROW)
#undef FUSEJIT_SPECIAL_ROW
#undef FUSEJIT_ELEMENTWISE_ROW
});

}  // namespace

const OpInfo& op_info(OpCode op) { return kOpTable[static_cast<size_t>(op)]; }

std::string_view op_name(OpCode op) { return op_info(op).name; }

}  // namespace fusejit::ir
