"""Unrolled element code: one scalar statement per element of every computing node, no sympy.

The middle ground between straight-line code (``scalar.py``: the graph evaluated on sympy
symbols, CSE'd; the best code, but sympy's evaluation and CSE blow up on a few hundred entries
of nested Piecewise expressions) and loop nests (``cpu.py``: temporary arrays, loops of 5 or 8
iterations that do not vectorise). Here the graph itself is the common-subexpression structure
(it is hash-consed), so every element of an ``ew``/``einsum``/``reduce_sum`` node becomes one
local variable, and the structural primitives only rearrange element values (their numpy
implementations run on object arrays, as in ``scalar.py``). Known constants fold as code is
written (the one-hot seeds of Jacobians: products with 0 vanish, with 1 disappear), so each
per-example Jacobian costs what its nonzero entries cost.
"""

from __future__ import annotations

import functools
import numbers
import re

import numpy as np
import sympy as sp

from ..ir import Graph
from ..ops import lookup
from ..ops.elementwise import X
from ..ops.linalg import einsum_terms
from .printer import TooLarge, instantiate, scalar_program

# numba types every operation separately (about 3 ms each with its parallel lowering). A
# program run for a large batch may take a few seconds to compile (about what parallel loop
# nests for the same graph cost, for several times their speed); otherwise about one second.
MAX_UNROLLED_OPS = 1000
MAX_UNROLLED_OPS_ONCE = 300
_OPS = re.compile(r"[-+*/<>]|math\.|\bif\b")


class Term:
    """An element known only when the kernel runs: a variable (``atom``) or an expression.
    Arithmetic with Python numbers folds (x*0 = 0, x*1 = x, x+0 = x), so numpy's own reductions
    and scatters on object arrays write the code for reduce_sum, take_add and scatter_rows."""

    __slots__ = ("text", "atom", "load")

    def __init__(self, text: str, atom: bool = True, load: bool = False):
        self.text, self.atom, self.load = text, atom, load  # load: an array read

    def _wrapped(self):
        return self.text if self.atom else f"({self.text})"

    def __add__(self, other):
        if _is_number(other):
            return self if other == 0 else Term(f"{self.text} + {_number(other)}", False)
        return Term(f"{self.text} + {other.text}", False)

    __radd__ = __add__

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __neg__(self):
        return Term(f"-{self._wrapped()}", False)

    def __mul__(self, other):
        if _is_number(other):
            if other == 0:
                return 0.0
            return self if other == 1 else Term(f"{_number(other)}*{self._wrapped()}", False)
        return Term(f"{self._wrapped()}*{other._wrapped()}", False)

    __rmul__ = __mul__


def _is_number(v) -> bool:
    return isinstance(v, (numbers.Number, np.number, np.bool_))


def _number(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return repr(bool(v))
    v = float(v)
    return repr(v) if v >= 0 else f"({v!r})"


@functools.lru_cache(maxsize=4096)
def _ew_template(expr, consts):
    """``expr`` with the constant inputs substituted: a number, or (assigns, result, helpers)
    with ``_x<k>_`` placeholders for the remaining inputs."""
    env = {X[k]: (sp.true if c is True else sp.false if c is False else sp.Float(c)
                  if isinstance(c, float) else sp.Integer(c))
           for k, c in enumerate(consts) if c is not None}
    value = expr.xreplace(env) if env else expr
    if value.is_number or value in (sp.true, sp.false):
        return bool(value) if value in (sp.true, sp.false) else float(value)
    return scalar_program(value)


class _Writer:
    def __init__(self, max_ops: int):
        self.max_ops = max_ops
        self.lines: list[str] = []
        self.helpers: set[str] = set()
        self._counter = 0
        self._ops = 0
        self._loads: dict[str, Term] = {}

    def fresh(self, prefix="s"):
        self._counter += 1
        return f"{prefix}{self._counter}"

    def bind(self, value):
        """A variable (or number) holding ``value``."""
        if _is_number(value) or value.atom:
            return value
        name = self.fresh()
        self.emit(f"{name} = {value.text}")
        return Term(name)

    def use(self, value):
        """``value`` as an operand: an array element is read into a local once, at its first
        use (numba types every indexing separately: repeated reads cost compile time)."""
        if not (isinstance(value, Term) and value.load):
            return value
        local = self._loads.get(value.text)
        if local is None:
            local = self._loads[value.text] = Term(self.fresh("r"))
            self.emit(f"{local.text} = {value.text}")
        return local

    def emit(self, line: str):
        self._ops += len(_OPS.findall(line))
        if self._ops > self.max_ops:
            raise TooLarge("unrolled program too long")
        self.lines.append(line)

    def ew(self, node, values):
        arrays = [np.broadcast_to(np.asarray(v, dtype=object), node.shape) for v in values]
        out = np.empty(node.shape, dtype=object)
        expr = node.params[0]
        for idx in np.ndindex(*node.shape):
            ins = [self.use(a[idx]) for a in arrays]
            consts = tuple(_as_const(v) for v in ins)
            template = _ew_template(expr, consts)
            if not isinstance(template, tuple):
                out[idx] = template
                continue
            assigns, result, helpers = template
            self.helpers |= helpers
            lines, result = instantiate(
                assigns, result, [v.text if isinstance(v, Term) else _number(v) for v in ins],
                lambda: self.fresh("t"))
            for line in lines:
                self.emit(line)
            out[idx] = self.bind(Term(result, atom=False))
        return out

    def einsum(self, node, values):
        out = np.empty(node.shape, dtype=object)
        for oidx, terms in einsum_terms(node, values):
            total = 0.0
            for factors in terms:
                if not any(_is_number(f) and f == 0 for f in factors):
                    term = 1.0
                    for f in factors:
                        term = term * self.use(f)
                    total = total + term
            out[oidx] = self.bind(total)
        return out


def _as_const(v):
    if isinstance(v, Term):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return float(v) if not float(v).is_integer() else int(v)


def evaluate(graph: Graph, inputs, writer: _Writer):
    """Element values (object arrays of Terms and numbers) of the graph's outputs, writing the
    statements that compute them through ``writer``."""
    values = {id(a): np.asarray(v, dtype=object) for a, v in zip(graph.args, inputs)}
    for node in graph.nodes():
        if id(node) in values:
            continue
        if node.dtype.kind not in "fib":
            raise TooLarge(f"no unrolled code for dtype {node.dtype}")
        ins = [values[id(i)] for i in node.inputs]
        if node.prim == "ew":
            out = writer.ew(node, ins)
        elif node.prim == "einsum":
            out = writer.einsum(node, ins)
        elif node.prim in ("stop_gradient", "custom_vjp"):
            out = ins[0]
        elif lookup(node.prim).param_names and node.prim not in ("reduce_max", "reduce_min"):
            out = np.asarray(lookup(node.prim).apply_impl(node, *ins), dtype=object)
            out = np.vectorize(writer.bind, otypes=[object])(out) if out.size else out
        else:
            raise TooLarge(f"no unrolled code for primitive '{node.prim}'")
        values[id(node)] = np.asarray(out, dtype=object).reshape(node.shape)
    return [values[id(o)] for o in graph.outputs]


def unrolled_lines(graph: Graph, read, write, max_ops: int = MAX_UNROLLED_OPS_ONCE):
    """Statements computing every entry of the graph's outputs (zeros included): ``read(k, idx)``
    is the expression reading element idx of argument k, ``write(k, idx)`` the target for
    element idx of output k. Returns (lines, helpers); raises TooLarge beyond ``max_ops``
    operations."""
    writer = _Writer(max_ops)
    inputs = [np.array([Term(read(k, idx), load=True) for idx in np.ndindex(*a.shape)],
                       dtype=object).reshape(a.shape) for k, a in enumerate(graph.args)]
    outs = evaluate(graph, inputs, writer)
    lines = list(writer.lines)
    for k, out in enumerate(outs):
        for idx, v in np.ndenumerate(out):
            lines.append(f"{write(k, idx)} = {v.text if isinstance(v, Term) else _number(v)}")
    return lines, writer.helpers
