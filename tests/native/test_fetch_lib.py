"""build_scripts/fetch_lib.py as a user meets it: cached second run, moved libraries, a foreign library refused."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llamactypes import _lib

ROOT = Path(__file__).resolve().parents[2]
FETCH = [sys.executable, str(ROOT / "build_scripts" / "fetch_lib.py")]


def _installed_dir() -> Path:
    folder = ROOT / "llamactypes" / "_native" / _lib.platform_tag()
    if not (folder / "manifest.json").is_file():
        pytest.fail("no installed library: run python build_scripts/fetch_lib.py")
    return folder


def test_manifest_records_the_pin() -> None:
    manifest = json.loads((_installed_dir() / "manifest.json").read_text())
    assert manifest["llama_cpp_tag"] == "b11434"
    assert manifest["backend"] in ("cpu", "cuda", "metal", "vulkan")
    assert any(name.startswith("libllama") for name in manifest["files"])
    # --rpc is recorded, and matches what was installed (manifests from before --rpc: plain builds)
    assert manifest.get("rpc", False) == any(name.startswith("libggml-rpc") for name in manifest["files"])


def test_second_run_is_instant_and_idempotent(native_lock: None) -> None:
    out = subprocess.run(FETCH, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "already installed" in out.stderr
    assert "active build: " in out.stderr
    if json.loads((_installed_dir() / "manifest.json").read_text()).get("rpc"):
        assert "kept: the RPC build is a superset" in out.stderr  # a plain run does not replace it


def test_libraries_still_load_after_being_moved(tmp_path: Path, native_lock: None) -> None:
    moved = tmp_path / "elsewhere" / "libs"
    shutil.copytree(_installed_dir(), moved, symlinks=True)
    code = ("from llamactypes import _lib; import json; print(json.dumps(_lib.probe_abi(%r)))" % str(moved))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": ""})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ok"] is True


def test_foreign_library_is_refused(tmp_path: Path) -> None:
    """A libllama that is not the pinned ABI (here: a stub) is refused with a clear message."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler")
    src = tmp_path / "stub.c"
    src.write_text("const char * llama_version(void) { return \"0.0.1\"; }\n"
                   "int llama_decode(void * c, int b) { return 0; }\n")
    libdir = tmp_path / "foreign"
    libdir.mkdir()
    subprocess.run([cc, "-shared", "-fPIC", str(src), "-o", str(libdir / "libllama.so")], check=True)
    out = subprocess.run(FETCH + ["--lib-dir", str(libdir)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "not llama.cpp b11434" in out.stderr and "missing symbols" in out.stderr
    # and at run time, pointing LLAMACTYPES_LIB at it gives LibraryMismatchError, not a crash
    code = ("from llamactypes import _lib, LibraryMismatchError\n"
            "try:\n    _lib.load()\nexcept LibraryMismatchError as e:\n    print('REFUSED', e)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "LLAMACTYPES_LIB": str(libdir)})
    assert "REFUSED" in run.stdout and "fetch_lib.py" in run.stdout, run.stdout + run.stderr


def test_missing_toolchain_is_one_clear_line(tmp_path: Path) -> None:
    out = subprocess.run(FETCH + ["--force", "--backend", "cuda"], capture_output=True, text=True, timeout=60,
                         env={"PATH": str(tmp_path), "HOME": str(tmp_path)})
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("fetch_lib: error:") and "install" in last


def test_native_log_goes_to_python_logging(tiny_model_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from llamactypes import Model

    with caplog.at_level(logging.DEBUG, logger="llamactypes.native"):
        with Model(tiny_model_path, n_ctx=64, n_threads=1):
            pass
    assert any(r.name == "llamactypes.native" for r in caplog.records)
