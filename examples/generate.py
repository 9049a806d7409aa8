#!/usr/bin/env python3
"""One-shot generation with a GGUF model (the demo model by default), streamed to the terminal.

    python examples/generate.py "Why is the sky blue?"
    python examples/generate.py --model path/to/model.gguf --max-tokens 200 "Tell me a story"
"""

from __future__ import annotations

import argparse
import sys

from llamactypes import LlamaError, Model
from llamactypes.paths import demo_model_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("question", help="what to ask the model")
    parser.add_argument("--model", default=str(demo_model_path()), help="GGUF file (default: the demo model)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    try:
        with Model(args.model, n_ctx=2048) as model:
            template = model.chat_template or ""
            if "<|im_start|>" in template:  # ChatML: the demo model's format
                prompt = f"<|im_start|>user\n{args.question}<|im_end|>\n<|im_start|>assistant\n"
            else:
                prompt = args.question
            for piece in model.stream(prompt, max_tokens=args.max_tokens, temperature=args.temperature,
                                      seed=args.seed):
                print(piece, end="", flush=True)
            print()
    except LlamaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
