"""Compiled kernels: in memory by graph structure, and on disk as generated numba modules.

The key is the graph's structural hash (structure, shapes, dtypes, scalar constants; never
argument values), so a training loop whose weights change reuses one kernel. Generated modules
are written to ``SYMTAPE_CACHE_DIR`` (default ``$XDG_CACHE_HOME/symtape`` or ``~/.cache/symtape``,
private to the user) and compiled with numba's ``cache=True``, so a later process loads machine
code instead of compiling.

Nothing on disk is trusted blindly: a module file whose content does not match its hash name is
rewritten, numba's cache files for a module are checked against a checksum symtape recorded when
it wrote them (numba has none: a garbled .nbc loads silently or aborts the process inside LLVM),
and a first call that still fails on a cache entry drops it and compiles afresh.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import re
import shutil
import stat
import tempfile
import warnings

import numpy as np

from .compiler.codegen.cpu import generate
from .compiler.codegen.emitter import storage_shape
from .compiler.codegen.module import (MODULE_FILE, NUMBA_FILE, forget_modules, load_module,
                                      write_module)
from .compiler.ir import Graph
from .compiler.simplify import simplify

_MEMORY: dict[str, "Kernel"] = {}
_DIRS: dict[str, str] = {}  # wanted directory -> the one in use (itself, or a private fallback)
_CLEAR_HOOKS: list = []  # see on_clear
_STATS = {"hits": 0, "misses": 0, "disk_loads": 0, "compiles": 0, "recovered": 0}
MAX_IR_HEADER_LINES = 60
MAX_NAME = 64
SUMS_SUFFIX = ".symtape-sums"  # our checksum of numba's files, next to them in __pycache__


# ---------------------------------------------------------------------------------------------
# The directory


def _wanted_dir() -> str:
    env = os.environ.get("SYMTAPE_CACHE_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "symtape")


def _distrust(path: str) -> str | None:
    """Why ``path`` must not hold code we will execute (None if it is fine)."""
    if not hasattr(os, "getuid"):
        return None
    info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != os.getuid():
        return f"is owned by another user (uid {info.st_uid})"
    if info.st_mode & 0o022:
        return f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def _fallback(wanted: str, why: str) -> str:
    """A private temporary directory for this process only (removed at exit), with one warning."""
    path = tempfile.mkdtemp(prefix="symtape-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    warnings.warn(f"symtape: cache directory {wanted!r} {why}; compiled kernels are kept for this "
                  f"process only (in {path!r}). Set SYMTAPE_CACHE_DIR to a private, writable "
                  "directory to keep them.", RuntimeWarning, stacklevel=4)
    _DIRS[wanted] = path
    return path


def cache_dir() -> str:
    """The directory generated modules go to.

    ``SYMTAPE_CACHE_DIR`` if set, else the user's cache directory. It is created private to the user
    (mode 0700); one that is not writable, or that another user could write to, is not used: a
    private temporary directory replaces it for this process, with one warning. Re-read when
    ``SYMTAPE_CACHE_DIR`` changes.
    """
    wanted = _wanted_dir()
    if wanted in _DIRS:
        return _DIRS[wanted]
    try:
        os.makedirs(wanted, mode=0o700, exist_ok=True)
        real = os.path.realpath(wanted)  # check (and use) what a symlink points to
        why = _distrust(real)
        if why is None:
            # Modes are not the whole story (root, read-only mounts, ACLs): try a write.
            fd, probe = tempfile.mkstemp(dir=real, prefix=".symtape_probe_")
            os.close(fd)
            os.unlink(probe)
            _DIRS[wanted] = real
            return real
    except OSError as exc:
        why = f"is not writable ({exc})"
    return _fallback(wanted, why)


# ---------------------------------------------------------------------------------------------
# numba's files for one module, and our checksum of them


def _numba_files(directory: str, module_path: str) -> list[str]:
    """numba's cache files (and our checksum file) for the module at ``module_path``."""
    prefix = os.path.splitext(os.path.basename(module_path))[0] + "."
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(directory, n) for n in names if n.startswith(prefix))


def _digest(files: list[str]) -> str:
    h = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def _entry_files(fn, module_path: str) -> tuple[list[str], str]:
    """(numba's index and data files for this module, the path of our checksum for them)."""
    directory = fn.stats.cache_path  # __pycache__ next to the module, or NUMBA_CACHE_DIR's place
    files = [p for p in _numba_files(directory, module_path) if p.endswith((".nbi", ".nbc"))]
    stem = os.path.splitext(os.path.basename(module_path))[0]
    return files, os.path.join(directory, stem + SUMS_SUFFIX)


def _drop_entry(fn, module_path: str) -> bool:
    """Delete numba's cache files (and our checksum) for this module; True if any existed."""
    files, sums = _entry_files(fn, module_path)
    for path in files + [sums]:
        try:
            os.unlink(path)
        except OSError:
            pass
    return bool(files)


def _verified(fn, module_path: str) -> bool:
    """Whether numba's files for this module are exactly those symtape saw it write."""
    try:
        files, sums = _entry_files(fn, module_path)
        if not files:
            return True
        with open(sums, encoding="ascii") as f:
            return f.read() == _digest(files)
    except (OSError, UnicodeDecodeError):  # unreadable, or changing under us: distrust it
        return False


def _record(fn, module_path: str) -> None:
    """Write our checksum of numba's files for this module (atomically; best effort)."""
    files, sums = _entry_files(fn, module_path)
    if not files:
        return
    tmp = f"{sums}.tmp.{os.getpid()}_{os.urandom(6).hex()}"
    try:
        with open(tmp, "w", encoding="ascii") as f:
            f.write(_digest(files))
        os.replace(tmp, sums)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# Kernels


class Kernel:
    """A compiled graph: call with one numpy array per graph argument; returns a list of arrays."""

    def __init__(self, fn, graph: Graph, source: str, path: str | None = None, examples=None):
        self.fn = fn  # the numba dispatcher (its cache files and statistics)
        self.call = fn  # what a call runs (after the first call: with the examples bound)
        # (plain function, numba signature) of per-example code that ``fn`` calls by address
        self._examples = examples
        self._examples_cfunc = None  # compiled: its machine code lives as long as this object
        self.graph = graph
        self.source = source
        self.path = path  # the module file; None for a kernel not backed by the disk cache
        self._compiled = None  # numba signatures seen: None until the first call
        self._args = [(a.dtype, storage_shape(a.shape)) for a in graph.args]
        # outputs of shape () are stored with shape (1,): only those need a reshape
        self._scalar_outs = [k for k, o in enumerate(graph.outputs) if o.ndim == 0]

    def __call__(self, *values):
        prepped = []
        for v, (dt, shape) in zip(values, self._args):
            if not (type(v) is np.ndarray and v.dtype is dt and v.shape == shape
                    and v.flags.c_contiguous):  # the common case passes through untouched
                v = np.ascontiguousarray(v, dtype=dt).reshape(shape)
            prepped.append(v)
        if self._compiled is None:
            outs = self._first_call(prepped)
        else:
            outs = self.call(*prepped)
            if len(self.fn.overloads) != self._compiled:  # e.g. a read-only input: new entry
                self._note_entries()
        outs = list(outs)
        for k in self._scalar_outs:
            outs[k] = outs[k].reshape(())
        return outs

    def _first_call(self, prepped):
        """Call once, making sure numba never loads a damaged cache entry (it could load wrong
        machine code, or abort the process inside LLVM)."""
        fn, path = self.fn, self.path
        if path is not None and not _verified(fn, path):
            _drop_entry(fn, path)  # changed behind our back: never load it
            _STATS["recovered"] += 1
        try:
            outs = self._bind_examples()(*prepped)
        except Exception:
            # numba could not use its cache entry (truncated index, bad pickle, ...): drop it and
            # compile afresh. With no entry to drop the error is a real one: raise it.
            if path is None or not _drop_entry(fn, path):
                raise
            _STATS["recovered"] += 1
            outs = self._bind_examples()(*prepped)
        _STATS["disk_loads" if sum(fn.stats.cache_hits.values()) else "compiles"] += 1
        self._note_entries()
        return outs

    def _bind_examples(self):
        """``self.call``: the dispatcher, with the address of the compiled per-example C function
        as its first argument where it takes one (compiled here, after the cache entry was
        checked)."""
        if self._examples is not None:
            import numba

            py_func, signature = self._examples
            examples = numba.cfunc(signature, cache=self.path is not None,
                                   error_model="numpy")(py_func)
            self.call = functools.partial(self.fn, examples.address)
            self._examples_cfunc = examples
        return self.call

    def _note_entries(self):
        """Record our checksum of numba's files when numba has written to them (compiled)."""
        self._compiled = len(self.fn.overloads)
        examples = self._examples_cfunc
        examples_compiled = examples is not None and not examples.cache_hits  # not loaded
        if self.path is not None and (sum(self.fn.stats.cache_misses.values())
                                      or examples_compiled):
            _record(self.fn, self.path)


def _comment(text: str) -> str:
    """``text`` as printable ASCII with no line breaks, safe inside a ``#`` comment."""
    return text.encode("unicode_escape").decode("ascii")


def _label(name: str) -> str:
    """A function name for the header: letters, digits and ``_.<>-`` only, so that no name can end
    the comment line or form a coding declaration (line 2 of the file)."""
    return re.sub(r"[^A-Za-z0-9_.<>-]", "_", str(name))[:MAX_NAME] or "_"


def _header(graph: Graph, key: str, name: str) -> str:
    ir = graph.pretty().splitlines()
    if len(ir) > MAX_IR_HEADER_LINES:
        ir = ir[:MAX_IR_HEADER_LINES] + [f"... ({len(ir) - MAX_IR_HEADER_LINES} more lines)"]
    sig = ", ".join(f"{a.dtype.name}{list(a.shape)}" for a in graph.args)
    return "\n".join(
        ["# Generated by symtape. Do not edit: the file name is its content hash.",
         f"# function: {_label(name)}", f"# signature: ({_comment(sig)})",
         f"# graph hash: {key}", "# IR:"]
        + ["#   " + _comment(line) for line in ir]) + "\n"


def kernel_for(graph: Graph, name: str = "derivative", target: str = "cpu") -> Kernel:
    """The compiled kernel for ``graph`` (generating, writing and loading its module on first use;
    numba compiles it, or loads it from the disk cache, at the kernel's first call). ``target``
    "cuda" gives a ``symtape.cuda.CudaKernel`` (same call convention) and is part of the key."""
    key = graph.structural_hash() if target == "cpu" else f"{target}-{graph.structural_hash()}"
    kernel = _MEMORY.get(key)
    if kernel is not None:
        _STATS["hits"] += 1
        return kernel
    _STATS["misses"] += 1
    simple = simplify(graph)
    if target == "cuda":
        from .cuda import cuda_kernel  # numba-cuda only when asked for

        kernel = _MEMORY[key] = cuda_kernel(simple, _header(simple, key, name), cache_dir())
        return kernel
    if target != "cpu":
        raise ValueError(f"unknown target {target!r}: use 'cpu' or 'cuda'")
    source = generate(simple, header=_header(simple, key, name))
    try:
        path = write_module(source, cache_dir())
    except OSError as exc:  # e.g. the disk filled up since the directory was checked
        path = write_module(source, _fallback(_wanted_dir(), f"could not be written ({exc})"))
    module = load_module(path, source)
    examples = getattr(module, f"{simple.name}_examples_signature", None)
    if examples is not None:
        examples = (getattr(module, f"{simple.name}_examples"), examples)
    kernel = Kernel(getattr(module, simple.name), simple, source, path, examples)
    _MEMORY[key] = kernel
    return kernel


def cache_info() -> dict:
    """What the kernel cache holds: the directory, kernels in memory, module files and bytes on
    disk (numba's files included), and counters: memory ``hits``/``misses``, ``disk_loads``
    (machine code loaded from numba's cache), ``compiles``, ``recovered`` (corrupt entries
    dropped and recompiled)."""
    directory = cache_dir()
    files = _our_files(directory)
    size = 0
    for path in files:
        try:
            size += os.path.getsize(path)
        except OSError:
            pass
    return {"directory": directory, "kernels_in_memory": len(_MEMORY),
            "files_on_disk": sum(1 for p in files if MODULE_FILE.match(os.path.basename(p))),
            "bytes_on_disk": size, **_STATS}


def _our_files(directory: str) -> list[str]:
    """symtape's files in ``directory``: generated modules, and numba's files (and our checksums)
    for them in ``__pycache__``. Nothing else, and no symlinked directories."""
    found = []
    for sub, pattern in ((directory, MODULE_FILE), (os.path.join(directory, "__pycache__"),
                                                    NUMBA_FILE)):
        if os.path.islink(sub):
            continue
        try:
            names = os.listdir(sub)
        except OSError:
            continue
        found += [os.path.join(sub, n) for n in names
                  if pattern.match(n) and not os.path.isdir(os.path.join(sub, n))]
    return found


def on_clear(callback) -> None:
    """Have ``clear_cache`` also call ``callback()``: for caches elsewhere that hold kernels."""
    _CLEAR_HOOKS.append(callback)


def clear_cache() -> None:
    """Forget every compiled kernel and delete symtape's files in the cache directory: the
    generated ``symtape_*.py`` modules and numba's cache files for them in ``__pycache__``.
    Nothing else there is touched. Counters restart from zero; ``on_clear`` callbacks run."""
    directory = cache_dir()
    for kernel in _MEMORY.values():  # numba's files may live elsewhere (NUMBA_CACHE_DIR)
        if kernel.path is not None and os.path.dirname(kernel.path) == directory:
            _drop_entry(kernel.fn, kernel.path)
    for path in _our_files(directory):
        try:
            os.unlink(path)
        except OSError:
            pass
    try:
        os.rmdir(os.path.join(directory, "__pycache__"))  # only if now empty
    except OSError:
        pass
    _MEMORY.clear()
    forget_modules()
    for callback in _CLEAR_HOOKS:
        callback()
    for k in _STATS:
        _STATS[k] = 0
