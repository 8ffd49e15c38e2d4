#include "ir/ops.h"

#include <array>

namespace fusejit::ir {
namespace {

constexpr auto kOpTable = std::to_array<OpInfo>({
#define FUSEJIT_SPECIAL_ROW(Enum, name, kind, pattern)                                               \
  {name, OpKind::kind, arity_of(OpKind::kind),                                                     \
   FusionPattern::pattern == FusionPattern::OutputFusable ? kNeverRecomputed : kCheap, kExact, FusionPattern::pattern},
#define FUSEJIT_ELEMENTWISE_ROW(Enum, name, kind, cost, accuracy, formula) \
  {name, OpKind::kind, arity_of(OpKind::kind), cost, accuracy, FusionPattern::Elementwise},
#define FUSEJIT_REDUCTION_ROW(Enum, name, identity, accumulation, combine) \
  {name, OpKind::Reduce, 1, kNeverRecomputed, kExact, FusionPattern::Reduction},
    FUSEJIT_SPECIAL_OPS(FUSEJIT_SPECIAL_ROW) FUSEJIT_ELEMENTWISE_OPS(FUSEJIT_ELEMENTWISE_ROW)
        FUSEJIT_REDUCTION_OPS(FUSEJIT_REDUCTION_ROW)
#undef FUSEJIT_SPECIAL_ROW
#undef FUSEJIT_ELEMENTWISE_ROW
#undef FUSEJIT_REDUCTION_ROW
});

}  // namespace

double reduction_identity(OpCode op) {
  switch (op) {
#define FUSEJIT_IDENTITY_CASE(Enum, name, identity, accumulation, combine) \
  case OpCode::Enum:                                          \
    return identity;
    FUSEJIT_REDUCTION_OPS(FUSEJIT_IDENTITY_CASE)
#undef FUSEJIT_IDENTITY_CASE
    default:
      break;
  }
  throw InternalError("reduction_identity: " + std::string(op_name(op)) + " is not a reduction");
}

Accumulation reduction_accumulation(OpCode op) {
  switch (op) {
#define FUSEJIT_ACCUMULATION_CASE(Enum, name, identity, accumulation, combine) \
  case OpCode::Enum:                                                          \
    return Accumulation::accumulation;
    FUSEJIT_REDUCTION_OPS(FUSEJIT_ACCUMULATION_CASE)
#undef FUSEJIT_ACCUMULATION_CASE
    default:
      break;
  }
  throw InternalError("reduction_accumulation: " + std::string(op_name(op)) + " is not a reduction");
}

const OpInfo& op_info(OpCode op) { return kOpTable[static_cast<size_t>(op)]; }

size_t op_count() { return kOpTable.size(); }

std::string_view op_name(OpCode op) { return op_info(op).name; }

}  // namespace fusejit::ir
