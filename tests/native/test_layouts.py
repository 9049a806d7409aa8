"""Our ctypes mirror matches the pinned llama.h exactly: struct layouts and function signatures.

Layouts: a C program compiled against the real header prints sizeof/offsetof for
every field we declare; a wrong layout fails here (and so in CI). Signatures: every
declared function's argument count and types are checked against the header's prototype.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from llamactypes import api
from llamactypes.api.types import STRUCTS


def _c_layout_program(structs: dict[str, type[ctypes.Structure]]) -> str:
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "llama.h"', "int main(void) {", 'printf("{");']
    first = True
    for cname, cls in structs.items():
        fields = []
        for name, ftype, *_ in cls._fields_:
            if name in getattr(cls, "_anonymous_", ()):
                fields.append((name, ftype._fields_[0][0]))  # offset of the anonymous union = its first member
            else:
                fields.append((name, name))
        sep = "" if first else ","
        first = False
        lines.append(f'printf("{sep}\\"{cname}\\": {{\\"__sizeof__\\": %zu", sizeof({cname}));')
        for py_name, c_member in fields:
            lines.append(f'printf(", \\"{py_name}\\": %zu", offsetof({cname}, {c_member}));')
        lines.append('printf("}");')
    lines += ['printf("}\\n");', "return 0; }"]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def c_layouts(llama_source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.fail("no C compiler to check layouts against llama.h (install gcc)")
    work = tmp_path_factory.mktemp("layout")
    src = work / "layout.c"
    src.write_text(_c_layout_program(STRUCTS))
    exe = work / "layout"
    cmd = [compiler, str(src), "-o", str(exe), f"-I{llama_source / 'include'}", f"-I{llama_source / 'ggml' / 'include'}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout)


@pytest.mark.parametrize("cname", sorted(STRUCTS))
def test_struct_layout_matches_header(cname: str, c_layouts: dict) -> None:
    cls = STRUCTS[cname]
    expected = c_layouts[cname]
    assert ctypes.sizeof(cls) == expected["__sizeof__"], f"sizeof({cname})"
    for name, *_ in cls._fields_:
        assert getattr(cls, name).offset == expected[name], f"offsetof({cname}, {name})"


def test_pinned_sizes_recorded_in_version_module(c_layouts: dict) -> None:
    from llamactypes import _version

    assert c_layouts["struct llama_context_params"]["__sizeof__"] == _version.LLAMA_CONTEXT_PARAMS_SIZE
    assert c_layouts["struct llama_batch"]["__sizeof__"] == _version.LLAMA_BATCH_SIZE


# ---------------------------------------------------------------- function signatures

_PROTO = re.compile(r"(?:LLAMA_API|GGML_API)\s+([^;(]*?)\b(\w+)\s*\(([^;]*?)\)\s*(?:,\s*\"[^\"]*\"\s*\))?;", re.S)
_INT_TYPES = {
    "int32_t": ctypes.c_int32, "uint32_t": ctypes.c_uint32, "int64_t": ctypes.c_int64, "uint64_t": ctypes.c_uint64,
    "int": ctypes.c_int, "float": ctypes.c_float, "double": ctypes.c_double, "bool": ctypes.c_bool,
    "size_t": ctypes.c_size_t, "int8_t": ctypes.c_int8, "uint8_t": ctypes.c_uint8,
    "llama_token": ctypes.c_int32, "llama_pos": ctypes.c_int32, "llama_seq_id": ctypes.c_int32,
    "llama_state_seq_flags": ctypes.c_uint32,
}
_POINTER_TYPEDEFS = {"llama_memory_t", "ggml_log_callback", "ggml_abort_callback", "llama_progress_callback",
                     "ggml_threadpool_t", "ggml_backend_dev_t"}


def _prototypes(llama_source: Path) -> dict[str, tuple[str, list[str]]]:
    text = ""
    for header in ("include/llama.h", "ggml/include/ggml-backend.h"):
        raw = (llama_source / header).read_text()
        text += re.sub(r"//[^\n]*", "", raw)
    protos = {}
    for ret, name, args in _PROTO.findall(text):
        ret = ret.replace("DEPRECATED(", "").strip()
        arg_list = [a.strip() for a in args.split(",")] if args.strip() not in ("", "void") else []
        protos[name] = (ret, arg_list)
    return protos


def _is_pointer_ctype(t: object) -> bool:
    return (t in (ctypes.c_void_p, ctypes.c_char_p) or isinstance(t, type) and
            (issubclass(t, ctypes._Pointer) or issubclass(t, ctypes._CFuncPtr)))  # type: ignore[attr-defined]


def _check(c_type: str, py_type: object) -> str | None:
    c_type = re.sub(r"\b(const|struct|enum)\b", lambda m: m.group(0) if m.group(0) != "const" else "", c_type)
    c_type = " ".join(c_type.split())
    base = c_type.replace("*", " ").split()
    base_name = base[-2] if len(base) >= 2 and base[0] in ("struct", "enum") else (base[0] if base else "")
    if "*" in c_type or base_name in _POINTER_TYPEDEFS:
        return None if _is_pointer_ctype(py_type) else f"{c_type!r} is a pointer, declared {py_type}"
    if c_type.startswith("enum "):
        return None if py_type is ctypes.c_int else f"{c_type!r} is an enum, declared {py_type}"
    if c_type.startswith("struct "):
        name = "struct " + c_type.split()[1]
        return None if STRUCTS.get(name) is py_type else f"{c_type!r} by value, declared {py_type}"
    if c_type in ("void", ""):
        return None if py_type is None else f"void, declared {py_type}"
    expected = _INT_TYPES.get(base_name)
    if expected is None:
        return f"unknown C type {c_type!r}"
    return None if py_type is expected else f"{c_type!r} declared {py_type}"


def test_every_declaration_matches_its_prototype(llama_source: Path) -> None:
    protos = _prototypes(llama_source)
    problems = []
    for name, (argtypes, restype) in api.DECLARED.items():
        if name not in protos:
            problems.append(f"{name}: not in the pinned headers")
            continue
        ret, args = protos[name]
        if len(args) != len(argtypes):
            problems.append(f"{name}: header has {len(args)} arguments, declared {len(argtypes)}")
            continue
        for i, (c_arg, py_t) in enumerate(zip(args, argtypes)):
            c_type = re.sub(r"\s*\w+$", "", c_arg) if re.search(r"[\w*]\s+\**\w+$", c_arg) else c_arg
            c_type = c_type + " *" * c_arg.replace(c_type, "").count("*")
            err = _check(c_type, py_t)
            if err:
                problems.append(f"{name} argument {i}: {err}")
        err = _check(ret, restype)
        if err:
            problems.append(f"{name} return: {err}")
    assert not problems, "\n".join(problems)


def test_library_exports_every_declared_function(native_lock: None) -> None:
    assert api.bind_all() == []
