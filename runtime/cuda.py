"""The CUDA target's runtime: availability, copies, launches, ``__cuda_array_interface__``.

Everything that needs numba-cuda is here (and in the generated modules); it is imported only when
``target="cuda"`` is asked for, so importing symtape never requires numba-cuda.

A ``CudaKernel`` takes one array per graph argument: numpy arrays (copied to the device, results
copied back as numpy arrays) or device arrays (numba device arrays and anything exposing
``__cuda_array_interface__``: CuPy arrays, PyTorch CUDA tensors), in which case the results stay on
the device as numba ``DeviceNDArray``s. Without a GPU, numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1`` in the environment before numba is imported) runs the same kernels.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from .compiler.codegen.emitter import storage_shape
from .compiler.codegen.cuda import generate
from .compiler.codegen.module import load_module, write_module
from .compiler.ir import Graph

_INSTALL = ('pip install "symtape[cuda]" (numba-cuda with its CUDA 13 wheels, '
            '"numba-cuda[cu13]")')
_SIMULATOR = ("to run on numba's CUDA simulator instead (slow; for testing), set "
              "NUMBA_ENABLE_CUDASIM=1 in the environment before Python starts")


def _why_unavailable(device: bool = True) -> str | None:
    """None if CUDA kernels can run here (a GPU, or the simulator), else what is missing.
    ``device=False``: only whether kernels can be generated and compiled (e.g. to PTX)."""
    if importlib.util.find_spec("numba_cuda") is None:
        return f"numba-cuda is not installed: {_INSTALL}"
    try:
        from numba import cuda
    except Exception as exc:  # a broken install
        return f"numba.cuda could not be imported ({type(exc).__name__}: {exc}): {_INSTALL}"
    if not device or simulating():
        return None
    try:
        if cuda.is_available():
            return None
    except Exception:  # is_available swallows driver errors; be safe anyway
        pass
    return ("no CUDA GPU is available (numba.cuda.is_available() is False: no NVIDIA GPU, or no "
            f"driver); run on a machine with an NVIDIA GPU, or {_SIMULATOR}, or use "
            "target='cpu'")


def simulating() -> bool:
    """Whether numba.cuda is the simulator (NUMBA_ENABLE_CUDASIM was set when numba loaded)."""
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)


def require(device: bool = True) -> None:
    """Raise RuntimeError, saying what to install or set, unless CUDA kernels can run here
    (``device=False``: unless they can be generated and compiled, which needs no GPU)."""
    why = _why_unavailable(device)
    if why is not None:
        raise RuntimeError(f"symtape target='cuda' is not available: {why}")


def is_device_array(a) -> bool:
    """A numba device array (the simulator's too) or anything exposing
    ``__cuda_array_interface__`` (CuPy arrays, PyTorch CUDA tensors, ...)."""
    return bool(getattr(a, "__cuda_ndarray__", False)) or hasattr(a, "__cuda_array_interface__")


def device_info(a) -> tuple[tuple, np.dtype]:
    """(shape, dtype) of a device array: a numba one's own, else from its
    ``__cuda_array_interface__``."""
    if getattr(a, "__cuda_ndarray__", False):
        return tuple(a.shape), np.dtype(a.dtype)
    cai = a.__cuda_array_interface__
    return tuple(cai["shape"]), np.dtype(cai["typestr"])


def _numba_device_array(a):
    """``a`` as a numba device array (a view of the same memory, no copy)."""
    if getattr(a, "__cuda_ndarray__", False):
        return a
    from numba import cuda

    return cuda.as_cuda_array(a)


def to_host(a) -> np.ndarray:
    """A numpy copy of a device array."""
    return _numba_device_array(a).copy_to_host()


def _as_device(a, dtype, shape):
    """``a`` (numpy or device) as a C-contiguous device array of ``dtype`` and ``shape``."""
    from numba import cuda

    if not is_device_array(a):
        return cuda.to_device(np.ascontiguousarray(a, dtype=dtype).reshape(shape))
    d = _numba_device_array(a)
    if d.dtype != dtype or not d.is_c_contiguous():
        # rare (a strided view, or a captured array of another dtype): through the host
        return cuda.to_device(np.ascontiguousarray(d.copy_to_host(), dtype=dtype).reshape(shape))
    return d if d.shape == shape else d.reshape(shape)


class CudaKernel:
    """A compiled graph on the CUDA target; the same call convention as ``cache.Kernel``."""

    target = "cuda"

    def __init__(self, module, graph: Graph, source: str, module_path: str | None = None):
        self.module = module
        self.fn = getattr(module, graph.name)  # the host function (device arrays in and out)
        self.graph = graph
        self.source = source
        self.path = None  # not a numba disk-cache entry (see cache.clear_cache)
        self.module_path = module_path  # the generated module file, for people to read
        self._args = [(a.dtype, storage_shape(a.shape)) for a in graph.args]
        self._scalar_outs = [k for k, o in enumerate(graph.outputs) if o.ndim == 0]

    def __call__(self, *values):
        on_device = any(is_device_array(v) for v in values)
        prepped = [_as_device(v, dt, shape) for v, (dt, shape) in zip(values, self._args)]
        outs = list(self.fn(*prepped))
        if not on_device:
            outs = [o.copy_to_host() for o in outs]
        for k in self._scalar_outs:
            outs[k] = outs[k].reshape(())
        return outs

    def kernels(self) -> dict:
        """{kernel name: numba signature} of the generated kernels."""
        return dict(self.module._SIGNATURES)

    def ptx(self, cc=(8, 0)) -> dict:
        """{kernel name: PTX} for compute capability ``cc``; needs no GPU (NVVM from the
        numba-cuda wheels), but not the simulator."""
        from numba import cuda

        return {name: cuda.compile_ptx(getattr(self.module, name).py_func, sig, cc=cc)[0]
                for name, sig in self.kernels().items()}


def cuda_kernel(graph: Graph, header: str, directory: str) -> CudaKernel:
    """Generate, write (to ``directory``) and load the CUDA module for ``graph`` (simplified).
    Needs numba-cuda but no GPU: kernels compile at their first launch (or ``ptx``)."""
    require(device=False)
    source = generate(graph, header=header)
    path = write_module(source, directory)
    return CudaKernel(load_module(path, source), graph, source, path)




def compile_ptx(f, *args, cc=(8, 0)) -> dict:
    """{kernel name: PTX} of the CUDA kernels for symtape Function ``f`` (of any target) at
    example ``args``: traced and generated, not run. Needs numba-cuda (its NVVM), not a GPU; not
    available under the simulator."""
    from .cache import kernel_for

    if simulating():
        raise RuntimeError("PTX cannot be compiled under numba's CUDA simulator "
                           "(NUMBA_ENABLE_CUDASIM=1)")
    entry = f._trace(args, {})
    return kernel_for(entry.graph, f.__name__, "cuda").ptx(cc)


__all__ = ["CudaKernel", "compile_ptx", "cuda_kernel", "device_info", "is_device_array",
           "require", "simulating", "to_host"]
