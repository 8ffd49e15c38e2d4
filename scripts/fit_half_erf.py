#!/usr/bin/env python3
"""Fits the polynomial pieces of erf(a / sqrt2) / 2 that gelu reads with vpermps.

Prints the coefficient rows of kHalfErf16 (16 pieces of width 3/8, degree 5: AVX-512) and
kHalfErf8 (8 pieces of width 3/4, degree 6: AVX2) in codegen/vector_math.cpp, and each piece's
error with float coefficients. Piece k is a polynomial in r = a - k width on |r| <= width / 2
(r >= 0 for k = 0, whose constant term is 0). Each fit minimizes the absolute error (Lawson's
iteration on 120 Chebyshev points, 30 digits); coefficients are rounded to float one at a time
from the constant term up, refitting the higher ones after each. Needs mpmath (pip install
mpmath); takes about a minute.
"""
import mpmath as mp

mp.mp.dps = 30
POINTS = 120
MARGIN = mp.mpf(2) ** -10  # the piece index is computed in float: cover a little beyond


def half_erf(a):
    return mp.erf(a / mp.sqrt(2)) / 2


def to_float(x):
    import struct
    return mp.mpf(struct.unpack("f", struct.pack("f", float(x)))[0])


def lawson(rs, ys, powers):
    """Minimax (absolute error) fit of ys by sum c_p r^p over the points rs."""
    weights = [mp.mpf(1) / len(rs)] * len(rs)
    for _ in range(40):
        normal = mp.matrix(len(powers), len(powers))
        rhs = mp.matrix(len(powers), 1)
        for r, y, w in zip(rs, ys, weights):
            terms = [r ** p for p in powers]
            for i, ti in enumerate(terms):
                rhs[i] += w * ti * y
                for j, tj in enumerate(terms):
                    normal[i, j] += w * ti * tj
        coeffs = mp.lu_solve(normal, rhs)
        errors = [abs(sum(coeffs[i] * r ** p for i, p in enumerate(powers)) - y)
                  for r, y in zip(rs, ys)]
        total = sum(w * e for w, e in zip(weights, errors))
        weights = [w * e / total for w, e in zip(weights, errors)]
    return list(coeffs)


def fit_piece(k, width, degree):
    lo = mp.mpf(0) if k == 0 else -width / 2 - MARGIN
    hi = width / 2 + MARGIN
    rs = [lo + (hi - lo) * (1 - mp.cos(mp.pi * i / (POINTS - 1))) / 2 for i in range(POINTS)]
    ys = [half_erf(k * width + r) for r in rs]
    fixed = [mp.mpf(0)] if k == 0 else []
    while len(fixed) <= degree:
        rest = [y - sum(c * r ** j for j, c in enumerate(fixed)) for r, y in zip(rs, ys)]
        coeffs = lawson(rs, rest, list(range(len(fixed), degree + 1)))
        fixed.append(to_float(coeffs[0]))
    error = max(abs(sum(c * r ** j for j, c in enumerate(fixed)) - y) for r, y in zip(rs, ys))
    return fixed, error


def main():
    for name, pieces, width, degree in (("kHalfErf16", 16, mp.mpf(3) / 8, 5),
                                        ("kHalfErf8", 8, mp.mpf(3) / 4, 6)):
        fits = [fit_piece(k, width, degree) for k in range(pieces)]
        print(f"// {name}: worst error with float coefficients 2^%.1f"
              % max(float(mp.log(e, 2)) for _, e in fits))
        for j in range(degree + 1):
            print("{" + ", ".join("%.9ef" % float(coeffs[j]) for coeffs, _ in fits) + "},")


if __name__ == "__main__":
    main()
