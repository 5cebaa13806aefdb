"""Ahead-of-time modules (symtape.aot): built once per session (one native, one source module),
imported and called in a subprocess where symtape, sympy (and for the native kind numba) cannot
be imported, and compared with the in-process results."""

from __future__ import annotations

import importlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import symtape as st
from symtape import aot
from symtape.aot import AOTFallbackWarning, Module, Spec

# -- the functions exported ----------------------------------------------------------------------


def rober(y):
    return np.stack([-0.04 * y[0] + 1e4 * y[1] * y[2],
                     0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
                     3e7 * y[1] ** 2])


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


_rng = np.random.default_rng(7)
W1 = _rng.standard_normal((3, 4))
b1 = _rng.standard_normal(4)
W2 = _rng.standard_normal((4, 2))


def mlp(x):
    return np.tanh(np.tanh(x @ W1 + b1) @ W2)


def _make_clip_gradients():  # seed 004's example
    @st.custom_gradient
    def clip_gradients(y):
        def backward(dy):
            return st.clip_by_norm(dy, 0.5)

        return y, backward

    return clip_gradients


clip_gradients = _make_clip_gradients()


def clipped_square(v):
    return clip_gradients(v * v)


PERM = [int(i) for i in np.random.default_rng(3).permutation(1500)]


def gathered(x):
    """Large enough for loop code: module-level constant arrays (_C0) and the _sigmoid and
    _softplus helpers appear in the generated source."""
    return np.sum(st.nn.softplus(x[PERM]) * x + st.nn.sigmoid(x))


WD = np.random.default_rng(4).standard_normal((40, 40)) / 7


def dense(x):
    """Matrix products large enough for BLAS in the JIT kernel (np.dot needs scipy); the
    ahead-of-time module writes them as loops."""
    return np.tanh(x @ WD) @ WD


Y0 = np.array([1.0, 2e-5, 0.3])
X5 = np.array([-1.2, 1.0, 0.5, 2.0, -0.3])
XB = np.random.default_rng(1).standard_normal((5, 3))  # batch 5: not the traced batch size
XG = np.linspace(-2.0, 2.0, 1500)
# a fixed batch of 1200: the JIT kernel calls its per-example C function by address from a
# parallel loop; the ahead-of-time module calls the per-example code directly
XL = np.random.default_rng(2).standard_normal((1200, 3))

# name, what to add, add() arguments, call arguments, in-process reference
ENTRIES = [
    ("rober", rober, (Y0,), (Y0,), lambda: st.jit(rober)(Y0)),
    ("rober_jac", st.jacobian(rober), (Y0,), (Y0,), lambda: st.jacobian(rober)(Y0)),
    ("rosen_grad", st.grad(rosen), (X5,), (X5 * 0.5,), lambda: st.grad(rosen)(X5 * 0.5)),
    ("rosen_hess", st.hessian(rosen), (X5,), (X5,), lambda: st.hessian(rosen)(X5)),
    ("mlp_bjac", st.batch_jacobian(mlp), (Spec((None, 3)),), (XB,),
     lambda: st.batch_jacobian(mlp)(XB)),
    ("mlp", mlp, (Spec((None, 3)),), (XB,), lambda: st.jit(mlp)(XB)),
    ("mlp_bjac_1200", st.batch_jacobian(mlp), (XL,), (XL * 0.5,),
     lambda: st.batch_jacobian(mlp)(XL * 0.5)),
    ("clip_grad", st.grad(clipped_square), (np.array(2.0),), (np.array(2.0),),
     lambda: st.grad(clipped_square)(np.array(2.0))),
    ("gathered_grad", st.grad(gathered), (XG,), (XG,), lambda: st.grad(gathered)(XG)),
    ("dense", dense, (WD,), (WD * 0.5,), lambda: st.jit(dense)(WD * 0.5)),
]
MODULE = "symtape_aot_testmod"


def _module():
    m = Module(MODULE)
    for name, f, example, _, _ in ENTRIES:
        m.add(f, *example, name=name)
    return m


@pytest.fixture(scope="module")
def module():
    return _module()


@pytest.fixture(scope="module")
def native_build(module, tmp_path_factory):
    if aot._c_compiler_problem() is not None:
        pytest.skip(f"no C compiler here: {aot._c_compiler_problem()}")
    out = tmp_path_factory.mktemp("aot_native")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AOTFallbackWarning)  # must really be native here
        path = module.build(out, kind="native")
    return str(out), path


@pytest.fixture(scope="module")
def source_build(module, tmp_path_factory):
    out = tmp_path_factory.mktemp("aot_source")
    return str(out), module.build(out, kind="source")


RUNNER = textwrap.dedent("""
    import pickle, sys
    blocked = set(sys.argv[3].split(","))

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ImportError("import of %s is blocked in this test" % name)

    sys.meta_path.insert(0, Block())
    sys.path.insert(0, sys.argv[1])
    import importlib
    with open(sys.argv[2], "rb") as f:
        name, calls = pickle.load(f)
    mod = importlib.import_module(name)
    results = {entry: getattr(mod, entry)(*args) for entry, args in calls.items()}
    try:
        mod.rober_jac(calls["rober_jac"][0][:2])
        error = None
    except TypeError as exc:
        error = str(exc)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
    with open(sys.argv[2], "wb") as f:
        pickle.dump((results, error, loaded, mod.__file__), f)
""")


def _run_isolated(out_dir, blocked, tmp_path):
    calls = {name: args for name, _, _, args, _ in ENTRIES}
    data = tmp_path / "io.pkl"
    data.write_bytes(pickle.dumps((MODULE, calls)))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", RUNNER, out_dir, str(data), ",".join(blocked)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return pickle.loads(data.read_bytes())


def _assert_same(got, want, what):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), what
        for g, w in zip(got, want):
            _assert_same(g, w, what)
        return
    assert isinstance(got, np.ndarray), (what, type(got))
    assert got.shape == np.shape(want) and got.dtype == np.asarray(want).dtype, what
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=what)


def _check_results(results, error, loaded, blocked):
    assert loaded == [], f"imported {loaded} (should be blocked: {blocked})"
    for name, _, _, _, reference in ENTRIES:
        _assert_same(results[name], reference(), name)
    assert error is not None and "rober_jac(y: float64[3]) -> float64[3, 3]" in error
    assert float(results["clip_grad"]) == 2.0  # the custom gradient, not 2v = 4


def test_native_module_imports_with_numpy_only(native_build, tmp_path):
    out, path = native_build
    blocked = ("symtape", "sympy", "numba", "llvmlite", "scipy")
    results, error, loaded, init = _run_isolated(out, blocked, tmp_path)
    _check_results(results, error, loaded, blocked)
    assert os.path.dirname(init) == path
    assert any(n.startswith("_native") and n.endswith((".so", ".pyd")) for n in os.listdir(path))


def test_source_module_runs_without_symtape_or_sympy(source_build, tmp_path):
    out, path = source_build
    blocked = ("symtape", "sympy")
    results, error, loaded, _ = _run_isolated(out, blocked, tmp_path)
    _check_results(results, error, loaded, blocked)
    with open(os.path.join(path, "manifest.json")) as f:
        assert json.load(f)["kind"] == "source"


def test_manifest(native_build):
    _, path = native_build
    with open(os.path.join(path, "manifest.json")) as f:
        man = json.load(f)
    assert man["name"] == MODULE and man["kind"] == "native"
    assert man["symtape_version"] == st.__version__
    entries = {e["name"]: e for e in man["entries"]}
    assert list(entries) == [e[0] for e in ENTRIES]
    assert entries["rober_jac"]["derivative"] == "jacobian"
    assert entries["rosen_hess"]["derivative"] == "hessian"
    assert entries["mlp_bjac"]["free_batch"] is True
    assert entries["mlp_bjac"]["inputs"] == [{"name": "x", "shape": [None, 3],
                                              "dtype": "float64"}]
    assert {c["name"] for c in entries["mlp_bjac"]["captured"]} == {"W1", "b1", "W2"}
    assert entries["rober_jac"]["signature"] == "rober_jac(y: float64[3]) -> float64[3, 3]"
    f = st.jacobian(rober)
    f(Y0)
    assert entries["rober_jac"]["graph_hash"] == f._last.graph.structural_hash()
    for e in man["entries"]:  # the generated sources ship with the module, to read
        assert os.path.exists(os.path.join(path, e["source"]))
    with open(os.path.join(path, "_k_gathered_grad.py")) as f:
        src = f.read()
    assert "_C0 = np.array(" in src and "def _sigmoid" in src and "def _softplus" in src


@pytest.fixture(scope="module")
def native_mod(native_build):
    out, _ = native_build
    sys.path.insert(0, out)
    try:
        yield importlib.import_module(MODULE)
    finally:
        sys.path.remove(out)
        sys.modules.pop(MODULE, None)
        for name in [n for n in sys.modules if n.startswith(MODULE + ".")]:
            del sys.modules[name]


def test_wrong_shape_or_dtype_is_a_type_error_naming_the_signature(native_mod):
    sig = r"rober_jac\(y: float64\[3\]\) -> float64\[3, 3\]"
    with pytest.raises(TypeError, match=sig):
        native_mod.rober_jac(np.ones(4))
    with pytest.raises(TypeError, match=sig):
        native_mod.rober_jac(np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match=sig):
        native_mod.rober_jac(np.ones((3, 1)))
    with pytest.raises(TypeError, match=r"mlp_bjac\(x: float64\[B, 3\]"):
        native_mod.mlp_bjac(np.ones((2, 4)))
    with pytest.raises(TypeError, match="W2"):
        native_mod.mlp_bjac(XB, W2=np.ones((2, 4)))
    with pytest.raises(TypeError):
        native_mod.rober_jac("abc")
    assert "float64[B, 3]" in native_mod.mlp_bjac.__doc__
    assert "Jacobian" in native_mod.rober_jac.__doc__
    assert "Hessian" in native_mod.rosen_hess.__doc__


def test_free_batch_any_size_and_captured_arrays_as_keywords(native_mod):
    for n in (1, 2, 9):
        x = np.random.default_rng(n).standard_normal((n, 3))
        np.testing.assert_allclose(native_mod.mlp_bjac(x), st.batch_jacobian(mlp)(x),
                                   rtol=1e-12, atol=1e-14)
    assert native_mod.mlp_bjac(np.ones((0, 3))).shape == (0, 2, 3)
    # captured arrays: defaults are the build-time values; others may be passed
    W2b = 2.0 * W2
    want = np.tanh(np.tanh(XB @ W1 + b1) @ W2b)
    np.testing.assert_allclose(native_mod.mlp(XB, W2=W2b), want, rtol=1e-12)
    np.testing.assert_allclose(native_mod.mlp(XB), mlp(XB), rtol=1e-12)
    # non-contiguous input, Python scalar for a 0-d argument
    np.testing.assert_allclose(native_mod.mlp(np.asfortranarray(XB)), mlp(XB), rtol=1e-12)
    assert native_mod.clip_grad(2.0).shape == () and float(native_mod.clip_grad(2.0)) == 2.0


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil", "/tmp/evil", "a/b", "", "evil.mod", "class",
                                  "..", "a\\b"])
def test_module_name_may_not_escape_the_directory(name):
    with pytest.raises(ValueError):
        Module(name)


def test_entry_names_are_checked():
    m = Module("names_mod")
    with pytest.raises(ValueError):
        m.add(rober, Y0, name="../evil")
    with pytest.raises(ValueError, match="reserved"):
        m.add(rober, Y0, name="_call")
    m.add(rober, Y0, name="f")
    with pytest.raises(ValueError, match="already"):
        m.add(rober, Y0, name="f")


def test_symlink_escape_and_foreign_directory(tmp_path):
    m = Module("linked")
    m.add(rober, Y0)
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "linked")
    with pytest.raises(ValueError, match="escapes"):
        m.build(out, kind="source")
    assert os.listdir(outside) == []
    foreign = Module("foreign")
    foreign.add(rober, Y0)
    (out / "foreign").mkdir()
    (out / "foreign" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        foreign.build(out, kind="source")
    assert (out / "foreign" / "keep.txt").read_text() == "mine"


def _small_module(name):
    m = Module(name)
    m.add(st.jacobian(rober), Y0, name="rober_jac")
    return m


def _import_fresh(out, name):
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(out))
        sys.modules.pop(name, None)


def test_missing_c_compiler_names_the_package_and_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    m = _small_module("nocc_mod")
    with pytest.warns(AOTFallbackWarning, match=r"no C compiler.*apt install gcc"):
        path = m.build(tmp_path, kind="native")
    assert m.kind == "source"
    with open(os.path.join(path, "manifest.json")) as f:
        assert json.load(f)["kind"] == "source"
    mod = _import_fresh(tmp_path, "nocc_mod")
    np.testing.assert_allclose(mod.rober_jac(Y0), st.jacobian(rober)(Y0), rtol=1e-12)


def test_numba_without_pycc_falls_back(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "numba.pycc", None)  # a future numba without pycc
    m = _small_module("nopycc_mod")
    with pytest.warns(AOTFallbackWarning, match="numba.pycc"):
        m.build(tmp_path)
    assert m.kind == "source"


def test_pycc_failure_falls_back(tmp_path, monkeypatch):
    def broken(module_name, exports, output_dir):
        raise aot._NativeUnavailable("numba.pycc failed (simulated)")

    monkeypatch.setattr(aot, "_pycc_build", broken)
    m = _small_module("broken_mod")
    with pytest.warns(AOTFallbackWarning, match="simulated"):
        m.build(tmp_path)
    assert m.kind == "source"
    m.build(tmp_path, kind="source")  # rebuilding over our own module replaces it


def test_custom_gradient_that_cannot_be_traced_names_the_op():
    @st.custom_gradient
    def sorted_grad(y):
        def backward(dy):
            return np.sort(dy)

        return y * 2.0, backward

    m = Module("bad_grad")
    with pytest.raises(TypeError, match="sort"):
        m.add(st.grad(lambda v: np.sum(sorted_grad(v))), np.ones(3), name="g")
    assert m.entries == []


def test_custom_gradient_with_python_control_flow_raises():
    @st.custom_gradient
    def branchy(y):
        def backward(dy):
            if dy[0] > 0:
                return dy
            return -dy

        return y * 2.0, backward

    m = Module("bad_grad2")
    with pytest.raises(st.TracerConversionError, match="dy"):
        m.add(st.grad(lambda v: np.sum(branchy(v))), np.ones(3), name="g")


def test_free_batch_is_checked():
    m = Module("batch_checks")
    with pytest.raises(ValueError, match="only possible for jit and batch_jacobian"):
        m.add(st.jacobian(mlp), Spec((None, 3)))
    with pytest.raises(ValueError, match="mixes"):
        m.add(lambda x: x - np.mean(x, axis=0), Spec((None, 3)), name="centered")
    with pytest.raises(ValueError, match="batch size"):
        m.add(lambda x: x * np.arange(x.shape[0])[:, None], Spec((None, 3)), name="ranked")
    with pytest.raises(ValueError, match="only the first"):
        Spec((3, None))


def test_cli_compile(tmp_path, monkeypatch):
    from symtape.cli import main

    (tmp_path / "aot_cli_models.py").write_text(textwrap.dedent("""
        import numpy as np

        def rober(y):
            return np.stack([-0.04 * y[0] + 1e4 * y[1] * y[2],
                             0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
                             3e7 * y[1] ** 2])
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["compile", "aot_cli_models:rober", "--jit", "--jacobian", "--shapes", "3",
                 "--out", "build", "--kind", "source", "--name", "rober_cli"]) == 0
    mod = _import_fresh(tmp_path / "build", "rober_cli")
    np.testing.assert_allclose(mod.rober_jacobian(Y0), st.jacobian(rober)(Y0), rtol=1e-12)
    np.testing.assert_allclose(mod.rober(Y0), rober(Y0), rtol=1e-12)
    with pytest.raises(SystemExit):
        main(["compile", "aot_cli_models:rober", "--shapes", "3", "--name", "../evil"])
