"""Tensor, Variable and constant: numpy values that record the ops applied to them.

An op on Tensors computes its value eagerly with the primitive's numpy implementation and, for
every recording tape that tracks one of its inputs, marks the result as tracked by that tape and
keeps a ``Record`` (primitive, params, inputs). Tapes turn records into IR when they
differentiate (``tape.GraphBuilder``); anything they did not record is a constant.
"""

from __future__ import annotations

import threading

import numpy as np

from .compiler.ops import lookup

_LOCAL = threading.local()
_api = None  # runtime.numpy_api, set when it is imported (it imports this module)


def active_tapes() -> list:
    """The tapes entered on this thread, outermost first (tape state is thread-local)."""
    tapes = getattr(_LOCAL, "tapes", None)
    if tapes is None:
        tapes = _LOCAL.tapes = []
    return tapes


def set_active_tapes(tapes: list) -> list:
    old = active_tapes()
    _LOCAL.tapes = tapes
    return old


class Record:
    """How a Tensor was computed: ``prim`` applied to ``inputs`` (Tensors, arrays or Python
    scalars) with static ``params``. Never changed after creation. (A plain class: one is made
    per recorded op, and a frozen dataclass's __init__ costs a microsecond.)"""

    __slots__ = ("prim", "params", "inputs")

    def __init__(self, prim: str, params: tuple, inputs: tuple):
        self.prim, self.params, self.inputs = prim, params, inputs


SCALARS = (bool, int, float, np.generic)


def _user_line() -> str:
    """'file:line: source' of the innermost frame outside symtape (for error messages)."""
    import linecache
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    src = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}, line {frame.f_lineno}: {src}"


class TracerConversionError(TypeError):
    """A traced value (inside st.jit and its transforms) was turned into a Python value."""

    def __init__(self, what: str):
        super().__init__(
            f"Cannot {what} while tracing (st.jit and its transforms, a custom_gradient's "
            f"grad_fn, a primitive's derivative), at {_user_line()}\n"
            "Traced code is compiled once for every later call, so its control flow cannot "
            "depend on array values. Use np.where(cond, a, b) (or np.maximum, np.clip) for "
            "value-dependent choices, or pass the value as a static Python scalar.")


class Tensor:
    """An immutable array value, recorded by the tapes that watch what it was computed from."""

    __slots__ = ("_value", "_rec", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, value, _rec: Record | None = None):
        self._value = value if isinstance(value, np.ndarray) else np.asarray(value)
        self._rec = _rec

    # -- values and metadata ---------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        self._check_concrete("convert a traced value to a numpy array (.numpy())")
        return self._value

    @property
    def shape(self) -> tuple:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d Tensor")
        return self.shape[0]

    def _check_concrete(self, what: str):
        """Inside st.jit tracing, values stand for every later call: refuse to freeze one."""
        for tape in active_tapes():
            if tape._strict and id(self) in tape._tracked:
                raise TracerConversionError(what)

    def __array__(self, dtype=None, copy=None):
        self._check_concrete("convert a traced value to a numpy array (np.asarray, .numpy())")
        if dtype is not None and np.dtype(dtype) != self.dtype:
            return self._value.astype(dtype)
        return self._value.copy() if copy else self._value

    def __repr__(self):
        return f"<st.Tensor: shape={self.shape}, dtype={self.dtype.name}, numpy={self._value!r}>"

    def __bool__(self):
        self._check_concrete("use a traced value as a Python bool (if, while, and, or, bool())")
        return bool(self._value)

    def __float__(self):
        self._check_concrete("convert a traced value to a Python float")
        return float(self._value)

    def __int__(self):
        self._check_concrete("convert a traced value to a Python int")
        return int(self._value)

    def __index__(self):
        self._check_concrete("use a traced value as an index")
        if self.dtype.kind not in "iu":
            raise TypeError("only integer Tensors can be used as an index")
        return int(self._value)

    __hash__ = object.__hash__

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d Tensor")
        return (self[i] for i in range(self.shape[0]))

    def __setitem__(self, key, value):
        raise TypeError("symtape Tensors are immutable: build a new Tensor (e.g. with np.where) "
                        "or use st.Variable(...).assign(...)")

    # -- numpy protocols (implemented in numpy_api) ------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _api.apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _api.apply_function(func, args, kwargs)

    # -- operators ---------------------------------------------------------------------------
    def __add__(self, o): return apply("add", self, o)
    def __radd__(self, o): return apply("add", o, self)
    def __sub__(self, o): return apply("sub", self, o)
    def __rsub__(self, o): return apply("sub", o, self)
    def __mul__(self, o): return apply("mul", self, o)
    def __rmul__(self, o): return apply("mul", o, self)
    def __truediv__(self, o): return apply("div", self, o)
    def __rtruediv__(self, o): return apply("div", o, self)
    def __pow__(self, o): return apply("pow", self, o)
    def __rpow__(self, o): return apply("pow", o, self)
    def __neg__(self): return apply("neg", self)
    def __pos__(self): return self
    def __abs__(self): return apply("abs", self)
    def __lt__(self, o): return apply("less", self, o)
    def __le__(self, o): return apply("less_equal", self, o)
    def __gt__(self, o): return apply("greater", self, o)
    def __ge__(self, o): return apply("greater_equal", self, o)
    def __eq__(self, o): return apply("equal", self, o)
    def __ne__(self, o): return apply("not_equal", self, o)

    def __matmul__(self, o):
        return _api.matmul(self, o)

    def __rmatmul__(self, o):
        return _api.matmul(o, self)

    def __getitem__(self, key):
        return _api.getitem(self, key)

    @property
    def T(self):
        return _api.transpose(self)

    def reshape(self, *shape):
        return _api.reshape(self, shape[0] if len(shape) == 1 else shape)

    # ndarray-style methods, so code written for arrays also runs on Tensors
    def sum(self, axis=None, keepdims=False):
        return np.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return np.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return np.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return np.min(self, axis=axis, keepdims=keepdims)

    def prod(self, axis=None, keepdims=False):
        return np.prod(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims=False):
        return np.var(self, axis=axis, keepdims=keepdims)

    def std(self, axis=None, keepdims=False):
        return np.std(self, axis=axis, keepdims=keepdims)

    def dot(self, other):
        return np.dot(self, other)

    def transpose(self, *axes):
        return np.transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    def squeeze(self, axis=None):
        return np.squeeze(self, axis)

    def clip(self, a_min=None, a_max=None):
        return np.clip(self, a_min, a_max)

    def ravel(self):
        return self.reshape(-1)

    flatten = ravel

    def copy(self):
        return self  # immutable: a copy is the same value

    def astype(self, dtype):
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else apply("cast", self, dtype=dtype)


class Variable(Tensor):
    """A mutable Tensor: ``assign`` replaces its value. Trainable variables used on a tape with
    ``watch_accessed_variables=True`` are watched automatically."""

    __slots__ = ("trainable", "name")
    _count = 0

    def __init__(self, initial_value, trainable=True, name=None, dtype=None):
        value = initial_value.numpy() if isinstance(initial_value, Tensor) else initial_value
        super().__init__(np.array(value, dtype=dtype, copy=True))
        self.trainable = bool(trainable)
        if name is None:
            Variable._count += 1
            name = f"Variable_{Variable._count}"
        self.name = name

    def assign(self, value):
        value = np.asarray(value.numpy() if isinstance(value, Tensor) else value)
        if value.shape != self.shape:
            raise ValueError(f"cannot assign a value of shape {value.shape} to variable "
                             f"{self.name!r} of shape {self.shape}")
        self._value = value.astype(self.dtype, copy=True)
        return self

    def assign_add(self, delta):
        return self.assign(self._value + np.asarray(delta))

    def assign_sub(self, delta):
        return self.assign(self._value - np.asarray(delta))

    def __repr__(self):
        return (f"<st.Variable {self.name!r} shape={self.shape} dtype={self.dtype.name}, "
                f"numpy={self._value!r}>")


def constant(value, dtype=None) -> Tensor:
    """A Tensor holding ``value``. A Tensor already on a tape stays connected (cast if
    ``dtype`` differs); anything else is converted with numpy's default dtypes."""
    if isinstance(value, Tensor):
        if dtype is None or np.dtype(dtype) == value.dtype:
            return value
        return apply("cast", value, dtype=np.dtype(dtype))
    return Tensor(np.array(value, dtype=dtype))


def value_of(x):
    return x._value if isinstance(x, Tensor) else x


def apply(prim: str, *inputs, **params) -> Tensor:
    """Run primitive ``prim`` eagerly and record it on the tapes that track an input.
    (Every eager op runs this: it is written for speed, about 1.5 µs of Python per op.)"""
    impl = _IMPLS.get(prim) or _impl(prim)
    values = [x._value if isinstance(x, Tensor) else x for x in inputs]
    value = impl(*values, **params) if params else impl(*values)
    out = _new_tensor(Tensor)
    out._value = value if type(value) is np.ndarray else np.asarray(value)
    out._rec = None
    tapes = _LOCAL.__dict__.get("tapes")
    if tapes:  # nothing to record without an active tape (the common case outside tapes)
        recorded = False
        for tape in tapes:
            if tape._record_op(inputs, out):
                recorded = True
        if recorded:
            out._rec = Record(prim, (tuple(sorted(params.items())) if len(params) > 1 else
                                     tuple(params.items())), inputs)
    return out


_new_tensor = object.__new__  # a Tensor without __init__'s conversion (apply sets both slots)
_IMPLS: dict = {}  # primitive name -> numpy implementation (registered primitives never change)


def _impl(prim: str):
    impl = _IMPLS[prim] = lookup(prim).impl
    return impl
