"""einsum: the one contraction primitive. matmul, dot, tensordot-like products and the
per-example products of batch Jacobians are all einsums with explicit subscripts."""

from __future__ import annotations

import string

import numpy as np

from ..ir import Node
from .elementwise import X, ew, fill, is_fill
from .registry import Primitive, register
from .shape import diag_embed, reshape

LETTERS = string.ascii_letters


def parse_spec(spec: str, nops: int) -> tuple:
    """'ij,jk->ik' -> (('ij', 'jk'), 'ik'). Explicit output required; no ellipsis."""
    spec = spec.replace(" ", "")
    if "->" not in spec or "." in spec:
        raise ValueError(f"einsum spec {spec!r}: symtape needs explicit '->' output subscripts "
                         "and no '...'")
    ins, out = spec.split("->")
    ins = tuple(ins.split(","))
    if len(ins) != nops:
        raise ValueError(f"einsum spec {spec!r} names {len(ins)} operands, got {nops}")
    return ins, out


def einsum(spec, *xs: Node) -> Node:
    ins, out = parse_spec(spec, len(xs)) if isinstance(spec, str) else spec
    sizes = {}
    for sub, x in zip(ins, xs):
        if len(sub) != x.ndim:
            raise ValueError(f"einsum operand with subscripts {sub!r} has shape {x.shape}")
        for letter, n in zip(sub, x.shape):
            if sizes.setdefault(letter, n) != n:
                raise ValueError(f"einsum: dimension {letter!r} is {sizes[letter]} in one operand "
                                 f"and {n} in another (shapes {[x.shape for x in xs]})")
    if len(set(out)) != len(out) or any(c not in sizes for c in out):
        raise ValueError(f"einsum: bad output subscripts {out!r}")
    shape = tuple(sizes[c] for c in out)
    dtype = np.result_type(*[x.dtype for x in xs])
    if any(is_fill(x, 0) for x in xs):
        return fill(0, shape, dtype)
    if len(xs) == 1 and ins[0] == out:
        return xs[0]
    return Node.make("einsum", tuple(xs), ((ins, out),), shape, dtype)


def einsum_terms(node: Node, values):
    """For each output entry of einsum ``node`` applied to ``values`` (arrays of any element
    type: symbolic evaluation in code generation), its index and its sum's terms, each the list
    of its factors."""
    (ins, out), = node.params
    sizes = {}
    for sub, v in zip(ins, values):
        sizes.update(zip(sub, np.shape(v)))
    summed = [c for c in dict.fromkeys("".join(ins)) if c not in out]
    for oidx in np.ndindex(*node.shape):
        env = dict(zip(out, oidx))
        terms = []
        for sidx in np.ndindex(*[sizes[c] for c in summed]):
            env.update(zip(summed, sidx))
            terms.append([v[tuple(env[c] for c in sub)] for sub, v in zip(ins, values)])
        yield oidx, terms


def _fresh(used, n):
    return "".join([c for c in LETTERS if c not in used][:n])


def _einsum_jvp(node, ts, ns):
    (ins, out), = node.params
    terms = []
    extra = _fresh(set("".join(ins) + out), ns)
    for i, t in enumerate(ts):
        if t is None:
            continue
        subs = tuple(s + extra if k == i else s for k, s in enumerate(ins))
        ops = tuple(t if k == i else x for k, x in enumerate(node.inputs))
        terms.append(einsum((subs, out + extra), *ops))
    if not terms:
        return None
    return ew(sum(X[k] for k in range(len(terms))), terms, None, node.dtype)


def _einsum_vjp(node, c, i, nl):
    (ins, out), = node.params
    target = ins[i]
    if len(set(target)) != len(target):
        raise NotImplementedError(
            f"no vjp rule for einsum '{','.join(ins)}->{out}' with a repeated index in the "
            "differentiated operand; write the diagonal with indexing instead"
        )
    lead = _fresh(set("".join(ins) + out), nl)
    others = [(s, x) for k, (s, x) in enumerate(zip(ins, node.inputs)) if k != i]
    present = set(out).union(*[set(s) for s, _ in others])
    kept = "".join(ch for ch in target if ch in present)
    res = einsum(((lead + out,) + tuple(s for s, _ in others), lead + kept), c,
                 *[x for _, x in others])
    if kept != target:  # letters summed away inside operand i alone: broadcast back along them
        x = node.inputs[i]
        padded = reshape(res, res.shape[:nl] + tuple(n if ch in present else 1
                                                     for ch, n in zip(target, x.shape)))
        res = ew(X[0], [padded], res.shape[:nl] + x.shape, node.dtype)
    return res


def _contract_broadcast(subs, ops, sizes, target, dtype):
    """einsum of ``ops`` to ``target``; letters of ``target`` that no operand has are broadcast
    (an identity contributes only its deltas, so such letters arise)."""
    present = set("".join(subs))
    inner = "".join(c for c in target if c in present)
    res = einsum((tuple(subs), inner), *ops) if ops else fill(1, (), dtype)
    if inner == target:
        return res
    padded = reshape(res, tuple(sizes[c] if c in present else 1 for c in target))
    return ew(X[0], [padded], tuple(sizes[c] for c in target), dtype)


def _renamed_operands(node, skip, d, d_sub, rename):
    """Subscripts (renamed), operands and letter sizes of every operand but ``skip``, plus ``d``
    with subscript ``d_sub`` when it is not the identity."""
    (ins, out), = node.params
    subs = ["".join(rename.get(c, c) for c in s_) for k, s_ in enumerate(ins) if k != skip]
    ops = [x for k, x in enumerate(node.inputs) if k != skip]
    if d is not None:
        subs.append("".join(rename.get(c, c) for c in d_sub))
        ops.append(d)
    sizes = {}
    for s_, x in list(zip(ins, node.inputs)) + [(out, node)]:
        sizes.update((rename.get(c, c), n) for c, n in zip(s_, x.shape))
    return subs, ops, sizes


def _with_deltas(subs, ops, sizes, shared, rename, dtype):
    """Add one small identity factor delta(c, rename[c]) over the ``shared`` letters (those the
    delta of a diagonal seed cannot sum away because the other side keeps them)."""
    if shared:
        sizes.update((c, sizes[rename[c]]) for c in shared)
        shape = tuple(sizes[c] for c in shared)
        subs.append("".join(shared) + "".join(rename[c] for c in shared))
        ops.append(diag_embed(fill(1, shape, dtype), 0, len(shape), 0))
    return subs, ops


def _einsum_jvp_diag(node, i, d, batch, ns):
    """Operand i's tangent is d[v] delta(v, s): summing the delta renames operand i's letters
    (all but the batch letter in batch mode) to the source letters; letters the output keeps
    get a small identity between them and their source letter."""
    (ins, out), = node.params
    sub = ins[i]
    free = sub[1:] if batch else sub
    if len(set(sub)) != len(sub) or len(free) != ns:
        return None
    src = _fresh(set("".join(ins) + out), ns)
    rename = dict(zip(free, src))
    subs, ops, sizes = _renamed_operands(node, i, d, sub, rename)
    subs, ops = _with_deltas(subs, ops, sizes, [c for c in free if c in out], rename, node.dtype)
    return _contract_broadcast(subs, ops, sizes, out + src, node.dtype)


def _einsum_vjp_diag(node, i, d, batch, nl):
    """The output's cotangent is d[o] delta(t, o): summing the delta renames the output's
    letters (all but the batch letter in batch mode) to the target letters; letters operand i
    has get a small identity between them and their target letter."""
    (ins, out), = node.params
    free = out[1:] if batch else out
    if len(set(ins[i])) != len(ins[i]) or len(free) != nl:
        return None
    lead = _fresh(set("".join(ins) + out), nl)
    rename = dict(zip(free, lead))
    subs, ops, sizes = _renamed_operands(node, i, d, out, rename)
    subs, ops = _with_deltas(subs, ops, sizes, [c for c in free if c in ins[i]], rename,
                             node.dtype)
    return _contract_broadcast(subs, ops, sizes, lead + ins[i], node.dtype)


def _einsum_keeps_batch(node, dep):
    (ins, out), = node.params
    letters = {ins[k][0] for k, d in enumerate(dep) if d}
    return (len(letters) == 1 and out[:1] == next(iter(letters))
            and all(ins[k].count(out[0]) == 1 for k, d in enumerate(dep) if d))


def _loop_order(ins, out, first=None):
    """Letters from outermost to innermost loop: a letter near the end of many arrays goes
    inside, so the inner loop walks memory contiguously (row-major). ``first`` is forced
    outermost (the batch letter in a per-example loop)."""
    arrays = list(ins) + [out, out]  # the output counts twice: read and written (+=)
    letters = list(dict.fromkeys("".join(ins)))

    def distance(c):  # summed distance from the last axis, over the arrays that have c
        return sum(len(a) - 1 - a.index(c) for a in arrays if c in a)

    return sorted(letters, key=lambda c: (c != first, -distance(c), letters.index(c)))


GEMM_MIN_WORK = 32 ** 3  # multiply-adds from which a BLAS call beats a loop nest


def _gemm_plan(ins, out, sizes):
    """How a two-operand einsum is one matrix product ``A @ B`` of 2-d views, or None:
    ``(m, k, n, a_perm, a_t, b_perm, b_t, out_nm)``. The output's letters must be its M letters
    (from A) then its N letters (from B), or N then M (``out_nm``: computed as B^T A^T). An
    operand whose letters are its two groups in either order is a view (``*_t``: stored
    transposed); any other order is copied once into that order (``*_perm``), which costs less
    than a transposed copy of the product. No letter may be shared by all three."""
    if len(ins) != 2 or any(len(set(s)) != len(s) for s in ins):
        return None
    a, b = ins
    K = "".join(c for c in a if c in b and c not in out)
    if not K or any(c in a and c in b for c in out):
        return None
    M, N = "".join(c for c in out if c in a), "".join(c for c in out if c in b)
    if sorted(M + K) != sorted(a) or sorted(K + N) != sorted(b) or not M or not N:
        return None
    if out not in (M + N, N + M):
        return None
    m, k, n = (int(np.prod([sizes[c] for c in g], dtype=np.int64)) for g in (M, K, N))
    if m * k * n < GEMM_MIN_WORK:
        return None

    def layout(sub, first, second):
        if sub == first + second:
            return None, False
        if sub == second + first:
            return None, True
        return tuple(sub.index(c) for c in first + second), False

    return (m, k, n) + layout(a, M, K) + layout(b, K, N) + (out != M + N,)


def _gemm_emit(node, em, plan) -> None:
    """``np.dot`` (BLAS) on 2-d views of the operands, writing into the output's storage."""
    m, k, n, a_perm, a_t, b_perm, b_t, out_nm = plan

    def operand(x, perm, transposed, rows, cols):
        name = em.name(x) if perm is None else f"{em.name(x)}.transpose({perm})"
        shape = (cols, rows) if transposed else (rows, cols)
        return f"np.ascontiguousarray({name}).reshape({shape})" + (".T" if transposed else "")

    a = operand(node.inputs[0], a_perm, a_t, m, k)
    b = operand(node.inputs[1], b_perm, b_t, k, n)
    dst = em.alloc(node)
    if out_nm:  # out^T = B^T A^T
        em.line(f"np.dot(({b}).T, ({a}).T, {dst}.reshape({(n, m)}))")
    else:
        em.line(f"np.dot({a}, {b}, {dst}.reshape({(m, n)}))")


def _einsum_emit(node, em):
    """A BLAS call for large matrix products (outside per-example loops, where the target has
    one); else zero the output, then one loop nest over all letters accumulating products (in a
    scalar when the innermost letter is summed); with no summed letter, each entry is assigned
    once."""
    (ins, out), = node.params
    sizes = {}
    for sub, x in zip(ins, node.inputs):
        sizes.update(zip(sub, x.shape))
    plan = _gemm_plan(ins, out, sizes) if em.blas and not em.batched else None
    if plan is not None and all(x.dtype == node.dtype and x.dtype.kind == "f"
                                for x in node.inputs):
        return _gemm_emit(node, em, plan)
    order = _loop_order(ins, out, first=out[0] if em.batched else None)
    inner_sum = order[-1] not in out and len(order) > 1
    summed = set("".join(ins)) - set(out)
    em.alloc(node, zero=bool(summed))  # without a summed letter each entry is written once
    with em.loops([sizes[c] for c in (order[:-1] if inner_sum else order)]) as idx:
        var = dict(zip(order, idx))
        dst = em.at(node, [var[c] for c in out])
        if not inner_sum:
            prod = " * ".join(em.at(x, [var[c] for c in sub]) for sub, x in zip(ins, node.inputs))
            em.line(f"{dst} {'+=' if summed else '='} {prod}")
            return
        acc = em.fresh("acc")
        em.line(f"{acc} = 0.0" if node.dtype.kind == "f" else f"{acc} = 0")
        with em.loops([sizes[order[-1]]]) as (last,):
            var[order[-1]] = last
            prod = " * ".join(em.at(x, [var[c] for c in sub]) for sub, x in zip(ins, node.inputs))
            em.line(f"{acc} += {prod}")
        em.line(f"{dst} += {acc}")


register(Primitive(
    "einsum", "structural",
    impl=lambda *xs, spec: np.einsum(spec if isinstance(spec, str)
                                     else ",".join(spec[0]) + "->" + spec[1], *xs),
    build=lambda *xs, spec: einsum(spec, *xs),
    jvp=_einsum_jvp, vjp=_einsum_vjp, emit=_einsum_emit, keeps_batch=_einsum_keeps_batch,
    jvp_diag=_einsum_jvp_diag, vjp_diag=_einsum_vjp_diag,
    doc="sum of products over named axes (matmul, dot, outer, batched products)",
))
