"""fusejit: lazy PyTorch-style tensors, fused and compiled into vectorized CPU kernels.

Operations on tensors are recorded, not run. When a value is needed (``item()``, ``numpy()``,
``tolist()``, ``print``, ``eval()``), the pending graph is fused into as few kernels as the rules
allow, compiled by LLVM for this CPU (cached per shape) and run::

    import fusejit as fj
    x = fj.rand(4096, 4096, seed=42)
    y = fj.gelu(x * 2 - 1)          # nothing has run yet
    print(y.sum().item())           # one kernel: mul, sub, gelu and the sum

Sharing memory with NumPy and DLPack producers (PyTorch, JAX, ...):

* ``from_numpy(a)`` and ``from_dlpack(t)`` share the source's memory, no copy, and keep the
  source alive while any tensor reads it, when it is float32 (Float32), bool (Bool) or int64
  (Int64), writable, in CPU memory, with strides that are non-negative multiples of the element
  size (a strided source gives a strided tensor). In-place fusejit ops on such a tensor write
  into the source's memory. Every other source is copied, converted: other real number types
  become Float32, bool Bool, int64 Int64; read-only, negatively strided, byte-swapped or empty
  sources become a contiguous copy of the same values. ``tensor(data)`` always copies.
* ``x.numpy()`` and ``x.__dlpack__()`` hand out the evaluated storage without a copy (a view of a
  tensor gives a strided array); the array keeps the storage alive. Writes through the array are
  seen by the tensor; an in-place fusejit op on the tensor after that writes into new memory
  (copy-on-write), so the array keeps the value it had.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import operator
import random as _random
from typing import Iterator, Optional

import numpy as _np

from . import _fusejit as _C
# The ops' names (sum, max, min, abs, pow, slice, ...) hide Python's builtins in this file: the code
# below reaches those through `builtins`.
from ._fusejit import *  # noqa: F401,F403  (Tensor, DType, Error and the ops)
from ._fusejit import DType, Error, Tensor

Error.__doc__ = "Raised on every misuse of fusejit; the message names the op and the shapes."

float32 = DType.Float32
int64 = DType.Int64
# `bool` is defined at the end of this file (the builtin is builtins.bool here).

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# The NumPy type of each dtype's elements, and back.
_NUMPY_DTYPES = {DType.Float32: _np.dtype(_np.float32), DType.Bool: _np.dtype(_np.bool_),
                 DType.Int64: _np.dtype(_np.int64)}
_DTYPES = {numpy_dtype: dtype for dtype, numpy_dtype in _NUMPY_DTYPES.items()}
_DTYPE_NAMES = {DType.Float32: "fusejit.float32", DType.Bool: "fusejit.bool", DType.Int64: "fusejit.int64"}


# ---- creation ----

def _shape(args: tuple) -> list:
    """A shape given as separate ints, f(2, 3), or as one sequence, f((2, 3))."""
    if len(args) == 1 and not isinstance(args[0], int):
        args = tuple(args[0])
    return [operator.index(size) for size in args]


def _with_dtype(t: Tensor, dtype: Optional[DType]) -> Tensor:
    return t if dtype is None else t.to(dtype)


def _storage_dtype(array: _np.ndarray) -> _np.dtype:
    """The NumPy type a tensor holds `array`'s values as: bool and int64 as they are, every other
    real number type as float32."""
    if array.dtype.kind == "b":
        return _NUMPY_DTYPES[DType.Bool]
    if array.dtype.kind == "i" and array.dtype.itemsize == 8:
        return _NUMPY_DTYPES[DType.Int64]
    if array.dtype.kind in "iuf":
        return _NUMPY_DTYPES[DType.Float32]
    raise TypeError(f"fusejit holds float32, bool and int64 values; cannot convert an array of {array.dtype}")


def _owning(array: _np.ndarray) -> Tensor:
    """A tensor over `array`, a fresh contiguous array of a fusejit dtype, which it then owns."""
    shared = _C._share(array)
    if shared is not None:
        return shared
    return _C._zeros(list(array.shape)).to(_DTYPES[array.dtype])  # no elements: nothing to share


def _converted_copy(array: _np.ndarray, dtype: Optional[DType] = None) -> Tensor:
    target = _storage_dtype(array) if dtype is None else _NUMPY_DTYPES[dtype]
    return _owning(_np.array(array, dtype=target, order="C", copy=True))


def tensor(data, dtype: Optional[DType] = None) -> Tensor:
    """A new tensor holding a copy of `data`: a number, a (nested) list, a NumPy array or anything
    NumPy turns into one, or a Tensor. Without `dtype`, bools give Bool, int64 (Python ints) Int64
    and every other number Float32."""
    if isinstance(data, Tensor):
        data = data.numpy()
    return _converted_copy(_np.asarray(data), dtype)


def _shareable(array: _np.ndarray) -> bool:
    return (array.dtype in _NUMPY_DTYPES.values() and array.dtype.isnative and array.flags.writeable
            and array.flags.aligned and array.size > 0
            and all(stride >= 0 and stride % array.itemsize == 0 for stride in array.strides))


def from_numpy(array: _np.ndarray) -> Tensor:
    """A tensor sharing `array`'s memory (no copy) when it is float32, bool or int64, writable,
    aligned, with non-negative strides; it keeps the array alive and reads it through its
    strides, and in-place ops on it write into the array. Any other array is copied and converted
    (see the module's documentation)."""
    if not isinstance(array, _np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if _shareable(array):
        shared = _C._share(array)
        if shared is not None:
            return shared
    return _converted_copy(array)


_DLPACK_CPU_DEVICES = (1, 3)  # kDLCPU, kDLCUDAHost (pinned host memory)


def from_dlpack(source) -> Tensor:
    """A tensor sharing the memory of `source`, any DLPack producer in CPU memory (a PyTorch or
    JAX tensor, a NumPy array, a DLPack capsule), with no copy where its dtype is float32, bool
    or int64, it is writable and its strides are non-negative; it keeps the source alive, and
    in-place ops on it write into the source. Other dtypes and layouts are copied and converted
    as by from_numpy. Memory on another device raises Error."""
    if isinstance(source, _np.ndarray):
        return from_numpy(source)
    if hasattr(source, "__dlpack_device__"):
        device_type, device_id = source.__dlpack_device__()
        if int(device_type) not in _DLPACK_CPU_DEVICES:
            raise Error(f"from_dlpack: the tensor is on DLPack device ({int(device_type)}, {device_id}); "
                        "fusejit computes on the CPU: move it there first (e.g. t.cpu())")
    shared = _C._share(source)
    if shared is not None:
        return shared
    return _converted_copy(_np.from_dlpack(source))


def zeros(*shape, dtype: Optional[DType] = None) -> Tensor:
    """A tensor of zeros of `shape` (ints, or one sequence)."""
    return _with_dtype(_C._zeros(_shape(shape)), dtype)


def ones(*shape, dtype: Optional[DType] = None) -> Tensor:
    """A tensor of ones of `shape` (ints, or one sequence)."""
    return _with_dtype(_C._ones(_shape(shape)), dtype)


def full(shape, fill_value: float, dtype: Optional[DType] = None) -> Tensor:
    """A tensor of `shape` (an int or a sequence) filled with `fill_value`."""
    return _with_dtype(_C._full(_shape((shape,)), fill_value), dtype)


def arange(start: float, end: Optional[float] = None, step: float = 1, dtype: Optional[DType] = None) -> Tensor:
    """start, start + step, ... below end (1-d, Float32 unless `dtype`); arange(n) is 0 .. n-1."""
    if end is None:
        start, end = 0, start
    return _with_dtype(_C._arange(start, end, step), dtype)


def _seed(seed: Optional[int]) -> int:
    return _random.getrandbits(64) if seed is None else seed


def rand(*shape, seed: Optional[int] = None) -> Tensor:
    """Uniform values in [0, 1) of `shape`; the same `seed` gives the same values (None: a seed
    from Python's `random` module, which random.seed makes repeatable)."""
    return _C._rand(_shape(shape), _seed(seed))


def randn(*shape, seed: Optional[int] = None) -> Tensor:
    """Standard normal values of `shape`, from `seed` (as rand)."""
    return _C._randn(_shape(shape), _seed(seed))


# ---- evaluation, settings, introspection ----

def eval(*tensors: Tensor) -> None:  # noqa: A001  (fusejit.eval, as the C++ API's)
    """Evaluates the tensors in one schedule: work they share is computed once. Takes tensors or
    one sequence of them."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    _C._eval(list(tensors))


def dump(x: Tensor, stages: str = "graph,fused") -> str:
    """The text of the requested stages ("graph,fused,llvm,opt,asm", any subset) for evaluating
    `x`, without running it."""
    return x.dump(stages)


@dataclasses.dataclass(frozen=True)
class Stats:
    """fusejit's counters since the process started (or the last reset_stats())."""

    kernels_compiled: int
    cache_hits: int
    cache_misses: int
    kernels_launched: int
    kernels_evicted: int
    disk_hits: int  # kernels loaded from the disk cache (counted among cache_misses)
    compile_ms: float
    buffers_allocated: int  # tensor buffers handed out, fresh or reused


def stats() -> Stats:
    """The counters as a Stats."""
    return Stats(**_C._stats())


@contextlib.contextmanager
def fusion(enabled: bool) -> Iterator[None]:
    """Within the block, fusion is on or off (off = eager: every op its own kernel); the previous
    setting returns after it, also when it raises."""
    previous = _C.fusion_enabled()
    _C.set_fusion_enabled(enabled)
    try:
        yield
    finally:
        _C.set_fusion_enabled(previous)


def no_fusion() -> contextlib.AbstractContextManager:
    """fusion(False): a block run eagerly."""
    return fusion(False)


@contextlib.contextmanager
def num_threads(threads: int) -> Iterator[None]:
    """Within the block, large kernels use `threads` threads; the previous count returns after it,
    also when it raises."""
    previous = _C.get_num_threads()
    _C.set_num_threads(threads)
    try:
        yield
    finally:
        _C.set_num_threads(previous)


# ---- Tensor's Python protocols ----

def _slice_bound(value, default: int) -> int:
    if value is None:
        return default
    return builtins.min(builtins.max(operator.index(value), _INT64_MIN), _INT64_MAX)


def _getitem(self: Tensor, index) -> Tensor:
    """x[index], a view: an int selects (drops the dim; negative counts from the end), a slice
    with a positive step slices, None inserts a size-1 dim, ... stands for the dims not named, and
    a 1-d Int64 tensor picks positions (index_select, a copy)."""
    items = index if isinstance(index, tuple) else (index,)
    if builtins.sum(item is Ellipsis for item in items) > 1:
        raise Error(f"index: at most one '...' in an index, got {index!r}")
    named = builtins.sum(item is not None and item is not Ellipsis for item in items)
    if named > self.ndim:
        raise Error(f"index: {named} indices for a tensor of {self.ndim} dims, shape {list(self.shape)}")
    result, dim = self, 0
    for item in items:
        if item is Ellipsis:
            dim += self.ndim - named
        elif item is None:
            result = result.unsqueeze(dim)
            dim += 1
        elif isinstance(item, builtins.slice):
            step = _slice_bound(item.step, 1)
            if step <= 0:
                raise Error(f"index: slice step {step} of dim {dim}: only positive steps are supported "
                            "(to reverse a dim, index_select it with a descending Int64 arange)")
            start, stop = _slice_bound(item.start, 0), _slice_bound(item.stop, _INT64_MAX)
            if (start, stop, step) != (0, _INT64_MAX, 1):
                result = result.slice(dim, start, stop, step)
            dim += 1
        elif isinstance(item, Tensor):
            if item.dtype != DType.Int64 or item.ndim != 1:
                raise Error(f"index: a tensor index must be 1-d Int64, got {item.dtype.name}{list(item.shape)}")
            result = result.index_select(dim, item)
            dim += 1
        else:
            try:
                position = operator.index(item) if not isinstance(item, (builtins.bool, _np.bool_)) else None
            except TypeError:
                position = None
            if position is None:
                raise Error(f"index: unsupported index {item!r} (ints, slices, None, ... and 1-d Int64 tensors)")
            result = result.select(dim, _slice_bound(position, 0))
    return result


def _setitem(self: Tensor, index, value) -> None:
    """x[index] = value: copy_ into the view x[index] (value broadcast; a number, a Tensor, or
    anything tensor() takes)."""
    if not isinstance(value, (Tensor, int, float)):
        value = tensor(value)
    self[index].copy_(value)


def _repr(self: Tensor) -> str:
    body = _np.array2string(self.numpy(), separator=", ", prefix="tensor(")
    extras = []
    if self.numel() == 0 and self.ndim != 1:
        extras.append(f"size={self.shape}")
    if self.dtype != DType.Float32:
        extras.append(f"dtype={_DTYPE_NAMES[self.dtype]}")
    return "tensor(" + ", ".join([body] + extras) + ")"


def _len(self: Tensor) -> int:
    if self.ndim == 0:
        raise TypeError("len() of a 0-d tensor")
    return self.shape[0]


def _iter(self: Tensor) -> Iterator[Tensor]:
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (self.select(0, i) for i in range(self.shape[0]))


def _bool(self: Tensor) -> bool:
    if self.numel() != 1:
        raise Error(f"bool: the truth value of a tensor of {self.numel()} elements is ambiguous "
                    "(use .amax(), .amin() or a comparison's .sum())")
    return builtins.bool(self.item())


def _tolist(self: Tensor):
    """The values as nested Python lists (a number for a 0-d tensor)."""
    return self.numpy().tolist()


def _array(self: Tensor, dtype=None, copy: Optional[bool] = None) -> _np.ndarray:
    array = self.numpy()
    if dtype is not None and _np.dtype(dtype) != array.dtype:
        if copy is False:
            raise ValueError(f"__array__: converting {array.dtype} to {_np.dtype(dtype)} needs a copy")
        return array.astype(dtype)
    return array.copy() if copy else array


def _dlpack(self: Tensor, *, stream=None, max_version=None, dl_device=None, copy=None):
    """The evaluated storage as a DLPack capsule (no copy), through NumPy's exporter."""
    if stream is not None:
        raise Error("__dlpack__: fusejit tensors are in CPU memory; stream must be None")
    options = {name: value for name, value in
               (("max_version", max_version), ("dl_device", dl_device), ("copy", copy)) if value is not None}
    return self.numpy().__dlpack__(**options)


def _dlpack_device(self: Tensor) -> tuple:
    """(kDLCPU, 0): fusejit tensors live in CPU memory."""
    return (1, 0)


Tensor.__getitem__ = _getitem
Tensor.__setitem__ = _setitem
Tensor.__repr__ = _repr
Tensor.__len__ = _len
Tensor.__iter__ = _iter
Tensor.__bool__ = _bool
Tensor.__float__ = lambda self: float(self.item())
Tensor.__int__ = lambda self: int(self.item())
Tensor.__hash__ = object.__hash__  # by identity, as torch.Tensor (== is elementwise)
Tensor.tolist = _tolist
Tensor.__array__ = _array
Tensor.__array_ufunc__ = None  # numpy_array + tensor defers to Tensor.__radd__, which refuses arrays
Tensor.__dlpack__ = _dlpack
Tensor.__dlpack_device__ = _dlpack_device

bool = DType.Bool  # noqa: A001  (fusejit.bool, as torch.bool)
