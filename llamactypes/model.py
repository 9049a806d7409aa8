"""`Model`: a GGUF model you can tokenize with, generate from, and embed with.

    from llamactypes import Model
    with Model("model.gguf", n_ctx=4096) as model:
        print(model.generate("The capital of France is", max_tokens=16, temperature=0))

The decode/sample loop is ours (`generation.py`): llama.cpp decodes, numpy
samples. A new prompt that extends what the KV cache already holds decodes
only its new suffix, which is what keeps multi-turn chat fast.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

import numpy as np

from .api.types import LLAMA_POOLING_TYPE_MEAN, LLAMA_POOLING_TYPE_NONE, LLAMA_POOLING_TYPE_UNSPECIFIED
from .errors import ClosedError, ContextOverflowError, InvalidRequestError
from .generation import GenerateOptions, Generation, ModelLock, TokenStep
from .gguf import read_metadata
from .native import Context, ContextParams, NativeModel
from .native.context import Cancelled
from .sampling import SamplingParams

__all__ = ["Model"]

log = logging.getLogger("llamactypes")

_SAMPLING_KEYS = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n",
                  "presence_penalty", "frequency_penalty", "seed", "logit_bias")
_GRAMMAR_KEYS = ("grammar", "grammar_lazy", "trigger_patterns", "trigger_words", "trigger_tokens", "grammar_after")


class Model:
    """A loaded GGUF model with one generation context (and an embedding context on demand).

    Args:
        path: the .gguf file. It is checked (exists, GGUF magic, readable header) before llama.cpp sees it.
        n_ctx: context length in tokens; 0 means the model's training context.
        n_threads: CPU threads; default: the cores this process may use.
        n_gpu_layers: layers to offload to a GPU build (-1: all). Default: 0, or all layers with `rpc_servers`.
        embedding: prepare for `embed()` right away.
        seed: default seed for sampling when a call gives none (None: random each call).
        verbose: send llama.cpp's own log to stderr (it always goes to the `llamactypes.native` logger).
        flash_attn: True/False to force flash attention, None for llama.cpp's "auto".
        rpc_servers: `["host:port", ...]` of RPC workers (`python -m llamactypes.rpc_worker`) that hold the
            offloaded layers (docs/rpc.md). Each is probed first: a bad one raises `RpcEndpointError`.
        tensor_split: proportion of the layers per device, in the order of `rpc_servers` (then local
            GPUs); default: by free memory.
        progress: called with the loaded fraction (0.0 .. 1.0) while llama.cpp loads the weights;
            returning False cancels loading (ModelLoadError), an exception cancels it and propagates.
    """

    def __init__(self, path: str | os.PathLike[str], *, n_ctx: int = 4096, n_threads: int | None = None,
                 n_gpu_layers: int | None = None, embedding: bool = False, seed: int | None = None,
                 verbose: bool = False, flash_attn: bool | None = None, n_batch: int = 512,
                 rpc_servers: Sequence[str] | None = None, tensor_split: Sequence[float] | None = None,
                 progress: Callable[[float], object] | None = None) -> None:
        if verbose:
            _enable_verbose_log()
        if n_ctx < 0:
            raise InvalidRequestError(f"n_ctx must be >= 0, got {n_ctx}", param="n_ctx")
        header = read_metadata(path)  # raises ModelLoadError for anything that is not a GGUF model
        self.path = Path(path).expanduser()
        self.metadata: dict[str, Any] = header.metadata
        self.seed = seed
        if isinstance(rpc_servers, str):
            rpc_servers = [part.strip() for part in rpc_servers.split(",") if part.strip()]
        if n_gpu_layers is None:
            n_gpu_layers = -1 if rpc_servers else 0  # rpc_servers alone means: put the layers on them
        self._native = NativeModel(self.path, n_gpu_layers=n_gpu_layers, rpc_servers=rpc_servers or (),
                                   tensor_split=tensor_split, progress=progress)
        self.vocabulary = self._native.vocab
        n_ctx = n_ctx or self._native.n_ctx_train
        self._ctx_params = ContextParams(n_ctx=n_ctx, n_batch=min(n_batch, n_ctx), n_threads=n_threads,
                                         flash_attn=flash_attn)
        self._lock = ModelLock()
        self._ctx: Context | None = None
        self._embed_ctx: Context | None = None
        self._plain_pieces: list[bytes | None] = [None] * self.vocabulary.n_tokens
        self._token_vocab: Any = None
        try:
            if not embedding:
                self._ctx = Context(self._native, self._ctx_params)
            else:
                self._embedding_context()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Free the contexts and the model (idempotent; waits for a running generation)."""
        with self._lock:
            for ctx in (self._ctx, self._embed_ctx):
                if ctx is not None:
                    ctx.close()
            self._ctx = self._embed_ctx = None
            self._native.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if hasattr(self, "_native") and not self._native.closed:
                self.close()
        except Exception:
            pass

    @property
    def closed(self) -> bool:
        return self._native.closed

    def _context(self) -> Context:
        if self._native.closed:
            raise ClosedError("the model has been closed")
        if self._ctx is None:
            self._ctx = Context(self._native, self._ctx_params)
        return self._ctx

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"n_ctx={self.n_ctx}"
        return f"<Model {self.path.name} {state}>"

    # ------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        """The file stem: the id servers publish unless given an alias."""
        return self.path.stem

    @property
    def rpc_servers(self) -> tuple[str, ...]:
        """The RPC endpoints holding this model's offloaded layers (empty when local)."""
        return self._native.rpc_servers

    @property
    def n_vocab(self) -> int:
        return self.vocabulary.n_tokens

    @property
    def n_ctx(self) -> int:
        return self._ctx.n_ctx if self._ctx is not None else self._ctx_params.n_ctx

    @property
    def n_ctx_train(self) -> int:
        return self._native.n_ctx_train

    @property
    def n_embd(self) -> int:
        return self._native.n_embd

    @property
    def bos(self) -> int | None:
        return self.vocabulary.bos

    @property
    def eos(self) -> int | None:
        return self.vocabulary.eos

    @property
    def eot(self) -> int | None:
        return self.vocabulary.eot

    @property
    def eog_tokens(self) -> frozenset[int]:
        return self.vocabulary.eog_tokens

    @property
    def chat_template(self) -> str | None:
        """The model's default chat template (`tokenizer.chat_template`), or None."""
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    @property
    def chat_templates(self) -> dict[str, str]:
        """Named template variants (`tokenizer.chat_template.<name>`, e.g. `tool_use`)."""
        prefix = "tokenizer.chat_template."
        return {k[len(prefix):]: v for k, v in self.metadata.items() if k.startswith(prefix) and isinstance(v, str)}

    # ------------------------------------------------------------ tokens

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """Text to token ids with the model's own tokenizer."""
        if not isinstance(text, str):
            raise InvalidRequestError(f"text must be a str, got {type(text).__name__}", param="text")
        return self.vocabulary.tokenize(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, tokens: Sequence[int], special: bool = False) -> str:
        """Token ids to text (byte-exact; invalid UTF-8 becomes U+FFFD)."""
        return self.vocabulary.detokenize(list(tokens), unparse_special=special).decode("utf-8", errors="replace")

    def token_piece(self, token: int, special: bool = True) -> bytes:
        """The bytes one token emits."""
        return self.vocabulary.piece(token, special=special)

    def vocab(self) -> Any:
        """The vocabulary as the grammar engine sees it (`TokenVocab`), built once."""
        if self._token_vocab is None:
            from .grammar import TokenVocab

            self._token_vocab = TokenVocab(self.vocabulary.pieces(), self.eog_tokens)
        return self._token_vocab

    def _piece_for_output(self, preserved: Collection[int]) -> Any:
        cache = self._plain_pieces
        vocab = self.vocabulary

        def piece(token: int) -> bytes:
            if token in preserved:
                return vocab.piece(token, special=True)
            raw = cache[token]
            if raw is None:
                raw = cache[token] = vocab.piece(token, special=False)
            return raw

        return piece

    # ------------------------------------------------------------ generation

    def stream(self, prompt: str | Sequence[int], *, max_tokens: int | None = 256, stop: str | Sequence[str] = (),
               ignore_eos: bool = False, preserved_tokens: Collection[int] = (), **options: Any) -> Generation:
        """Start generating; returns a `Generation`, an iterator of text pieces.

        `prompt` is text (tokenized with special tokens parsed, BOS added if the model
        wants it) or token ids. Sampling options: temperature (0 = greedy), top_k,
        top_p, min_p, repeat_penalty, repeat_last_n, presence_penalty,
        frequency_penalty, seed, logit_bias. Grammar options: grammar (GBNF text or a
        `Grammar`), grammar_lazy, trigger_patterns, trigger_words, trigger_tokens,
        grammar_after.
        """
        opts, constraint = self._generate_options(max_tokens, stop, ignore_eos, preserved_tokens, options)
        tokens = self._prompt_tokens(prompt)
        ctx = self._context()
        if len(tokens) >= ctx.n_ctx:
            raise ContextOverflowError(len(tokens), ctx.n_ctx)
        return Generation(context=ctx, prompt=tokens, options=opts,
                          pieces=self._piece_for_output(opts.preserved_tokens), eog=self.eog_tokens,
                          lock=self._lock, constraint=constraint)

    def token_step(self, prompt: Sequence[int], *, max_tokens: int | None = 256, stop: str | Sequence[str] = (),
                   ignore_eos: bool = False, preserved_tokens: Collection[int] = (), **options: Any) -> TokenStep:
        """The per-sequence sampling state for `prompt` (same options as `stream`), without a context:
        what the engine's batched slots drive with the logits rows of a shared context."""
        opts, constraint = self._generate_options(max_tokens, stop, ignore_eos, preserved_tokens, options)
        return TokenStep(prompt=prompt, options=opts, n_vocab=self.n_vocab,
                         pieces=self._piece_for_output(opts.preserved_tokens), eog=self.eog_tokens,
                         budget=self.n_ctx, constraint=constraint)

    def _generate_options(self, max_tokens: int | None, stop: str | Sequence[str], ignore_eos: bool,
                          preserved_tokens: Collection[int], options: Mapping[str, Any]) -> tuple[GenerateOptions, Any]:
        unknown = set(options) - set(_SAMPLING_KEYS) - set(_GRAMMAR_KEYS)
        if unknown:
            raise InvalidRequestError(f"unknown option(s): {', '.join(sorted(unknown))}", param=sorted(unknown)[0])
        sampling = {k: options[k] for k in _SAMPLING_KEYS if k in options and options[k] is not None}
        if "seed" not in sampling and self.seed is not None:
            sampling["seed"] = self.seed
        opts = GenerateOptions(max_tokens=max_tokens, stop=(stop,) if isinstance(stop, str) else tuple(stop),
                               ignore_eos=ignore_eos, preserved_tokens=frozenset(preserved_tokens),
                               sampling=SamplingParams(**sampling))
        return opts, self._constraint({k: options.get(k) for k in _GRAMMAR_KEYS})

    def open_context(self, n_seq_max: int) -> Context:
        """A new context of this model's size holding `n_seq_max` sequences in one unified KV cache
        (any one sequence may use all of it): the engine's batched slots. The caller owns it and
        must close it before the model. The model's own single-sequence context is freed now
        (it comes back on the next `stream`), so the two never hold memory at once in a server."""
        if self._native.closed:
            raise ClosedError("the model has been closed")
        with self._lock:
            if self._ctx is not None:
                self._ctx.close()
                self._ctx = None
        return Context(self._native, dataclasses.replace(self._ctx_params, n_seq_max=n_seq_max, kv_unified=True))

    def generate(self, prompt: str | Sequence[int], **options: Any) -> str:
        """Generate and return the whole text (same options as `stream`)."""
        return self.stream(prompt, **options).read()

    def _prompt_tokens(self, prompt: str | Sequence[int]) -> list[int]:
        if isinstance(prompt, str):
            return self.vocabulary.tokenize(prompt, add_special=True, parse_special=True)
        tokens = [int(t) for t in prompt]
        bad = [t for t in tokens if not 0 <= t < self.n_vocab]
        if bad:
            raise InvalidRequestError(f"token id {bad[0]} is outside the vocabulary (0..{self.n_vocab - 1})",
                                      param="prompt")
        return tokens

    def _constraint(self, grammar_options: Mapping[str, Any]) -> Any:
        if grammar_options.get("grammar") is None:
            if any(grammar_options.get(k) for k in ("trigger_patterns", "trigger_words", "trigger_tokens")):
                raise InvalidRequestError("triggers need a grammar", param="grammar")
            return None
        from .sampling.constrained import build_constraint

        return build_constraint(self.vocab(), **{k: v for k, v in grammar_options.items() if v is not None})

    # ------------------------------------------------------------ embeddings

    def _embedding_context(self) -> Context:
        if self._embed_ctx is None:
            arch = self.metadata.get("general.architecture", "")
            declared = self.metadata.get(f"{arch}.pooling_type")
            pooling = LLAMA_POOLING_TYPE_MEAN if declared in (None, LLAMA_POOLING_TYPE_NONE) else int(declared)
            n_ctx = min(self._ctx_params.n_ctx, 8192)
            self._embed_ctx = Context(self._native, ContextParams(
                n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=self._ctx_params.n_threads,
                embeddings=True,
                pooling=pooling if pooling != LLAMA_POOLING_TYPE_UNSPECIFIED else LLAMA_POOLING_TYPE_MEAN,
                flash_attn=self._ctx_params.flash_attn))
        return self._embed_ctx

    def embed(self, texts: str | Iterable[str], normalize: bool = True,
              should_stop: Callable[[], bool] | None = None) -> np.ndarray:
        """Embeddings of one text (1-D) or of several (2-D, one row each), L2-normalized.

        Pooling is the model's own (`<arch>.pooling_type`); generative models without
        one get mean pooling over the text's tokens. `should_stop` is checked between texts
        and between batches of a text: when it says so, `native.Cancelled` is raised.
        """
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        if any(not isinstance(t, str) for t in items):
            raise InvalidRequestError("texts must be strings", param="input")
        with self._lock:
            ctx = self._embedding_context()
            rows = []
            for text in items:
                if should_stop is not None and should_stop():
                    raise Cancelled()
                tokens = self.vocabulary.tokenize(text, add_special=True, parse_special=False)
                if not tokens:
                    raise InvalidRequestError("cannot embed an empty text", param="input")
                if len(tokens) > ctx.n_ctx:
                    raise ContextOverflowError(len(tokens), ctx.n_ctx)
                ctx.clear()
                ctx.decode(tokens, all_logits=True, should_stop=should_stop)
                vec = ctx.embedding_seq(0)
                if vec is None:
                    vec = np.mean([ctx.embedding_ith(i) for i in range(len(tokens))], axis=0)
                rows.append(vec.astype(np.float32))
            ctx.clear()
        out = np.vstack(rows) if rows else np.zeros((0, self.n_embd), dtype=np.float32)
        if normalize and out.size:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.where(norms == 0, 1.0, norms)
        return out[0] if single else out


def _enable_verbose_log() -> None:
    logger = logging.getLogger("llamactypes.native")
    if not any(getattr(h, "_llamactypes_verbose", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler._llamactypes_verbose = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
