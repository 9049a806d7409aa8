#!/usr/bin/env python3
"""Get the llama.cpp shared libraries (and optionally the demo model) for this host.

A thin wrapper kept for the README's commands and for fresh checkouts: the logic lives in
`llamactypes/fetchlib.py` (also `python -m llamactypes.fetchlib` and `llamactypes fetch-lib`).
It puts this checkout first on sys.path, so it runs the checkout's code whether or not the
package is installed yet; `--help` lists the options (--backend, --rpc, --model, --lib-dir, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llamactypes.fetchlib import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
