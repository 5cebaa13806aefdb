"""The intermediate representation: hash-consed array nodes and graphs of them.

A ``Node`` is one array value: the primitive that computes it (``prim``), its input nodes, static
parameters (``params``: hashable, never array values), its ``shape`` and its numpy ``dtype``.
Nodes are hash-consed (as tinygrad's UOps): constructing a node equal to a live one returns that
same object, so common subexpressions are shared for free and identity means structural equality.

A ``Graph`` is a function: argument nodes (prim ``"arg"``) in, output nodes out. Its
``structural_hash`` is the compile-cache key: structure, shapes, dtypes and scalar constants, never
the values of arguments.
"""

from __future__ import annotations

import atexit
import hashlib
import keyword
import re
import weakref

import numpy as np

_INTERNED: "weakref.WeakValueDictionary[tuple, Node]" = weakref.WeakValueDictionary()
# Empty the table before interpreter teardown: removing entries compares sympy parameters, which
# may import modules, and that fails noisily once shutdown has begun.
atexit.register(_INTERNED.clear)


class Node:
    """One array value in the IR. Build with ``Node.make``; never mutate."""

    __slots__ = ("prim", "inputs", "params", "shape", "dtype", "__weakref__")

    prim: str
    inputs: tuple
    params: tuple
    shape: tuple
    dtype: np.dtype

    @staticmethod
    def make(prim: str, inputs=(), params=(), shape=(), dtype=np.float64) -> "Node":
        """Return the unique node with these fields (creating it if no equal node is alive)."""
        inputs = tuple(inputs)
        shape = tuple(int(s) for s in shape)
        dtype = np.dtype(dtype)
        key = (prim, tuple(id(i) for i in inputs), params, shape, dtype.str)
        node = _INTERNED.get(key)
        if node is None:
            node = object.__new__(Node)
            node.prim, node.inputs, node.params = prim, inputs, params
            node.shape, node.dtype = shape, dtype
            _INTERNED[key] = node
        return node

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self) -> str:
        return f"Node({self.prim}, {type_str(self)})"


def arg(index: int, shape, dtype) -> Node:
    """The ``index``-th argument of a graph (a kernel argument at run time)."""
    return Node.make("arg", (), (index,), shape, dtype)


def type_str(node: Node) -> str:
    """jaxpr-style type, e.g. ``f64[2,3]``."""
    kind = {"f": "f", "i": "i", "u": "u", "b": "bool"}.get(node.dtype.kind, node.dtype.kind)
    bits = "" if kind == "bool" else str(8 * node.dtype.itemsize)
    return f"{kind}{bits}[{','.join(map(str, node.shape))}]"


def toposort(outputs) -> list[Node]:
    """All nodes reachable from ``outputs``, inputs before users (iterative: graphs can be deep)."""
    order, seen = [], set()
    for root in outputs:
        if id(root) in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((i, False) for i in reversed(node.inputs) if id(i) not in seen)
    return order


def rebuild(outputs, replace, new=None) -> list[Node]:
    """Copy the graph under ``outputs``, substituting nodes: ``replace(node, new_inputs)`` returns
    the new node (or None to keep the node's primitive with the new inputs). ``new``: the dict
    (id of an old node -> its copy) being filled, for rules that read earlier copies."""
    new = {} if new is None else new
    for node in toposort(outputs):
        inputs = tuple(new[id(i)] for i in node.inputs)
        out = replace(node, inputs)
        if out is None:
            same = all(a is b for a, b in zip(inputs, node.inputs))
            out = node if same else Node.make(node.prim, inputs, node.params, node.shape,
                                              node.dtype)
        new[id(node)] = out
    return [new[id(o)] for o in outputs]


def use_counts(outputs) -> dict:
    """id of node -> how many distinct consumers it has under ``outputs`` (being an output
    counts as one)."""
    uses = {}
    for node in toposort(outputs):
        for i in set(map(id, node.inputs)):
            uses[i] = uses.get(i, 0) + 1
    for o in outputs:
        uses[id(o)] = uses.get(id(o), 0) + 1
    return uses


def param_str(p) -> str:
    """Stable text for a parameter (used by the printer and the structural hash)."""
    if hasattr(p, "free_symbols"):  # a sympy expression
        return str(p)
    if isinstance(p, tuple):
        return "(" + ",".join(param_str(q) for q in p) + ")"
    if isinstance(p, float):
        return repr(p)
    if hasattr(p, "hash_key"):  # an opaque rule object (custom gradients)
        return p.hash_key()
    return repr(p)


class Graph:
    """A function of array arguments: ``args`` (nodes with prim "arg", in order) -> ``outputs``."""

    def __init__(self, args, outputs, name: str = "kernel"):
        self.args = tuple(args)
        self.outputs = tuple(outputs)
        self.name = identifier(name)
        for i, a in enumerate(self.args):
            if a.prim != "arg" or a.params != (i,):
                raise ValueError(f"graph argument {i} must be arg({i}), got {a}")

    def nodes(self) -> list[Node]:
        return toposort(self.outputs)

    def structural_hash(self) -> str:
        """sha256 of the graph's structure, shapes, dtypes and constants (the cache key)."""
        h = hashlib.sha256()
        h.update(";".join(f"{type_str(a)}" for a in self.args).encode())
        for line in self._lines(self.nodes(), numbered=True):
            h.update(line.encode())
            h.update(b"\n")
        h.update(("->" + ",".join(self._names[id(o)] for o in self.outputs)).encode())
        return h.hexdigest()

    def _lines(self, nodes, numbered=False):
        self._names = names = {}
        for node in nodes:
            names[id(node)] = (f"%{len(names)}" if numbered else _letters(len(names)))
            yield (
                f"{names[id(node)]}:{type_str(node)} = {node.prim}"
                f"[{param_str(node.params)}] " + " ".join(names[id(i)] for i in node.inputs)
            )

    def pretty(self) -> str:
        """A readable listing in the spirit of a jaxpr."""
        nodes = self.nodes()
        body = [n for n in nodes if n.prim != "arg"]
        lines = list(self._lines([a for a in self.args] + body))
        names = self._names
        head = " ".join(f"{names[id(a)]}:{type_str(a)}" for a in self.args)
        out = ", ".join(names[id(o)] for o in self.outputs)
        inner = "\n".join("    " + line for line in lines[len(self.args):])
        return f"{{ lambda {head} . let\n{inner}\n  in ({out}) }}"

    def __repr__(self) -> str:
        return self.pretty()


# Names generated modules define themselves; a function must not shadow them.
RESERVED_NAMES = {"np", "math", "njit", "prange"}


def identifier(name: str) -> str:
    """``name`` made a safe Python identifier (it becomes a function name in generated code):
    anything but ASCII letters, digits and underscores becomes '_'; keywords, names the module
    defines itself and names starting with '_' or a digit get a 'k_' prefix."""
    ident = re.sub(r"\W", "_", str(name), flags=re.ASCII)[:80] or "kernel"
    if (ident[0].isdigit() or ident[0] == "_" or keyword.iskeyword(ident)
            or ident in RESERVED_NAMES):
        ident = "k_" + ident
    return ident


def _letters(n: int) -> str:
    """0 -> a, 25 -> z, 26 -> ba, ... (jaxpr's alphabetic names)."""
    s = ""
    while True:
        s = chr(ord("a") + n % 26) + s
        n //= 26
        if n == 0:
            return s
