"""PromptCache without native code: LRU by bytes, prefix lookup, disk round trip, identity, damaged files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from llamactypes.engine.prompt_cache import ModelIdentity, PromptCache

ID = ModelIdentity(file_size=1000, file_sha256="ab" * 32, build="b11434")


def _state(n: int, fill: int = 7) -> bytes:
    return bytes([fill]) * n


def test_lookup_returns_the_longest_proper_prefix() -> None:
    cache = PromptCache(10_000)
    cache.put([1, 2, 3], _state(10, 1))
    cache.put([1, 2, 3, 4, 5], _state(10, 2))
    cache.put([1, 9], _state(10, 3))
    assert cache.lookup([1, 2, 3, 4, 5, 6]) == (5, _state(10, 2))
    assert cache.lookup([1, 2, 3, 4]) == (3, _state(10, 1))
    assert cache.lookup([1, 2, 3, 4, 5]) == (3, _state(10, 1))  # equal is not a proper prefix: one token to decode
    assert cache.lookup([2, 1]) is None
    assert cache.lookup([1]) is None
    assert cache.lookup([]) is None


def test_prefix_is_by_tokens_not_bytes() -> None:
    cache = PromptCache(10_000)
    cache.put([256], _state(4))  # bytes 00 01 00 00: a byte-wise prefix test could confuse tokens
    assert cache.lookup([0, 1]) is None
    assert cache.lookup([256, 1]) == (1, _state(4))


def test_lru_eviction_by_bytes() -> None:
    cache = PromptCache(max_bytes=3 * (100 + 8))  # three entries of 100 bytes + 2 tokens each
    for i in range(3):
        cache.put([i, i], _state(100))
    assert len(cache) == 3 and cache.bytes == 3 * 108 and cache.evictions == 0
    assert cache.lookup([0, 0, 5]) is not None  # 0 is now the most recently used
    cache.put([3, 3], _state(100))
    assert cache.evictions == 1
    assert cache.lookup([1, 1, 5]) is None  # the least recently used went
    assert cache.lookup([0, 0, 5]) is not None and cache.lookup([3, 3, 5]) is not None
    assert cache.bytes <= cache.max_bytes


def test_replacing_an_entry_does_not_count_it_twice() -> None:
    cache = PromptCache(1000)
    cache.put([1, 2], _state(100))
    cache.put([1, 2], _state(50, 9))
    assert cache.bytes == 50 + 8 and cache.lookup([1, 2, 3]) == (2, _state(50, 9))


def test_a_state_over_the_budget_is_not_kept_in_memory() -> None:
    cache = PromptCache(100)
    cache.put([1], _state(500))
    assert len(cache) == 0 and cache.bytes == 0 and cache.lookup([1, 2]) is None


def test_disk_round_trip_survives_a_restart(tmp_path: Path) -> None:
    cache = PromptCache(1000, tmp_path, ID)
    cache.put([5, 6, 7], _state(300, 1))
    cache.put([8, 9], _state(300, 2))
    cache.put([10, 11], _state(700, 3))  # evicts the two older ones to disk
    assert cache.evictions == 2 and len(list(tmp_path.glob("*.state"))) == 2
    assert cache.lookup([5, 6, 7, 1]) == (3, _state(300, 1))  # read back from disk
    cache.close()  # the rest goes to disk too
    assert len(list(tmp_path.glob("*.state"))) == 3

    restarted = PromptCache(1000, tmp_path, ID)
    assert restarted.bytes == 0
    assert restarted.lookup([10, 11, 12]) == (2, _state(700, 3))
    assert restarted.lookup([8, 9, 0]) == (2, _state(300, 2))
    assert sorted(restarted.tokens_on_disk()) == [[5, 6, 7], [8, 9], [10, 11]]


def test_servers_sharing_a_directory_see_each_others_states(tmp_path: Path) -> None:
    """The servers of a pool share one cache_dir: what one writes (an eviction, a shutdown) the
    others find on their next lookup, without a restart."""
    one, two = PromptCache(500, tmp_path, ID), PromptCache(500, tmp_path, ID)
    assert two.lookup([1, 2, 3, 4]) is None
    one.put([1, 2, 3], _state(300, 1))
    one.put([5, 6], _state(300, 2))  # evicts [1, 2, 3] to disk
    assert two.lookup([1, 2, 3, 4]) == (3, _state(300, 1))
    assert two.lookup([5, 6, 7]) is None  # still only in the other server's memory
    one.close()
    assert two.lookup([5, 6, 7]) == (2, _state(300, 2))
    for path in tmp_path.glob("*.state"):  # a file removed behind its back is forgotten, not a crash
        path.unlink()
    two.clear()
    assert two.lookup([1, 2, 3, 4]) is None


def test_persist_writes_a_live_state(tmp_path: Path) -> None:
    cache = PromptCache(0, tmp_path, ID)
    assert cache.persist([1, 2, 3], _state(64))
    assert PromptCache(0, tmp_path, ID).lookup([1, 2, 3, 4]) == (3, _state(64))
    assert not PromptCache(100).persist([1], _state(1))  # nowhere to write


@pytest.mark.parametrize("other", [
    ModelIdentity(file_size=1001, file_sha256="ab" * 32, build="b11434"),
    ModelIdentity(file_size=1000, file_sha256="cd" * 32, build="b11434"),
    ModelIdentity(file_size=1000, file_sha256="ab" * 32, build="b11739"),
    ModelIdentity(file_size=1000, file_sha256="ab" * 32, build="b11434", extra="flash_attn=1"),
])
def test_a_state_for_another_model_or_build_is_refused(tmp_path: Path, other: ModelIdentity,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    PromptCache(0, tmp_path, ID).persist([1, 2], _state(32))
    with caplog.at_level(logging.INFO, logger="llamactypes"):
        cache = PromptCache(1000, tmp_path, other)
    assert cache.lookup([1, 2, 3]) is None and cache.refused == 1
    assert "another model or build" in caplog.text
    assert PromptCache(1000, tmp_path, ID).lookup([1, 2, 3]) == (2, _state(32))  # still there for its own model


def test_identity_of_a_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"GGUF" + bytes(100))
    b.write_bytes(b"GGUF" + bytes(99) + b"\1")
    ida, idb = ModelIdentity.of_file(a), ModelIdentity.of_file(b)
    assert ida.file_size == idb.file_size == 104 and ida != idb
    assert ModelIdentity.of_file(a) == ida and ida.build  # deterministic, with the pinned build


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty", "bad_magic"])
def test_a_damaged_file_is_ignored_with_a_log_line(tmp_path: Path, damage: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    PromptCache(0, tmp_path, ID).persist([1, 2, 3], _state(1000))
    (path,) = tmp_path.glob("*.state")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:500] + bytes([data[500] ^ 1]) + data[501:])
    elif damage == "garbage":
        path.write_bytes(b"\xff" * 300)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(b"NOTSTATE" + data[8:])
    with caplog.at_level(logging.WARNING, logger="llamactypes"):
        cache = PromptCache(1000, tmp_path, ID)
        assert cache.lookup([1, 2, 3, 4]) is None
    assert "ignoring" in caplog.text and path.name in caplog.text


def test_a_damaged_file_falls_back_to_a_shorter_entry(tmp_path: Path) -> None:
    writer = PromptCache(0, tmp_path, ID)
    writer.persist([1, 2], _state(10, 1))
    writer.persist([1, 2, 3, 4], _state(10, 2))
    cache = PromptCache(1000, tmp_path, ID)
    longer = max(tmp_path.glob("*.state"), key=lambda p: p.stat().st_size)  # 8 more bytes of tokens
    longer.write_bytes(longer.read_bytes()[:-5])
    assert cache.lookup([1, 2, 3, 4, 5]) == (2, _state(10, 1))


def test_disk_is_bounded(tmp_path: Path) -> None:
    cache = PromptCache(0, tmp_path, ID, max_disk_bytes=3500)  # files of ~1.1 kB: three fit
    for i in range(6):
        cache.persist([i, 1], _state(900))
    assert cache.disk_bytes <= 3500 and len(list(tmp_path.glob("*.state"))) == 3
    assert cache.lookup([5, 1, 0]) is not None and cache.lookup([0, 1, 0]) is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        PromptCache(-1)
    with pytest.raises(ValueError, match="identity"):
        PromptCache(10, "/tmp/somewhere")
