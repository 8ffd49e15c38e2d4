"""Ops against NumPy in float64: elementwise, broadcasting, activations, reductions, linear
algebra, joins; operators with numbers on either side."""

import math

import numpy as np
import pytest
from conftest import assert_close

import fusejit as fj

SHAPES = [(), (1,), (7,), (17,), (33, 65), (4, 1, 3), (2, 3, 16)]


def pair(rng, shape, lo=-3, hi=3):
    values = rng.uniform(lo, hi, size=shape).astype(np.float32)
    return fj.tensor(values), values.astype(np.float64)


_erf = np.vectorize(math.erf)

UNARY = {
    "neg": (fj.neg, np.negative, (-3, 3)),
    "abs": (fj.abs, np.abs, (-3, 3)),
    "exp": (fj.exp, np.exp, (-10, 10)),
    "log": (fj.log, np.log, (0.01, 100)),
    "sqrt": (fj.sqrt, np.sqrt, (0, 100)),
    "rsqrt": (fj.rsqrt, lambda x: 1 / np.sqrt(x), (0.01, 100)),
    "sin": (fj.sin, np.sin, (-6, 6)),
    "cos": (fj.cos, np.cos, (-6, 6)),
    "relu": (fj.relu, lambda x: np.maximum(x, 0), (-3, 3)),
    "sigmoid": (fj.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-20, 20)),
    "tanh": (fj.tanh, np.tanh, (-10, 10)),
    "silu": (fj.silu, lambda x: x / (1 + np.exp(-x)), (-10, 10)),
    "gelu": (fj.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), (-6, 6)),
    "gelu_tanh": (lambda t: fj.gelu(t, "tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))), (-6, 6)),
    "leaky_relu": (lambda t: fj.leaky_relu(t, 0.2), lambda x: np.where(x > 0, x, 0.2 * x), (-3, 3)),
    "elu": (lambda t: fj.elu(t, 1.5), lambda x: np.where(x > 0, x, 1.5 * np.expm1(x)), (-5, 5)),
    "softplus": (fj.softplus, lambda x: np.where(x > 20, x, np.log1p(np.exp(x))), (-30, 30)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", SHAPES)
def test_unary_matches_numpy(rng, name, shape):
    op, reference, (lo, hi) = UNARY[name]
    t, x = pair(rng, shape, lo, hi)
    assert_close(op(t), reference(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["neg", "abs", "exp", "relu", "sigmoid", "tanh", "silu", "gelu"])
def test_unary_methods_are_the_functions(rng, name):
    t, _ = pair(rng, (5, 3))
    np.testing.assert_array_equal(getattr(t, name)().numpy(), getattr(fj, name)(t).numpy())


BROADCASTS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 5), (3, 1)), ((), (2, 3)), ((7,), ())]


@pytest.mark.parametrize("shapes", BROADCASTS)
def test_binary_ops_broadcast_as_numpy(rng, shapes):
    (ta, a), (tb, b) = pair(rng, shapes[0]), pair(rng, shapes[1], 0.5, 3)
    assert_close(ta + tb, a + b)
    assert_close(ta - tb, a - b)
    assert_close(ta * tb, a * b)
    assert_close(ta / tb, a / b, rtol=1e-6)
    assert_close(fj.maximum(ta, tb), np.maximum(a, b))
    assert_close(fj.minimum(ta, tb), np.minimum(a, b))
    assert_close(tb ** ta, b**a, rtol=2e-5)
    assert_close(fj.add(ta, tb), a + b)
    assert_close(ta.sub(tb), a - b)


def test_numbers_on_either_side(rng):
    t, x = pair(rng, (4, 5), 0.5, 2)
    assert_close(2 - t, 2 - x)
    assert_close(t - 2, x - 2)
    assert_close(3 + t, 3 + x)
    assert_close(0.5 * t, 0.5 * x)
    assert_close(1 / t, 1 / x, rtol=1e-6)
    assert_close(t / 4, x / 4)
    assert_close(t**2, x**2)
    assert_close(t**0.5, np.sqrt(x))
    assert_close(2**t, 2**x)
    assert_close(-t, -x)
    assert_close(+t, x)
    assert_close(abs(t - 1), np.abs(x - 1))
    assert_close(np.float32(2) * t, 2 * x)
    assert_close(fj.pow(t, 3), x**3, rtol=1e-5)
    assert_close(t.pow(t), x**x, rtol=2e-5)


def test_operator_with_unsupported_operand_raises_type_error():
    t = fj.ones(3)
    with pytest.raises(TypeError):
        t + "a"
    with pytest.raises(TypeError):
        np.ones(3) + t  # arrays are converted explicitly (from_numpy / tensor), never implicitly
    with pytest.raises(TypeError):
        t + [1, 2, 3]


def test_comparisons_give_bool_tensors(rng):
    (ta, a), (tb, b) = pair(rng, (5, 6)), pair(rng, (6,))
    b[2] = a[0, 2]
    tb = fj.tensor(b.astype(np.float32))
    for result, expected in [(ta == tb, a == b), (ta != tb, a != b), (ta < tb, a < b), (ta <= tb, a <= b),
                             (ta > tb, a > b), (ta >= tb, a >= b), (ta > 0, a > 0), (0 < ta, 0 < a),
                             (fj.eq(ta, tb), a == b), (ta.ge(tb), a >= b)]:
        assert result.dtype == fj.bool
        np.testing.assert_array_equal(result.numpy(), expected)
    assert_close((ta > 0) * 2.0, (a > 0) * 2.0)  # a Bool counts as 0/1


def test_where_and_clamp(rng):
    t, x = pair(rng, (8, 9))
    assert_close(fj.where(t > 0, t, 0.0), np.where(x > 0, x, 0))
    assert_close(fj.where(t > 0, -1.0, t * 2), np.where(x > 0, -1, 2 * x))
    assert_close(fj.clamp(t, -1, 2), np.clip(x, -1, 2))
    assert_close(t.clamp(min=0), np.maximum(x, 0))
    assert_close(t.clamp(max=0.5), np.minimum(x, 0.5))


def test_special_values_propagate():
    t = fj.tensor([np.nan, np.inf, -np.inf, 0.0, -0.0])
    got = fj.exp(t).numpy()
    np.testing.assert_array_equal(got, np.exp(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)))
    assert math.isnan(fj.maximum(t, 0.0).numpy()[0])
    assert np.signbit((t * 1.0).numpy()[4])


def test_int64_arithmetic_converts_to_float32():
    i = fj.tensor([1, 2, 3])
    assert i.dtype == fj.int64
    result = i * 0.5
    assert result.dtype == fj.float32
    np.testing.assert_array_equal(result.numpy(), [0.5, 1, 1.5])
    np.testing.assert_array_equal(i.to(fj.float32).numpy(), [1, 2, 3])
    np.testing.assert_array_equal(fj.tensor([1.9, -1.9, np.nan]).to(fj.int64).numpy(), [1, -1, 0])


REDUCTIONS = {"sum": np.sum, "mean": np.mean, "prod": np.prod, "amax": np.max, "amin": np.min}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 2), [1]])
@pytest.mark.parametrize("keepdim", [False, True])
def test_reductions_match_numpy(rng, name, dim, keepdim):
    t, x = pair(rng, (5, 6, 7), 0.5, 1.5)
    axis = tuple(dim) if isinstance(dim, list) else dim
    expected = REDUCTIONS[name](x, axis=axis, keepdims=keepdim)
    assert_close(getattr(fj, name)(t, dim, keepdim), expected, rtol=1e-4)
    assert_close(getattr(t, name)(dim=dim, keepdim=keepdim), expected, rtol=1e-4)


def test_full_reductions_and_extremes(rng):
    t, x = pair(rng, (1000, 33))
    assert t.sum().shape == ()
    assert_close(t.sum(), x.sum(), rtol=1e-4, atol=1e-3)
    assert_close(fj.max(t), x.max())
    assert_close(t.min(), x.min())
    assert fj.argmax(t).item() == int(np.argmax(x))
    np.testing.assert_array_equal(fj.argmax(t, 1).numpy(), np.argmax(x, 1))
    np.testing.assert_array_equal(t.argmin(dim=0, keepdim=True).numpy(), np.argmin(x, 0)[None])
    assert fj.argmax(t, 1).dtype == fj.int64
    assert_close(fj.var(t), x.var(ddof=1), rtol=1e-4)
    assert_close(fj.var(t, 1, correction=0), x.var(1), rtol=1e-4)
    assert_close(t.std(dim=0, keepdim=True), x.std(0, ddof=1, keepdims=True), rtol=1e-4)


def test_reductions_over_nothing():
    empty = fj.zeros(0, 3)
    assert empty.sum().item() == 0
    assert empty.prod().item() == 1
    assert math.isnan(empty.mean().item())
    with pytest.raises(fj.Error, match="amax"):
        fj.amax(empty).item()


def test_softmax_log_softmax_layer_norm(rng):
    t, x = pair(rng, (6, 50), -5, 5)
    e = np.exp(x - x.max(-1, keepdims=True))
    assert_close(fj.softmax(t, -1), e / e.sum(-1, keepdims=True), rtol=1e-5)
    assert_close(t.log_softmax(1), np.log(e / e.sum(-1, keepdims=True)), rtol=1e-5, atol=1e-5)
    assert_close(fj.softmax(t, 0), np.exp(x) / np.exp(x).sum(0), rtol=1e-5)
    (tw, w), (tb, b) = pair(rng, (50,)), pair(rng, (50,))
    normalized = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    assert_close(fj.layer_norm(t, 50), normalized, rtol=1e-4, atol=1e-5)
    assert_close(fj.layer_norm(t, [50], tw, tb), normalized * w + b, rtol=1e-4, atol=1e-5)
    assert_close(fj.layer_norm(t, (6, 50), eps=0.1),
                 (x - x.mean()) / np.sqrt(x.var() + 0.1), rtol=1e-4, atol=1e-5)


def test_matmul_linear_attention(rng):
    (ta, a), (tb, b) = pair(rng, (2, 5, 7)), pair(rng, (7, 3))
    assert_close(ta @ tb, a @ b, rtol=1e-5, atol=1e-5)
    assert_close(fj.matmul(ta, tb), a @ b, rtol=1e-5, atol=1e-5)
    assert_close(ta.matmul(tb), a @ b, rtol=1e-5, atol=1e-5)
    (tv, v) = pair(rng, (7,))
    assert_close(tv @ tv, v @ v, rtol=1e-5)
    (tw, w), (tbias, bias) = pair(rng, (4, 7)), pair(rng, (4,))
    assert_close(fj.linear(ta, tw, tbias), a @ w.T + bias, rtol=1e-5, atol=1e-5)
    assert_close(fj.linear(ta, tw), a @ w.T, rtol=1e-5, atol=1e-5)
    (tq, q), (tk, k), (tvv, vv) = pair(rng, (2, 9, 8)), pair(rng, (2, 11, 8)), pair(rng, (2, 11, 5))
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(8)
    for causal in (False, True):
        s = scores.copy()
        if causal:
            s = np.where(np.tril(np.ones((9, 11), bool)), s, -np.inf)
        e = np.exp(s - s.max(-1, keepdims=True))
        expected = (e / e.sum(-1, keepdims=True)) @ vv
        assert_close(fj.scaled_dot_product_attention(tq, tk, tvv, is_causal=causal), expected, rtol=1e-4, atol=1e-5)
    mask = rng.uniform(size=(9, 11)) > 0.3
    mask[:, 0] = True
    s = np.where(mask, q @ k.transpose(0, 2, 1) * 0.5, -np.inf)
    e = np.exp(s - s.max(-1, keepdims=True))
    assert_close(fj.scaled_dot_product_attention(tq, tk, tvv, attn_mask=fj.tensor(mask), scale=0.5),
                 (e / e.sum(-1, keepdims=True)) @ vv, rtol=1e-4, atol=1e-5)


def test_joins_and_gathers(rng):
    (ta, a), (tb, b) = pair(rng, (2, 3)), pair(rng, (4, 3))
    assert_close(fj.cat([ta, tb]), np.concatenate([a, b]))
    assert_close(fj.cat((ta, tb * 2), dim=0), np.concatenate([a, b * 2]))
    assert_close(fj.stack([ta, ta + 1], dim=-1), np.stack([a, a + 1], -1))
    ids = fj.tensor([3, 0, 3])
    assert_close(fj.index_select(tb, 0, ids), b[[3, 0, 3]])
    assert_close(tb.index_select(1, fj.tensor([2, 1])), b[:, [2, 1]])
    with pytest.raises(fj.Error, match="index_select"):
        fj.index_select(tb, 0, fj.tensor([4]))


def test_creation_functions():
    assert fj.zeros(2, 3).tolist() == [[0.0] * 3] * 2
    assert fj.ones((2,)).tolist() == [1.0, 1.0]
    assert fj.full((2, 2), 7.5).tolist() == [[7.5, 7.5], [7.5, 7.5]]
    assert fj.full(3, 1, dtype=fj.int64).tolist() == [1, 1, 1]
    assert fj.zeros(2, dtype=fj.bool).tolist() == [False, False]
    assert fj.arange(4).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert fj.arange(1, 2, 0.25).tolist() == [1.0, 1.25, 1.5, 1.75]
    assert fj.arange(3, 0, -1, dtype=fj.int64).tolist() == [3, 2, 1]
    r = fj.rand(1000, seed=5).numpy()
    assert r.min() >= 0 and r.max() < 1 and 0.4 < r.mean() < 0.6
    np.testing.assert_array_equal(fj.rand(1000, seed=5).numpy(), r)  # a seed's values are the same each time
    assert fj.rand(4, seed=1).tolist() != fj.rand(4, seed=2).tolist()
    n = fj.randn(100000, seed=3).numpy()
    assert abs(n.mean()) < 0.02 and abs(n.std() - 1) < 0.02
    assert fj.rand(3).tolist() != fj.rand(3).tolist()  # no seed: a fresh one each call
    with pytest.raises(fj.Error, match="arange"):
        fj.arange(0, 1, 0)
    with pytest.raises(fj.Error, match="zeros"):
        fj.zeros(-1)


def test_tensor_from_python_data():
    assert fj.tensor(3.5).shape == ()
    assert fj.tensor(3.5).item() == 3.5
    assert fj.tensor([[1, 2], [3, 4]]).dtype == fj.int64
    assert fj.tensor([[1, 2], [3, 4]], dtype=fj.float32).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert fj.tensor([True, False]).dtype == fj.bool
    assert fj.tensor(np.arange(3, dtype=np.int16)).dtype == fj.float32
    assert fj.tensor([]).shape == (0,)
    with pytest.raises(TypeError):
        fj.tensor(["a"])
    with pytest.raises(TypeError):
        fj.tensor([1j])
