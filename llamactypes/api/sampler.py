"""llama.h: the built-in sampler chain. llamactypes samples in numpy; these serve as the
reference in tests and benchmarks (greedy equality, grammar oracle, speed ratios)."""

from __future__ import annotations

import ctypes

from ._base import ctypes_function
from .types import (
    llama_context_p, llama_logit_bias, llama_sampler_chain_params, llama_sampler_p, llama_token,
    llama_token_data_array, llama_vocab_p,
)

__all__ = [
    "llama_sampler_chain_default_params", "llama_sampler_chain_init", "llama_sampler_chain_add",
    "llama_sampler_free", "llama_sampler_sample", "llama_sampler_accept", "llama_sampler_apply",
    "llama_sampler_reset", "llama_sampler_init_greedy", "llama_sampler_init_dist", "llama_sampler_init_top_k",
    "llama_sampler_init_top_p", "llama_sampler_init_min_p", "llama_sampler_init_temp",
    "llama_sampler_init_penalties", "llama_sampler_init_logit_bias", "llama_sampler_init_grammar",
    "llama_sampler_init_grammar_lazy_patterns",
]


# LLAMA_API struct llama_sampler_chain_params llama_sampler_chain_default_params(void);
@ctypes_function("llama_sampler_chain_default_params", [], llama_sampler_chain_params)
def llama_sampler_chain_default_params() -> llama_sampler_chain_params: ...


# LLAMA_API struct llama_sampler * llama_sampler_chain_init(struct llama_sampler_chain_params params);
@ctypes_function("llama_sampler_chain_init", [llama_sampler_chain_params], llama_sampler_p)
def llama_sampler_chain_init(params: llama_sampler_chain_params, /) -> int: ...


# LLAMA_API void llama_sampler_chain_add(struct llama_sampler * chain, struct llama_sampler * smpl);
@ctypes_function("llama_sampler_chain_add", [llama_sampler_p, llama_sampler_p], None)
def llama_sampler_chain_add(chain: int, smpl: int, /) -> None: ...


# LLAMA_API void llama_sampler_free(struct llama_sampler * smpl);
@ctypes_function("llama_sampler_free", [llama_sampler_p], None)
def llama_sampler_free(smpl: int, /) -> None: ...


# LLAMA_API llama_token llama_sampler_sample(struct llama_sampler * smpl, struct llama_context * ctx, int32_t idx);
@ctypes_function("llama_sampler_sample", [llama_sampler_p, llama_context_p, ctypes.c_int32], llama_token)
def llama_sampler_sample(smpl: int, ctx: int, idx: int, /) -> int: ...


# LLAMA_API void llama_sampler_accept(struct llama_sampler * smpl, llama_token token);
@ctypes_function("llama_sampler_accept", [llama_sampler_p, llama_token], None)
def llama_sampler_accept(smpl: int, token: int, /) -> None: ...


# LLAMA_API void llama_sampler_apply(struct llama_sampler * smpl, llama_token_data_array * cur_p);
@ctypes_function("llama_sampler_apply", [llama_sampler_p, ctypes.POINTER(llama_token_data_array)], None)
def llama_sampler_apply(smpl: int, cur_p: llama_token_data_array, /) -> None: ...


# LLAMA_API void llama_sampler_reset(struct llama_sampler * smpl);
@ctypes_function("llama_sampler_reset", [llama_sampler_p], None)
def llama_sampler_reset(smpl: int, /) -> None: ...


# LLAMA_API struct llama_sampler * llama_sampler_init_greedy(void);
@ctypes_function("llama_sampler_init_greedy", [], llama_sampler_p)
def llama_sampler_init_greedy() -> int: ...


# LLAMA_API struct llama_sampler * llama_sampler_init_dist(uint32_t seed);
@ctypes_function("llama_sampler_init_dist", [ctypes.c_uint32], llama_sampler_p)
def llama_sampler_init_dist(seed: int, /) -> int: ...


# LLAMA_API struct llama_sampler * llama_sampler_init_top_k(int32_t k);
@ctypes_function("llama_sampler_init_top_k", [ctypes.c_int32], llama_sampler_p)
def llama_sampler_init_top_k(k: int, /) -> int: ...


# LLAMA_API struct llama_sampler * llama_sampler_init_top_p(float p, size_t min_keep);
@ctypes_function("llama_sampler_init_top_p", [ctypes.c_float, ctypes.c_size_t], llama_sampler_p)
def llama_sampler_init_top_p(p: float, min_keep: int, /) -> int: ...


# LLAMA_API struct llama_sampler * llama_sampler_init_min_p(float p, size_t min_keep);
@ctypes_function("llama_sampler_init_min_p", [ctypes.c_float, ctypes.c_size_t], llama_sampler_p)
def llama_sampler_init_min_p(p: float, min_keep: int, /) -> int: ...


# LLAMA_API struct llama_sampler * llama_sampler_init_temp(float t);
@ctypes_function("llama_sampler_init_temp", [ctypes.c_float], llama_sampler_p)
def llama_sampler_init_temp(t: float, /) -> int: ...


# LLAMA_API struct llama_sampler * llama_sampler_init_penalties(int32_t n_vocab, int32_t penalty_last_n,
#     float penalty_repeat, float penalty_freq, float penalty_present);
@ctypes_function("llama_sampler_init_penalties",
                 [ctypes.c_int32, ctypes.c_int32, ctypes.c_float, ctypes.c_float, ctypes.c_float], llama_sampler_p)
def llama_sampler_init_penalties(n_vocab: int, penalty_last_n: int, penalty_repeat: float, penalty_freq: float,
                                 penalty_present: float, /) -> int: ...


# LLAMA_API struct llama_sampler * llama_sampler_init_logit_bias(int32_t n_vocab, int32_t n_logit_bias,
#     const llama_logit_bias * logit_bias);
@ctypes_function("llama_sampler_init_logit_bias", [ctypes.c_int32, ctypes.c_int32, ctypes.POINTER(llama_logit_bias)],
                 llama_sampler_p)
def llama_sampler_init_logit_bias(n_vocab: int, n_logit_bias: int, logit_bias: ctypes.Array, /) -> int: ...


# LLAMA_API struct llama_sampler * llama_sampler_init_grammar(const struct llama_vocab * vocab,
#     const char * grammar_str, const char * grammar_root);
@ctypes_function("llama_sampler_init_grammar", [llama_vocab_p, ctypes.c_char_p, ctypes.c_char_p], llama_sampler_p)
def llama_sampler_init_grammar(vocab: int, grammar_str: bytes, grammar_root: bytes, /) -> int | None: ...


# LLAMA_API struct llama_sampler * llama_sampler_init_grammar_lazy_patterns(const struct llama_vocab * vocab,
#     const char * grammar_str, const char * grammar_root, const char ** trigger_patterns,
#     size_t num_trigger_patterns, const llama_token * trigger_tokens, size_t num_trigger_tokens);
@ctypes_function("llama_sampler_init_grammar_lazy_patterns",
                 [llama_vocab_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t,
                  ctypes.POINTER(llama_token), ctypes.c_size_t], llama_sampler_p)
def llama_sampler_init_grammar_lazy_patterns(vocab: int, grammar_str: bytes, grammar_root: bytes,
                                             trigger_patterns: ctypes.Array, num_trigger_patterns: int,
                                             trigger_tokens: ctypes.Array, num_trigger_tokens: int, /) -> int | None: ...
