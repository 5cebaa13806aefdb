"""The on-disk kernel cache: a second process loads machine code, concurrent writers, corrupt
entries, an unusable directory, code injection through names, cache_info / clear_cache.

Cross-process behaviour runs in subprocesses (``RUN`` below), each with its own cache directory.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import sympy as sp

import symtape as st
from symtape import cache
from symtape.compiler.ir import Graph, arg
from symtape.compiler.ops.elementwise import X, ew

XS = [1.0, 2.0, 3.0]
EXPECTED = np.diag([np.sin(v) + v * np.cos(v) for v in XS])

# One small tape computation; prints its Jacobian, the first call's time and cache_info().
RUN = textwrap.dedent("""
    import json, os, sys, time
    import numba, numpy as np
    import symtape as st
    from symtape import cache
    numba.njit(lambda a: a + 1)(1.0)  # start numba's compiler first: time only our kernel
    if len(sys.argv) > 1:  # barrier: start the work together with the other process
        open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
        while len(os.listdir(sys.argv[1])) < 2:
            time.sleep(0.01)
    x = st.constant(np.array(%r))
    t0 = time.perf_counter()
    with st.GradientTape() as t:
        t.watch(x)
        y = np.sin(x) * x
    jac = t.jacobian(y, x).numpy()
    took = time.perf_counter() - t0
    print(json.dumps({"jac": jac.tolist(), "time": took, "info": cache.cache_info()}))
""") % (XS,)


def _env(directory):
    return {**os.environ, "SYMTAPE_CACHE_DIR": str(directory)}


def run(directory, *args):
    """Run ``RUN`` in a fresh interpreter with ``directory`` as its cache; return its report."""
    proc = subprocess.run([sys.executable, "-c", RUN, *args], env=_env(directory),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["stderr"] = proc.stderr
    np.testing.assert_allclose(report["jac"], EXPECTED, rtol=1e-12)
    return report


def numba_files(directory, ext):
    pycache = os.path.join(directory, "__pycache__")
    return sorted(os.path.join(pycache, n) for n in os.listdir(pycache)
                  if n.startswith("symtape_") and n.endswith(ext))


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """A cache directory holding ``RUN``'s kernel, compiled once (tests change copies of it)."""
    directory = tmp_path_factory.mktemp("populated") / "cache"
    report = run(directory)
    assert report["info"]["compiles"] == 1
    return directory


@pytest.fixture
def copy_of(populated, tmp_path):
    directory = tmp_path / "cache"
    shutil.copytree(populated, directory)
    return directory


# -- a second process loads machine code ------------------------------------------------------

def test_second_process_loads_instead_of_compiling(tmp_path):
    directory = tmp_path / "cache"
    first = run(directory)
    # numba wrote its index and data next to the generated module.
    assert len(numba_files(directory, ".nbi")) == 1
    assert len(numba_files(directory, ".nbc")) == 1
    second = run(directory)
    assert (first["info"]["compiles"], first["info"]["disk_loads"]) == (1, 0)
    assert (second["info"]["compiles"], second["info"]["disk_loads"]) == (0, 1)
    assert second["time"] < first["time"] / 2, (first["time"], second["time"])


def test_concurrent_writers_both_succeed(tmp_path):
    directory, barrier = tmp_path / "cache", tmp_path / "barrier"
    barrier.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", RUN, str(barrier)], env=_env(directory),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        np.testing.assert_allclose(json.loads(out.splitlines()[-1])["jac"], EXPECTED, rtol=1e-12)
    modules = [n for n in os.listdir(directory) if n.endswith(".py")]
    assert len(modules) == 1 and not [n for n in os.listdir(directory) if "tmp" in n]
    assert run(directory)["info"]["disk_loads"] == 1  # what they left behind is usable


# -- corrupt entries are recompiled, never trusted ----------------------------------------------

@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_corrupt_module_file_is_rewritten(copy_of, damage):
    (module,) = [p for p in copy_of.iterdir() if p.suffix == ".py"]
    text = module.read_text()
    if damage == "truncate":
        module.write_text(text[: len(text) // 2])
    else:  # code that would kill the process if the file on disk were ever executed
        module.write_text("import os\nos._exit(3)\n")
    run(copy_of)
    assert module.read_text() == text


@pytest.mark.parametrize("ext,damage", [(".nbi", "garble"), (".nbc", "garble"),
                                        (".nbc", "truncate")])
def test_corrupt_numba_files_are_recompiled(copy_of, ext, damage):
    (path,) = numba_files(copy_of, ext)
    data = bytearray(open(path, "rb").read())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:  # bytes inside the pickled object code: numba alone would load them or abort in LLVM
        for i in range(len(data) // 8, len(data) // 8 + 16):
            data[i] ^= 0x5A
    open(path, "wb").write(bytes(data))
    report = run(copy_of)
    assert (report["info"]["recovered"], report["info"]["compiles"]) == (1, 1)
    if ext == ".nbi":  # the recompiled entry is trusted again (checked once, to save time)
        again = run(copy_of)
        assert (again["info"]["recovered"], again["info"]["disk_loads"]) == (0, 1)


def test_entry_that_fails_to_load_is_recompiled(copy_of):
    # A damaged index whose checksum matches (as if damaged before symtape recorded it): numba
    # raises while loading it, and the first call drops the entry and compiles instead.
    (index,) = numba_files(copy_of, ".nbi")
    data = open(index, "rb").read()
    open(index, "wb").write(data[: len(data) // 2])
    (sums,) = numba_files(copy_of, cache.SUMS_SUFFIX)
    open(sums, "w").write(cache._digest(numba_files(copy_of, ".nbi")
                                        + numba_files(copy_of, ".nbc")))
    report = run(copy_of)
    assert (report["info"]["recovered"], report["info"]["compiles"]) == (1, 1)


def test_checksum_follows_a_second_numba_signature(fresh_dir):
    a = arg(0, (3,), np.float64)
    kernel = cache.kernel_for(Graph([a], [ew(sp.cos(X[0]) * 3, [a])]), "g")
    frozen = np.array(XS)
    kernel(frozen)
    frozen.flags.writeable = False  # numba types read-only arrays apart: a second entry
    np.testing.assert_allclose(kernel(frozen)[0], 3 * np.cos(XS))
    assert len(kernel.fn.signatures) == 2 and len(numba_files(fresh_dir, ".nbc")) == 2
    assert cache._verified(kernel.fn, kernel.path)


# -- parallel per-example kernels: the examples are a C function, cached beside the kernel ------

# A batch Jacobian with B >= 1000 (parallel) and exp (vectorised): printed with cache_info() and
# numba's cache hits of the parallel loop and of the per-example C function.
RUN_PARALLEL = textwrap.dedent("""
    import json
    import numpy as np
    import symtape as st
    from symtape import cache
    X = np.linspace(-1.0, 1.0, 3000).reshape(1500, 2)
    f = st.batch_jacobian(lambda x: np.exp(x) * x[:, ::-1])
    jac = f(X)
    kernel = f._last.kernel
    print(json.dumps({"jac": jac.tolist(), "info": cache.cache_info(),
                      "hits": sum(kernel.fn.stats.cache_hits.values()),
                      "examples_hits": kernel._examples_cfunc.cache_hits}))
""")


def _parallel_expected():
    X = np.linspace(-1.0, 1.0, 3000).reshape(1500, 2)
    J = np.zeros((1500, 2, 2))
    J[:, 0, 0], J[:, 0, 1] = np.exp(X[:, 0]) * X[:, 1], np.exp(X[:, 0])
    J[:, 1, 1], J[:, 1, 0] = np.exp(X[:, 1]) * X[:, 0], np.exp(X[:, 1])
    return J


def run_parallel(directory):
    proc = subprocess.run([sys.executable, "-c", RUN_PARALLEL], env=_env(directory),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(report["jac"], _parallel_expected(), rtol=1e-13, atol=1e-15)
    return report


def test_parallel_kernel_and_its_examples_load_from_disk(tmp_path):
    directory = tmp_path / "cache"
    first = run_parallel(directory)
    assert (first["info"]["compiles"], first["hits"], first["examples_hits"]) == (1, 0, 0)
    (module,) = [p for p in directory.iterdir() if p.suffix == ".py"]
    assert "_examples_signature = types.void(" in module.read_text()
    # numba's index for the parallel loop and one for the per-example C function (and _vexp's)
    functions = [os.path.basename(p).split(".")[1].rsplit("-", 1)[0]
                 for p in numba_files(directory, ".nbi")]
    assert sorted(functions) == ["_vexp", "batch_jacobian_of__lambda_",
                                 "batch_jacobian_of__lambda__examples"]
    second = run_parallel(directory)
    assert (second["info"]["disk_loads"], second["hits"], second["examples_hits"]) == (1, 1, 1)
    # a damaged C function entry is never loaded: both are dropped and compiled again
    (data,) = [p for p in numba_files(directory, ".nbc") if "_examples-" in p]
    with open(data, "r+b") as fh:
        fh.truncate(os.path.getsize(data) // 2)
    third = run_parallel(directory)
    assert (third["info"]["recovered"], third["info"]["compiles"]) == (1, 1)
    assert run_parallel(directory)["examples_hits"] == 1  # and trusted again


# -- the directory --------------------------------------------------------------------------------

def test_unwritable_directory_falls_back_with_one_warning(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    script = RUN + textwrap.dedent("""
        with st.GradientTape() as t:  # a second kernel, written to the same fallback
            t.watch(x)
            z = np.cos(x) * x
        t.jacobian(z, x)
        assert cache.cache_info()["compiles"] == 2
    """)
    proc = subprocess.run([sys.executable, "-W", "always", "-c", script],
                          env=_env(blocker / "sub"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    np.testing.assert_allclose(report["jac"], EXPECTED, rtol=1e-12)
    assert proc.stderr.count("symtape: cache directory") == 1, proc.stderr
    assert not str(report["info"]["directory"]).startswith(str(blocker))


@pytest.fixture
def fresh_dir(tmp_path, monkeypatch):
    """Point the cache at an empty directory for one test; clear what the test cached after."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("SYMTAPE_CACHE_DIR", str(directory))
    yield directory
    cache.clear_cache()


def test_directory_writable_by_others_is_not_used(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("SYMTAPE_CACHE_DIR", str(shared))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        used = cache.cache_dir()
        assert cache.cache_dir() == used
    assert used != str(shared) and len(caught) == 1
    assert "writable by group or others" in str(caught[0].message)
    assert os.stat(used).st_mode & 0o777 == 0o700


def test_default_directory_is_private_under_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("SYMTAPE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == str(tmp_path / "xdg" / "symtape")
    assert os.stat(cache.cache_dir()).st_mode & 0o777 == 0o700


# -- names cannot inject code ---------------------------------------------------------------------

EVIL = ["f\nimport os; os.system('echo PWNED')", 'f"""\nos.system("echo PWNED")\n"""',
        "f\rimport os; os.system('echo PWNED')", "f\u2028x\x00", "x # -*- coding: utf-7 -*-",
        "np", "_C0", "def", "1x"]


@pytest.mark.parametrize("name", EVIL)
def test_names_cannot_inject_code(fresh_dir, name, capfd):
    a = arg(0, (3,), np.float64)
    graph = Graph([a], [ew(sp.sin(X[0]) * 2, [a])])
    graph.name = name  # as if a name reached codegen unsanitised
    kernel = cache.kernel_for(graph, name)
    np.testing.assert_allclose(kernel(np.array(XS))[0], 2 * np.sin(XS))
    assert "PWNED" not in capfd.readouterr().out
    tree = ast.parse(kernel.source)
    (func,) = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert func.name.isidentifier() and func.name not in ("np", "math", "njit", "_C0")
    assert all(isinstance(n, (ast.Import, ast.ImportFrom, ast.Assign, ast.FunctionDef))
               for n in tree.body)
    assert "os" not in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    header = kernel.source.split("\nimport math")[0]
    assert all(line.startswith("#") and line.isascii() and line.isprintable()
               for line in header.strip().split("\n"))
    assert not re.search(r"coding[:=]", "\n".join(kernel.source.splitlines()[:2]))


# -- cache_info and clear_cache -------------------------------------------------------------------

def _jacobian():
    x = st.constant(np.array(XS))
    with st.GradientTape() as t:
        t.watch(x)
        y = np.sin(x) * x
    return t.jacobian(y, x).numpy()


def test_cache_info_and_clear_cache(fresh_dir):
    cache.clear_cache()
    info = cache.cache_info()
    assert info["directory"] == str(fresh_dir)
    assert (info["kernels_in_memory"], info["files_on_disk"], info["bytes_on_disk"]) == (0, 0, 0)
    # Files that are not symtape's must survive clear_cache.
    others = [fresh_dir / "notes.txt", fresh_dir / "symtape_mine.py",
              fresh_dir / "__pycache__" / "other.cpython-311.pyc"]
    (fresh_dir / "__pycache__").mkdir()
    for path in others:
        path.write_text("keep me")

    np.testing.assert_allclose(_jacobian(), EXPECTED, rtol=1e-12)
    a = arg(0, (3,), np.float64)
    for _ in range(2):  # a second graph of the same structure is a memory hit
        kernel = cache.kernel_for(Graph([a], [ew(sp.sin(X[0]) + X[0] * sp.cos(X[0]), [a])]))
        np.testing.assert_allclose(kernel(np.array(XS))[0], np.diag(EXPECTED))
    info = cache.cache_info()
    assert (info["kernels_in_memory"], info["files_on_disk"]) == (2, 2)
    assert (info["misses"], info["hits"], info["compiles"]) == (2, 1, 2)
    assert info["bytes_on_disk"] > 1000  # the module and numba's machine code

    cache.clear_cache()
    info = cache.cache_info()
    assert (info["kernels_in_memory"], info["files_on_disk"], info["bytes_on_disk"]) == (0, 0, 0)
    assert (info["hits"], info["misses"]) == (0, 0)
    assert all(path.read_text() == "keep me" for path in others)
    assert sorted(os.listdir(fresh_dir / "__pycache__")) == ["other.cpython-311.pyc"]
    kernel = cache.kernel_for(Graph([a], [ew(sp.sin(X[0]) + X[0] * sp.cos(X[0]), [a])]))
    np.testing.assert_allclose(kernel(np.array(XS))[0], np.diag(EXPECTED))  # compiled again
    assert cache.cache_info()["files_on_disk"] == 1


def test_clear_cache_runs_hooks(fresh_dir):
    cleared = []
    hook = lambda: cleared.append(True)  # noqa: E731
    cache.on_clear(hook)
    try:
        cache.clear_cache()
    finally:
        cache._CLEAR_HOOKS.remove(hook)
    assert cleared == [True]
