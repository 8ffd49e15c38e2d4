// The IR on its own: shapes, printer, verifier, passes and the fusion rules.
#include <gtest/gtest.h>

#include "ir/graph.h"
#include "ir/kernel.h"
#include "ir/passes.h"
#include "ir/reference.h"

using namespace fusejit;
using namespace fusejit::ir;

namespace {

// A small graph builder for tests: inputs are zero-filled views of the right shape.
struct Builder {
  Graph graph;
  std::vector<std::shared_ptr<Storage>> keep;

  NodeId input(Shape shape) {
    auto storage = std::make_shared<Storage>(new float[numel(shape) + 1](), numel(shape) * 4,
                                             [](void* p, int64_t) { delete[] static_cast<float*>(p); });
    return graph.add({OpCode::Input, DType::Float32, shape, {}, {}, {storage, contiguous_strides(shape), 0}});
  }
  NodeId constant(double value, Shape shape = {}) {
    return graph.add({OpCode::Constant, DType::Float32, shape, {}, {.value = value}, {}});
  }
  NodeId op(OpCode code, std::vector<NodeId> inputs) {
    std::vector<OperandType> types;
    for (NodeId i : inputs) types.push_back({graph.nodes[i].dtype, &graph.nodes[i].shape});
    TypedShape type = infer_type(code, types);
    return graph.add({code, type.dtype, type.shape, inputs, {}, {}});
  }
};

}  // namespace

TEST(Shapes, Broadcasting) {
  EXPECT_EQ(*broadcast_shapes({3, 1}, {4}), (Shape{3, 4}));
  EXPECT_EQ(*broadcast_shapes({}, {2, 2}), (Shape{2, 2}));
  EXPECT_EQ(*broadcast_shapes({0}, {1}), (Shape{0}));
  EXPECT_FALSE(broadcast_shapes({3}, {4}));
  EXPECT_EQ(broadcast_strides({4}, {1}, {3, 4}), (Strides{0, 1}));
  EXPECT_EQ(broadcast_strides({3, 1}, {1, 1}, {3, 4}), (Strides{1, 0}));
  EXPECT_FALSE(addressable({int64_t{1} << 32, int64_t{1} << 32}));
  EXPECT_FALSE(addressable({int64_t{1} << 31, int64_t{1} << 29}));  // 2^60 elements of 8 bytes
  EXPECT_TRUE(addressable({int64_t{1} << 30, int64_t{1} << 29}));
  EXPECT_FALSE(addressable({-2}));
  EXPECT_TRUE(addressable({0, 5}));
  EXPECT_FALSE(addressable({0, int64_t{1} << 62}));  // its strides would overflow
}

TEST(Printer, StableText) {
  Builder b;
  NodeId x = b.input({2, 3});
  NodeId y = b.op(OpCode::Mul, {x, b.constant(2)});
  b.graph.outputs = {b.op(OpCode::Tanh, {y})};
  EXPECT_EQ(print(b.graph),
            "  %0 = input : f32[2,3]\n"
            "  %1 = constant 2 : f32[]\n"
            "  %2 = mul(%0, %1) : f32[2,3]\n"
            "  %3 = tanh(%2) : f32[2,3]\n"
            "  outputs: %3\n");
}

TEST(Verifier, RejectsBrokenGraphs) {
  Builder b;
  NodeId x = b.input({2});
  b.graph.add({OpCode::Add, DType::Float32, {2}, {x}, {}, {}});  // one input short
  EXPECT_THROW(verify(b.graph), InternalError);
  Builder c;
  NodeId y = c.input({2});
  c.graph.add({OpCode::Neg, DType::Float32, {3}, {y}, {}, {}});  // wrong shape
  EXPECT_THROW(verify(c.graph), InternalError);
  Builder d;
  d.graph.add({OpCode::Neg, DType::Float32, {2}, {1}, {}, {}});  // input defined later
  d.input({2});
  EXPECT_THROW(verify(d.graph), InternalError);
  Shape two{2}, three{3};
  std::vector<OperandType> mismatched = {{DType::Float32, &two}, {DType::Float32, &three}};
  EXPECT_THROW(infer_type(OpCode::Add, mismatched), Error);
}

TEST(Passes, FoldSimplifyCseDce) {
  Builder b;
  NodeId x = b.input({4});
  NodeId three = b.op(OpCode::Add, {b.constant(1), b.constant(2)});
  NodeId once = b.op(OpCode::Mul, {x, three});
  NodeId twice = b.op(OpCode::Mul, {x, three});
  NodeId unit = b.op(OpCode::Mul, {b.op(OpCode::Add, {once, twice}), b.constant(1)});
  b.op(OpCode::Exp, {x});  // dead
  b.graph.outputs = {b.op(OpCode::Neg, {b.op(OpCode::Neg, {unit})})};
  Graph out = eliminate_dead_code(canonicalize(b.graph));
  EXPECT_EQ(print(out),
            "  %0 = input : f32[4]\n"
            "  %1 = constant 3 : f32[]\n"
            "  %2 = mul(%0, %1) : f32[4]\n"
            "  %3 = add(%2, %2) : f32[4]\n"
            "  outputs: %3\n");
}

TEST(Passes, SimplifyKeepsBroadcastShapes) {
  Builder b;
  NodeId row = b.input({4});
  b.graph.outputs = {b.op(OpCode::Mul, {row, b.constant(1, {3, 4})})};
  Graph out = eliminate_dead_code(canonicalize(b.graph));
  EXPECT_EQ(out.nodes[out.outputs[0]].shape, (Shape{3, 4}));
}

TEST(Fusion, ChainIsOneKernelWithCollapsedDomain) {
  Builder b;
  NodeId x = b.input({64, 128});
  NodeId y = b.op(OpCode::Tanh, {b.op(OpCode::Add, {x, b.constant(1)})});
  b.graph.outputs = {b.op(OpCode::Relu, {y})};
  Schedule s = schedule_kernels(b.graph, {});
  ASSERT_EQ(s.kernels.size(), 1u);
  EXPECT_EQ(s.kernels[0].kernel.domain, (Shape{64 * 128}));
  EXPECT_EQ(s.kernels[0].kernel.outputs.size(), 1u);
  Schedule eager = schedule_kernels(b.graph, {.fuse = false});
  EXPECT_EQ(eager.kernels.size(), 3u);
}

TEST(Fusion, BroadcastRowKeepsTwoDims) {
  Builder b;
  NodeId x = b.input({64, 128});
  NodeId row = b.input({128});
  b.graph.outputs = {b.op(OpCode::Add, {x, row})};
  Schedule s = schedule_kernels(b.graph, {});
  ASSERT_EQ(s.kernels.size(), 1u);
  const Kernel& k = s.kernels[0].kernel;
  EXPECT_EQ(k.domain, (Shape{64, 128}));
  EXPECT_EQ(k.ops[0].strides, (Strides{128, 1}));
  EXPECT_EQ(k.ops[1].strides, (Strides{0, 1}));
}

TEST(Fusion, RecomputeCheapMaterializeExpensive) {
  Builder b;
  NodeId m = b.input({8, 16});
  NodeId row = b.input({16});
  NodeId cheap = b.op(OpCode::Add, {b.op(OpCode::Mul, {row, b.constant(2)}), b.constant(1)});
  NodeId costly = b.op(OpCode::Exp, {row});
  b.graph.outputs = {b.op(OpCode::Add, {b.op(OpCode::Mul, {m, cheap}), costly})};
  Schedule s = schedule_kernels(b.graph, {});
  ASSERT_EQ(s.kernels.size(), 2u);  // exp(row), then the [8,16] kernel with `cheap` inlined
  EXPECT_EQ(s.kernels[0].output_nodes, std::vector<NodeId>{costly});
  std::string text = print_schedule(s);
  EXPECT_NE(text.find("recomputed: consumed by 1 other kernel, cost 2: cheap"), std::string::npos) << text;
  EXPECT_NE(text.find("materialized: consumed by 1 other kernel, cost 10 > 4: expensive"),
            std::string::npos) << text;
}

TEST(Fusion, ConsumersOfOneValueShareAKernel) {
  Builder b;
  NodeId x = b.input({16, 32});
  NodeId row = b.input({32});
  NodeId doubled = b.op(OpCode::Mul, {x, b.constant(2)});
  NodeId exped = b.op(OpCode::Exp, {x});
  NodeId other = b.op(OpCode::Exp, {b.input({16, 32})});
  NodeId row_sum = b.op(OpCode::Add, {row, row});
  b.graph.outputs = {doubled, exped, other, row_sum};
  Schedule s = schedule_kernels(b.graph, {});
  ASSERT_EQ(s.kernels.size(), 3u);  // {doubled, exped} read x once; `other` and the row alone
  EXPECT_EQ(s.kernels[0].output_nodes, (std::vector<NodeId>{doubled, exped}));
  EXPECT_EQ(s.kernels[0].inputs.size(), 1u);
}

TEST(Fusion, LongChainsAreCut) {
  Builder b;
  NodeId x = b.input({32});
  for (int i = 0; i < 600; ++i) x = b.op(OpCode::Add, {x, b.constant(1)});
  b.graph.outputs = {x};
  Schedule s = schedule_kernels(b.graph, {.max_ops_per_kernel = 256});
  EXPECT_EQ(s.kernels.size(), 3u);
  EXPECT_NE(s.kernels[1].notes[0].find("at most 256 ops"), std::string::npos);
}

TEST(Reference, EvaluatesWithBroadcasting) {
  Builder b;
  NodeId col = b.graph.add({OpCode::Arange, DType::Float32, {3}, {}, {.value = 0, .step = 1}, {}});
  NodeId row = b.graph.add({OpCode::Arange, DType::Float32, {2}, {}, {.value = 10, .step = 10}, {}});
  NodeId grid = b.op(OpCode::Add, {b.input({2, 1}), row});
  b.graph.outputs = {b.op(OpCode::Add, {row, b.constant(0.5)}), b.op(OpCode::Mul, {col, b.constant(2)}), grid};
  auto values = interpret(b.graph);
  EXPECT_EQ(values[0], (std::vector<double>{10.5, 20.5}));
  EXPECT_EQ(values[1], (std::vector<double>{0, 2, 4}));
  EXPECT_EQ(values[2], (std::vector<double>{10, 20, 10, 20}));
}
