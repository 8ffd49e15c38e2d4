"""The rest of the module: errors, stats, settings and their context managers, bounds, dumps,
Python protocols, threads, documentation."""

import gc
import inspect
import threading

import numpy as np
import pytest

import fusejit as fj


def test_error_is_a_runtime_error_carrying_the_message():
    assert issubclass(fj.Error, RuntimeError)
    with pytest.raises(fj.Error) as caught:
        fj.ones(3, 4) + fj.ones(5)
    assert str(caught.value) == "add: shapes cannot be broadcast together (inputs: f32[3,4], f32[5])"


@pytest.mark.parametrize("call, op", [
    (lambda: fj.matmul(fj.ones(2, 3), fj.ones(4, 5)), "matmul"),
    (lambda: fj.softmax(fj.ones(3), 1), "softmax"),
    (lambda: fj.sum(fj.ones(3), 2), "sum"),
    (lambda: fj.cat([fj.ones(2), fj.ones(2, 2)]), "cat"),
    (lambda: fj.ones(2, 3).reshape(4), "reshape"),
    (lambda: fj.ones(2).item(), "item"),
    (lambda: fj.layer_norm(fj.ones(2, 3), 4), "layer_norm"),
    (lambda: fj.linear(fj.ones(2, 3), fj.ones(4, 2)), "linear"),
    (lambda: fj.set_kernel_cache_capacity(0), "set_kernel_cache_capacity"),
    (lambda: fj.gelu(fj.ones(2), "fast"), "gelu"),
    (lambda: fj.where(fj.ones(2), fj.ones(3), 0.0), "where"),
])
def test_errors_name_the_op(call, op):
    with pytest.raises(fj.Error, match=op):
        call()


def test_stats_is_a_dataclass_of_every_counter():
    import dataclasses

    fj.reset_stats()
    s = fj.stats()
    assert dataclasses.is_dataclass(s)
    assert [f.name for f in dataclasses.fields(s)] == [
        "kernels_compiled", "cache_hits", "cache_misses", "kernels_launched", "kernels_evicted", "disk_hits",
        "compile_ms", "buffers_allocated"]
    assert s.kernels_launched == 0 and s.compile_ms == 0
    x = fj.ones(37, 3)
    (fj.tanh(x) * 3 - 1).eval()
    (fj.tanh(x) * 3 - 1).eval()
    s = fj.stats()
    assert s.kernels_launched == 2 and s.cache_hits >= 1 and s.kernels_compiled <= 1 and s.buffers_allocated >= 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.cache_hits = 0


def test_disk_cache_hits_are_counted(tmp_path):
    fj.set_disk_cache_dir(str(tmp_path))
    assert fj.disk_cache_dir() == str(tmp_path)
    x = fj.ones(41, 7)
    (fj.sin(x) * 5 + 2).eval()  # compiled and written to the disk cache
    fj.set_kernel_cache_capacity(1)
    (fj.cos(x) - 3).eval()  # evicts the first kernel from memory
    fj.reset_stats()
    (fj.sin(x) * 5 + 2).eval()
    s = fj.stats()
    assert s.disk_hits == 1 and s.kernels_compiled == 0
    fj.set_disk_cache_dir("")
    assert fj.disk_cache_dir() == ""


def test_eval_of_several_tensors_is_one_schedule():
    x = fj.rand(100, seed=1)
    shared = fj.exp(x) * 2
    a, b = shared + 1, shared - 1
    fj.reset_stats()
    assert fj.eval(a, b) is None
    assert a.is_evaluated() and b.is_evaluated()
    launched = fj.stats().kernels_launched
    c, d = shared * 3, shared / 3
    fj.eval([c, d])
    assert fj.stats().kernels_launched == 2 * launched
    np.testing.assert_allclose((a - b).numpy(), 2, rtol=1e-6)


def test_no_fusion_is_eager_and_restores_even_on_error():
    x = fj.rand(1000, seed=1)
    fj.reset_stats()
    (fj.relu(x * 2 + 1) - 3).eval()
    fused = fj.stats().kernels_launched
    with fj.no_fusion():
        assert not fj.fusion_enabled()
        fj.reset_stats()
        (fj.relu(x * 2 + 1) - 3).eval()
        assert fj.stats().kernels_launched > fused
    assert fj.fusion_enabled()
    with pytest.raises(fj.Error):
        with fj.no_fusion():
            fj.ones(2) + fj.ones(3)
    assert fj.fusion_enabled()
    with fj.fusion(False):
        with fj.fusion(True):
            assert fj.fusion_enabled()
        assert not fj.fusion_enabled()


def test_num_threads_context_restores_even_on_error():
    before = fj.get_num_threads()
    with fj.num_threads(1):
        assert fj.get_num_threads() == 1
        big = fj.rand(1 << 20, seed=2)
        single = fj.sum(big).item()
    assert fj.get_num_threads() == before
    with pytest.raises(ZeroDivisionError):
        with fj.num_threads(1):
            1 / 0
    assert fj.get_num_threads() == before
    with fj.num_threads(2):
        assert fj.sum(big).item() == single  # bitwise the same for any thread count
    with pytest.raises(fj.Error, match="set_num_threads"):
        fj.set_num_threads(0)


def test_bounds_and_introspection():
    fj.set_kernel_cache_capacity(3)
    assert fj.kernel_cache_capacity() == 3
    fj.empty_cache()
    assert isinstance(fj.target_description(), str) and fj.target_description()
    y = fj.relu(fj.ones(4) * 2)
    text = fj.dump(y)
    assert "kernel" in text and "relu" in text
    assert "define" in y.dump("llvm")
    assert not y.is_evaluated()  # dumping does not run it


def test_python_protocols():
    x = fj.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert len(x) == 2 and x.ndim == 2 and x.dim() == 2 and x.numel() == 4
    assert x.size() == (2, 2) and x.size(-1) == 2 and x.shape == (2, 2)
    assert [row.tolist() for row in x] == [[1, 2], [3, 4]]
    assert float(x[1, 1]) == 4.0 and int(x[0, 1]) == 2
    assert bool(x[0, 0] == 1) and not bool(x[0, 0] > 1)
    with pytest.raises(fj.Error, match="ambiguous"):
        bool(x > 0)
    with pytest.raises(TypeError):
        len(fj.tensor(1.0))
    with pytest.raises(TypeError):
        iter(fj.tensor(1.0))
    assert repr(x) == "tensor([[1., 2.],\n        [3., 4.]])"
    assert repr(fj.tensor([1, 2])) == "tensor([1, 2], dtype=fusejit.int64)"
    assert repr(fj.zeros(0, 2)) == "tensor([], size=(0, 2))"
    assert fj.tensor(True).item() is True and fj.tensor(3).item() == 3 and isinstance(fj.tensor(3).item(), int)
    assert {x: 1}[x] == 1  # hashable by identity
    assert x.dtype == fj.float32 and fj.tensor([True]).dtype == fj.bool
    assert isinstance(x.eval(), fj.Tensor) and x.eval() is x


def test_tensors_from_several_python_threads():
    results = {}

    def work(seed):
        t = fj.rand(50000, seed=seed)
        results[seed] = (fj.sigmoid(t * 2) - 0.5).sum().item()

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed in range(6):
        expected = (1 / (1 + np.exp(-2 * fj.rand(50000, seed=seed).numpy().astype(np.float64))) - 0.5).sum()
        assert results[seed] == pytest.approx(expected, rel=1e-4, abs=1e-2)


def test_a_long_lazy_chain_and_many_tensors_free_cleanly():
    x = fj.ones(8)
    for _ in range(5000):
        x = x * 1.0001
    assert x[0].item() == pytest.approx(1.0001**5000, rel=1e-3)
    many = [fj.from_numpy(np.full(4, i, np.float32)) for i in range(2000)]
    del many
    gc.collect()


def test_every_public_function_and_method_is_documented():
    undocumented = []
    for name in dir(fj):
        value = getattr(fj, name)
        if name.startswith("_") or inspect.ismodule(value) or not callable(value) or isinstance(value, fj.DType):
            continue
        if not (value.__doc__ or "").strip():
            undocumented.append(name)
    for name in dir(fj.Tensor):
        if name.startswith("__") or name in ("T",):
            continue
        if not (getattr(fj.Tensor, name).__doc__ or "").strip():
            undocumented.append("Tensor." + name)
    assert undocumented == []
