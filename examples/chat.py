#!/usr/bin/env python3
"""Chat with a GGUF model in the terminal (replies stream as they are generated).

    python examples/chat.py model.gguf                       # spawn a server, interactive prompt
    python examples/chat.py model.gguf 8080 4096             # … on port 8080 (0: any) with a 4096-token context
    python examples/chat.py model.gguf "Why is the sky blue?"   # one reply, then exit
    python examples/chat.py --url http://127.0.0.1:11434/v1  # talk to a running server instead

A blank line or Ctrl-D quits; Ctrl-C stops the reply being written (not the program);
``/reset`` starts the conversation again. A spawned server is always stopped on exit.
The logic lives in the package (`llamactypes.terminal`, the `llamactypes chat` command);
this script keeps the old form, which needs a model (or --url).
"""

from __future__ import annotations

import sys

from llamactypes.terminal import main

if __name__ == "__main__":
    sys.exit(main(require_model=True))
