"""Straight-line scalar code for small graphs: no loops, no temporary arrays.

The graph is evaluated on numpy object arrays of sympy symbols (one per argument element): every
primitive's numpy implementation works on object arrays except the two that compute, ``ew``
(its expression, applied elementwise) and ``einsum`` (written out here). The outputs' nonzero
entries are CSE'd together by sympy and printed as assignments. numba compiles about 3 ms per
statement, so this is used only while the program stays short (see ``MAX_STATEMENTS``).
"""

from __future__ import annotations

import functools
import re

import numpy as np
import sympy as sp

from ..ir import Graph, Node, arg, rebuild, toposort
from ..ops import lookup
from ..ops.elementwise import X
from ..ops.linalg import einsum_terms
from .emitter import (Emitter, cpu_module, njit_function, params_of, returning, signature_of,
                      storage_shape)
from .printer import KernelPrinter, TooLarge
from .unrolled import MAX_UNROLLED_OPS, MAX_UNROLLED_OPS_ONCE, unrolled_lines
from .vmath import out_of_range, uses_vector_math, vectorize

MAX_SCALAR_WORK = 3000  # element operations in the graph (evaluation cost in sympy)
MAX_UNROLLED_WORK = 20000  # the same, for unrolled code (no sympy: Python-speed evaluation)
MAX_STATEMENTS = 400  # after CSE (numba compile time)
EXPLICIT_ZEROS = 64  # per-example outputs up to this size write their zeros one by one
EXAMPLES_PER_CALL = 256  # a parallel batch is split into calls of this many examples
VECTOR_MATH_MIN_BATCH = 64  # vectorisable exp, sin, ... (vmath) from this many examples on
MAX_UNROLLED_OPS_VECTOR = 3000  # unrolled operations per example, parallel and vectorised
MAX_TREE_SIZE = 1000  # nodes of one element's expression tree, shared subtrees counted again
MAX_TOTAL_TREE_SIZE = 50000  # the same, summed over a node's elements


def _as_number(b):
    """A boolean value as 1/0 (for a boolean input read as a number, e.g. by a cast)."""
    if b is sp.true or b is True:
        return sp.S.One
    if b is sp.false or b is False:
        return sp.S.Zero
    return sp.Piecewise((1, b), (0, True))


_BOOL = sp.symbols("b0:64")


def _ew(node, values):
    expr = node.params[0]
    if not values:
        return np.full(node.shape, expr, dtype=object)
    # a boolean input appears as the condition Ne(x_i, 0) (where): put the boolean itself there
    subs_bool = {}
    for i, x in enumerate(node.inputs):
        if x.dtype.kind == "b":
            expr = expr.replace(sp.Ne(X[i], 0), _BOOL[i])
            subs_bool[i] = True
    arrays = np.broadcast_arrays(*[np.asarray(v, dtype=object) for v in values])

    def scalar(*xs):
        env = {}
        for i, v in enumerate(xs):
            if i in subs_bool:
                env[_BOOL[i]] = v
                env[X[i]] = _as_number(v)
            else:
                env[X[i]] = v
        return expr.xreplace(env)

    apply = np.frompyfunc(scalar, len(arrays), 1)
    out = np.asarray(apply(*arrays), dtype=object)
    return np.broadcast_to(out, node.shape).copy()


def _einsum(node, values):
    result = np.empty(node.shape, dtype=object)
    for oidx, terms in einsum_terms(node, values):
        result[oidx] = sp.Add(*[sp.Mul(*fs) for fs in terms if all(f != 0 for f in fs)])
    return result


def work(graph: Graph) -> int:
    """Element operations needed to evaluate ``graph`` symbolically."""
    total = 0
    for node in graph.nodes():
        n = node.size
        if node.prim == "einsum":
            (ins, out), = node.params
            sizes = {}
            for sub, x in zip(ins, node.inputs):
                sizes.update(zip(sub, x.shape))
            n = int(np.prod([sizes[c] for c in sizes], dtype=np.int64))
        total += n
    return total


@functools.lru_cache(maxsize=4096)
def _tree_size(expr):
    """Nodes of a sympy expression tree and, per input symbol, how often it occurs."""
    occurrences = {}
    total = 0
    for e in sp.preorder_traversal(expr):
        total += 1
        if e in X:
            occurrences[e] = occurrences.get(e, 0) + 1
    return total, tuple(occurrences.get(X[i], 0) for i in range(64))


def _sizes(node, ins):
    """Expression-tree sizes of the node's elements, from its inputs' sizes (numpy, cheap):
    repeated arguments (relu, maximum repeat theirs) make trees double per layer, which sympy
    cannot evaluate or CSE in reasonable time, so this is checked before sympy runs."""
    if node.prim == "ew":
        total, occ = _tree_size(node.params[0])
        out = np.full(node.shape, total, dtype=np.int64)
        for k, s_ in enumerate(ins):
            if occ[k]:
                out = out + occ[k] * np.broadcast_to(s_, node.shape)
        return out
    if node.prim == "einsum":
        (subs, out_sub), = node.params
        spec = ",".join(subs) + "->" + out_sub
        terms = np.einsum(spec, *[np.ones(np.shape(s_), np.int64) for s_ in ins])
        out = terms.copy()
        for k in range(len(ins)):
            out += np.einsum(spec, *[s_ if j == k else np.ones(np.shape(s_), np.int64)
                                     for j, s_ in enumerate(ins)])
        return out
    if node.prim in ("stop_gradient", "custom_vjp"):
        return ins[0]
    prim = lookup(node.prim)
    if not prim.param_names or node.prim in ("reduce_max", "reduce_min"):
        raise TooLarge(f"no symbolic evaluation for primitive '{node.prim}'")
    return np.asarray(prim.apply_impl(node, *ins), dtype=np.int64).reshape(node.shape)


def check_size(graph: Graph):
    """Raise TooLarge when some element's expression would be too big for sympy."""
    sizes = {id(a): np.ones(a.shape, np.int64) for a in graph.args}
    for node in graph.nodes():
        if id(node) in sizes:
            continue
        s_ = _sizes(node, [sizes[id(i)] for i in node.inputs])
        if s_.size and (s_.max() > MAX_TREE_SIZE or s_.sum() > MAX_TOTAL_TREE_SIZE):
            raise TooLarge(f"expressions too large at {node.prim} (tree size {int(s_.max())})")
        sizes[id(node)] = s_


def evaluate(graph: Graph, inputs):
    """Values of the graph's outputs (object arrays) for ``inputs`` (object arrays)."""
    values = {id(a): np.asarray(v, dtype=object) for a, v in zip(graph.args, inputs)}
    for node in graph.nodes():
        if id(node) in values:
            continue
        ins = [values[id(i)] for i in node.inputs]
        if node.prim == "ew":
            out = _ew(node, ins)
        elif node.prim == "einsum":
            out = _einsum(node, ins)
        elif node.prim in ("stop_gradient", "custom_vjp"):
            out = ins[0]
        elif lookup(node.prim).param_names and node.prim not in ("reduce_max", "reduce_min"):
            out = lookup(node.prim).apply_impl(node, *ins)
        else:
            raise TooLarge(f"no symbolic evaluation for primitive '{node.prim}'")
        values[id(node)] = np.asarray(out, dtype=object).reshape(node.shape)
    return [values[id(o)] for o in graph.outputs]


def _arg_symbols(graph: Graph):
    arrays = []
    for k, a in enumerate(graph.args):
        real = a.dtype.kind != "b"  # boolean elements must be usable as conditions
        flat = [sp.Symbol(f"a{k}_" + "_".join(map(str, idx)) if idx else f"a{k}_", real=real)
                for idx in np.ndindex(*a.shape)]
        arrays.append(np.array(flat, dtype=object).reshape(a.shape))
    return arrays


def _straight_line(graph: Graph, read, write, printer, write_zeros=False):
    """Statements computing the graph's outputs: ``read(k, idx)`` is the expression reading
    element idx of argument k, ``write(k, idx)`` the target for element idx of output k (outputs
    start zeroed and only nonzero entries are written, unless ``write_zeros``). Raises
    TooLarge."""
    if work(graph) > MAX_SCALAR_WORK:
        raise TooLarge("graph too large for straight-line code")
    check_size(graph)
    symbols = _arg_symbols(graph)
    outs = evaluate(graph, symbols)
    entries = [(k, idx, v) for k, out in enumerate(outs) for idx, v in np.ndenumerate(out)
               if write_zeros or not (v == 0 and v is not sp.false)]
    temps = sp.numbered_symbols("t", real=True)
    pairs, reduced = sp.cse([sp.sympify(v) for _, _, v in entries], symbols=temps,
                            order="none")
    if len(pairs) + len(entries) > MAX_STATEMENTS:
        raise TooLarge("straight-line program too long")
    used = set().union(*[e.free_symbols for _, e in pairs], *[e.free_symbols for e in reduced])
    lines = []
    for k, a in enumerate(graph.args):
        for idx in np.ndindex(*a.shape):
            if symbols[k][idx] in used:
                lines.append(f"{symbols[k][idx]} = {read(k, idx)}")
    lines += [f"{sym} = {printer.doprint(e)}" for sym, e in pairs]
    lines += [f"{write(k, idx)} = {printer.doprint(e)}" for (k, idx, _), e in zip(entries, reduced)]
    return lines


def _index_text(idx):
    return ", ".join(map(str, idx)) if idx else "0"


def _zeros(node, batch=None):
    shape = ((batch,) + tuple(node.shape[1:])) if batch else (tuple(node.shape) or (1,))
    dt = "np.bool_" if node.dtype.kind == "b" else f"np.{node.dtype.name}"
    return f"np.zeros({shape!r}, {dt})"


def _program(graph: Graph, read, write, unroll: bool, write_zeros: bool = False,
             max_ops: int = MAX_UNROLLED_OPS_ONCE):
    """(statements, helpers) computing the graph's outputs: into zero-initialised outputs
    (straight-line code writes only nonzero entries) or, with ``write_zeros`` and always for
    unrolled code (at most ``max_ops`` operations), into uninitialised ones (every entry is
    written)."""
    if unroll:
        if work(graph) > MAX_UNROLLED_WORK:
            raise TooLarge("graph too large for unrolled code")
        return unrolled_lines(graph, read, write, max_ops)
    printer = KernelPrinter()
    return _straight_line(graph, read, write, printer, write_zeros), printer.helpers_used


def generate_scalar(graph: Graph, header: str = "", unroll: bool = False) -> str:
    """Straight-line (or, with ``unroll``, unrolled element) numba source for ``graph``, or
    raise TooLarge."""
    # small outputs get their zeros written one by one into np.empty: numba compiles np.zeros
    # (per rank, ~0.1 s more than np.empty in a fresh process) for longer than the stores take
    # to type
    every_entry = unroll or sum(o.size for o in graph.outputs) <= EXPLICIT_ZEROS
    lines, helpers = _program(graph, lambda k, idx: f"a{k}[{_index_text(idx)}]",
                              lambda k, idx: f"o{k}[{_index_text(idx)}]", unroll,
                              write_zeros=every_entry)
    alloc = "np.empty" if every_entry else "np.zeros"
    lines = [f"o{k} = {_zeros(o).replace('np.zeros', alloc)}"
             for k, o in enumerate(graph.outputs)] + lines
    lines.append(returning([f"o{k}" for k in range(len(graph.outputs))]))
    kind = "unrolled" if unroll else "straight-line"
    return cpu_module(header, helpers, (), [njit_function(
        graph.name, params_of(graph), lines, comment=f"{signature_of(graph)}  ({kind} code)")])


def one_example(graph: Graph, batched: set, hoisted=()) -> Graph:
    """The graph for a single example: batched nodes (axis 0 is the batch, examples kept apart)
    get batch size 1; the parameters that spell the batch size out follow. ``hoisted`` nodes
    (computed before the loop over examples) become arguments after the graph's own."""
    as_args = {id(h): arg(len(graph.args) + k, h.shape, h.dtype) for k, h in enumerate(hoisted)}

    def replace(node, inputs):
        if id(node) in as_args:
            return as_args[id(node)]
        if id(node) not in batched:
            return None
        if node.prim in ("diag_embed", "diag_extract") and node.params[0] == 0:
            # the batch axis is on the diagonal: each example's block sits at its own position
            raise TooLarge("per-example program depends on the example's index")
        shape = (1,) + node.shape[1:]
        params = node.params
        if node.prim == "reshape":
            params = (shape,)
        elif node.prim == "index":
            params = ((("r", 0, 1, 1),) + node.params[0][1:],)
        elif node.prim == "index_update":
            nl, full, spec = node.params
            params = (nl, (1,) + full[1:], (("r", 0, 1, 1),) + spec[1:])
        return Node.make(node.prim, inputs, params, shape, node.dtype)

    args = rebuild(graph.args, replace) + list(as_args.values())
    outputs = rebuild(list(graph.args) + list(graph.outputs), replace)[len(graph.args):]
    return Graph(args, outputs, graph.name)


_REARRANGING = ("reshape", "transpose", "index", "take", "concatenate")


def _rearranges(node: Node) -> bool:
    """Moves elements without arithmetic (an einsum with one operand and no summed letter)."""
    if node.prim == "einsum":
        (ins, out), = node.params
        return len(ins) == 1 and len(ins[0]) == len(out)
    return node.prim in _REARRANGING


def batch_invariant(graph: Graph, batched: set) -> list:
    """Nodes the per-example program reads that are the same for every example and computed
    with arithmetic from arguments (``W.T @ V``): worth computing once, before the loop.
    Rearranged arguments (``W.T``) are read where they are, and constants stay in the program,
    where the symbolic evaluation folds them (one-hot seeds)."""
    computed = set()  # not batched, arithmetic on arguments somewhere below
    for node in graph.nodes():
        if id(node) in batched or node.prim == "arg":
            continue
        below = [i for i in node.inputs if i.prim == "arg" or id(i) in computed]
        if any(id(i) in computed for i in node.inputs) or (below and not _rearranges(node)):
            computed.add(id(node))
    hoisted = {}
    for node in graph.nodes():
        if id(node) in batched:
            for i in node.inputs:
                if id(i) in computed:
                    hoisted[id(i)] = i
    return list(hoisted.values())


_NAME = re.compile(r"[A-Za-z_]\w*")


def _split_invariant(lines, varying):
    """Statements that read nothing of ``varying`` (names: the example index, batched arrays)
    nor of a local computed from them, apart from the rest: the first run once per call, before
    the loop over examples. LLVM cannot hoist a read of a weight array itself (it might alias
    the output), and in the loop such a read also keeps the loop from vectorising."""
    varying, once, each = set(varying), [], []
    for line in lines:
        target, _, value = line.partition(" = ")
        if target.isidentifier() and not varying & set(_NAME.findall(value)):
            once.append(line)
        else:
            each.append(line)
            if target.isidentifier():
                varying.add(target)
    return once, each


def _examples_loop(lines, fast, trig_args, varying, vector):
    """The loop over examples lo..hi: ``fast`` (``lines`` with vmath's functions), what does not
    vary per example hoisted before it; where sin/cos were made fast, the examples of a call
    with an argument beyond their range are computed again with ``lines`` (libm's)."""
    once, each = _split_invariant(fast, varying)
    # vector: an unsigned index, so numba adds no negative-index check, which LLVM cannot see
    # through. Elsewhere a signed one: with an unsigned example index in o[b, i, j], LLVM
    # vectorises the loop into scattered stores (Robertson's 3x3 rows ran 2.8x slower)
    loop = ("for b in range(np.uint64(lo), np.uint64(hi)):" if vector else
            "for b in range(lo, hi):")
    body = once + (["beyond = 0"] if trig_args else []) + [loop] + ["    " + x for x in each]
    if trig_args:
        body += [f"    beyond += {out_of_range(trig_args)}", "if beyond:", "    " + loop]
        body += ["        " + x for x in lines]
    return body


def generate_per_example(graph: Graph, B: int, batched: set, parallel: bool,
                         header: str = "", unroll: bool = False, blas: bool = True,
                         by_address: bool = False) -> str:
    """Straight-line (or unrolled) code for one example, run for each of the B examples (in
    parallel when ``parallel``, in calls of ``EXAMPLES_PER_CALL``): the form of a hand-written
    batched Jacobian kernel; ``by_address``: a parallel loop calls the examples as a C function
    (see ``_by_address``). Work that is the same for every example comes first, as loop
    nests, or before the loop over examples. Raises TooLarge."""
    if any(id(o) not in batched for o in graph.outputs):
        raise TooLarge("an output is not per example")
    hoisted = batch_invariant(graph, batched)
    em = Emitter(blas)
    for k, a in enumerate(graph.args):
        em.names[id(a)] = f"a{k}"
    for node in toposort(hoisted):
        if id(node) not in em.names:
            lookup(node.prim).rule("emit")(node, em)
    names = [f"a{k}" for k in range(len(graph.args))] + [em.name(h) for h in hoisted]
    batched_args = [id(a) in batched for a in graph.args] + [False] * len(hoisted)
    single = one_example(graph, batched, hoisted)
    outs = [f"o{k}" for k in range(len(graph.outputs))]

    batched_names = [n for n, f in zip(names, batched_args) if f] + outs
    rows = {n: int(np.prod(a.shape[1:], dtype=np.int64))
            for n, a in zip(names + outs, list(single.args) + list(single.outputs))}
    # Where the examples call exp, sin, ... the loop over them is made vectorisable: the math
    # functions by vmath, and batched arrays read and written flat, at unsigned offsets
    # (b * row + entry), which LLVM sees as constant strides (strides read off an array make it
    # assume stride 1 and run the scalar loop). Elsewhere the scalar loop is faster: LLVM's
    # vector code then scatters rows of a few entries.
    vector = B >= VECTOR_MATH_MIN_BATCH and uses_vector_math(single)
    consts = {}

    def unsigned(n):
        return consts.setdefault(n, f"u{n}")

    def element(name, shape, idx):
        if not vector:
            return f"{name}[{_index_text(('b',) + tuple(idx[1:]))}]"
        entry = int(np.ravel_multi_index(idx[1:], shape[1:])) if len(shape) > 1 else 0
        return f"{name}[p{name}{' + ' + unsigned(entry) if entry else ''}]"

    def read(k, idx):
        if batched_args[k]:
            return element(names[k], single.args[k].shape, idx)
        return f"{names[k]}[{_index_text(idx)}]"

    # small rows are written entry by entry, zeros included (as by hand); larger ones are
    # zeroed here, in the same pass as the writes (a separate np.zeros pass writes the whole
    # output twice)
    every_entry = unroll or sum(o.size for o in single.outputs) <= EXPLICIT_ZEROS
    # a vectorised loop is worth more compile time: it runs 10x faster than loop nests (which
    # call libm per element); the others pay about 3 ms of numba typing per operation
    max_ops = (MAX_UNROLLED_OPS_VECTOR if parallel and vector else
               MAX_UNROLLED_OPS if parallel else MAX_UNROLLED_OPS_ONCE)
    lines, helpers = _program(
        single, read, lambda k, idx: element(outs[k], single.outputs[k].shape, idx), unroll,
        write_zeros=every_entry, max_ops=max_ops)
    if not every_entry:
        lines = [f"{o}[p{o}:p{o} + {unsigned(rows[o])}] = 0" if vector else f"{o}[b] = 0"
                 for o in outs] + lines
    trig_args = ()
    fast = lines
    if vector:
        lines = [f"p{n} = b * {unsigned(rows[n])}" for n in batched_names] + lines
        fast, vm_helpers, trig_args = vectorize(lines)
        helpers = set(helpers) | vm_helpers
    examples = [f"{u} = np.uint64({n})" for n, u in consts.items()]
    examples += _examples_loop(lines, fast, trig_args, {"b"} | set(batched_names), vector)

    body = [line[4:] for line in em.prelude]
    body += [f"o{k} = {_zeros(o, B).replace('np.zeros', 'np.empty')}"
             for k, o in enumerate(graph.outputs)]
    flat = [vector and n in batched_names for n in names + outs]
    # (dtype, shape) of each array the examples read or write, as passed
    values = list(graph.args) + list(hoisted) + list(graph.outputs)
    specs = [(v.dtype, (v.size,) if f else storage_shape(v.shape)) for f, v in zip(flat, values)]
    by_address = (parallel and by_address
                  and all(dt.kind in "iuf" for dt, _ in specs))  # carray has no bool pointers
    kind = "unrolled" if unroll else "straight-line"
    comment = f"{signature_of(graph)}  ({kind} code per example)"
    chunks = -(-B // EXAMPLES_PER_CALL)  # of a parallel kernel's examples
    if by_address:
        return cpu_module(header, set(helpers) | em.helpers | {"_ptr", "_threads"}, em.consts,
                          _by_address(graph, B, chunks, names + outs, names[len(graph.args):],
                                      specs, examples, body, outs, comment))
    if vector:  # flat views (no copy: the arrays are C-contiguous)
        body += [f"{n}f = np.ascontiguousarray({n}).reshape(-1)" for n in batched_names]
    args = ", ".join(f"{n}f" if f else n for n, f in zip(names + outs, flat))
    if parallel:  # a chunk's end as a conditional expression: numba compiles min() for ~20 ms
        hi = f"(c + 1) * {EXAMPLES_PER_CALL} if c < {chunks - 1} else {B}"
        body += [f"for c in prange({chunks}):",
                 f"    {graph.name}_examples(c * {EXAMPLES_PER_CALL}, {hi}, {args})"]
    else:
        body.append(f"{graph.name}_examples(0, {B}, {args})")
    body.append(returning(outs))
    return cpu_module(header, set(helpers) | em.helpers, em.consts, [
        # a plain call, not numba's inline='always': numba's parfor passes are slow on large
        # loop bodies
        njit_function(f"{graph.name}_examples", ", ".join(["lo", "hi"] + names + outs),
                      examples),
        njit_function(graph.name, params_of(graph), body,
                      ", parallel=True" if parallel else "", comment)])


def _by_address(graph, B, chunks, params, hoisted, specs, examples, body, outs, comment) -> list:
    """The per-example function as a C function that numba's threading layer runs: the kernel
    ``name(examples, a0, a1, ...)``, where ``examples`` is the address of ``<name>_examples``
    (plain Python, with its numba signature ``<name>_examples_signature``; the kernel's caller
    compiles it with ``numba.cfunc``). The kernel is not a numba parallel loop: numba compiles a
    parallel loop into a gufunc around its body (the seed MLP's kernel: 0.6-0.8 s in a fresh
    process, 0.3 s as a plain function; and 17-19 µs per call at B = 1000, against 4-5 µs), and
    would link per-example code called directly into the loop's module and its outlined body,
    for LLVM to optimise three times. The kernel hands the C function to ``numba_parallel_for``,
    the entry point of numba's threading layer that those gufuncs call. ``hoisted``: the params
    computed in the kernel, before the examples run."""
    name = graph.name
    unpack = [f"{p} = carray(_ptr(at[{k}], np.{dt.name}(0)), {tuple(shape)!r})"
              for k, (p, (dt, shape)) in enumerate(zip(params, specs))]
    # numba_parallel_for gives each thread a range of one array's entries (the chunk indices):
    # args[0] points at its first, dims[0] says how many (OpenMP: one at a time)
    span = [f"lo = args[0][0] * {EXAMPLES_PER_CALL}",
            f"hi = lo + dims[0] * {EXAMPLES_PER_CALL}",
            f"if hi > {B}:", f"    hi = {B}"]
    # The arguments arrive C-contiguous (Kernel and the fast path see to it) and the outputs
    # are allocated here: their addresses are passed as they are (each np.ascontiguousarray
    # costs numba ~25 ms to compile, per rank). A hoisted value may be a view: it is copied.
    n = len(params)
    body = body + [f"{p}c = np.ascontiguousarray({p})" for p in hoisted]
    body += ["# at: the arrays' addresses, then numba_parallel_for's args, dims and steps and "
             "the chunk indices",
             f"at = np.empty({n + 3 + chunks}, np.int64)"]
    body += [f"at[{k}] = {p}{'c' if p in hoisted else ''}.ctypes.data"
             for k, p in enumerate(params)]
    body += [f"for c in range({chunks}):", f"    at[{n + 3} + c] = c",
             "a = np.int64(at.ctypes.data)",
             f"at[{n}] = a + {8 * (n + 3)}  # args[0]: the chunk indices",
             f"at[{n + 1}] = {chunks}  # dims[0]: how many",
             f"at[{n + 2}] = 8  # steps[0]: their stride in bytes",
             f"_parallel_for(examples, a + {8 * n}, a + {8 * (n + 1)}, a + {8 * (n + 2)}, a, "
             f"0, 1, _num_threads())"]
    # read after the threads ran, so that numba keeps the copies alive until then
    if hoisted:
        body.append(f"at[0] = {' + '.join(f'{p}c.size' for p in hoisted)}")
    body.append(returning(outs))
    return [
        f"{name}_examples_signature = types.void(types.CPointer(types.CPointer(types.int64)), "
        "types.CPointer(types.int64), types.CPointer(types.int64), types.CPointer(types.int64))\n",
        f"def {name}_examples(args, dims, steps, at):\n"
        f"    # numba.cfunc({name}_examples_signature) compiles this at the first call; the\n"
        f"    # kernel below runs it on numba's threads, for chunks of {EXAMPLES_PER_CALL} "
        "examples; at: the\n    # arrays' addresses\n"
        + "\n".join("    " + line for line in span + unpack + examples) + "\n",
        njit_function(name, "examples, " + params_of(graph), body, "", comment)]
