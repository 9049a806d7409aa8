"""The grammar engine: GBNF grammars and JSON Schemas constraining token sampling. Pure Python.

    grammar = Grammar.from_gbnf(text)            # GrammarError with line/column on mistakes
    grammar.accepts("...")                       # whole-text match
    compiled = grammar.compile(vocab)            # per TokenVocab, cached and shared
    matcher = compiled.matcher()                 # per sequence: allows/mask/advance/copy/reset
    json_schema_to_gbnf(schema)                  # llama.cpp's converter, same output

Semantics follow llama.cpp b11434 (``src/llama-grammar.cpp``, ``common/json-schema-to-grammar.cpp``);
each module documents where and why we deliberately differ.
"""

from __future__ import annotations

from .json_schema import SchemaConverter, json_schema_to_gbnf
from .matcher import CompiledGrammar, GrammarMatcher
from .parser import Grammar
from .vocab import TokenVocab

__all__ = [
    "Grammar",
    "CompiledGrammar",
    "GrammarMatcher",
    "TokenVocab",
    "SchemaConverter",
    "json_schema_to_gbnf",
]
