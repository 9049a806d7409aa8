"""Format detection from template text, for every template of the pinned llama.cpp tree."""

from __future__ import annotations

from typing import Callable

import pytest

from llamactypes.chat.formats import FORMATS, detect_format, get_format
from tests.unit.chat.conftest import template_names

# Templates with a native dialect we parse; every other template gets the generic JSON format
# (its own call syntax, e.g. GLM's <arg_key> or Kimi's sections, is not implemented here).
EXPECTED = {
    "Apertus-8B-Instruct": "generic",
    "Apriel-1.6-15b-Thinker-fixed": "generic",
    "Bielik-11B-v3.0-Instruct": "hermes",
    "ByteDance-Seed-OSS": "generic",
    "Cohere2MoE": "generic",
    "CohereForAI-c4ai-command-r-plus-tool_use": "generic",
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use": "command-r7b",
    "GLM-4.6": "generic",
    "GLM-4.7-Flash": "generic",
    "GigaChat3-10B-A1.8B": "generic",
    "GigaChat3.1-10B-A1.8B": "generic",
    "HuggingFaceTB-SmolLM3-3B": "generic",
    "Kimi-K2-Instruct": "generic",
    "Kimi-K2-Thinking": "generic",
    "Kimi-K3": "generic",
    "LFM2-8B-A1B": "generic",
    "LFM2.5-8B-A1B": "generic",
    "LFM2.5-Instruct": "generic",
    "MiMo-VL": "hermes",
    "MiniMax-M1": "generic",
    "MiniMax-M2": "generic",
    "MiniMax-M3": "generic",
    "Mistral-Small-3.2-24B-Instruct-2506": "mistral-small",
    "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16": "qwen3-coder",
    "NVIDIA-Nemotron-Nano-v2": "generic",
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use": "hermes",
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": "hermes",
    "Qwen-QwQ-32B": "hermes",
    "Qwen-Qwen2.5-7B-Instruct": "hermes",
    "Qwen-Qwen3-0.6B": "hermes",
    "Qwen3-Coder": "qwen3-coder",
    "Qwen3.5-4B": "qwen3-coder",
    "Reka-Edge": "hermes",
    "Spark2.5": "generic",
    "StepFun3.5-Flash": "qwen3-coder",
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B": "deepseek-r1",
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": "deepseek-r1",
    "deepseek-ai-DeepSeek-V3.1": "deepseek-v3.1",
    "deepseek-ai-DeepSeek-V3.2": "generic",
    "deepseek-ai-DeepSeek-V4-Flash-0731": "generic",
    "deepseek-ai-DeepSeek-V4": "generic",
    "fireworks-ai-llama-3-firefunction-v2": "generic",
    "google-gemma-2-2b-it": "generic",
    "google-gemma-4-31B-it-interleaved": "generic",
    "google-gemma-4-31B-it": "generic",
    "ibm-granite-granite-3.3-2B-Instruct": "generic",
    "ibm-granite-granite-4.0": "hermes",
    "ibm-granite-granite-4.1": "hermes",
    "inclusionai-ling-3.0-flash": "generic",
    "llama-cpp-deepseek-r1": "deepseek-r1",
    "llama-cpp-rwkv-world": "generic",
    "llm-jp-llm-jp-4.1-8b-thinking": "generic",
    "meetkai-functionary-medium-v3.1": "generic",
    "meetkai-functionary-medium-v3.2": "functionary-v3.2",
    "meta-llama-Llama-3.1-8B-Instruct": "llama3",
    "meta-llama-Llama-3.2-3B-Instruct": "llama3",
    "meta-llama-Llama-3.3-70B-Instruct": "llama3",
    "microsoft-Phi-3.5-mini-instruct": "generic",
    "mistralai-Ministral-3-14B-Reasoning-2512": "ministral",
    "mistralai-Mistral-Nemo-Instruct-2407": "mistral-nemo",
    "moonshotai-Kimi-K2": "generic",
    "muse-glimmer": "generic",
    "openai-gpt-oss-120b": "gpt-oss",
    "openbmb-MiniCPM5-1B": "generic",
    "poolside-Laguna-S-2.1": "generic",
    "poolside-Laguna-XS-2.1": "generic",
    "poolside-Laguna-XS.2": "generic",
    "tencent-Hy3": "generic",
    "unsloth-Apriel-1.5": "generic",
    "unsloth-mistral-Devstral-Small-2507": "ministral",
    "upstage-Solar-Open-100B": "generic",
}


def test_every_template_has_an_expectation() -> None:
    assert sorted(EXPECTED) == template_names()


@pytest.mark.parametrize("name", template_names())
def test_detect(name: str, read_template: Callable[[str], str]) -> None:
    assert detect_format(read_template(name)).id == EXPECTED[name]


def test_no_template_is_generic() -> None:
    assert detect_format(None).id == "generic"
    assert detect_format("{{ messages }}").id == "generic"


def test_ids_are_unique_and_resolvable() -> None:
    ids = [f.id for f in FORMATS]
    assert len(ids) == len(set(ids))
    for fmt in FORMATS:
        assert get_format(fmt.id) is fmt and get_format(fmt) is fmt
