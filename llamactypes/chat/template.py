"""Render a model's chat template (Jinja2, from GGUF metadata) safely.

Chat templates come from model files, so they are untrusted input: they are
compiled in a `SandboxedEnvironment` (no attribute access to internals, bounded
`range`) that additionally caps string/list repetition and powers, so a hostile
template cannot exhaust memory with ``'x' * 10**12``.

The environment mirrors the one Hugging Face `transformers` uses, which is what
template authors test against: ``trim_blocks`` and ``lstrip_blocks``, the
``loopcontrols`` extension, a no-op ``{% generation %}`` block, the globals
``raise_exception`` and ``strftime_now``, and a ``tojson`` filter with Python's
`json.dumps` semantics (no HTML escaping, ``ensure_ascii=False`` by default,
``indent``, ``separators``, ``sort_keys``).

Any failure, at compile or render time, becomes a `ChatTemplateError` carrying
the template line number when Jinja knows it.

Models without a template get `CHATML_TEMPLATE` (llama.cpp's default too):

    <|im_start|>{role}\\n{content}<|im_end|>\\n ... <|im_start|>assistant\\n
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from llamactypes.errors import ChatTemplateError

__all__ = ["CHATML_TEMPLATE", "ChatTemplate", "JsonObject"]

CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Largest string or list a template may build by repetition, and largest power exponent.
_MAX_REPEAT = 1_000_000
_MAX_EXPONENT = 64
_TEMPLATE_FILE = "<chat_template>"


class _TemplateRaised(Exception):
    """Raised by the template's own `raise_exception(...)`."""


class _Undefined(jinja2.ChainableUndefined):
    """Undefined values that behave like llama.cpp's Jinja engine: empty and chainable.

    Templates are tested against several engines; some concatenate optional fields
    (``'): ' + param.description``) that Python's strict `Undefined` refuses. Here an
    undefined value reads as an empty string, and attribute access on it stays undefined.
    """

    def __add__(self, other: Any) -> Any:
        if isinstance(other, str):
            return other
        return super().__add__(other)

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, str):
            return other
        return super().__radd__(other)


class JsonObject(dict):  # type: ignore[type-arg]
    """A dict that prints as JSON: tool-call arguments as templates see them.

    Most templates iterate arguments (``.items()``) or serialize them with
    ``tojson``; a few concatenate them as text (``'\\n' + arguments``) or print
    them directly. Being a dict with a JSON `str()` serves all three.
    """

    def __str__(self) -> str:
        return json.dumps(self, ensure_ascii=False)

    def __add__(self, other: Any) -> Any:
        if isinstance(other, str):
            return str(self) + other
        return NotImplemented

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, str):
            return other + str(self)
        return NotImplemented


class _GenerationExtension(jinja2.ext.Extension):
    """``{% generation %}...{% endgeneration %}``: transformers marks assistant spans with it.

    Only the marking matters to training code; for rendering, the body is output as is.
    """

    tags = {"generation"}

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


class _Environment(SandboxedEnvironment):
    """Sandbox that also bounds `*` repetition and `**` so templates cannot exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Fail loudly: a template probing internals is broken or hostile, not merely sloppy.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, (int, float)) and abs(right) > _MAX_EXPONENT:
                raise _TemplateRaised("exponent too large in chat template")
            return operator.pow(left, right)
        if operator_name == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
                    if len(seq) * max(count, 0) > _MAX_REPEAT:
                        raise _TemplateRaised("repetition too large in chat template")
            return operator.mul(left, right)
        return super().call_binop(context, operator_name, left, right)


def _raise_exception(message: Any) -> None:
    raise _TemplateRaised(str(message))


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: Sequence[str] | None = None,
    sort_keys: bool = False,
) -> str:
    """`json.dumps` with transformers' defaults (no HTML escaping, unicode kept)."""
    seps = tuple(separators) if separators is not None else None
    return json.dumps(
        value,
        ensure_ascii=ensure_ascii,
        indent=indent,
        separators=seps,  # type: ignore[arg-type]
        sort_keys=sort_keys,
        default=_json_default,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        return None
    if isinstance(value, (set, frozenset, tuple)) or hasattr(value, "__next__"):
        return list(value)  # `map`/`select` filters return generators
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _make_environment() -> jinja2.Environment:
    env = _Environment(
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=_Undefined,
        extensions=[jinja2.ext.loopcontrols, _GenerationExtension],
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


_ENV = _make_environment()


def _template_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh copy of a message (templates may mutate it), arguments as `JsonObject`."""
    out = dict(message)
    calls = out.get("tool_calls")
    if calls:
        copied = []
        for call in calls:
            call = dict(call)
            function = dict(call.get("function") or {})
            args = function.get("arguments")
            if isinstance(args, Mapping):
                function["arguments"] = JsonObject(args)
            call["function"] = function
            copied.append(call)
        out["tool_calls"] = copied
    return out


def _template_line(exc: BaseException) -> int | None:
    """The innermost template line in a traceback (Jinja maps frames back to template lines)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class ChatTemplate:
    """A chat template compiled once and rendered per request.

    `source` is the Jinja text (``tokenizer.chat_template`` from GGUF metadata) or
    None for the ChatML fallback; `bos_token`/`eos_token` are the texts templates
    insert with ``{{ bos_token }}``; `name` labels errors (e.g. ``"tool_use"``).
    Raises `ChatTemplateError` if the source does not compile.
    """

    def __init__(
        self,
        source: str | None,
        bos_token: str = "",
        eos_token: str = "",
        name: str | None = None,
    ) -> None:
        self.source = source if source else CHATML_TEMPLATE
        self.is_fallback = not source
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.name = name
        try:
            code = _ENV.compile(self.source, name=None, filename=_TEMPLATE_FILE)
            self._template = _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None))
        except jinja2.TemplateSyntaxError as exc:
            raise ChatTemplateError(exc.message or str(exc), line=exc.lineno, name=name) from exc

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        **kwargs: Any,
    ) -> str:
        """Render `messages` (already normalized) to the prompt text.

        `tools` are OpenAI tool dicts (omitted from the context when empty, as
        transformers does); extra keyword arguments (``enable_thinking``,
        ``documents``, ...) become template variables.
        """
        context: dict[str, Any] = {
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            **kwargs,
            "messages": [_template_message(m) for m in messages],
            "add_generation_prompt": add_generation_prompt,
        }
        if tools:
            context["tools"] = list(tools)
        try:
            return self._template.render(context)
        except _TemplateRaised as exc:
            raise ChatTemplateError(str(exc), line=_template_line(exc), name=self.name) from exc
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(str(exc), line=_template_line(exc), name=self.name) from exc
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, ZeroDivisionError, OverflowError) as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise ChatTemplateError(message, line=_template_line(exc), name=self.name) from exc
        except RecursionError as exc:
            raise ChatTemplateError("recursion too deep", line=None, name=self.name) from exc

    def __repr__(self) -> str:
        label = self.name or ("chatml-fallback" if self.is_fallback else "default")
        return f"ChatTemplate({label!r}, {len(self.source)} chars)"
