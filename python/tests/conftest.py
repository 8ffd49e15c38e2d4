"""Shared fixtures: every test starts from fusejit's default settings, without the disk cache
(kernel counts then depend on this process only)."""

import numpy as np
import pytest

import fusejit as fj


@pytest.fixture(autouse=True)
def default_settings():
    fj.set_disk_cache_dir("")
    threads = fj.get_num_threads()
    yield
    fj.set_fusion_enabled(True)
    fj.set_num_threads(threads)
    fj.set_kernel_cache_capacity(4096)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def assert_close(actual, expected, rtol=2e-5, atol=1e-6):
    """`actual` (a fusejit tensor) against a float64 NumPy reference, NaN where it is NaN."""
    got = np.asarray(actual.numpy(), dtype=np.float64)
    want = np.asarray(expected, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
