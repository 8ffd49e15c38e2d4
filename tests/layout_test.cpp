// The index arithmetic of zero-copy views (ir/layout.h), checked by the addresses a layout
// visits in row-major order: a view is right when it reads exactly the elements, in exactly
// the order, that the same op on the values would give.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "ir/layout.h"

namespace ir = fusejit::ir;
using fusejit::Shape;

namespace {

// The storage offset of every element, in row-major order of the layout's shape.
std::vector<int64_t> addresses(const ir::Layout& layout) {
  std::vector<int64_t> out;
  int64_t count = ir::numel(layout.shape);
  for (int64_t i = 0; i < count; ++i) out.push_back(layout.offset + ir::strided_offset(layout.shape, layout.strides, i));
  return out;
}

// Whether some strides over `to` visit `wanted` in order: the strides are fixed by the unit
// steps of each dim, then every element must agree.
bool expressible(const Shape& to, const std::vector<int64_t>& wanted) {
  if (wanted.empty()) return true;
  ir::Layout candidate{to, ir::Strides(to.size(), 0), wanted[0]};
  ir::Strides contiguous = ir::contiguous_strides(to);
  for (size_t d = 0; d < to.size(); ++d)
    if (to[d] > 1) candidate.strides[d] = wanted[static_cast<size_t>(contiguous[d])] - wanted[0];
  return addresses(candidate) == wanted;
}

}  // namespace

TEST(Layout, ReshapeOfContiguousDataAlwaysSucceeds) {
  ir::Layout base = ir::contiguous_layout({2, 3, 4});
  for (const Shape& to : {Shape{24}, Shape{6, 4}, Shape{2, 12}, Shape{4, 3, 2}, Shape{1, 24, 1}, Shape{2, 1, 3, 4}}) {
    std::optional<ir::Layout> view = ir::reshaped(base, to);
    ASSERT_TRUE(view) << ir::shape_string(to);
    EXPECT_EQ(view->strides, ir::contiguous_strides(to)) << ir::shape_string(to);
    EXPECT_EQ(addresses(*view), addresses(base));
  }
}

TEST(Layout, ReshapeOfATransposeSplitsButDoesNotMerge) {
  ir::Layout t = ir::permuted(ir::contiguous_layout({3, 4}), {1, 0});  // [4,3], strides [1,4]
  EXPECT_EQ(t.strides, (ir::Strides{1, 4}));
  EXPECT_FALSE(ir::reshaped(t, {12}));
  EXPECT_FALSE(ir::reshaped(t, {3, 4}));
  std::optional<ir::Layout> split = ir::reshaped(t, {2, 2, 3});
  ASSERT_TRUE(split);
  EXPECT_EQ(addresses(*split), addresses(t));
  std::optional<ir::Layout> padded = ir::reshaped(t, {1, 4, 1, 3});
  ASSERT_TRUE(padded);
  EXPECT_EQ(addresses(*padded), addresses(t));
}

TEST(Layout, SliceSelectAndSqueezeMoveTheOffset) {
  ir::Layout x = ir::contiguous_layout({4, 10});
  ir::Layout every_other = ir::sliced(x, 1, 1, 10, 2);  // columns 1, 3, 5, 7, 9
  EXPECT_EQ(every_other.shape, (Shape{4, 5}));
  EXPECT_EQ(every_other.strides, (ir::Strides{10, 2}));
  EXPECT_EQ(every_other.offset, 1);
  ir::Layout row = ir::selected(every_other, 0, 2);
  EXPECT_EQ(addresses(row), (std::vector<int64_t>{21, 23, 25, 27, 29}));
  ir::Layout empty = ir::sliced(x, 0, 3, 3, 1);
  EXPECT_EQ(empty.shape, (Shape{0, 10}));
  EXPECT_EQ(empty.offset, 0);
  ir::Layout column = ir::unsqueezed(ir::selected(x, 1, 7), 1);  // [4,1]
  EXPECT_EQ(addresses(column), (std::vector<int64_t>{7, 17, 27, 37}));
  EXPECT_EQ(addresses(ir::squeezed(column, 1)), addresses(column));
  EXPECT_EQ(ir::unsqueezed(x, 2), (ir::Layout{{4, 10, 1}, {10, 1, 1}, 0}));
  EXPECT_TRUE(ir::is_contiguous(ir::unsqueezed(x, 0).shape, ir::unsqueezed(x, 0).strides));
}

TEST(Layout, OverlapIsAStretchedDimOrInterleavedStrides) {
  ir::Layout x = ir::contiguous_layout({4, 10});
  EXPECT_FALSE(ir::has_overlap(x));
  EXPECT_FALSE(ir::has_overlap(ir::permuted(x, {1, 0})));
  EXPECT_FALSE(ir::has_overlap(ir::sliced(x, 1, 0, 10, 3)));
  EXPECT_TRUE(ir::has_overlap({{4, 10}, {0, 1}, 0}));          // expanded rows
  EXPECT_FALSE(ir::has_overlap({{1, 10}, {0, 1}, 0}));         // a size-1 dim's stride is never used
  EXPECT_TRUE(ir::has_overlap({{3, 3}, {2, 1}, 0}));           // [0,1,2] [2,3,4]
  EXPECT_FALSE(ir::has_overlap({{3, 2}, {2, 1}, 0}));
  EXPECT_FALSE(ir::has_overlap({{0, 5}, {0, 0}, 0}));          // no elements
}

// Random chains of views of a small tensor, each followed by reshapes to every shape of the
// same element count: a reshape succeeds exactly when some strides express it, and then reads
// the same addresses in the same order.
TEST(Layout, RandomViewChainsReshapeToTheSameAddresses) {
  std::mt19937 random(7);
  auto pick = [&](int64_t n) { return static_cast<int64_t>(random() % static_cast<uint32_t>(n)); };
  const std::vector<Shape> targets = {{24}, {2, 12}, {12, 2}, {3, 8}, {4, 6}, {2, 3, 4}, {4, 3, 2}, {2, 2, 6}, {1, 24},
                                      {6}, {2, 3}, {3, 2}, {1, 6, 1}, {4}, {2, 2}, {12}, {3, 4}, {2, 6}};
  int reshapes = 0;
  for (int trial = 0; trial < 300; ++trial) {
    ir::Layout layout = ir::contiguous_layout({2, 3, 4});
    for (int step = 0; step < 3; ++step) {
      size_t rank = layout.shape.size();
      if (rank == 0) break;
      auto dim = static_cast<size_t>(pick(static_cast<int64_t>(rank)));
      switch (pick(4)) {
        case 0: {
          std::vector<size_t> order(rank);
          std::iota(order.begin(), order.end(), 0);
          std::shuffle(order.begin(), order.end(), random);
          layout = ir::permuted(layout, order);
          break;
        }
        case 1: {
          int64_t size = layout.shape[dim];
          int64_t start = pick(size), step_size = 1 + pick(2);
          layout = ir::sliced(layout, dim, start, size, step_size);
          break;
        }
        case 2: layout = ir::unsqueezed(layout, static_cast<size_t>(pick(static_cast<int64_t>(rank) + 1))); break;
        default:
          if (layout.shape[dim] == 1) layout = ir::squeezed(layout, dim);
      }
    }
    for (const Shape& to : targets) {
      if (ir::numel(to) != ir::numel(layout.shape)) continue;
      std::optional<ir::Layout> view = ir::reshaped(layout, to);
      EXPECT_EQ(view.has_value(), expressible(to, addresses(layout)))
          << ir::shape_string(layout.shape) << " strides " << ir::shape_string(layout.strides) << " -> "
          << ir::shape_string(to);
      if (!view) continue;
      ++reshapes;
      EXPECT_EQ(view->shape, to);
      EXPECT_EQ(addresses(*view), addresses(layout)) << ir::shape_string(layout.shape) << " -> " << ir::shape_string(to);
    }
  }
  EXPECT_GT(reshapes, 100);
}
