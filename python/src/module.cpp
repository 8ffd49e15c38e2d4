// fusejit._fusejit: the C++ API bound with nanobind, for fusejit/__init__.py to complete with
// what is plain Python (indexing, creation from lists, the Stats dataclass, context managers).
//
// Every call that may evaluate (eval, item, numpy, dump) releases the GIL while fusejit works:
// other Python threads run meanwhile, and memory that Python owns (from_numpy, from_dlpack) can be
// released by fusejit on any thread.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fusejit/fusejit.h"

namespace nb = nanobind;
namespace fj = fusejit;
using namespace nb::literals;
using fj::DType;
using fj::Shape;
using fj::Tensor;

namespace {

using Unary = Tensor (*)(const Tensor&);
using Binary = Tensor (*)(const Tensor&, const Tensor&);

// ---- arguments ----

// A shape or dim list given as one int or one sequence of ints.
Shape int_list(nb::handle value) {
  if (PyLong_Check(value.ptr())) return {nb::cast<int64_t>(value)};
  return nb::cast<Shape>(value);
}

// A shape given as separate ints (x.reshape(2, 3)) or as one sequence (x.reshape((2, 3))).
Shape shape_args(const nb::args& args) {
  if (args.size() == 1 && !PyLong_Check(args[0].ptr())) return nb::cast<Shape>(args[0]);
  return nb::cast<Shape>(args);
}

nb::object as_tuple(const Shape& values) {
  nb::object tuple = nb::steal(PyTuple_New(static_cast<Py_ssize_t>(values.size())));
  for (size_t i = 0; i < values.size(); ++i)
    PyTuple_SET_ITEM(tuple.ptr(), static_cast<Py_ssize_t>(i), PyLong_FromLongLong(values[i]));
  return tuple;
}

// The dims to reduce: None (all of them), an int, or a sequence of ints.
std::optional<Shape> reduce_dims(nb::handle dim) {
  if (dim.is_none()) return std::nullopt;
  return int_list(dim);
}

// An optional tensor argument: None is fusejit's undefined Tensor().
Tensor or_undefined(const Tensor* tensor) { return tensor ? *tensor : Tensor(); }

// ---- sharing memory with Python ----

bool python_is_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

// An owner for fusejit::from_blob: holds `array` (and so its producer's memory) until fusejit
// releases it, on whatever thread that happens, taking the GIL there. During interpreter
// shutdown Python frees what remains itself, so the reference is left alone.
template <class Array>
std::shared_ptr<void> held_by_fusejit(const Array& array) {
  return std::shared_ptr<void>(new Array(array), [](void* held) {
    if (!Py_IsInitialized() || python_is_finalizing()) return;
    PyGILState_STATE state = PyGILState_Ensure();
    delete static_cast<Array*>(held);
    PyGILState_Release(state);
  });
}

std::optional<DType> dtype_of(nb::dlpack::dtype dtype) {
  if (dtype.lanes != 1) return std::nullopt;
  auto code = static_cast<nb::dlpack::dtype_code>(dtype.code);
  if (code == nb::dlpack::dtype_code::Float && dtype.bits == 32) return DType::Float32;
  if (code == nb::dlpack::dtype_code::Int && dtype.bits == 64) return DType::Int64;
  if (code == nb::dlpack::dtype_code::Bool && dtype.bits == 8) return DType::Bool;
  return std::nullopt;
}

nb::dlpack::dtype dlpack_dtype(DType dtype) {
  switch (dtype) {
    case DType::Float32: return nb::dtype<float>();
    case DType::Int64: return nb::dtype<int64_t>();
    case DType::Bool: return nb::dtype<bool>();
  }
  return nb::dtype<float>();
}

using CpuArray = nb::ndarray<nb::device::cpu>;

// `source` (a NumPy array or any DLPack producer) as a tensor sharing its memory, or None where
// it cannot be shared: read-only, not in CPU memory, a dtype fusejit does not have, negative or
// misaligned strides, or no elements. fusejit/__init__.py converts those into copies.
nb::object share(nb::handle source) {
  CpuArray array;
  if (!nb::try_cast(source, array, /*convert=*/false)) return nb::none();
  std::optional<DType> dtype = dtype_of(array.dtype());
  if (!dtype || array.size() == 0) return nb::none();
  Shape shape(array.ndim()), strides(array.ndim());
  for (size_t d = 0; d < array.ndim(); ++d) {
    shape[d] = static_cast<int64_t>(array.shape(d));
    strides[d] = array.stride(d);
    if (strides[d] < 0) return nb::none();
  }
  auto address = reinterpret_cast<uintptr_t>(array.data());
  if (address % static_cast<uintptr_t>(fj::dtype_size(*dtype)) != 0) return nb::none();
  return nb::cast(fj::from_blob(array.data(), std::move(shape), std::move(strides), *dtype,
                                held_by_fusejit(array)));
}

// The first element's address of the evaluated tensor.
void* data_of(const Tensor& x) {
  switch (x.dtype()) {
    case DType::Float32: return x.data_ptr<float>();
    case DType::Int64: return x.data_ptr<int64_t>();
    case DType::Bool: return x.data_ptr<bool>();
  }
  return nullptr;
}

// `x` evaluated, as a NumPy array over its storage (strided like the tensor): the array holds
// the evaluated value's node, so the storage lives as long as the array. An in-place update of
// `x` afterwards goes to new memory (the array still sees the old value, copy-on-write).
nb::ndarray<nb::numpy> to_numpy(const Tensor& x) {
  void* data;
  {
    nb::gil_scoped_release unlocked;
    data = data_of(x);
  }
  // An empty array reads nothing: any aligned address will do.
  static int64_t no_elements;
  if (x.numel() == 0) data = &no_elements;
  auto* value = new std::shared_ptr<void>(x.node());
  nb::capsule owner(value, [](void* held) noexcept { delete static_cast<std::shared_ptr<void>*>(held); });
  std::vector<size_t> shape(x.sizes().begin(), x.sizes().end());
  Shape strides = x.strides();
  return nb::ndarray<nb::numpy>(data, shape.size(), shape.data(), owner, strides.data(), dlpack_dtype(x.dtype()),
                                nb::device::cpu::value);
}

template <class T>
nb::object item_as(const Tensor& x) {
  T value;
  {
    nb::gil_scoped_release unlocked;
    value = x.item<T>();
  }
  return nb::cast(value);
}

nb::object item(const Tensor& x) {
  switch (x.dtype()) {
    case DType::Float32: return item_as<float>(x);
    case DType::Int64: return item_as<int64_t>(x);
    case DType::Bool: return item_as<bool>(x);
  }
  return nb::none();
}

// An in-place method returns the Python object it was called on, as `x += y` needs.
template <class Update>
auto in_place(Update update) {
  return [update](nb::handle self, const Tensor& other) {
    update(nb::cast<Tensor&>(self), other);
    return nb::borrow(self);
  };
}

nb::dict stats_dict() {
  fj::Stats s = fj::stats();
  nb::dict d;
  d["kernels_compiled"] = s.kernels_compiled;
  d["cache_hits"] = s.cache_hits;
  d["cache_misses"] = s.cache_misses;
  d["kernels_launched"] = s.kernels_launched;
  d["kernels_evicted"] = s.kernels_evicted;
  d["disk_hits"] = s.disk_hits;
  d["compile_ms"] = s.compile_ms;
  d["buffers_allocated"] = s.buffers_allocated;
  return d;
}

// ---- the op tables: each op both a function (fj.exp(x)) and a method (x.exp()) ----

struct UnaryOp {
  const char* name;
  Unary fn;
  const char* doc;
};

const UnaryOp kUnaryOps[] = {
    {"neg", &fj::neg, "-x, elementwise."},
    {"abs", &fj::abs, "|x|, elementwise."},
    {"exp", &fj::exp, "e**x, elementwise."},
    {"log", &fj::log, "The natural logarithm, elementwise (NaN below 0, -inf at 0)."},
    {"sqrt", &fj::sqrt, "The square root, elementwise (NaN below 0)."},
    {"rsqrt", &fj::rsqrt, "1 / sqrt(x), elementwise."},
    {"sin", &fj::sin, "The sine, elementwise."},
    {"cos", &fj::cos, "The cosine, elementwise."},
    {"relu", &fj::relu, "max(x, 0), elementwise."},
    {"sigmoid", &fj::sigmoid, "1 / (1 + exp(-x)), elementwise."},
    {"tanh", &fj::tanh, "The hyperbolic tangent, elementwise."},
    {"silu", &fj::silu, "x * sigmoid(x), elementwise."},
};

struct BinaryOp {
  const char* name;
  Binary fn;
  const char* doc;
};

const BinaryOp kBinaryOps[] = {
    {"add", &fj::add, "x + other, elementwise with NumPy broadcasting; either may be a number."},
    {"sub", &fj::sub, "x - other, elementwise with NumPy broadcasting; either may be a number."},
    {"mul", &fj::mul, "x * other, elementwise with NumPy broadcasting; either may be a number."},
    {"div", &fj::div, "x / other, elementwise with NumPy broadcasting; either may be a number."},
    {"maximum", &fj::maximum, "The larger of x and other, elementwise (NaN if either is NaN)."},
    {"minimum", &fj::minimum, "The smaller of x and other, elementwise (NaN if either is NaN)."},
    {"eq", &fj::eq, "x == other, elementwise: a Bool tensor."},
    {"ne", &fj::ne, "x != other, elementwise: a Bool tensor."},
    {"lt", &fj::lt, "x < other, elementwise: a Bool tensor."},
    {"le", &fj::le, "x <= other, elementwise: a Bool tensor."},
    {"gt", &fj::gt, "x > other, elementwise: a Bool tensor."},
    {"ge", &fj::ge, "x >= other, elementwise: a Bool tensor."},
};

using Reduction = Tensor (*)(const Tensor&, Shape, bool);
using FullReduction = Tensor (*)(const Tensor&);

struct ReductionOp {
  const char* name;
  FullReduction all;
  Reduction over;
  const char* doc;
};

const ReductionOp kReductions[] = {
    {"sum", &fj::sum, &fj::sum,
     "The sum over `dim` (an int or a sequence of ints; None: every element, a 0-d tensor). "
     "keepdim keeps reduced dims as size 1. 0 over no elements."},
    {"mean", &fj::mean, &fj::mean, "The mean over `dim` (as sum). NaN over no elements."},
    {"prod", &fj::prod, &fj::prod, "The product over `dim` (as sum). 1 over no elements."},
    {"amax", &fj::amax, &fj::amax, "The maximum over `dim` (as sum); NaN propagates. Error over no elements."},
    {"amin", &fj::amin, &fj::amin, "The minimum over `dim` (as sum); NaN propagates. Error over no elements."},
};

// Binds `name` as a module function taking the tensor `x` first and as a Tensor method.
template <class Fn, class... Extra>
void def_both(nb::module_& m, nb::class_<Tensor>& cls, const char* name, Fn&& fn, const Extra&... extra) {
  m.def(name, fn, nb::arg("x"), extra...);
  cls.def(name, fn, extra...);
}

// A method as Python's operator protocol wants it: NotImplemented for operands it cannot take.
template <class Fn>
void def_operator(nb::class_<Tensor>& cls, const char* name, Fn&& fn, const char* doc) {
  cls.def(name, fn, nb::is_operator(), doc);
}

}  // namespace

NB_MODULE(_fusejit, m) {
  m.doc() = "fusejit's C++ API; import fusejit, which completes it.";
  // Tensors left in module globals at exit are freed by Python's own teardown, not reported.
  nb::set_leak_warnings(false);

  nb::exception<fj::Error>(m, "Error", PyExc_RuntimeError);

  nb::enum_<DType>(m, "DType", "A tensor's element type: Float32, Bool (one byte 0/1) or Int64.")
      .value("Float32", DType::Float32)
      .value("Bool", DType::Bool)
      .value("Int64", DType::Int64);

  nb::class_<Tensor> cls(m, "Tensor",
                         "A lazy tensor: operations record a graph, evaluated (fused, compiled, run) "
                         "when a value is needed.");
  cls.def(nb::init_implicit<float>(), "value"_a, "A 0-d Float32 tensor holding `value`.");

  // ---- accessors ----
  cls.def_prop_ro(
         "shape", [](const Tensor& x) { return as_tuple(x.sizes()); }, "The sizes, a tuple.")
      .def_prop_ro("dtype", &Tensor::dtype, "The element type (fusejit.float32, fusejit.bool, fusejit.int64).")
      .def_prop_ro("ndim", &Tensor::dim, "The number of dims.")
      .def_prop_ro(
          "strides", [](const Tensor& x) { return as_tuple(x.strides()); },
          "The strides, in elements (not bytes, unlike NumPy's), a tuple.")
      .def_prop_ro("T", [](const Tensor& x) { return x.t(); }, "t(): a 2-d tensor transposed.")
      .def("dim", &Tensor::dim, "The number of dims.")
      .def("numel", &Tensor::numel, "The number of elements.")
      .def(
          "size",
          [](const Tensor& x, std::optional<int64_t> dim) -> nb::object {
            if (dim) return nb::int_(x.size(*dim));
            return as_tuple(x.sizes());
          },
          "dim"_a = nb::none(), "The size of `dim` (negative counts from the end), or all sizes as a tuple.")
      .def("storage_offset", &Tensor::storage_offset, "The first element's offset in its storage, in elements.")
      .def("is_contiguous", &Tensor::is_contiguous, "Whether the elements lie in row-major order.")
      .def("is_evaluated", &Tensor::is_evaluated, "Whether the value is computed and stored.")
      .def(
          "eval",
          [](nb::handle self) {
            {
              nb::gil_scoped_release unlocked;
              nb::cast<const Tensor&>(self).eval();
            }
            return nb::borrow(self);
          },
          "Computes the value now and keeps it; returns the tensor.")
      .def("item", &item, "The value of a one-element tensor as a Python float, bool or int.")
      .def("numpy", &to_numpy,
           "The value as a NumPy array sharing the tensor's storage (no copy; strided like the tensor). "
           "Writes through the array are seen by the tensor; an in-place fusejit op on the tensor "
           "afterwards writes new memory, leaving the array as it was.")
      .def(
          "dump",
          [](const Tensor& x, const std::string& stages) {
            nb::gil_scoped_release unlocked;
            return x.dump(stages);
          },
          "stages"_a = "graph,fused",
          "The text of the requested stages (\"graph,fused,llvm,opt,asm\", any subset) for evaluating "
          "the tensor, without running it.")
      .def("to", &Tensor::to, "dtype"_a,
           "This tensor if it is of `dtype`, else a converted copy (Bool counts as 0/1; a float into "
           "Int64 truncates towards zero, saturating, NaN to 0).");

  // ---- operators ----
  def_operator(cls, "__add__", [](const Tensor& a, const Tensor& b) { return a + b; }, "a + b");
  def_operator(cls, "__radd__", [](const Tensor& a, const Tensor& b) { return b + a; }, "b + a");
  def_operator(cls, "__sub__", [](const Tensor& a, const Tensor& b) { return a - b; }, "a - b");
  def_operator(cls, "__rsub__", [](const Tensor& a, const Tensor& b) { return b - a; }, "b - a");
  def_operator(cls, "__mul__", [](const Tensor& a, const Tensor& b) { return a * b; }, "a * b");
  def_operator(cls, "__rmul__", [](const Tensor& a, const Tensor& b) { return b * a; }, "b * a");
  def_operator(cls, "__truediv__", [](const Tensor& a, const Tensor& b) { return a / b; }, "a / b");
  def_operator(cls, "__rtruediv__", [](const Tensor& a, const Tensor& b) { return b / a; }, "b / a");
  def_operator(cls, "__pow__", [](const Tensor& a, float b) { return fj::pow(a, b); }, "a ** b");
  def_operator(cls, "__pow__", [](const Tensor& a, const Tensor& b) { return fj::pow(a, b); }, "a ** b");
  def_operator(cls, "__rpow__", [](const Tensor& a, const Tensor& b) { return fj::pow(b, a); }, "b ** a");
  def_operator(cls, "__matmul__", [](const Tensor& a, const Tensor& b) { return fj::matmul(a, b); }, "a @ b");
  def_operator(cls, "__neg__", [](const Tensor& a) { return -a; }, "-a");
  def_operator(cls, "__pos__", [](const Tensor& a) { return a; }, "+a: the tensor itself");
  def_operator(cls, "__abs__", [](const Tensor& a) { return fj::abs(a); }, "abs(a)");
  def_operator(cls, "__eq__", [](const Tensor& a, const Tensor& b) { return a == b; }, "a == b, a Bool tensor");
  def_operator(cls, "__ne__", [](const Tensor& a, const Tensor& b) { return a != b; }, "a != b, a Bool tensor");
  def_operator(cls, "__lt__", [](const Tensor& a, const Tensor& b) { return a < b; }, "a < b, a Bool tensor");
  def_operator(cls, "__le__", [](const Tensor& a, const Tensor& b) { return a <= b; }, "a <= b, a Bool tensor");
  def_operator(cls, "__gt__", [](const Tensor& a, const Tensor& b) { return a > b; }, "a > b, a Bool tensor");
  def_operator(cls, "__ge__", [](const Tensor& a, const Tensor& b) { return a >= b; }, "a >= b, a Bool tensor");
  def_operator(cls, "__iadd__", in_place([](Tensor& a, const Tensor& b) { a.add_(b); }), "a += b: add_");
  def_operator(cls, "__isub__", in_place([](Tensor& a, const Tensor& b) { a.sub_(b); }), "a -= b: sub_");
  def_operator(cls, "__imul__", in_place([](Tensor& a, const Tensor& b) { a.mul_(b); }), "a *= b: mul_");
  def_operator(cls, "__itruediv__", in_place([](Tensor& a, const Tensor& b) { a.div_(b); }), "a /= b: div_");

  // ---- in place ----
  cls.def("add_", in_place([](Tensor& a, const Tensor& b) { a.add_(b); }), "other"_a,
          "self + other in place (other broadcast to self; a number works); returns self. Lazy; written "
          "into the tensor's own memory when nothing else sees the old value, else into new memory.")
      .def("sub_", in_place([](Tensor& a, const Tensor& b) { a.sub_(b); }), "other"_a,
           "self - other in place, as add_.")
      .def("mul_", in_place([](Tensor& a, const Tensor& b) { a.mul_(b); }), "other"_a,
           "self * other in place, as add_.")
      .def("div_", in_place([](Tensor& a, const Tensor& b) { a.div_(b); }), "other"_a,
           "self / other in place, as add_.")
      .def("copy_", in_place([](Tensor& a, const Tensor& b) { a.copy_(b); }), "src"_a,
           "Copies `src` (broadcast, converted to this tensor's dtype) into this tensor; returns it.")
      .def(
          "fill_",
          [](nb::handle self, float value) {
            nb::cast<Tensor&>(self).fill_(value);
            return nb::borrow(self);
          },
          "value"_a, "Sets every element to `value`; returns this tensor.")
      .def(
          "zero_",
          [](nb::handle self) {
            nb::cast<Tensor&>(self).zero_();
            return nb::borrow(self);
          },
          "Sets every element to 0; returns this tensor.")
      .def(
          "clamp_",
          [](nb::handle self, std::optional<float> min, std::optional<float> max) {
            nb::cast<Tensor&>(self).clamp_(min.value_or(-std::numeric_limits<float>::infinity()),
                                           max.value_or(std::numeric_limits<float>::infinity()));
            return nb::borrow(self);
          },
          "min"_a = nb::none(), "max"_a = nb::none(), "clamp(self, min, max) in place; returns this tensor.")
      .def(
          "relu_",
          [](nb::handle self) {
            nb::cast<Tensor&>(self).relu_();
            return nb::borrow(self);
          },
          "relu(self) in place; returns this tensor.");

  // ---- views ----
  cls.def("reshape", [](const Tensor& x, nb::args shape) { return x.reshape(shape_args(shape)); },
          "The elements in row-major order as `shape` (ints or one sequence; one may be -1): a view where "
          "the strides allow, else a copy.")
      .def("view", [](const Tensor& x, nb::args shape) { return x.view(shape_args(shape)); },
           "As reshape, but always a view: Error where the strides cannot express `shape`.")
      .def("permute", [](const Tensor& x, nb::args dims) { return x.permute(shape_args(dims)); },
           "A view with the dims in the order `dims` (ints or one sequence).")
      .def("expand", [](const Tensor& x, nb::args shape) { return x.expand(shape_args(shape)); },
           "A view with size-1 dims stretched (stride 0) to `shape`; -1 keeps a dim.")
      .def("transpose", &Tensor::transpose, "dim0"_a, "dim1"_a, "A view with dims dim0 and dim1 swapped.")
      .def("t", &Tensor::t, "A 2-d tensor transposed (a view); a 0-d or 1-d tensor unchanged.")
      .def("slice", &Tensor::slice, "dim"_a, "start"_a = 0, "end"_a = std::numeric_limits<int64_t>::max(),
           "step"_a = 1,
           "A view of indices start, start + step, ... below end of `dim` (bounds as Python's; step > 0).")
      .def("narrow", &Tensor::narrow, "dim"_a, "start"_a, "length"_a,
           "A view of `length` indices of `dim` from `start` (in range, or Error).")
      .def("select", &Tensor::select, "dim"_a, "index"_a, "A view of index `index` of `dim`, which is dropped.")
      .def("unsqueeze", &Tensor::unsqueeze, "dim"_a, "A view with a new size-1 dim at `dim`.")
      .def(
          "squeeze",
          [](const Tensor& x, std::optional<int64_t> dim) { return dim ? x.squeeze(*dim) : x.squeeze(); },
          "dim"_a = nb::none(), "A view without size-1 dims (or without `dim`, if its size is 1).")
      .def("flatten", &Tensor::flatten, "start_dim"_a = 0, "end_dim"_a = -1,
           "Dims start_dim..end_dim merged into one (a view where the strides allow).")
      .def("contiguous", &Tensor::contiguous, "This tensor if row-major, else a contiguous copy.")
      .def("matmul", &Tensor::matmul, "other"_a, "matmul(self, other).");

  m.def("reshape", [](const Tensor& x, nb::handle shape) { return fj::reshape(x, int_list(shape)); }, "x"_a,
        "shape"_a, "x.reshape(shape).");
  m.def("view", [](const Tensor& x, nb::handle shape) { return fj::view(x, int_list(shape)); }, "x"_a, "shape"_a,
        "x.view(shape).");
  m.def("permute", [](const Tensor& x, nb::handle dims) { return fj::permute(x, int_list(dims)); }, "x"_a,
        "dims"_a, "x.permute(dims).");
  m.def("expand", [](const Tensor& x, nb::handle shape) { return fj::expand(x, int_list(shape)); }, "x"_a,
        "shape"_a, "x.expand(shape).");
  m.def("transpose", &fj::transpose, "x"_a, "dim0"_a, "dim1"_a, "x.transpose(dim0, dim1).");
  m.def("t", &fj::t, "x"_a, "x.t().");
  m.def("slice", &fj::slice, "x"_a, "dim"_a, "start"_a = 0, "end"_a = std::numeric_limits<int64_t>::max(),
        "step"_a = 1, "x.slice(dim, start, end, step).");
  m.def("narrow", &fj::narrow, "x"_a, "dim"_a, "start"_a, "length"_a, "x.narrow(dim, start, length).");
  m.def("select", &fj::select, "x"_a, "dim"_a, "index"_a, "x.select(dim, index).");
  m.def("unsqueeze", &fj::unsqueeze, "x"_a, "dim"_a, "x.unsqueeze(dim).");
  m.def(
      "squeeze",
      [](const Tensor& x, std::optional<int64_t> dim) { return dim ? fj::squeeze(x, *dim) : fj::squeeze(x); },
      "x"_a, "dim"_a = nb::none(), "x.squeeze(dim).");
  m.def("flatten", &fj::flatten, "x"_a, "start_dim"_a = 0, "end_dim"_a = -1, "x.flatten(start_dim, end_dim).");
  m.def("contiguous", &fj::contiguous, "x"_a, "x.contiguous().");

  // ---- elementwise, activations ----
  for (const UnaryOp& op : kUnaryOps) def_both(m, cls, op.name, op.fn, op.doc);
  for (const BinaryOp& op : kBinaryOps) def_both(m, cls, op.name, op.fn, "other"_a, op.doc);
  m.def("pow", [](const Tensor& x, float exponent) { return fj::pow(x, exponent); }, "x"_a, "exponent"_a,
        "x ** exponent, elementwise; either may be a tensor (broadcast) or a number.");
  def_both(
      m, cls, "pow", [](const Tensor& x, const Tensor& exponent) { return fj::pow(x, exponent); }, "exponent"_a,
      "x ** exponent, elementwise; either may be a tensor (broadcast) or a number.");
  def_both(
      m, cls, "clamp",
      [](const Tensor& x, std::optional<float> min, std::optional<float> max) {
        return fj::clamp(x, min.value_or(-std::numeric_limits<float>::infinity()),
                         max.value_or(std::numeric_limits<float>::infinity()));
      },
      "min"_a = nb::none(), "max"_a = nb::none(), "x limited to [min, max] (None: unbounded on that side).");
  m.def("where", &fj::where, "cond"_a, "a"_a, "b"_a,
        "a where cond is true (a Float32 cond: nonzero), else b; broadcast; a or b may be a number.");
  def_both(m, cls, "gelu", &fj::gelu, "approximate"_a = "none",
           "x * Phi(x) (approximate=\"none\", the erf form) or its tanh approximation (\"tanh\").");
  def_both(m, cls, "leaky_relu", &fj::leaky_relu, "negative_slope"_a = 0.01f,
           "x where x > 0, else negative_slope * x.");
  def_both(m, cls, "elu", &fj::elu, "alpha"_a = 1.0f, "x where x > 0, else alpha * (exp(x) - 1).");
  def_both(m, cls, "softplus", &fj::softplus, "beta"_a = 1.0f, "threshold"_a = 20.0f,
           "log(1 + exp(beta * x)) / beta, x itself where beta * x > threshold.");
  def_both(m, cls, "softmax", &fj::softmax, "dim"_a, "exp(x) / sum(exp(x)) along `dim`.");
  def_both(m, cls, "log_softmax", &fj::log_softmax, "dim"_a, "log(softmax(x, dim)), computed stably.");

  // ---- reductions ----
  for (const ReductionOp& op : kReductions) {
    def_both(
        m, cls, op.name,
        [all = op.all, over = op.over](const Tensor& x, nb::handle dim, bool keepdim) {
          std::optional<Shape> dims = reduce_dims(dim);
          if (!dims && !keepdim) return all(x);
          return over(x, dims.value_or(Shape{}), keepdim);
        },
        "dim"_a = nb::none(), "keepdim"_a = false, op.doc);
  }
  def_both(m, cls, "max", static_cast<Tensor (*)(const Tensor&)>(&fj::max),
           "The maximum of all elements, a 0-d tensor (amax reduces over dims).");
  def_both(m, cls, "min", static_cast<Tensor (*)(const Tensor&)>(&fj::min),
           "The minimum of all elements, a 0-d tensor (amin reduces over dims).");
  auto index_of_extreme = [](Tensor (*fn)(const Tensor&, int64_t, bool)) {
    return [fn](const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
      if (!dim) return fn(x.reshape({-1}), 0, false);
      return fn(x, *dim, keepdim);
    };
  };
  def_both(m, cls, "argmax", index_of_extreme(&fj::argmax), "dim"_a = nb::none(), "keepdim"_a = false,
           "The index (Int64) of the first maximum along `dim` (None: of the flattened tensor); NaN counts "
           "as the maximum.");
  def_both(m, cls, "argmin", index_of_extreme(&fj::argmin), "dim"_a = nb::none(), "keepdim"_a = false,
           "The index (Int64) of the first minimum along `dim` (None: of the flattened tensor); NaN counts "
           "as the minimum.");
  auto spread = [](Tensor (*fn)(const Tensor&, Shape, double, bool)) {
    return [fn](const Tensor& x, nb::handle dim, double correction, bool keepdim) {
      return fn(x, reduce_dims(dim).value_or(Shape{}), correction, keepdim);
    };
  };
  def_both(m, cls, "var", spread(&fj::var), "dim"_a = nb::none(), "correction"_a = 1.0, "keepdim"_a = false,
           "The variance over `dim` (None: every element): squared deviations summed, divided by "
           "count - correction.");
  def_both(m, cls, "std", spread(&fj::std), "dim"_a = nb::none(), "correction"_a = 1.0, "keepdim"_a = false,
           "The standard deviation: sqrt(var(x, dim, correction, keepdim)).");
  m.def(
      "layer_norm",
      [](const Tensor& x, nb::handle normalized_shape, const Tensor* weight, const Tensor* bias, double eps) {
        return fj::layer_norm(x, int_list(normalized_shape), or_undefined(weight), or_undefined(bias), eps);
      },
      "x"_a, "normalized_shape"_a, "weight"_a.none() = nb::none(), "bias"_a.none() = nb::none(), "eps"_a = 1e-5,
      "x normalized over its trailing `normalized_shape` dims (mean 0, variance 1), then * weight + bias "
      "where given.");

  // ---- joins, gathers, linear algebra ----
  m.def("cat", &fj::cat, "tensors"_a, "dim"_a = 0,
        "The tensors (one dtype, equal sizes but in `dim`) joined along `dim`.");
  m.def("stack", &fj::stack, "tensors"_a, "dim"_a = 0, "The tensors (one shape and dtype) joined along a new dim.");
  def_both(m, cls, "index_select", &fj::index_select, "dim"_a, "index"_a,
           "The positions `index` (an Int64 tensor, 0-d or 1-d) of `dim`: index_select(table, 0, ids) is "
           "an embedding lookup. The index is checked (and evaluated) now.");
  m.def("matmul", &fj::matmul, "a"_a, "b"_a,
        "The matrix product with torch.matmul's rules (1-d operands, broadcast batch dims); float32 sums.");
  m.def(
      "linear",
      [](const Tensor& x, const Tensor& weight, const Tensor* bias) {
        return fj::linear(x, weight, or_undefined(bias));
      },
      "x"_a, "weight"_a, "bias"_a.none() = nb::none(),
      "x @ weight.T + bias: x [..., in], weight [out, in], bias [out] (optional).");
  m.def(
      "scaled_dot_product_attention",
      [](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* attn_mask, bool is_causal,
         std::optional<double> scale) {
        return fj::scaled_dot_product_attention(q, k, v, or_undefined(attn_mask), is_causal, scale);
      },
      "q"_a, "k"_a, "v"_a, "attn_mask"_a.none() = nb::none(), "is_causal"_a = false, "scale"_a = nb::none(),
      "softmax(q @ k^T * scale + mask) @ v with torch's rules: q [..., L, E], k [..., S, E], v [..., S, Ev]; "
      "scale 1/sqrt(E) unless given; attn_mask Bool (True attends) or Float32 (added), broadcast to "
      "[..., L, S]; is_causal lets query i attend keys j <= i. One tiled kernel.");

  // ---- creation ----
  m.def("_zeros", &fj::zeros, "shape"_a, "A Float32 tensor of zeros.");
  m.def("_ones", &fj::ones, "shape"_a, "A Float32 tensor of ones.");
  m.def("_full", &fj::full, "shape"_a, "value"_a, "A Float32 tensor filled with `value`.");
  m.def("_arange", &fj::arange, "start"_a, "end"_a, "step"_a, "start, start + step, ... below end (Float32).");
  m.def("_rand", &fj::rand, "shape"_a, "seed"_a, "Uniform in [0, 1), from `seed`.");
  m.def("_randn", &fj::randn, "shape"_a, "seed"_a, "Standard normal, from `seed`.");
  m.def("_share", &share, "source"_a,
        "`source` (a NumPy array or a DLPack producer) as a tensor sharing its memory, or None where it "
        "cannot be shared.");

  // ---- evaluation, settings, bounds, introspection ----
  m.def(
      "_eval",
      [](const std::vector<Tensor>& outputs) {
        nb::gil_scoped_release unlocked;
        fj::eval(outputs);
      },
      "outputs"_a, "Evaluates the tensors in one schedule: shared work is computed once.");
  m.def("set_fusion_enabled", &fj::set_fusion_enabled, "enabled"_a,
        "Off = eager: every op its own kernel, every result stored.");
  m.def("fusion_enabled", &fj::fusion_enabled, "Whether ops are fused (see set_fusion_enabled).");
  m.def("set_num_threads", &fj::set_num_threads, "threads"_a, "The threads large kernels use.");
  m.def("get_num_threads", &fj::num_threads, "The threads large kernels use (default: the machine's cores).");
  m.def("set_kernel_cache_capacity", &fj::set_kernel_cache_capacity, "kernels"_a,
        "Keeps at most `kernels` compiled kernels (least recently used evicted); Error below 1.");
  m.def("kernel_cache_capacity", &fj::kernel_cache_capacity, "The kernel cache's capacity, in kernels.");
  m.def("empty_cache", &fj::empty_cache,
        "Frees the buffers kept for reuse (freed tensors' memory); live tensors keep theirs.");
  m.def("set_disk_cache_dir", &fj::set_disk_cache_dir, "dir"_a,
        "The directory compiled kernels are kept in across processes (\"\" turns the disk cache off).");
  m.def("disk_cache_dir", &fj::disk_cache_dir, "The disk cache's directory (\"\" when off).");
  m.def("set_disk_cache_limit", &fj::set_disk_cache_limit, "bytes"_a,
        "The disk cache's size limit (least recently used entries removed beyond it).");
  m.def("disk_cache_limit", &fj::disk_cache_limit, "The disk cache's size limit, in bytes.");
  m.def("_stats", &stats_dict, "The counters of fusejit::stats() as a dict.");
  m.def("reset_stats", &fj::reset_stats, "Sets every counter of stats() to 0.");
  m.def("target_description", &fj::target_description,
        "The CPU that kernels are compiled for, e.g. \"znver3 (avx2, 8 floats per vector)\".");
}
