"""A lower layer never imports a higher one (docs/design.md): walk the imports with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "llamactypes"

# module (or package) -> layer; higher numbers may import lower ones only
LAYERS = {
    "errors": 0, "_version": 0, "limits": 0,
    "_lib": 1, "_interrupt": 1, "gguf": 1, "gguf_hparams": 1, "paths": 1, "hub": 1, "web": 1,
    "api": 2,
    "native": 3,
    "grammar": 4, "sampling": 4,
    "generation": 5, "model": 5,
    "chat": 6,
    "engine": 7,
    "server": 8,
    "client": 9,
    "serve": 10, "cli": 10, "launch": 10, "terminal": 10, "pool": 10, "fetchlib": 10, "rpc_worker": 10,
    "__init__": 10, "__main__": 10,
}
# layers that must stay free of ctypes and of each other's internals
PURE = {"grammar", "chat", "client"}


def _layer(module: str) -> int | None:
    return LAYERS.get(module.split(".")[0])


def _imports(path: Path) -> list[tuple[str, int]]:
    """(top-level llamactypes module, line) for every import of our own package in `path`."""
    rel = path.relative_to(PKG)
    package_parts = list(rel.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # "from . import x" at package root
                    target = [alias.name for alias in node.names][:1]
                found.append((".".join(target), node.lineno))
            elif node.module and node.module.startswith("llamactypes."):
                found.append((node.module.split(".", 1)[1], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("llamactypes."):
                    found.append((alias.name.split(".", 1)[1], node.lineno))
    return found


def test_no_upward_imports() -> None:
    problems = []
    for path in PKG.rglob("*.py"):
        own = path.relative_to(PKG).parts[0].removesuffix(".py")
        own_layer = _layer(own)
        assert own_layer is not None, f"{path} is in no layer: add it to LAYERS and docs/design.md"
        for target, line in _imports(path):
            layer = _layer(target)
            if layer is None or target.split(".")[0] == own:
                continue
            if layer > own_layer:
                problems.append(f"{path.relative_to(PKG)}:{line} imports {target} (layer {layer} > {own_layer})")
    assert not problems, "\n".join(problems)


def test_pure_layers_stay_pure() -> None:
    """grammar, chat and client never touch ctypes or the native layers; the client also
    never imports the server, engine or model (a client-only user needs none of them)."""
    forbidden = {"api", "native", "_lib"}
    problems = []
    for name in PURE:
        folder = PKG / name
        files = list(folder.rglob("*.py")) if folder.is_dir() else [PKG / f"{name}.py"]
        banned = forbidden | ({"server", "engine", "model", "generation", "sampling"} if name == "client" else set())
        for path in (f for f in files if f.exists()):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "ctypes" for a in node.names):
                    problems.append(f"{path}: imports ctypes")
            for target, line in _imports(path):
                if target.split(".")[0] in banned:
                    problems.append(f"{path}:{line} imports {target}")
    assert not problems, "\n".join(problems)
