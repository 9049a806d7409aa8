"""Render a model's chat template (Jinja2, from GGUF metadata) safely.

Chat templates come from model files, so they are untrusted input: they are
compiled in a `SandboxedEnvironment` (no attribute access to internals, bounded
`range`) that additionally caps powers and, with `_budget.Budget`, every way of
growing a string or list (``*``, ``+``, ``~``, ``%``, ``format``, ``center``,
``indent``, ``join``, ``replace``, ...) and the output, and bounds the rendering
time: ``Limits.template_max_output_chars`` and ``Limits.template_max_seconds``.

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
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from llamactypes.errors import ChatTemplateError
from llamactypes.limits import DEFAULT_LIMITS, Limits

from ._budget import TEMPLATE_FILE, Budget, TemplateBudgetError, checked_filter, current

__all__ = ["CHATML_TEMPLATE", "ChatTemplate", "JsonObject"]

CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Largest power exponent (sizes are bounded by `Limits.template_max_output_chars`).
_MAX_EXPONENT = 64
_TEMPLATE_FILE = TEMPLATE_FILE


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


class _CodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a size-checked join (Jinja's own is a plain ``"".join``)."""

    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Environment(SandboxedEnvironment):
    """Sandbox that also bounds `**` and, through the rendering's `Budget`, every operator
    and call that can grow a string or list, so templates cannot exhaust memory."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CodeGenerator

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Fail loudly: a template probing internals is broken or hostile, not merely sloppy.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        budget = _budget()
        if operator_name == "**":
            if isinstance(right, (int, float)) and abs(right) > _MAX_EXPONENT:
                raise _TemplateRaised("exponent too large in chat template")
            return operator.pow(left, right)
        if operator_name == "*":
            budget.check_repeat(left, right)
            return operator.mul(left, right)
        if operator_name == "+":
            budget.check_add(left, right)
            return operator.add(left, right)
        if operator_name == "%" and isinstance(left, str):
            args = right if isinstance(right, tuple) else (right,)
            budget.check_format(left, args, {})
            return budget.check_size(super().call_binop(context, operator_name, left, right))
        return super().call_binop(context, operator_name, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _budget()
        budget.check_args(args, kwargs)
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str) and getattr(target, "__name__", "") in ("format", "format_map"):
            budget.check_format(owner, args, kwargs)
        if isinstance(owner, str) and getattr(target, "__name__", "") == "join" and args:
            budget.check_join(args[0], owner)
        result = SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)
        if isinstance(owner, (list, dict)):  # l.append(...), d.update(...) grow their owner
            budget.check_size(owner)
        return budget.check_size(result, f"the result of {getattr(__obj, '__name__', 'a call')}")

    def bounded_concat(self, parts: Sequence[Any]) -> str:
        """``a ~ b ~ ...``: the pieces as text, joined if the result fits the budget."""
        texts = [str(part) for part in parts]
        size = sum(map(len, texts))
        budget = _budget()
        if size > budget.max_chars:
            raise budget.error("the size of a ~ concatenation (characters)", size)
        return "".join(texts)


def _budget() -> Budget:
    """The budget of the rendering in progress (a template is only run through `render`)."""
    budget = current()
    if budget is None:
        raise TemplateBudgetError("templates are rendered through ChatTemplate.render only")
    return budget


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
    for name, func in list(env.filters.items()):
        env.filters[name] = checked_filter(func)
    env.globals.pop("lipsum", None)  # lipsum(n=10**6) builds hundreds of MB in one call
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
        *,
        limits: Limits | None = None,
    ) -> None:
        self.source = source if source else CHATML_TEMPLATE
        self.limits = limits or DEFAULT_LIMITS
        self.is_fallback = not source
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.name = name
        try:
            code = _ENV.compile(self.source, name=None, filename=_TEMPLATE_FILE)
            self._template = _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None))
        except jinja2.TemplateSyntaxError as exc:
            raise ChatTemplateError(exc.message or str(exc), line=exc.lineno, name=name) from exc
        except RecursionError as exc:  # blocks nested thousands deep
            raise ChatTemplateError("the template is nested too deeply to compile", name=name) from exc

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
        budget = Budget(self.limits)
        try:
            return budget.run(lambda: self._generate(context, budget))
        except TemplateBudgetError as exc:
            raise ChatTemplateError(str(exc), line=_template_line(exc), name=self.name, limit=exc.limit) from exc
        except MemoryError as exc:
            raise ChatTemplateError("out of memory while rendering", name=self.name) from exc
        except _TemplateRaised as exc:
            raise ChatTemplateError(str(exc), line=_template_line(exc), name=self.name) from exc
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(str(exc), line=_template_line(exc), name=self.name) from exc
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, ZeroDivisionError, OverflowError) as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise ChatTemplateError(message, line=_template_line(exc), name=self.name) from exc
        except RecursionError as exc:
            raise ChatTemplateError("recursion too deep", line=None, name=self.name) from exc

    def _generate(self, context: dict[str, Any], budget: Budget) -> str:
        """Render chunk by chunk, counting the output against the budget."""
        out: list[str] = []
        size = 0
        for chunk in self._template.generate(context):
            size += len(chunk)
            if size > budget.max_chars:
                raise budget.error("the rendered prompt (characters so far)", size)
            out.append(chunk)
        return "".join(out)

    def __repr__(self) -> str:
        label = self.name or ("chatml-fallback" if self.is_fallback else "default")
        return f"ChatTemplate({label!r}, {len(self.source)} chars)"
