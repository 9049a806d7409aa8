"""A read-only reader of GGUF headers: magic, version and the key/value metadata.

Two jobs: reject a file that is not GGUF before any C call sees it (llama.cpp
aborts on some malformed files), and expose the metadata with its arrays
(llama.cpp's C API returns scalars only). Tensor data is never read.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Any

from .errors import ModelLoadError

__all__ = ["GGUF_MAGIC", "read_metadata", "check_gguf", "GGUFHeader"]

GGUF_MAGIC = b"GGUF"
_SUPPORTED_VERSIONS = (2, 3)

# gguf_type -> struct format of one scalar
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class GGUFHeader:
    """What the header says: version, counts and the metadata dict."""

    def __init__(self, version: int, n_tensors: int, metadata: dict[str, Any]) -> None:
        self.version = version
        self.n_tensors = n_tensors
        self.metadata = metadata


class _Reader:
    def __init__(self, buf: Any, path: Path) -> None:
        self.buf = buf
        self.pos = 0
        self.path = path

    def fail(self, what: str) -> ModelLoadError:
        return ModelLoadError(f"{self.path} is not a valid GGUF file: {what} (at byte {self.pos})")

    def take(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buf):
            raise self.fail("truncated header")
        value = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += size
        return value[0] if len(value) == 1 else value

    def string(self) -> str:
        length = self.take("Q")
        if self.pos + length > len(self.buf):
            raise self.fail("string runs past the end of the file")
        raw = bytes(self.buf[self.pos:self.pos + length])
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type, count = self.take("I"), self.take("Q")
            if count > len(self.buf):
                raise self.fail(f"array of {count} items cannot fit")
            if item_type in _SCALARS:
                fmt = _SCALARS[item_type]
                size = struct.calcsize("<" + fmt) * count
                if self.pos + size > len(self.buf):
                    raise self.fail("array runs past the end of the file")
                items = list(struct.unpack_from(f"<{count}{fmt}", self.buf, self.pos))
                self.pos += size
                return items
            return [self.value(item_type) for _ in range(count)]
        raise self.fail(f"unknown value type {vtype}")


def check_gguf(path: str | os.PathLike[str]) -> Path:
    """Raise `ModelLoadError` unless `path` is a readable file starting with the GGUF magic."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelLoadError(f"model file not found: {p}")
    if not p.is_file():
        raise ModelLoadError(f"not a file: {p}")
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {p}: {exc.strerror}") from exc
    if head[:4] != GGUF_MAGIC:
        raise ModelLoadError(f"{p} is not a GGUF model file (it starts with {head[:4]!r}, not b'GGUF')")
    version = int.from_bytes(head[4:8], "little")
    if version not in _SUPPORTED_VERSIONS:
        raise ModelLoadError(f"{p} is GGUF version {version}; llama.cpp reads versions 2 and 3")
    return p


def read_metadata(path: str | os.PathLike[str]) -> GGUFHeader:
    """Read and validate the header and metadata of a GGUF file (no tensor data)."""
    p = check_gguf(path)
    with open(p, "rb") as fh:
        if os.fstat(fh.fileno()).st_size < 24:
            raise ModelLoadError(f"{p} is not a valid GGUF file: truncated header")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            reader = _Reader(memoryview(buf), p)
            try:
                reader.pos = 4
                version = reader.take("I")
                n_tensors, n_kv = reader.take("Q"), reader.take("Q")
                if n_kv > len(buf) // 8:
                    raise reader.fail(f"claims {n_kv} metadata entries")
                metadata: dict[str, Any] = {}
                for _ in range(n_kv):
                    key = reader.string()
                    metadata[key] = reader.value(reader.take("I"))
            finally:
                reader.buf.release()
    if "general.architecture" not in metadata:
        raise ModelLoadError(f"{p} has no general.architecture key: not a model llama.cpp can load")
    return GGUFHeader(version, n_tensors, metadata)
