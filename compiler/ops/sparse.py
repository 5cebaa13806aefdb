"""Sparse rows: the dense form of a sparse Jacobian, and its transpose.

``scatter_rows(c_1..c_k; cols, nl, v_shape, s_shape)``: coefficients of shape L + V + T
(``nl = len(L)``) become the array of shape L + V + S + T with
``out[l, v, s, t] = sum_k c_k[l, v, t] * [cols_k[v] == flat(s)]`` (a column of -1: no entry).
It is how a tangent with a few known nonzeros per row (diff.Rows: gathers of the source,
elementwise ops of them) becomes dense: O(nnz) writes into zeros instead of dense algebra.
``gather_rows(C; cols_k, nl, v_shape, s_shape)`` reads ``C[l, v, cols_k[v], t]`` back (0 where
the column is -1); the two are each other's transposes, so derivatives of either are exact.
"""

from __future__ import annotations

import numpy as np

from ..ir import Node
from .registry import Primitive, register


def _sizes(v_shape, s_shape):
    return int(np.prod(v_shape, dtype=np.int64)), int(np.prod(s_shape, dtype=np.int64))


def scatter_rows(coefs, cols, nl, v_shape, s_shape) -> Node:
    coefs = tuple(coefs)
    v_shape, s_shape = tuple(v_shape), tuple(s_shape)
    lead = coefs[0].shape[:nl]
    trail = coefs[0].shape[nl + len(v_shape):]
    shape = lead + v_shape + s_shape + trail
    dtype = np.result_type(*[c.dtype for c in coefs])
    return Node.make("scatter_rows", coefs, (tuple(cols), nl, v_shape, s_shape), shape, dtype)


def gather_rows(c: Node, cols, nl, v_shape, s_shape) -> Node:
    v_shape, s_shape = tuple(v_shape), tuple(s_shape)
    shape = c.shape[:nl + len(v_shape)] + c.shape[nl + len(v_shape) + len(s_shape):]
    return Node.make("gather_rows", (c,), (tuple(cols), nl, v_shape, s_shape), shape, c.dtype)


def _scatter_impl(*coefs, cols, nl, v_shape, s_shape):
    coefs = [np.asarray(c) for c in coefs]
    nv, ns = _sizes(v_shape, s_shape)
    lead, trail = coefs[0].shape[:nl], coefs[0].shape[nl + len(v_shape):]
    out = np.zeros(lead + (nv, ns) + trail, np.result_type(*coefs))
    for c, col in zip(coefs, cols):
        flat = c.reshape(lead + (nv,) + trail)
        for i, j in enumerate(col):
            if j >= 0:
                out[(slice(None),) * nl + (i, j)] += flat[(slice(None),) * nl + (i,)]
    return out.reshape(lead + tuple(v_shape) + tuple(s_shape) + trail)


def _gather_impl(c, cols, nl, v_shape, s_shape):
    c = np.asarray(c)
    nv, ns = _sizes(v_shape, s_shape)
    lead, trail = c.shape[:nl], c.shape[nl + len(v_shape) + len(s_shape):]
    flat = c.reshape(lead + (nv, ns) + trail)
    out = np.zeros(lead + (nv,) + trail, c.dtype)
    for i, j in enumerate(cols):
        if j >= 0:
            out[(slice(None),) * nl + (i,)] = flat[(slice(None),) * nl + (i, j)]
    return out.reshape(lead + tuple(v_shape) + trail)


PARALLEL_ROWS_MIN = 1 << 16  # entries from which a full sparse Jacobian is written in parallel


def _scatter_rows_parallel(node, em, nv, ns):
    """A large sparse Jacobian (no leading or trailing axes), row by row in a parallel loop:
    each row zeroed and written by one thread (the hand-written form: one pass over memory,
    its page faults shared between threads)."""
    cols = node.params[0]
    out = em.alloc(node)
    view, i, s = em.fresh("w"), em.fresh("i"), em.fresh("i")
    em.line(f"{view} = {out}.reshape(({nv}, {ns}))")
    flats = []
    for c in node.inputs:
        flats.append(em.fresh("w"))
        em.line(f"{flats[-1]} = {em.name(c)}.reshape(({nv},))")
    em.parallel_used = True
    em.line(f"for {i} in prange({nv}):")
    em.line(f"    for {s} in range({ns}):")
    em.line(f"        {view}[{i}, {s}] = 0")
    for flat, col in zip(flats, cols):
        j = em.fresh("j")
        em.line(f"    {j} = {em.index_map(col, i)}")
        em.line(f"    if {j} >= 0:")
        em.line(f"        {view}[{i}, {j}] += {flat}[{i}]")


def _scatter_emit(node, em):
    cols, nl, v_shape, s_shape = node.params
    nv, ns = _sizes(v_shape, s_shape)
    c0 = node.inputs[0]
    lead, trail = c0.shape[:nl], c0.shape[nl + len(v_shape):]
    if (not lead and not trail and not em.batched and em.prange
            and nv * ns >= PARALLEL_ROWS_MIN):
        return _scatter_rows_parallel(node, em, nv, ns)
    out = em.alloc(node, zero=True)
    view = em.fresh("w")
    em.line(f"{view} = {out}.reshape({lead + (nv, ns) + trail!r})")
    for c, col in zip(node.inputs, cols):
        flat = em.fresh("w")
        em.line(f"{flat} = {em.name(c)}.reshape({lead + (nv,) + trail!r})")
        with em.loops(lead + (nv,)) as idx:
            j = em.fresh("j")
            em.line(f"{j} = {em.index_map(col, idx[-1])}")
            em.line(f"if {j} >= 0:")
            with em.loops(trail) as tidx:
                em.line(f"    {view}[{', '.join(idx + [j] + tidx)}] += "
                        f"{flat}[{', '.join(idx + tidx)}]")


def _gather_emit(node, em):
    col, nl, v_shape, s_shape = node.params
    nv, ns = _sizes(v_shape, s_shape)
    c = node.inputs[0]
    lead, trail = c.shape[:nl], c.shape[nl + len(v_shape) + len(s_shape):]
    out = em.alloc(node, zero=True)
    src, dst = em.fresh("w"), em.fresh("w")
    em.line(f"{src} = {em.name(c)}.reshape({lead + (nv, ns) + trail!r})")
    em.line(f"{dst} = {out}.reshape({lead + (nv,) + trail!r})")
    with em.loops(lead + (nv,)) as idx:
        j = em.fresh("j")
        em.line(f"{j} = {em.index_map(col, idx[-1])}")
        em.line(f"if {j} >= 0:")
        with em.loops(trail) as tidx:
            em.line(f"    {dst}[{', '.join(idx + tidx)}] = {src}[{', '.join(idx + [j] + tidx)}]")


def _scatter_jvp(node, ts, ns):
    from .elementwise import zeros

    cols, nl, v_shape, s_shape = node.params
    if all(t is None for t in ts):
        return None
    extra = next(t.shape[t.ndim - ns:] for t in ts if t is not None)
    ts = [t if t is not None else zeros(c.shape + extra, c.dtype) for c, t in zip(node.inputs, ts)]
    return scatter_rows(ts, cols, nl, v_shape, s_shape)


def _scatter_vjp(node, c, i, nl2):
    cols, nl, v_shape, s_shape = node.params
    return gather_rows(c, cols[i], nl2 + nl, v_shape, s_shape)


def _gather_vjp(node, c, i, nl2):
    col, nl, v_shape, s_shape = node.params
    return scatter_rows([c], (col,), nl2 + nl, v_shape, s_shape)


def _keeps_batch(node, dep):
    # with leading axes, axis 0 is one of them; otherwise it is V's first axis, read row by row
    _, nl, v_shape, _ = node.params
    return nl >= 1 or len(v_shape) >= 1


register(Primitive(
    "scatter_rows", "internal", param_names=("cols", "nl", "v_shape", "s_shape"),
    impl=_scatter_impl, build=lambda *c, cols, nl, v_shape, s_shape: scatter_rows(
        c, cols, nl, v_shape, s_shape),
    jvp=_scatter_jvp, vjp=_scatter_vjp, emit=_scatter_emit, keeps_batch=_keeps_batch,
    per_example_emit=False,  # loops over flattened rows
    doc="sparse rows (a few known columns per row) written into a dense array",
))
register(Primitive(
    "gather_rows", "internal", param_names=("cols", "nl", "v_shape", "s_shape"),
    impl=_gather_impl, build=gather_rows,
    jvp=lambda node, ts, ns: gather_rows(ts[0], *node.params),
    vjp=_gather_vjp, emit=_gather_emit, keeps_batch=_keeps_batch,
    per_example_emit=False,  # loops over flattened rows
    doc="transpose of scatter_rows: read one known column per row",
))
