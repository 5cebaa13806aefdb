"""Graph -> numba CPU source: the choice of strategy, the batch plan, loop nests.

Every non-argument node of a loop-nest kernel becomes one array variable, written by its
primitive's ``emit`` rule through the ``Emitter`` (emitter.py).
"""

from __future__ import annotations

import re

from ..batching import examples_apart
from ..contract import reassociate
from ..ir import Graph, Node
from ..ops import lookup
from ..simplify import fuse
from .emitter import Emitter, cpu_module, njit_function, params_of, returning, signature_of
from .printer import TooLarge
from .scalar import generate_per_example, generate_scalar

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


def generate(graph: Graph, header: str = "", blas: bool = True, by_address: bool = True) -> str:
    """The numba module source for ``graph``: a function ``<graph.name>(a0, a1, ...)`` returning a
    tuple of arrays (shape () outputs as shape (1,)). In order of preference: straight-line
    scalar code (sympy) for the whole graph, or for one example run over the batch when examples
    are independent (see ``batch_plan``); the same two unrolled (unrolled.py) where sympy's
    expressions grow too large; else loop nests, one per node, after re-associating products.
    ``blas``: large matrix products may call np.dot (numba binds scipy's BLAS). ``by_address``:
    a parallel per-example kernel takes the address of its examples' C function as its first
    argument and runs it on numba's threads (``scalar._by_address``; ``cache.Kernel`` compiles
    and passes it); without, it is a numba parallel loop (ahead-of-time modules)."""
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
                                            unroll, blas, by_address)
            except TooLarge:
                pass
    # loop nests compute every intermediate array: products in the cheapest order found (the
    # scalar forms above evaluate element by element, where the chain rule's order is cheaper to
    # read and to compile)
    graph = Graph(graph.args, fuse(reassociate(graph.outputs)), graph.name)
    em = Emitter(blas)
    emit_nodes(graph, em, PARALLEL_MIN_BATCH)
    lines = [line[4:] for line in em.prelude]
    functions = []
    if em.body:
        # the parallel loop only calls a per-example function: numba's parfor pass is slow to
        # compile, and generates slow code, for large loop bodies
        used = ", ".join(sorted(set(re.findall(r"\b[av]\d+\b", "\n".join(em.body))),
                                key=lambda n: (n[0], int(n[1:]))))
        functions.append(njit_function(f"{graph.name}_example", f"b, {used}",
                                       [line[8:] for line in em.body]))
        lines += [f"for b in prange({em.batch_size}):", f"    {graph.name}_example(b, {used})"]
    lines.append(returning([f"{em.name(o)}.copy()" if o.prim == "arg" else em.name(o)
                            for o in graph.outputs]))
    parallel = ", parallel=True" if em.body or em.parallel_used else ""
    functions.append(njit_function(graph.name, params_of(graph), lines, parallel,
                                   signature_of(graph)))
    return cpu_module(header, em.helpers, em.consts, functions)
