"""Vectorisable math (compiler/codegen/vmath.py): the functions against numpy's, the rewrite of
generated statements, and batch Jacobians whose loop over examples uses them."""

import numpy as np
import pytest

import symtape as st
from symtape.compiler.codegen import vmath
from symtape.compiler.codegen.module import load_module, write_module

SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -1e-300, 1e-10, -1e-10,
                     0.34657359027997264, -0.34657359027997264, 19.06, -20.0, 709.78, 709.79,
                     710.0, -745.1, -745.2, -746.0, 800.0, -800.0])


@pytest.fixture(scope="module")
def helpers(tmp_path_factory):
    """The helpers as a generated module (their only form in use), with an elementwise loop."""
    source = "\n".join(["import math\n\nimport numpy as np\nfrom numba import njit\n",
                        *vmath.HELPERS.values(),
                        "@njit(cache=True)\ndef apply(f, x, *more):\n"
                        "    out = np.empty_like(x)\n"
                        "    for i in range(x.size):\n"
                        "        out[i] = f(x[i], *more)\n"
                        "    return out\n"])
    return load_module(write_module(source, str(tmp_path_factory.mktemp("vmath"))), source)


def _ulps(got, want):
    """Distance in units of the reference's last place (0 where both are the same non-finite)."""
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):
        return np.where(same, 0.0, np.abs(got - want) / np.spacing(np.abs(want)))


# (name, helper, extra args, reference, ranges sampled, ulps allowed)
CASES = [
    ("exp", "_vexp", (), np.exp, [(-750, 715), (-1, 1)], 1),
    ("expm1", "_vexpm1", (), np.expm1, [(-40, 40), (-1, 1), (-1e-8, 1e-8)], 4),
    ("tanh", "_vtanh", (), np.tanh, [(-25, 25), (-1, 1), (-1e-8, 1e-8)], 4),
    ("sigmoid", "_vsigmoid", (), lambda x: (1 / (1 + np.exp(-x.astype(np.longdouble))))
     .astype(np.float64), [(-800, 800), (-5, 5)], 4),
    ("sin", "_vtrig", (0,), np.sin, [(-1e6, 1e6), (-7, 7)], 2),
    ("cos", "_vtrig", (1,), np.cos, [(-1e6, 1e6), (-7, 7)], 2),
]


@pytest.mark.parametrize("name, helper, more, reference, ranges, ulps", CASES,
                         ids=[c[0] for c in CASES])
def test_vector_math_agrees_with_numpy(helpers, name, helper, more, reference, ranges, ulps):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(lo, hi, 200_000) for lo, hi in ranges])
    if name in ("sin", "cos"):  # near multiples of pi/2 (relative accuracy of the reduction)
        x = np.concatenate([x, np.pi / 2 * np.arange(-1000, 1000)])
    else:
        x = np.concatenate([x, SPECIALS])
    with np.errstate(all="ignore"):
        got, want = helpers.apply(getattr(helpers, helper), x, *more), reference(x)
    assert np.max(_ulps(got, want)) <= ulps


def test_vectorize_hoists_each_call_and_collects_trig_arguments():
    lines, needs, trig = vmath.vectorize([
        "s1 = ((1) if (x > 0) else (math.exp(x)))",
        "s2 = math.sin(math.cos(2*y) + 1) * math.tanh(z)",
    ])
    assert lines == [
        "vm_sin = np.int64(0)",  # the shifts as variables: numba compiles _vtrig once
        "vm_cos = np.int64(1)",
        "vm1 = _vexp(x)",
        "s1 = ((1) if (x > 0) else (vm1))",  # a choice between computed values: a select
        "vm2 = _vtrig(2*y, vm_cos)",
        "vm3 = _vtrig(vm2 + 1, vm_sin)",
        "vm4 = _vtanh(z)",
        "s2 = vm3 * vm4",
    ]
    assert trig == ["2*y", "vm2 + 1"]
    assert {"_vexp", "_vtrig", "_vtanh", "_vexpm1", "_f64_from_bits"} == needs


def _arm(Q):
    th, px, py = Q[:, 0], np.cos(Q[:, 0]), np.sin(Q[:, 0])
    for k in range(1, Q.shape[1]):
        th = th + Q[:, k]
        px, py = px + np.cos(th), py + np.sin(th)
    return np.stack([px, py], axis=1)


def _arm_jacobian(Q):
    th = np.cumsum(Q, axis=1)
    J = np.empty((Q.shape[0], 2, Q.shape[1]))
    for j in range(Q.shape[1]):
        J[:, 0, j] = -np.sin(th[:, j:]).sum(1)
        J[:, 1, j] = np.cos(th[:, j:]).sum(1)
    return J


@pytest.mark.parametrize("scale", [3.0, 1e12])
def test_batch_jacobian_with_sin_and_cos_is_right_for_any_angle(scale):
    """Angles beyond the fast sin/cos range (and NaN) are computed again with libm's."""
    f = st.batch_jacobian(_arm)
    rng = np.random.default_rng(1)
    Q = rng.uniform(-scale, scale, (1100, 3))
    Q[7, 1] = np.nan
    J = f(Q)
    assert "_vtrig(" in f.source
    np.testing.assert_allclose(J, _arm_jacobian(Q), rtol=1e-12, atol=1e-12)
    assert np.isnan(J[7]).all() and not np.isnan(np.delete(J, 7, axis=0)).any()


def test_elu_network_batch_jacobian_uses_vector_math():
    rng = np.random.default_rng(2)
    W, b = rng.normal(size=(4, 5)), rng.normal(size=5)
    f = st.batch_jacobian(lambda x: st.nn.elu(x @ W + b))
    X = rng.normal(size=(300, 4))
    J = f(X)
    z = X @ W + b
    want = np.where(z > 0, 1.0, np.exp(z))[:, :, None] * W.T[None]
    np.testing.assert_allclose(J, want, rtol=1e-14, atol=1e-15)
    assert "_vexp(" in f.source and "math.exp(" not in f.source


def test_larger_vectorised_networks_are_unrolled_per_example():
    """A 5-16-4 sigmoid network's per-example program is over the scalar budget
    (MAX_UNROLLED_OPS) but within the vectorised one: unrolled per example, not loop nests."""
    rng = np.random.default_rng(3)
    W1, W2 = rng.normal(size=(5, 16)), rng.normal(size=(16, 4))
    f = st.batch_jacobian(lambda x: st.nn.sigmoid(st.nn.sigmoid(x @ W1) @ W2))
    X = rng.normal(size=(1000, 5))
    J = f(X)
    assert "(unrolled code per example)" in f.source and "_vsigmoid(" in f.source

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))
    h = sigmoid(X @ W1)
    o = sigmoid(h @ W2)
    want = (o * (1 - o))[:, :, None] * np.einsum("kj,bk,ik->bji", W2, h * (1 - h), W1)
    np.testing.assert_allclose(J, want, rtol=1e-12, atol=1e-14)
