"""Ahead-of-time modules: symtape functions and their derivatives as a package that imports
without symtape or sympy (and, for the native kind, without numba).

::

    mod = st.aot.Module("robertson")
    mod.add(rober, y0, name="rober")                   # a plain function: its value (jit)
    mod.add(st.jacobian(rober), y0, name="rober_jac")  # or grad, hessian, batch_jacobian
    mod.add(st.batch_jacobian(mlp), st.aot.Spec((None, 3)), name="mlp_jac")  # free batch axis
    mod.build("build/")                                # build/robertson/ : import robertson

Every entry is traced and compiled by the ordinary pipeline (Function -> Graph -> kernel_for),
and the generated numba module of its kernel is *the* source of both artefacts:

``kind="native"`` (default)
    numba's ahead-of-time compiler (``numba.pycc``, used in exactly one place: ``_pycc_build``)
    compiles every entry into one extension module ``<name>/_native*.so``. Importing the package
    needs numpy only. Without a working C compiler, or if pycc fails or no longer exists in the
    installed numba, the build falls back to the source kind with an ``AOTFallbackWarning``.
``kind="source"``
    the generated modules themselves (``<name>/_k_<entry>.py``, ``@njit(cache=True)``); needs
    numba at run time and caches machine code next to the files on first call.

Both kinds ship the generated sources (to read), a typed wrapper (``__init__.py``: argument
checking with a TypeError naming the expected signature, 0-d handling, docstrings), a manifest
(``manifest.json``: entries, signatures, derivative kinds, symtape version, graph hashes) and,
when entries read captured arrays, ``_constants.npz``.

Captured arrays (arrays a function reads from its closure or globals) are keyword-only
parameters of the exported function, named after the variable where symtape can tell, whose
defaults are the values at build time, stored in ``_constants.npz``: an AOT module is a
snapshot, but new weights of the same shape can be passed without rebuilding.

Free batch dimension: ``Spec((None, ...))`` marks a leading batch axis of any size (``jit`` and
``batch_jacobian`` entries only). The function is traced at a small batch size n >= 3 to check
that examples stay independent (every op keeps axis 0 apart, checked structurally, and the
compiled result agrees with a per-example evaluation on random inputs); the exported kernel is
then the one traced at batch size 1, called once per example by a generated loop (no parallel
loop: machine code is identical on every platform and needs no threading layer).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import keyword
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import types
import warnings
from dataclasses import dataclass, field

import numpy as np

from .compiler.batching import mixing_op
from .compiler.codegen.cpu import generate
from .compiler.codegen.module import set_llvm_options

__all__ = ["AOTFallbackWarning", "Module", "Spec"]

KINDS = ("native", "source")
TRANSFORM_KINDS = ("jit", "grad", "jacobian", "batch_jacobian", "hessian")
_ALLOWED_IMPORTS = {"math", "numpy", "numba"}
_RESERVED = {"manifest"}  # names the wrapper defines itself
_MANIFEST = "manifest.json"
_CONSTANTS = "_constants.npz"
_NATIVE = "_native"

_DESCRIBE = {
    "jit": "the value of {fn}",
    "grad": "the gradient of {fn} with respect to {wrt}",
    "jacobian": "the Jacobian of {fn} with respect to {wrt}",
    "batch_jacobian": "the per-example Jacobian (batch_jacobian) of {fn} with respect to {wrt}",
    "hessian": "the Hessian of {fn} with respect to {wrt}",
}


class AOTFallbackWarning(RuntimeWarning):
    """A native build was not possible; the module was built as the source kind instead."""


class _NativeUnavailable(Exception):
    """Why a native build is not possible here (a message for the user)."""


# ---------------------------------------------------------------------------------------------
# Signatures


@dataclass(frozen=True)
class Spec:
    """An argument's type: ``shape`` (``None`` as the first dimension: a free batch axis) and
    ``dtype``. Use it instead of an example array; plain arrays mean their own shape and dtype."""

    shape: tuple
    dtype: object = np.float64

    def __post_init__(self):
        shape = (self.shape,) if isinstance(self.shape, (int, np.integer)) or (
            self.shape is None) else tuple(self.shape)
        for k, n in enumerate(shape):
            if n is None and k == 0:
                continue
            if n is None:
                raise ValueError(f"Spec{shape}: only the first (batch) dimension may be None")
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                raise ValueError(f"Spec{shape}: dimensions must be non-negative integers")
        object.__setattr__(self, "shape", tuple(None if n is None else int(n) for n in shape))
        try:
            dtype = np.dtype(self.dtype)
        except TypeError as exc:
            raise TypeError(f"Spec: {self.dtype!r} is not a numpy dtype") from exc
        if dtype.kind not in "biuf":
            raise TypeError(f"Spec: dtype {dtype} is not supported (bool, integers, floats)")
        object.__setattr__(self, "dtype", dtype)

    @property
    def batched(self) -> bool:
        return bool(self.shape) and self.shape[0] is None

    def concrete(self, batch: int) -> tuple:
        return tuple(batch if n is None else n for n in self.shape)


def _type_text(shape, dtype) -> str:
    dims = ", ".join("B" if n is None else str(n) for n in shape)
    return f"{np.dtype(dtype).name}[{dims}]"


def _structure_text(structure, outputs) -> str:
    if isinstance(structure, int):
        return _type_text(*outputs[structure])
    return "(" + ", ".join(_structure_text(s, outputs) for s in structure) + (
        ",)" if len(structure) == 1 else ")")


def _structure_of(layout, n):
    """The nesting the entry's layout gives its outputs: an int or (nested) tuples of ints."""
    def plain(v):
        if isinstance(v, (tuple, list)):
            return tuple(plain(x) for x in v)
        if isinstance(v, (int, np.integer)) and 0 <= int(v) < n:
            return int(v)
        raise ValueError(f"unexpected output arrangement {v!r}")
    return plain(layout(list(range(n))))


# ---------------------------------------------------------------------------------------------
# Names and paths


def _check_identifier(name, what) -> str:
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii() or (
            keyword.iskeyword(name)):
        hint = ""
        if isinstance(name, str) and ("/" in name or "\\" in name or name.startswith(".")
                                      or os.path.isabs(name)):
            hint = " (it may not be a path: the directory is given to build())"
        raise ValueError(f"{what} must be a Python identifier (letters, digits, _ ; not a "
                         f"keyword), got {name!r}{hint}")
    return name


def _inside(path: str, directory: str) -> bool:
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory and path != directory


def _sanitize(text: str, fallback: str) -> str:
    name = re.sub(r"\W", "_", str(text), flags=re.ASCII).strip("_")
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = fallback
    return name


def _param_names(fn, positions):
    """Names of the positional parameters of ``fn`` at ``positions`` (argN where unknown)."""
    import inspect

    from .function import Function

    while isinstance(fn, Function) or hasattr(fn, "__wrapped__"):
        fn = fn.fn if isinstance(fn, Function) else fn.__wrapped__
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [params[p] if p < len(params) else f"arg{p}" for p in positions]
    if len(set(names)) != len(names) or not all(n.isidentifier() for n in names):
        names = [f"arg{p}" for p in positions]
    return names


def _capture_name(getter, fn, k):
    """Best effort: the variable a captured array was read from (its getter's defaults hold the
    global's name or the closure cell); ``captured<k>`` otherwise."""
    from .function import Function
    from .tensor import Variable

    for value in getattr(getter, "__defaults__", None) or ():
        if isinstance(value, str):
            return value
        if isinstance(value, types.CellType):
            f = fn
            while f is not None:
                code = getattr(f, "__code__", None)
                for name, cell in zip(getattr(code, "co_freevars", ()), f.__closure__ or ()):
                    if cell is value:
                        return name
                f = f.fn if isinstance(f, Function) else getattr(f, "__wrapped__", None)
    for cell in getter.__closure__ or ():
        try:
            obj = cell.cell_contents
        except ValueError:
            continue
        if isinstance(obj, Variable):
            return str(obj.name).split(":")[0]
    return f"captured{k}"


# ---------------------------------------------------------------------------------------------
# Entries


@dataclass
class _AOTEntry:
    name: str
    kind: str
    function: str
    argnums: object
    params: list  # [(name, shape with None for a free batch axis, dtype)]
    captured: list  # [(name, shape, dtype, value)]
    outputs: list  # [(shape with None, dtype)]
    structure: object
    statics: dict
    source: str  # the generated kernel module plus the entry function `_aot_entry`
    graph_hash: str
    kernel_hash: str
    batched: bool
    description: str = ""
    doc: str = field(default="")

    @property
    def signature(self) -> str:
        params = [f"{n}: {_type_text(s, d)}" for n, s, d in self.params]
        params += ["*"] * bool(self.captured) + [
            f"{n}: {_type_text(v.shape, v.dtype)} = <captured>" for n, _, _, v in self.captured]
        return (f"{self.name}({', '.join(params)}) -> "
                f"{_structure_text(self.structure, self.outputs)}")


def _example_values(specs, batch, rng):
    values = []
    for s in specs:
        if not isinstance(s, Spec):
            values.append(s)
            continue
        shape = s.concrete(batch)
        if s.dtype.kind == "f":
            values.append(rng.uniform(0.5, 1.5, shape).astype(s.dtype))
        elif s.dtype.kind == "b":
            values.append(rng.uniform(size=shape) < 0.5)
        else:
            values.append(rng.integers(1, 4, shape).astype(s.dtype))
    return values


def _trace(func, values, label):
    """Call a fresh Function on ``values``; return its entry. Tracing errors say which entry."""
    from .function import Function

    fresh = Function(func.fn, func.kind, func.argnums, name=func.__name__)
    try:
        fresh(*values)
    except Exception as exc:
        exc.add_note(f"(while tracing {label} for an ahead-of-time module)")
        raise
    return fresh._last


def _check_batch_polymorphic(label, per_example, full, specs, batch, rng):
    """Raise unless the entry traced at ``batch`` equals looping the batch-1 entry."""
    from .tape import _describe

    # the traced program (a batch_jacobian's derivative graph moves the batch axis around)
    arrays = [s for s in specs if isinstance(s, Spec)]
    batched_args = [a for a, s in zip(full.traced.args, arrays) if s.batched]
    node = mixing_op(full.traced.outputs, batched_args, batch)
    if node is not None:
        raise ValueError(
            f"{label}: a free batch dimension needs examples that stay independent, but op "
            f"'{_describe(node)}' mixes them along axis 0 (e.g. a mean over the batch, batch "
            "norm in training mode). Give a fixed batch size instead (an example array).")
    for k, o in enumerate(full.graph.outputs):
        if o.ndim == 0 or o.shape[0] != batch:
            raise ValueError(f"{label}: output {k} has shape {o.shape}, which does not carry "
                             f"the batch axis (traced at batch size {batch}); a free batch "
                             "dimension needs every output to have the batch on axis 0")
    # Numerically too: shape-dependent constants (np.arange(x.shape[0])) pass the check above.
    values = _example_values(specs, batch, rng)
    arrays = [(v, s.batched) for v, s in zip(values, specs) if isinstance(s, Spec)]
    ext = full.external_values()
    whole = full.kernel(*[v for v, _ in arrays], *ext)
    ext1 = per_example.external_values()
    parts = [per_example.kernel(*[v[b:b + 1] if flag else v for v, flag in arrays], *ext1)
             for b in range(batch)]
    for k, w in enumerate(whole):
        looped = np.concatenate([p[k] for p in parts], axis=0)
        if looped.shape != w.shape or not np.allclose(looped, w, rtol=1e-9, atol=1e-12,
                                                      equal_nan=True):
            raise ValueError(
                f"{label}: the result at batch size {batch} differs from evaluating each "
                f"example alone (output {k}), so the function depends on the batch size (e.g. "
                "np.arange(x.shape[0])) and cannot have a free batch dimension. Give a fixed "
                "batch size instead (an example array).")


def _aot_source(kernel) -> str:
    """The kernel's module with large matrix products as loop nests instead of np.dot calls
    (numba's BLAS binding needs scipy at run time, an ahead-of-time module only numpy), and
    per-example code called directly (the JIT's kernels call it by address, as a C function
    compiled by symtape's runtime)."""
    if "np.dot(" not in kernel.source and "_examples_signature = " not in kernel.source:
        return kernel.source
    header = kernel.source[:kernel.source.index("import math")].rstrip("\n") + "\n"
    return generate(kernel.graph, header=header, blas=False, by_address=False)


def _entry_source(kernel_source, kernel_name, params, n_captured, outputs, batched_flags):
    """The generated kernel module plus ``_aot_entry``, the function each artefact exports."""
    n = len(params) + n_captured
    names = [f"a{k}" for k in range(n)]
    head = "\n\n# --- ahead-of-time entry (symtape.aot) ---\n"
    deco = "@njit(cache=True, error_model='numpy')\n"
    if not any(batched_flags):
        return (kernel_source + head + deco + f"def _aot_entry({', '.join(names)}):\n"
                f"    return {kernel_name}({', '.join(names)})\n")
    first = names[batched_flags.index(True)]
    lines = [f"def _aot_entry({', '.join(names)}):", f"    n = {first}.shape[0]"]
    for k, (shape, dtype) in enumerate(outputs):
        dt = "np.bool_" if np.dtype(dtype).kind == "b" else f"np.{np.dtype(dtype).name}"
        rest = "".join(f", {d}" for d in shape[1:])
        lines.append(f"    o{k} = np.empty((n{rest}), {dt})")
    call = ", ".join(f"{a}[b:b + 1]" if k < len(batched_flags) and batched_flags[k] else a
                     for k, a in enumerate(names))
    lines += ["    for b in range(n):", f"        r = {kernel_name}({call})"]
    lines += [f"        o{k}[b] = r[{k}][0]" for k in range(len(outputs))]
    outs = ", ".join(f"o{k}" for k in range(len(outputs)))
    lines.append(f"    return ({outs}{',' if len(outputs) == 1 else ''})")
    return kernel_source + head + deco + "\n".join(lines) + "\n"


def _check_imports(source, label):
    """AOT modules may only need math, numpy and numba (e.g. no user module: see README)."""
    for node in ast.walk(ast.parse(source)):
        mods = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mods = [node.module or "."] if not node.level else ["."]
        for m in mods:
            if m.split(".")[0] not in _ALLOWED_IMPORTS:
                raise ValueError(f"{label}: the generated code imports {m!r}; an ahead-of-time "
                                 "module may only use math, numpy and numba")


# ---------------------------------------------------------------------------------------------
# The module


class Module:
    """A collection of compiled entries, built into an importable package by ``build``."""

    def __init__(self, name: str):
        self.name = _check_identifier(name, "module name")
        self.entries: list[_AOTEntry] = []
        self.kind = None  # the kind the last build() produced ("native" or "source")

    def __repr__(self):
        return f"<symtape.aot.Module {self.name!r}: {[e.name for e in self.entries]}>"

    def add(self, f, *example_args, name: str | None = None, doc: str | None = None):
        """Add ``f`` (a plain function: its value, as st.jit; or a symtape Function such as
        ``st.jacobian(g)``) with the signature of ``example_args``: arrays (their shape and
        dtype), ``Spec(shape, dtype)`` (a leading ``None``: a free batch axis) or Python scalars
        (static: fixed at build time). Returns the entry's signature text."""
        from .function import Function

        func = f if isinstance(f, Function) else Function(f, "jit")
        if func.kind not in TRANSFORM_KINDS:
            raise ValueError(f"cannot export a {func.kind!r} Function; use one of "
                             f"{', '.join(TRANSFORM_KINDS)}")
        name = _check_identifier(name if name is not None else func.__name__, "entry name")
        if name.startswith("_") or name in _RESERVED:
            raise ValueError(f"entry name {name!r} is reserved (names starting with '_' and "
                             f"{sorted(_RESERVED)} are used by the wrapper)")
        if any(e.name == name for e in self.entries):
            raise ValueError(f"module {self.name!r} already has an entry named {name!r}")
        label = f"entry {name!r} ({func.kind} of {getattr(func.fn, '__name__', func.fn)!r})"

        specs, statics, positions = [], {}, []
        for k, a in enumerate(example_args):
            if isinstance(a, Spec):
                specs.append(a)
                positions.append(k)
            elif isinstance(a, (bool, int, float, complex, str, type(None))) and not (
                    isinstance(a, np.generic)):
                specs.append(a)
                statics[k] = a
            else:
                v = np.asarray(a.numpy() if hasattr(a, "numpy") else a)
                specs.append(Spec(v.shape, v.dtype))
                positions.append(k)
        batched = any(isinstance(s, Spec) and s.batched for s in specs)
        if batched and func.kind not in ("jit", "batch_jacobian"):
            raise ValueError(
                f"{label}: a free batch dimension (Spec((None, ...))) is only possible for jit "
                "and batch_jacobian entries (a full Jacobian, gradient or Hessian couples the "
                "examples); give a fixed batch size instead")
        rng = np.random.default_rng(0)
        if batched:
            dims = {n for s in specs if isinstance(s, Spec) for n in s.shape}
            n = 3
            while n in dims:
                n += 1
            with warnings.catch_warnings():
                warnings.simplefilter("error", _batch_mixing_warning())
                try:
                    full = _trace(func, _example_values(specs, n, rng), label)
                except _batch_mixing_warning() as w:
                    raise ValueError(f"{label}: a free batch dimension needs independent "
                                     f"examples: {w}") from None
            entry = _trace(func, _example_values(specs, 1, rng), label)
            _check_batch_polymorphic(label, entry, full, specs, n, rng)
        else:
            values = [_example_values([a], 0, rng)[0] if isinstance(a, Spec) else a
                      for a in example_args]
            entry = _trace(func, values, label)

        kernel = entry.kernel
        graph = kernel.graph
        if len(graph.args) != entry.n_args + len(entry.externals):
            raise RuntimeError(f"{label}: kernel arguments do not match the trace")
        param_names = _param_names(func.fn, positions)
        array_specs = [s for s in specs if isinstance(s, Spec)]
        params = [(pn, s.shape, s.dtype.name) for pn, s in zip(param_names, array_specs)]
        captured, taken = [], set(param_names) | {name}
        for k, ((get, shape, dtype), value) in enumerate(zip(entry.externals,
                                                               entry.external_values() or ())):
            cname = _sanitize(_capture_name(get, func.fn, k), f"captured{k}")
            while cname in taken or cname.startswith("_"):
                cname = f"captured{k}" if cname != f"captured{k}" else f"captured{k}_"
            taken.add(cname)
            captured.append((cname, tuple(shape), np.dtype(dtype).name,
                             np.array(value, copy=True)))
        if len(captured) != len(entry.externals):
            raise RuntimeError(f"{label}: a captured array changed shape or dtype while tracing")
        outputs = [((None,) + tuple(o.shape[1:]) if batched else tuple(o.shape), o.dtype.name)
                   for o in graph.outputs]
        source = _entry_source(_aot_source(kernel), graph.name, params, len(captured),
                               outputs, [isinstance(s, Spec) and s.batched for s in array_specs])
        _check_imports(source, label)
        nums = (func.argnums,) if isinstance(func.argnums, int) else tuple(func.argnums)
        wrt = ", ".join(f"{param_names[positions.index(p)]!r}" if p in positions else str(p)
                        for p in nums)
        fn_name = getattr(func.fn, "__qualname__", getattr(func.fn, "__name__", repr(func.fn)))
        e = _AOTEntry(
            name=name, kind=func.kind, function=f"{getattr(func.fn, '__module__', '?')}."
            f"{fn_name}", argnums=func.argnums, params=params, captured=captured,
            outputs=outputs, structure=_structure_of(entry.layout, len(graph.outputs)),
            statics={str(k): repr(v) for k, v in statics.items()}, source=source,
            graph_hash=entry.graph.structural_hash(), kernel_hash=graph.structural_hash(),
            batched=batched, description=_DESCRIBE[func.kind].format(
                fn=getattr(func.fn, "__name__", "f"), wrt=wrt), doc=doc or "")
        self.entries.append(e)
        return e.signature

    # -- building --------------------------------------------------------------------------
    def build(self, out_dir, kind: str = "native") -> str:
        """Write the package ``<out_dir>/<name>/`` and return its path. ``kind``: "native" (an
        extension module compiled by numba's AOT compiler; falls back to "source" with an
        AOTFallbackWarning when that is not possible here) or "source" (numba, cache=True)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if not self.entries:
            raise ValueError(f"module {self.name!r} has no entries: add some with .add()")
        out_dir = os.path.abspath(os.fspath(out_dir))
        os.makedirs(out_dir, exist_ok=True)
        target = os.path.join(out_dir, self.name)
        if not _inside(target, out_dir) or os.path.islink(target):
            raise ValueError(f"{target!r} escapes the output directory {out_dir!r} (a symlink?)")
        if os.path.exists(target) and not _is_ours(target):
            raise FileExistsError(f"{target!r} exists and is not a symtape AOT module; remove it "
                                  "or choose another name or directory")
        staging = tempfile.mkdtemp(prefix=f".{self.name}.tmp-", dir=out_dir)
        try:
            built = self._write(staging, kind)
            old = None
            if os.path.exists(target):
                old = tempfile.mkdtemp(prefix=f".{self.name}.old-", dir=out_dir)
                os.replace(target, os.path.join(old, self.name))
            os.replace(staging, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.kind = built
        return target

    def _write(self, pkg, kind):
        for e in self.entries:
            _write_text(os.path.join(pkg, f"_k_{e.name}.py"), e.source)
        constants = {f"{e.name}__{c[0]}": c[3] for e in self.entries for c in e.captured}
        if constants:
            with open(os.path.join(pkg, _CONSTANTS), "wb") as f:
                np.savez(f, **constants)
        native = None
        if kind == "native":
            try:
                native = _build_native(self, pkg)
            except _NativeUnavailable as exc:
                warnings.warn(AOTFallbackWarning(
                    f"symtape.aot: module {self.name!r} could not be built as a native "
                    f"extension: {exc}. Built the 'source' kind instead (it needs numba at run "
                    "time)."), stacklevel=3)
                kind = "source"
        _write_text(os.path.join(pkg, _MANIFEST), json.dumps(self._manifest(kind, native),
                                                             indent=2, sort_keys=True) + "\n")
        _write_text(os.path.join(pkg, "__init__.py"), _wrapper(self, kind))
        return kind

    def _manifest(self, kind, native):
        import numba

        from . import __version__

        return {
            "format": "symtape-aot/1", "name": self.name, "kind": kind,
            "symtape_version": __version__, "numpy_version": np.__version__,
            "numba_version": numba.__version__,
            "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "native_module": native, "entries": [{
                "name": e.name, "derivative": e.kind, "function": e.function,
                "argnums": list(e.argnums) if isinstance(e.argnums, tuple) else e.argnums,
                "signature": e.signature, "description": e.description,
                "inputs": [{"name": n, "shape": list(s), "dtype": d} for n, s, d in e.params],
                "captured": [{"name": n, "shape": list(s), "dtype": d, "default": _CONSTANTS}
                             for n, s, d, _ in e.captured],
                "outputs": [{"shape": list(s), "dtype": d} for s, d in e.outputs],
                "static_arguments": e.statics, "free_batch": e.batched,
                "graph_hash": e.graph_hash, "kernel_graph_hash": e.kernel_hash,
                "source": f"_k_{e.name}.py"} for e in self.entries]}


def _batch_mixing_warning():
    from .tape import BatchMixingWarning

    return BatchMixingWarning


def _is_ours(path) -> bool:
    try:
        with open(os.path.join(path, _MANIFEST), encoding="utf-8") as f:
            return json.load(f).get("format", "").startswith("symtape-aot/")
    except (OSError, ValueError, AttributeError):
        return False


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------
# Native: numba.pycc, in one place


def _c_compiler_problem():
    """Why no C compiler can build extensions here (None when one is found)."""
    install = ("install a C compiler and the Python headers: Debian/Ubuntu `apt install gcc "
               "python3-dev` (or build-essential), Fedora `dnf install gcc python3-devel`, "
               "macOS `xcode-select --install`, Windows the Microsoft C++ Build Tools")
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or (
        "cl" if sys.platform == "win32" else "cc")
    exe = cc.split()[0] if cc.split() else cc
    if shutil.which(exe) is None:
        return f"no C compiler found (looked for {exe!r}); {install}"
    include = sysconfig.get_paths().get("include") or ""
    if sys.platform != "win32" and not os.path.exists(os.path.join(include, "Python.h")):
        return f"the Python headers are missing ({include}/Python.h); {install}"
    return None


def _pycc_build(module_name: str, exports, output_dir: str) -> str:
    """The only use of ``numba.pycc`` (deprecated upstream): compile ``exports``, a list of
    ``(name, python_function, numba_signature)``, into the extension ``module_name`` in
    ``output_dir``; return the file name. Raises _NativeUnavailable when it cannot."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from numba.pycc import CC
    except ImportError as exc:
        raise _NativeUnavailable(f"this numba has no ahead-of-time compiler (numba.pycc: "
                                 f"{exc})") from None
    problem = _c_compiler_problem()
    if problem:
        raise _NativeUnavailable(problem)
    cc = CC(module_name)
    cc.output_dir = output_dir
    cc.verbose = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, fn, sig in exports:
                cc.export(name, sig)(fn)
            cc.compile()
    except Exception as exc:  # noqa: BLE001  (compiler, linker, numba typing errors)
        raise _NativeUnavailable(f"numba.pycc failed ({type(exc).__name__}: "
                                 f"{str(exc).strip()[:2000]})") from None
    return os.path.basename(cc.output_file)


def _build_native(module: Module, pkg: str) -> str:
    """Compile every entry's ``_aot_entry`` into ``<pkg>/_native*.so``; return its file name."""
    from numba import from_dtype
    from numba import types as nbt

    set_llvm_options()
    build = tempfile.mkdtemp(prefix="symtape-aot-")
    try:
        exports = []
        for e in module.entries:
            # numba's AOT compiler has no parallel target: prange runs as range
            text = e.source.replace(", parallel=True", "")
            path = os.path.join(build, f"_k_{e.name}.py")
            _write_text(path, text)
            modname = f"_symtape_aot_build_{os.path.basename(build)}_{e.name}"
            spec = importlib.util.spec_from_file_location(modname, path)
            mod = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(mod)
            except Exception as exc:  # noqa: BLE001  (reported, then the source kind)
                raise _NativeUnavailable(f"could not load the generated source of {e.name!r} "
                                         f"({type(exc).__name__}: {exc})") from None
            args = [nbt.Array(from_dtype(np.dtype(d)), max(len(s), 1), "C")
                    for _, s, d in e.params]
            args += [nbt.Array(from_dtype(np.dtype(d)), max(len(s), 1), "C")
                     for _, s, d, _ in e.captured]
            outs = [nbt.Array(from_dtype(np.dtype(d)), max(len(s), 1), "A")
                    for s, d in e.outputs]
            exports.append((e.name, mod._aot_entry.py_func, nbt.Tuple(outs)(*args)))
        return _pycc_build(_NATIVE, exports, pkg)
    finally:
        shutil.rmtree(build, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The wrapper (the package's __init__.py): numpy only, plus the kernels


_RUNTIME = r'''
def _load_constants():
    path = _os.path.join(_os.path.dirname(__file__), "_constants.npz")
    if not _os.path.exists(path):
        return {}
    with _np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


_DEFAULTS = _load_constants()


def manifest():
    """The manifest of this module (entries, signatures, symtape version, graph hashes)."""
    with open(_os.path.join(_os.path.dirname(__file__), "manifest.json"), encoding="utf-8") as f:
        return _json.load(f)


def _text(shape, dtype):
    return "%s[%s]" % (dtype, ", ".join("B" if n is None else str(n) for n in shape))


def _check(entry, what, name, value, shape, dtype, batch):
    try:
        a = _np.asarray(value)
    except Exception:
        a = None
    ok = (a is not None and a.dtype == _np.dtype(dtype) and a.ndim == len(shape)
          and all(n is None or n == m for n, m in zip(shape, a.shape)))
    if not ok:
        got = ("%s[%s]" % (a.dtype, ", ".join(map(str, a.shape))) if a is not None
               else type(value).__name__)
        raise TypeError("%s: %s %r must be %s, got %s; expected signature %s"
                        % (entry["name"], what, name, _text(shape, dtype), got,
                           entry["signature"]))
    if shape and shape[0] is None:
        if batch[0] is not None and a.shape[0] != batch[0]:
            raise TypeError("%s: %s %r has batch size %d but an earlier argument has %d; "
                            "expected signature %s" % (entry["name"], what, name, a.shape[0],
                                                       batch[0], entry["signature"]))
        batch[0] = a.shape[0]
    a = _np.ascontiguousarray(a)
    return a.reshape(1) if a.ndim == 0 else a


def _arrange(structure, outs):
    if isinstance(structure, int):
        return outs[structure]
    return tuple(_arrange(s, outs) for s in structure)


def _call(entry, fn, args, captured):
    batch = [None]
    arrays = [_check(entry, "argument", n, v, s, d, batch)
              for (n, s, d), v in zip(entry["params"], args)]
    for (n, s, d), v in zip(entry["captured"], captured):
        if v is None:
            v = _DEFAULTS[entry["name"] + "__" + n]
        arrays.append(_check(entry, "captured array", n, v, s, d, batch))
    outs = list(fn(*arrays))
    for k, (s, d) in enumerate(entry["outputs"]):
        if not s:
            outs[k] = outs[k].reshape(())
    return _arrange(entry["structure"], outs)
'''


def _docstring(e: _AOTEntry, kind) -> str:
    from . import __version__

    summary = (f"{e.description[0].upper()}{e.description[1:]}, compiled ahead of time by "
               f"symtape {__version__} ({kind} kind; derivative kind: {e.kind}).")
    lines = [e.signature, "", summary, ""]
    if e.doc:
        lines += [e.doc, ""]
    lines.append("Arguments (numpy arrays of exactly these dtypes; B: any batch size):")
    lines += [f"    {n}: {_type_text(s, d)}" for n, s, d in e.params]
    if e.captured:
        lines.append("Captured arrays (keyword-only; default: the values when the module was "
                     "built, from _constants.npz):")
        lines += [f"    {n}: {_type_text(s, d)}" for n, s, d, _ in e.captured]
    if e.statics:
        lines.append("Static arguments fixed at build time (by position): " + ", ".join(
            f"{k}={v}" for k, v in e.statics.items()))
    lines.append(f"Returns: {_structure_text(e.structure, e.outputs)}")
    lines.append(f"Graph hash: {e.graph_hash}")
    return "\n".join(lines)


def _wrapper(module: Module, kind: str) -> str:
    from . import __version__

    if kind == "native":
        imports = ("try:\n    from . import _native as _impl\nexcept ImportError as _exc:\n"
                   f"    raise ImportError(\"{module.name}: the native extension does not load "
                   "on this platform (%s); rebuild it here, or build the 'source' kind\" % _exc) "
                   "from _exc\n")
        fns = {e.name: f"_impl.{e.name}" for e in module.entries}
    else:
        imports = "".join(f"from . import _k_{e.name}\n" for e in module.entries)
        fns = {e.name: f"_k_{e.name}._aot_entry" for e in module.entries}
    parts = [
        f'"""{module.name}: ahead-of-time compiled by symtape {__version__} ({kind} kind).\n\n'
        "Entries:\n" + "".join(f"    {e.signature}\n" for e in module.entries)
        + '\nGenerated file: do not edit. See manifest.json and the _k_*.py sources."""\n',
        "import json as _json\nimport os as _os\n\nimport numpy as _np\n",
        imports, _RUNTIME,
    ]
    names = []
    for e in module.entries:
        spec = {"name": e.name, "signature": e.signature,
                "params": [(n, tuple(s), d) for n, s, d in e.params],
                "captured": [(n, tuple(s), d) for n, s, d, _ in e.captured],
                "outputs": [(tuple(s), d) for s, d in e.outputs], "structure": e.structure}
        params = [n for n, _, _ in e.params]
        caps = [n for n, _, _, _ in e.captured]
        sig = ", ".join(params + (["*"] + [f"{c}=None" for c in caps] if caps else []))
        doc = _docstring(e, kind).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        doc = "\n".join(("    " + line).rstrip() if k else line
                        for k, line in enumerate(doc.splitlines()))
        tup = _tuple_text
        parts.append(
            f"\n_E_{e.name} = {spec!r}\n\n\ndef {e.name}({sig}):\n    \"\"\"{doc}\n    \"\"\"\n"
            f"    return _call(_E_{e.name}, {fns[e.name]}, {tup(params)}, {tup(caps)})\n")
        names.append(e.name)
    parts.append(f"\n__all__ = {names + ['manifest']!r}\n")
    return "\n".join(parts)


def _tuple_text(xs) -> str:
    """Python source of a tuple of names: ``(a, b, )``."""
    return "(" + "".join(f"{x}, " for x in xs) + ")"
