"""The CUDA target (issue 7), tested without a GPU.

- Numerical agreement with the CPU target on numba's CUDA simulator, for the seed examples and the
  benchmark workloads at small sizes (tests/runtime/cuda_cases.py). The simulator must be chosen
  before numba.cuda is first imported, and the rest of the suite runs without it, so the cases run
  in one subprocess with NUMBA_ENABLE_CUDASIM=1; each case is reported as its own test.
- Every generated kernel compiles to PTX for sm_80 and sm_90 (``pytest -k ptx``): numba-cuda's
  wheels carry NVVM, so no GPU is needed.
- The errors: a clear RuntimeError when CUDA cannot run here or numba-cuda is missing, and
  importing symtape never needs numba-cuda.

Everything here skips, saying why, only where numba-cuda is not installed.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import symtape as st
from tests.runtime import cuda_cases

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
needs_numba_cuda = pytest.mark.skipif(
    not HAVE_NUMBA_CUDA, reason='numba-cuda is not installed (pip install "symtape[cuda]")')
CASES = sorted(cuda_cases.CASES)
MARKER = "CUDA-CASES-JSON "


def _python(code, env=None, timeout=600):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


# -- the simulator ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def simulated():
    """case -> "ok" or its traceback, from one simulator subprocess."""
    if not HAVE_NUMBA_CUDA:
        pytest.skip('numba-cuda is not installed (pip install "symtape[cuda]")')
    proc = subprocess.run([sys.executable, "-m", "tests.runtime.cuda_cases"], cwd=REPO,
                          capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, NUMBA_ENABLE_CUDASIM="1"))
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    assert lines, f"the simulator run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads(lines[-1][len(MARKER):])


@pytest.mark.parametrize("case", CASES)
def test_simulator_agrees_with_cpu(simulated, case):
    assert simulated[case] == "ok", simulated[case]


# -- PTX for sm_80 and sm_90, no GPU needed --------------------------------------------------------

@pytest.fixture(scope="module")
def ptx_compiler():
    if not HAVE_NUMBA_CUDA:
        pytest.skip('numba-cuda is not installed (pip install "symtape[cuda]")')
    from symtape import cuda as st_cuda

    if st_cuda.simulating():
        pytest.skip("NUMBA_ENABLE_CUDASIM is set: the simulator cannot compile PTX")
    return st_cuda.compile_ptx


@pytest.mark.parametrize("cc", [(8, 0), (9, 0)], ids=["sm_80", "sm_90"])
@pytest.mark.parametrize("case", CASES)
def test_kernels_compile_to_ptx(ptx_compiler, case, cc):
    f, args, _ = cuda_cases.CASES[case]("cpu")  # traced only: its graph, generated for CUDA
    ptx = ptx_compiler(f, *args, cc=cc)
    assert ptx, "no kernels generated"
    for name, text in ptx.items():
        assert f".target sm_{cc[0]}{cc[1]}" in text, name
        assert ".visible .entry" in text, name


def test_ptx_of_every_kernel_kind(ptx_compiler):
    """Both kernel kinds (per-example grid, one-thread) appear among the cases' kernels."""
    kinds = set()
    for case in ("seed_mlp_f32", "lorenz96"):
        f, args, _ = cuda_cases.CASES[case]("cpu")
        kinds |= {name.rsplit("_", 1)[1] for name in ptx_compiler(f, *args)}
    assert kinds == {"kernel", "serial"}


# -- source, cache key, device-array inputs --------------------------------------------------------

@needs_numba_cuda
def test_cuda_source_is_generated_from_the_same_graph():
    from symtape.cache import kernel_for

    f, args, _ = cuda_cases.seed_cube("cpu")
    entry = f._trace(args, {})
    cpu = kernel_for(entry.graph, f.__name__)
    gpu = kernel_for(entry.graph, f.__name__, "cuda")
    assert gpu is not cpu and gpu is kernel_for(entry.graph, f.__name__, "cuda")  # keyed by target
    assert "@njit" in cpu.source and "@njit" not in gpu.source
    src = gpu.source
    assert "@cuda.jit\n" in src and "b = cuda.grid(1)" in src and "if b < 2:" in src
    assert "cuda.device_array((2, 2, 2), np.float32)" in src
    assert "np.zeros" not in src and "np.empty" not in src  # no allocation inside kernels


def test_device_array_signature_from_the_interface():
    """Objects exposing __cuda_array_interface__ (CuPy, torch) dispatch by its shape and typestr."""
    from symtape.function import _is_array_like, _signature

    class Foreign:
        __cuda_array_interface__ = {"shape": (3, 4), "typestr": "<f4", "data": (0, False),
                                    "version": 3}

    assert _is_array_like(Foreign())
    key, _ = _signature((Foreign(), 2.0), {}, device=True)
    assert key == (((3, 4), np.dtype(np.float32)), (float, 2.0))
    with pytest.raises(TypeError, match="target='cuda'"):
        _signature((Foreign(),), {})  # the CPU target does not take device arrays


# -- errors ----------------------------------------------------------------------------------------

def test_unknown_target_is_a_value_error():
    with pytest.raises(ValueError, match="unknown target 'tpu'"):
        st.jacobian(lambda x: x, target="tpu")


@needs_numba_cuda
def test_clear_error_without_gpu_or_simulator(monkeypatch):
    from numba import cuda

    from symtape import cuda as st_cuda

    monkeypatch.setattr(st_cuda, "simulating", lambda: False)
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    for make in (st.jit, st.grad, st.jacobian, st.batch_jacobian, st.hessian):
        with pytest.raises(RuntimeError, match="NUMBA_ENABLE_CUDASIM=1") as info:
            make(lambda x: x * x, target="cuda")
        assert "no CUDA GPU" in str(info.value) and "target='cpu'" in str(info.value)


def test_clear_error_without_gpu_or_simulator_in_a_fresh_process():
    """No simulator in the environment: on a machine without a GPU, asking for CUDA says what to
    do (skipped where a GPU is present)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import importlib.util
        import symtape as st
        try:
            st.batch_jacobian(lambda x: x ** 3, target="cuda")
        except RuntimeError as exc:
            print("RuntimeError:", exc)
        else:
            print("AVAILABLE")
    """)], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    if "AVAILABLE" in proc.stdout:
        pytest.skip("a CUDA GPU is available here")
    assert "RuntimeError: symtape target='cuda' is not available" in proc.stdout
    if HAVE_NUMBA_CUDA:
        assert "NUMBA_ENABLE_CUDASIM=1" in proc.stdout
    else:
        assert "numba-cuda is not installed" in proc.stdout


def test_import_and_cpu_target_never_need_numba_cuda():
    """With numba-cuda made unimportable, symtape imports and runs on the CPU, and target="cuda"
    raises a RuntimeError naming what to install."""
    proc = _python("""
        import sys
        sys.modules["numba_cuda"] = None  # unimportable
        import numpy as np
        import symtape as st
        J = st.batch_jacobian(lambda x: x ** 3)(np.array([[4.0, 2.0], [1.0, 3.0]]))
        assert J[0, 0, 0] == 48.0, J
        try:
            st.batch_jacobian(lambda x: x ** 3, target="cuda")
        except RuntimeError as exc:
            print("RuntimeError:", exc)
        print("numba_cuda loaded:", sys.modules.get("numba_cuda") is not None)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeError: symtape target='cuda' is not available: numba-cuda is not " \
           "installed" in proc.stdout
    assert 'pip install "symtape[cuda]"' in proc.stdout
    assert "numba_cuda loaded: False" in proc.stdout
