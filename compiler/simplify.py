"""Rewrites between differentiation and code generation.

Most simplification happens when nodes are built: hash-consing is CSE, constructors fold constant
fills and zeros (``x * 0``, ``einsum`` with a zero operand, sums of fills, reshapes of fills),
and sympy canonicalizes each elementwise expression. This module adds the whole-graph passes:

``strip_identities``  stop_gradient / custom_vjp only matter to diff; they become their input.
``fuse``              an ``ew`` node used once, by an ``ew`` node of the same shape, is folded
                      into that consumer's expression (one loop instead of two, no temporary);
                      a pure broadcast is folded into every ew consumer (it reads the small
                      array).
``share_calls``       an elementwise node reads a function value another node computes of the
                      same input (tanh' = 1 - tanh(x)**2 reads tanh(x)) instead of calling again.
``fold_transposes``   a transpose of a single-use einsum is that einsum with its output
                      subscripts permuted (reverse-mode Jacobians end in one: the product is then
                      written in the final layout, with no transposed copy of it).
"""

from __future__ import annotations

import sympy as sp

from .ir import Graph, Node, rebuild, toposort, use_counts
from .ops.elementwise import X, ew
from .ops.linalg import einsum
from .ops.shape import broadcast_source

MAX_FUSED_INPUTS = 48


def strip_identities(outputs):
    def replace(node, inputs):
        if node.prim in ("stop_gradient", "custom_vjp"):
            return inputs[0]
        return None
    return rebuild(outputs, replace)


def _fusable(old: Node, new: Node, consumer: Node, uses) -> bool:
    """Fold ``new`` (the rebuilt ``old``) into ``consumer``: single-use, same-shape, float ew
    nodes (fusing never recomputes anything), and pure broadcasts of the same dtype whatever
    their uses (the consumer just reads the small array: a broadcast copy is never needed)."""
    producer = new
    if producer.prim != "ew" or not producer.inputs:
        return False
    if (broadcast_source(producer) is not None and producer.dtype == producer.inputs[0].dtype
            and producer.ndim <= consumer.ndim):
        return True
    return (
        uses[id(old)] == 1
        and producer.shape == consumer.shape
        and producer.dtype.kind == "f"
    )


def fuse(outputs):
    uses = use_counts(outputs)

    def replace(node, inputs):
        if node.prim != "ew":
            return None
        expr = node.params[0]
        subs, new_inputs = {}, []
        for k, (old, inp) in enumerate(zip(node.inputs, inputs)):
            room = len(new_inputs) + len(inp.inputs) < MAX_FUSED_INPUTS
            if room and _fusable(old, inp, node, uses):
                shift = {X[j]: sp.Symbol(f"_f{len(new_inputs) + j}", real=True)
                         for j in range(len(inp.inputs))}
                subs[X[k]] = inp.params[0].xreplace(shift)
                new_inputs.extend(inp.inputs)
            else:
                subs[X[k]] = sp.Symbol(f"_f{len(new_inputs)}", real=True)
                new_inputs.append(inp)
        expr = expr.xreplace(subs)
        expr = expr.xreplace({sp.Symbol(f"_f{j}", real=True): X[j] for j in range(len(new_inputs))})
        return ew(expr, new_inputs, node.shape, node.dtype)

    return rebuild(outputs, replace)


def fold_transposes(outputs):
    uses = use_counts(outputs)

    def replace(node, inputs):
        (x,) = inputs if node.prim == "transpose" else (None,)
        if x is None or x.prim != "einsum" or uses[id(node.inputs[0])] != 1:
            return None
        (ins, out), = x.params
        perm, = node.params
        return einsum((ins, "".join(out[p] for p in perm)), *x.inputs)

    return rebuild(outputs, replace)


def share_calls(outputs):
    """An elementwise node whose expression calls a function that another node already computes
    of the same input reads that node instead: derivatives restate their function (tanh' =
    1 - tanh(x)**2 next to tanh(x)), and the call is the expensive part."""
    computed = {}  # (id(input), expression in x0) -> the ew node computing it
    for node in toposort(outputs):
        if (node.prim == "ew" and len(node.inputs) == 1 and node.params[0].atoms(sp.Function)
                and node.shape == node.inputs[0].shape):  # not a broadcast
            computed.setdefault((id(node.inputs[0]), node.params[0]), node)
    new = {}

    def replace(node, inputs):
        if node.prim != "ew" or not computed:
            return None
        expr, inputs = node.params[0], list(inputs)
        for call in sorted(expr.atoms(sp.Function), key=sp.count_ops, reverse=True):
            (sym,) = call.free_symbols if len(call.free_symbols) == 1 else (None,)
            k = X.index(sym) if sym in X[:len(node.inputs)] else None
            source = None if k is None else computed.get(
                (id(node.inputs[k]), call.xreplace({sym: X[0]})))
            if source is not None and id(source) in new and expr.has(call):  # computed earlier
                expr = expr.xreplace({call: X[len(inputs)]})
                inputs.append(new[id(source)])
        if len(inputs) == len(node.inputs):
            return None
        return ew(expr, inputs, node.shape, node.dtype)

    return rebuild(outputs, replace, new)


def simplify(graph: Graph) -> Graph:
    outputs = share_calls(fuse(fold_transposes(strip_identities(graph.outputs))))
    return Graph(graph.args, outputs, graph.name)
