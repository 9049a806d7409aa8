"""ctypes mirrors of the types in llama.h (b11434): typedefs, enums, callbacks, structs.

Field order and types follow the header exactly; `tests/native/test_layouts.py`
compiles the real header and compares every size and offset.
"""

from __future__ import annotations

import ctypes

__all__ = [
    "llama_token", "llama_pos", "llama_seq_id", "llama_memory_t",
    "llama_model_p", "llama_context_p", "llama_vocab_p", "llama_sampler_p",
    "llama_progress_callback", "ggml_log_callback", "ggml_abort_callback",
    "llama_token_data", "llama_token_data_array", "llama_batch",
    "llama_model_kv_override", "llama_model_params", "llama_sampler_seq_config",
    "llama_context_params", "llama_logit_bias", "llama_sampler_chain_params",
    "llama_chat_message", "llama_perf_context_data", "llama_perf_sampler_data",
    "STRUCTS", "LLAMA_DEFAULT_SEED", "LLAMA_TOKEN_NULL",
    "LLAMA_POOLING_TYPE_UNSPECIFIED", "LLAMA_POOLING_TYPE_NONE", "LLAMA_POOLING_TYPE_MEAN",
    "LLAMA_POOLING_TYPE_CLS", "LLAMA_POOLING_TYPE_LAST", "LLAMA_POOLING_TYPE_RANK",
    "LLAMA_FLASH_ATTN_TYPE_AUTO", "LLAMA_FLASH_ATTN_TYPE_DISABLED", "LLAMA_FLASH_ATTN_TYPE_ENABLED",
    "LLAMA_TOKEN_ATTR_CONTROL", "LLAMA_TOKEN_ATTR_USER_DEFINED", "LLAMA_TOKEN_ATTR_BYTE",
    "GGML_LOG_LEVEL_NONE", "GGML_LOG_LEVEL_DEBUG", "GGML_LOG_LEVEL_INFO", "GGML_LOG_LEVEL_WARN",
    "GGML_LOG_LEVEL_ERROR", "GGML_LOG_LEVEL_CONT",
]

# #define LLAMA_DEFAULT_SEED 0xFFFFFFFF
LLAMA_DEFAULT_SEED = 0xFFFFFFFF
# #define LLAMA_TOKEN_NULL -1
LLAMA_TOKEN_NULL = -1

# typedef int32_t llama_pos; typedef int32_t llama_token; typedef int32_t llama_seq_id;
llama_pos = ctypes.c_int32
llama_token = ctypes.c_int32
llama_seq_id = ctypes.c_int32

# Opaque handles: struct llama_model *, llama_context *, llama_vocab *, llama_sampler *,
# typedef struct llama_memory_i * llama_memory_t;
llama_model_p = ctypes.c_void_p
llama_context_p = ctypes.c_void_p
llama_vocab_p = ctypes.c_void_p
llama_sampler_p = ctypes.c_void_p
llama_memory_t = ctypes.c_void_p

# enum llama_pooling_type
LLAMA_POOLING_TYPE_UNSPECIFIED = -1
LLAMA_POOLING_TYPE_NONE = 0
LLAMA_POOLING_TYPE_MEAN = 1
LLAMA_POOLING_TYPE_CLS = 2
LLAMA_POOLING_TYPE_LAST = 3
LLAMA_POOLING_TYPE_RANK = 4

# enum llama_flash_attn_type
LLAMA_FLASH_ATTN_TYPE_AUTO = -1
LLAMA_FLASH_ATTN_TYPE_DISABLED = 0
LLAMA_FLASH_ATTN_TYPE_ENABLED = 1

# enum llama_token_attr (bits)
LLAMA_TOKEN_ATTR_CONTROL = 1 << 3
LLAMA_TOKEN_ATTR_USER_DEFINED = 1 << 4
LLAMA_TOKEN_ATTR_BYTE = 1 << 5

# enum ggml_log_level (ggml.h)
GGML_LOG_LEVEL_NONE = 0
GGML_LOG_LEVEL_DEBUG = 1
GGML_LOG_LEVEL_INFO = 2
GGML_LOG_LEVEL_WARN = 3
GGML_LOG_LEVEL_ERROR = 4
GGML_LOG_LEVEL_CONT = 5

# typedef bool (*llama_progress_callback)(float progress, void * user_data);
llama_progress_callback = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_float, ctypes.c_void_p)
# typedef void (*ggml_log_callback)(enum ggml_log_level level, const char * text, void * user_data);
ggml_log_callback = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
# typedef bool (*ggml_abort_callback)(void * data);
ggml_abort_callback = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p)


# typedef struct llama_token_data { llama_token id; float logit; float p; } llama_token_data;
class llama_token_data(ctypes.Structure):
    _fields_ = [("id", llama_token), ("logit", ctypes.c_float), ("p", ctypes.c_float)]


# typedef struct llama_token_data_array {
#     llama_token_data * data; size_t size; int64_t selected; bool sorted; } llama_token_data_array;
class llama_token_data_array(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.POINTER(llama_token_data)),
        ("size", ctypes.c_size_t),
        ("selected", ctypes.c_int64),
        ("sorted", ctypes.c_bool),
    ]


# typedef struct llama_batch { int32_t n_tokens; llama_token * token; float * embd; llama_pos * pos;
#     int32_t * n_seq_id; llama_seq_id ** seq_id; int8_t * logits; } llama_batch;
class llama_batch(ctypes.Structure):
    _fields_ = [
        ("n_tokens", ctypes.c_int32),
        ("token", ctypes.POINTER(llama_token)),
        ("embd", ctypes.POINTER(ctypes.c_float)),
        ("pos", ctypes.POINTER(llama_pos)),
        ("n_seq_id", ctypes.POINTER(ctypes.c_int32)),
        ("seq_id", ctypes.POINTER(ctypes.POINTER(llama_seq_id))),
        ("logits", ctypes.POINTER(ctypes.c_int8)),
    ]


class _llama_model_kv_override_value(ctypes.Union):
    _fields_ = [
        ("val_i64", ctypes.c_int64),
        ("val_f64", ctypes.c_double),
        ("val_bool", ctypes.c_bool),
        ("val_str", ctypes.c_char * 128),
    ]


# struct llama_model_kv_override { enum llama_model_kv_override_type tag; char key[128];
#     union { int64_t val_i64; double val_f64; bool val_bool; char val_str[128]; }; };
class llama_model_kv_override(ctypes.Structure):
    _anonymous_ = ("value",)
    _fields_ = [
        ("tag", ctypes.c_int),
        ("key", ctypes.c_char * 128),
        ("value", _llama_model_kv_override_value),
    ]


# struct llama_model_params { ... } (see llama.h for field comments)
class llama_model_params(ctypes.Structure):
    _fields_ = [
        ("devices", ctypes.c_void_p),  # ggml_backend_dev_t *
        ("tensor_buft_overrides", ctypes.c_void_p),  # const struct llama_model_tensor_buft_override *
        ("n_gpu_layers", ctypes.c_int32),
        ("split_mode", ctypes.c_int),  # enum llama_split_mode
        ("load_mode", ctypes.c_int),  # enum llama_load_mode
        ("lazy_mode", ctypes.c_int),  # enum llama_lazy_mode
        ("main_gpu", ctypes.c_int32),
        ("tensor_split", ctypes.POINTER(ctypes.c_float)),
        ("progress_callback", llama_progress_callback),
        ("progress_callback_user_data", ctypes.c_void_p),
        ("kv_overrides", ctypes.POINTER(llama_model_kv_override)),
        ("vocab_only", ctypes.c_bool),
        ("check_tensors", ctypes.c_bool),
        ("use_extra_bufts", ctypes.c_bool),
        ("no_host", ctypes.c_bool),
        ("no_alloc", ctypes.c_bool),
        ("load_mtp", ctypes.c_bool),
    ]


# struct llama_sampler_seq_config { llama_seq_id seq_id; struct llama_sampler * sampler; };
class llama_sampler_seq_config(ctypes.Structure):
    _fields_ = [("seq_id", llama_seq_id), ("sampler", llama_sampler_p)]


# struct llama_context_params { ... } (see llama.h for field comments)
class llama_context_params(ctypes.Structure):
    _fields_ = [
        ("n_ctx", ctypes.c_uint32),
        ("n_batch", ctypes.c_uint32),
        ("n_ubatch", ctypes.c_uint32),
        ("n_seq_max", ctypes.c_uint32),
        ("n_rs_seq", ctypes.c_uint32),
        ("n_outputs_max", ctypes.c_uint32),
        ("n_outputs_max_per_seq", ctypes.c_uint32),
        ("n_threads", ctypes.c_int32),
        ("n_threads_batch", ctypes.c_int32),
        ("ctx_type", ctypes.c_int),  # enum llama_context_type
        ("rope_scaling_type", ctypes.c_int),  # enum llama_rope_scaling_type
        ("pooling_type", ctypes.c_int),  # enum llama_pooling_type
        ("attention_type", ctypes.c_int),  # enum llama_attention_type
        ("flash_attn_type", ctypes.c_int),  # enum llama_flash_attn_type
        ("rope_freq_base", ctypes.c_float),
        ("rope_freq_scale", ctypes.c_float),
        ("yarn_ext_factor", ctypes.c_float),
        ("yarn_attn_factor", ctypes.c_float),
        ("yarn_beta_fast", ctypes.c_float),
        ("yarn_beta_slow", ctypes.c_float),
        ("yarn_orig_ctx", ctypes.c_uint32),
        ("defrag_thold", ctypes.c_float),
        ("cb_eval", ctypes.c_void_p),  # ggml_backend_sched_eval_callback
        ("cb_eval_user_data", ctypes.c_void_p),
        ("type_k", ctypes.c_int),  # enum ggml_type
        ("type_v", ctypes.c_int),  # enum ggml_type
        ("abort_callback", ggml_abort_callback),
        ("abort_callback_data", ctypes.c_void_p),
        ("embeddings", ctypes.c_bool),
        ("offload_kqv", ctypes.c_bool),
        ("no_perf", ctypes.c_bool),
        ("op_offload", ctypes.c_bool),
        ("swa_full", ctypes.c_bool),
        ("kv_unified", ctypes.c_bool),
        ("samplers", ctypes.POINTER(llama_sampler_seq_config)),
        ("n_samplers", ctypes.c_size_t),
        ("ctx_other", llama_context_p),
    ]


# typedef struct llama_logit_bias { llama_token token; float bias; } llama_logit_bias;
class llama_logit_bias(ctypes.Structure):
    _fields_ = [("token", llama_token), ("bias", ctypes.c_float)]


# typedef struct llama_sampler_chain_params { bool no_perf; } llama_sampler_chain_params;
class llama_sampler_chain_params(ctypes.Structure):
    _fields_ = [("no_perf", ctypes.c_bool)]


# typedef struct llama_chat_message { const char * role; const char * content; } llama_chat_message;
class llama_chat_message(ctypes.Structure):
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


# struct llama_perf_context_data { double t_start_ms; double t_load_ms; double t_p_eval_ms;
#     double t_eval_ms; int32_t n_p_eval; int32_t n_eval; int32_t n_reused; };
class llama_perf_context_data(ctypes.Structure):
    _fields_ = [
        ("t_start_ms", ctypes.c_double),
        ("t_load_ms", ctypes.c_double),
        ("t_p_eval_ms", ctypes.c_double),
        ("t_eval_ms", ctypes.c_double),
        ("n_p_eval", ctypes.c_int32),
        ("n_eval", ctypes.c_int32),
        ("n_reused", ctypes.c_int32),
    ]


# struct llama_perf_sampler_data { double t_sample_ms; int32_t n_sample; };
class llama_perf_sampler_data(ctypes.Structure):
    _fields_ = [("t_sample_ms", ctypes.c_double), ("n_sample", ctypes.c_int32)]


#: C struct name -> ctypes class, for the layout test.
STRUCTS: dict[str, type[ctypes.Structure]] = {
    "struct llama_token_data": llama_token_data,
    "struct llama_token_data_array": llama_token_data_array,
    "struct llama_batch": llama_batch,
    "struct llama_model_kv_override": llama_model_kv_override,
    "struct llama_model_params": llama_model_params,
    "struct llama_sampler_seq_config": llama_sampler_seq_config,
    "struct llama_context_params": llama_context_params,
    "struct llama_logit_bias": llama_logit_bias,
    "struct llama_sampler_chain_params": llama_sampler_chain_params,
    "struct llama_chat_message": llama_chat_message,
    "struct llama_perf_context_data": llama_perf_context_data,
    "struct llama_perf_sampler_data": llama_perf_sampler_data,
}
