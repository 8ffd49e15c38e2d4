"""Zero-copy interop: from_numpy, from_dlpack, numpy(), __dlpack__; lifetimes; the conversion
rules for what cannot be shared; PyTorch and JAX when installed."""

import gc
import weakref

import numpy as np
import pytest

import fusejit as fj


def address(array) -> int:
    return array.__array_interface__["data"][0]


def observed_array(values):
    """A view of a new array, and a weak reference that tells when that array is freed."""
    base = np.array(values, dtype=np.float32)
    return base[:], weakref.ref(base)


def test_from_numpy_shares_memory_both_ways():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = fj.from_numpy(a)
    assert address(t.numpy()) == address(a)
    a[0, 0] = 100  # the tensor reads the array's memory
    assert t[0, 0].item() == 100
    t.mul_(2).eval()  # nothing else sees the old value: written into the array
    assert a[0, 0] == 200 and a[2, 3] == 22
    assert address(t.numpy()) == address(a)


def test_from_numpy_keeps_the_array_alive():
    a = np.arange(6, dtype=np.float32) * 3
    ref = weakref.ref(a)
    base_address = address(a)
    t = fj.from_numpy(a)
    view = t[2:]
    del a, t
    gc.collect()
    assert view.tolist() == [6, 9, 12, 15]
    assert address(view.numpy()) == base_address + 8
    del view
    gc.collect()
    assert ref() is None  # released once no tensor reads it


def test_source_released_after_last_tensor_and_array():
    array, owner_alive = observed_array([1, 2, 3])
    t = fj.from_numpy(array)
    exported = (t * 3).numpy()
    del array
    gc.collect()
    assert owner_alive() is not None
    y = t + 1  # a pending result holds the source too
    del t
    gc.collect()
    assert owner_alive() is not None
    assert y.tolist() == [2, 3, 4]
    del y
    gc.collect()
    assert owner_alive() is None  # evaluation dropped the input; nothing else holds it
    assert exported.tolist() == [3, 6, 9]


def test_strided_arrays_are_shared_as_strided_tensors():
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    for view in (a[:, ::2], a.T, a[1:3, 1:5], a[::3], a[:, 1]):
        t = fj.from_numpy(view)
        assert t.shape == view.shape
        assert t.strides == tuple(s // 4 for s in view.strides)
        np.testing.assert_array_equal(t.numpy(), view)
        assert address(t.numpy()) == address(view)
        np.testing.assert_array_equal((t * 2).numpy(), view * 2)
    t = fj.from_numpy(a[:, ::2])
    t.add_(1000).eval()  # through the strided view into the array, the other columns untouched
    assert a[0].tolist() == [1000, 1, 1002, 3, 1004, 5]


def test_broadcast_arrays_are_shared_and_refuse_in_place():
    row = np.arange(3, dtype=np.float32)
    b = np.lib.stride_tricks.as_strided(row, shape=(4, 3), strides=(0, 4), writeable=True)
    t = fj.from_numpy(b)
    assert t.strides == (0, 1)
    np.testing.assert_array_equal(t.numpy(), np.broadcast_to(row, (4, 3)))
    with pytest.raises(fj.Error, match="add_"):
        t.add_(1)


def test_bool_and_int64_arrays_are_shared():
    mask = np.array([True, False, True])
    m = fj.from_numpy(mask)
    assert m.dtype == fj.bool and address(m.numpy()) == address(mask)
    ids = np.array([2, 0], dtype=np.int64)
    i = fj.from_numpy(ids)
    assert i.dtype == fj.int64 and address(i.numpy()) == address(ids)
    assert fj.where(m, 1.0, 0.0).tolist() == [1, 0, 1]
    assert fj.index_select(fj.arange(3) * 10, 0, i).tolist() == [20, 0]


@pytest.mark.parametrize("dtype, expected", [(np.float64, fj.float32), (np.float16, fj.float32), (np.int32, fj.float32),
                                             (np.uint8, fj.float32), (np.uint64, fj.float32), (np.int8, fj.float32)])
def test_other_dtypes_convert_into_a_float32_copy(dtype, expected):
    a = np.array([[1, 2], [3, 4]], dtype=dtype)
    t = fj.from_numpy(a)
    assert t.dtype == expected
    np.testing.assert_array_equal(t.numpy(), a.astype(np.float32))
    assert address(t.numpy()) != address(a)
    a[0, 0] = 9
    assert t[0, 0].item() == 1  # a copy


def test_unshareable_layouts_are_copied():
    a = np.arange(6, dtype=np.float32)
    readonly = a.copy()
    readonly.flags.writeable = False
    byteswapped = a.astype(">f4")
    for source in (a[::-1], readonly, byteswapped, np.zeros((0, 3), np.float32)):
        t = fj.from_numpy(source)
        np.testing.assert_array_equal(t.numpy(), source)
        assert t.shape == source.shape and t.dtype == fj.float32
        if source.size:
            assert address(t.numpy()) != address(source)
    t = fj.from_numpy(readonly)
    t.add_(1).eval()
    assert readonly.tolist() == [0, 1, 2, 3, 4, 5]  # never written


def test_unconvertible_sources_raise():
    with pytest.raises(TypeError, match="from_numpy"):
        fj.from_numpy([1, 2])
    with pytest.raises(TypeError, match="complex"):
        fj.from_numpy(np.ones(2, np.complex64))


def test_numpy_export_is_zero_copy_and_keeps_storage_alive():
    t = fj.arange(12).reshape(3, 4) * 2
    first = t.numpy()
    assert address(first) == address(t.numpy())
    view = t.T.numpy()
    assert view.strides == (4, 16) and address(view) == address(first)
    del t
    gc.collect()
    np.testing.assert_array_equal(first, np.arange(12).reshape(3, 4) * 2)
    np.testing.assert_array_equal(view, (np.arange(12).reshape(3, 4) * 2).T)


def test_numpy_export_writes_are_seen_and_later_fusejit_updates_copy_on_write():
    t = fj.zeros(3)
    array = t.numpy()
    array[1] = 5
    assert t.tolist() == [0, 5, 0]
    t.add_(1).eval()
    assert t.tolist() == [1, 6, 1]
    assert array.tolist() == [0, 5, 0]  # the array keeps the value it had


def test_export_of_every_dtype_and_shape():
    assert fj.tensor(2.5).numpy().shape == ()
    assert fj.zeros(0, 4).numpy().shape == (0, 4)
    assert fj.tensor([True, False]).numpy().dtype == np.bool_
    assert fj.tensor([1, 2]).numpy().dtype == np.int64
    assert fj.tensor(7).tolist() == 7
    np.testing.assert_array_equal(np.asarray(fj.ones(2, 2)), np.ones((2, 2)))
    assert np.asarray(fj.ones(2), dtype=np.float64).dtype == np.float64


def test_dlpack_round_trip_with_numpy():
    t = fj.arange(6).reshape(2, 3)
    a = np.from_dlpack(t)
    assert address(a) == address(t.numpy())
    assert t.__dlpack_device__() == (1, 0)
    back = fj.from_dlpack(a)
    assert address(back.numpy()) == address(a)
    strided = np.from_dlpack(t[:, ::2])
    np.testing.assert_array_equal(strided, [[0, 2], [3, 5]])
    source = np.arange(8, dtype=np.float32)
    shared = fj.from_dlpack(source)
    assert address(shared.numpy()) == address(source)
    del t, a, back
    gc.collect()
    np.testing.assert_array_equal(strided, [[0, 2], [3, 5]])


def test_from_dlpack_of_a_capsule_shares_memory():
    source = np.arange(5, dtype=np.float32)
    t = fj.from_dlpack(source.__dlpack__())
    assert address(t.numpy()) == address(source)


def test_from_dlpack_rejects_other_devices():
    class OnGpu:
        def __dlpack_device__(self):
            return (2, 0)

        def __dlpack__(self, **kwargs):
            raise AssertionError("not to be called")

    with pytest.raises(fj.Error, match="device"):
        fj.from_dlpack(OnGpu())


def test_torch_interop():
    torch = pytest.importorskip("torch")
    source = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    t = fj.from_dlpack(source)
    assert t.numpy().__array_interface__["data"][0] == source.data_ptr()
    t.add_(1).eval()
    assert source[0, 0].item() == 1  # written into the torch tensor's memory
    strided = fj.from_dlpack(source.t())
    assert strided.strides == (1, 4)
    np.testing.assert_array_equal(strided.numpy(), source.t().numpy())
    del source
    gc.collect()
    assert t.sum().item() == sum(range(1, 13))
    back = torch.from_dlpack(t)
    assert back.data_ptr() == t.numpy().__array_interface__["data"][0]
    assert torch.equal(back, torch.arange(1, 13, dtype=torch.float32).reshape(3, 4))
    assert fj.from_dlpack(torch.tensor([True, False])).dtype == fj.bool
    assert fj.from_dlpack(torch.tensor([1, 2])).dtype == fj.int64
    converted = fj.from_dlpack(torch.tensor([1.5, 2.5], dtype=torch.float64))
    assert converted.dtype == fj.float32 and converted.tolist() == [1.5, 2.5]
    flipped = torch.arange(4.0).flip(0)
    assert fj.from_dlpack(flipped).tolist() == [3, 2, 1, 0]


def test_jax_interop():
    jnp = pytest.importorskip("jax.numpy")
    source = jnp.arange(6, dtype=jnp.float32).reshape(2, 3)
    t = fj.from_dlpack(source)
    np.testing.assert_array_equal(t.numpy(), np.arange(6).reshape(2, 3))
    back = jnp.from_dlpack(t * 2)
    np.testing.assert_array_equal(np.asarray(back), np.arange(6).reshape(2, 3) * 2)
