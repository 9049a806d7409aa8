"""`serve`'s issue-14 flags fail fast with one line on bad combinations (no model is loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamactypes.serve import main


@pytest.mark.parametrize("argv, message", [
    (["m.gguf", "--models", "dir"], "give a MODEL or --models, not both"),
    (["--max-loaded", "2"], "--max-loaded and --idle-unload need --models"),
    (["--idle-unload", "60"], "--max-loaded and --idle-unload need --models"),
    (["--models", "dir", "--max-loaded", "0"], "--max-loaded must be >= 1, got 0"),
    (["--models", "dir", "--idle-unload", "0"], "--idle-unload must be > 0 seconds, got 0.0"),
    (["m.gguf", "--tensor-split", "1,1"], "--tensor-split needs --rpc"),
    (["m.gguf", "--rpc", "h:1,h:2", "--tensor-split", "1,x"], "--tensor-split must be numbers"),
])
def test_bad_combinations_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("llamactypes.serve: ") and message in err and "\n" not in err


def test_models_that_do_not_exist_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--models", str(tmp_path / "missing")]) == 1
    assert "missing: no such file or folder" in capsys.readouterr().err
    assert main(["--models", str(tmp_path)]) == 1
    assert "no .gguf files in" in capsys.readouterr().err
