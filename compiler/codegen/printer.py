"""Scalar code for numba kernels: sympy expressions -> Python expressions over ``math``.

A PythonCodePrinter subclass (as sympy's own printers are tables over a base printer): floats
print exactly (``repr``), Piecewise prints as nested conditional expressions (not numpy.select:
this is scalar code inside loops), and the few functions sympy lacks print as calls to helpers
that the module defines (``HELPERS``), recorded in ``helpers_used``.
"""

from __future__ import annotations

import functools
import re

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from . import vmath

# Helper functions some expressions need, as numba source. Numerically stable forms.
HELPERS = {
    "_sigmoid": (
        "@njit(cache=True, inline='always')\n"
        "def _sigmoid(x):\n"
        "    if x >= 0:\n"
        "        return 1.0 / (1.0 + math.exp(-x))\n"
        "    e = math.exp(x)\n"
        "    return e / (1.0 + e)\n"
    ),
    "_softplus": (
        "@njit(cache=True, inline='always')\n"
        "def _softplus(x):\n"
        "    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))\n"
    ),
}


# Generated modules that call a user's primitive import it by name (see Emitter.user_function);
# plain Python, so an ahead-of-time module needs nothing of symtape to do it.
HELPERS["_user_function"] = (
    "def _user_function(module, qualname):\n"
    "    import importlib\n"
    "    obj = importlib.import_module(module)\n"
    "    for part in qualname.split('.'):\n"
    "        obj = getattr(obj, part)\n"
    "    return obj if hasattr(obj, 'py_func') else njit(cache=True)(obj)\n"
)
HELPERS.update(vmath.HELPERS)  # vectorisable math for loops over examples
# The typed pointer at an address (the per-example C functions read arrays through carray).
HELPERS["_ptr"] = (
    "from numba import carray, types\n"
    "from numba.extending import intrinsic\n\n\n"
    "@intrinsic\n"
    "def _ptr(typingctx, address, like):\n"
    "    \"\"\"A pointer to values of ``like``'s type at ``address`` (a numba intrinsic).\"\"\"\n"
    "    from numba.core import types\n"
    "    sig = types.CPointer(like)(address, like)\n\n"
    "    def codegen(context, builder, signature, args):\n"
    "        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))\n"
    "    return sig, codegen\n"
)

# numba's threading layer, called as numba's own parallel loops call it (numba.np.ufunc.parallel):
# numba_parallel_for(fn, args, dims, steps, data, inner_ndim, array_count, num_threads) runs the
# C function fn(args, dims, steps, data) on the threads, each on a range of args' entries.
# Pointers pass as int64. Loading the layer registers these symbols with LLVM.
HELPERS["_threads"] = (
    "from numba import types\n"
    "from numba.np.ufunc.parallel import _launch_threads\n\n"
    "_launch_threads()\n"
    "_parallel_for = types.ExternalFunction(\n"
    "    'numba_parallel_for', types.void(*[types.int64] * 7, types.intc))\n"
    "_num_threads = types.ExternalFunction('get_num_threads', types.intc())\n"
)


class TooLarge(Exception):
    """The graph is too large for scalar (straight-line or unrolled) code."""


class KernelPrinter(PythonCodePrinter):
    def __init__(self):
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})
        self.helpers_used = set()

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_sigmoid(self, expr):
        self.helpers_used.add("_sigmoid")
        return f"_sigmoid({self._print(expr.args[0])})"

    def _print_softplus(self, expr):
        self.helpers_used.add("_softplus")
        return f"_softplus({self._print(expr.args[0])})"

    def _print_powt(self, expr):
        x, y = expr.args
        return f"({self._print(x)})**({self._print(y)})"

    def _print_BooleanTrue(self, expr):
        return "True"

    def _print_BooleanFalse(self, expr):
        return "False"


@functools.lru_cache(maxsize=4096)
def scalar_program(expr):
    """CSE'd straight-line code for ``expr``: (assignments, result, helpers). Inputs print as
    ``_x0_, _x1_, ...`` and temporaries as ``_t0_, ...``, placeholders for the caller to rename."""
    nin = 1 + max((int(s.name[1:]) for s in expr.free_symbols if s.name[:1] == "x"), default=-1)
    rename = {sp.Symbol(f"x{k}", real=True): sp.Symbol(f"_x{k}_", real=True) for k in range(nin)}
    expr = expr.xreplace(rename)
    temps = sp.numbered_symbols("_t", real=True)
    pairs, (reduced,) = sp.cse([expr], symbols=temps, order="none")
    printer = KernelPrinter()
    assigns = [(str(sym) + "_", printer.doprint(e)) for sym, e in pairs]
    result = printer.doprint(reduced)
    # cse's temporaries are named _t0, _t1, ...: give them the same _..._ placeholder form
    for sym, _ in pairs:
        assigns = [(a, _rename(text, str(sym))) for a, text in assigns]
        result = _rename(result, str(sym))
    return tuple(assigns), result, frozenset(printer.helpers_used)


def instantiate(assigns, result, args, fresh):
    """A ``scalar_program`` for particular inputs: ``args`` (texts) for its ``_x<k>_``
    placeholders and a ``fresh()`` name for each temporary. Returns (statements, result text)."""
    names = {f"_x{k}_": a for k, a in enumerate(args)}
    names.update((tmp, fresh()) for tmp, _ in assigns)

    def sub(text):
        return re.sub(r"_[xt]\d+_", lambda m: names[m.group(0)], text)

    return [f"{names[tmp]} = {sub(text)}" for tmp, text in assigns], sub(result)


def _rename(text, name):
    return re.sub(rf"\b{name}\b", name + "_", text)
