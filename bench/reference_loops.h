// Hand-written reference loops for the benchmarks, compiled alone with -O3 -march=native
// (reference_loops.cpp). Every function works on a half-open range so that two threads can
// split the work; none of them allocates.
#pragma once

#include <cstdint>

namespace fjbench::ref {

// STREAM copy: c[i] = a[i].
void copy(const float* a, float* c, int64_t begin, int64_t end);
// STREAM triad: a[i] = b[i] + s * c[i].
void triad(float* a, const float* b, const float* c, float s, int64_t begin, int64_t end);

// STREAM-style read: the sum of a[begin, end), in several independent vector accumulators.
float read_sum(const float* a, int64_t begin, int64_t end);
// The sum of (a[i] - b[i])^2 over [begin, end), in the same accumulators: the loop of
// mean((a-b)*(a-b)), and the roof for reading two streams.
float squared_difference_sum(const float* a, const float* b, int64_t begin, int64_t end);

// y = gelu(x * w + b) with exact (erf) gelu; x, w, y are [rows, cols], b is [cols] (broadcast
// over rows). Works on rows [row_begin, row_end).
void chain_gelu(const float* x, const float* w, const float* b, float* y, int64_t cols,
                int64_t row_begin, int64_t row_end);
// y = x * sigmoid(x).
void chain_silu(const float* x, float* y, int64_t begin, int64_t end);
// y = relu(tanh(x * 2 + 1) * x - 0.5) * 3.
void chain7(const float* x, float* y, int64_t begin, int64_t end);

// out = x^T + y for x, y, out of shape [n, n], over output rows [row_begin, row_end): in
// blocks of 16 x 16, each read along x's rows into a local block and added along out's rows.
void transpose_add(const float* x, const float* y, float* out, int64_t n, int64_t row_begin, int64_t row_end);
// The memory traffic of x^T + y run in tiles of 256 output rows x 64 columns, as fusejit's
// kernel runs it, without the transposition: each tile's 64 runs of x copied to a buffer as
// they lie, then out = buffer + y along out's rows with streaming stores, the next tile
// prefetched. What any kernel tiling this transposed read can at best reach (its result is not
// x^T + y). n must be a multiple of 64, the row range of 256.
void tile_traffic(const float* x, const float* y, float* out, int64_t n, int64_t row_begin, int64_t row_end);

// One Adam step in place, as torch's fused Adam computes it: m = b1 m + (1 - b1) g,
// v = b2 v + (1 - b2) g^2, p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps), with
// step_size = lr / (1 - b1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - b2^t).
struct Adam {
  float b1, b2, eps, step_size, inv_sqrt_bc2;
};
void adam_step(float* p, const float* g, float* m, float* v, const Adam& adam, int64_t begin, int64_t end);
// The memory traffic of an Adam step (p, g, m, v read; p, m, v written in place) with one add
// per value written: the memory roof the step is bound by.
void adam_traffic(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end);

}  // namespace fjbench::ref
