"""Find and load the llama.cpp shared libraries, lazily, exactly once.

Importing llamactypes never loads anything native: a client-only user needs no
libllama. The first call that needs llama.cpp calls `load()`, which looks in
``$LLAMACTYPES_LIB`` (a folder or the libllama file) and then in the package's
``_native/<platform>/`` folder that ``build_scripts/fetch_lib.py`` fills. The
ggml libraries are loaded first, in dependency order and with RTLD_GLOBAL, so
the libraries resolve each other wherever they were copied.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys
import threading
from pathlib import Path
from typing import Any

from ._version import LLAMA_BATCH_SIZE, LLAMA_CONTEXT_PARAMS_SIZE, LLAMA_CPP_TAG
from .errors import LibraryMismatchError, LibraryNotFoundError

__all__ = ["load", "lib_dir", "manifest", "probe_abi", "platform_tag", "FETCH_HINT"]

FETCH_HINT = "run `python build_scripts/fetch_lib.py` (or set LLAMACTYPES_LIB to a folder holding libllama)"

#: Symbols that exist in the pinned llama.cpp and not in older or newer ABIs we know of.
PIN_SYMBOLS = ("llama_batch_ext_init", "llama_process", "llama_model_n_embd_out", "llama_n_rs_seq",
               "llama_sampler_init_grammar_lazy_patterns", "llama_model_load_from_file")

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_lib_dir: Path | None = None


def platform_tag() -> str:
    """`linux-x86_64`, `macos-arm64`, ...: the folder name fetch_lib.py installs into."""
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("aarch64", "arm64")
    return f"{system}-{machine}"


def _lib_file_names() -> tuple[str, str]:
    if sys.platform == "win32":
        return "", ".dll"
    if sys.platform == "darwin":
        return "lib", ".dylib"
    return "lib", ".so"


def _candidate_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("LLAMACTYPES_LIB")
    if env:
        path = Path(env).expanduser()
        dirs.append(path.parent if path.is_file() else path)
        return dirs  # an explicit choice is never silently replaced
    dirs.append(Path(__file__).resolve().parent / "_native" / platform_tag())
    return dirs


def _ordered_libs(folder: Path) -> list[Path]:
    """ggml-base, then the backends, then ggml, then llama: each after what it links to."""
    prefix, suffix = _lib_file_names()

    def find(stem: str) -> Path | None:
        path = folder / f"{prefix}{stem}{suffix}"
        return path if path.exists() else None

    llama = find("llama")
    if llama is None:
        return []
    ordered = [p for p in (find("ggml-base"),) if p]
    backends = sorted(p for p in folder.glob(f"{prefix}ggml-*{suffix}")
                      if p.name not in (f"{prefix}ggml-base{suffix}",))
    ordered += backends
    ordered += [p for p in (find("ggml"), llama) if p]
    return ordered


def _open_folder(folder: Path) -> ctypes.CDLL:
    libs = _ordered_libs(folder)
    if not libs:
        raise LibraryNotFoundError(f"no llama.cpp library in {folder}: {FETCH_HINT}")
    mode = getattr(ctypes, "RTLD_GLOBAL", 0)
    handle = None
    for path in libs:
        try:
            handle = ctypes.CDLL(str(path), mode=mode)
        except OSError as exc:
            raise LibraryNotFoundError(f"cannot load {path}: {exc}. {FETCH_HINT}") from exc
    assert handle is not None
    return handle


def _returned_size(handle: ctypes.CDLL, func: str, args: tuple = ()) -> int | None:
    """How many bytes a struct-returning C function writes, or None where we cannot tell.

    On x86-64 System V a struct larger than 16 bytes is returned through a hidden
    pointer passed as the first argument. Passing our own sentinel-filled buffer there
    shows exactly where the library's writes end, i.e. its idea of sizeof(struct).
    """
    if sys.platform == "win32" or platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    buf = (ctypes.c_uint8 * 512)(*([0xAB] * 512))
    proto = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, *[type(a) for a in args])
    proto(ctypes.cast(getattr(handle, func), ctypes.c_void_p).value)(ctypes.addressof(buf), *args)
    raw = bytes(buf)
    last = max(i for i, b in enumerate(raw) if b != 0xAB)
    return (last + 8) // 8 * 8


def _check_abi(handle: ctypes.CDLL) -> tuple[bool, str]:
    """Whether a loaded libllama matches the pinned ABI, and why not."""
    missing = [name for name in PIN_SYMBOLS if not hasattr(handle, name)]
    if missing:
        return False, f"missing symbols {', '.join(missing)}"
    checks = (("llama_context_default_params", (), LLAMA_CONTEXT_PARAMS_SIZE, "llama_context_params"),
              ("llama_batch_get_one", (ctypes.c_void_p(8), ctypes.c_int32(1)), LLAMA_BATCH_SIZE, "llama_batch"))
    for func, args, expected, struct in checks:
        size = _returned_size(handle, func, args)
        if size is not None and size != expected:
            return False, f"{struct} is {size} bytes in this library, {expected} in the pin"
    return True, ""


def probe_abi(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Load the libraries in `folder` and report whether they are the pinned llama.cpp.

    Used by fetch_lib.py in a child process before it installs a library.
    """
    handle = _open_folder(Path(folder))
    ok, reason = _check_abi(handle)
    handle.llama_version.restype = ctypes.c_char_p
    version = handle.llama_version().decode()
    return {"ok": ok, "reason": reason, "version": version, "tag": LLAMA_CPP_TAG}


def load() -> ctypes.CDLL:
    """The loaded libllama (loading it and its ggml dependencies on first call)."""
    global _lib, _lib_dir
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for folder in _candidate_dirs():
            tried.append(str(folder))
            if not _ordered_libs(folder):
                continue
            handle = _open_folder(folder)
            ok, reason = _check_abi(handle)
            if not ok:
                raise LibraryMismatchError(
                    f"the llama.cpp library in {folder} does not match the pinned {LLAMA_CPP_TAG}: {reason}. "
                    f"{FETCH_HINT}")
            _lib_dir = folder
            _lib = handle
            return handle
        raise LibraryNotFoundError(f"llama.cpp library not found (looked in {', '.join(tried)}): {FETCH_HINT}")


def lib_dir() -> Path | None:
    """Folder the library was loaded from, or None before `load()`."""
    return _lib_dir


def manifest() -> dict[str, Any]:
    """The manifest.json fetch_lib.py wrote beside the loaded library ({} if none)."""
    folder = _lib_dir or _candidate_dirs()[0]
    path = folder / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
