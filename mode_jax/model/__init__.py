"""Decoder backbone (Llama / Qwen2 / Gemma families), presets, HF checkpoint I/O, sampling."""

from mode_jax.model import hf_io, presets, sampling
from mode_jax.model.config import ModelConfig, RopeScaling
from mode_jax.model.kv_cache import KVCache
from mode_jax.model.transformer import Transformer

__all__ = ["ModelConfig", "RopeScaling", "Transformer", "KVCache", "presets", "hf_io",
           "sampling"]
