"""`Engine`: one model, one worker thread, parallel slots, a FIFO of requests, events out.

    engine = Engine(model, model_id="smollm2", parallel=4)
    job = engine.chat(ChatRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=32))
    for event in job.events(heartbeat=5.0):   # Heartbeat / Started / Delta / Finished
        ...

`chat()` renders and tokenizes the request in the caller's thread (so a bad
request fails before any response is started, and the prompt size is known up
front), builds its sampling state, then queues it; `BusyError` when the queue is
full. The worker (`batching.BatchWorker`) admits requests in arrival order into
`parallel` slots of one context and decodes them together, one batch per step
(docs/engine.md); a request goes to the slot whose cache shares the longest prefix
with its prompt, so a conversation that comes back decodes only its new suffix.
A model without `open_context` (a test fake) is served one request at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..chat.types import Delta, new_call_id
from ..errors import ChatTemplateError, ClosedError, ContextOverflowError, InvalidRequestError
from .admission import check_generation, check_prompt_tokens, schema_grammar
from .batching import BatchWorker, SlotRequest
from .job import Job
from .scheduler import Scheduler
from .types import ChatRequest, CompletionRequest, Embeddings, Finished, Started, Usage

__all__ = ["Engine", "PreparedChat", "DEFAULT_PARALLEL"]

#: slots by default: agents send a title request, subagents and the main turn at once (docs/engine.md)
DEFAULT_PARALLEL = 4

log = logging.getLogger("llamactypes.engine")


@dataclass
class PreparedChat:
    """A chat request rendered for the model: prompt tokens, `Model.stream` options, parser."""

    tokens: list[int]
    options: dict[str, Any]
    format: str
    parser: Any
    user_stops: tuple[str, ...]


class Engine:
    """Serves one `Model` to many callers: `parallel` requests decode together, the rest wait in order.

    Args:
        model: a loaded `Model` (the engine never closes it: its owner does, after `close()`).
        model_id: the name clients see (default: the model's file stem).
        max_waiting: requests allowed to wait for a slot; more get `BusyError`.
        enable_thinking: default for hybrid thinking models when a request does not say.
        chat_build / stream_parser: the chat layer's functions (replaceable in tests).
        parallel: slots, i.e. sequences of the one context (its KV cache is unified: any one
            request may still fill the whole context).
        cache: a prompt cache (`engine.prompt_cache.PromptCache`) for the states of slots that
            are reused or evicted, and of every live slot at `close()`.
        max_step: seconds a step that reads a prompt chunk should last while other slots stream.
    """

    def __init__(self, model: Any, *, model_id: str | None = None, max_waiting: int = 16,
                 enable_thinking: bool = False, chat_build: Callable[..., Any] | None = None,
                 stream_parser: Callable[..., Any] | None = None, parallel: int = DEFAULT_PARALLEL,
                 cache: Any = None, max_step: float = 0.25) -> None:
        if parallel < 1:
            raise InvalidRequestError(f"parallel must be >= 1, got {parallel}", param="parallel")
        self.model = model
        self.model_id = model_id or model.name
        self.enable_thinking = enable_thinking
        self.parallel = parallel
        self.cache = cache
        self._chat_build = chat_build
        self._stream_parser = stream_parser
        self._scheduler: Scheduler[Job] = Scheduler(max_waiting)
        self._users = 0  # request threads inside the model (tokenizing): close() waits for them
        self._users_cond = threading.Condition()
        self._closed = False
        self._stats = {"requests": 0, "prompt_tokens": 0, "prompt_tokens_cached": 0, "generated_tokens": 0}
        self._stats_lock = threading.Lock()
        self._context: Any = None
        self._backend: Any = None
        opener = getattr(model, "open_context", None)
        if callable(opener):
            from ..native.batch import BatchDecoder

            self._context = opener(parallel)
            self._backend = BatchDecoder(self._context, should_abort=lambda: self._batcher.should_abort())
        self._batcher = BatchWorker(self._backend, self._scheduler, parallel, cache=cache, max_step=max_step)
        self._worker = threading.Thread(target=self._batcher.run, name="llamactypes-engine", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------ lifecycle

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new requests; fail the waiting ones (`ClosedError`), cancel and join the running
        ones (their streams end with `Finished(cancelled)`), save live slots to the prompt cache,
        wait for request threads still tokenizing, and free the engine's context. After it
        returns, nothing of the engine touches the model: its owner may free it (idempotent)."""
        with self._users_cond:
            already, self._closed = self._closed, True
        if already:
            return
        for job in self._scheduler.close():
            job.discard(ClosedError("the server is shutting down"))
        self._batcher.stop()
        self._worker.join(timeout)
        with self._users_cond:
            self._users_cond.wait_for(lambda: self._users == 0, timeout)
        if self._worker.is_alive():
            log.error("the engine's worker did not stop within %.0f s; its context is not freed", timeout)
            return
        if self._backend is not None:
            self._backend.close()
        if self._context is not None:
            self._context.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def busy(self) -> bool:
        """True while a job runs on the model."""
        return self._scheduler.running > 0

    @contextlib.contextmanager
    def _using_model(self) -> Iterator[None]:
        """Mark a request thread's use of the model (tokenizer, templates): `close()` waits for it."""
        with self._users_cond:
            if self._closed:
                raise ClosedError("the server is shutting down")
            self._users += 1
        try:
            yield
        finally:
            with self._users_cond:
                self._users -= 1
                self._users_cond.notify_all()

    def _submit(self, kind: str, run: Callable[[Job], None], n_prompt: int = 0) -> Job:
        job = Job(kind, run, self._scheduler, n_prompt)
        self._scheduler.submit(job)
        return job

    def _submit_slot(self, kind: str, tokens: list[int], step: Any, on_text: Callable[[Job, str], None],
                     on_end: Callable[[Job, Any, int], None]) -> Job:
        job = Job(kind, None, self._scheduler, len(tokens))
        job.work = SlotRequest(job, tokens, step, lambda text: on_text(job, text),
                               lambda n_cached: on_end(job, step, n_cached))
        self._scheduler.submit(job)
        return job

    @property
    def batched(self) -> bool:
        """True when requests share one multi-sequence context (False: one at a time)."""
        return self._backend is not None

    def _emit_finished(self, job: Job, finished: Finished) -> None:
        with self._stats_lock:
            stats = self._stats
            stats["requests"] += 1
            stats["prompt_tokens"] += finished.usage.prompt_tokens
            stats["prompt_tokens_cached"] += finished.usage.cached_tokens
            stats["generated_tokens"] += finished.usage.completion_tokens
        job.emit(finished)

    # ------------------------------------------------------------ observability

    def metrics(self) -> dict[str, int]:
        """Counters and gauges for `/metrics` (names without the `llamactypes_` prefix)."""
        with self._stats_lock:
            out = {f"{k}_total": v for k, v in self._stats.items()}
        slots = self.slots()
        out["slots_busy"] = sum(1 for s in slots if s["state"] != "idle") if slots else int(self.busy)
        out["slots_total"] = len(slots) if slots else 1
        out["queue_length"] = self.queue_length
        out["cache_bytes"] = int(getattr(self.cache, "bytes", 0) or 0)
        out["cache_evictions_total"] = int(getattr(self.cache, "evictions", 0) or 0)
        return out

    def slots(self) -> list[dict[str, Any]]:
        """One dict per slot: id, state (idle, prompt, generating), n_cached, last_used (epoch seconds)."""
        return [slot.describe() for slot in self._batcher.slots]

    @property
    def n_ctx(self) -> int:
        return int(self.model.n_ctx)

    @property
    def queue_length(self) -> int:
        """Requests waiting (not counting the running one)."""
        return len(self._scheduler)

    # ------------------------------------------------------------ chat

    def _render(self, request: ChatRequest, messages: Sequence[Mapping[str, Any]]) -> Any:
        build = self._chat_build
        if build is None:
            from ..chat import chat_build as build
        thinking = self.enable_thinking if request.enable_thinking is None else request.enable_thinking
        return build(self.model, list(messages), list(request.tools) if request.tools else None,
                     tool_choice=request.tool_choice, parallel_tool_calls=request.parallel_tool_calls,
                     response_format=dict(request.response_format) if request.response_format else None,
                     enable_thinking=thinking,
                     template_kwargs=dict(request.template_kwargs) if request.template_kwargs else None)

    def render_chat(self, request: ChatRequest) -> Any:
        """The chat layer's `ChatBuild` for a request. What clients send but strict templates
        refuse is reshaped and rendered again: a `system` message inside the conversation is
        merged into the next user turn, consecutive user messages into one."""
        messages: Sequence[Mapping[str, Any]] = request.messages
        try:
            return self._render(request, messages)
        except ChatTemplateError as exc:
            if getattr(exc, "limit", None):  # out of time or size: reshaping cannot help, and would cost as much
                raise
            error = exc
        for name, reshape in (("a system message inside the conversation", merge_inner_system),
                              ("consecutive user messages", merge_consecutive_users)):
            reshaped = reshape(messages)
            if reshaped is None:
                continue
            messages = reshaped
            log.info("the chat template refused %s (%s); merged and rendering again", name, error)
            try:
                return self._render(request, messages)
            except ChatTemplateError as exc:
                error = exc
        raise error

    def prepare_chat(self, request: ChatRequest) -> PreparedChat:
        """Render and tokenize a chat request; raises for anything the model cannot serve."""
        build = self.render_chat(request)
        tokens = self.model.tokenize(build.prompt, add_special=True, parse_special=True)
        if len(tokens) >= self.n_ctx:
            raise ContextOverflowError(len(tokens), self.n_ctx)
        grammar = build.grammar
        if request.grammar:
            if grammar:
                raise InvalidRequestError("a custom grammar cannot be combined with tools or response_format",
                                          param="grammar")
            grammar = check_gbnf(request.grammar)
        parser = build.parser
        if not request.reasoning and getattr(parser, "reasoning", False):
            parser = dataclasses.replace(parser, reasoning=False)
        options: dict[str, Any] = dict(
            max_tokens=request.max_tokens,
            stop=[*request.stop, *build.additional_stops],
            preserved_tokens=self._special_ids(build.preserved_tokens),
            **request.sampling.kwargs(),
        )
        if grammar:
            options.update(grammar=grammar, grammar_lazy=build.grammar_lazy,
                           trigger_patterns=list(build.trigger_patterns), trigger_words=list(build.trigger_words),
                           trigger_tokens=list(build.trigger_tokens))
        check_generation(self.model, options)  # grammar compiled, triggers and sampler checked: before the queue
        return PreparedChat(tokens=tokens, options=options, format=build.format, parser=parser,
                            user_stops=tuple(request.stop))

    def _special_ids(self, texts: Sequence[str]) -> list[int]:
        ids = []
        for text in texts:
            tokens = self.model.tokenize(text, add_special=False, parse_special=True)
            if len(tokens) == 1:
                ids.append(tokens[0])
        return ids

    def count_chat_tokens(self, request: ChatRequest) -> int:
        """Tokens of the rendered prompt (what the model would read)."""
        with self._using_model():
            build = self.render_chat(request)
            return len(self.model.tokenize(build.prompt, add_special=True, parse_special=True))

    def chat(self, request: ChatRequest) -> Job:
        """Queue a chat request; iterate `job.events()` for its deltas."""
        with self._using_model():
            prepared = self.prepare_chat(request)
            if not self.batched:
                return self._submit("chat", lambda job: self._run_chat(job, prepared), len(prepared.tokens))
            step = self.model.token_step(prepared.tokens, **prepared.options)
        parser = self._parser(prepared)
        emit = _DeltaEmitter()

        def on_text(job: Job, text: str) -> None:
            emit(job, parser.feed(text))

        def on_end(job: Job, step: Any, n_cached: int) -> None:
            emit(job, parser.finish())
            self._emit_finished(job, _finished(step, len(prepared.tokens), n_cached, prepared.user_stops,
                                               emit.calls > 0))

        return self._submit_slot("chat", prepared.tokens, step, on_text, on_end)

    def _parser(self, prepared: PreparedChat) -> Any:
        factory = self._stream_parser
        if factory is None:
            from ..chat import ChatStreamParser as factory
        return factory(prepared.format, prepared.parser)

    def _run_chat(self, job: Job, prepared: PreparedChat) -> None:
        job.emit(Started(len(prepared.tokens)))
        generation = self.model.stream(prepared.tokens, **prepared.options)
        job.attach(generation)
        parser = self._parser(prepared)
        emit = _DeltaEmitter()
        try:
            for piece in generation:
                emit(job, parser.feed(piece))
        finally:
            generation.close()
        emit(job, parser.finish())
        self._emit_finished(job, _finished(generation, generation.n_prompt, generation.n_cached,
                                           prepared.user_stops, emit.calls > 0))

    # ------------------------------------------------------------ completion, embeddings, tokens

    def complete(self, request: CompletionRequest) -> Job:
        """Queue a raw completion (the prompt is not templated); content deltas only."""
        with self._using_model():
            return self._complete(request)

    def _complete(self, request: CompletionRequest) -> Job:
        prompt = request.prompt
        if isinstance(prompt, str):
            tokens = self.model.tokenize(prompt, add_special=True, parse_special=True)
        else:
            tokens = [int(t) for t in prompt]
            check_prompt_tokens(tokens, self.model.n_vocab)
        if not tokens:
            raise InvalidRequestError("the prompt is empty", param="prompt")
        if len(tokens) >= self.n_ctx:
            raise ContextOverflowError(len(tokens), self.n_ctx, None)
        options: dict[str, Any] = dict(max_tokens=request.max_tokens, stop=list(request.stop),
                                       **request.sampling.kwargs())
        grammar = check_gbnf(request.grammar) if request.grammar else None
        if request.json_schema is not None:
            if grammar:
                raise InvalidRequestError("give either a grammar or a JSON schema, not both", param="grammar")
            grammar = schema_grammar(request.json_schema)
        if grammar:
            options["grammar"] = grammar
        check_generation(self.model, options)
        user_stops = tuple(request.stop)
        if self.batched:
            step = self.model.token_step(tokens, **options)
            return self._submit_slot(
                "completion", tokens, step, lambda job, text: job.emit(Delta("content", text=text)),
                lambda job, step, n_cached: self._emit_finished(
                    job, _finished(step, len(tokens), n_cached, user_stops, False)))

        def run(job: Job) -> None:
            job.emit(Started(len(tokens)))
            generation = self.model.stream(tokens, **options)
            job.attach(generation)
            try:
                for piece in generation:
                    job.emit(Delta("content", text=piece))
            finally:
                generation.close()
            self._emit_finished(job, _finished(generation, generation.n_prompt, generation.n_cached,
                                               user_stops, False))

        return self._submit("completion", run, len(tokens))

    def embed(self, texts: Sequence[str], timeout: float | None = None) -> Embeddings:
        """Embed texts (through the queue, like every use of the model, between batched steps);
        blocks until done. Cancelled by `close()` between texts and between batches of a text."""
        items = list(texts)
        with self._using_model():
            n_tokens = sum(len(self.model.tokenize(t, add_special=True)) for t in items)
        out: list[Embeddings] = []

        def run(job: Job) -> None:
            from ..native.context import Cancelled

            try:
                vectors = self.model.embed(items, should_stop=lambda: job.cancelled)
            except Cancelled:
                return
            out.append(Embeddings(vectors=[[float(x) for x in row] for row in vectors], n_tokens=n_tokens))

        job = self._submit("embeddings", run, n_tokens)
        for _ in job.events(heartbeat=None):
            pass
        if not out:
            raise ClosedError("the embedding request was cancelled")
        return out[0]

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = False) -> list[int]:
        with self._using_model():
            return self.model.tokenize(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        n_vocab = self.model.n_vocab
        bad = [t for t in tokens if not 0 <= t < n_vocab]
        if bad:
            raise InvalidRequestError(f"token id {bad[0]} is outside the vocabulary (0..{n_vocab - 1})",
                                      param="tokens")
        with self._using_model():
            return self.model.detokenize(list(tokens))

    def token_piece(self, token: int) -> str:
        with self._using_model():
            return self.model.token_piece(token).decode("utf-8", errors="replace")


class _DeltaEmitter:
    """Passes the chat layer's deltas on to a job; every tool call gets an id (stream and fold alike)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, job: Job, deltas: Sequence[Delta]) -> None:
        for delta in deltas:
            if delta.kind == "tool_call":
                self.calls += 1
                if delta.name and not delta.id:
                    delta = dataclasses.replace(delta, id=new_call_id())
            job.emit(delta)


def _finished(ended: Any, n_prompt: int, n_cached: int, user_stops: tuple[str, ...], has_calls: bool) -> Finished:
    """The `Finished` event for an ended generation or token step (stop strings the chat format
    added are reported as a plain stop; calls turn "stop" into "tool_calls")."""
    reason = ended.finish_reason or "stop"
    stop_sequence = ended.stop_sequence
    if reason == "stop_sequence" and stop_sequence not in user_stops:
        reason, stop_sequence = "stop", None
    if has_calls and reason in ("stop", "stop_sequence"):
        reason, stop_sequence = "tool_calls", None
    usage = Usage(prompt_tokens=n_prompt, completion_tokens=len(ended.tokens), cached_tokens=n_cached)
    return Finished(reason=reason, usage=usage, stop_sequence=stop_sequence)


def check_gbnf(text: str) -> str:
    """Parse a client's GBNF grammar now, so a bad one is a 400 before any response starts."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequestError("grammar must be a non-empty GBNF string", param="grammar")
    try:
        from ..grammar import Grammar
    except ImportError:  # grammar engine not available: the model reports problems itself
        return text
    Grammar.from_gbnf(text)
    return text


def merge_inner_system(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """Fold `system` messages that follow the first non-system one into the next user turn
    (as a note before its text). None when there is no such message."""
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    seen_other = False
    changed = False
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer") and seen_other:
            notes.append(_text(message.get("content")))
            changed = True
            continue
        seen_other = seen_other or role not in ("system", "developer")
        item = dict(message)
        if notes and role == "user":
            item["content"] = "\n\n".join([f"[System note]\n{n}" for n in notes] + [_text(item.get("content"))])
            notes = []
        out.append(item)
    if notes:
        out.append({"role": "user", "content": "\n\n".join(f"[System note]\n{n}" for n in notes)})
    return out if changed else None


def merge_consecutive_users(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """Join user messages that follow each other into one (templates that insist on alternating
    roles refuse them; clients such as OpenCode send them). None when there are none."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if out and message.get("role") == "user" and out[-1].get("role") == "user":
            out[-1] = {**out[-1], "content": _text(out[-1].get("content")) + "\n\n" + _text(message.get("content"))}
        else:
            out.append(dict(message))
    return out if len(out) < len(messages) else None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") if isinstance(p, Mapping) else str(p) for p in content)
    return "" if content is None else str(content)
