"""Graph -> numba CPU source: one ``@njit`` function, loops for array work.

Every non-argument node becomes one array variable, written by its primitive's ``emit`` rule
through the ``Emitter`` below (loop nests, indexing with broadcasting, scalar code from the
printer). Arrays of shape () are stored with shape (1,) so every kernel array has a rank.
"""

from __future__ import annotations

import contextlib
import re

import numpy as np

from ..batching import examples_apart
from ..ir import Graph, Node, type_str
from ..ops import lookup
from .printer import HELPERS, scalar_program
from .scalar import TooLarge, generate_per_example, generate_scalar


def storage_shape(shape) -> tuple:
    return tuple(shape) if shape else (1,)


def _dtype_code(dtype) -> str:
    return "np.bool_" if dtype.kind == "b" else f"np.{dtype.name}"


class Emitter:
    """What a primitive's ``emit`` rule writes through.

    Two sections: the prelude (allocations, views, batch-invariant work) and, in batched mode, the
    body of one ``prange`` loop over examples. While a batched node is emitted (``batched`` is
    true), allocations and views still go to the prelude, statements go to the body, and the
    node's first top-level loop over the batch axis is replaced by the example index ``b``."""

    blas = True  # large matrix products may call np.dot (numba's BLAS binding, from scipy)

    def __init__(self):
        self.prelude: list[str] = []
        self.body: list[str] = []
        self.names: dict[int, str] = {}
        self.consts: list[str] = []
        self.helpers: set[str] = set()
        self.batched = False
        self.batch_size = None
        self._depth = 1
        self._counter = 0

    # naming
    def fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def name(self, node: Node) -> str:
        return self.names[id(node)]

    def storage(self, node: Node) -> str:
        return repr(storage_shape(node.shape))

    # statements
    def line(self, text: str):
        target = self.body if self.batched else self.prelude
        depth = self._depth + 1 if self.batched else self._depth
        target.append("    " * depth + text)

    def define(self, node: Node, expr: str) -> str:
        """Bind the node's name (allocations and views: always in the prelude)."""
        name = self.names.setdefault(id(node), self.fresh("v"))
        self.prelude.append(f"    {name} = {expr}")
        return name

    def alloc(self, node: Node, zero: bool = False, fill=None) -> str:
        shape, dt = self.storage(node), _dtype_code(node.dtype)
        if self.batched and (zero or fill is not None):
            # each example initialises its own rows, in the loop: one pass over memory
            name = self.define(node, f"np.empty({shape}, {dt})")
            self.line(f"{name}[b] = {0 if zero else fill}")
            return name
        if zero:
            return self.define(node, f"np.zeros({shape}, {dt})")
        if fill is not None:
            return self.define(node, f"np.full({shape}, {fill}, {dt})")
        return self.define(node, f"np.empty({shape}, {dt})")

    def user_function(self, module: str, qualname: str) -> str:
        """A module-level name bound to a user's function (imported, njit-compiled)."""
        if not re.fullmatch(r"[A-Za-z_][\w.]*", module + "." + qualname, flags=re.ASCII):
            raise ValueError(f"cannot import {module}:{qualname} into generated code")
        self.helpers.add("_user_function")
        name = f"_U{len(self.consts)}"
        self.consts.append(f"{name} = _user_function({module!r}, {qualname!r})")
        return name

    def index_map(self, table, var: str) -> str:
        """An expression for ``table[var]`` (a static integer table): arithmetic when the table is
        affine modulo its range (stencils, rolls, strided gathers), else a constant array.
        numba compiles large constant arrays slowly, so tables are the exception."""
        table = np.asarray(table, dtype=np.int64)
        affine = _affine_mod(table)
        if affine is None:
            return f"{self.const(table)}[{var}]"
        a, b, m = affine
        expr = var if a == 1 else f"{a} * {var}"
        expr = expr if b == 0 else f"{expr} + {b}"
        return expr if m is None else f"({expr}) % {m}"

    def const(self, array: np.ndarray) -> str:
        name = f"_C{len(self.consts)}"
        self.consts.append(f"{name} = np.array({array.tolist()!r}, dtype=np.{array.dtype.name})")
        return name

    @contextlib.contextmanager
    def loops(self, shape):
        """Nested loops over ``shape``, yielding the index variables. In batched mode the
        outermost loop of a node, over the batch axis, is the example index ``b``."""
        shape = list(shape)
        idx = []
        top = self._depth == 1
        if self.batched and top:
            assert shape and shape[0] == self.batch_size, "batched loop must start at the batch"
            idx.append("b")
            shape = shape[1:]
        opened = 0
        for n in shape:
            var = self.fresh("i")
            self.line(f"for {var} in range({int(n)}):")
            self._depth += 1
            opened += 1
            idx.append(var)
        try:
            yield idx
        finally:
            self._depth -= opened

    # expressions
    def at(self, node: Node, idx) -> str:
        idx = list(idx)
        return f"{self.name(node)}[{', '.join(idx) if idx else '0'}]"

    @staticmethod
    def broadcast_index(shape, idx):
        """Index into an array of ``shape`` broadcast (right-aligned) to the loop ``idx``."""
        lead = len(idx) - len(shape)
        return [("0" if n == 1 else idx[lead + k]) for k, n in enumerate(shape)]

    def scalar_code(self, expr, args, dtype) -> str:
        """Emit the CSE temporaries of ``expr`` and return its final expression text."""
        assigns, result, helpers = scalar_program(expr)
        self.helpers |= helpers
        names = {f"_x{k}_": a for k, a in enumerate(args)}
        for tmp, _ in assigns:
            names[tmp] = self.fresh("s")

        def sub(text):
            return re.sub(r"_[xt]\d+_", lambda m: names[m.group(0)], text)

        for tmp, text in assigns:
            self.line(f"{names[tmp]} = {sub(text)}")
        return sub(result)


def _affine_mod(table: np.ndarray):
    """(a, b, m) with table[i] == (a*i + b) % m for every i (m None: no wrap-around), or None."""
    n = len(table)
    if n == 0 or table.min() < 0:
        return None
    i = np.arange(n, dtype=np.int64)
    a = int(table[1] - table[0]) if n > 1 else 0
    b = int(table[0])
    if np.array_equal(table, a * i + b):
        return a, b, None
    m = int(table.max()) + 1
    if n > 1 and np.array_equal(table, (a % m * i + b) % m):
        return a % m, b, m
    return None


PARALLEL_MIN_BATCH = 1000  # below this, a parallel loop costs more than it saves


def batch_plan(graph: Graph, min_batch: int = PARALLEL_MIN_BATCH):
    """(B, ids of batched nodes) when every output has batch size B >= ``min_batch`` on axis 0 and
    every op that reads a batched value keeps examples apart (the same rules batch_jacobian
    checks); else None. Batched arguments are those with B on axis 0."""
    outs = graph.outputs
    if not outs or any(o.ndim == 0 for o in outs):
        return None
    B = outs[0].shape[0]
    if B < min_batch or any(o.shape[0] != B for o in outs):
        return None
    sources = [a for a in graph.args if a.ndim >= 1 and a.shape[0] == B]
    sources += [n for n in graph.nodes() if _batch_broadcast(n, B)]
    if not sources:
        return None
    batched, mixing = examples_apart(outs, sources, B)
    if mixing is not None:
        return None
    if any(not lookup(n.prim).per_example_emit for n in graph.nodes() if id(n) in batched
           and n.prim != "arg"):
        return None  # e.g. user functions, called on whole arrays
    return B, batched


def _batch_broadcast(node: Node, B: int) -> bool:
    """A value repeated for every example (the per-example identity of batch_jacobian's seed):
    an elementwise node with B on axis 0 that reads nothing with more than one entry there."""
    return (node.prim == "ew" and node.ndim >= 1 and node.shape[0] == B > 1
            and all(i.ndim < node.ndim or i.shape[0] == 1 for i in node.inputs))


def emit_nodes(graph: Graph, em: Emitter, min_batch: int):
    """Name the arguments a0, a1, ... and run every node's emit rule through ``em``, batched
    where ``batch_plan(graph, min_batch)`` allows (shared by the CPU and CUDA targets)."""
    for k, a in enumerate(graph.args):
        em.names[id(a)] = f"a{k}"
    plan = batch_plan(graph, min_batch)
    if plan is not None:
        em.batch_size, batched = plan
    for node in graph.nodes():
        if id(node) in em.names:
            continue
        if node.prim == "arg":
            raise ValueError(f"graph uses an argument that is not in its args: {node}")
        em.batched = plan is not None and id(node) in batched
        lookup(node.prim).rule("emit")(node, em)
    em.batched = False
    return plan


def generate(graph: Graph, header: str = "") -> str:
    """The numba module source for ``graph``: a function ``<graph.name>(a0, a1, ...)`` returning a
    tuple of arrays (shape () outputs as shape (1,)). Small graphs become straight-line scalar
    code; graphs whose examples are independent along a large batch axis get one parallel loop
    over examples (see ``batch_plan``); the rest are loop nests, one per node."""
    plan = batch_plan(graph, min_batch=2)
    for unroll in (False, True):
        try:
            return generate_scalar(graph, header, unroll)
        except TooLarge:
            pass
        if plan is not None:
            B, batched = plan
            try:
                return generate_per_example(graph, B, batched, B >= PARALLEL_MIN_BATCH, header,
                                            unroll)
            except TooLarge:
                pass
    em = Emitter()
    emit_nodes(graph, em, PARALLEL_MIN_BATCH)
    lines = list(em.prelude)
    example = ""
    if em.body:
        # the parallel loop only calls a per-example function: numba's parfor pass is slow to
        # compile, and generates slow code, for large loop bodies
        used = sorted(set(re.findall(r"\b[av]\d+\b", "\n".join(em.body))),
                      key=lambda n: (n[0], int(n[1:])))
        example = (f"@njit(cache=True, error_model='numpy')\n"
                   f"def {graph.name}_example(b, {', '.join(used)}):\n"
                   + "\n".join(line[4:] for line in em.body) + "\n")
        lines.append(f"    for b in prange({em.batch_size}):")
        lines.append(f"        {graph.name}_example(b, {', '.join(used)})")
    outs = [f"{em.name(o)}.copy()" if o.prim == "arg" else em.name(o) for o in graph.outputs]
    lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
    params = ", ".join(f"a{k}" for k in range(len(graph.args)))
    signature = ", ".join(f"a{k}: {type_str(a)}" for k, a in enumerate(graph.args))
    parallel = ", parallel=True" if em.body else ""
    parts = [
        header,
        "import math\n\nimport numpy as np\nfrom numba import njit, prange\n",
        *[HELPERS[h] for h in sorted(em.helpers)],
        *[c + "\n" for c in em.consts],
        example,
        f"@njit(cache=True, error_model='numpy'{parallel})\ndef {graph.name}({params}):\n"
        f"    # {signature}\n" + "\n".join(lines) + "\n",
    ]
    return "\n".join(p for p in parts if p)
