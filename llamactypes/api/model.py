"""llama.h: model loading, model properties and metadata, vocabulary, tokenization, chat templates."""

from __future__ import annotations

import ctypes

from ._base import ctypes_function
from .types import (
    llama_chat_message, llama_context_p, llama_context_params, llama_model_p, llama_model_params,
    llama_token, llama_vocab_p,
)

__all__ = [
    "llama_model_default_params", "llama_model_load_from_file", "llama_model_free",
    "llama_model_get_vocab", "llama_model_n_ctx_train", "llama_model_n_embd", "llama_model_n_layer",
    "llama_model_n_head", "llama_model_has_encoder", "llama_model_has_decoder",
    "llama_model_meta_val_str", "llama_model_meta_count", "llama_model_meta_key_by_index",
    "llama_model_meta_val_str_by_index", "llama_model_desc", "llama_model_size", "llama_model_n_params",
    "llama_model_chat_template", "llama_model_n_swa", "llama_model_is_recurrent", "llama_model_is_hybrid",
    "llama_model_is_diffusion", "llama_init_from_model", "llama_context_default_params",
    "llama_vocab_n_tokens", "llama_vocab_type", "llama_vocab_get_text", "llama_vocab_get_attr",
    "llama_vocab_is_eog", "llama_vocab_is_control", "llama_vocab_bos", "llama_vocab_eos",
    "llama_vocab_eot", "llama_vocab_sep", "llama_vocab_nl", "llama_vocab_pad",
    "llama_vocab_get_add_bos", "llama_vocab_get_add_eos", "llama_tokenize", "llama_token_to_piece",
    "llama_detokenize", "llama_chat_apply_template",
]


# LLAMA_API struct llama_model_params llama_model_default_params(void);
@ctypes_function("llama_model_default_params", [], llama_model_params)
def llama_model_default_params() -> llama_model_params: ...


# LLAMA_API struct llama_model * llama_model_load_from_file(const char * path_model, struct llama_model_params params);
@ctypes_function("llama_model_load_from_file", [ctypes.c_char_p, llama_model_params], llama_model_p)
def llama_model_load_from_file(path_model: bytes, params: llama_model_params, /) -> int | None: ...


# LLAMA_API void llama_model_free(struct llama_model * model);
@ctypes_function("llama_model_free", [llama_model_p], None)
def llama_model_free(model: int, /) -> None: ...


# LLAMA_API const struct llama_vocab * llama_model_get_vocab(const struct llama_model * model);
@ctypes_function("llama_model_get_vocab", [llama_model_p], llama_vocab_p)
def llama_model_get_vocab(model: int, /) -> int: ...


# LLAMA_API int32_t llama_model_n_ctx_train(const struct llama_model * model);
@ctypes_function("llama_model_n_ctx_train", [llama_model_p], ctypes.c_int32)
def llama_model_n_ctx_train(model: int, /) -> int: ...


# LLAMA_API int32_t llama_model_n_embd(const struct llama_model * model);
@ctypes_function("llama_model_n_embd", [llama_model_p], ctypes.c_int32)
def llama_model_n_embd(model: int, /) -> int: ...


# LLAMA_API int32_t llama_model_n_layer(const struct llama_model * model);
@ctypes_function("llama_model_n_layer", [llama_model_p], ctypes.c_int32)
def llama_model_n_layer(model: int, /) -> int: ...


# LLAMA_API int32_t llama_model_n_head(const struct llama_model * model);
@ctypes_function("llama_model_n_head", [llama_model_p], ctypes.c_int32)
def llama_model_n_head(model: int, /) -> int: ...


# LLAMA_API bool llama_model_has_encoder(const struct llama_model * model);
@ctypes_function("llama_model_has_encoder", [llama_model_p], ctypes.c_bool)
def llama_model_has_encoder(model: int, /) -> bool: ...


# LLAMA_API bool llama_model_has_decoder(const struct llama_model * model);
@ctypes_function("llama_model_has_decoder", [llama_model_p], ctypes.c_bool)
def llama_model_has_decoder(model: int, /) -> bool: ...


# LLAMA_API int32_t llama_model_meta_val_str(const struct llama_model * model, const char * key, char * buf, size_t buf_size);
@ctypes_function("llama_model_meta_val_str", [llama_model_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t],
                 ctypes.c_int32)
def llama_model_meta_val_str(model: int, key: bytes, buf: ctypes.Array, buf_size: int, /) -> int: ...


# LLAMA_API int32_t llama_model_meta_count(const struct llama_model * model);
@ctypes_function("llama_model_meta_count", [llama_model_p], ctypes.c_int32)
def llama_model_meta_count(model: int, /) -> int: ...


# LLAMA_API int32_t llama_model_meta_key_by_index(const struct llama_model * model, int32_t i, char * buf, size_t buf_size);
@ctypes_function("llama_model_meta_key_by_index", [llama_model_p, ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t],
                 ctypes.c_int32)
def llama_model_meta_key_by_index(model: int, i: int, buf: ctypes.Array, buf_size: int, /) -> int: ...


# LLAMA_API int32_t llama_model_meta_val_str_by_index(const struct llama_model * model, int32_t i, char * buf, size_t buf_size);
@ctypes_function("llama_model_meta_val_str_by_index",
                 [llama_model_p, ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t], ctypes.c_int32)
def llama_model_meta_val_str_by_index(model: int, i: int, buf: ctypes.Array, buf_size: int, /) -> int: ...


# LLAMA_API int32_t llama_model_desc(const struct llama_model * model, char * buf, size_t buf_size);
@ctypes_function("llama_model_desc", [llama_model_p, ctypes.c_char_p, ctypes.c_size_t], ctypes.c_int32)
def llama_model_desc(model: int, buf: ctypes.Array, buf_size: int, /) -> int: ...


# LLAMA_API uint64_t llama_model_size(const struct llama_model * model);
@ctypes_function("llama_model_size", [llama_model_p], ctypes.c_uint64)
def llama_model_size(model: int, /) -> int: ...


# LLAMA_API uint64_t llama_model_n_params(const struct llama_model * model);
@ctypes_function("llama_model_n_params", [llama_model_p], ctypes.c_uint64)
def llama_model_n_params(model: int, /) -> int: ...


# LLAMA_API const char * llama_model_chat_template(const struct llama_model * model, const char * name);
@ctypes_function("llama_model_chat_template", [llama_model_p, ctypes.c_char_p], ctypes.c_char_p)
def llama_model_chat_template(model: int, name: bytes | None, /) -> bytes | None: ...


# LLAMA_API int32_t llama_model_n_swa(const struct llama_model * model);
@ctypes_function("llama_model_n_swa", [llama_model_p], ctypes.c_int32)
def llama_model_n_swa(model: int, /) -> int: ...


# LLAMA_API bool llama_model_is_recurrent(const struct llama_model * model);
@ctypes_function("llama_model_is_recurrent", [llama_model_p], ctypes.c_bool)
def llama_model_is_recurrent(model: int, /) -> bool: ...


# LLAMA_API bool llama_model_is_hybrid(const struct llama_model * model);
@ctypes_function("llama_model_is_hybrid", [llama_model_p], ctypes.c_bool)
def llama_model_is_hybrid(model: int, /) -> bool: ...


# LLAMA_API bool llama_model_is_diffusion(const struct llama_model * model);
@ctypes_function("llama_model_is_diffusion", [llama_model_p], ctypes.c_bool)
def llama_model_is_diffusion(model: int, /) -> bool: ...


# LLAMA_API struct llama_context_params llama_context_default_params(void);
@ctypes_function("llama_context_default_params", [], llama_context_params)
def llama_context_default_params() -> llama_context_params: ...


# LLAMA_API struct llama_context * llama_init_from_model(struct llama_model * model, struct llama_context_params params);
@ctypes_function("llama_init_from_model", [llama_model_p, llama_context_params], llama_context_p)
def llama_init_from_model(model: int, params: llama_context_params, /) -> int | None: ...


# LLAMA_API int32_t llama_vocab_n_tokens(const struct llama_vocab * vocab);
@ctypes_function("llama_vocab_n_tokens", [llama_vocab_p], ctypes.c_int32)
def llama_vocab_n_tokens(vocab: int, /) -> int: ...


# LLAMA_API enum llama_vocab_type llama_vocab_type(const struct llama_vocab * vocab);
@ctypes_function("llama_vocab_type", [llama_vocab_p], ctypes.c_int)
def llama_vocab_type(vocab: int, /) -> int: ...


# LLAMA_API const char * llama_vocab_get_text(const struct llama_vocab * vocab, llama_token token);
@ctypes_function("llama_vocab_get_text", [llama_vocab_p, llama_token], ctypes.c_char_p)
def llama_vocab_get_text(vocab: int, token: int, /) -> bytes: ...


# LLAMA_API enum llama_token_attr llama_vocab_get_attr(const struct llama_vocab * vocab, llama_token token);
@ctypes_function("llama_vocab_get_attr", [llama_vocab_p, llama_token], ctypes.c_int)
def llama_vocab_get_attr(vocab: int, token: int, /) -> int: ...


# LLAMA_API bool llama_vocab_is_eog(const struct llama_vocab * vocab, llama_token token);
@ctypes_function("llama_vocab_is_eog", [llama_vocab_p, llama_token], ctypes.c_bool)
def llama_vocab_is_eog(vocab: int, token: int, /) -> bool: ...


# LLAMA_API bool llama_vocab_is_control(const struct llama_vocab * vocab, llama_token token);
@ctypes_function("llama_vocab_is_control", [llama_vocab_p, llama_token], ctypes.c_bool)
def llama_vocab_is_control(vocab: int, token: int, /) -> bool: ...


# LLAMA_API llama_token llama_vocab_bos(const struct llama_vocab * vocab);
@ctypes_function("llama_vocab_bos", [llama_vocab_p], llama_token)
def llama_vocab_bos(vocab: int, /) -> int: ...


# LLAMA_API llama_token llama_vocab_eos(const struct llama_vocab * vocab);
@ctypes_function("llama_vocab_eos", [llama_vocab_p], llama_token)
def llama_vocab_eos(vocab: int, /) -> int: ...


# LLAMA_API llama_token llama_vocab_eot(const struct llama_vocab * vocab);
@ctypes_function("llama_vocab_eot", [llama_vocab_p], llama_token)
def llama_vocab_eot(vocab: int, /) -> int: ...


# LLAMA_API llama_token llama_vocab_sep(const struct llama_vocab * vocab);
@ctypes_function("llama_vocab_sep", [llama_vocab_p], llama_token)
def llama_vocab_sep(vocab: int, /) -> int: ...


# LLAMA_API llama_token llama_vocab_nl (const struct llama_vocab * vocab);
@ctypes_function("llama_vocab_nl", [llama_vocab_p], llama_token)
def llama_vocab_nl(vocab: int, /) -> int: ...


# LLAMA_API llama_token llama_vocab_pad(const struct llama_vocab * vocab);
@ctypes_function("llama_vocab_pad", [llama_vocab_p], llama_token)
def llama_vocab_pad(vocab: int, /) -> int: ...


# LLAMA_API bool llama_vocab_get_add_bos(const struct llama_vocab * vocab);
@ctypes_function("llama_vocab_get_add_bos", [llama_vocab_p], ctypes.c_bool)
def llama_vocab_get_add_bos(vocab: int, /) -> bool: ...


# LLAMA_API bool llama_vocab_get_add_eos(const struct llama_vocab * vocab);
@ctypes_function("llama_vocab_get_add_eos", [llama_vocab_p], ctypes.c_bool)
def llama_vocab_get_add_eos(vocab: int, /) -> bool: ...


# LLAMA_API int32_t llama_tokenize(const struct llama_vocab * vocab, const char * text, int32_t text_len,
#     llama_token * tokens, int32_t n_tokens_max, bool add_special, bool parse_special);
@ctypes_function("llama_tokenize", [llama_vocab_p, ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(llama_token),
                                    ctypes.c_int32, ctypes.c_bool, ctypes.c_bool], ctypes.c_int32)
def llama_tokenize(vocab: int, text: bytes, text_len: int, tokens: ctypes.Array, n_tokens_max: int,
                   add_special: bool, parse_special: bool, /) -> int: ...


# LLAMA_API int32_t llama_token_to_piece(const struct llama_vocab * vocab, llama_token token, char * buf,
#     int32_t length, int32_t lstrip, bool special);
@ctypes_function("llama_token_to_piece", [llama_vocab_p, llama_token, ctypes.c_char_p, ctypes.c_int32,
                                          ctypes.c_int32, ctypes.c_bool], ctypes.c_int32)
def llama_token_to_piece(vocab: int, token: int, buf: ctypes.Array, length: int, lstrip: int,
                         special: bool, /) -> int: ...


# LLAMA_API int32_t llama_detokenize(const struct llama_vocab * vocab, const llama_token * tokens, int32_t n_tokens,
#     char * text, int32_t text_len_max, bool remove_special, bool unparse_special);
@ctypes_function("llama_detokenize", [llama_vocab_p, ctypes.POINTER(llama_token), ctypes.c_int32, ctypes.c_char_p,
                                      ctypes.c_int32, ctypes.c_bool, ctypes.c_bool], ctypes.c_int32)
def llama_detokenize(vocab: int, tokens: ctypes.Array, n_tokens: int, text: ctypes.Array, text_len_max: int,
                     remove_special: bool, unparse_special: bool, /) -> int: ...


# LLAMA_API int32_t llama_chat_apply_template(const char * tmpl, const struct llama_chat_message * chat,
#     size_t n_msg, bool add_ass, char * buf, int32_t length);
@ctypes_function("llama_chat_apply_template", [ctypes.c_char_p, ctypes.POINTER(llama_chat_message), ctypes.c_size_t,
                                               ctypes.c_bool, ctypes.c_char_p, ctypes.c_int32], ctypes.c_int32)
def llama_chat_apply_template(tmpl: bytes | None, chat: ctypes.Array, n_msg: int, add_ass: bool,
                              buf: ctypes.Array, length: int, /) -> int: ...
