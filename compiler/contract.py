"""Products of arrays, re-associated: the cheapest order for a chain of contractions.

Differentiation writes Jacobians as chains: an einsum with a seed identity, an elementwise
product with a derivative, another einsum, ... each a full intermediate array, in the order the
chain rule met them. Here every maximal product (einsums, elementwise monomials
``c * x0 * x1**2``, broadcasts of size-1 axes, constant identities feeding only those) is
flattened into one list of factors over named letters, identity factors are summed away where one
of their letters is summed (``sum_k A[i, k] delta(k, l) = A[i, l]``), and the product is rebuilt
as binary einsums in a greedy order (the pair whose result is smallest first, as opt_einsum's
greedy path does). The rebuilt product replaces the original only when it costs fewer
multiply-adds. Only nodes used once are absorbed, so nothing is computed twice.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp

from .ir import Node, rebuild, toposort, use_counts
from .ops.elementwise import X, ew, fill, is_fill
from .ops.linalg import LETTERS, einsum
from .ops.shape import diag_embed, reshape


class _Product:
    """``coef * prod_f factor_f[subs_f]`` with the letters of ``out`` kept; ``deltas`` are
    identity factors delta(c, d)."""

    def __init__(self, sizes, letters):
        self.factors: list[tuple[str, Node]] = []
        self.deltas: list[tuple[str, str]] = []
        self.coef = sp.S.One
        self.sizes = sizes  # letter -> size
        self.absorbed = 0  # multiply-adds of the nodes flattened into this product
        self.nodes = 0  # how many nodes were flattened
        self._fresh = letters  # letters not used yet

    def fresh(self):
        for c in self._fresh:
            if c not in self.sizes:
                return c
        raise _GiveUp("out of letters")


class _GiveUp(Exception):
    pass


def _is_identity(node: Node) -> bool:
    """diag_embed of ones with no leading or trailing axes: delta over its two halves."""
    return (node.prim == "diag_embed" and node.params[0] == 0 and node.params[2] == 0
            and is_fill(node.inputs[0], 1))


def _monomial(node: Node):
    """(coefficient, {input index: power}) when the ew expression is c * prod x_i**p_i."""
    if node.prim != "ew" or not node.inputs or node.dtype.kind != "f":
        return None
    coef, rest = node.params[0].as_coeff_Mul()
    powers = {}
    for f in sp.Mul.make_args(rest):
        base, p = f.as_base_exp()
        if base not in X[:len(node.inputs)] or not p.is_number:
            return None
        k = X.index(base)
        powers[k] = powers.get(k, 0) + p
    return (coef, powers) if coef.is_number else None


def _work(node: Node) -> int:
    if node.prim == "einsum":
        (ins, out), = node.params
        sizes = {}
        for sub, x in zip(ins, node.inputs):
            sizes.update(zip(sub, x.shape))
        return int(np.prod(list(sizes.values()), dtype=np.int64)) * max(1, len(ins) - 1)
    return node.size


def _absorbable(node: Node) -> bool:
    return node.prim == "einsum" or _monomial(node) is not None or _is_identity(node)


def _flatten(node: Node, subs: str, prod: _Product, uses, new, top: bool):
    """Add ``node`` (read with letters ``subs``) to ``prod`` as factors."""
    if is_fill(node):  # a constant factor (a broadcast of ones, say): only its value matters
        prod.coef *= node.params[0]
        return
    if not top and (uses[id(node)] != 1 or not _absorbable(node)):
        prod.factors.append((subs, new[id(node)]))
        return
    if _is_identity(node):
        k = node.ndim // 2
        prod.deltas += list(zip(subs[:k], subs[k:]))
        return
    prod.absorbed += _work(node)
    prod.nodes += 1
    if node.prim == "einsum":
        (ins, out), = node.params
        rename = dict(zip(out, subs))
        for sub, x in zip(ins, node.inputs):
            for c, n in zip(sub, x.shape):
                if c not in rename:
                    rename[c] = prod.fresh()
                    prod.sizes[rename[c]] = n
            _flatten(x, "".join(rename[c] for c in sub), prod, uses, new, False)
        return
    coef, powers = _monomial(node)
    prod.coef *= coef
    for k, p in powers.items():
        x = node.inputs[k]
        lead = node.ndim - x.ndim
        kept = [j for j in range(x.ndim) if x.shape[j] == node.shape[lead + j]]
        xsub = "".join(subs[lead + j] for j in kept)
        if p != 1:
            prod.factors.append((xsub, _squeezed(ew(X[0] ** p, [new[id(x)]]), kept)))
        elif len(kept) == x.ndim:
            _flatten(x, xsub, prod, uses, new, False)
        else:  # broadcast along size-1 axes: the factor is the array without them
            prod.factors.append((xsub, _squeezed(new[id(x)], kept)))


def _squeezed(x: Node, kept) -> Node:
    if len(kept) == x.ndim:
        return x
    if x.prim == "reshape" and x.inputs[0].shape == tuple(x.shape[j] for j in kept):
        return x.inputs[0]
    return reshape(x, tuple(x.shape[j] for j in kept))


def _eliminate_deltas(prod: _Product, out: str):
    """Sum identity factors away where one of their letters is not kept; the rest stay as
    small identity arrays."""
    deltas = list(prod.deltas)
    prod.deltas = []
    while deltas:
        c, d = deltas.pop()
        if c == d:
            continue
        if d in out and c in out:
            eye = fill(1, (prod.sizes[c],), prod.factors[0][1].dtype)
            prod.factors.append((c + d, diag_embed(eye, 0, 1, 0)))
            continue
        gone, keep = (d, c) if d not in out else (c, d)
        prod.factors = [(s.replace(gone, keep), x) for s, x in prod.factors]
        deltas = [(a.replace(gone, keep), b.replace(gone, keep)) for a, b in deltas]


def _cost(subs_list, sizes) -> int:
    return int(np.prod([sizes[c] for c in set("".join(subs_list))], dtype=np.int64))


def _greedy(prod: _Product, out: str):
    """Binary einsums in a greedy order; returns (node, multiply-adds)."""
    factors = list(prod.factors)
    total = 0
    while len(factors) > 1:
        best = None
        for i, j in itertools.combinations(range(len(factors)), 2):
            (si, _), (sj, _) = factors[i], factors[j]
            shares = set(si) & set(sj)
            others = set("".join(s for k, (s, _) in enumerate(factors) if k not in (i, j)))
            keep = [c for c in dict.fromkeys(si + sj) if c in others or c in out]
            size = int(np.prod([prod.sizes[c] for c in keep], dtype=np.int64))
            cost = _cost([si, sj], prod.sizes)
            key = (not shares, size, cost)
            if best is None or key < best[0]:
                best = (key, i, j, keep, cost)
        _, i, j, keep, cost = best
        if len(factors) == 2:
            keep = list(out)
        order = [c for c in out if c in keep] + [c for c in keep if c not in out]
        sub = "".join(order)
        (si, xi), (sj, xj) = factors[i], factors[j]
        node = einsum(((si, sj), sub), xi, xj)
        total += cost
        factors = [f for k, f in enumerate(factors) if k not in (i, j)] + [(sub, node)]
    (sub, node), = factors
    if sub != out:
        total += _cost([sub], prod.sizes)
        node = einsum(((sub,), out), node)
    return node, total


def _rebuild_product(root: Node, uses, new):
    """The re-associated product for ``root``, or None where it would not be cheaper."""
    letters = iter(LETTERS)
    out = "".join(next(letters) for _ in range(root.ndim))
    prod = _Product(dict(zip(out, root.shape)), letters)
    try:
        _flatten(root, out, prod, uses, new, True)
        if prod.nodes < 2 or not prod.factors:
            return None  # nothing was flattened into the root: nothing to re-associate
        if any(x.dtype != root.dtype for _, x in prod.factors):
            return None
        _eliminate_deltas(prod, out)
        letters = "".join(s for s, _ in prod.factors)
        if any(len(set(s)) != len(s) for s, _ in prod.factors) or set(out) - set(letters):
            return None  # a diagonal read, or an output letter only a broadcast carried
        if prod.coef != 1:  # scale the smallest factor
            k = min(range(len(prod.factors)), key=lambda k: prod.factors[k][1].size)
            sub, x = prod.factors[k]
            prod.factors[k] = (sub, ew(prod.coef * X[0], [x], x.shape, x.dtype))
        node, cost = _greedy(prod, out)
    except _GiveUp:
        return None
    return node if cost < prod.absorbed else None


def reassociate(outputs):
    """Rebuild the graph under ``outputs`` with every maximal product re-associated."""
    uses = use_counts(outputs)
    # a node is absorbed by its consumer when it is used once, by an absorbing node
    absorbed = set()
    for node in toposort(outputs):
        if node.prim == "einsum" or _monomial(node) is not None:
            absorbed.update(id(i) for i in node.inputs if uses[id(i)] == 1 and _absorbable(i))
    new = {}

    def replace(node, inputs):
        if id(node) in absorbed:
            return None
        if node.prim == "einsum" and node.dtype.kind == "f" or (
                _monomial(node) is not None
                and any(i.prim == "einsum" and uses[id(i)] == 1 for i in node.inputs)):
            return _rebuild_product(node, uses, new)
        return None

    return rebuild(outputs, replace, new)
