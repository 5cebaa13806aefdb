"""GradientTape, stop_gradient, custom_gradient: TensorFlow's semantics over symtape's compiler.

One rule gives stop_recording, reset, several tapes and nested tapes: a tape *tracks* the tensors
it watches and the results of ops it recorded (ops with a tracked input, run while it was
recording). When it differentiates, ``GraphBuilder`` turns the records it tracked into IR; every
other tensor is a constant whose value is a kernel argument. Derivatives come from compiled
kernels; their results are recorded on the tapes still active (as the derivative graph), so an
outer tape differentiates them again.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import warnings

import numpy as np

from .cache import kernel_for, on_clear
from .compiler import diff
from .compiler.ir import Graph, arg, rebuild
from .compiler.ops import lookup
from .compiler.ops.elementwise import fill
from .compiler.ops.special import custom_vjp
from .tensor import (SCALARS, Record, Tensor, Variable, active_tapes, apply, set_active_tapes,
                     value_of)


class UnconnectedGradients(str, enum.Enum):
    """What a gradient is where the target does not depend on the source."""

    NONE = "none"
    ZERO = "zero"


class BatchMixingWarning(UserWarning):
    """batch_jacobian found an op that mixes examples across the batch axis."""


# -- nested structures (sources may be a tensor, a list/tuple or a dict, nested) -----------------

def _flatten(structure):
    if isinstance(structure, Tensor):  # the common case: one source
        return [structure]
    if isinstance(structure, dict):
        return [leaf for k in structure for leaf in _flatten(structure[k])]
    if isinstance(structure, (list, tuple)):
        return [leaf for s in structure for leaf in _flatten(s)]
    return [structure]


def _unflatten(structure, leaves):
    if isinstance(structure, Tensor):
        return leaves[0]
    it = iter(leaves)

    def build(s):
        if isinstance(s, dict):
            return {k: build(v) for k, v in s.items()}
        if isinstance(s, (list, tuple)):
            return type(s)(build(v) for v in s)
        return next(it)
    return build(structure)


# -- records -> IR -------------------------------------------------------------------------------

class GraphBuilder:
    """Turns the records a tape tracked into IR nodes. Sources and every untracked tensor or array
    become graph arguments (``args`` / ``values``); Python scalars become constants."""

    def __init__(self, tracked):
        self.tracked = tracked  # id -> tensor, the tape's tracked set
        self.memo = {}
        self.args, self.values, self.arg_objects = [], [], []

    def child(self, tracked, memo):
        """A builder for a nested trace (custom gradients) sharing this one's arguments."""
        sub = GraphBuilder(tracked)
        sub.args, sub.values, sub.arg_objects = self.args, self.values, self.arg_objects
        sub.memo = dict(memo)
        return sub

    def add_arg(self, obj):
        value = np.asarray(value_of(obj))
        node = arg(len(self.args), value.shape, value.dtype)
        self.args.append(node)
        self.values.append(value)
        self.arg_objects.append(obj)
        self.memo[id(obj)] = node
        return node

    def source(self, t):
        return self.memo.get(id(t)) or self.add_arg(t)

    def node_of(self, root):
        """The IR node for ``root`` (a Tensor, array or Python scalar)."""
        if isinstance(root, SCALARS):
            return root
        stack = [root]
        while stack:
            t = stack[-1]
            if id(t) in self.memo:
                stack.pop()
                continue
            rec = t._rec if isinstance(t, Tensor) and id(t) in self.tracked else None
            if rec is None:
                self.add_arg(t)
                stack.pop()
                continue
            pending = [x for x in rec.inputs
                       if not isinstance(x, SCALARS) and id(x) not in self.memo]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self.memo[id(t)] = self._build(rec)
        return self.memo[id(root)]

    def _build(self, rec: Record):
        ins = [x if isinstance(x, SCALARS) else self.memo[id(x)] for x in rec.inputs]
        params = dict(rec.params)
        if rec.prim == "graph_call":
            graph, k = params["graph"], params["output"]
            by_index = dict(enumerate(ins))
            return rebuild([graph.outputs[k]],
                           lambda n, _: by_index[n.params[0]] if n.prim == "arg" else None)[0]
        if rec.prim == "custom_gradient":
            call = params["call"]
            inner = self.child(call.tracked, {id(a): n for a, n in zip(call.inputs, ins)})
            y = inner.node_of(call.output)
            return custom_vjp(y, ins, _CustomRule(call, self))
        return lookup(rec.prim).build(*ins, **params)


# -- tapes ---------------------------------------------------------------------------------------

class GradientTape:
    """Records operations for automatic differentiation (tf.GradientTape's API and semantics)."""

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self._persistent = bool(persistent)
        self._watch_accessed_variables = bool(watch_accessed_variables)
        self._tracked = {}  # id -> Tensor: watched tensors and recorded results
        self._watched = {}  # id -> Tensor/Variable, in watch order
        self._recording = False
        self._used = False
        self._strict = False

    # context management
    def __enter__(self):
        active_tapes().append(self)
        self._recording = True
        return self

    def __exit__(self, *exc):
        tapes = active_tapes()
        for k in range(len(tapes) - 1, -1, -1):
            if tapes[k] is self:
                del tapes[k]
                break
        self._recording = False
        return False

    @contextlib.contextmanager
    def stop_recording(self):
        """Temporarily stop recording: results computed inside are constants for this tape."""
        if not self._recording:
            raise RuntimeError("GradientTape.stop_recording() called on a tape that is not "
                               "recording: use it inside the tape's `with` block")
        self._recording = False
        try:
            yield
        finally:
            self._recording = True

    def reset(self):
        """Forget everything recorded and watched so far."""
        self._tracked.clear()
        self._watched.clear()

    def watch(self, tensor):
        """Watch a Tensor, a Variable, or a nested list/tuple/dict of them."""
        for t in _flatten(tensor):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"GradientTape.watch() takes symtape Tensors or Variables, got "
                    f"{type(t).__name__}. Wrap the value first: x = st.constant(value) (or "
                    "st.Variable(value)), then watch x and compute with x.")
            self._watch(t)

    def _watch(self, t):
        self._tracked[id(t)] = t
        self._watched[id(t)] = t

    def watched_variables(self):
        return tuple(v for v in self._watched.values() if isinstance(v, Variable))

    def _record_op(self, inputs, out) -> bool:
        """Called for every op (``inputs``: Tensors, arrays, Python scalars): track ``out`` if
        this tape is recording and tracks an input."""
        if not self._recording:
            return False
        tracked = self._tracked
        if self._watch_accessed_variables:
            for x in inputs:
                if isinstance(x, Variable) and x.trainable and id(x) not in tracked:
                    self._watch(x)
        for x in inputs:
            if id(x) in tracked:  # only Tensors are tracked (an array's id is never there)
                tracked[id(out)] = out
                return True
        return False

    def _check_use(self):
        if self._used and not self._persistent:
            raise RuntimeError(
                "A non-persistent GradientTape can only be used to compute one set of gradients "
                "(or jacobians). Create it with st.GradientTape(persistent=True) to call "
                "gradient/jacobian several times.")
        self._used = True

    # differentiation
    def gradient(self, target, sources, output_gradients=None,
                 unconnected_gradients=UnconnectedGradients.NONE):
        """d(sum of target, weighted by output_gradients)/d source, mirroring ``sources``."""
        self._check_use()
        targets = _flatten(target)
        weights = _flatten(output_gradients) if output_gradients is not None else [None] * len(
            targets)
        if len(weights) != len(targets):
            raise ValueError(f"output_gradients has {len(weights)} entries for {len(targets)} "
                             "targets")

        def derive(ys, ws, xs):
            outs = [None] * len(xs)
            live = [(k, x) for k, x in enumerate(xs) if x is not None]
            for y, w in zip(ys, ws):
                if y is None:
                    continue
                if w is not None and w.shape != y.shape:
                    raise ValueError(f"output_gradients shape {w.shape} does not match the "
                                     f"target shape {y.shape}")
                for (k, _), g in zip(live, diff.gradient(y, [x for _, x in live], w)):
                    if g is not None:
                        outs[k] = g if outs[k] is None else lookup("add").build(outs[k], g)
            return outs, None

        flat = _flatten(sources)
        results = self._differentiate("gradient", targets, weights, flat, derive,
                                      unconnected_gradients, lambda s: s.shape)
        return _unflatten(sources, results)

    def jacobian(self, target, sources, unconnected_gradients=UnconnectedGradients.NONE,
                 parallel_iterations=None, experimental_use_pfor=True):
        """dtarget/dsource for each source: shape target.shape + source.shape."""
        self._check_use()
        if not isinstance(target, Tensor):
            raise TypeError(f"jacobian target must be a single Tensor, got {type(target).__name__}")

        def derive(ys, ws, xs):
            (y,) = ys
            outs = [None] * len(xs)
            if y is not None:
                live = [(k, x) for k, x in enumerate(xs) if x is not None]
                for (k, _), j in zip(live, diff.jacobian(y, [x for _, x in live])):
                    outs[k] = j
            return outs, None

        flat = _flatten(sources)
        results = self._differentiate("jacobian", [target], [None], flat, derive,
                                      unconnected_gradients, lambda s: target.shape + s.shape)
        return _unflatten(sources, results)

    def batch_jacobian(self, target, source, unconnected_gradients=UnconnectedGradients.NONE,
                       parallel_iterations=None, experimental_use_pfor=True):
        """Per-example Jacobians: shape (B,) + target.shape[1:] + source.shape[1:]."""
        self._check_use()
        for what, t in (("target", target), ("source", source)):
            if not isinstance(t, Tensor):
                raise TypeError(f"batch_jacobian {what} must be a Tensor, got {type(t).__name__}")
            if t.ndim < 2:
                raise ValueError(
                    f"batch_jacobian needs a {what} of rank >= 2 with the batch on axis 0; got "
                    f"{what} shape {t.shape}. For a single example use tape.jacobian(target, "
                    "source); for a batch of scalars, add an axis (x[:, None]).")
        if target.shape[0] != source.shape[0]:
            raise ValueError(
                f"Need first dimension of target shape {target.shape} and source shape "
                f"{source.shape} to match: batch_jacobian pairs example b of the target with "
                "example b of the source.")

        def derive(ys, ws, xs):
            (y,), (x,) = ys, xs
            if y is None or x is None:
                return [None], None
            out, mixing = diff.batch_jacobian(y, x)
            warning = None if mixing is None else (
                f"batch_jacobian: the computation mixes examples across the batch axis at op "
                f"'{_describe(mixing)}' (examples are not independent, e.g. a mean over the "
                "batch or batch norm in training mode). Returning the exact per-example blocks "
                "dy[b]/dx[b] of the full Jacobian; the cross-example terms are not shown.")
            return [out], warning

        shape = (source.shape[0],) + target.shape[1:] + source.shape[1:]
        (result,) = self._differentiate("batch_jacobian", [target], [None], [source], derive,
                                        unconnected_gradients, lambda s: shape)
        return result

    def _differentiate(self, kind, targets, weights, sources, derive, unconnected, shape_of):
        """Shared by gradient/jacobian/batch_jacobian: find (or build and compile) the derivative
        kernel for this recorded structure, run it on the current values, wrap the results.

        The cache key is computed by one walk over the records (no IR, no differentiation), so a
        loop that records the same computation again only pays for the walk and the kernel."""
        if unconnected is not UnconnectedGradients.NONE:
            unconnected = UnconnectedGradients(unconnected)
        live = self._usable_sources(sources)
        roots = [t for t in targets if isinstance(t, Tensor) and id(t) in self._tracked]
        roots += [w for w in weights if w is not None]
        parts, objects, refs, cacheable = _walk(self._tracked, roots, live)
        key = (kind, tuple(parts),
               tuple(refs.get(id(t)) if isinstance(t, Tensor) and id(t) in self._tracked
                     else None for t in targets),
               tuple(None if w is None else refs[id(w)] for w in weights),
               tuple(None if s is None else refs[id(s)] for s in live))
        entry = _DERIVATIVES.get(key) if cacheable else None
        if entry is None:
            entry = self._compile(kind, targets, weights, live, objects, derive)
            if cacheable and entry.cacheable:
                if len(_DERIVATIVES) >= MAX_CACHED_DERIVATIVES:
                    _DERIVATIVES.clear()
                _DERIVATIVES[key] = entry
        if entry.warning:
            warnings.warn(BatchMixingWarning(entry.warning), stacklevel=3)
        results = [None] * len(sources)
        if entry.kernel is not None:
            args = [a if isinstance(a := value_of(o), np.ndarray) else np.asarray(a)
                    for o in objects]
            values = entry.kernel(*args)
            for k, value in zip(entry.live, values):
                results[k] = _result_tensor(value, entry.graph, entry.live.index(k), objects)
        for k, s in enumerate(sources):
            if results[k] is None and unconnected is UnconnectedGradients.ZERO:
                dtype = s.dtype if isinstance(s, Tensor) else np.float64
                results[k] = Tensor(np.zeros(shape_of(s), dtype))
        return results

    def _compile(self, kind, targets, weights, live, objects, derive):
        builder = GraphBuilder(self._tracked)
        for o in objects:
            builder.add_arg(o)
        n_args = len(builder.args)
        ys = [builder.node_of(t) if isinstance(t, Tensor) and id(t) in self._tracked else None
              for t in targets]
        ws = [None if w is None else builder.node_of(w) for w in weights]
        xs = [None if s is None else builder.node_of(s) for s in live]
        outputs, warning = derive(ys, ws, xs)
        live_k = [k for k, o in enumerate(outputs) if o is not None]
        entry = _Derivative(warning, live_k, cacheable=len(builder.args) == n_args)
        if live_k:
            entry.graph = Graph(builder.args, [outputs[k] for k in live_k])
            entry.kernel = kernel_for(entry.graph, kind)
        if not entry.cacheable:  # a custom gradient added arguments: pass them too
            objects[:] = builder.arg_objects
        return entry

    def _usable_sources(self, sources):
        """The sources that can have a gradient (watched, floating); None for the others."""
        usable = []
        for s in sources:
            if not isinstance(s, Tensor):
                raise TypeError(f"sources must be symtape Tensors or Variables, got "
                                f"{type(s).__name__}; wrap values with st.constant(...)")
            if s.dtype.kind not in "fc":
                warnings.warn(f"The dtype of the source tensor must be floating (e.g. float32 or "
                              f"float64), got {s.dtype.name}: its gradient is None.", stacklevel=4)
                usable.append(None)
            else:
                usable.append(s if id(s) in self._tracked else None)
        return usable


MAX_CACHED_DERIVATIVES = 1024
_DERIVATIVES: dict = {}
on_clear(_DERIVATIVES.clear)  # st.clear_cache() forgets these kernels too


class _Derivative:
    """A compiled derivative for one recorded structure (see GradientTape._differentiate)."""

    def __init__(self, warning, live, cacheable):
        self.warning, self.live, self.cacheable = warning, live, cacheable
        self.graph = self.kernel = None


def _walk(tracked, roots, sources):
    """The structure of what ``roots`` were computed from, as GraphBuilder will see it: a list of
    parts (one per argument or record, inputs referring to earlier parts by position), the
    argument objects in GraphBuilder's order (sources first), and each tensor's part index.
    (This runs on every tape gradient: it is written for speed.)

    ``tracked`` keeps the order in which the tape met its tensors, and a recorded tensor comes
    after its inputs: one pass backwards finds what the roots need, one forwards lists it."""
    refs, objects, parts = {}, [], []
    cacheable = True
    for s in sources:
        if s is not None and id(s) not in refs:
            refs[id(s)] = len(parts)
            parts.append(("arg", s.shape, s.dtype))
            objects.append(s)
    need = {id(r) for r in roots}
    add = need.add
    for tid, t in reversed(tracked.items()):
        if tid in need and t._rec is not None:
            for x in t._rec.inputs:
                add(id(x))
    for tid, t in tracked.items():
        rec = t._rec
        if tid not in need or tid in refs or rec is None:
            continue
        inputs = []
        for x in rec.inputs:
            ref = refs.get(id(x))
            if ref is None:
                if isinstance(x, SCALARS):  # a static constant: part of the structure
                    inputs.append((type(x), x))
                    continue
                # a leaf: an untracked Tensor or an array
                v = x._value if isinstance(x, Tensor) else np.asarray(x)
                ref = refs[id(x)] = len(parts)
                parts.append(("arg", v.shape, v.dtype))
                objects.append(x)
            inputs.append(ref)
        if rec.prim == "custom_gradient":
            cacheable = False
        refs[tid] = len(parts)
        parts.append((rec.prim, rec.params, tuple(inputs)))
    for r in roots:  # a root the tape did not compute (watched, or a weight) is an argument
        if id(r) not in refs:
            v = r._value if isinstance(r, Tensor) else np.asarray(r)
            refs[id(r)] = len(parts)
            parts.append(("arg", v.shape, v.dtype))
            objects.append(r)
    return parts, objects, refs, cacheable


def _describe(node) -> str:
    params = ", ".join(f"{p}" for p in node.params)
    return f"{node.prim}[{params}] with input shapes {[i.shape for i in node.inputs]}"


def _result_tensor(value, graph, k, arg_objects) -> Tensor:
    """Wrap a derivative value; record it on active tapes (as the derivative graph's output k)
    so that an outer tape can differentiate it again."""
    out = Tensor(value)
    inputs = [a for a in arg_objects if isinstance(a, Tensor)]
    recorded = False
    for tape in active_tapes():
        recorded |= tape._record_op(inputs, out)
    if recorded:
        out._rec = Record("graph_call", (("graph", graph), ("output", k)), tuple(arg_objects))
    return out


# -- stop_gradient and custom_gradient -----------------------------------------------------------

def stop_gradient(x):
    """The value of ``x``, as a constant for differentiation."""
    return apply("stop_gradient", x if isinstance(x, Tensor) else Tensor(np.asarray(x)))


@contextlib.contextmanager
def _private_trace(watch, strict=False):
    """Record everything computed from ``watch`` on a private tape, with the user's tapes
    suspended (they must see a custom gradient's body, or a jit function, as one op).
    ``strict``: values computed here are placeholders for later calls (st.jit), so converting
    one to a Python value is an error (see Tensor.__bool__)."""
    saved = set_active_tapes([])
    tape = GradientTape(persistent=True, watch_accessed_variables=False)
    tape._strict = strict
    try:
        with tape:
            for t in watch:
                tape._watch(t)
            yield tape
    finally:
        set_active_tapes(saved)


class _CustomCall:
    """One call of a custom_gradient function: its inputs, its traced body and its grad_fn."""

    def __init__(self, fn, inputs, output, tracked, grad_fn):
        self.fn, self.inputs, self.output = fn, inputs, output
        self.tracked, self.grad_fn = tracked, grad_fn


class _CustomRule:
    """The reverse rule of a custom_vjp node: traces the user's grad_fn on a cotangent node."""

    def __init__(self, call: _CustomCall, builder: GraphBuilder):
        self.call, self.builder = call, builder

    def hash_key(self) -> str:
        code = getattr(self.call.grad_fn, "__code__", None)
        where = f"{code.co_filename}:{code.co_firstlineno}" if code else repr(self.call.grad_fn)
        return f"custom_gradient[{self.call.fn.__qualname__}@{where}]"

    def vjp(self, cot):
        call = self.call
        name = call.fn.__name__
        upstream = Tensor(np.zeros(cot.shape, cot.dtype))
        with _private_trace([upstream], strict=True) as tape:  # placeholder values: no `if`
            grads = call.grad_fn(upstream)
        grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
        if len(grads) != len(call.inputs):
            raise ValueError(
                f"custom_gradient function '{name}': grad_fn returned {len(grads)} gradient(s) "
                f"for {len(call.inputs)} input(s); return one gradient (or None) per input.")
        nodes = []
        sub = self.builder.child(tape._tracked, {id(upstream): cot})
        for k, (g, x) in enumerate(zip(grads, call.inputs)):
            if g is None:
                nodes.append(None)
                continue
            shape = np.shape(value_of(g))
            if tuple(shape) != tuple(np.shape(x)):
                raise ValueError(
                    f"custom_gradient function '{name}': grad_fn returned a gradient of shape "
                    f"{tuple(shape)} for input {k} of shape {tuple(np.shape(x))}; each gradient "
                    "must have its input's shape.")
            node = sub.node_of(g)
            nodes.append(fill(node, np.shape(x), cot.dtype) if isinstance(node, SCALARS)
                         else node)
        return nodes


def custom_gradient(f):
    """Decorator: ``f(*xs)`` returns ``(y, grad_fn)``; ``grad_fn(upstream)`` returns one gradient
    per input. Tapes see ``f`` as one op whose reverse rule is ``grad_fn``."""

    @functools.wraps(f)
    def wrapper(*args):
        inputs = [a if isinstance(a, Tensor) else Tensor(np.asarray(a)) for a in args]
        with _private_trace(inputs) as tape:
            y, grad_fn = f(*inputs)
        y = y if isinstance(y, Tensor) else Tensor(np.asarray(y))
        call = _CustomCall(f, inputs, y, tape._tracked, grad_fn)
        out = Tensor(value_of(y))
        recorded = False
        for t in active_tapes():
            recorded |= t._record_op(inputs, out)
        if recorded:
            out._rec = Record("custom_gradient", (("call", call),), tuple(inputs))
        return out

    return wrapper
