"""Vectorisable exp, expm1, tanh, sigmoid, sin and cos for loops over many examples.

numba calls libm for ``math.exp`` and friends: one scalar call per element, which keeps LLVM
from vectorising a loop over examples (a batched Jacobian spends most of its time there). These
are the same functions as polynomials after a range reduction (fdlibm's, with its
coefficients), branch-free, so the loop vectorises; they agree with libm to a few ulp.

``vectorize(lines)`` rewrites generated statements to call them. sin and cos are right only
for |x| <= ``TRIG_FAST_LIMIT`` (the reduction by pi/2 is exact below it): the code that calls
them checks every argument and, where one is out of range or not finite, computes again with
the original statements (libm), as ``generate_per_example`` does.

The functions below are source for the generated modules (``HELPERS``, numba-compiled there;
ahead-of-time modules must not need symtape), not for calling from Python.
"""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import sympy as sp

TRIG_FAST_LIMIT = 1e6  # |k| < 2**20 multiples of pi/2: k * PIO2_1 is exact


def _f64_from_bits(typingctx, bits):
    """The float64 whose bit pattern is the int64 ``bits`` (a numba intrinsic)."""
    from numba.core import types
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(signature.return_type))
    return sig, codegen


def _vexp(x):
    # exp(x) = 2**k * exp(r), r = x - k*ln2 in [-ln2/2, ln2/2] (ln2 in two parts: k*hi is exact)
    # beyond both ends exp is inf / 0 anyway. min and max are selects in numba (a conditional
    # expression is a branch, which can keep the loop from vectorising); NaN passes through
    xc = min(max(x, -746.0), 710.0)
    k = np.rint(xc * 1.4426950408889634)
    r = (xc - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10
    p = 1.0 + r * (1.0 + r * (0.5 + r * (1.6666666666666666e-01 + r * (
        4.1666666666666664e-02 + r * (8.3333333333333332e-03 + r * (
            1.3888888888888889e-03 + r * (1.9841269841269841e-04 + r * (
                2.4801587301587302e-05 + r * (2.7557319223985893e-06 + r * (
                    2.7557319223985888e-07 + r * (2.5052108385441720e-08 + r * (
                        2.0876756987868100e-09 + r * 1.6059043836821613e-10))))))))))))
    # 2**k in two factors, each a normal number, so subnormal and infinite results come out
    ki = np.int64(k)
    h = ki >> 1
    v = p * _f64_from_bits((h + 1023) << 52) * _f64_from_bits((ki - h + 1023) << 52)
    return x if x != x else v


def _vexpm1(x):
    # near 0 the series (no cancellation); elsewhere exp(x) - 1 loses at most two bits
    s = x * (1.0 + x * (0.5 + x * (1.6666666666666666e-01 + x * (
        4.1666666666666664e-02 + x * (8.3333333333333332e-03 + x * (
            1.3888888888888889e-03 + x * (1.9841269841269841e-04 + x * (
                2.4801587301587302e-05 + x * (2.7557319223985893e-06 + x * (
                    2.7557319223985888e-07 + x * (2.5052108385441720e-08 + x * (
                        2.0876756987868100e-09 + x * (1.6059043836821613e-10 + x * (
                            1.1470745597729725e-11 + x * 7.6471637318198164e-13))))))))))))))
    e = _vexp(x) - 1.0  # computed either way: a choice between two values is a select
    return s if abs(x) < 0.34657359027997264 else e


def _vtanh(x):
    # tanh|x| = e / (e + 2) with e = expm1(2|x|): accurate near 0; tanh(20) rounds to 1
    a = min(abs(x), 20.0)
    e = _vexpm1(2.0 * a)
    return math.copysign(e / (e + 2.0), x)


def _vsigmoid(x):
    # 1 / (1 + exp(-x)) with e = exp(-|x|) <= 1, so nothing overflows (the printer's _sigmoid,
    # without its branch)
    e = _vexp(-abs(x))
    r = 1.0 / (1.0 + e)
    return r if x >= 0 else e * r


def _vtrig(x, shift):
    # sin(x + shift * pi/2): sin for shift 0, cos for shift 1 (one function: numba types it once,
    # given an int64 shift, not a literal)
    # x = k*pi/2 + r, |r| <= pi/4 (pi/2 in four parts, the first three of 33 bits); then
    # fdlibm's kernels by quadrant
    k = np.rint(x * 6.36619772367581382433e-01)
    r = x - k * 1.57079632673412561417e+00
    r = r - k * 6.07710050630396597660e-11
    r = r - k * 2.02226624871116645580e-21
    r = r - k * 8.47842766036889956997e-32
    z = r * r
    s = r + r * z * (-1.66666666666666324348e-01 + z * (8.33333333332248946124e-03 + z * (
        -1.98412698298579493134e-04 + z * (2.75573137070700676789e-06 + z * (
            -2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)))))
    c = 1.0 - 0.5 * z + z * z * (4.16666666666666019037e-02 + z * (
        -1.38888888888741095749e-03 + z * (2.48015872894767294178e-05 + z * (
            -2.75573143513906633035e-07 + z * (2.08757232129817482790e-09 + z * (
                -1.13596475577881948265e-11))))))
    q = (np.int64(k) + shift) & 3
    v = s if (q & 1) == 0 else c
    return -v if (q & 2) != 0 else v


# (what the generated code calls, the helpers it needs)
_FUNCTIONS = {
    "exp": ("_vexp", ("_vexp", "_f64_from_bits")),
    "expm1": ("_vexpm1", ("_vexpm1", "_vexp", "_f64_from_bits")),
    "tanh": ("_vtanh", ("_vtanh", "_vexpm1", "_vexp", "_f64_from_bits")),
    "_sigmoid": ("_vsigmoid", ("_vsigmoid", "_vexp", "_f64_from_bits")),
    "sin": ("_vtrig", ("_vtrig",)),
    "cos": ("_vtrig", ("_vtrig",)),
}


def _helper_source(fn, decorator):
    return f"{decorator}\n{inspect.getsource(fn)}"


HELPERS = {
    "_f64_from_bits": "from numba.extending import intrinsic\n\n\n"
                      + _helper_source(_f64_from_bits, "@intrinsic"),
    # always inlined: LLVM's own heuristics left a call to _vtanh in some loops, and a call in
    # a loop keeps it from vectorising (14 ns per element instead of 1.7)
    **{fn.__name__: _helper_source(fn, "@njit(cache=True, forceinline=True)")
       for fn in (_vexp, _vexpm1, _vtanh, _vsigmoid, _vtrig)},
}


def uses_vector_math(graph) -> bool:
    """Whether some elementwise expression of ``graph`` calls a function defined here."""
    names = {"exp", "expm1", "tanh", "sin", "cos", "sigmoid"}
    return any(node.prim == "ew" and any(
        f.func.__name__ in names for f in node.params[0].atoms(sp.Function))
        for node in graph.nodes())


_CALL = re.compile(r"\b(?:math\.(exp|expm1|tanh|sin|cos)|(_sigmoid))\(")
_CALL_NO_TRIG = re.compile(r"\b(?:math\.(exp|expm1|tanh)|(_sigmoid))\(")


def _closing(text: str, start: int) -> int:
    """Index of the parenthesis closing the one opened just before ``start``."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced parentheses in generated code: {text!r}")


def vectorize(lines, trig: bool = True, fresh=None):
    """``lines`` with libm's exp, expm1, tanh (and, with ``trig``, sin and cos) replaced by the
    functions above, each call computed into a local of its own (named by ``fresh()``) before its
    statement: a call in a branch of a conditional expression (elu, relu') would keep the loop
    from vectorising, a select between two computed values does not. Returns (lines, helpers,
    trig_args): the sin/cos arguments' texts, which the caller must check against
    ``TRIG_FAST_LIMIT``."""
    helpers, trig_args, out = set(), [], []
    if fresh is None:
        count = iter(range(1, 1 << 62))

        def fresh():
            return f"vm{next(count)}"
    calls = _CALL if trig else _CALL_NO_TRIG

    def rewrite(text):
        parts, i = [], 0
        for m in calls.finditer(text):
            if m.start() < i:  # inside an argument already rewritten
                continue
            end = _closing(text, m.end())
            arg = rewrite(text[m.end():end])
            function = m.group(1) or m.group(2)
            name, needs = _FUNCTIONS[function]
            helpers.update(needs)
            if function in ("sin", "cos"):
                trig_args.append(arg)
                arg += ", vm_sin" if function == "sin" else ", vm_cos"
            local = fresh()
            out.append(f"{local} = {name}({arg})")
            parts += [text[i:m.start()], local]
            i = end + 1
        return "".join(parts) + text[i:]

    for line in lines:
        out.append(rewrite(line))
    if trig_args:
        # the shift as a variable: a literal 0 or 1 would make numba compile _vtrig once for
        # each (~80 ms); LLVM folds the constant after inlining either way
        out[:0] = ["vm_sin = np.int64(0)", "vm_cos = np.int64(1)"]
    return out, helpers, list(dict.fromkeys(trig_args))


def out_of_range(trig_args) -> str:
    """An expression, true when some sin/cos argument is beyond what ``_vtrig`` computes."""
    return " | ".join(f"(not abs({a}) <= {TRIG_FAST_LIMIT!r})" for a in trig_args)
