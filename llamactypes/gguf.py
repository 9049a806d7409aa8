"""A read-only reader of GGUF files: header, key/value metadata and the tensor table.

Model files are untrusted input, and llama.cpp aborts the process (``GGML_ASSERT``) on some
malformed ones instead of returning an error. So before any C call sees a file, this reader
checks what llama.cpp b11434 would assert on or misread, and raises `ModelLoadError` naming
the key or tensor: the magic and version, every count and length against the file's size,
arrays of arrays (llama.cpp refuses them; a deep nest would exhaust Python's stack), tensor
offsets and sizes beyond the file, and the hyperparameters checked by `hparams.py`. It also
exposes the metadata with its arrays (llama.cpp's C API returns scalars only).
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Any

from .errors import ModelLoadError
from .gguf_hparams import check_hparams

__all__ = ["GGUF_MAGIC", "read_metadata", "check_gguf", "GGUFHeader", "TensorInfo"]

GGUF_MAGIC = b"GGUF"
_SUPPORTED_VERSIONS = (2, 3)
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4  # GGML_MAX_DIMS

# gguf_type -> struct format of one scalar
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9

# ggml_type -> (elements per block, bytes per block), from ggml.c's type traits at b11434;
# the ids missing here were removed from ggml and llama.cpp refuses them.
GGML_BLOCKS = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 40),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82),
    23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17), 40: (64, 36), 41: (128, 18), 42: (64, 18),
}


class TensorInfo:
    """One entry of the tensor table: name, shape (ggml order), ggml type, data offset and size."""

    __slots__ = ("name", "shape", "ggml_type", "offset", "nbytes")

    def __init__(self, name: str, shape: tuple[int, ...], ggml_type: int, offset: int, nbytes: int) -> None:
        self.name = name
        self.shape = shape
        self.ggml_type = ggml_type
        self.offset = offset
        self.nbytes = nbytes


class GGUFHeader:
    """What the file says: version, counts, the metadata dict and the tensor table."""

    def __init__(self, version: int, n_tensors: int, metadata: dict[str, Any],
                 tensors: list[TensorInfo] | None = None) -> None:
        self.version = version
        self.n_tensors = n_tensors
        self.metadata = metadata
        self.tensors = tensors or []


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

    def value(self, vtype: int, key: str) -> Any:
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type, count = self.take("I"), self.take("Q")
            if item_type == _ARRAY:  # llama.cpp refuses these too ("invalid GGUF type")
                raise self.fail(f"key {key!r} is an array of arrays")
            if count > len(self.buf):
                raise self.fail(f"key {key!r}: an array of {count} items cannot fit")
            if item_type in _SCALARS:
                fmt = _SCALARS[item_type]
                size = struct.calcsize("<" + fmt) * count
                if self.pos + size > len(self.buf):
                    raise self.fail(f"key {key!r}: the array runs past the end of the file")
                items = list(struct.unpack_from(f"<{count}{fmt}", self.buf, self.pos))
                self.pos += size
                return items
            if item_type != _STRING:
                raise self.fail(f"key {key!r} has an array of unknown value type {item_type}")
            return [self.string() for _ in range(count)]
        raise self.fail(f"key {key!r} has unknown value type {vtype}")

    def tensor(self, data_size: int) -> tuple[str, tuple[int, ...], int, int]:
        name = self.string()
        n_dims = self.take("I")
        if not 1 <= n_dims <= _MAX_DIMS:
            raise self.fail(f"tensor {name!r} has {n_dims} dimensions (ggml allows 1 to {_MAX_DIMS})")
        shape = tuple(self.take("q") for _ in range(n_dims))
        if any(d <= 0 for d in shape):
            raise self.fail(f"tensor {name!r} has the shape {list(shape)}")
        ggml_type, offset = self.take("I"), self.take("Q")
        return name, shape, ggml_type, offset


def check_gguf(path: str | os.PathLike[str]) -> Path:
    """Raise `ModelLoadError` unless `path` is a readable file starting with the GGUF magic."""
    p = Path(path).expanduser()
    try:
        exists, is_file = p.exists(), p.is_file()
    except (OSError, ValueError) as exc:  # a name longer than PATH_MAX, a NUL byte in it, ...
        raise ModelLoadError(f"cannot use the model path {str(p)[:200]!r}: {exc}") from None
    if not exists:
        raise ModelLoadError(f"model file not found: {p}")
    if not is_file:
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
    """Read and validate a GGUF file's header, metadata and tensor table (no tensor data).

    Raises `ModelLoadError` for anything llama.cpp would refuse or abort on (see the module).
    """
    p = check_gguf(path)
    with open(p, "rb") as fh:
        if os.fstat(fh.fileno()).st_size < 24:
            raise ModelLoadError(f"{p} is not a valid GGUF file: truncated header")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            reader = _Reader(memoryview(buf), p)
            try:
                header = _read(reader, len(buf))
            finally:
                reader.buf.release()
    if "general.architecture" not in header.metadata:
        raise ModelLoadError(f"{p} has no general.architecture key: not a model llama.cpp can load")
    check_hparams(header.metadata, str(p))
    return header


def _read(reader: _Reader, file_size: int) -> GGUFHeader:
    reader.pos = 4
    version = reader.take("I")
    n_tensors, n_kv = reader.take("Q"), reader.take("Q")
    if n_kv > file_size // 8:
        raise reader.fail(f"claims {n_kv} metadata entries")
    if n_tensors > file_size // 24:
        raise reader.fail(f"claims {n_tensors} tensors")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = reader.string()
        if key in metadata:
            raise reader.fail(f"duplicate key {key!r}")
        metadata[key] = reader.value(reader.take("I"), key)
    raw = [reader.tensor(file_size) for _ in range(n_tensors)]
    alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise reader.fail(f"general.alignment is {alignment!r}, not a power of two")
    data_start = -(-reader.pos // alignment) * alignment
    return GGUFHeader(version, n_tensors, metadata, _check_tensors(reader, raw, alignment, data_start, file_size))


def _check_tensors(reader: _Reader, raw: list[tuple[str, tuple[int, ...], int, int]], alignment: int,
                   data_start: int, file_size: int) -> list[TensorInfo]:
    """Every tensor of a known type, aligned, and with its data inside the file."""
    out: list[TensorInfo] = []
    names: set[str] = set()
    for name, shape, ggml_type, offset in raw:
        if name in names:
            raise reader.fail(f"tensor {name!r} is listed twice")
        names.add(name)
        if ggml_type not in GGML_BLOCKS:
            raise reader.fail(f"tensor {name!r} has the unknown or removed ggml type {ggml_type}")
        block, block_bytes = GGML_BLOCKS[ggml_type]
        if shape[0] % block:
            raise reader.fail(f"tensor {name!r}: its first dimension {shape[0]} is not a multiple of "
                              f"the block size {block} of its type")
        n_elements = 1
        for dim in shape:
            n_elements *= dim
        nbytes = n_elements // block * block_bytes
        if offset % alignment:
            raise reader.fail(f"tensor {name!r}: its offset {offset} is not aligned to {alignment}")
        if data_start + offset + nbytes > file_size:
            raise reader.fail(f"tensor {name!r} ({nbytes} bytes at offset {offset}) runs past the end of the file")
        out.append(TensorInfo(name, shape, ggml_type, offset, nbytes))
    return out
