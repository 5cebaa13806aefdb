"""Structural primitives that move data without arithmetic: reshape, transpose, basic indexing,
gather along an axis, concatenation, and the diagonal embed/extract pair that Jacobians need.

Index specs are tuples with one entry per axis: ``("i", k)`` picks index k (the axis goes away),
``("s", start, stop, step)`` is a Python slice as written, and ``("r", start, step, count)`` the
same slice resolved against the axis length (what nodes store: unambiguous for negative steps).
Transposes of the gathers (``index_update``, ``take_add``) are internal primitives: they appear
only in derivative graphs.
"""

from __future__ import annotations

import functools

import numpy as np

from ..ir import Node
from .elementwise import X, ew, fill, is_fill
from .registry import Primitive, register


def _full(n):
    return ("r", 0, 1, n)


def _slice_len(entry):
    return entry[3]


def broadcast_source(x: Node):
    """For a pure broadcast (an ew node computing just its one input), that input reshaped to
    x's rank; else None. Gathers from a broadcast gather from the small array instead."""
    if x.prim != "ew" or len(x.inputs) != 1 or x.params[0] != X[0]:
        return None
    u = x.inputs[0]
    return reshape(u, (1,) * (x.ndim - u.ndim) + u.shape) if u.ndim < x.ndim else u


# -- reshape --------------------------------------------------------------------------------------

def reshape(x: Node, shape) -> Node:
    shape = tuple(int(s) for s in shape)
    if int(np.prod(shape, dtype=np.int64)) != x.size:
        raise ValueError(f"cannot reshape an array of shape {x.shape} into shape {shape}")
    if shape == x.shape:
        return x
    if is_fill(x):
        return fill(x.params[0], shape, x.dtype)
    if x.prim == "reshape":
        return reshape(x.inputs[0], shape)
    return Node.make("reshape", (x,), (shape,), shape, x.dtype)


def _reshape_keeps_batch(node, dep):
    return node.ndim >= 1 and node.inputs[0].ndim >= 1 and node.shape[0] == node.inputs[0].shape[0]


register(Primitive(
    "reshape", "structural", param_names=("shape",),
    impl=lambda x, shape: np.reshape(x, shape),
    build=reshape,
    jvp=lambda node, ts, ns: reshape(ts[0], node.shape + ts[0].shape[node.inputs[0].ndim:]),
    vjp=lambda node, c, i, nl: reshape(c, c.shape[:nl] + node.inputs[0].shape),
    emit=lambda node, em: em.define(node, f"{em.name(node.inputs[0])}.reshape({em.storage(node)})"),
    keeps_batch=_reshape_keeps_batch,
    doc="same data, new shape (row-major); a free view in generated code",
))


# -- transpose ------------------------------------------------------------------------------------

def transpose(x: Node, perm) -> Node:
    perm = tuple(int(p) for p in perm)
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"axes {perm} are not a permutation of the {x.ndim} axes of {x.shape}")
    shape = tuple(x.shape[p] for p in perm)
    if perm == tuple(range(x.ndim)):
        return x
    if is_fill(x):
        return fill(x.params[0], shape, x.dtype)
    u = broadcast_source(x)
    if u is not None:
        return ew(X[0], [transpose(u, perm)], shape, x.dtype)
    return Node.make("transpose", (x,), (perm,), shape, x.dtype)


def _transpose_jvp(node, ts, ns):
    (perm,) = node.params
    nd = len(perm)
    return transpose(ts[0], perm + tuple(range(nd, nd + ns)))


def _transpose_vjp(node, c, i, nl):
    (perm,) = node.params
    inv = np.argsort(perm)
    return transpose(c, tuple(range(nl)) + tuple(nl + int(k) for k in inv))


def _transpose_emit(node, em):
    (perm,) = node.params
    out = em.alloc(node)
    with em.loops(node.shape) as idx:
        src = [None] * len(perm)
        for k, p in enumerate(perm):
            src[p] = idx[k]
        em.line(f"{em.at(node, idx)} = {em.at(node.inputs[0], src)}")
    return out


register(Primitive(
    "transpose", "structural", param_names=("perm",),
    impl=lambda x, perm: np.transpose(x, perm),
    build=transpose, jvp=_transpose_jvp, vjp=_transpose_vjp, emit=_transpose_emit,
    keeps_batch=lambda node, dep: node.params[0][0] == 0,
    doc="permute axes",
))


# -- basic indexing and its transpose -------------------------------------------------------------

def normalize_spec(spec, shape) -> tuple:
    """Validate a spec and pad it with full slices; negative indices and Python slices are
    resolved against ``shape`` (into "i" and "r" entries)."""
    out = []
    for entry, n in zip(spec, shape):
        if entry[0] == "i":
            k = entry[1] + n if entry[1] < 0 else entry[1]
            if not 0 <= k < n:
                raise IndexError(f"index {entry[1]} is out of bounds for an axis of size {n}")
            out.append(("i", k))
        elif entry[0] == "r":
            out.append(entry)
        else:
            r = range(n)[slice(*entry[1:])]
            out.append(("r", r.start, r.step, len(r)))
    if len(spec) > len(shape):
        raise IndexError(f"too many indices ({len(spec)}) for an array of shape {shape}")
    out.extend(_full(n) for n in shape[len(spec):])
    return tuple(out)


def _spec_shape(spec):
    return tuple(_slice_len(e) for e in spec if e[0] == "r")


def index(x: Node, spec) -> Node:
    spec = normalize_spec(spec, x.shape)
    shape = _spec_shape(spec)
    if all(e == _full(n) for e, n in zip(spec, x.shape)):
        return x
    if is_fill(x):
        return fill(x.params[0], shape, x.dtype)
    u = broadcast_source(x)
    if u is not None:  # index the small array; axes it broadcasts stay broadcast
        small = tuple(e if u.shape[a] == x.shape[a] else (("i", 0) if e[0] == "i" else _full(1))
                      for a, e in enumerate(spec))
        return ew(X[0], [index(u, small)], shape, x.dtype)
    return Node.make("index", (x,), (spec,), shape, x.dtype)


def _as_slice(entry):
    if entry[0] == "s":
        return slice(*entry[1:])
    _, start, step, count = entry
    stop = start + step * count
    return slice(start, stop if stop >= 0 else None, step) if count else slice(0, 0)


def _index_impl(x, spec):
    return np.asarray(x)[_numpy_index(spec)]


@functools.lru_cache(maxsize=4096)
def _numpy_index(spec):
    """The numpy index of an index spec (cached: every eager x[k] on a tape runs this)."""
    return tuple(e[1] if e[0] == "i" else _as_slice(e) for e in spec)


def _source_index(spec, idx):
    """Index expressions into the source array for output loop indices ``idx``."""
    src, k = [], 0
    for e in spec:
        if e[0] == "i":
            src.append(str(e[1]))
        else:
            src.append(_affine(e[1], e[2], idx[k]))
            k += 1
    return src


def _affine(start, step, var):
    s = var if step == 1 else f"{step} * {var}"
    return s if start == 0 else f"{start} + {s}"


def _index_emit(node, em):
    (spec,) = node.params
    em.alloc(node)
    with em.loops(node.shape) as idx:
        em.line(f"{em.at(node, idx)} = {em.at(node.inputs[0], _source_index(spec, idx))}")


def index_update(c: Node, nl: int, shape, spec) -> Node:
    """Zeros of shape ``L + shape`` with ``c`` written at ``spec`` (the transpose of index)."""
    shape = tuple(shape)
    spec = normalize_spec(spec, shape)
    if is_fill(c, 0):
        return fill(0, c.shape[:nl] + shape, c.dtype)
    return Node.make("index_update", (c,), (nl, shape, spec), c.shape[:nl] + shape, c.dtype)


def _index_update_emit(node, em):
    nl, shape, spec = node.params
    em.alloc(node, zero=True)
    c = node.inputs[0]
    with em.loops(c.shape) as idx:
        em.line(f"{em.at(node, idx[:nl] + _source_index(spec, idx[nl:]))} = {em.at(c, idx)}")


def _index_update_jvp(node, ts, ns):
    nl, shape, spec = node.params
    extra = ts[0].shape[ts[0].ndim - ns:]
    return index_update(ts[0], nl, shape + extra, spec + tuple(_full(n) for n in extra))


def _index_update_vjp(node, c, i, nl2):
    nl, shape, spec = node.params
    return index(c, tuple(_full(n) for n in c.shape[:nl2 + nl]) + spec)


register(Primitive(
    "index", "structural", param_names=("spec",),
    impl=_index_impl, build=index,
    jvp=lambda node, ts, ns: index(ts[0], node.params[0]),
    vjp=lambda node, c, i, nl: index_update(c, nl, node.inputs[0].shape, node.params[0]),
    emit=_index_emit,
    keeps_batch=lambda node, dep: node.params[0][0] == _full(node.inputs[0].shape[0]),
    doc="basic indexing: integers and slices",
))
def _index_update_impl(c, nl, shape, spec):
    c = np.asarray(c)
    out = np.zeros(c.shape[:nl] + tuple(shape), c.dtype)
    spec = normalize_spec(spec, shape)
    out[(slice(None),) * nl + tuple(e[1] if e[0] == "i" else _as_slice(e) for e in spec)] = c
    return out


register(Primitive(
    "index_update", "internal", param_names=("nl", "shape", "spec"),
    build=index_update, impl=_index_update_impl,
    jvp=_index_update_jvp, vjp=_index_update_vjp, emit=_index_update_emit,
    keeps_batch=lambda node, dep: node.params[0] == 0 and node.params[2][0] == _full(
        node.params[1][0]),
    doc="transpose of index: scatter into zeros",
))


# -- gather along one axis (integer-array indexing) and its transpose -----------------------------

def take(x: Node, indices, axis: int) -> Node:
    n = x.shape[axis]
    indices = tuple(int(i) + n if int(i) < 0 else int(i) for i in indices)
    if any(not 0 <= i < n for i in indices):
        raise IndexError(f"an index in {indices} is out of bounds for axis {axis} of size {n}")
    shape = x.shape[:axis] + (len(indices),) + x.shape[axis + 1:]
    if indices == tuple(range(n)):
        return x
    if is_fill(x):
        return fill(x.params[0], shape, x.dtype)
    u = broadcast_source(x)
    if u is not None:
        small = u if u.shape[axis] == 1 else take(u, indices, axis)
        return ew(X[0], [small], shape, x.dtype)
    return Node.make("take", (x,), (indices, axis), shape, x.dtype)


def take_add(c: Node, indices, axis: int, n: int) -> Node:
    """Zeros with ``n`` entries along ``axis``; ``c``'s entries added at ``indices`` (repeats
    add)."""
    shape = c.shape[:axis] + (n,) + c.shape[axis + 1:]
    if is_fill(c, 0):
        return fill(0, shape, c.dtype)
    return Node.make("take_add", (c,), (indices, axis, n), shape, c.dtype)


def _take_emit(node, em):
    indices, axis = node.params
    em.alloc(node)
    with em.loops(node.shape) as idx:
        src = list(idx)
        src[axis] = em.index_map(indices, idx[axis])
        em.line(f"{em.at(node, idx)} = {em.at(node.inputs[0], src)}")


def _take_add_emit(node, em):
    indices, axis, n = node.params
    em.alloc(node, zero=True)
    c = node.inputs[0]
    with em.loops(c.shape) as idx:
        dst = list(idx)
        dst[axis] = em.index_map(indices, idx[axis])
        em.line(f"{em.at(node, dst)} += {em.at(c, idx)}")


register(Primitive(
    "take", "structural", param_names=("indices", "axis"),
    impl=lambda x, indices, axis: np.take(x, indices, axis=axis),
    build=take,
    jvp=lambda node, ts, ns: take(ts[0], *node.params),
    vjp=lambda node, c, i, nl: take_add(c, node.params[0], nl + node.params[1],
                                        node.inputs[0].shape[node.params[1]]),
    emit=_take_emit,
    keeps_batch=lambda node, dep: node.params[1] != 0,
    doc="gather entries along one axis (integer-array indexing)",
))
def _take_add_impl(c, indices, axis, n):
    c = np.asarray(c)
    out = np.zeros(c.shape[:axis] + (n,) + c.shape[axis + 1:], c.dtype)
    for k, i in enumerate(indices):
        out[(slice(None),) * axis + (i,)] += c[(slice(None),) * axis + (k,)]
    return out


register(Primitive(
    "take_add", "internal", param_names=("indices", "axis", "n"),
    build=take_add, impl=_take_add_impl,
    jvp=lambda node, ts, ns: take_add(ts[0], *node.params),
    vjp=lambda node, c, i, nl: take(c, node.params[0], nl + node.params[1]),
    emit=_take_add_emit,
    keeps_batch=lambda node, dep: node.params[1] != 0,
    doc="transpose of take: scatter-add",
))


# -- concatenate ----------------------------------------------------------------------------------

def concatenate(xs, axis: int) -> Node:
    xs = tuple(xs)
    first = xs[0]
    axis = axis + first.ndim if axis < 0 else axis
    for x in xs[1:]:
        if x.ndim != first.ndim or any(
            a != b for k, (a, b) in enumerate(zip(x.shape, first.shape)) if k != axis
        ):
            raise ValueError(
                f"cannot concatenate shapes {[x.shape for x in xs]} along axis {axis}: all other "
                "dimensions must match"
            )
    if len(xs) == 1:
        return first
    shape = list(first.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    dtype = np.result_type(*[x.dtype for x in xs])
    if all(is_fill(x) for x in xs) and len({x.params[0] for x in xs}) == 1:
        return fill(first.params[0], shape, dtype)
    return Node.make("concatenate", xs, (axis,), shape, dtype)


def _concatenate_jvp(node, ts, ns):
    from .elementwise import zeros

    extra = next(t.shape[t.ndim - ns:] for t in ts if t is not None)
    parts = [t if t is not None else zeros(x.shape + extra, node.dtype)
             for x, t in zip(node.inputs, ts)]
    return concatenate(parts, node.params[0])


def _concatenate_vjp(node, c, i, nl):
    (axis,) = node.params
    start = sum(x.shape[axis] for x in node.inputs[:i])
    stop = start + node.inputs[i].shape[axis]
    spec = [_full(n) for n in c.shape]
    spec[nl + axis] = ("r", start, 1, stop - start)
    return index(c, tuple(spec))


def _concatenate_emit(node, em):
    (axis,) = node.params
    em.alloc(node)
    offset = 0
    for x in node.inputs:
        with em.loops(x.shape) as idx:
            dst = list(idx)
            dst[axis] = _affine(offset, 1, idx[axis])
            em.line(f"{em.at(node, dst)} = {em.at(x, idx)}")
        offset += x.shape[axis]


register(Primitive(
    "concatenate", "structural", param_names=("axis",),
    impl=lambda *xs, axis: np.concatenate(xs, axis=axis),
    build=lambda *xs, axis: concatenate(xs, axis),
    jvp=_concatenate_jvp, vjp=_concatenate_vjp, emit=_concatenate_emit,
    keeps_batch=lambda node, dep: node.params[0] != 0,
    doc="join arrays along an existing axis",
))


# -- stack: one record on a tape (an eager op costs microseconds); in the IR, reshape + concatenate

def stack(xs, axis: int) -> Node:
    xs = tuple(xs)
    shape = xs[0].shape[:axis] + (1,) + xs[0].shape[axis:]
    return concatenate([reshape(x, shape) for x in xs], axis)


register(Primitive(
    "stack", "structural", param_names=("axis",),
    impl=lambda *xs, axis: np.stack(xs, axis=axis),
    build=lambda *xs, axis: stack(xs, axis),
    doc="join arrays of one shape along a new axis (built as reshape + concatenate: the IR "
        "has no stack node, so it needs no rules of its own)",
))


# -- diagonal embed / extract: the materialized form of structured (diagonal) Jacobians ---------

def diag_embed(x: Node, lead: int, k: int, trail: int) -> Node:
    """x of shape L + K + R (len(L) = lead, len(K) = k) -> L + K + K + R, diagonal in K."""
    L, K, R = x.shape[:lead], x.shape[lead:lead + k], x.shape[lead + k:]
    assert len(R) == trail
    shape = L + K + K + R
    if is_fill(x, 0):
        return fill(0, shape, x.dtype)
    return Node.make("diag_embed", (x,), (lead, k, trail), shape, x.dtype)


def diag_extract(x: Node, lead: int, k: int, trail: int) -> Node:
    """x of shape L + K + K + R -> L + K + R, the diagonal over the two K blocks."""
    shape = x.shape[:lead + k] + x.shape[lead + 2 * k:]
    assert x.shape[lead:lead + k] == x.shape[lead + k:lead + 2 * k]
    assert len(shape) == lead + k + trail
    if is_fill(x):
        return fill(x.params[0], shape, x.dtype)
    return Node.make("diag_extract", (x,), (lead, k, trail), shape, x.dtype)


def _diag_embed_emit(node, em):
    lead, k, trail = node.params
    x = node.inputs[0]
    em.alloc(node, zero=True)
    with em.loops(x.shape) as idx:
        dst = idx[:lead + k] + idx[lead:lead + k] + idx[lead + k:]
        em.line(f"{em.at(node, dst)} = {em.at(x, idx)}")


def _diag_extract_emit(node, em):
    lead, k, trail = node.params
    em.alloc(node)
    with em.loops(node.shape) as idx:
        src = idx[:lead + k] + idx[lead:lead + k] + idx[lead + k:]
        em.line(f"{em.at(node, idx)} = {em.at(node.inputs[0], src)}")


register(Primitive(
    "diag_embed", "internal", param_names=("lead", "k", "trail"),
    build=diag_embed,
    impl=lambda x, lead, k, trail: _diag_embed_np(x, lead, k, trail),
    jvp=lambda node, ts, ns: diag_embed(ts[0], node.params[0], node.params[1],
                                        node.params[2] + ns),
    vjp=lambda node, c, i, nl: diag_extract(c, nl + node.params[0], *node.params[1:]),
    emit=_diag_embed_emit,
    # out[b, ...] reads only in[b, ...] when axis 0 is a leading or a diagonal axis
    keeps_batch=lambda node, dep: node.params[0] + node.params[1] >= 1,
    doc="embed along a diagonal (identity and diagonal Jacobians made dense)",
))
def _diag_extract_np(x, lead, k, trail):
    x = np.asarray(x)
    L, K, R = x.shape[:lead], x.shape[lead:lead + k], x.shape[lead + 2 * k:]
    n = int(np.prod(K, dtype=np.int64))
    flat = x.reshape(L + (n, n) + R)
    out = np.stack([flat[(slice(None),) * lead + (i, i)] for i in range(n)], axis=lead)
    return out.reshape(L + K + R)


register(Primitive(
    "diag_extract", "internal", param_names=("lead", "k", "trail"),
    build=diag_extract, impl=_diag_extract_np,
    jvp=lambda node, ts, ns: diag_extract(ts[0], node.params[0], node.params[1],
                                          node.params[2] + ns),
    vjp=lambda node, c, i, nl: diag_embed(c, nl + node.params[0], *node.params[1:]),
    emit=_diag_extract_emit,
    keeps_batch=lambda node, dep: node.params[0] + node.params[1] >= 1,
    doc="take a diagonal (per-example blocks of a full Jacobian)",
))


def _diag_embed_np(x, lead, k, trail):
    x = np.asarray(x)
    L, K, R = x.shape[:lead], x.shape[lead:lead + k], x.shape[lead + k:]
    n = int(np.prod(K, dtype=np.int64))
    flat = x.reshape(L + (n,) + R)
    out = np.zeros(L + (n, n) + R, x.dtype)
    for i in range(n):
        out[(slice(None),) * lead + (i, i)] = flat[(slice(None),) * lead + (i,)]
    return out.reshape(L + K + K + R)
