"""The engine: requests in, a stream of events out, one model served to many callers.

Shared by the OpenAI and Anthropic servers: they translate wire JSON into
`ChatRequest` / `CompletionRequest`, and `Engine` events back into wire JSON.
"""

from __future__ import annotations

from .core import DEFAULT_PARALLEL, Engine, PreparedChat, check_gbnf, merge_consecutive_users, merge_inner_system
from .job import Job
from .scheduler import Scheduler
from .types import (
    ChatRequest, ChatResult, CompletionRequest, Embeddings, Event, Finished, FinishReason, Heartbeat, Sampling,
    Started, Usage, fold_events,
)

__all__ = [
    "Engine", "PreparedChat", "Job", "Scheduler", "DEFAULT_PARALLEL",
    "ChatRequest", "CompletionRequest", "Sampling",
    "Event", "Heartbeat", "Started", "Finished", "FinishReason", "Usage",
    "ChatResult", "Embeddings", "fold_events",
    "check_gbnf", "merge_inner_system", "merge_consecutive_users",
]
