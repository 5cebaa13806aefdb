"""Every primitive, one row each: compiled values against numpy, derivatives against central
finite differences (forward and reverse accumulation, orders 1 and 2).

A new primitive joins by adding one ``Case`` row. Each row compiles one kernel whose outputs are
the value, the forward- and reverse-mode Jacobians and the forward-mode Jacobian of the
(reverse-mode) Jacobian, so each row costs one numba compile.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import pytest

from symtape.cache import kernel_for
from symtape.compiler import diff
from symtape.compiler.ir import Graph, arg
from symtape.compiler.ops import BUILTIN, lookup
from tests.helpers import numerical_jacobian

RNG = np.random.default_rng(0)

# Not rows: the ew carrier is what every elementwise row builds; custom_vjp needs a user
# grad_fn and is covered by tests/runtime (custom_gradient).
NOT_ROWS = {"ew", "custom_vjp"}


def uniform(lo, hi, shape, dtype=np.float64):
    return RNG.uniform(lo, hi, shape).astype(dtype)


def away_from_zero(shape):
    return RNG.choice([-1.0, 1.0], shape) * RNG.uniform(0.3, 1.5, shape)


def distinct(shape):
    return RNG.permutation(np.prod(shape)).reshape(shape).astype(np.float64) * 0.37 - 1.1


@dataclass
class Case:
    prim: str
    args: list  # arrays become graph arguments; Python numbers are static constants
    params: dict = field(default_factory=dict)
    reference: Optional[Callable] = None  # independent numpy reference (internal primitives)
    rtol: float = 1e-5
    atol: float = 1e-6
    eps: float = 1e-6  # finite-difference step (larger for float32 inputs)
    name: str = ""

    @property
    def id(self):
        return self.name or self.prim


def shape23(lo=-1.0, hi=1.0):
    return uniform(lo, hi, (2, 3))


PRIMITIVE_CASES = [
    # elementwise (sympy scalar forms); broadcasting in the binary rows
    Case("neg", [shape23()]),
    Case("add", [shape23(), uniform(-1, 1, (3,))], name="add_broadcast"),
    Case("sub", [uniform(-1, 1, (2, 1)), uniform(-1, 1, (1, 3))], name="sub_outer_broadcast"),
    Case("mul", [shape23(), shape23()]),
    Case("div", [shape23(), uniform(0.5, 2.0, (2, 3))]),
    Case("pow", [uniform(0.5, 2.0, (2, 3)), shape23()], name="pow_tensor_exponent"),
    Case("pow", [shape23(), 3], name="pow_number_exponent"),
    Case("sin", [shape23()]),
    Case("cos", [shape23()]),
    Case("tan", [shape23()]),
    Case("arcsin", [uniform(-0.8, 0.8, (2, 3))]),
    Case("arccos", [uniform(-0.8, 0.8, (2, 3))]),
    Case("arctan", [shape23()]),
    Case("arctan2", [shape23(), uniform(0.5, 1.0, (2, 3))]),
    Case("sinh", [shape23()]),
    Case("cosh", [shape23()]),
    Case("tanh", [shape23()]),
    Case("exp", [shape23()]),
    Case("expm1", [shape23()]),
    Case("log", [uniform(0.5, 2.0, (2, 3))]),
    Case("log1p", [uniform(-0.4, 1.0, (2, 3))]),
    Case("sqrt", [uniform(0.5, 2.0, (2, 3))]),
    Case("abs", [away_from_zero((2, 3))]),
    Case("sign", [away_from_zero((2, 3))]),
    Case("maximum", [distinct((2, 3)), distinct((2, 3)) + 0.05]),
    Case("minimum", [distinct((2, 3)), distinct((2, 3)) + 0.05]),
    Case("where", [RNG.random((2, 3)) > 0.5, shape23(), uniform(-1, 1, (3,))]),
    Case("sigmoid", [uniform(-3, 3, (2, 3))]),
    Case("softplus", [uniform(-3, 3, (2, 3))]),
    Case("relu", [away_from_zero((2, 3))]),
    Case("elu", [away_from_zero((2, 3))]),
    Case("cast", [uniform(-1, 1, (2, 3), np.float32)], {"dtype": np.dtype(np.float64)},
         rtol=1e-3, atol=1e-3, eps=1e-3, name="cast_f32_to_f64"),
    Case("broadcast_to", [uniform(-1, 1, (3,))], {"shape": (2, 3)}),
    Case("reciprocal", [away_from_zero((2, 3))]),
    Case("exp2", [shape23()]),
    Case("log2", [uniform(0.5, 2.0, (2, 3))]),
    Case("log10", [uniform(0.5, 2.0, (2, 3))]),
    Case("cbrt", [away_from_zero((2, 3))]),
    Case("hypot", [away_from_zero((2, 3)), uniform(0.5, 1.0, (3,))]),
    Case("arcsinh", [shape23()]),
    Case("arccosh", [uniform(1.5, 3.0, (2, 3))]),
    Case("arctanh", [uniform(-0.8, 0.8, (2, 3))]),
    Case("floor", [uniform(0.1, 0.9, (2, 3)) + np.arange(3)]),  # away from the steps
    Case("ceil", [uniform(0.1, 0.9, (2, 3)) - np.arange(3)]),
    Case("less", [shape23(), shape23()]),
    Case("less_equal", [shape23(), shape23()]),
    Case("greater", [shape23(), shape23()]),
    Case("greater_equal", [shape23(), shape23()]),
    Case("equal", [shape23(), shape23()]),
    Case("not_equal", [shape23(), shape23()]),
    # float32 end to end (looser tolerances: differences are taken in float64 of f32 values)
    Case("tanh", [uniform(-1, 1, (2, 3), np.float32)], rtol=2e-2, atol=2e-2, eps=1e-3,
         name="tanh_f32"),
    Case("mul", [uniform(-1, 1, (2, 3), np.float32), uniform(-1, 1, (3,), np.float32)],
         rtol=2e-2, atol=2e-2, eps=1e-3, name="mul_f32_broadcast"),
    # structural
    Case("reshape", [uniform(-1, 1, (2, 3))], {"shape": (3, 1, 2)}),
    Case("transpose", [uniform(-1, 1, (2, 3, 2))], {"perm": (2, 0, 1)}),
    Case("index", [uniform(-1, 1, (3, 4))], {"spec": (("i", -1), ("s", None, None, -2))},
         name="index_int_and_negative_step"),
    Case("index", [uniform(-1, 1, (3, 4))], {"spec": (("s", 1, 3, 1), ("s", 0, 4, 2))},
         name="index_slices"),
    Case("take", [uniform(-1, 1, (2, 4))], {"indices": (3, 0, 0, 2), "axis": 1},
         name="take_with_repeats"),
    Case("concatenate", [shape23(), uniform(-1, 1, (2, 1)), shape23()], {"axis": 1}),
    Case("stack", [shape23(), shape23(), shape23()], {"axis": 1}),
    Case("reduce_sum", [uniform(-1, 1, (2, 3, 2))], {"axes": (0, 2), "keepdims": False}),
    Case("reduce_sum", [uniform(-1, 1, (2, 3))], {"axes": (1,), "keepdims": True},
         name="reduce_sum_keepdims"),
    Case("reduce_max", [distinct((2, 3))], {"axes": (1,), "keepdims": False}),
    Case("reduce_min", [distinct((2, 3))], {"axes": (0, 1), "keepdims": True}),
    Case("einsum", [uniform(-1, 1, (2, 3)), uniform(-1, 1, (3, 2))], {"spec": "ij,jk->ik"},
         name="einsum_matmul"),
    Case("einsum", [uniform(-1, 1, (2, 3)), uniform(-1, 1, (2, 3, 2))],
         {"spec": "bi,bij->bj"}, name="einsum_batched"),
    Case("einsum", [uniform(-1, 1, (2, 3))], {"spec": "ij->"}, name="einsum_full_sum"),
    Case("stop_gradient", [shape23()]),
    # internal primitives (transposes and structured-Jacobian helpers), with numpy references
    Case("index_update", [uniform(-1, 1, (2, 2))],
         {"nl": 0, "shape": (3, 4), "spec": (("s", 0, 3, 2), ("s", 1, 4, 2))},
         reference=lambda c, nl, shape, spec: _index_update_np(c, shape, spec)),
    Case("take_add", [uniform(-1, 1, (2, 3))], {"indices": (1, 1, 0), "axis": 1, "n": 2},
         reference=lambda c, indices, axis, n: _take_add_np(c, indices, n)),
    Case("diag_embed", [uniform(-1, 1, (2, 3))], {"lead": 1, "k": 1, "trail": 0},
         reference=lambda x, lead, k, trail: np.einsum("bi,ij->bij", x, np.eye(3))),
    Case("scatter_rows", [uniform(-1, 1, (2, 3)), uniform(-1, 1, (2, 3))],
         {"cols": ((1, 0, -1, 3, 3, 2), (2, 2, 0, -1, 1, 0)), "nl": 0, "v_shape": (2, 3),
          "s_shape": (4,)},
         reference=lambda *c, cols, nl, v_shape, s_shape: _scatter_rows_np(c, cols, s_shape)),
    Case("gather_rows", [uniform(-1, 1, (2, 3, 4))],
         {"cols": (1, 0, -1, 3, 3, 2), "nl": 0, "v_shape": (2, 3), "s_shape": (4,)},
         reference=lambda c, cols, nl, v_shape, s_shape: _gather_rows_np(c, cols)),
    Case("diag_extract", [uniform(-1, 1, (2, 3, 3))], {"lead": 1, "k": 1, "trail": 0},
         reference=lambda x, lead, k, trail: np.einsum("bii->bi", x)),
]


def _index_update_np(c, shape, spec):
    out = np.zeros(shape, c.dtype)
    out[tuple(e[1] if e[0] == "i" else slice(*e[1:]) for e in spec)] = c
    return out


def _scatter_rows_np(coefs, cols, s_shape):
    out = np.zeros(coefs[0].shape + s_shape)
    for c, col in zip(coefs, cols):
        for v, j in enumerate(col):
            if j >= 0:
                out[np.unravel_index(v, c.shape) + (j,)] += c.ravel()[v]
    return out


def _gather_rows_np(c, cols):
    flat = c.reshape(-1, c.shape[-1])
    return np.array([flat[v, j] if j >= 0 else 0.0 for v, j in enumerate(cols)]).reshape(
        c.shape[:-1])


def _take_add_np(c, indices, n):
    out = np.zeros(c.shape[:1] + (n,), c.dtype)
    np.add.at(out, (slice(None), list(indices)), c)
    return out


def test_every_primitive_has_a_row():
    assert set(BUILTIN) - NOT_ROWS == {c.prim for c in PRIMITIVE_CASES}


def _build(case):
    nodes, k = [], 0
    for a in case.args:
        if isinstance(a, np.ndarray):
            nodes.append(arg(k, a.shape, a.dtype))
            k += 1
        else:
            nodes.append(a)
    return nodes, lookup(case.prim).build(*nodes, **case.params)


def _reference(case):
    prim = lookup(case.prim)
    return case.reference or prim.impl


@pytest.mark.parametrize("case", PRIMITIVE_CASES, ids=lambda c: c.id)
def test_primitive(case):
    nodes, y = _build(case)
    if case.reference is not None:  # the registry's own implementation agrees with it
        np.testing.assert_allclose(lookup(case.prim).impl(*case.args, **case.params),
                                   case.reference(*case.args, **case.params))
    arrays = [a for a in case.args if isinstance(a, np.ndarray)]
    srcs = [n for n, a in zip(nodes, case.args)
            if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    ref = _reference(case)

    def f_ref(i, xi):
        vals = list(case.args)
        j = [k for k, a in enumerate(case.args) if isinstance(a, np.ndarray)][i]
        vals[j] = xi.astype(case.args[j].dtype)
        return np.asarray(ref(*vals, **case.params), dtype=np.float64)

    expected = np.asarray(ref(*case.args, **case.params))
    differentiable = y.dtype.kind == "f" and case.prim != "stop_gradient"
    fwd = diff.jacobian(y, srcs, "forward") if differentiable else []
    rev = diff.jacobian(y, srcs, "reverse") if differentiable else []
    if not differentiable:
        assert all(j is None for j in diff.jacobian(y, srcs)), "expected no derivative"
    second = [diff.jacobian(j, [s], "forward")[0] for j, s in zip(rev, srcs)]
    outs = [y] + [j for j in fwd + rev + second if j is not None]
    graph = Graph([n for n in nodes if not isinstance(n, (int, float))], outs)
    args = [n for n in nodes if hasattr(n, "prim")]
    graph = Graph(args, outs)
    results = kernel_for(graph, f"test_{case.id}")(*arrays)
    value = results[0]
    assert value.shape == expected.shape and value.dtype == expected.dtype
    np.testing.assert_allclose(value, expected, rtol=1e-6 if value.dtype == np.float64 else 1e-5,
                               atol=1e-7)
    if not differentiable:
        return
    by_node = dict(zip(map(id, outs), results))
    positions = [k for k, a in enumerate(arrays) if a.dtype.kind == "f"]
    for s_i, (src, jf, jr, j2) in enumerate(zip(srcs, fwd, rev, second)):
        a = arrays[positions[s_i]].astype(np.float64)
        numeric = numerical_jacobian(lambda xi: f_ref(positions[s_i], xi), a, case.eps)
        for mode, j in (("forward", jf), ("reverse", jr)):
            got = by_node[id(j)] if j is not None else np.zeros_like(numeric)
            np.testing.assert_allclose(got, numeric, rtol=case.rtol, atol=case.atol,
                                       err_msg=f"{mode}-mode Jacobian wrt input {s_i}")
        if jr is None or case.args[0].dtype != np.float64:
            continue
        # order 2: differentiate the compiled first derivative numerically
        jac_graph = Graph(args, [jr])
        jac_kernel = kernel_for(jac_graph, f"test_{case.id}_jac")

        def first(xi, pos=positions[s_i]):
            vals = list(arrays)
            vals[pos] = xi
            return jac_kernel(*vals)[0]

        numeric2 = numerical_jacobian(first, a, eps=1e-5)
        got2 = by_node[id(j2)] if j2 is not None else np.zeros_like(numeric2)
        np.testing.assert_allclose(got2, numeric2, rtol=1e-4, atol=1e-5,
                                   err_msg=f"second derivative wrt input {s_i}")
