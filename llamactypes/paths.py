"""Where llamactypes keeps things on disk: the cache that build_scripts/fetch_lib.py fills."""

from __future__ import annotations

import os
from pathlib import Path

from ._version import LLAMA_CPP_TAG

__all__ = ["cache_dir", "demo_model_path", "source_dir", "DEMO_MODEL_FILE"]

DEMO_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/llamactypes` (default `~/.cache/llamactypes`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llamactypes"


def demo_model_path() -> Path:
    """The demo model fetched by `fetch_lib.py --model smollm2` (env LLAMACTYPES_DEMO_MODEL overrides)."""
    env = os.environ.get("LLAMACTYPES_DEMO_MODEL")
    return Path(env).expanduser() if env else cache_dir() / "models" / DEMO_MODEL_FILE


def source_dir() -> Path:
    """The pinned llama.cpp source tree fetch_lib.py extracts (env LLAMACTYPES_SOURCE overrides)."""
    env = os.environ.get("LLAMACTYPES_SOURCE")
    return Path(env).expanduser() if env else cache_dir() / "source" / LLAMA_CPP_TAG
