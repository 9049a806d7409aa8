"""`chat_build`: turn a chat request into a prompt, a grammar and parser settings.

The steps, in order:

1. validate and normalize messages, tools, ``tool_choice`` and ``response_format``;
2. pick the template (the ``tool_use`` variant when tools are on) and detect its
   dialect from the template text;
3. reshape the conversation for what the template can render (`polyfill`),
   describing the tools in the system prompt where the template does not;
4. render, drop a leading BOS the tokenizer will add anyway, and notice a
   prompt that ends inside ``<think>``;
5. build the grammar: lazy (fired by the dialect's call marker) for
   ``tool_choice="auto"``, eager for ``"required"`` or a named function, a
   JSON Schema grammar for ``response_format``. When the model thinks first,
   an "eager" grammar is made lazy, fired at the end of the thinking block.

`model` is duck-typed (see `chat_build`), so the chat layer never imports the
model layer.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from llamactypes.chat.derive import DerivedFormat, check_round_trip, derive_format_from, probe_template
from llamactypes.chat.derive.known import known_dialect
from llamactypes.chat.formats import FORMATS, GENERIC, ChatFormat, detect_format, register_format
from llamactypes.chat.formats._grammar import GrammarBuilder, literal
from llamactypes.chat.formats.generic import envelope_schema
from llamactypes.chat.messages import normalize_messages, normalize_tools
from llamactypes.chat.polyfill import TemplateCaps, adapt_messages, probe_caps
from llamactypes.chat.template import ChatTemplate
from llamactypes.chat.types import ChatBuild, ParserConfig
from llamactypes.errors import InvalidRequestError

__all__ = ["ChatModel", "chat_build", "format_for", "template_for"]


class ChatModel(Protocol):
    """What `chat_build` needs from a model (`llamactypes.Model` has it)."""

    chat_template: str | None
    chat_templates: dict[str, str]
    metadata: dict[str, Any]
    bos: int | None
    eos: int | None

    def token_piece(self, token: int, special: bool = True) -> bytes: ...

    def tokenize(self, text: str, add_special: bool = False, parse_special: bool = True) -> list[int]: ...


@functools.lru_cache(maxsize=32)
def _compiled(source: str | None, bos: str, eos: str, name: str | None) -> tuple[ChatTemplate, TemplateCaps]:
    """Templates are compiled and probed once per (source, special tokens)."""
    template = ChatTemplate(source, bos_token=bos, eos_token=eos, name=name)
    return template, probe_caps(template)


@functools.lru_cache(maxsize=32)
def _format_for(source: str | None, bos: str, eos: str, name: str | None) -> ChatFormat:
    """The template's dialect: hand-written when one reads the template's own calls back, else derived.

    All are checked the same way (`check_round_trip`: the template renders calls
    with marker values, the format must parse them back): first the dialect its
    source text names, then the other hand-written ones, then the family dialect
    its source names (`known_dialect`: LFM2), then the derived one; a template
    the analyzer cannot read keeps the detected or generic format. A template
    that renders no calls gets its family's dialect, or generic.
    """
    template, caps = _compiled(source, bos, eos, name)
    if template.is_fallback:
        return GENERIC
    known = known_dialect(template.source)
    if not caps.tool_calls:  # nothing to learn the syntax from: the family's, if the source names one
        return register_format(DerivedFormat(known)) if known else GENERIC
    hand = detect_format(template.source)
    renderings = probe_template(template)
    if hand is not GENERIC and check_round_trip(hand, renderings):
        return hand
    for other in FORMATS:  # a family's dialect that reads this template's calls (llm-jp writes gpt-oss's)
        if other not in (hand, GENERIC) and check_round_trip(other, renderings):
            return other
    if known and check_round_trip(DerivedFormat(known), renderings):  # it knows the family's thinking block
        return register_format(DerivedFormat(known))
    derived = derive_format_from(renderings)
    return register_format(derived) if derived is not None else hand


def _piece(model: ChatModel, token: int | None) -> str:
    if token is None:
        return ""
    return model.token_piece(token, special=True).decode("utf-8", errors="replace")


def _template_key(model: ChatModel, with_tools: bool) -> tuple[str | None, str, str, str | None]:
    """(source, bos, eos, variant name) of the template to use: the ``tool_use`` variant when tools
    are on and the model has one — the key both the compiled template and the dialect are cached by."""
    variants = getattr(model, "chat_templates", None) or {}
    name = None
    source = model.chat_template
    if with_tools and variants.get("tool_use"):
        source, name = variants["tool_use"], "tool_use"
    return source or None, _piece(model, model.bos), _piece(model, model.eos), name


def template_for(model: ChatModel, with_tools: bool) -> tuple[ChatTemplate, TemplateCaps]:
    """The model's template (its ``tool_use`` variant when tools are on) and its caps."""
    return _compiled(*_template_key(model, with_tools))


def format_for(model: ChatModel, with_tools: bool) -> ChatFormat:
    """The tool-call dialect `chat_build` uses for `model` (see `_format_for`)."""
    return _format_for(*_template_key(model, with_tools))


def _tool_choice(choice: Any, tools: list[dict[str, Any]]) -> str:
    """``"none"``, ``"auto"``, ``"required"``, or the name of the one function to call."""
    if choice is None:
        choice = "auto"
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise InvalidRequestError(f"tool_choice must be none, auto or required, got {choice!r}", "tool_choice")
        if choice == "required" and not tools:
            raise InvalidRequestError("tool_choice is 'required' but no tools were given", "tool_choice")
        return choice
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        name = choice["function"].get("name")
        if name not in {t["function"]["name"] for t in tools}:
            raise InvalidRequestError(f"tool_choice names an unknown function {name!r}", "tool_choice")
        return str(name)
    raise InvalidRequestError("tool_choice must be a string or {'type': 'function', ...}", "tool_choice")


def _response_schema(response_format: Any) -> dict[str, Any] | None:
    """The JSON Schema a ``response_format`` asks for, or None for plain text."""
    if response_format is None:
        return None
    if not isinstance(response_format, Mapping):
        raise InvalidRequestError("response_format must be an object", "response_format")
    kind = response_format.get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        schema = response_format.get("schema")
        return dict(schema) if isinstance(schema, Mapping) else {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise InvalidRequestError("response_format json_schema needs a 'schema' object", "response_format")
        return dict(schema)
    raise InvalidRequestError(f"unsupported response_format type {kind!r}", "response_format")


def _example_args(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Placeholder arguments for a tool, to show the call syntax in instructions."""
    samples = {"string": "...", "integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}
    props = schema.get("properties") or {}
    return {
        key: samples.get(prop.get("type") if isinstance(prop, Mapping) else None, "...")
        for key, prop in list(props.items())[:3]
    }


def _tool_prompt(fmt: ChatFormat, tools: list[dict[str, Any]], caps: TemplateCaps, parallel: bool) -> str:
    """System-prompt text describing tools and call syntax, where the template does not."""
    parts = []
    if not caps.tools:
        functions = json.dumps([t["function"] for t in tools], indent=2, ensure_ascii=False)
        parts.append(f"You can call the following tools:\n{functions}")
    if fmt is GENERIC or not caps.tools:
        first = tools[0]["function"]
        example = fmt.call_example(first["name"], _example_args(first["parameters"]))
        parts.append(fmt.tool_instructions(example, parallel=parallel))
    return "\n\n".join(parts)


def _param_types(tools: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Tool → parameter → JSON type; a union (a list of types, ``anyOf``/``oneOf``) as ``"a|b"``."""
    types: dict[str, dict[str, str]] = {}
    for tool in tools:
        props = tool["function"]["parameters"].get("properties") or {}
        types[tool["function"]["name"]] = {
            k: t for k, v in props.items() if isinstance(v, Mapping) and (t := _schema_type(v)) is not None
        }
    return types


def _schema_type(schema: Mapping[str, Any]) -> str | None:
    """A parameter schema's type (see `_param_types`), or None when it does not say."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind
    members = kind if isinstance(kind, list) else [
        m.get("type") if isinstance(m, Mapping) else None for m in schema.get("anyOf") or schema.get("oneOf") or []]
    if members and all(isinstance(m, str) for m in members):
        return "|".join(sorted(set(members)))
    return None


def _render_kwargs(enable_thinking: bool, template_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    now = datetime.now()
    kwargs: dict[str, Any] = {
        "enable_thinking": enable_thinking,
        "date_string": now.strftime("%d %b %Y"),
        "datetime": now.strftime("%b %d %Y"),
    }
    kwargs.update(template_kwargs or {})
    return kwargs


def chat_build(
    model: ChatModel,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    tool_choice: Any = "auto",
    parallel_tool_calls: bool = True,
    response_format: Mapping[str, Any] | None = None,
    enable_thinking: bool = False,
    add_generation_prompt: bool = True,
    template_kwargs: Mapping[str, Any] | None = None,
) -> ChatBuild:
    """Render a chat request for `model` and say how to constrain and parse the output.

    `model` needs ``chat_template``, ``chat_templates``, ``metadata``, ``bos``,
    ``eos``, ``token_piece(id, special=True) -> bytes`` and
    ``tokenize(text, add_special=False, parse_special=True) -> list[int]``.
    `messages` and `tools` are OpenAI-style; `tool_choice` is ``"auto"``,
    ``"none"``, ``"required"`` or ``{"type": "function", "function": {"name": ...}}``;
    `response_format` is ``{"type": "json_object"}`` or ``{"type": "json_schema",
    "json_schema": {"schema": ...}}``; `template_kwargs` become template variables.
    Raises `InvalidRequestError` for bad input and `ChatTemplateError` when the
    template fails.
    """
    normalized = normalize_messages(messages)
    tool_list = normalize_tools(tools)
    choice = _tool_choice(tool_choice, tool_list)
    active = tool_list if choice != "none" else []
    callable_tools = [t for t in active if choice in ("auto", "required") or t["function"]["name"] == choice]
    response_schema = _response_schema(response_format)
    parallel = bool(parallel_tool_calls) and choice in ("auto", "required")

    template, caps = template_for(model, bool(active))
    fmt = format_for(model, bool(active))
    thinking = fmt.supports_thinking(template.source)
    system_extra = _tool_prompt(fmt, active, caps, parallel) if active else ""
    if not fmt.keeps_developer:
        normalized = [{**m, "role": "system"} if m["role"] == "developer" else m for m in normalized]
    adapted = adapt_messages(fmt.adapt_messages(normalized), caps, fmt.calls_text, system_extra=system_extra)
    prompt = template.render(
        adapted,
        tools=active or None,
        add_generation_prompt=add_generation_prompt,
        **_render_kwargs(enable_thinking, template_kwargs),
    )
    prompt = _drop_bos(prompt, template.bos_token, model)
    forced_open = bool(thinking and fmt.think_tags and prompt.rstrip().endswith(fmt.think_tags[0]))

    build = ChatBuild(
        prompt=prompt,
        format=fmt.id,
        parser=ParserConfig(
            tools=tuple(t["function"]["name"] for t in callable_tools),
            param_types=_param_types(callable_tools),
            reasoning=thinking,
            thinking_forced_open=forced_open,
            json_envelope=fmt is GENERIC and bool(callable_tools),
            parallel_tool_calls=parallel,
        ),
        thinking_forced_open=forced_open,
        additional_stops=list(fmt.additional_stops),
    )
    for marker in dict.fromkeys(fmt.special_markers + (fmt.think_tags or ())):
        token = _single_token(model, marker)
        if token is not None:
            build.preserved_tokens.append(marker)
            build.preserved_token_ids.append(token)
    mode = "forced" if forced_open else ("optional" if thinking and enable_thinking and fmt.think_tags else "none")
    _add_grammar(build, model, fmt, callable_tools, choice, parallel, response_schema, mode)
    return build


def _drop_bos(prompt: str, bos: str, model: ChatModel) -> str:
    """The prompt without a leading BOS text when the tokenizer adds BOS itself (no double BOS)."""
    if bos and prompt.startswith(bos) and model.metadata.get("tokenizer.ggml.add_bos_token", True):
        return prompt[len(bos) :]
    return prompt


def _single_token(model: ChatModel, text: str) -> int | None:
    """The token id if `text` is exactly one (special) token of the vocabulary."""
    try:
        ids = model.tokenize(text, add_special=False, parse_special=True)
    except Exception:  # a tokenizer that refuses the text simply has no such token
        return None
    return ids[0] if len(ids) == 1 else None


def _add_grammar(
    build: ChatBuild,
    model: ChatModel,
    fmt: ChatFormat,
    tools: list[dict[str, Any]],
    choice: str,
    parallel: bool,
    response_schema: dict[str, Any] | None,
    mode: str,
) -> None:
    """Fill the grammar and trigger fields of `build` (see the module docstring)."""
    if not tools and response_schema is None:
        return
    builder = GrammarBuilder(compact=bool(tools) and not fmt.pretty_json)
    required = choice != "auto"
    if not tools:
        root = _response_rule(builder, fmt, response_schema or {})
        if fmt.content_trigger:  # the answer starts after a channel header, not at once
            build.grammar = builder.build(root)
            build.grammar_lazy = True
            build.trigger_patterns = [fmt.content_trigger]
            return
    elif fmt is GENERIC:
        schema = envelope_schema(tools, parallel=parallel, required=required, response=response_schema)
        root = builder.schema(schema, "answer")
    else:
        root = fmt.grammar_root(builder, tools, parallel)
        if not required and response_schema is None:
            build.grammar = builder.build(root)
            build.grammar_lazy = True
            build.trigger_patterns = _wrap_patterns(fmt, fmt.trigger_regexes(tools), mode)
            marker = fmt.start_markers[0] if fmt.start_markers and mode == "none" else None
            if marker:  # plain markers can fire inside a thinking block: only without one
                build.trigger_words = [marker]
                token = _single_token(model, marker)
                build.trigger_tokens = [token] if token is not None else []
            return
        if response_schema is not None and not required:
            root = f"{root} | {_response_rule(builder, fmt, response_schema)}"
    if mode == "none":  # the answer may start after a line break or two, or an empty thinking block
        lead = builder.ws()
        if tools and build.parser.reasoning and fmt.think_tags:
            empty = f"{literal(fmt.think_tags[0])}? {builder.ws()} {literal(fmt.think_tags[1])} {builder.ws()}"
            lead = f"{lead} ( {empty} )?"
        build.grammar = builder.build(f"{lead} ( {root} ) {builder.ws()}" if tools else root)
        return
    # The model thinks first: constrain only what follows the thinking block.
    build.grammar = builder.build(f"{builder.ws()} ( {root} )")
    build.grammar_lazy = True
    open_tag, close_tag = (re.escape(t) for t in fmt.think_tags or ("", ""))
    start = "^[\\s\\S]*?" if mode == "forced" else f"^\\s*{open_tag}[\\s\\S]*?"
    build.trigger_patterns = [f"{start}{close_tag}(\\s*)"]


def _response_rule(builder: GrammarBuilder, fmt: ChatFormat, schema: dict[str, Any]) -> str:
    """The JSON answer a ``response_format`` asks for, after the text the dialect writes before content."""
    rule = builder.schema(schema, "response")
    return f"{literal(fmt.content_prefix)} {rule}" if fmt.content_prefix else rule


def _wrap_patterns(fmt: ChatFormat, patterns: list[str], mode: str) -> list[str]:
    """Make call-marker patterns fire only after the thinking block, when there is one."""
    if mode == "none" or fmt.think_tags is None:
        return patterns
    open_tag, close_tag = (re.escape(t) for t in fmt.think_tags)
    out = []
    for pattern in patterns:
        body = pattern[1:] if pattern.startswith("^") else "[\\s\\S]*?" + pattern
        if mode == "forced":
            out.append(f"^[\\s\\S]*?{close_tag}{body}")
        else:
            out.append(f"^(?!\\s*{open_tag}){body}")
            out.append(f"^\\s*{open_tag}[\\s\\S]*?{close_tag}{body}")
    return out
