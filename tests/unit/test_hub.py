"""Models by name from the Hub, against a local stand-in hub (tests/fixtures/fake_hub.py): never the real Hub.

The file choice is a table; the downloads go through huggingface_hub for real (its HTTP client, its
cache layout, its resume of a dropped transfer with a Range request)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from llamactypes.errors import HubError, ModelLoadError
from llamactypes.gguf import read_metadata
from llamactypes.hub import choose_gguf, looks_like_hub_ref, parse_hub_ref, pull_model, resolve_model
from tests.fixtures.fake_hub import COMMIT, FakeHub
from tests.fixtures.tiny_gguf import write_tiny_model

ROOT = Path(__file__).resolve().parents[2]
REPO = "tiny-org/Tiny-GGUF"


@pytest.fixture(scope="module")
def tiny_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A tiny generated GGUF model (pure Python: no llama.cpp)."""
    return write_tiny_model(tmp_path_factory.mktemp("hubmodel") / "m.gguf").read_bytes()


@pytest.fixture
def hub(tiny_bytes: bytes) -> Iterator[FakeHub]:
    files = {
        "README.md": b"# tiny",
        "Tiny-Q4_K_M.gguf": tiny_bytes,
        "Tiny-Q4_K_S.gguf": b"GGUF-not-this-one",
        "Tiny-Q8_0.gguf": b"GGUF-nor-this-one",
        "mmproj-Tiny-f16.gguf": b"GGUF-projector",
    }
    split = {"Big/Tiny-Q2_K-0000{}-of-00003.gguf".format(i): f"part{i}".encode() for i in (1, 2, 3)}
    broken = {"Tiny-Q4_0-00001-of-00002.gguf": b"part1"}
    with FakeHub({REPO: files, "tiny-org/Split-GGUF": split, "tiny-org/Broken-GGUF": broken}) as server:
        yield server


@pytest.mark.parametrize("files, quant, expected", [
    (["a-Q4_K_M.gguf", "a-Q4_K_S.gguf", "a-Q4_K.gguf"], "q4_k_m", ["a-Q4_K_M.gguf"]),
    (["a-Q4_K_M.gguf", "a-Q4_K_S.gguf", "a-Q4_K.gguf"], "Q4_K", ["a-Q4_K.gguf"]),
    (["a.Q4_1.gguf", "a.Q4_0.gguf"], "q4_1", ["a.Q4_1.gguf"]),
    (["only-F16.gguf", "README.md"], None, ["only-F16.gguf"]),
    (["a-Q8_0.gguf", "a-Q4_K_M.gguf"], None, ["a-Q4_K_M.gguf"]),  # llama.cpp's default
    (["a-Q4_K_M.gguf", "mmproj-a-f16.gguf"], None, ["a-Q4_K_M.gguf"]),  # a projector is no model
    (["x/a-Q4_0-00002-of-00002.gguf", "x/a-Q4_0-00001-of-00002.gguf", "a-Q8_0.gguf"], "Q4_0",
     ["x/a-Q4_0-00001-of-00002.gguf", "x/a-Q4_0-00002-of-00002.gguf"]),
    (["a-Q4_K_M.gguf", "b-Q4_K_M.gguf"], "b-Q4_K_M.gguf", ["b-Q4_K_M.gguf"]),  # an exact file name
])
def test_choose_gguf(files: list[str], quant: str | None, expected: list[str]) -> None:
    assert choose_gguf(files, quant, "o/r") == expected


@pytest.mark.parametrize("files, quant, message", [
    (["a-Q4_K_M.gguf", "a-Q8_0.gguf"], "Q5_K_M", "no Q5_K_M file; quantizations there: Q4_K_M, Q8_0"),
    (["a-Q8_0.gguf", "a-F16.gguf"], None, "holds several models (F16, Q8_0): choose one with o/r:QUANT"),
    (["README.md", "model.safetensors"], None, "has no GGUF model file"),
    (["a-Q4_0-00001-of-00003.gguf", "a-Q4_0-00003-of-00003.gguf"], "Q4_0", "missing parts [2] of 3"),
    (["a-Q4_0.gguf", "b-Q4_0.gguf"], "Q4_0", "several files in o/r match Q4_0"),
])
def test_choose_gguf_refuses_clearly(files: list[str], quant: str | None, message: str) -> None:
    with pytest.raises(HubError) as info:
        choose_gguf(files, quant, "o/r")
    assert message in str(info.value)


def test_names_and_paths(tmp_path: Path) -> None:
    assert parse_hub_ref("owner/repo:Q4_K_M").quant == "Q4_K_M"
    assert parse_hub_ref("owner/repo").quant is None
    assert looks_like_hub_ref("owner/repo:Q8_0")
    assert not looks_like_hub_ref("models/tiny.gguf")
    local = tmp_path / "owner" / "repo"
    local.mkdir(parents=True)
    os.chdir(tmp_path)
    assert not looks_like_hub_ref("owner/repo")  # an existing path wins
    assert resolve_model("owner/repo") == Path("owner/repo")
    for bad in ("nope", "a/b/c", "../x/y", "owner/repo:"):
        with pytest.raises(HubError, match="not a Hub model name"):
            parse_hub_ref(bad)
    assert issubclass(HubError, ModelLoadError) and issubclass(HubError, OSError)


def test_pull_picks_the_quantization_and_reuses_the_cache(hub: FakeHub, tiny_bytes: bytes, tmp_path: Path) -> None:
    path = pull_model(f"{REPO}:q4_k_m", endpoint=hub.url, cache_dir=tmp_path, progress=False)
    assert path.name == "Tiny-Q4_K_M.gguf"
    assert path.read_bytes() == tiny_bytes
    assert read_metadata(path).metadata["general.architecture"] == "llama"
    assert f"snapshots/{COMMIT}/" in path.as_posix()  # huggingface_hub's own cache layout
    assert hub.downloads("Tiny-Q4_K_M.gguf") == [None]
    assert hub.downloads("Tiny-Q4_K_S.gguf") == [] and hub.downloads("mmproj-Tiny-f16.gguf") == []

    again = pull_model(REPO, endpoint=hub.url, cache_dir=tmp_path, progress=False)  # default: Q4_K_M
    assert again == path
    assert hub.downloads("Tiny-Q4_K_M.gguf") == [None]  # not downloaded a second time

    requests = len(hub.log)  # offline: the cached snapshot answers without a single request
    assert pull_model(f"{REPO}:Q4_K_M", cache_dir=tmp_path, progress=False, offline=True) == path
    assert len(hub.log) == requests


def test_pull_resumes_an_interrupted_download(hub: FakeHub, tiny_bytes: bytes, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    # huggingface_hub writes (and so can resume from) whole chunks of 10 MB; the tiny model is 0.5 MB
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    cut = 4096 * 40
    hub.cut_after["Tiny-Q4_K_M.gguf"] = cut
    path = pull_model(f"{REPO}:Q4_K_M", endpoint=hub.url, cache_dir=tmp_path, progress=False)
    assert hub.downloads("Tiny-Q4_K_M.gguf") == [None, f"bytes={cut}-"]  # the second GET asks for the rest
    assert path.read_bytes() == tiny_bytes


def test_pull_downloads_every_part_of_a_split_model(hub: FakeHub, tmp_path: Path) -> None:
    path = pull_model("tiny-org/Split-GGUF:Q2_K", endpoint=hub.url, cache_dir=tmp_path, progress=False)
    assert path.name == "Tiny-Q2_K-00001-of-00003.gguf"
    assert sorted(p.name for p in path.parent.iterdir()) == [f"Tiny-Q2_K-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert (path.parent / "Tiny-Q2_K-00003-of-00003.gguf").read_bytes() == b"part3"
    with pytest.raises(HubError, match="incomplete on the Hub"):
        pull_model("tiny-org/Broken-GGUF", endpoint=hub.url, cache_dir=tmp_path, progress=False)


def test_pull_errors_are_clear(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(HubError, match="no model repository tiny-org/Nope on http://127.0.0.1"):
        pull_model("tiny-org/Nope:Q4_K_M", endpoint=hub.url, cache_dir=tmp_path, progress=False)
    with pytest.raises(HubError, match="no Q5_K_M file; quantizations there: Q4_K_M, Q4_K_S, Q8_0"):
        pull_model(f"{REPO}:Q5_K_M", endpoint=hub.url, cache_dir=tmp_path, progress=False)
    with pytest.raises(HubError, match="offline .HF_HUB_OFFLINE. and nothing is cached for tiny-org/Tiny-GGUF"):
        pull_model(f"{REPO}:Q4_K_M", cache_dir=tmp_path / "empty", progress=False, offline=True)
    with pytest.raises(HubError, match="^models/mine is not a file here, and as a Hub model name: no model repo"):
        resolve_model("models/mine", endpoint=hub.url, cache_dir=tmp_path, progress=False)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llamactypes", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env={**os.environ, **env})


def test_pull_command(hub: FakeHub, tiny_bytes: bytes, tmp_path: Path) -> None:
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_DISABLE_TELEMETRY": "1"}
    out = _cli("pull", f"{REPO}:Q4_K_M", env=env)
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip().splitlines()[-1])
    assert path.read_bytes() == tiny_bytes and path.is_relative_to(tmp_path)
    out = _cli("pull", f"{REPO}:Q3_K_L", env=env)
    assert out.returncode == 1
    assert "llamactypes pull: " in out.stderr and "no Q3_K_L file" in out.stderr and "Traceback" not in out.stderr
