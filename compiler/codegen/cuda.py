"""Graph -> numba.cuda source: the same derivative graphs as the CPU target, on the GPU.

The module has three parts, all generated from one pass of the primitives' ``emit`` rules through
``CudaEmitter`` (the CPU ``Emitter`` with allocations moved to the host):

- ``<name>(a0, a1, ...)``, a plain Python host function. It takes device arrays (C-contiguous,
  in the graph's storage shapes: shape () is stored as (1,)), allocates every temporary and output
  with ``cuda.device_array`` (views are ``.reshape``s of those), launches the kernels below in
  order, and returns a tuple of device arrays. Nothing is copied between host and device here;
  ``symtape.cuda`` (the runtime) does that.
- ``<name>_serial``, a kernel run by one thread (launched ``[1, 1]``): the batch-invariant work of
  a batched graph (``W.T``, constants broadcast to a shape, ...), or the whole graph when it has no
  batch plan (a single Jacobian, programs that mix examples).
- ``<name>_kernel``, one thread per example: ``b = cuda.grid(1)``; ``if b < B``: the
  per-example statements of the batched section, exactly those that ``cpu.generate`` puts in its
  ``prange`` body.

Fills (``np.zeros``/``np.full`` on the CPU) become loops written by the thread that owns the
array: for a batched array each thread fills its own example ``[b, ...]`` inside the kernel. ``_SIGNATURES`` lists each kernel's numba signature (C-contiguous arrays), so kernels
can be compiled ahead of the first launch, e.g. to PTX with ``numba.cuda.compile_ptx``, without a
GPU. Device functions (helpers such as ``_sigmoid``) are inlined at the numba IR
level (``inline='always'``), which is also what lets ``compile_ptx`` work without a device.

Not here yet: a tiled scheme for large per-example work (one thread per example runs the
matmul loops of one example; temporaries are (B, ...) arrays in global memory, example-major).
"""

from __future__ import annotations

import re

from ..ir import Graph, Node, type_str
from ..ops import lookup
from .cpu import emit_nodes
from .emitter import Emitter, dtype_code, storage_shape
from .printer import HELPERS

THREADS_PER_BLOCK = 128
MIN_BATCH = 2  # from this batch size, one thread per example (one example: just one thread)

_NAMES = re.compile(r"\b[av]\d+\b")
_NJIT_DECORATOR = re.compile(r"^@njit\([^)]*\)$", re.MULTILINE)
# an output that is an argument is returned as a copy (as on the CPU)
_DEVICE_COPY = ("def _device_copy(a):\n    out = cuda.device_array(a.shape, a.dtype)\n"
                "    out.copy_to_device(a)\n    return out\n")


def cuda_helper(name: str) -> str:
    """The CUDA version of a printer helper: the same body as a device function."""
    text = HELPERS[name]
    if not _NJIT_DECORATOR.search(text):
        raise NotImplementedError(f"helper {name!r} has no CUDA device-function form")
    return _NJIT_DECORATOR.sub("@cuda.jit(device=True, inline='always')", text)


def _numba_array_type(node: Node) -> str:
    dt = "boolean" if node.dtype.kind == "b" else node.dtype.name
    ndim = len(storage_shape(node.shape))
    return f"{dt}[{', '.join([':'] * (ndim - 1) + ['::1'])}]"


class CudaEmitter(Emitter):
    """The CPU Emitter with host/device separation: allocations and views are host lines
    (``host``); ``prelude`` holds only computing statements (run by the serial kernel), ``body``
    the per-example ones, as on the CPU."""

    blas = False  # no np.dot in kernels: products are loop nests
    prange = False  # the serial kernel is one thread
    vector_math = False  # CUDA's own exp, tanh, ... are the fast ones there

    def __init__(self):
        super().__init__()
        self.host: list[str] = []  # allocations and views, run by the host function
        self.kinds: dict[str, Node] = {}  # name -> node whose storage it has (for signatures)

    def define(self, node: Node, expr: str) -> str:
        name = self.names.setdefault(id(node), self.fresh("v"))
        self.host.append(f"    {name} = {expr}")
        self.kinds[name] = node
        return name

    def alloc(self, node: Node, zero: bool = False, fill=None) -> str:
        shape, dt = self.storage(node), dtype_code(node.dtype)
        name = self.define(node, f"cuda.device_array({shape}, {dt})")
        if zero or fill is not None:
            value = "0" if zero else fill
            # top-level loops: in batched mode the first index is the example b (each thread
            # fills its own example), otherwise the serial kernel fills the whole array
            with self.loops(storage_shape(node.shape)) as idx:
                self.line(f"{self.at(node, idx)} = {value}")
        return name

    def user_function(self, module: str, qualname: str) -> str:
        raise NotImplementedError(
            f"target='cuda': the user primitive {module}:{qualname} is a CPU (numba njit) "
            "function and cannot run inside a CUDA kernel; use the CPU target for this function")


def _used(lines) -> list[str]:
    found = set(_NAMES.findall("\n".join(lines)))
    return sorted(found, key=lambda n: (n[0], int(n[1:])))


def generate(graph: Graph, header: str = "") -> str:
    """The numba.cuda module source for ``graph`` (see the module docstring). The host function
    ``<graph.name>(a0, a1, ...)`` returns a tuple of device arrays, shape () outputs as (1,)."""
    for node in graph.nodes():
        if node.prim != "arg" and getattr(lookup(node.prim), "kind", "") == "user":
            raise NotImplementedError(
                f"target='cuda': graph {graph.name!r} calls the user primitive '{node.prim}', a "
                "CPU (numba njit) function that cannot run inside a CUDA kernel; use the CPU "
                "target for this function")
    em = CudaEmitter()
    for k, a in enumerate(graph.args):
        em.kinds[f"a{k}"] = a
    emit_nodes(graph, em, MIN_BATCH)

    name = graph.name
    kernels = []  # (kernel name, source, launch line)
    signatures = {}

    def signature(params):
        return "void(" + ", ".join(_numba_array_type(em.kinds[p]) for p in params) + ")"

    if em.prelude:
        params = _used(em.prelude)
        src = (f"@cuda.jit\ndef {name}_serial({', '.join(params)}):\n"
               f"    # run by one thread: {'batch-invariant work' if em.body else 'the graph'}\n"
               + "\n".join(em.prelude) + "\n")
        kernels.append((src, f"    {name}_serial[1, 1]({', '.join(params)})"))
        signatures[f"{name}_serial"] = signature(params)
    if em.body:
        params = _used(em.body)
        B = em.batch_size
        threads = min(THREADS_PER_BLOCK, B)
        blocks = -(-B // threads)
        # the example's statements sit in the kernel itself: a call with more than 30
        # arguments compiles to CALL_FUNCTION_EX, which numba cannot inline
        src = (f"@cuda.jit\ndef {name}_kernel({', '.join(params)}):\n"
               f"    # one thread per example, {B} examples\n"
               f"    b = cuda.grid(1)\n"
               f"    if b < {B}:\n"
               + "\n".join(em.body) + "\n")
        kernels.append((src, f"    {name}_kernel[{blocks}, {threads}]({', '.join(params)})"))
        signatures[f"{name}_kernel"] = signature(params)

    outs = [f"_device_copy({em.name(o)})" if o.prim == "arg" else em.name(o)
            for o in graph.outputs]
    args = ", ".join(f"a{k}" for k in range(len(graph.args)))
    arg_types = ", ".join(f"a{k}: {type_str(a)}" for k, a in enumerate(graph.args))
    host = (f"def {name}({args}):\n"
            f"    # {arg_types}\n"
            f"    # device arrays in, device arrays out (shape () stored as (1,))\n"
            + "".join(line + "\n" for line in em.host)
            + "".join(launch + "\n" for _, launch in kernels)
            + f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})\n")
    sig_lines = "".join(f"    {k!r}: {v!r},\n" for k, v in signatures.items())
    parts = [
        header,
        "import math\n\nimport numpy as np\nfrom numba import cuda\n",
        *[cuda_helper(h) for h in sorted(em.helpers)],
        *[c + "\n" for c in em.consts],
        _DEVICE_COPY if any(o.prim == "arg" for o in graph.outputs) else "",
        *[src for src, _ in kernels],
        ("# numba signatures of the kernels (C-contiguous arrays), for compiling ahead of a "
         f"launch\n_SIGNATURES = {{\n{sig_lines}}}\n"),
        host,
    ]
    return "\n".join(p for p in parts if p)
