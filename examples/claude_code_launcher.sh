#!/usr/bin/env bash
# Run Claude Code on a local model: start `python -m llamactypes.serve`, point `claude` at it, stop the
# server when claude exits.
#
#   examples/claude_code_launcher.sh [MODEL.gguf] [claude arguments...]
#   examples/claude_code_launcher.sh qwen3-4b.gguf -p "List the files here."
#   N_CTX=8192 examples/claude_code_launcher.sh "" --bare       # the demo model; --bare sends ~1k tokens
#
# A default Claude Code session sends ~20k tokens of system prompt and 24 tools: use a model with a
# context of 32k or more (N_CTX, default 32768). The first request processes that whole prompt (minutes
# on a CPU); later turns reuse the KV cache and only decode what is new.
set -euo pipefail

MODEL="${1:-}"
[ $# -gt 0 ] && shift
PORT="${LLAMACTYPES_PORT:-11434}"
N_CTX="${N_CTX:-32768}"
PYTHON="${PYTHON:-python}"

"$PYTHON" -m llamactypes.serve ${MODEL:+"$MODEL"} --port "$PORT" --n-ctx "$N_CTX" --log-level warning &
SERVER=$!
trap 'kill -TERM "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT

for _ in $(seq 1 600); do                          # the model loads in seconds; give up after a minute
    if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; then break; fi
    if ! kill -0 "$SERVER" 2>/dev/null; then echo "the server did not start" >&2; exit 1; fi
    sleep 0.1
done

export ANTHROPIC_BASE_URL="http://127.0.0.1:$PORT"
export ANTHROPIC_API_KEY="${ANTHROPIC_API_KEY:-local}"        # any value, unless the server has --api-key
export CLAUDE_CODE_ATTRIBUTION_HEADER=0                        # no per-session header: the prompt prefix stays cacheable
export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1              # no telemetry, updates or error reports
export DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1
export CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1             # a broken stream fails visibly instead of retrying
export CLAUDE_STREAM_IDLE_TIMEOUT_MS="${CLAUDE_STREAM_IDLE_TIMEOUT_MS:-1800000}"  # long prompts on a CPU
# Claude Code asks for 32000-64000 output tokens (the server clamps that to the context); a small model
# that rambles then runs until the context is full. Bound it if you like: CLAUDE_CODE_MAX_OUTPUT_TOKENS=1024
claude "$@"
