"""Indexing and views (x[1:5, ::2], x[..., 0], x[None]), their errors, and in-place updates through
views, against NumPy."""

import numpy as np
import pytest

import fusejit as fj


@pytest.fixture
def pair():
    values = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    return fj.tensor(values), values


INDICES = [
    1, -1, -4, (slice(1, 3),), (slice(None), 2), (Ellipsis, 0), (Ellipsis, -1), (0, Ellipsis, 5),
    (slice(1, None), slice(None, None, 2)), (slice(None, None, 3), slice(-3, None), slice(1, -1, 2)),
    (None,), (None, 1, None), (slice(None), None, Ellipsis, None), (Ellipsis,), (), (-2, -3, -4),
    (slice(-100, 100),), (slice(10, 20),), (slice(3, 1),), (1, slice(None), np.int64(2)),
]


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_indexing_matches_numpy(pair, index):
    t, x = pair
    view = t[index]
    np.testing.assert_array_equal(view.numpy(), x[index])
    assert view.shape == x[index].shape


def test_indexing_returns_views_of_the_storage(pair):
    t, _ = pair
    t.eval()
    base = t.numpy().__array_interface__["data"][0]
    view = t[1:3, ::2, 4]
    assert view.strides == (30, 12)
    assert view.storage_offset() == 34
    assert view.numpy().__array_interface__["data"][0] == base + 34 * 4
    assert view.numpy().strides == (120, 48)  # NumPy's, in bytes


def test_index_errors(pair):
    t, _ = pair
    with pytest.raises(fj.Error, match="select: index 4 is out of range"):
        t[4]
    with pytest.raises(fj.Error, match="select"):
        t[0, -6]
    with pytest.raises(fj.Error, match="only positive steps"):
        t[::-1]
    with pytest.raises(fj.Error, match="only positive steps"):
        t[:, 0:3:0]
    with pytest.raises(fj.Error, match="3 dims"):
        t[0, 0, 0, 0]
    with pytest.raises(fj.Error, match="'...'"):
        t[..., 0, ...]
    with pytest.raises(fj.Error, match="unsupported index"):
        t["a"]
    with pytest.raises(fj.Error, match="unsupported index"):
        t[True]
    with pytest.raises(fj.Error, match="unsupported index"):
        t[1.5]
    with pytest.raises(fj.Error, match="1-d Int64"):
        t[fj.tensor([0.0, 1.0])]
    with pytest.raises(fj.Error, match="select"):
        t[2**70]


def test_tensor_index_picks_positions(pair):
    t, x = pair
    np.testing.assert_array_equal(t[:, fj.tensor([4, 0])].numpy(), x[:, [4, 0]])


def test_view_methods_match_numpy(pair):
    t, x = pair
    cases = [
        (t.reshape(20, 6), x.reshape(20, 6)), (t.reshape((-1,)), x.reshape(-1)), (t.view(4, 30), x.reshape(4, 30)),
        (t.transpose(0, 2), x.transpose(2, 1, 0)), (t.permute(1, 2, 0), x.transpose(1, 2, 0)),
        (t.permute([2, 0, 1]), x.transpose(2, 0, 1)), (t[0].t(), x[0].T), (t[0].T, x[0].T),
        (t.slice(1, 1, 5, 2), x[:, 1:5:2]), (t.narrow(2, 1, 3), x[:, :, 1:4]), (t.select(-1, 2), x[..., 2]),
        (t.unsqueeze(1), x[:, None]), (t[:, :1].squeeze(), x[:, 0]), (t[:1].squeeze(0), x[0]),
        (t.flatten(), x.reshape(-1)), (t.flatten(1), x.reshape(4, 30)),
        (t[:, :1].expand(4, 3, 6), np.broadcast_to(x[:, :1], (4, 3, 6))),
        (t.transpose(0, 1).contiguous(), x.transpose(1, 0, 2)), (fj.permute(t, (2, 1, 0)), x.T),
        (fj.reshape(t, [2, -1]), x.reshape(2, -1)), (fj.select(t, 0, -1), x[-1]), (fj.unsqueeze(t, -1), x[..., None]),
    ]
    for view, expected in cases:
        np.testing.assert_array_equal(view.numpy(), expected)
    assert not t.transpose(0, 1).is_contiguous()
    assert t.transpose(0, 1).contiguous().is_contiguous()
    with pytest.raises(fj.Error, match="view"):
        t.transpose(0, 1).view(-1)
    with pytest.raises(fj.Error, match="reshape"):
        t.reshape(7, -1)
    with pytest.raises(fj.Error, match="transpose"):
        t.transpose(0, 3)


def test_in_place_through_views_updates_the_base(pair):
    t, x = pair
    t.eval()
    expected = x.copy()
    row = t[1]
    row += 100
    expected[1] += 100
    t[2, ::2] = -1.0
    expected[2, ::2] = -1
    t[..., 0] *= fj.arange(5)
    expected[..., 0] *= np.arange(5)
    t[3] = fj.ones(6) * 7
    expected[3] = 7
    t[0, 0] = np.arange(6)
    expected[0, 0] = np.arange(6)
    t.transpose(0, 2)[0].sub_(0.5)
    expected[:, :, 0] -= 0.5
    np.testing.assert_array_equal(t.numpy(), expected)
    np.testing.assert_array_equal(row.numpy(), expected[1])  # the view sees later updates too


def test_in_place_ops_return_the_same_object():
    x = fj.ones(3)
    same = x
    x += 1
    assert x is same
    x -= 0.5
    x *= fj.tensor([1.0, 2.0, 3.0])
    x /= 2
    assert x is same
    assert x.add_(1) is same and x.mul_(2) is same and x.relu_() is same and x.clamp_(0, 5) is same
    np.testing.assert_allclose(x.numpy(), [3.5, 5, 5])
    assert x.fill_(2) is same and x.tolist() == [2, 2, 2]
    assert x.zero_() is same and x.tolist() == [0, 0, 0]
    assert x.copy_(fj.tensor([1, 2, 3])) is same and x.tolist() == [1, 2, 3]


def test_a_value_recorded_before_an_update_keeps_the_old_value():
    p = fj.tensor([1.0, 2.0])
    old = p * 1
    p.add_(10)
    assert old.tolist() == [1, 2] and p.tolist() == [11, 12]


def test_in_place_errors_name_the_op():
    with pytest.raises(fj.Error, match="add_.*expanded"):
        fj.ones(3, 1).expand(3, 4).add_(1)
    with pytest.raises(fj.Error, match="add_"):
        fj.tensor([True]).add_(1)
    with pytest.raises(fj.Error, match="add: shapes cannot be broadcast"):
        fj.ones(3).add_(fj.ones(4))
