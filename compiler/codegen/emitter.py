"""How primitives' ``emit`` rules write numba code: the ``Emitter`` (names, allocations, loop
nests, indexing with broadcasting, scalar code from the printer), shared by the CPU and CUDA
targets and by per-example kernels' batch-invariant prelude; and the pieces every CPU module
is assembled from (``njit_function``, ``cpu_module``).

Arrays of shape () are stored with shape (1,) so every kernel array has a rank.
"""

from __future__ import annotations

import contextlib
import re

import numpy as np

from ..ir import Graph, Node, type_str
from .printer import HELPERS, instantiate, scalar_program
from .vmath import vectorize


VECTOR_MATH_MIN_ITERATIONS = 1024  # loops this long call vmath's exp, expm1, tanh


def storage_shape(shape) -> tuple:
    return tuple(shape) if shape else (1,)


def dtype_code(dtype) -> str:
    return "np.bool_" if dtype.kind == "b" else f"np.{dtype.name}"


class Emitter:
    """What a primitive's ``emit`` rule writes through.

    Two sections: the prelude (allocations, views, batch-invariant work) and, in batched mode, the
    body of one ``prange`` loop over examples. While a batched node is emitted (``batched`` is
    true), allocations and views still go to the prelude, statements go to the body, and the
    node's first top-level loop over the batch axis is replaced by the example index ``b``."""

    blas = True  # large matrix products may call np.dot (numba's BLAS binding, from scipy)
    prange = True  # large loops outside the batch section may be parallel (see parallel_used)
    vector_math = True  # exp, expm1, tanh from vmath: loops over them vectorise

    def __init__(self, blas: bool = True):
        if not blas:  # ahead-of-time modules run without scipy
            self.blas = False
        self.prelude: list[str] = []
        self.body: list[str] = []
        self.names: dict[int, str] = {}
        self.consts: list[str] = []
        self.helpers: set[str] = set()
        self.batched = False
        self.batch_size = None
        self.parallel_used = False  # a rule wrote a prange loop: the kernel is parallel
        self._depth = 1
        self._iterations = 1  # of the loops open now
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
        shape, dt = self.storage(node), dtype_code(node.dtype)
        if self.batched and (zero or fill is not None):
            # each example initialises its own rows, in the loop: one pass over memory
            name = self.define(node, f"np.empty({shape}, {dt})")
            self.line(f"{name}[b] = {0 if zero else fill}")
            return name
        name = self.define(node, f"np.empty({shape}, {dt})")
        if zero or fill is not None:
            # a loop nest, not np.zeros / np.full: numba compiles those for each rank (~0.1 s
            # more than np.empty, in a fresh process); the loop costs a few ms to type
            with self.loops(storage_shape(node.shape)) as idx:
                self.line(f"{self.at(node, idx)} = {0 if zero else fill}")
        return name

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
        iterations = self._iterations
        self._iterations *= int(np.prod(shape, dtype=np.int64))
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
            self._iterations = iterations

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
        lines, result = instantiate(assigns, result, args, lambda: self.fresh("s"))
        # sin/cos are not: their fast range needs a fallback loop. Short loops keep libm's (the
        # helpers cost compile time that a few elements do not win back)
        if self.vector_math and self._iterations >= VECTOR_MATH_MIN_ITERATIONS:
            lines, vm_helpers, _ = vectorize(lines + [f"_ = {result}"], trig=False,
                                             fresh=lambda: self.fresh("vm"))
            lines, result = lines[:-1], lines[-1][len("_ = "):]
            self.helpers |= vm_helpers
        for line in lines:
            self.line(line)
        return result


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


# -- CPU module text ------------------------------------------------------------------------

def params_of(graph: Graph) -> str:
    return ", ".join(f"a{k}" for k in range(len(graph.args)))


def signature_of(graph: Graph) -> str:
    """The kernel's argument types, for the comment under its ``def``."""
    return ", ".join(f"a{k}: {type_str(a)}" for k, a in enumerate(graph.args))


def returning(names) -> str:
    """The return statement of a kernel: always a tuple."""
    return f"return ({', '.join(names)}{',' if len(names) == 1 else ''})"


def njit_function(name: str, params: str, body, flags: str = "", comment: str = "") -> str:
    """One ``@njit`` function (cached, numpy's error model; ``flags`` such as
    ``", parallel=True"``) whose body is the unindented ``body`` lines."""
    head = f"@njit(cache=True, error_model='numpy'{flags})\ndef {name}({params}):\n"
    if comment:
        head += f"    # {comment}\n"
    return head + "\n".join("    " + line for line in body) + "\n"


def cpu_module(header: str, helpers, consts, functions) -> str:
    """A generated module: header comment, imports, the helper functions and constants the
    code uses, then ``functions`` (sources, in order)."""
    parts = [header, "import math\n\nimport numpy as np\nfrom numba import njit, prange\n",
             *[HELPERS[h] for h in sorted(helpers)], *[c + "\n" for c in consts], *functions]
    return "\n".join(p for p in parts if p)
