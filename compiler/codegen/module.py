"""The one module writer: generated source -> a real .py file -> an imported module.

Files are named by content hash and never rewritten in place (numba's disk cache keys on the file's
stamp), writes are atomic (temp file + os.replace), and a file whose content does not match its
name is treated as corrupt and replaced. Modules are executed from the source text in memory, not
re-read from disk (and no .pyc is written), so what runs is exactly what was generated; the file
on disk anchors numba's cache and is there for people to read.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import types

STEM = "symtape"
# Everything symtape writes to a cache directory: `symtape_<hash>.py`, and numba's files for it
# in `__pycache__` (`symtape_<hash>.<qualname>-<line>.pyXY.nbi`, `...nbc`, their `.tmp.*`).
MODULE_FILE = re.compile(rf"^{STEM}_[0-9a-f]{{24}}\.py$")
NUMBA_FILE = re.compile(rf"^{STEM}_[0-9a-f]{{24}}\.")
TEMP_PREFIX = f".{STEM}_tmp_"

# LLVM's loop vectorizer gives up on a loop whose run-time checks need more than 16 assumptions
# (that index arithmetic does not wrap around); a per-example loop makes one for each array
# element it reads or writes (at b * row + entry). Raised for the process when the first module
# loads: the checks guard at run time, so this changes speed, never results.
LLVM_OPTIONS = ("-vectorize-scev-check-threshold=256",)
_llvm_options_set = False


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:24]


def module_path(source: str, directory: str) -> str:
    """Where ``source`` lives in ``directory``: ``symtape_<content hash>.py``."""
    return os.path.join(directory, f"{STEM}_{source_hash(source)}.py")


def write_module(source: str, directory: str) -> str:
    """Write ``source`` into ``directory`` as ``symtape_<hash>.py`` (atomically); return the path.

    An existing file with exactly this content is left alone (its stamp keeps numba's cache
    valid); any other content at that name (truncated, garbled) is replaced.
    """
    data = source.encode("utf-8")
    path = module_path(source, directory)
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return path
    except OSError:
        pass
    # A unique temp name in the same directory, then an atomic rename: readers see the old file or
    # the whole new one, and two processes writing the same module both succeed (same bytes).
    tmp = os.path.join(directory, f"{TEMP_PREFIX}{os.getpid()}_{os.urandom(6).hex()}.py")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def set_llvm_options() -> None:
    """Set ``LLVM_OPTIONS`` (once per process), before numba compiles generated code."""
    global _llvm_options_set
    if not _llvm_options_set:
        import llvmlite.binding

        for option in LLVM_OPTIONS:
            llvmlite.binding.set_option("symtape", option)
        _llvm_options_set = True


def load_module(path: str, source: str):
    """Execute ``source`` as the module of file ``path``, under a unique name (once per process)."""
    set_llvm_options()
    name = "symtape_generated." + os.path.splitext(os.path.basename(path))[0]
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__file__", None) == path:
        return module
    module = types.ModuleType(name)
    module.__file__ = path
    # The code object's filename is the real file, so numba's cache locator finds it.
    exec(compile(source, path, "exec"), module.__dict__)
    sys.modules[name] = module
    return module


def forget_modules() -> None:
    """Drop every generated module from ``sys.modules`` (after their files were deleted)."""
    for name in [n for n in sys.modules if n.startswith("symtape_generated.")]:
        del sys.modules[name]
