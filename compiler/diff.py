"""Symbolic differentiation of IR graphs into IR graphs.

Jacobians are built at the array level, never by scalarizing. A tangent (forward mode) of a node
``v`` w.r.t. a source ``x`` has shape ``v.shape + S``; a cotangent (reverse mode) has shape
``L + v.shape``. Known structure is kept symbolic while it lasts:

* ``None``      zero (the node does not depend on the source along differentiable paths);
* ``Diag(d)``   a diagonal Jacobian ``d[v] * delta(v, s)`` (``d=None`` is the identity): the seed
                of both modes, kept through elementwise ops of the source's shape;
* a ``Node``    a dense tangent/cotangent.

Batch mode (``batch=True``) shares axis 0 between the source and the target: the seed identity is
per example, so per-example Jacobians are computed without the (B, ., B, .) tensor. That is exact
only when every op on the path keeps examples apart, which ``batch_mixing_op`` checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .batching import examples_apart
from .ir import Node, toposort
from .ops import lookup
from .ops.elementwise import X, ew, fill, is_fill, partial
from .ops.shape import diag_embed, diag_extract, reshape, transpose
from .ops.sparse import scatter_rows


@dataclass(frozen=True)
class Diag:
    """A diagonal Jacobian: ``d`` (a node of the diagonal's shape) or None for the identity."""

    d: Optional[Node] = None


@dataclass(frozen=True)
class Rows:
    """A sparse tangent (forward mode, full Jacobian): ``sum_k coef_k[v] * delta(cols_k[v], s)``
    over a few terms, ``cols_k`` a static flat source index per flat entry of the node (-1: none),
    ``coef_k`` a node of the node's shape or None for ones. Gathers of the source (indexing,
    np.roll, concatenation) and elementwise ops of them stay in this form: Lorenz-96 keeps 4
    terms per row instead of n."""

    terms: tuple  # ((coef or None, cols), ...)
    shape: tuple  # the node's shape


MAX_ROW_TERMS = 16
SMALL_PER_EXAMPLE = 64  # per-example Jacobian entries below which batch mode goes forward
_GATHERS = ("index", "take", "reshape", "transpose", "concatenate")


def differentiable(node: Node) -> bool:
    return node.dtype.kind in "fc"


def depends_on(outputs, sources) -> set:
    """ids of nodes that depend on any source along differentiable paths."""
    ids = {id(s) for s in sources}
    dep = set(ids)
    for node in toposort(outputs):
        if id(node) in ids or not differentiable(node) or node.prim == "stop_gradient":
            continue
        inputs = node.inputs[1:] if node.prim == "custom_vjp" else node.inputs
        if any(id(i) in dep for i in inputs):
            dep.add(id(node))
    return dep


def _is_zero(t) -> bool:
    return t is None or (isinstance(t, Node) and is_fill(t, 0))


def _mul(a: Node, b: Node, dtype) -> Node:
    return ew(X[0] * X[1], [a, b], None, dtype)


def _add(a, b, dtype):
    if a is None:
        return b
    if b is None:
        return a
    return ew(X[0] + X[1], [a, b], None, dtype)


class _Pass:
    """Shared state of one accumulation: the diagonal's shape and how to make Diag dense."""

    def __init__(self, diag_shape, dtype, batch: bool, reverse: bool):
        self.diag_shape = tuple(diag_shape)
        self.dtype = dtype
        self.batch = batch
        self.reverse = reverse

    def dense(self, t):
        if isinstance(t, Rows):
            coefs = [c if c is not None else fill(1, t.shape, self.dtype) for c, _ in t.terms]
            return scatter_rows(coefs, [cols for _, cols in t.terms], 0, t.shape, self.diag_shape)
        if not isinstance(t, Diag):
            return t
        D = self.diag_shape
        if self.batch and t.d is None:  # the per-example identity: one small identity, broadcast
            return self._batch_identity()
        d = t.d if t.d is not None else fill(1, D, self.dtype)
        if not self.batch:
            return diag_embed(d, 0, len(D), 0)
        k = len(D) - 1
        full = diag_embed(d, 1, k, 0)  # (B,) + K + K
        if not self.reverse:
            return full
        # reverse layout is K (leading target axes) + (B,) + K
        return transpose(full, tuple(range(1, k + 1)) + (0,) + tuple(range(k + 1, 2 * k + 1)))

    def _batch_identity(self):
        B, K = self.diag_shape[0], self.diag_shape[1:]
        eye = diag_embed(fill(1, K, self.dtype), 0, len(K), 0)
        small = K + (1,) + K if self.reverse else (1,) + K + K
        full = K + (B,) + K if self.reverse else (B,) + K + K
        return ew(X[0], [reshape(eye, small)], full, self.dtype)

    def combine(self, a, b):
        if a is None:
            return b
        if b is None:
            return a
        if isinstance(a, Diag) and isinstance(b, Diag):
            one = fill(1, self.diag_shape, self.dtype)
            return Diag(_add(a.d or one, b.d or one, self.dtype))
        return _add(self.dense(a), self.dense(b), self.dtype)


def _scale_diag(p: Node, t: Diag, dtype) -> Diag:
    return Diag(p if t.d is None else _mul(p, t.d, dtype))


def forward(y: Node, x: Node, batch: bool = False, seed: Optional[Node] = None):
    """Tangent of ``y`` w.r.t. ``x`` (shape y.shape + S, S = x.shape or x.shape[1:] in batch
    mode): a Node, a Diag, or None. With a ``seed`` tangent of x's shape, the directional
    derivative (shape y.shape)."""
    dep = depends_on([y], [x])
    if id(y) not in dep:
        return None
    ns = 0 if seed is not None else (x.ndim - 1 if batch else x.ndim)
    st = _Pass(x.shape, y.dtype, batch, reverse=False)
    tan = {id(x): Diag() if seed is None else seed}
    for node in toposort([y]):
        if node is x or id(node) not in dep:
            continue
        ts = [tan.get(id(i)) if id(i) in dep else None for i in node.inputs]
        tan[id(node)] = _jvp(node, ts, ns, st)
    return tan[id(y)]


def _as_rows(t, shape, dtype):
    if isinstance(t, Diag):
        return Rows(((t.d, tuple(range(int(np.prod(shape, dtype=np.int64))))),), tuple(shape))
    return t


def _join_disjoint(terms):
    """Terms with the same coefficient whose columns never overlap (the pieces of a
    concatenation, e.g. np.roll) become one term."""
    out = []
    for coef, cols in terms:
        for k, (c2, cols2) in enumerate(out):
            if c2 is coef and all(a < 0 or b < 0 for a, b in zip(cols, cols2)):
                out[k] = (coef, tuple(a if a >= 0 else b for a, b in zip(cols, cols2)))
                break
        else:
            out.append((coef, cols))
    return out


def _merge(terms, shape, dtype):
    """Sum terms with the same columns; None if there are too many to stay sparse."""
    merged = {}
    for coef, cols in _join_disjoint(terms):
        if cols in merged:
            one = fill(1, shape, dtype)
            merged[cols] = _add(merged[cols] if merged[cols] is not None else one,
                                coef if coef is not None else one, dtype)
        else:
            merged[cols] = coef
    if len(merged) > MAX_ROW_TERMS:
        return None
    return Rows(tuple((c, cols) for cols, c in merged.items()), tuple(shape))


def _jvp_rows(node, ts, st):
    """Forward rule on sparse-row tangents (full mode), or None when it does not apply."""
    if st.batch or not any(isinstance(t, Rows) for t in ts) and not (
            node.prim in _GATHERS and any(isinstance(t, Diag) for t in ts)):
        return None
    if any(t is not None and not isinstance(t, (Rows, Diag)) for t in ts):
        return None
    ts = [None if t is None else _as_rows(t, i.shape, node.dtype) for t, i in zip(ts, node.inputs)]
    prim = lookup(node.prim)
    params = dict(zip(prim.param_names, node.params))
    terms = []
    if node.prim == "ew":
        if any(t is not None and i.shape != node.shape for t, i in zip(ts, node.inputs)):
            return None  # broadcasting: leave it to the dense rule
        for k, t in enumerate(ts):
            if t is not None:
                p = partial(node, k)
                terms += [(p if c is None else _mul(p, c, node.dtype), cols) for c, cols in t.terms]
    elif node.prim == "concatenate":
        for k, t in enumerate(ts):
            for c, cols in (t.terms if t is not None else ()):
                parts = [np.array(cols).reshape(x.shape) if j == k else np.full(x.shape, -1)
                         for j, x in enumerate(node.inputs)]
                new_cols = tuple(int(v) for v in prim.apply_impl(node, *parts).ravel())
                coef = None if c is None else prim.build(
                    *[c if j == k else fill(0, x.shape, node.dtype)
                      for j, x in enumerate(node.inputs)], **params)
                terms.append((coef, new_cols))
    elif node.prim in _GATHERS:
        (t,), (x,) = ts, node.inputs
        for c, cols in t.terms:
            moved = prim.apply_impl(node, np.array(cols).reshape(x.shape))
            terms.append((None if c is None else prim.build(c, **params),
                          tuple(int(v) for v in np.asarray(moved).ravel())))
    else:
        return None
    return _merge(terms, node.shape, node.dtype)


def _jvp(node, ts, ns, st):
    if all(t is None for t in ts):
        return None
    rows = _jvp_rows(node, ts, st)
    if rows is not None:
        return rows
    if node.prim == "ew" and node.shape == st.diag_shape and all(
        t is None or (isinstance(t, Diag) and i.shape == node.shape)
        for t, i in zip(ts, node.inputs)
    ):
        out = None
        for k, t in enumerate(ts):
            if t is not None:
                out = st.combine(out, _scale_diag(partial(node, k), t, node.dtype))
        return out
    prim = lookup(node.prim)
    out = None
    if prim.jvp_diag is not None:  # structured rule: diagonal tangents never become dense
        for k, t in enumerate(ts):
            if isinstance(t, Diag):
                term = prim.jvp_diag(node, k, t.d, st.batch, ns)
                if term is not None:
                    out = _add(out, term, node.dtype)
                    ts = ts[:k] + [None] + ts[k + 1:]
    dense = [None if _is_zero(t) else st.dense(t) for t in ts]
    if any(t is not None for t in dense):
        out = _add(out, prim.rule("jvp")(node, dense, ns), node.dtype)
    return None if _is_zero(out) else out


def reverse(y: Node, xs, seed, nl: int, batch: bool = False):
    """Cotangents of ``xs`` given the cotangent ``seed`` of ``y`` (shape L + y.shape with
    ``nl = len(L)``, or a Diag): a list of Node / Diag / None."""
    dep = depends_on([y], xs)
    if id(y) not in dep:
        return [None] * len(xs)
    st = _Pass(y.shape, y.dtype, batch, reverse=True)
    sources = {id(x) for x in xs}
    cot = {id(y): seed}
    done = {}
    for node in reversed(toposort([y])):
        c = cot.pop(id(node), None)
        if c is None:
            continue
        if id(node) in sources:
            done[id(node)] = c
            continue
        for i, inp in enumerate(node.inputs):
            if id(inp) not in dep or (node.prim == "custom_vjp" and i == 0):
                continue
            ci = _vjp(node, c, i, nl, st)
            if not _is_zero(ci):
                cot[id(inp)] = st.combine(cot.get(id(inp)), ci)
    return [done.get(id(x)) for x in xs]


def _vjp(node, c, i, nl, st):
    inp = node.inputs[i]
    if isinstance(c, Diag) and node.prim == "ew" and inp.shape == node.shape == st.diag_shape:
        return _scale_diag(partial(node, i), c, node.dtype)
    prim = lookup(node.prim)
    if isinstance(c, Diag) and prim.vjp_diag is not None:
        out = prim.vjp_diag(node, i, c.d, st.batch, nl)
        if out is not None:
            return out
    return prim.rule("vjp")(node, st.dense(c), i, nl)


# -- the three products users ask for ------------------------------------------------------------

def _connected_zeros(results, y, xs, shape_of):
    """TensorFlow returns zeros, not None, where the target is connected to a source but the
    derivative vanishes (e.g. sign); None stays for sources it does not depend on."""
    return [fill(0, shape_of(x), y.dtype) if r is None and id(y) in depends_on([y], [x]) else r
            for r, x in zip(results, xs)]


def gradient(y: Node, xs, seed: Optional[Node] = None):
    """d(sum(seed * y))/dx for each x (seed defaults to ones): shapes x.shape; None if
    unconnected."""
    seed = seed if seed is not None else fill(1, y.shape, y.dtype)
    st = _Pass(y.shape, y.dtype, batch=False, reverse=True)
    grads = [st.dense(c) for c in reverse(y, xs, seed, nl=0)]
    return _connected_zeros(grads, y, xs, lambda x: x.shape)


def needs_reverse(y: Node) -> bool:
    """True when a primitive under ``y`` has only a reverse rule (custom gradients, user
    primitives defined by a VJP): forward accumulation cannot pass through it."""
    return any(lookup(n.prim).jvp is None for n in toposort([y]) if n.prim != "arg")


def jacobian(y: Node, xs, mode: Optional[str] = None):
    """dy/dx for each x, shape y.shape + x.shape; None where unconnected. ``mode`` is "forward",
    "reverse" or None (chosen from sizes: forward when sources are smaller than the target)."""
    if mode is None:
        small_sources = sum(x.size for x in xs) <= y.size
        mode = "forward" if small_sources and not needs_reverse(y) else "reverse"
    if mode == "forward":
        st = _Pass(y.shape, y.dtype, batch=False, reverse=False)
        outs = []
        for x in xs:
            st.diag_shape = x.shape
            outs.append(st.dense(forward(y, x)))
    else:
        st = _Pass(y.shape, y.dtype, batch=False, reverse=True)
        outs = [st.dense(c) for c in reverse(y, xs, Diag(), nl=y.ndim)]
    return _connected_zeros(outs, y, xs, lambda x: y.shape + x.shape)


def batch_mixing_op(y: Node, x: Node) -> Optional[Node]:
    """The first op (in program order) through which examples along axis 0 mix on the paths
    derivatives of ``y`` w.r.t. ``x`` take, or None."""
    return examples_apart([y], [x], differentiable_only=True)[1]


def batch_jacobian(y: Node, x: Node, mode: Optional[str] = None):
    """Per-example Jacobian dy[b]/dx[b], shape (B,) + y.shape[1:] + x.shape[1:].

    Returns ``(jac, mixing_op)``: where examples mix (``mixing_op`` is not None) the blocks are
    taken exactly from the full Jacobian; otherwise they come from one batched pass.
    """
    mixing = batch_mixing_op(y, x)
    ny, nx = y.ndim - 1, x.ndim - 1
    if mixing is not None:
        (full,) = jacobian(y, [x], mode)
        if full is None:
            return None, mixing
        perm = (0, 1 + ny) + tuple(range(1, 1 + ny)) + tuple(range(2 + ny, 2 + ny + nx))
        return diag_extract(transpose(full, perm), 0, 1, ny + nx), mixing
    if mode is None:
        per_x, per_y = int(np.prod(x.shape[1:])), int(np.prod(y.shape[1:]))
        # small per-example Jacobians go forward whatever their shape: code generation writes
        # them as straight-line code per example (where the accumulation order no longer
        # matters), which needs the batch on axis 0 of every node, as forward tangents have it
        small = per_x * per_y <= SMALL_PER_EXAMPLE
        mode = ("forward" if (per_x <= per_y or small) and not needs_reverse(y) else "reverse")
    if mode == "forward":
        st = _Pass(x.shape, y.dtype, batch=True, reverse=False)
        return st.dense(forward(y, x, batch=True)), None
    st = _Pass(y.shape, y.dtype, batch=True, reverse=True)
    (c,) = reverse(y, [x], Diag(), nl=ny, batch=True)
    c = st.dense(c)
    if c is None:
        return None, None
    # c has shape y.shape[1:] + x.shape: move the batch axis to the front
    perm = (ny,) + tuple(range(ny)) + tuple(range(ny + 1, ny + 1 + nx))
    return transpose(c, perm), None


def jvp(y: Node, xs, tangents) -> Node:
    """Directional derivative sum_i (dy/dx_i) t_i, shape y.shape (zeros if unconnected)."""
    total = None
    for x, t in zip(xs, tangents):
        if needs_reverse(y):  # custom rules are reverse-only: contract the Jacobian instead
            (j,) = jacobian(y, [x], "reverse")
            letters = "".join(chr(97 + k) for k in range(y.ndim + x.ndim))
            ys, xsub = letters[:y.ndim], letters[y.ndim:]
            spec = f"{ys}{xsub},{xsub}->{ys}"
            term = None if j is None else lookup("einsum").build(j, t, spec=spec)
        else:
            term = _Pass(x.shape, y.dtype, False, False).dense(forward(y, x, seed=t))
        total = _add(total, term, y.dtype)
    return total if total is not None else fill(0, y.shape, y.dtype)


def hessian(y: Node, x: Node):
    """d^2 y / dx^2 for scalar y: the jacobian of the gradient (forward over reverse)."""
    if y.ndim != 0:
        raise ValueError(f"hessian needs a scalar function, got an output of shape {y.shape}")
    (g,) = gradient(y, [x])
    if g is None:
        return None
    return jacobian(g, [x], "forward")[0]

