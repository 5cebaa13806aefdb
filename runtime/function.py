"""The function API: jit, grad, jacobian, batch_jacobian, hessian, jvp, vjp.

A ``Function`` traces its Python function once per argument signature (array shapes and dtypes,
values of static Python scalars) by running it on Tensors recorded on a private, strict tape;
the records become an IR graph, the transform (if any) differentiates it, and the result is
compiled by the kernel cache. Later calls with the same signature only run the kernel.

Arrays the function reads from its closure or globals are kernel arguments, re-read at every
call, so a loop whose weights change reuses one kernel. Called on Tensors (inside another trace
or under a GradientTape), a Function records its graph on the active tapes, so transforms compose:
``st.jacobian(st.grad(f))`` differentiates the gradient graph again.
"""

from __future__ import annotations

import functools
import inspect as pyinspect
import numbers
import operator
import types
import warnings
import weakref

import numpy as np

from .cache import kernel_for, on_clear
from .compiler import diff
from .compiler.ir import Graph
from .compiler.ops.elementwise import fill
from .tape import BatchMixingWarning, GraphBuilder, _describe, _private_trace, _result_tensor
from .tensor import Tensor, Variable, value_of

_STATIC = (bool, int, float, complex, str, type(None))


def _is_array_like(a) -> bool:
    return isinstance(a, (Tensor, np.ndarray, np.generic, list, tuple)) and not isinstance(
        a, _STATIC) or _is_device(a)


def _is_device(a) -> bool:
    """A CUDA device array (numba's, or anything with ``__cuda_array_interface__``)."""
    return hasattr(a, "__cuda_array_interface__") or bool(getattr(a, "__cuda_ndarray__", False))


def _signature(args, kwargs, device=False):
    """The dispatch key: (shape, dtype) of each array argument, (type, value) of each static.
    ``device``: CUDA device arrays are array arguments too (the CUDA target)."""
    sig = []
    for a in args:
        if type(a) is np.ndarray or isinstance(a, Tensor):
            sig.append((a.shape, a.dtype))
        elif isinstance(a, (np.generic, list, tuple)):
            v = np.asarray(a)
            sig.append((v.shape, v.dtype))
        elif isinstance(a, numbers.Number) or isinstance(a, _STATIC):
            sig.append((type(a), a))
        elif _is_device(a):
            if not device:
                raise TypeError(f"argument of type {type(a).__name__} is a CUDA device array, "
                                "but this function's target is the CPU: use target='cuda' "
                                "(st.jit(f, target='cuda'), ...) or copy it to the host")
            from .cuda import device_info

            sig.append(device_info(a))
        else:
            raise TypeError(f"argument of type {type(a).__name__} is neither an array nor a "
                            "static Python scalar; pass numpy arrays (or Tensors) and numbers")
    return tuple(sig), tuple(sorted(kwargs.items())) if kwargs else ()


def _reference_sites(fn):
    """Where ``fn`` (and functions it wraps) can read arrays from: closure cells and globals."""
    seen = set()
    while fn is not None and id(fn) not in seen:
        seen.add(id(fn))
        code = getattr(fn, "__code__", None)
        if code is not None:
            for cell in fn.__closure__ or ():
                yield ("cell", cell)
            names = set(code.co_names)
            for const in code.co_consts:  # names used by nested functions and lambdas
                if hasattr(const, "co_names"):
                    names |= set(const.co_names)
            for name in names:
                yield ("global", (fn.__globals__, name))
        fn = getattr(fn, "fn", None) or getattr(fn, "__wrapped__", None)


def _captures_as_tensors(fn):
    """A copy of ``fn`` that reads its captured arrays (closure cells, globals it names) as
    Tensors, so values derived from them inside the body (``W.T``, ``np.exp(log_s)``) are traced
    rather than frozen; and ``[(tensor, getter)]``, the getter re-reading the original site."""
    if not isinstance(fn, types.FunctionType):
        return fn, []
    captures, cells = [], []
    for cell in fn.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # not yet assigned
            value = None
        if isinstance(value, np.ndarray):
            t = Tensor(value)
            captures.append((t, lambda c=cell: value_of(c.cell_contents)))
            cells.append(types.CellType(t))
        else:
            cells.append(cell)
    namespace = fn.__globals__
    new_globals = None
    for kind, site in _reference_sites(fn):
        if kind != "global" or site[0] is not namespace:
            continue
        name = site[1]
        if isinstance(namespace.get(name), np.ndarray):
            if new_globals is None:
                new_globals = dict(namespace)
            t = Tensor(namespace[name])
            captures.append((t, lambda n=name: value_of(namespace[n])))
            new_globals[name] = t
    if not captures:
        return fn, []
    copy = types.FunctionType(fn.__code__, new_globals or namespace, fn.__name__,
                              fn.__defaults__, tuple(cells) if fn.__closure__ else None)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy, captures


def _getter(obj, fn):
    """A callable returning the current value of the captured array ``obj`` (an array, a
    Variable, or a Tensor that numpy_api wrapped around an array)."""
    if isinstance(obj, Variable):
        return lambda: obj._value  # Variables may be assigned between calls
    candidates = [obj, obj._value] if isinstance(obj, Tensor) else [obj]
    for kind, site in _reference_sites(fn):
        if kind == "cell":
            try:
                if any(site.cell_contents is c for c in candidates):
                    return lambda cell=site: value_of(cell.cell_contents)
            except ValueError:  # empty cell
                continue
        else:
            namespace, name = site
            if any(namespace.get(name) is c for c in candidates):
                return lambda ns=namespace, n=name: value_of(ns[n])
    return lambda: value_of(obj)  # held elsewhere: in-place changes are still seen


def _c_strides(shape, itemsize) -> tuple:
    """The strides numpy gives a new C-contiguous array of ``shape`` (all 0 when it is empty)."""
    if 0 in shape:
        return (0,) * len(shape)
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _fast_path(entry):
    """For the common call, only C-contiguous arrays of the traced shapes and dtypes (arguments
    and the current values of captured arrays): a function that checks that and calls the numba
    function directly (returning None when the check fails, for the general path to handle).
    None where it does not apply (0-d arrays are stored as (1,))."""
    graph = entry.kernel.graph
    if getattr(entry.kernel, "target", "cpu") != "cpu":
        return False
    if any(a.ndim == 0 for a in graph.args) or any(o.ndim == 0 for o in graph.outputs):
        return False
    fn, layout = entry.kernel.call, entry.layout
    # C-contiguous is checked as "the strides of a C array of this shape" (a.flags builds an
    # object); a dtype that is not the very same object takes the general path, which is right
    specs = [(a.shape, a.dtype, _c_strides(a.shape, a.dtype.itemsize)) for a in graph.args]
    n = len(specs) - len(entry.externals)
    ndarray = np.ndarray
    if n == 1 and not entry.externals:  # the most common case, spelled out: ~0.3 µs
        (shape, dtype, strides), = specs

        def fast(args):
            if len(args) == 1:
                a = args[0]
                if (type(a) is ndarray and a.dtype is dtype and a.shape == shape
                        and a.strides == strides):
                    return layout(fn(a))
            return None
        return fast

    getters = [get for get, _, _ in entry.externals]

    def fast(args):
        if len(args) != n:
            return None
        values = list(args) + [get() for get in getters]
        for a, (shape, dtype, strides) in zip(values, specs):
            if type(a) is not ndarray or a.dtype is not dtype or a.shape != shape or (
                    a.strides != strides):
                return None
        return layout(fn(*values))

    return fast


class _Entry:
    """One traced and compiled signature."""

    def __init__(self, kernel, graph, traced, n_args, externals, layout):
        self.fast = None  # set after the first call (see _fast_path); False: not applicable
        self.kernel, self.graph, self.traced = kernel, graph, traced
        self.n_args = n_args
        self.externals = externals  # [(getter, shape, dtype)]
        self.layout = layout  # how to arrange kernel outputs into the result

    def external_values(self):
        """Current values of captured arrays, or None if one changed shape or dtype."""
        if not self.externals:
            return ()
        values = []
        for get, shape, dtype in self.externals:
            v = np.asarray(get())
            if v.shape != shape or v.dtype != dtype:
                return None
            values.append(v)
        return values


_LIVE_FUNCTIONS = weakref.WeakSet()


def _forget_compiled():
    for f in list(_LIVE_FUNCTIONS):
        f._entries.clear()
        f._last = None


on_clear(_forget_compiled)  # st.clear_cache() makes every Function retrace and recompile


class Function:
    """A compiled callable for ``fn`` (``kind`` "jit") or one of its derivatives."""

    def __init__(self, fn, kind="jit", argnums=0, name=None, target="cpu"):
        if target not in ("cpu", "cuda"):
            raise ValueError(f"unknown target {target!r}: use 'cpu' or 'cuda'")
        if target == "cuda":
            from .cuda import require

            require()  # RuntimeError saying what to install (or set) when CUDA cannot run here
        _LIVE_FUNCTIONS.add(self)
        self.fn = fn
        self.kind = kind
        self.argnums = argnums
        self.target = target
        self.trace_count = 0
        self._entries = {}
        self._last = None
        base = getattr(fn, "__name__", type(fn).__name__)
        self.__name__ = name or (base if kind == "jit" else f"{kind}_of_{base}")
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    def __repr__(self):
        target = "" if self.target == "cpu" else f" target={self.target!r}"
        return f"<symtape.Function {self.__name__}{target}>"

    # -- calling -------------------------------------------------------------------------------
    def _bind(self, args, kwargs):
        """Move keyword arguments to their positions (arrays passed by keyword are ordinary
        array arguments, as in JAX); keyword-only ones must be static."""
        if not kwargs:
            return args, kwargs
        try:
            bound = pyinspect.signature(self.fn).bind(*args, **kwargs)
        except (TypeError, ValueError):
            return args, kwargs
        for name, value in bound.kwargs.items():
            if _is_array_like(value):
                raise TypeError(f"{self.__name__}: array passed to keyword-only parameter "
                                f"{name!r}; pass it positionally (keyword-only arguments are "
                                "static)")
        return bound.args, bound.kwargs

    def __call__(self, *args, **kwargs):
        fast = self._last.fast if self._last is not None and not kwargs else None
        if fast:
            out = fast(args)
            if out is not None:
                return out
        if kwargs:
            args, kwargs = self._bind(args, kwargs)
        key = _signature(args, kwargs, self.target == "cuda")
        entry = self._entries.get(key)
        ext = entry.external_values() if entry is not None else None
        if ext is None:
            entry = self._trace(args, kwargs)
            self._entries[key] = entry
            ext = entry.external_values()
        self._last = entry
        arrays = [a for a in args if _is_array_like(a)]
        values = entry.kernel(*[a if type(a) is np.ndarray or _is_device(a)
                                else np.asarray(value_of(a)) for a in arrays], *ext)
        if any(isinstance(a, Tensor) for a in args):  # inside a trace or under a tape
            objects = [a if isinstance(a, Tensor) else np.asarray(a) for a in arrays]
            objects += [np.asarray(get()) for get, _, _ in entry.externals]
            values = [_result_tensor(v, entry.graph, k, objects) for k, v in enumerate(values)]
        elif entry.fast is None:
            entry.fast = _fast_path(entry)
        return entry.layout(values)

    # -- tracing -------------------------------------------------------------------------------
    def _argnums(self, args):
        nums = (self.argnums,) if isinstance(self.argnums, int) else tuple(self.argnums)
        for n in nums:
            if not -len(args) <= n < len(args):
                raise ValueError(f"argnums {self.argnums!r} is out of range for "
                                 f"{self.__name__} called with {len(args)} positional "
                                 "argument(s)")
            if not _is_array_like(args[n]):
                raise TypeError(f"argnums {self.argnums!r} selects argument {n} of "
                                f"{self.__name__}, a static {type(args[n]).__name__}: only "
                                "array arguments can be differentiated")
        return [n % len(args) for n in nums]

    def _trace(self, args, kwargs):
        self.trace_count += 1
        argnums = self._argnums(args) if self.kind != "jit" else []
        leaves, call_args = [], []
        for a in args:
            if _is_array_like(a):
                if _is_device(a):  # traced on a host copy (once per signature)
                    from .cuda import to_host

                    v = to_host(a)
                else:
                    v = np.array(value_of(a))
                leaf = Tensor(v)
                leaves.append(leaf)
                call_args.append(leaf)
            else:
                call_args.append(a)
        fn, captures = _captures_as_tensors(self.fn)
        with _private_trace(leaves + [t for t, _ in captures], strict=True) as tape:
            out = fn(*call_args, **kwargs)
        multi = isinstance(out, (tuple, list))
        outs = list(out) if multi else [out]
        for o in outs:
            if not isinstance(o, (Tensor, np.ndarray, numbers.Number)) or isinstance(o, bool):
                raise TypeError(f"{self.__name__} returned a {type(o).__name__}; a traced "
                                "function must return arrays (or a tuple of arrays)")
        builder = GraphBuilder(tape._tracked)
        srcs = [builder.source(leaf) for leaf in leaves]
        for t, _ in captures:
            builder.add_arg(t)
        ys = [builder.node_of(o if not isinstance(o, numbers.Number) else np.asarray(o))
              for o in outs]
        traced = Graph(builder.args, ys, self.__name__)
        arg_pos = [sum(_is_array_like(b) for b in args[:n]) for n in argnums]
        outputs, layout = _TRANSFORMS[self.kind](self, ys, [srcs[p] for p in arg_pos], multi,
                                                  isinstance(self.argnums, int))
        graph = Graph(builder.args, outputs, self.__name__)
        kernel = kernel_for(graph, self.__name__, self.target)
        getters = [get for _, get in captures] + [
            _getter(obj, self.fn) for obj in builder.arg_objects[len(leaves) + len(captures):]]
        externals = [(get, np.shape(v), np.asarray(v).dtype)
                     for get, v in zip(getters, builder.values[len(leaves):])]
        return _Entry(kernel, graph, traced, len(leaves), externals, layout)

    # -- inspection ----------------------------------------------------------------------------
    def _entry(self):
        if self._last is None:
            raise RuntimeError(f"{self.__name__} has not been called yet: call it once with "
                               "example arguments (or use st.inspect(f, *args))")
        return self._last

    @property
    def source(self) -> str:
        """The generated numba module (numba.cuda for target="cuda") for the last-used
        signature."""
        return self._entry().kernel.source

    def symbolic(self):
        """The compiled result (derivative) for the last-used signature as a sympy Matrix (a
        tuple of them for several outputs), in symbols named after the arguments: ``x`` for a
        scalar, ``x0, x1, ...`` for a vector, ``x_0_1`` for higher ranks. Jacobians have one row
        per output element and one column per input element."""
        from . import symbolic

        e = self._entry()
        graph = e.kernel.graph
        n_in = sum(int(np.prod(a.shape, dtype=np.int64)) for a in graph.args[:e.n_args])
        n_out = sum(o.size for o in graph.outputs)
        if n_in > symbolic.MAX_SYMBOLIC_INPUTS or n_out > symbolic.MAX_SYMBOLIC_OUTPUTS:
            raise ValueError(
                f"{self.__name__} is too large to show symbolically: {n_in} input elements and "
                f"{n_out} output elements (limits {symbolic.MAX_SYMBOLIC_INPUTS} and "
                f"{symbolic.MAX_SYMBOLIC_OUTPUTS}); read .source or .ir instead")
        names = _argument_names(self.fn, e.n_args)
        inputs = symbolic.input_symbols(names, [a.shape for a in graph.args[:e.n_args]])
        inputs += [np.asarray(get()) for get, _, _ in e.externals]
        outs = symbolic.evaluate(graph, inputs)
        mats = [symbolic.as_matrix(v, _row_axes(self.kind, v, e)) for v in outs]
        return mats[0] if len(mats) == 1 else tuple(mats)

    def latex(self) -> str:
        """LaTeX of ``symbolic()``."""
        import sympy as sp

        m = self.symbolic()
        return sp.latex(m) if not isinstance(m, tuple) else ",\\quad ".join(map(sp.latex, m))

    @property
    def ir(self) -> str:
        """The traced graph and the differentiated, simplified graph (last-used signature)."""
        e = self._entry()
        return (f"# traced: {self.__name__}\n{e.traced.pretty()}\n\n"
                f"# compiled ({self.kind}, simplified)\n{e.kernel.graph.pretty()}\n")


def _argument_names(fn, n):
    """Names of the array arguments, for symbolic display (x0, x1, ... when unknown)."""
    while isinstance(fn, Function) or hasattr(fn, "__wrapped__"):
        fn = fn.fn if isinstance(fn, Function) else fn.__wrapped__
    try:
        params = [p.name for p in pyinspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = params[:n] + [f"arg{k}" for k in range(len(params), n)]
    if len(set(names)) != len(names):
        names = [f"arg{k}" for k in range(n)]
    return names


def _row_axes(kind, value, entry):
    """How many leading axes of an output index the rows of its Matrix."""
    y = entry.traced.outputs[0]
    if kind == "jacobian":
        return y.ndim
    if kind == "batch_jacobian":
        return y.ndim
    if kind == "hessian":
        return value.ndim // 2
    return value.ndim  # values, gradients, jvp/vjp results: one column


def inspect(f, *example_args, file=None):
    """Print the generated source, the IR and (when small enough) the symbolic form of ``f``
    (a symtape Function; a plain function is wrapped with st.jit) at ``example_args``."""
    import sys

    out = file or sys.stdout
    f = f if isinstance(f, Function) else jit(f)
    f(*example_args)
    print(f"=== {f.__name__}: generated source ===", file=out)
    print(f.source, file=out)
    print(f"=== {f.__name__}: IR ===", file=out)
    print(f.ir, file=out)
    print(f"=== {f.__name__}: symbolic ===", file=out)
    try:
        print(f.symbolic(), file=out)
    except (ValueError, NotImplementedError) as exc:
        print(f"(not shown: {exc})", file=out)
    return f


def _scalar_output(fn, ys, multi, what):
    if multi or len(ys) != 1 or ys[0].ndim != 0:
        shape = [y.shape for y in ys] if multi else ys[0].shape
        raise ValueError(f"{what} needs a function with a single scalar output; "
                         f"{fn.__name__} returned shape {shape}")
    return ys[0]


def _zeros_if_none(nodes, shapes, dtype):
    return [n if n is not None else fill(0, s, dtype) for n, s in zip(nodes, shapes)]


def _nest(values, multi, single_arg, nargs):
    """Arrange a flat list (outputs x argnums) as JAX does: tuples only where asked for."""
    rows = [values[k * nargs:(k + 1) * nargs] for k in range(len(values) // nargs)]
    rows = [r[0] if single_arg else tuple(r) for r in rows]
    return tuple(rows) if multi else rows[0]


_FIRST = operator.itemgetter(0)  # one output, one argument: on every call's path, so no lambda


def _nesting(multi, single_arg, nargs):
    return _FIRST if not multi and single_arg else (
        lambda v: _nest(v, multi, single_arg, nargs))


def _t_jit(self, ys, xs, multi, single):
    return ys, (tuple if multi else _FIRST)


def _t_grad(self, ys, xs, multi, single):
    y = _scalar_output(self, ys, multi, "grad")
    gs = _zeros_if_none(diff.gradient(y, xs), [x.shape for x in xs], y.dtype)
    return gs, (_FIRST if single else tuple)


def _t_jacobian(self, ys, xs, multi, single):
    outs = []
    for y in ys:
        js = diff.jacobian(y, xs)
        outs += _zeros_if_none(js, [y.shape + x.shape for x in xs], y.dtype)
    return outs, _nesting(multi, single, len(xs))


def _t_batch_jacobian(self, ys, xs, multi, single):
    outs = []
    for y in ys:
        for x in xs:
            for what, n in (("output", y), ("input", x)):
                if n.ndim < 2:
                    raise ValueError(f"batch_jacobian needs an {what} of rank >= 2 with the "
                                     f"batch on axis 0; {self.__name__} has {what} shape "
                                     f"{n.shape}. Use st.jacobian for a single example.")
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"batch_jacobian: the batch sizes differ: output shape "
                                 f"{y.shape}, input shape {x.shape} (axis 0 must match)")
            j, mixing = diff.batch_jacobian(y, x)
            if mixing is not None:
                warnings.warn(BatchMixingWarning(
                    f"batch_jacobian of {self.__name__}: the computation mixes examples across "
                    f"the batch axis at op '{_describe(mixing)}'. Returning the exact "
                    "per-example blocks dy[b]/dx[b] of the full Jacobian."), stacklevel=4)
            outs += _zeros_if_none([j], [y.shape + x.shape[1:]], y.dtype)
    return outs, _nesting(multi, single, len(xs))


def _t_hessian(self, ys, xs, multi, single):
    y = _scalar_output(self, ys, multi, "hessian")
    gs = _zeros_if_none(diff.gradient(y, xs), [x.shape for x in xs], y.dtype)
    outs = []
    for g in gs:
        outs += _zeros_if_none(diff.jacobian(g, xs, "forward"),
                               [g.shape + x.shape for x in xs], y.dtype)
    return outs, (lambda v: _nest(v, True, single, len(xs)) if not single else v[0])


def _t_jvp(self, ys, xs, multi, single):
    """Graph args: primals then tangents (the tangents are the second half of ``xs``)."""
    n = len(xs) // 2
    prim, tans = xs[:n], xs[n:]
    outs = list(ys) + [diff.jvp(y, prim, tans) for y in ys]
    k = len(ys)
    return outs, (lambda v: (tuple(v[:k]), tuple(v[k:])) if multi else (v[0], v[1]))


def _t_vjp(self, ys, xs, multi, single):
    """Graph args: primals then cotangents (one per output)."""
    n = len(xs) - len(ys)
    prim, cots = xs[:n], xs[n:]
    total = [None] * n
    for y, c in zip(ys, cots):
        for k, g in enumerate(diff.gradient(y, prim, c)):
            if g is not None:
                total[k] = g if total[k] is None else diff._add(total[k], g, y.dtype)
    outs = _zeros_if_none(total, [x.shape for x in prim], ys[0].dtype)
    return outs, tuple


_TRANSFORMS = {"jit": _t_jit, "grad": _t_grad, "jacobian": _t_jacobian,
               "batch_jacobian": _t_batch_jacobian, "hessian": _t_hessian,
               "jvp": _t_jvp, "vjp": _t_vjp}


# -- public constructors -------------------------------------------------------------------------

def jit(fn=None, *, target="cpu"):
    """Compile ``fn`` (a function of numpy arrays; Python scalars are static). ``target``:
    "cpu" (numba njit) or "cuda" (numba.cuda kernels; inputs may be device arrays, see
    ``symtape.cuda``), here and in the transforms below."""
    if fn is None:
        return functools.partial(jit, target=target)
    if isinstance(fn, Function) and fn.kind == "jit" and fn.target == target:
        return fn
    return Function(fn, "jit", target=target)


def grad(fn, argnums=0, *, target="cpu"):
    """Gradient of a scalar function w.r.t. argument(s) ``argnums``."""
    return Function(fn, "grad", argnums, target=target)


def jacobian(fn, argnums=0, *, target="cpu"):
    """Jacobian: shape ``f(x).shape + x.shape`` (forward or reverse accumulation by shape)."""
    return Function(fn, "jacobian", argnums, target=target)


def batch_jacobian(fn, argnums=0, *, target="cpu"):
    """Per-example Jacobian: shape ``(B,) + out.shape[1:] + x.shape[1:]``."""
    return Function(fn, "batch_jacobian", argnums, target=target)


def hessian(fn, argnums=0, *, target="cpu"):
    """Hessian of a scalar function: shape ``x.shape + x.shape``."""
    return Function(fn, "hessian", argnums, target=target)


_PAIRED = weakref.WeakKeyDictionary()


def _paired(fn, kind, n_primals, n_extra):
    """The cached Function computing ``kind`` for ``fn``, called with the primals followed by
    ``n_extra`` tangents/cotangents (which ``fn`` itself does not see)."""
    per_fn = _PAIRED.setdefault(fn, {}) if _weakrefable(fn) else {}
    key = (kind, n_primals, n_extra)
    if key not in per_fn:
        def traced(*args):
            return fn(*args[:n_primals])
        traced.__name__ = getattr(fn, "__name__", "f")
        traced.__wrapped__ = fn
        argnums = tuple(range(n_primals + n_extra)) if kind != "jit" else 0
        per_fn[key] = Function(traced, kind, argnums, name=f"{kind}_of_{traced.__name__}")
    return per_fn[key]


def _weakrefable(fn):
    try:
        weakref.ref(fn)
        return True
    except TypeError:
        return False


def jvp(fn, primals, tangents):
    """``(fn(*primals), J @ tangents)``: the value and the directional derivative."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    for p, t in zip(primals, tangents):
        if np.shape(p) != np.shape(t):
            raise ValueError(f"jvp: tangent shape {np.shape(t)} does not match primal shape "
                             f"{np.shape(p)}")
    return _paired(fn, "jvp", len(primals), len(primals))(*primals, *tangents)


def vjp(fn, *primals):
    """``(fn(*primals), vjp_fn)`` where ``vjp_fn(cotangent)`` returns one cotangent per primal."""
    out = _paired(fn, "jit", len(primals), 0)(*primals)
    outs = out if isinstance(out, tuple) else (out,)
    f = _paired(fn, "vjp", len(primals), len(outs))

    def vjp_fn(*cotangents):
        if len(cotangents) != len(outs):
            raise ValueError(f"vjp_fn takes {len(outs)} cotangent(s), got {len(cotangents)}")
        for c, o in zip(cotangents, outs):
            if np.shape(c) != np.shape(o):
                raise ValueError(f"vjp_fn: cotangent shape {np.shape(c)} does not match the "
                                 f"output shape {np.shape(o)}")
        return f(*primals, *cotangents)

    return out, vjp_fn
