// Vectorized float32 math as inline LLVM IR (see vector_math.h).
//
// Every function follows one pattern: reduce the argument with exact steps, evaluate a minimax
// polynomial (for tanh and erf, one rational; for gelu, one of 16 or 8 pieces picked per lane)
// with llvm.fmuladd, rebuild the result, then patch special inputs with selects.
// Coefficients are minimax fits on relative error (gelu's pieces: absolute), done in 30- to
// 40-digit arithmetic and rounded to float one at a time (refitting the rest after each; erf's
// then moved by a few ulps where that lowered the measured maximum). Errors quoted at each
// definition are maxima against the correctly rounded result (double-precision reference): "all
// floats" means every third bit pattern of the whole range; sin and cos were checked on every
// float in [0, 8192].
//
// llvm.fma (not fmuladd) marks the few steps that need an exact product (x*x split into hi +
// lo, the sin/cos reduction, the log division residual, the last step of tanh, erf and gelu);
// fusejit's targets (x86-64 with AVX2 or AVX-512) all have FMA, so each is one instruction.
#include "codegen/vector_math.h"

#include <llvm/IR/Constants.h>
#include <llvm/IR/DerivedTypes.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/IntrinsicsX86.h>

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <vector>

namespace fusejit::codegen {
namespace vmath {
namespace {

using llvm::IRBuilderBase;
using llvm::Value;
namespace Intrinsic = llvm::Intrinsic;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// The exact sums and products below must not be reassociated or contracted: drop any
// fast-math flags the caller's builder carries while we emit.
class NoFastMath {
 public:
  explicit NoFastMath(IRBuilderBase& b) : guard_(b) { b.clearFastMathFlags(); }

 private:
  IRBuilderBase::FastMathFlagGuard guard_;
};

// `v` splatted to the float type of `like` (float or <N x float>).
Value* c(Value* like, float v) { return llvm::ConstantFP::get(like->getType(), v); }

// i32 or <N x i32>, matching the shape of `like`.
llvm::Type* int_type(Value* like) {
  llvm::Type* i32 = llvm::Type::getInt32Ty(like->getContext());
  if (auto* vec = llvm::dyn_cast<llvm::VectorType>(like->getType()))
    return llvm::VectorType::get(i32, vec->getElementCount());
  return i32;
}

Value* ci(Value* like, int32_t v) {
  return llvm::ConstantInt::get(int_type(like), static_cast<uint64_t>(static_cast<int64_t>(v)),
                                /*IsSigned=*/true);
}

Value* bits(IRBuilderBase& b, Value* x) { return b.CreateBitCast(x, int_type(x)); }
Value* from_bits(IRBuilderBase& b, Value* i, Value* like) {
  return b.CreateBitCast(i, like->getType());
}

Value* fabs(IRBuilderBase& b, Value* x) { return b.CreateUnaryIntrinsic(Intrinsic::fabs, x); }

// a * m + s, fused where the target has FMA (polynomials and inexact steps).
Value* mad(IRBuilderBase& b, Value* a, Value* m, Value* s) {
  return b.CreateIntrinsic(Intrinsic::fmuladd, {a->getType()}, {a, m, s});
}

// a * m + s with a single rounding (steps that need the exact product).
Value* fma(IRBuilderBase& b, Value* a, Value* m, Value* s) {
  return b.CreateIntrinsic(Intrinsic::fma, {a->getType()}, {a, m, s});
}

// coeffs[0] + coeffs[1] x + coeffs[2] x^2 + ... by Horner's rule.
Value* poly(IRBuilderBase& b, Value* x, std::initializer_list<float> coeffs) {
  auto it = std::rbegin(coeffs);
  Value* acc = c(x, *it);
  for (++it; it != std::rend(coeffs); ++it) acc = mad(b, acc, x, c(x, *it));
  return acc;
}

// x limited to [lo, inf), (-inf, hi] or [lo, hi]; NaN passes through (the compares are false),
// so callers need no separate NaN select.
Value* clamp_below(IRBuilderBase& b, Value* x, float lo) {
  return b.CreateSelect(b.CreateFCmpOLT(x, c(x, lo)), c(x, lo), x);
}
Value* clamp_above(IRBuilderBase& b, Value* x, float hi) {
  return b.CreateSelect(b.CreateFCmpOGT(x, c(x, hi)), c(x, hi), x);
}
Value* clamp(IRBuilderBase& b, Value* x, float lo, float hi) {
  return clamp_above(b, clamp_below(b, x, lo), hi);
}

// An odd f as 2^-k (x + x R(x^2) / Q(x^2)), on x clamped to [-limit, limit] (f rounds to ±1
// beyond), with the rational fitted to t = f(x) / (2^-k x) - 1. Only the part x t of the sum
// carries the rational's roundings (the product is exact in the fma), so they count scaled by
// |t / (1 + t)|; k keeps that small near the clamp, where f is close to 1 and errors matter
// most. Scaling last keeps denormal x exact. One division; 6 instructions besides R and Q.
Value* odd_rational(IRBuilderBase& b, Value* x, float limit, float scale,
                    std::initializer_list<float> num, std::initializer_list<float> den) {
  Value* xc = clamp(b, x, -limit, limit);
  Value* z = b.CreateFMul(xc, xc);
  Value* t = b.CreateFDiv(poly(b, z, num), poly(b, z, den));
  return b.CreateFMul(fma(b, xc, t, xc), c(x, scale));
}

// ±0 maps to itself: the exact sums in expm1/log1p would turn -0 into +0.
Value* keep_zero(IRBuilderBase& b, Value* x, Value* r) {
  return b.CreateSelect(b.CreateFCmpOEQ(x, c(x, 0.0f)), x, r);
}

// 2^n as a float, for integer n in [-126, 127].
Value* pow2i(IRBuilderBase& b, Value* n, Value* like) {
  return from_bits(b, b.CreateShl(b.CreateAdd(n, ci(like, 127)), 23), like);
}

// round(x * scale) as a float and as an integer, for |x * scale| < 2^22: adding 1.5 * 2^23
// leaves the integer in the low mantissa bits (no fptosi, so huge or NaN x stays defined).
struct Rounded {
  Value* f;
  Value* i;
};
Rounded round_to_int(IRBuilderBase& b, Value* x, float scale) {
  constexpr float kShifter = 0x1.8p23f;
  Value* t = mad(b, x, c(x, scale), c(x, kShifter));
  return {b.CreateFSub(t, c(x, kShifter)), b.CreateSub(bits(b, t), bits(b, c(x, kShifter)))};
}

constexpr float kLog2e = 0x1.715476p+0f;
// ln 2 = kLn2Hi + kLn2Lo; kLn2Hi has 15 significant bits, so k * kLn2Hi is exact for |k| < 512.
constexpr float kLn2Hi = 0x1.62e4p-1f;
constexpr float kLn2Lo = 0x1.7f7d1cp-20f;

// e^r - 1 - r = r^2 P(r) on |r| <= ln2/2; relative error 2^-31 against e^r - 1.
Value* expm1_tail(IRBuilderBase& b, Value* r) {
  Value* p = poly(
      b, r, {0.5f, 1.66666657e-1f, 4.16664928e-2f, 8.33354611e-3f, 1.39323284e-3f, 1.97616740e-4f});
  return b.CreateFMul(b.CreateFMul(r, r), p);
}

// Whether x splits into whole registers of `width` lanes of an ISA the target has (16: AVX-512,
// 8: AVX2), a power of two of them, so that x86 intrinsics can take it apart.
bool fits_registers(const Target& target, Value* x, int width) {
  auto* type = llvm::dyn_cast<llvm::FixedVectorType>(x->getType());
  bool has_isa = width == 16 ? target.avx512 : target.avx2;
  return has_isa && type && type->getNumElements() % width == 0 &&
         llvm::isPowerOf2_32(type->getNumElements() / width);
}

// part(slice) for each `width`-lane register of a vector shaped like `like` (see
// fits_registers), where slice(v) extracts that register of v; the results concatenated back.
template <class Part>
Value* by_registers(IRBuilderBase& b, Value* like, int width, Part part) {
  auto* type = llvm::cast<llvm::FixedVectorType>(like->getType());
  int lanes = static_cast<int>(type->getNumElements());
  std::vector<Value*> parts;
  for (int at = 0; at < lanes; at += width) {
    std::vector<int> indices(width);
    for (int i = 0; i < width; ++i) indices[i] = at + i;
    parts.push_back(part([&](Value* v) { return b.CreateShuffleVector(v, indices); }));
  }
  while (parts.size() > 1) {  // concatenate pairwise
    std::vector<Value*> joined;
    for (size_t i = 0; i < parts.size(); i += 2) {
      int half = static_cast<int>(
          llvm::cast<llvm::FixedVectorType>(parts[i]->getType())->getNumElements());
      std::vector<int> both(2 * half);
      for (int j = 0; j < 2 * half; ++j) both[j] = j;
      joined.push_back(b.CreateShuffleVector(parts[i], parts[i + 1], both));
    }
    parts = std::move(joined);
  }
  return parts[0];
}

// x 2^n for integral n, rounded once (denormal results included), as one AVX-512 vscalefps
// per 16 lanes; null where x does not fit AVX-512 registers. The same result as the
// two-product form in exp_core, in one instruction instead of five.
Value* scale_by_pow2(IRBuilderBase& b, const Target& target, Value* x, Value* n) {
  if (!fits_registers(target, x, 16)) return nullptr;
  return by_registers(b, x, 16, [&](auto slice) -> Value* {
    Value* xs = slice(x);
    return b.CreateIntrinsic(Intrinsic::x86_avx512_mask_scalef_ps_512, {},
                             {xs, slice(n), xs, b.getInt16(-1),
                              b.getInt32(4) /* _MM_FROUND_CUR_DIRECTION */});
  });
}

// scale * e^(hi + lo), with lo a small correction to hi and scale in (0, 1] (either may be
// null). Overflows to inf above ~88.72 and underflows gradually to 0 below ~-103.97; NaN
// propagates. Folding scale in saves the rounding of a separate product.
Value* exp_core(IRBuilderBase& b, const Target& target, Value* hi, Value* lo = nullptr,
                Value* scale = nullptr, bool nonpositive = false) {
  // Keeps n in [-150, 128]; a caller whose hi is never positive saves the upper bound.
  Value* x = nonpositive ? clamp_below(b, hi, -104.0f) : clamp(b, hi, -104.0f, 89.0f);
  // t = kShifter + round(x / ln2) leaves m = n + 254 in the low mantissa bits (as round_to_int).
  constexpr float kShifter = 0x1.8p23f + 254;
  Value* t = mad(b, x, c(x, kLog2e), c(x, kShifter));
  Value* n = b.CreateFSub(t, c(x, kShifter));
  // x - n ln2: the first step is exact (exact product, then Sterbenz), leaving |r| <= ln2/2.
  Value* r = mad(b, b.CreateFNeg(n), c(x, kLn2Hi), x);
  r = mad(b, b.CreateFNeg(n), c(x, kLn2Lo), r);
  if (lo) r = b.CreateFAdd(r, b.CreateSelect(b.CreateFCmpOEQ(x, hi), lo, c(x, 0.0f)));
  // e^r = 1 + r s(r); relative error 2^-28.
  Value* s = poly(
      b, r, {1.0f, 4.99999940e-1f, 1.66665211e-1f, 4.16682549e-2f, 8.36866535e-3f, 1.38215628e-3f});
  Value* p = scale ? mad(b, scale, b.CreateFMul(r, s), scale) : mad(b, r, s, c(x, 1.0f));
  if (Value* scaled = scale_by_pow2(b, target, p, n)) return scaled;
  // 2^n as 2^(h - 127) 2^(m - h - 127), h = m >> 1: n spans [-150, 128], beyond a single normal
  // power of two, and the second product is the only rounding when the result is denormal.
  // Both exponent fields come from t's bits, whose high bits the shift by 23 discards.
  Value* tb = bits(b, t);
  Value* half = b.CreateLShr(tb, 1);
  Value* s1 = from_bits(b, b.CreateShl(half, 23), x);
  Value* s2 = from_bits(b, b.CreateShl(b.CreateSub(tb, half), 23), x);
  return b.CreateFMul(b.CreateFMul(p, s1), s2);
}

// A value carried as the unevaluated sum hi + lo, |lo| <= ulp(hi) / 2.
struct HiLo {
  Value* hi;
  Value* lo;
};

// ln(x + err) as hi + lo (relative error below 2^-28), for x >= 0 and |err| <= ulp(x) (err may be
// null). At x = 0, inf and NaN, hi is -inf, inf and NaN and lo is 0; for x < 0 the result is
// meaningless.
HiLo log_core(IRBuilderBase& b, Value* x, Value* err) {
  // Denormals: scale into the normal range so the exponent field is the exponent.
  Value* denormal = b.CreateFCmpOLT(x, c(x, 0x1p-126f));
  Value* xs = b.CreateSelect(denormal, b.CreateFMul(x, c(x, 0x1p23f)), x);
  // x = 2^k m with m in [sqrt(1/2), sqrt(2)): measure the exponent from sqrt(1/2)'s bits.
  constexpr int32_t kSqrtHalfBits = 0x3f3504f3;
  Value* ix = b.CreateSub(bits(b, xs), ci(x, kSqrtHalfBits));
  Value* k = b.CreateAdd(b.CreateAShr(ix, 23), b.CreateSelect(denormal, ci(x, -23), ci(x, 0)));
  Value* m = from_bits(b, b.CreateAdd(b.CreateAnd(ix, ci(x, 0x7fffff)), ci(x, kSqrtHalfBits)), x);
  Value* f = b.CreateFSub(m, c(x, 1.0f));  // exact
  // ln(1 + f) = 2 atanh(s) = 2s + s^3 P(s^2), s = f / (2 + f), |s| <= 0.1716.
  Value* s = b.CreateFDiv(f, b.CreateFAdd(c(x, 2.0f), f));
  Value* s2 = b.CreateFAdd(s, s);
  // The division's residual e = f - s(2 + f), exactly (f - 2s is exact by Sterbenz). Through
  // 2s and the tail, replacing s by the true quotient moves ln(1 + f) by e / (1 + s).
  Value* e = fma(b, b.CreateFNeg(s), f, b.CreateFSub(f, s2));
  Value* one_minus_s = b.CreateFSub(c(x, 1.0f), s);
  if (err) {
    // ln(x + err) = ln x + err / x, and err / x = (err 2^-k (1 - s)) / (1 + s). 2^-k is clamped
    // to a normal float; beyond that the term is far below ulp(ln x).
    Value* k_capped = b.CreateBinaryIntrinsic(Intrinsic::smin, k, ci(x, 126));
    Value* scale = pow2i(b, b.CreateNeg(k_capped), x);
    e = mad(b, b.CreateFMul(err, scale), one_minus_s, e);
  }
  Value* z = b.CreateFMul(s, s);
  Value* inv_1ps = mad(b, one_minus_s, z, one_minus_s);  // 1 / (1 + s) to within s^4
  Value* tail =
      b.CreateFMul(b.CreateFMul(s, z),
                   poly(b, z, {6.66666627e-1f, 4.00009751e-1f, 2.84984887e-1f, 2.42861018e-1f}));
  // k ln2 + 2s is summed exactly (Fast2Sum: |k ln2| > |2s| unless k = 0); the rest is small.
  Value* kf = b.CreateSIToFP(k, x->getType());
  Value* a = b.CreateFMul(kf, c(x, kLn2Hi));
  Value* hi = b.CreateFAdd(a, s2);
  Value* lo = b.CreateFSub(s2, b.CreateFSub(hi, a));
  lo = b.CreateFAdd(lo, mad(b, kf, c(x, kLn2Lo), mad(b, e, inv_1ps, tail)));
  // Renormalize (Fast2Sum again) so that lo < ulp(hi) / 2.
  Value* sum = b.CreateFAdd(hi, lo);
  lo = b.CreateFSub(lo, b.CreateFSub(sum, hi));
  hi = sum;
  // Specials: 0 -> -inf; inf and NaN -> themselves.
  Value* finite_positive =
      b.CreateAnd(b.CreateFCmpOGT(x, c(x, 0.0f)), b.CreateFCmpOLT(x, c(x, kInf)));
  Value* special = b.CreateSelect(b.CreateFCmpOEQ(x, c(x, 0.0f)), c(x, -kInf), x);
  return {b.CreateSelect(finite_positive, hi, special),
          b.CreateSelect(finite_positive, lo, c(x, 0.0f))};
}

// sin x (quadrant offset 0) or cos x = sin(x + pi/2) (offset 1), reduced on |x|.
Value* sin_cos(IRBuilderBase& b, Value* x, int32_t quadrant_offset) {
  Value* a = fabs(b, x);
  Rounded j = round_to_int(b, a, 0x1.45f306p-1f);  // a * 2/pi
  // r = a - j pi/2 with pi/2 as three floats (72 bits): the first product is exact under FMA
  // and the difference is exact, so r keeps its relative accuracy next to multiples of pi/2.
  Value* neg_j = b.CreateFNeg(j.f);
  Value* r = fma(b, neg_j, c(x, 0x1.921fb6p+0f), a);
  r = fma(b, neg_j, c(x, -0x1.777a5cp-25f), r);
  r = fma(b, neg_j, c(x, -0x1.ee59dap-50f), r);
  Value* z = b.CreateFMul(r, r);
  Value* sin_r =
      mad(b, b.CreateFMul(r, z), poly(b, z, {-1.66666552e-1f, 8.33218731e-3f, -1.95178945e-4f}), r);
  Value* cos_r =
      mad(b, z, poly(b, z, {-0.5f, 4.16666456e-2f, -1.38873095e-3f, 2.44323237e-5f}), c(x, 1.0f));
  Value* q = b.CreateAdd(j.i, ci(x, quadrant_offset));
  Value* odd = b.CreateICmpNE(b.CreateAnd(q, ci(x, 1)), ci(x, 0));
  Value* res = b.CreateSelect(odd, cos_r, sin_r);
  // Quadrants 2 and 3 negate; sin is odd, so its sign also follows x.
  Value* sign = b.CreateShl(b.CreateAnd(q, ci(x, 2)), 30);
  if (quadrant_offset == 0) sign = b.CreateXor(sign, b.CreateAnd(bits(b, x), ci(x, INT32_MIN)));
  res = from_bits(b, b.CreateXor(bits(b, res), sign), x);
  // Beyond 2^22 the float quotient a * 2/pi no longer pins the quadrant (that needs a
  // Payne-Hanek reduction): NaN rather than a wrong value.
  return b.CreateSelect(b.CreateFCmpOGT(a, c(x, 0x1p22f)), c(x, kNaN), res);
}

// Max error 2.55 ULP over all floats: 2.1 ULP for |x| < 0.5, absolute error 1.3 ULP(1) near 1.
Value* erf(IRBuilderBase& b, Value* x) {
  NoFastMath guard(b);
  // Rational of type (13, 10) in x, relative error 2^-25; erf(3.96) rounds to 1.
  return odd_rational(b, x, 3.96f, 0x1p-2f,
                      {3.51351666e+00f, 2.43788078e-01f, 1.03109077e-01f, -5.91572607e-05f,
                       2.03720323e-04f, -4.39271571e-05f, -5.11281826e-08f},
                      {1.00000000e+00f, 4.97590840e-01f, 1.13955386e-01f, 1.54455313e-02f,
                       1.30309549e-03f, 6.23375745e-05f});
}

// Phi(a) - 1/2 = erf(a / sqrt2) / 2 for a in [0, limit] as one polynomial piece per lane of a
// register: piece k in r = a - k width (|r| <= width / 2), its coefficients looked up per lane
// with vpermps. Fits of absolute error (Lawson's iteration in 30-digit arithmetic, each
// coefficient rounded to float and the higher ones refitted), within 2^-26 with float
// coefficients, mostly the rounding of the constant terms. AVX-512 permutes 16 entries, AVX2 8:
// the wider pieces need one degree more.
template <int Pieces, int Terms>
struct HalfErfPieces {
  float width;
  // a is clamped here, where Phi(a) - 1/2 rounds to 1/2 and the last piece evaluates to exactly
  // 1/2, so that x/2 + |x| (1/2) cancels to 0 for very negative x (the accuracy tests reach
  // -FLT_MAX).
  float limit;
  float coefficients[Terms][Pieces];  // row j: coefficient j of every piece, one permute table
};
constexpr HalfErfPieces<16, 6> kHalfErf16 = {
    0.375f,
    5.8f,
    {
     {0.0f, 1.461697668e-01f, 2.733726501e-01f, 3.697054684e-01f, 4.331927896e-01f,
      4.696036279e-01f, 4.877755344e-01f, 4.956675470e-01f, 4.986501038e-01f, 4.996309280e-01f,
      4.999115765e-01f, 4.999814630e-01f, 4.999966025e-01f, 4.999994636e-01f, 4.999999106e-01f,
      5.000000000e-01f},
     {3.989422619e-01f, 3.718550801e-01f, 3.011374474e-01f, 2.118766457e-01f, 1.295175999e-01f,
      6.878627837e-02f, 3.173965216e-02f, 1.272418164e-02f, 4.431848414e-03f, 1.341118827e-03f,
      3.525956708e-04f, 8.054044883e-05f, 1.598374183e-05f, 2.755942660e-06f, 4.128471005e-07f,
      5.373232526e-08f},
     {1.063630634e-06f, -6.972146779e-02f, -1.129252911e-01f, -1.191766411e-01f, -9.713659436e-02f,
      -6.448581070e-02f, -3.570923582e-02f, -1.669965871e-02f, -6.648108363e-03f, -2.264451003e-03f,
      -6.596604362e-04f, -1.660127018e-04f, -3.599427146e-05f, -8.396211342e-06f, 1.874471423e-06f,
      -2.204442808e-06f},
     {-6.650979817e-02f, -5.325897038e-02f, -2.195927873e-02f, 9.379501455e-03f, 2.698210627e-02f,
      2.883987315e-02f, 2.149049379e-02f, 1.249238383e-02f, 5.909189116e-03f, 2.322509419e-03f,
      7.676127134e-04f, 2.149741631e-04f, 5.127406621e-05f, 1.045469071e-05f, 1.827144274e-06f,
      2.742751803e-07f},
     {1.457110338e-04f, 1.648570038e-02f, 2.279846743e-02f, 1.706747152e-02f, 6.049378309e-03f,
      -2.758509479e-03f, -6.042246707e-03f, -5.427211523e-03f, -3.318358213e-03f, -1.552486676e-03f,
      -6.550278631e-04f, -1.990882593e-04f, -5.162752495e-05f, 3.522257975e-05f, -8.523434371e-05f,
      5.721376874e-05f},
     {9.560410865e-03f, 6.687576417e-03f, -1.091995218e-04f, -5.240139086e-03f, -5.831929389e-03f,
      -3.282477381e-03f, -4.743599857e-04f, 9.564282955e-04f, 1.103323651e-03f, 7.200994296e-04f,
      3.435276740e-04f, 1.288577478e-04f, 3.937912697e-05f, 9.941753888e-06f, 2.102422286e-06f,
      3.749912310e-07f},
    }};
constexpr HalfErfPieces<8, 7> kHalfErf8 = {
    0.75f,
    5.62f,
    {
     {0.0f, 2.733726501e-01f, 4.331927896e-01f, 4.877755344e-01f,
      4.986501038e-01f, 4.999115765e-01f, 4.999966025e-01f, 4.999999106e-01f},
     {3.989422917e-01f, 3.011375070e-01f, 1.295176744e-01f, 3.173964843e-02f,
      4.431839101e-03f, 3.525957000e-04f, 1.598483141e-05f, 4.129304330e-07f},
     {-8.794211226e-07f, -1.129264161e-01f, -9.713797271e-02f, -3.570742160e-02f,
      -6.647814065e-03f, -6.603841321e-04f, -3.597355317e-05f, 5.877207059e-07f},
     {-6.647238135e-02f, -2.196307108e-02f, 2.697528526e-02f, 2.149308659e-02f,
      5.910230335e-03f, 7.675027009e-04f, 5.115404565e-05f, 1.817334464e-06f},
     {-1.577566873e-04f, 2.293123305e-02f, 6.072009914e-03f, -6.132970564e-03f,
      -3.324256279e-03f, -6.224825047e-04f, -5.152705853e-05f, -3.362429197e-05f},
     {1.065306365e-02f, -6.794062938e-05f, -5.742604379e-03f, -5.164269242e-04f,
      1.088870689e-03f, 3.464574984e-04f, 4.102842286e-05f, 2.248017609e-06f},
     {-1.427739509e-03f, -2.956643002e-03f, 6.192144356e-04f, 9.704054100e-04f,
      -1.006428138e-04f, -7.434643339e-05f, -2.343724009e-05f, 1.462779619e-04f},
    }};

// Phi(a) - 1/2 for a >= 0 (or NaN) from `pieces`: Terms vpermps and Terms - 1 fused
// multiply-adds per register, no division.
template <int Pieces, int Terms>
Value* half_erf(IRBuilderBase& b, Value* a, const HalfErfPieces<Pieces, Terms>& pieces) {
  a = clamp_above(b, a, pieces.limit);
  Rounded piece = round_to_int(b, a, 1 / pieces.width);
  // Exact: k width is within width/2 of a, so the difference is a float (Sterbenz for k >= 1).
  Value* r = mad(b, piece.f, c(a, -pieces.width), a);
  auto coefficient = [&](int j) {
    Value* table =
        llvm::ConstantDataVector::get(b.getContext(), llvm::ArrayRef(pieces.coefficients[j]));
    return by_registers(b, a, Pieces, [&](auto slice) -> Value* {
      // vpermps reads the low 4 (AVX-512) or 3 (AVX2) bits of each index: piece k.
      return b.CreateIntrinsic(Pieces == 16 ? Intrinsic::x86_avx512_permvar_sf_512
                                            : Intrinsic::x86_avx2_permps,
                               {}, {table, slice(piece.i)});
    });
  };
  Value* q = coefficient(Terms - 1);
  for (int j = Terms - 2; j >= 0; --j) q = mad(b, q, r, coefficient(j));
  return q;
}

}  // namespace

// Max error 0.89 ULP over all floats, denormal results included.
Value* exp(IRBuilderBase& b, const Target& target, Value* x) {
  NoFastMath guard(b);
  return exp_core(b, target, x);
}

// Max error 1.25 ULP over all floats.
Value* expm1(IRBuilderBase& b, Value* x) {
  NoFastMath guard(b);
  Value* xc = clamp(b, x, -18.0f, 89.0f);  // below -18 the result is -1; above 89, inf
  Rounded n = round_to_int(b, xc, kLog2e);
  Value* r = mad(b, b.CreateFNeg(n.f), c(x, kLn2Hi), xc);
  r = mad(b, b.CreateFNeg(n.f), c(x, kLn2Lo), r);
  // 2^n (1 + r + tail) - 1 = (t r + (t - 1)) + t tail, t = 2^n: no rounding of 1 + r + tail.
  // n reaches 128 just below overflow, where 2^n is not a float: cap t at 2^127 and double.
  Value* n_capped = b.CreateBinaryIntrinsic(Intrinsic::smin, n.i, ci(x, 127));
  Value* t = pow2i(b, n_capped, x);
  Value* res = mad(b, t, r, b.CreateFSub(t, c(x, 1.0f)));
  res = mad(b, t, expm1_tail(b, r), res);
  res = b.CreateFMul(res, pow2i(b, b.CreateSub(n.i, n_capped), x));
  return keep_zero(b, x, res);
}

// Max error 0.52 ULP over all floats.
Value* log(IRBuilderBase& b, Value* x) {
  NoFastMath guard(b);
  Value* res = log_core(b, x, nullptr).hi;
  return b.CreateSelect(b.CreateFCmpOLT(x, c(x, 0.0f)), c(x, kNaN), res);
}

// Max error 0.88 ULP over all floats.
Value* log1p(IRBuilderBase& b, Value* x) {
  NoFastMath guard(b);
  // u = 1 + x rounded, and its rounding error exactly (2Sum); ln(1 + x) = ln(u + err).
  Value* u = b.CreateFAdd(c(x, 1.0f), x);
  Value* x_part = b.CreateFSub(u, c(x, 1.0f));
  Value* err =
      b.CreateFAdd(b.CreateFSub(c(x, 1.0f), b.CreateFSub(u, x_part)), b.CreateFSub(x, x_part));
  Value* res = log_core(b, u, err).hi;
  res = b.CreateSelect(b.CreateFCmpOLT(x, c(x, -1.0f)), c(x, kNaN), res);
  return keep_zero(b, x, res);
}

// Max error 3.05 ULP over all floats.
Value* tanh(IRBuilderBase& b, Value* x) {
  NoFastMath guard(b);
  // Rational of type (11, 8) in x, relative error 2^-29; tanh(9.1) rounds to 1.
  return odd_rational(
      b, x, 9.1f, 0x1p-3f,
      {7.00000000e+00f, 6.24111116e-01f, 3.68890492e-03f, -1.69773906e-04f, -1.03973866e-06f,
       -9.66670702e-11f},
      {1.00000000e+00f, 4.70111102e-01f, 2.72359978e-02f, 3.93376191e-04f, 1.28323416e-06f});
}

// Max error 2.4 ULP over all floats with a normal result.
Value* sigmoid(IRBuilderBase& b, const Target& target, Value* x) {
  NoFastMath guard(b);
  // t = e^-|x| <= 1: 1 / (1 + t) for x >= 0 and t / (1 + t) below, so very negative x keeps its
  // relative accuracy instead of cancelling in 1 - 1/(1 + e^x).
  Value* t = exp_core(b, target, b.CreateFNeg(fabs(b, x)), nullptr, nullptr, /*nonpositive=*/true);
  Value* num = b.CreateSelect(b.CreateFCmpOGE(x, c(x, 0.0f)), c(x, 1.0f), t);
  return b.CreateFDiv(num, b.CreateFAdd(c(x, 1.0f), t));
}

// gelu(x) = x Phi(x), Phi the standard normal distribution. With AVX-512 or AVX2: x/2 + |x|
// (Phi(|x|) - 1/2) in one fma, the bracket from half_erf: max error 1.1 ULP for x >= 0, 2.5 ULP
// on [-1, 0), absolute error 1.5e-7 below -1, where the sum cancels. Narrower vectors take
// PyTorch's formula, x/2 (1 + erf(x / sqrt2)): 2 ULP for x >= 0, 3.9 ULP on [-1, 0), 2.7e-7
// below.
Value* gelu(IRBuilderBase& b, const Target& target, Value* x) {
  NoFastMath guard(b);
  Value* half_x = b.CreateFMul(x, c(x, 0.5f));
  Value* ax = fabs(b, x);
  // The sum is +0 where it cancels (x = -0, x below the last piece), but gelu(x) takes x's sign.
  auto signed_as_x = [&](Value* sum) { return b.CreateBinaryIntrinsic(Intrinsic::copysign, sum, x); };
  if (fits_registers(target, x, 16))
    return signed_as_x(fma(b, ax, half_erf(b, ax, kHalfErf16), half_x));
  if (fits_registers(target, x, 8))
    return signed_as_x(fma(b, ax, half_erf(b, ax, kHalfErf8), half_x));
  Value* e = erf(b, b.CreateFMul(x, c(x, 0.707106781f)));
  return b.CreateFMul(half_x, b.CreateFAdd(c(x, 1.0f), e));
}

// Max error 1.52 ULP for |x| <= 8192; beyond, 1.7 ULP to 1e6, 5.2 ULP to 2^22, then NaN.
Value* sin(IRBuilderBase& b, Value* x) {
  NoFastMath guard(b);
  return sin_cos(b, x, 0);
}

// Max error 1.52 ULP for |x| <= 8192; beyond, 1.7 ULP to 1e6, 5.2 ULP to 2^22, then NaN.
Value* cos(IRBuilderBase& b, Value* x) {
  NoFastMath guard(b);
  return sin_cos(b, x, 1);
}

// Max error 1.8 ULP over 2.25M pairs with |y ln|x|| < 88 (normal results). ln|x| is carried
// to about 2^-28 relative, so the bound grows as roughly 1 + |y ln|x|| / 32 ULP. Special cases
// follow C and PyTorch: pow(x, 0) = pow(1, y) = 1 even for NaN; negative x gives the signed
// result for integer y and NaN otherwise; pow(±0, y < 0) = inf.
Value* pow(IRBuilderBase& b, const Target& target, Value* x, Value* y) {
  NoFastMath guard(b);
  // |x|^y = e^(y ln|x|) with ln|x| and its product with y carried as hi + lo.
  HiLo l = log_core(b, fabs(b, x), nullptr);
  Value* yh = b.CreateFMul(y, l.hi);
  Value* yl = mad(b, y, l.lo, fma(b, y, l.hi, b.CreateFNeg(yh)));
  Value* mag = exp_core(b, target, yh, yl);
  // Negative x: odd integer y negates, other integers keep the sign, non-integers give NaN
  // (but -inf stays inf or 0, as in C). ±inf count as even integers.
  Value* y_int = b.CreateFCmpOEQ(b.CreateUnaryIntrinsic(Intrinsic::roundeven, y), y);
  Value* half_y = b.CreateFMul(y, c(y, 0.5f));
  Value* y_odd = b.CreateAnd(
      y_int, b.CreateFCmpUNE(b.CreateUnaryIntrinsic(Intrinsic::roundeven, half_y), half_y));
  Value* x_sign = b.CreateICmpSLT(bits(b, x), ci(x, 0));
  Value* res = b.CreateSelect(b.CreateAnd(x_sign, y_odd), b.CreateFNeg(mag), mag);
  Value* negative_finite =
      b.CreateAnd(b.CreateFCmpOLT(x, c(x, 0.0f)), b.CreateFCmpOGT(x, c(x, -kInf)));
  res = b.CreateSelect(b.CreateAnd(negative_finite, b.CreateNot(y_int)), c(x, kNaN), res);
  // pow(x, 0) = pow(1, y) = pow(-1, ±inf) = 1, even for NaN.
  Value* unit =
      b.CreateOr(b.CreateOr(b.CreateFCmpOEQ(y, c(y, 0.0f)), b.CreateFCmpOEQ(x, c(x, 1.0f))),
                 b.CreateAnd(b.CreateFCmpOEQ(fabs(b, x), c(x, 1.0f)),
                             b.CreateFCmpOEQ(fabs(b, y), c(y, kInf))));
  return b.CreateSelect(unit, c(x, 1.0f), res);
}

}  // namespace vmath

// NaN-propagating, as torch.maximum/minimum: the compare is false when x is NaN, so the
// unordered check picks x; when only y is NaN the compare is false and y is picked.
llvm::Value* VectorMath::max(Value x, Value y) {
  return b_.CreateSelect(b_.CreateOr(b_.CreateFCmpOGT(x, y), b_.CreateFCmpUNO(x, x)), x, y);
}
llvm::Value* VectorMath::min(Value x, Value y) {
  return b_.CreateSelect(b_.CreateOr(b_.CreateFCmpOLT(x, y), b_.CreateFCmpUNO(x, x)), x, y);
}

// Bools are 0/1; indices are signed.
llvm::Value* VectorMath::to_float(Value x) {
  bool is_bool = x->getType()->getScalarSizeInBits() == 1;
  return is_bool ? b_.CreateUIToFP(x, float_type_) : b_.CreateSIToFP(x, float_type_);
}
// Saturating: a float out of int64's range goes to its nearest end and NaN to 0, where a plain
// fptosi would be poison (copy_ of -inf into an Int64 tensor).
llvm::Value* VectorMath::to_int64(Value x) {
  auto* type = llvm::cast<llvm::VectorType>(float_type_);
  llvm::Type* int64s = llvm::VectorType::get(b_.getInt64Ty(), type->getElementCount());
  return b_.CreateIntrinsic(llvm::Intrinsic::fptosi_sat, {int64s, x->getType()}, {x});
}

}  // namespace fusejit::codegen
