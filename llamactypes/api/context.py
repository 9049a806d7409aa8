"""llama.h: context lifecycle, batches and decoding, logits and embeddings, memory (KV), state."""

from __future__ import annotations

import ctypes

from ._base import ctypes_function
from .types import (
    ggml_abort_callback, llama_batch, llama_context_p, llama_memory_t, llama_model_p, llama_pos,
    llama_perf_context_data, llama_seq_id, llama_token,
)

__all__ = [
    "llama_free", "llama_n_ctx", "llama_n_batch", "llama_n_ubatch", "llama_n_seq_max", "llama_get_model",
    "llama_get_memory", "llama_pooling_type", "llama_batch_get_one", "llama_batch_init", "llama_batch_free",
    "llama_encode", "llama_decode", "llama_set_n_threads", "llama_n_threads", "llama_set_embeddings",
    "llama_set_causal_attn", "llama_set_abort_callback", "llama_synchronize", "llama_get_logits",
    "llama_get_logits_ith", "llama_get_embeddings", "llama_get_embeddings_ith", "llama_get_embeddings_seq",
    "llama_memory_clear", "llama_memory_seq_rm", "llama_memory_seq_cp", "llama_memory_seq_keep",
    "llama_memory_seq_pos_min", "llama_memory_seq_pos_max", "llama_state_get_size", "llama_state_get_data",
    "llama_state_set_data", "llama_state_save_file", "llama_state_load_file", "llama_perf_context",
    "llama_perf_context_reset", "llama_memory_can_shift", "llama_state_seq_get_size", "llama_state_seq_get_data",
    "llama_state_seq_set_data", "llama_state_seq_get_size_ext", "llama_state_seq_get_data_ext",
    "llama_state_seq_set_data_ext", "llama_state_seq_flags", "LLAMA_STATE_SEQ_FLAGS_NONE",
    "LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY", "LLAMA_STATE_SEQ_FLAGS_ON_DEVICE",
]

# typedef uint32_t llama_state_seq_flags;
llama_state_seq_flags = ctypes.c_uint32
# #define LLAMA_STATE_SEQ_FLAGS_NONE 0
LLAMA_STATE_SEQ_FLAGS_NONE = 0
# #define LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY 1  (only the parts that cannot be cut: SWA KV, recurrent state)
LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY = 1
# #define LLAMA_STATE_SEQ_FLAGS_ON_DEVICE 2
LLAMA_STATE_SEQ_FLAGS_ON_DEVICE = 2


# LLAMA_API void llama_free(struct llama_context * ctx);
@ctypes_function("llama_free", [llama_context_p], None)
def llama_free(ctx: int, /) -> None: ...


# LLAMA_API uint32_t llama_n_ctx(const struct llama_context * ctx);
@ctypes_function("llama_n_ctx", [llama_context_p], ctypes.c_uint32)
def llama_n_ctx(ctx: int, /) -> int: ...


# LLAMA_API uint32_t llama_n_batch(const struct llama_context * ctx);
@ctypes_function("llama_n_batch", [llama_context_p], ctypes.c_uint32)
def llama_n_batch(ctx: int, /) -> int: ...


# LLAMA_API uint32_t llama_n_ubatch(const struct llama_context * ctx);
@ctypes_function("llama_n_ubatch", [llama_context_p], ctypes.c_uint32)
def llama_n_ubatch(ctx: int, /) -> int: ...


# LLAMA_API uint32_t llama_n_seq_max(const struct llama_context * ctx);
@ctypes_function("llama_n_seq_max", [llama_context_p], ctypes.c_uint32)
def llama_n_seq_max(ctx: int, /) -> int: ...


# LLAMA_API const struct llama_model * llama_get_model(const struct llama_context * ctx);
@ctypes_function("llama_get_model", [llama_context_p], llama_model_p)
def llama_get_model(ctx: int, /) -> int: ...


# LLAMA_API llama_memory_t llama_get_memory(const struct llama_context * ctx);
@ctypes_function("llama_get_memory", [llama_context_p], llama_memory_t)
def llama_get_memory(ctx: int, /) -> int: ...


# LLAMA_API enum llama_pooling_type llama_pooling_type(const struct llama_context * ctx);
@ctypes_function("llama_pooling_type", [llama_context_p], ctypes.c_int)
def llama_pooling_type(ctx: int, /) -> int: ...


# LLAMA_API struct llama_batch llama_batch_get_one(llama_token * tokens, int32_t n_tokens);
@ctypes_function("llama_batch_get_one", [ctypes.POINTER(llama_token), ctypes.c_int32], llama_batch)
def llama_batch_get_one(tokens: ctypes.Array, n_tokens: int, /) -> llama_batch: ...


# LLAMA_API struct llama_batch llama_batch_init(int32_t n_tokens, int32_t embd, int32_t n_seq_max);
@ctypes_function("llama_batch_init", [ctypes.c_int32, ctypes.c_int32, ctypes.c_int32], llama_batch)
def llama_batch_init(n_tokens: int, embd: int, n_seq_max: int, /) -> llama_batch: ...


# LLAMA_API void llama_batch_free(struct llama_batch batch);
@ctypes_function("llama_batch_free", [llama_batch], None)
def llama_batch_free(batch: llama_batch, /) -> None: ...


# LLAMA_API int32_t llama_encode(struct llama_context * ctx, struct llama_batch batch);
@ctypes_function("llama_encode", [llama_context_p, llama_batch], ctypes.c_int32)
def llama_encode(ctx: int, batch: llama_batch, /) -> int: ...


# LLAMA_API int32_t llama_decode(struct llama_context * ctx, struct llama_batch batch);
@ctypes_function("llama_decode", [llama_context_p, llama_batch], ctypes.c_int32)
def llama_decode(ctx: int, batch: llama_batch, /) -> int: ...


# LLAMA_API void llama_set_n_threads(struct llama_context * ctx, int32_t n_threads, int32_t n_threads_batch);
@ctypes_function("llama_set_n_threads", [llama_context_p, ctypes.c_int32, ctypes.c_int32], None)
def llama_set_n_threads(ctx: int, n_threads: int, n_threads_batch: int, /) -> None: ...


# LLAMA_API int32_t llama_n_threads(struct llama_context * ctx);
@ctypes_function("llama_n_threads", [llama_context_p], ctypes.c_int32)
def llama_n_threads(ctx: int, /) -> int: ...


# LLAMA_API void llama_set_embeddings(struct llama_context * ctx, bool embeddings);
@ctypes_function("llama_set_embeddings", [llama_context_p, ctypes.c_bool], None)
def llama_set_embeddings(ctx: int, embeddings: bool, /) -> None: ...


# LLAMA_API void llama_set_causal_attn(struct llama_context * ctx, bool causal_attn);
@ctypes_function("llama_set_causal_attn", [llama_context_p, ctypes.c_bool], None)
def llama_set_causal_attn(ctx: int, causal_attn: bool, /) -> None: ...


# LLAMA_API void llama_set_abort_callback(struct llama_context * ctx, ggml_abort_callback abort_callback, void * abort_callback_data);
@ctypes_function("llama_set_abort_callback", [llama_context_p, ggml_abort_callback, ctypes.c_void_p], None)
def llama_set_abort_callback(ctx: int, abort_callback, abort_callback_data, /) -> None: ...  # type: ignore[no-untyped-def]


# LLAMA_API void llama_synchronize(struct llama_context * ctx);
@ctypes_function("llama_synchronize", [llama_context_p], None)
def llama_synchronize(ctx: int, /) -> None: ...


# LLAMA_API float * llama_get_logits(struct llama_context * ctx);
@ctypes_function("llama_get_logits", [llama_context_p], ctypes.POINTER(ctypes.c_float))
def llama_get_logits(ctx: int, /): ...  # type: ignore[no-untyped-def]


# LLAMA_API float * llama_get_logits_ith(struct llama_context * ctx, int32_t i);
@ctypes_function("llama_get_logits_ith", [llama_context_p, ctypes.c_int32], ctypes.c_void_p)
def llama_get_logits_ith(ctx: int, i: int, /) -> int | None: ...


# LLAMA_API float * llama_get_embeddings(struct llama_context * ctx);
@ctypes_function("llama_get_embeddings", [llama_context_p], ctypes.c_void_p)
def llama_get_embeddings(ctx: int, /) -> int | None: ...


# LLAMA_API float * llama_get_embeddings_ith(struct llama_context * ctx, int32_t i);
@ctypes_function("llama_get_embeddings_ith", [llama_context_p, ctypes.c_int32], ctypes.c_void_p)
def llama_get_embeddings_ith(ctx: int, i: int, /) -> int | None: ...


# LLAMA_API float * llama_get_embeddings_seq(struct llama_context * ctx, llama_seq_id seq_id);
@ctypes_function("llama_get_embeddings_seq", [llama_context_p, llama_seq_id], ctypes.c_void_p)
def llama_get_embeddings_seq(ctx: int, seq_id: int, /) -> int | None: ...


# LLAMA_API void llama_memory_clear(llama_memory_t mem, bool data);
@ctypes_function("llama_memory_clear", [llama_memory_t, ctypes.c_bool], None)
def llama_memory_clear(mem: int, data: bool, /) -> None: ...


# LLAMA_API bool llama_memory_seq_rm(llama_memory_t mem, llama_seq_id seq_id, llama_pos p0, llama_pos p1);
@ctypes_function("llama_memory_seq_rm", [llama_memory_t, llama_seq_id, llama_pos, llama_pos], ctypes.c_bool)
def llama_memory_seq_rm(mem: int, seq_id: int, p0: int, p1: int, /) -> bool: ...


# LLAMA_API void llama_memory_seq_cp(llama_memory_t mem, llama_seq_id seq_id_src, llama_seq_id seq_id_dst, llama_pos p0, llama_pos p1);
@ctypes_function("llama_memory_seq_cp", [llama_memory_t, llama_seq_id, llama_seq_id, llama_pos, llama_pos], None)
def llama_memory_seq_cp(mem: int, seq_id_src: int, seq_id_dst: int, p0: int, p1: int, /) -> None: ...


# LLAMA_API void llama_memory_seq_keep(llama_memory_t mem, llama_seq_id seq_id);
@ctypes_function("llama_memory_seq_keep", [llama_memory_t, llama_seq_id], None)
def llama_memory_seq_keep(mem: int, seq_id: int, /) -> None: ...


# LLAMA_API llama_pos llama_memory_seq_pos_min(llama_memory_t mem, llama_seq_id seq_id);
@ctypes_function("llama_memory_seq_pos_min", [llama_memory_t, llama_seq_id], llama_pos)
def llama_memory_seq_pos_min(mem: int, seq_id: int, /) -> int: ...


# LLAMA_API llama_pos llama_memory_seq_pos_max(llama_memory_t mem, llama_seq_id seq_id);
@ctypes_function("llama_memory_seq_pos_max", [llama_memory_t, llama_seq_id], llama_pos)
def llama_memory_seq_pos_max(mem: int, seq_id: int, /) -> int: ...


# LLAMA_API bool llama_memory_can_shift(llama_memory_t mem);
@ctypes_function("llama_memory_can_shift", [llama_memory_t], ctypes.c_bool)
def llama_memory_can_shift(mem: int, /) -> bool: ...


# LLAMA_API size_t llama_state_get_size(struct llama_context * ctx);
@ctypes_function("llama_state_get_size", [llama_context_p], ctypes.c_size_t)
def llama_state_get_size(ctx: int, /) -> int: ...


# LLAMA_API size_t llama_state_get_data(struct llama_context * ctx, uint8_t * dst, size_t size);
@ctypes_function("llama_state_get_data", [llama_context_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t],
                 ctypes.c_size_t)
def llama_state_get_data(ctx: int, dst: ctypes.Array, size: int, /) -> int: ...


# LLAMA_API size_t llama_state_set_data(struct llama_context * ctx, const uint8_t * src, size_t size);
@ctypes_function("llama_state_set_data", [llama_context_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t],
                 ctypes.c_size_t)
def llama_state_set_data(ctx: int, src: ctypes.Array, size: int, /) -> int: ...


# LLAMA_API bool llama_state_save_file(struct llama_context * ctx, const char * path_session,
#     const llama_token * tokens, size_t n_token_count);
@ctypes_function("llama_state_save_file", [llama_context_p, ctypes.c_char_p, ctypes.POINTER(llama_token),
                                           ctypes.c_size_t], ctypes.c_bool)
def llama_state_save_file(ctx: int, path_session: bytes, tokens: ctypes.Array, n_token_count: int, /) -> bool: ...


# LLAMA_API bool llama_state_load_file(struct llama_context * ctx, const char * path_session,
#     llama_token * tokens_out, size_t n_token_capacity, size_t * n_token_count_out);
@ctypes_function("llama_state_load_file", [llama_context_p, ctypes.c_char_p, ctypes.POINTER(llama_token),
                                           ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)], ctypes.c_bool)
def llama_state_load_file(ctx: int, path_session: bytes, tokens_out: ctypes.Array, n_token_capacity: int,
                          n_token_count_out: ctypes.c_size_t, /) -> bool: ...


# LLAMA_API size_t llama_state_seq_get_size(struct llama_context * ctx, llama_seq_id seq_id);
@ctypes_function("llama_state_seq_get_size", [llama_context_p, llama_seq_id], ctypes.c_size_t)
def llama_state_seq_get_size(ctx: int, seq_id: int, /) -> int: ...


# LLAMA_API size_t llama_state_seq_get_data(struct llama_context * ctx, uint8_t * dst, size_t size,
#     llama_seq_id seq_id);
@ctypes_function("llama_state_seq_get_data", [llama_context_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t,
                                              llama_seq_id], ctypes.c_size_t)
def llama_state_seq_get_data(ctx: int, dst: ctypes.Array, size: int, seq_id: int, /) -> int: ...


# LLAMA_API size_t llama_state_seq_set_data(struct llama_context * ctx, const uint8_t * src, size_t size,
#     llama_seq_id dest_seq_id);
@ctypes_function("llama_state_seq_set_data", [llama_context_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t,
                                              llama_seq_id], ctypes.c_size_t)
def llama_state_seq_set_data(ctx: int, src: ctypes.Array, size: int, dest_seq_id: int, /) -> int: ...


# LLAMA_API size_t llama_state_seq_get_size_ext(struct llama_context * ctx, llama_seq_id seq_id,
#     llama_state_seq_flags flags);
@ctypes_function("llama_state_seq_get_size_ext", [llama_context_p, llama_seq_id, llama_state_seq_flags],
                 ctypes.c_size_t)
def llama_state_seq_get_size_ext(ctx: int, seq_id: int, flags: int, /) -> int: ...


# LLAMA_API size_t llama_state_seq_get_data_ext(struct llama_context * ctx, uint8_t * dst, size_t size,
#     llama_seq_id seq_id, llama_state_seq_flags flags);
@ctypes_function("llama_state_seq_get_data_ext", [llama_context_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t,
                                                  llama_seq_id, llama_state_seq_flags], ctypes.c_size_t)
def llama_state_seq_get_data_ext(ctx: int, dst: ctypes.Array, size: int, seq_id: int, flags: int, /) -> int: ...


# LLAMA_API size_t llama_state_seq_set_data_ext(struct llama_context * ctx, const uint8_t * src, size_t size,
#     llama_seq_id dest_seq_id, llama_state_seq_flags flags);
@ctypes_function("llama_state_seq_set_data_ext", [llama_context_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t,
                                                  llama_seq_id, llama_state_seq_flags], ctypes.c_size_t)
def llama_state_seq_set_data_ext(ctx: int, src: ctypes.Array, size: int, dest_seq_id: int, flags: int, /) -> int: ...


# LLAMA_API struct llama_perf_context_data llama_perf_context(const struct llama_context * ctx);
@ctypes_function("llama_perf_context", [llama_context_p], llama_perf_context_data)
def llama_perf_context(ctx: int, /) -> llama_perf_context_data: ...


# LLAMA_API void llama_perf_context_reset(struct llama_context * ctx);
@ctypes_function("llama_perf_context_reset", [llama_context_p], None)
def llama_perf_context_reset(ctx: int, /) -> None: ...
