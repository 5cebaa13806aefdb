"""Code generation strategies: each one's kernels against numpy and finite differences.

The strategies (see compiler/codegen/cpu.generate) are straight-line code (sympy), unrolled
element code, per-example forms of both, and loop nests with BLAS calls for large products.
"""

import re

import numpy as np
import pytest

import symtape as st
from symtape.compiler.codegen import cpu, scalar
from symtape.compiler.codegen.module import load_module, write_module
from symtape.compiler.simplify import simplify

from ..helpers import numerical_jacobian


def _strategy(source: str) -> str:
    found = re.findall(r"\((straight-line|unrolled) code( per example)?\)", source)
    return "".join(found[0]) if found else "loops"


def _compiled_graph(f, *args):
    f(*args)
    return f._entry().kernel.graph


def _run(source, graph, tmp_path, *args):
    module = load_module(write_module(source, str(tmp_path)), source)
    return getattr(module, graph.name)(*args)


def _mlp(rng, n_in=4, n_hidden=6, n_out=3):
    W1, b1 = rng.normal(size=(n_in, n_hidden)) / 2, rng.normal(size=n_hidden) / 10
    W2, b2 = rng.normal(size=(n_hidden, n_out)) / 3, rng.normal(size=n_out) / 10

    def mlp(x):
        return st.nn.elu(st.nn.elu(x @ W1 + b1) @ W2 + b2)

    def mlp_np(x):
        def elu(v):
            return np.where(v > 0, v, np.expm1(np.minimum(v, 0)))
        return elu(elu(x @ W1 + b1) @ W2 + b2)
    return mlp, mlp_np, [W1, W2, b1, b2]


def test_unrolled_per_example_code_matches_finite_differences(tmp_path):
    """A small elu network's batch Jacobian as an unrolled program per example."""
    rng = np.random.default_rng(0)
    mlp, mlp_np, weights = _mlp(rng)
    X = rng.normal(size=(5, 4))  # a batch size no weight has on axis 0
    graph = simplify(_compiled_graph(st.batch_jacobian(mlp), X))
    B, batched = cpu.batch_plan(graph, min_batch=2)
    source = scalar.generate_per_example(graph, B, batched, False, unroll=True)
    assert _strategy(source) == "unrolled per example"
    assert "o0[b] = 0" not in source  # every entry is written, zeros included
    by_shape = {w.shape: w for w in weights}  # the captured arrays follow X, in trace order
    args = [X] + [by_shape[a.shape] for a in graph.args[1:]]
    got = _run(source, graph, tmp_path, *args)[0]
    expected = np.stack([numerical_jacobian(lambda v: mlp_np(v[None])[0], x) for x in X])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


def test_unrolled_code_folds_known_zeros_and_ones(tmp_path):
    """A one-hot seed folds away: the Jacobian of x * W (elementwise) writes W's entries and
    zeros, with no multiplications by 0 or 1 left in the code."""
    W = np.arange(1.0, 7.0).reshape(2, 3)
    f = st.jacobian(lambda x: x * W)
    graph = simplify(_compiled_graph(f, np.ones((2, 3))))
    source = scalar.generate_scalar(graph, unroll=True)
    assert _strategy(source) == "unrolled"
    assert not re.search(r"\*\s*(0|1)\.0\b|\b(0|1)\.0\s*\*", source)
    got = _run(source, graph, tmp_path, np.ones((2, 3)), W)[0]
    np.testing.assert_array_equal(got, np.einsum("ij,ik,jl->ijkl", W, np.eye(2), np.eye(3)))


def test_small_batch_jacobian_runs_per_example_whatever_its_shape():
    """A 2x6 per-example Jacobian (fewer outputs than inputs) is computed forward, so the batch
    stays on axis 0 and the kernel is the per-example form (it used to be serial loop nests)."""
    lengths = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3]

    def arm(q):
        th = q[:, 0]
        px, py = lengths[0] * np.cos(th), lengths[0] * np.sin(th)
        for k in range(1, 6):
            th = th + q[:, k]
            px, py = px + lengths[k] * np.cos(th), py + lengths[k] * np.sin(th)
        return np.stack([px, py], axis=1)

    Q = np.random.default_rng(6).uniform(-np.pi, np.pi, size=(40, 6))
    f = st.batch_jacobian(arm)
    got = f(Q)
    assert _strategy(f.source) == "straight-line per example"

    def arm_np(q):
        th = np.cumsum(q)
        return np.array([np.sum(lengths * np.cos(th)), np.sum(lengths * np.sin(th))])

    expected = np.stack([numerical_jacobian(arm_np, q) for q in Q])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("spec", [
    "mk,kn->mn", "km,kn->mn", "mk,nk->mn", "km,nk->nm", "abk,kn->abn", "ak,kbc->abc",
    "abk,ck->cab",
])
def test_large_contractions_call_blas(spec):
    """Matrix-product-shaped einsums above GEMM_MIN_WORK become np.dot on reshaped views, with
    either operand or the output stored transposed; results match numpy."""
    rng = np.random.default_rng(1)
    ins, out = spec.split("->")
    sizes = dict(zip("mnkabc", (40, 36, 64, 12, 8, 8)))
    A, B = (rng.normal(size=[sizes[c] for c in sub]) for sub in ins.split(","))
    f = st.jit(lambda a, b: np.einsum(spec, a, b))
    np.testing.assert_allclose(f(A, B), np.einsum(spec, A, B), rtol=1e-12, atol=1e-12)
    assert "np.dot(" in f.source


def test_small_or_batched_contractions_stay_loops():
    f = st.jit(lambda a, b: a @ b)
    A, B = np.ones((4, 5)), np.ones((5, 6))
    np.testing.assert_allclose(f(A, B), A @ B)
    assert "np.dot(" not in f.source
    g = st.jit(lambda a, b: np.einsum("bij,bjk->bik", a, b))  # a batch letter: no single GEMM
    A, B = np.ones((3, 40, 40)), np.ones((3, 40, 40))
    np.testing.assert_allclose(g(A, B), A @ B)
    assert "np.dot(" not in g.source


def test_dense_layer_batch_jacobian_uses_blas():
    """The 784->256->10 benchmark's shape, smaller: the Jacobian's big contraction is a GEMM."""
    rng = np.random.default_rng(1)
    W1, b1 = rng.normal(size=(96, 64)) / 10, rng.normal(size=64) / 10
    W2, b2 = rng.normal(size=(64, 10)) / 8, rng.normal(size=10) / 10
    X = rng.normal(size=(4, 96))
    f = st.batch_jacobian(lambda x: np.tanh(x @ W1 + b1) @ W2 + b2)
    got = f(X)
    assert "np.dot(" in f.source
    d = 1 - np.tanh(X @ W1 + b1) ** 2
    np.testing.assert_allclose(got, np.einsum("bk,ik,ko->boi", d, W1, W2), rtol=1e-12)


def test_matmul_seed_keeps_its_identity_small():
    """d(x @ W)/dW is x[i, k] delta(j, l): the identity over the shared letter only (8x8), not
    the (5, 8, 5, 8) identity of W; the Hessian built from it matches finite differences."""
    rng = np.random.default_rng(4)
    x, W = rng.normal(size=(7, 5)), rng.normal(size=(5, 8))
    f = st.jacobian(lambda w: np.tanh(x @ w))
    got = f(W)
    identities = [n for n in f._entry().kernel.graph.nodes() if n.prim == "diag_embed"]
    assert identities and max(n.size for n in identities) <= 64
    np.testing.assert_allclose(got, numerical_jacobian(lambda w: np.tanh(x @ w), W),
                               rtol=1e-6, atol=1e-8)
    g = st.grad(lambda w: np.sum(np.tanh(x @ w)), argnums=0)
    np.testing.assert_allclose(st.jacobian(g)(W), numerical_jacobian(g, W), rtol=1e-5,
                               atol=1e-7)


def test_loop_nests_reassociate_product_chains():
    """(A @ B) @ C with A (100, 2), B (2, 100), C (100, 3) costs 50k multiply-adds; the kernel
    computes A @ (B @ C) (1.2k) through a 2 x 3 intermediate instead of a (100, 100) one."""
    rng = np.random.default_rng(2)
    A, B, C = rng.normal(size=(100, 2)), rng.normal(size=(2, 100)), rng.normal(size=(100, 3))
    f = st.jit(lambda a, b, c: (a @ b) @ c * 3.0)
    np.testing.assert_allclose(f(A, B, C), (A @ B) @ C * 3.0, rtol=1e-12)
    assert "(100, 100)" not in f.source and re.search(r"\((2, 3|3, 2)\)", f.source)


def test_hessian_chain_sums_its_identity_away():
    """The seed Hessian w.r.t. W1: the chain rule's (7, 8, 5, 8) intermediates (an identity times
    x, then products with W2) are re-associated away; values match finite differences."""
    rng = np.random.default_rng(3)
    x, W1, b1 = rng.normal(size=(7, 5)), rng.normal(size=(5, 8)), rng.normal(size=8)
    W2, b2 = rng.normal(size=(8, 6)), rng.normal(size=6)

    def loss(W1):
        return np.mean(st.nn.relu(st.nn.relu(x @ W1 + b1) @ W2 + b2) ** 2)

    def grad_np(w):
        h = x @ w + b1
        z = np.maximum(h, 0) @ W2 + b2
        g = 2 * np.maximum(z, 0) * (z > 0) / z.size
        return x.T @ ((g @ W2.T) * (h > 0))

    h = st.hessian(loss)
    got = h(W1)
    assert "(7, 8, 5, 8)" not in h.source
    np.testing.assert_allclose(got, numerical_jacobian(grad_np, W1), rtol=1e-6, atol=1e-8)


def test_large_sparse_jacobian_rows_are_written_in_parallel():
    """Lorenz-96 at n = 300 (4 nonzeros per row of 300): one parallel pass over the rows, each
    zeroed and written by one thread, as a hand-written kernel does."""
    n = 300
    x = np.random.default_rng(5).normal(size=n)
    f = st.jacobian(lambda v: (np.roll(v, -1) - np.roll(v, 2)) * np.roll(v, 1) - v + 8.0)
    got = f(x)
    assert "prange(300)" in f.source and "parallel=True" in f.source
    expected = -np.eye(n)
    for i in range(n):
        expected[i, (i + 1) % n] += x[(i - 1) % n]
        expected[i, (i - 2) % n] -= x[(i - 1) % n]
        expected[i, (i - 1) % n] += x[(i + 1) % n] - x[(i - 2) % n]
    np.testing.assert_array_equal(got, expected)


def test_derivative_reads_the_function_value_it_restates():
    """tanh'(z) = 1 - tanh(z)**2 next to tanh(z) (needed for the next layer): the kernel calls
    tanh once for the inner layer's value and its derivative, once for the outer derivative."""
    rng = np.random.default_rng(7)
    W, V = rng.normal(size=(120, 80)) / 9, rng.normal(size=(3, 120)) / 9
    x = rng.normal(size=80)
    f = st.jacobian(lambda v: np.tanh(V @ np.tanh(W @ v)))
    got = f(x)
    assert f.source.count("math.tanh(") == 2
    h = np.tanh(W @ x)
    expected = (1 - np.tanh(V @ h) ** 2)[:, None] * (V @ ((1 - h ** 2)[:, None] * W))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("fn, loop", [
    # vectorised (vmath): flat arrays at unsigned offsets
    (lambda x: np.tanh(x) * x[:, ::-1], "for b in range(np.uint64(lo), np.uint64(hi)):"),
    # scalar loop: a signed index (an unsigned one makes LLVM scatter the stores)
    (lambda x: x ** 3 * x[:, ::-1], "for b in range(lo, hi):")])
def test_parallel_per_example_code_is_a_c_function_called_by_address(fn, loop, tmp_path):
    """B >= 1000: numba's threading layer runs the examples as a C function (compiled once, not
    linked into a parallel loop's code), in chunks of 256; generated without that
    (ahead-of-time modules), a parallel loop calls them directly. Both give the Jacobian."""
    x = np.random.default_rng(6).normal(size=(1200, 2))
    f = st.batch_jacobian(fn)
    got = f(x)
    assert loop in f.source
    assert "_examples_signature = types.void(" in f.source and "carray(_ptr(" in f.source
    assert "_parallel_for(examples, " in f.source and "prange(" not in f.source
    assert "at[3] = 5  # dims[0]: how many" in f.source  # 5 chunks
    expected = np.stack([numerical_jacobian(lambda v: fn(v[None])[0], x[b]) for b in (0, 1199)])
    np.testing.assert_allclose(got[[0, 1199]], expected, rtol=1e-7, atol=1e-9)
    graph = f._entry().kernel.graph
    direct = cpu.generate(graph, by_address=False)
    assert "carray" not in direct and "_examples(c * 256," in direct
    np.testing.assert_allclose(_run(direct, graph, tmp_path, x)[0], got, rtol=1e-14)


def test_values_computed_before_the_examples_run_live_until_they_end():
    """W @ V is the same for every example: the kernel computes it once and the threads read
    it by address, so the kernel must hold it (numba frees an array after its last use)."""
    rng = np.random.default_rng(8)
    W, V, X = rng.normal(size=(3, 4)), rng.normal(size=(4, 3)), rng.normal(size=(1200, 3))
    f = st.batch_jacobian(lambda x, w, v: np.tanh(x @ (w @ v)))
    got = f(X, W, V)
    assert "_parallel_for(examples, " in f.source
    assert "v1c = np.ascontiguousarray(v1)" in f.source
    assert f.source.index("at[0] = v1c.size") > f.source.index("_parallel_for(examples, ")
    M = W @ V
    expected = (1 - np.tanh(X @ M) ** 2)[:, :, None] * M.T[None]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)  # 1 - tanh**2 cancels
