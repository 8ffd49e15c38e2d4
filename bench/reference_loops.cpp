// Hand-written loops that the fused kernels are measured against. This file alone is compiled
// with -O3 -march=native (see CMakeLists.txt), so GCC vectorizes every loop at the host's full
// width. The transcendental functions are inline float polynomials, not libm calls: libm's
// scalar tanhf/erff/expf would keep the loops scalar and make the reference needlessly slow.
//
// Because this TU is built for the host CPU only, it includes no standard-library header with
// inline functions (their AVX copies could be picked by the linker for the rest of the binary);
// everything it needs is a builtin.
//
// Accuracy (checked at benchmark setup against a double-precision reference, over the ranges the
// checks use): exp ≈ 2 ulp, tanh and sigmoid a few ulp, erf ≈ 1e-7 absolute. NaN inputs are
// not propagated (no benchmark feeds any).
#include "reference_loops.h"

namespace fjbench::ref {
namespace {

inline float fma_f(float a, float b, float c) { return __builtin_fmaf(a, b, c); }

// Cephes-style expf: round x/ln2 to an integer n with the 1.5*2^23 trick, reduce
// r = x - n*ln2 (two-part ln2), a degree-6 polynomial for e^r, and scale by 2^n built in the
// exponent bits. Valid for x in [-87, 88] (2^n stays a normal float): the callers clamp.
inline float exp_f(float x) {
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  float n = fma_f(x, 1.44269504088896341f, magic) - magic;
  float r = fma_f(n, -0.693145751953125f, x);  // ln2 high part (exact n * hi)
  r = fma_f(n, -1.428606765330187e-06f, r);    // ln2 low part
  float p = 1.9875691500e-4f;
  p = fma_f(p, r, 1.3981999507e-3f);
  p = fma_f(p, r, 8.3334519073e-3f);
  p = fma_f(p, r, 4.1665795894e-2f);
  p = fma_f(p, r, 1.6666665459e-1f);
  p = fma_f(p, r, 5.0000001201e-1f);
  float er = fma_f(p, r * r, r) + 1.0f;
  int bits = (static_cast<int>(n) + 127) << 23;
  return er * __builtin_bit_cast(float, bits);
}

// Clamps written as one-sided `a < b ? a : b` on |x|, which GCC turns into a single vminps
// (two-sided clamps on x become compare-and-blend chains).
inline float min_f(float a, float b) { return a < b ? a : b; }

// tanh: an odd polynomial (Cephes tanhf) for |x| < 0.625, where 1 - 2/(e^2x + 1) would cancel;
// else 1 - 2/(e^2|x| + 1) with the sign of x. |x| is clamped to 9, where tanh rounds to 1.
inline float tanh_f(float x) {
  float ax = __builtin_fabsf(x);
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = fma_f(p, z, 2.06390887954e-2f);
  p = fma_f(p, z, -5.37397155531e-2f);
  p = fma_f(p, z, 1.33314422036e-1f);
  p = fma_f(p, z, -3.33332819422e-1f);
  float small = fma_f(p * z, x, x);
  float big = 1.0f - 2.0f / (exp_f(2.0f * min_f(ax, 9.0f)) + 1.0f);
  big = __builtin_copysignf(big, x);
  return ax < 0.625f ? small : big;
}

// sigmoid from e = e^-|x| (never overflows): 1/(1+e) for x >= 0, e/(1+e) for x < 0, both
// without cancellation. |x| is clamped to 87, beyond which the result is 1 or ~1e-38.
inline float sigmoid_f(float x) {
  float e = exp_f(-min_f(__builtin_fabsf(x), 87.0f));
  float r = 1.0f / (1.0f + e);
  return x < 0.0f ? e * r : r;
}

// erf as a rational function x*P(x^2)/Q(x^2) on [-4, 4] (the Eigen/XLA float erf), where erf is
// ±1 in float outside; evaluated on |x| and given the sign of x. About 1e-7 absolute error.
inline float erf_f(float x) {
  float a = min_f(__builtin_fabsf(x), 4.0f);
  float a2 = a * a;
  float p = -2.72614225801306e-10f;
  p = fma_f(p, a2, 2.77068142495902e-08f);
  p = fma_f(p, a2, -2.10102402082508e-06f);
  p = fma_f(p, a2, -5.69250639462346e-05f);
  p = fma_f(p, a2, -7.34990630326855e-04f);
  p = fma_f(p, a2, -2.95459980854025e-03f);
  p = fma_f(p, a2, -1.60960333262415e-02f);
  p = p * a;
  float q = -1.45660718464996e-05f;
  q = fma_f(q, a2, -2.13374055278905e-04f);
  q = fma_f(q, a2, -1.68282697438203e-03f);
  q = fma_f(q, a2, -7.37332916720468e-03f);
  q = fma_f(q, a2, -1.42647390514189e-02f);
  return __builtin_copysignf(p / q, x);
}

// Exact gelu: 0.5 * v * (1 + erf(v / sqrt(2))).
inline float gelu_f(float v) { return 0.5f * v * (1.0f + erf_f(v * 0.707106781186547524f)); }

}  // namespace

void copy(const float* __restrict a, float* __restrict c, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) c[i] = a[i];
}

void triad(float* __restrict a, const float* __restrict b, const float* __restrict c, float s,
           int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) a[i] = b[i] + s * c[i];
}

void chain_gelu(const float* __restrict x, const float* __restrict w, const float* __restrict b,
                float* __restrict y, int64_t cols, int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* xr = x + r * cols;
    const float* wr = w + r * cols;
    float* yr = y + r * cols;
    for (int64_t c = 0; c < cols; ++c) yr[c] = gelu_f(xr[c] * wr[c] + b[c]);
  }
}

void chain_silu(const float* __restrict x, float* __restrict y, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) y[i] = x[i] * sigmoid_f(x[i]);
}

void chain7(const float* __restrict x, float* __restrict y, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    float v = tanh_f(x[i] * 2.0f + 1.0f) * x[i] - 0.5f;
    y[i] = (v > 0.0f ? v : 0.0f) * 3.0f;
  }
}

float read_sum(const float* a, int64_t begin, int64_t end) {
  // Four accumulators of 16 floats: a float sum does not vectorize without reassociation, so
  // the vectors are spelled out (GCC splits them to the host's register width).
  typedef float v16 __attribute__((vector_size(64), aligned(4)));
  v16 acc[4] = {};
  int64_t i = begin;
  for (; i + 64 <= end; i += 64)
    for (int k = 0; k < 4; ++k) acc[k] += *reinterpret_cast<const v16*>(a + i + 16 * k);
  v16 total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  float sum = 0;
  for (int k = 0; k < 16; ++k) sum += total[k];
  for (; i < end; ++i) sum += a[i];
  return sum;
}

float squared_difference_sum(const float* a, const float* b, int64_t begin, int64_t end) {
  typedef float v16 __attribute__((vector_size(64), aligned(4)));
  v16 acc[4] = {};
  int64_t i = begin;
  for (; i + 64 <= end; i += 64)
    for (int k = 0; k < 4; ++k) {
      v16 d = *reinterpret_cast<const v16*>(a + i + 16 * k) - *reinterpret_cast<const v16*>(b + i + 16 * k);
      acc[k] += d * d;
    }
  v16 total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  float sum = 0;
  for (int k = 0; k < 16; ++k) sum += total[k];
  for (; i < end; ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return sum;
}

void transpose_add(const float* x, const float* y, float* out, int64_t n, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kBlock = 16;
  alignas(64) float block[kBlock][kBlock];
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kBlock) {
    int64_t rows = row_end - r0 < kBlock ? row_end - r0 : kBlock;
    for (int64_t c0 = 0; c0 < n; c0 += kBlock) {
      int64_t cols = n - c0 < kBlock ? n - c0 : kBlock;
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = 0; r < rows; ++r) block[r][c] = x[(c0 + c) * n + r0 + r];
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) out[(r0 + r) * n + c0 + c] = block[r][c] + y[(r0 + r) * n + c0 + c];
    }
  }
}

void tile_traffic(const float* x, const float* y, float* out, int64_t n, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kRows = 256, kColumns = 64;
  alignas(64) float buffer[kColumns * kRows];
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kRows) {
    for (int64_t c0 = 0; c0 < n; c0 += kColumns) {
      for (int64_t c = 0; c < kColumns; ++c) {
        const float* run = x + (c0 + c) * n + r0;
        for (int64_t line = 0; line < kRows; line += 16) __builtin_prefetch(run + kColumns * n + line, 0, 1);
        for (int64_t r = 0; r < kRows; ++r) buffer[c * kRows + r] = run[r];
      }
      for (int64_t r = 0; r < kRows; ++r) {
        const float* y_row = y + (r0 + r) * n + c0;
        float* out_row = out + (r0 + r) * n + c0;
        for (int64_t line = 0; line < kColumns; line += 16) __builtin_prefetch(y_row + kColumns + line, 0, 1);
        for (int64_t c = 0; c < kColumns; c += 8) {
          typedef float Eight __attribute__((vector_size(32), aligned(32)));
          Eight sum = *reinterpret_cast<const Eight*>(buffer + r * kColumns + c) +
                      *reinterpret_cast<const Eight*>(y_row + c);
          __builtin_ia32_movntps256(out_row + c, sum);  // a streaming store (vmovntps)
        }
      }
    }
  }
}

void adam_step(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m, float* __restrict__ v,
               const Adam& adam, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    float mi = adam.b1 * m[i] + (1 - adam.b1) * g[i];
    float vi = adam.b2 * v[i] + (1 - adam.b2) * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    p[i] -= adam.step_size * mi / (__builtin_sqrtf(vi) * adam.inv_sqrt_bc2 + adam.eps);
  }
}

void adam_traffic(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m, float* __restrict__ v,
                  int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    m[i] += g[i];
    v[i] += g[i];
    p[i] += g[i];
  }
}

}  // namespace fjbench::ref
