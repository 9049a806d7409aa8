"""`PromptCache`: saved sequence states across conversations, in host memory and on disk.

When a slot has to be reused for another conversation, its state (`SeqMemory.save()`, the bytes
of `llama_state_seq_get_data`) goes here with the tokens it holds; when that conversation comes
back, `lookup(prompt)` finds the longest saved prefix of its prompt and the slot restores it
instead of reading the prompt again.

- Host memory is bounded by bytes (`max_bytes`, `serve --cache-ram`); the least recently used
  entries leave first (`evictions` counts them, `bytes` is the gauge).
- With a `cache_dir` (`serve --cache-dir`), evicted entries are written there, as is every entry
  at `close()` and whatever `persist()` is given (a live slot's state at a clean shutdown), so a
  restarted server picks a long conversation up without re-reading it. The directory is bounded
  too (`max_disk_bytes`, least recently used files of this model go first).
- Every entry carries the model's identity (`ModelIdentity`: file size, a hash of the file's
  head and tail, the llama.cpp build, and whatever context settings the caller adds): a file
  written for another model or build is refused with a log line, never restored. A corrupt or
  truncated file is ignored with a log line, never a crash.

Pure Python (no ctypes): states are opaque bytes. The file format is in docs/memory.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import struct
import sys
import threading
import time
from array import array
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from .._version import LLAMA_CPP_TAG
from ..limits import DEFAULT_LIMITS, Limits

__all__ = ["PromptCache", "ModelIdentity", "CACHE_FILE_MAGIC", "CACHE_FILE_VERSION"]

log = logging.getLogger("llamactypes")

CACHE_FILE_MAGIC = b"LCTSTATE"
CACHE_FILE_VERSION = 1
_SUFFIX = ".state"
_HEAD_BYTES = 16 * 1024 * 1024  # header, metadata, tensor infos and the first weights of a GGUF file
_TAIL_BYTES = 1024 * 1024       # and its last weights: two finetunes with the same metadata differ there


@dataclass(frozen=True)
class ModelIdentity:
    """What a saved state is only valid for: one model file, one llama.cpp build, one context setup.

    `extra` holds the context settings that change a state's layout (flash attention, KV
    types...): the caller (the engine) decides what to put there.
    """

    file_size: int
    file_sha256: str
    build: str = LLAMA_CPP_TAG
    extra: str = ""

    @classmethod
    def of_file(cls, path: str | os.PathLike[str], *, build: str = LLAMA_CPP_TAG, extra: str = "") -> ModelIdentity:
        """The identity of a model file: its size and a SHA-256 of its first 16 MiB and last 1 MiB."""
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            digest.update(fh.read(_HEAD_BYTES))
            if size > _HEAD_BYTES:
                fh.seek(max(_HEAD_BYTES, size - _TAIL_BYTES))
                digest.update(fh.read(_TAIL_BYTES))
        return cls(size, digest.hexdigest(), build, extra)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()


@dataclass
class _Entry:
    key: bytes          # the tokens as little-endian int32: prefix tests are bytes.startswith
    state: bytes | None  # None: on disk only
    size: int
    path: Path | None = None
    used: float = 0.0

    @property
    def n_tokens(self) -> int:
        return len(self.key) // 4


def _key(tokens: Sequence[int]) -> bytes:
    arr = array("i", tokens)
    if arr.itemsize != 4:  # pragma: no cover - every platform we build for has a 4-byte int
        raise RuntimeError("array('i') is not 32-bit here")
    return arr.tobytes() if sys.byteorder == "little" else _swapped(arr)


def _swapped(arr: array) -> bytes:  # pragma: no cover - big-endian hosts only
    arr = array("i", arr)
    arr.byteswap()
    return arr.tobytes()


def _tokens(key: bytes) -> list[int]:
    arr = array("i")
    arr.frombytes(key)
    if sys.byteorder != "little":  # pragma: no cover
        arr.byteswap()
    return arr.tolist()


class CorruptFile(Exception):
    """A cache file that is not one (bad magic, short, checksum mismatch)."""


class PromptCache:
    """Sequence states keyed by the tokens they hold; LRU by bytes in memory, optionally on disk.

    Thread-safe. `lookup` returns the longest entry whose tokens are a proper prefix of the
    prompt (at least one prompt token is always left to decode, which a recurrent state
    could not give back otherwise).
    """

    def __init__(self, max_bytes: int, cache_dir: str | os.PathLike[str] | None = None,
                 identity: ModelIdentity | None = None, *, max_disk_bytes: int | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        if cache_dir is not None and identity is None:
            raise ValueError("a cache_dir needs the model's identity (ModelIdentity.of_file(path))")
        self.max_bytes = max_bytes
        self.identity = identity
        self.max_file_bytes = limits.cache_file_bytes
        self.max_disk_bytes = limits.cache_dir_bytes if max_disk_bytes is None else max_disk_bytes
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.evictions = 0
        self.hits = 0
        self.refused = 0
        self._ram: OrderedDict[bytes, _Entry] = OrderedDict()  # least recently used first
        self._disk: dict[bytes, _Entry] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self._dir_stamp: int | None = None  # the directory's mtime when it was last indexed
        self._seen: set[Path] = set()  # files indexed or refused (a rescan reads only new ones)
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self._scan()

    # ------------------------------------------------------------ gauges

    @property
    def bytes(self) -> int:
        """Bytes held in host memory (states plus their token keys)."""
        return self._bytes

    @property
    def disk_bytes(self) -> int:
        return sum(e.size for e in self._disk.values())

    def __len__(self) -> int:
        return len(self._ram)

    def __contains__(self, tokens: Sequence[int]) -> bool:
        key = _key(tokens)
        return key in self._ram or key in self._disk

    # ------------------------------------------------------------ put / lookup

    def put(self, tokens: Sequence[int], state: bytes) -> None:
        """Keep `state`, which holds `tokens`; evicts the least recently used past `max_bytes`
        (to disk when there is a cache_dir). A state bigger than the whole budget goes to disk only."""
        if not tokens:
            return
        key = _key(tokens)
        size = len(state) + len(key)
        with self._lock:
            old = self._ram.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            entry = _Entry(key, bytes(state), size, used=time.time())
            if size > self.max_bytes:
                self._spill(entry)
                return
            self._ram[key] = entry
            self._bytes += size
            self._evict()

    def lookup(self, tokens: Sequence[int]) -> tuple[int, bytes] | None:
        """The longest saved state whose tokens are a proper prefix of `tokens`: (n_tokens, state)."""
        prompt = _key(tokens)
        with self._lock:
            self._rescan()
            while True:
                best: _Entry | None = None
                for entry in (*self._ram.values(), *self._disk.values()):
                    if (len(entry.key) < len(prompt) and (best is None or len(entry.key) > len(best.key))
                            and prompt.startswith(entry.key)):
                        best = entry
                if best is None:
                    return None
                if best.state is None:  # on disk: read it, or forget it and look again
                    state = self._load(best)
                    if state is None:
                        continue
                    self._promote(best, state)
                    best = self._ram.get(best.key, best)
                    result = state
                else:
                    result = best.state
                    self._ram.move_to_end(best.key)
                best.used = time.time()
                self.hits += 1
                return best.n_tokens, result

    def persist(self, tokens: Sequence[int], state: bytes) -> bool:
        """Write a state straight to disk (a live slot's, at a clean shutdown); False without a cache_dir."""
        if self.cache_dir is None or not tokens:
            return False
        key = _key(tokens)
        with self._lock:
            self._spill(_Entry(key, bytes(state), len(state) + len(key), used=time.time()))
        return key in self._disk

    def close(self) -> None:
        """Write every entry still only in memory to the cache_dir (nothing without one)."""
        if self.cache_dir is None:
            return
        with self._lock:
            for entry in list(self._ram.values()):
                self._spill(entry)

    def clear(self) -> None:
        """Forget every entry in memory (files on disk stay)."""
        with self._lock:
            self._ram.clear()
            self._bytes = 0

    # ------------------------------------------------------------ memory

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._ram:
            _, entry = self._ram.popitem(last=False)
            self._bytes -= entry.size
            self.evictions += 1
            self._spill(entry)

    def _promote(self, entry: _Entry, state: bytes) -> None:
        size = len(state) + len(entry.key)
        if size > self.max_bytes:
            return
        self._ram[entry.key] = _Entry(entry.key, state, size, used=time.time())
        self._bytes += size
        self._evict()

    # ------------------------------------------------------------ disk

    def _path(self, key: bytes) -> Path:
        assert self.cache_dir is not None and self.identity is not None
        name = hashlib.sha256(self.identity.to_json() + b"\0" + key).hexdigest()[:40]
        return self.cache_dir / (name + _SUFFIX)

    def _spill(self, entry: _Entry) -> None:
        """Write an entry to disk (once: a file already there for the same tokens is kept)."""
        if self.cache_dir is None or entry.state is None or entry.key in self._disk:
            return
        path = self._path(entry.key)
        data = self._encode(entry.key, entry.state)
        if len(data) > self.max_file_bytes:
            log.info("prompt cache: a state of %d bytes is over cache_file_bytes (%d); not written",
                     len(data), self.max_file_bytes)
            return
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("prompt cache: could not write %s: %s", path, exc)
            try:
                tmp.unlink()
            except OSError:
                pass
            return
        self._disk[entry.key] = _Entry(entry.key, None, len(data), path, used=time.time())
        self._seen.add(path)
        self._trim_disk()

    def _trim_disk(self) -> None:
        while self._disk and self.disk_bytes > self.max_disk_bytes:
            oldest = min(self._disk.values(), key=lambda e: e.used)
            del self._disk[oldest.key]
            self._seen.discard(oldest.path)  # type: ignore[arg-type]
            try:
                assert oldest.path is not None
                oldest.path.unlink()
            except OSError:
                pass

    def _encode(self, key: bytes, state: bytes) -> bytes:
        assert self.identity is not None
        ident = self.identity.to_json()
        body = b"".join([
            CACHE_FILE_MAGIC, struct.pack("<I", CACHE_FILE_VERSION),
            struct.pack("<I", len(ident)), ident,
            struct.pack("<I", len(key) // 4), key,
            struct.pack("<Q", len(state)), state,
        ])
        return body + hashlib.sha256(body).digest()

    @staticmethod
    def _read_head(fh: object, size: int) -> tuple[dict, bytes, int]:
        """(identity dict, token key, offset of the state length) from an open cache file."""
        read = fh.read  # type: ignore[attr-defined]

        def take(n: int) -> bytes:
            data = read(n)
            if len(data) != n:
                raise CorruptFile("truncated")
            return data

        if take(8) != CACHE_FILE_MAGIC:
            raise CorruptFile("not a llamactypes state file")
        (version,) = struct.unpack("<I", take(4))
        if version != CACHE_FILE_VERSION:
            raise CorruptFile(f"format version {version}, this build reads {CACHE_FILE_VERSION}")
        (n_ident,) = struct.unpack("<I", take(4))
        if n_ident > 4096:
            raise CorruptFile("identity too long")
        try:
            ident = json.loads(take(n_ident))
        except ValueError as exc:
            raise CorruptFile(f"identity is not JSON: {exc}") from None
        (n_tokens,) = struct.unpack("<I", take(4))
        if 4 * n_tokens > size:
            raise CorruptFile("token count past the end of the file")
        key = take(4 * n_tokens)
        return ident, key, 8 + 4 + 4 + n_ident + 4 + 4 * n_tokens

    def _rescan(self) -> None:
        """Index the files other processes wrote since the last look (the servers of a pool share
        one cache_dir): a new file changes the directory's mtime, so most lookups cost one stat."""
        if self.cache_dir is None:
            return
        try:
            stamp = self.cache_dir.stat().st_mtime_ns
        except OSError:
            return
        if stamp != self._dir_stamp:
            self._scan()

    def _scan(self) -> None:
        """Index this model's files in cache_dir (their tokens, not their states) not seen yet."""
        assert self.cache_dir is not None and self.identity is not None
        mine = json.loads(self.identity.to_json())
        try:
            self._dir_stamp = self.cache_dir.stat().st_mtime_ns
        except OSError:
            return
        for path in sorted(self.cache_dir.glob("*" + _SUFFIX)):
            if path in self._seen:
                continue
            self._seen.add(path)
            try:
                size = path.stat().st_size
                with open(path, "rb") as fh:
                    ident, key, _ = self._read_head(fh, size)
            except (OSError, CorruptFile, struct.error) as exc:
                log.warning("prompt cache: ignoring %s: %s", path, exc)
                continue
            if ident != mine:
                self.refused += 1
                log.info("prompt cache: %s was saved for another model or build (%s); not used", path.name,
                         _difference(ident, mine))
                continue
            if size > self.max_file_bytes:
                log.warning("prompt cache: ignoring %s: %d bytes, over cache_file_bytes (%d)", path, size,
                            self.max_file_bytes)
                continue
            self._disk[key] = _Entry(key, None, size, path, used=path.stat().st_mtime)

    def _load(self, entry: _Entry) -> bytes | None:
        """Read and check one file; on any problem log it, forget the entry, return None."""
        assert entry.path is not None and self.identity is not None
        try:
            data = entry.path.read_bytes()
            if len(data) < 32 or hashlib.sha256(data[:-32]).digest() != data[-32:]:
                raise CorruptFile("checksum mismatch (truncated or damaged)")
            fh = io.BytesIO(data)
            ident, key, offset = self._read_head(fh, len(data))
            if ident != json.loads(self.identity.to_json()):
                self.refused += 1
                raise CorruptFile("saved for another model or build")
            if key != entry.key:
                raise CorruptFile("its tokens changed since it was indexed")
            (n_state,) = struct.unpack("<Q", data[offset:offset + 8])
            if offset + 8 + n_state + 32 != len(data):
                raise CorruptFile("state length does not match the file")
            return data[offset + 8:offset + 8 + n_state]
        except (OSError, CorruptFile, struct.error) as exc:
            log.warning("prompt cache: ignoring %s: %s", entry.path, exc)
            self._disk.pop(entry.key, None)
            self._seen.discard(entry.path)  # rewritten later (by a server of the same pool): read it again
            return None

    def tokens_on_disk(self) -> list[list[int]]:
        """The token lists of this model's states on disk (for tests and /slots-style reports)."""
        with self._lock:
            return [_tokens(k) for k in self._disk]


def _difference(theirs: dict, mine: dict) -> str:
    fields = [k for k in sorted(set(theirs) | set(mine)) if theirs.get(k) != mine.get(k)]
    return "differs in " + ", ".join(fields) if fields else "same"
