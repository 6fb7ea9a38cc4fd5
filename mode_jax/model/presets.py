"""Named architectures: `presets.get("gemma_2b")`.

Numbers are those of the published HF `config.json` files of each model; `tiny` is the embedded
default used by tests and `make run` (byte vocabulary, runs in seconds on a CPU).
"""

from __future__ import annotations

from mode_jax.model.config import ModelConfig, RopeScaling

_LLAMA31_ROPE = RopeScaling("llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                            original_max_position_embeddings=8192)

_PRESETS = {
    # Byte-level toy model: vocab = 256 bytes + seqio's 3 special ids (pad 0, eos 1, unk 2).
    "tiny": ModelConfig(vocab_size=259, embed_dim=64, num_layers=2, num_heads=4, num_kv_heads=2,
                        head_dim=16, mlp_dim=192, model_type="llama", max_seq_len=512,
                        eos_id=1, pad_id=0),
    # The Llama-style model of the sampling benchmark (issue spec).
    "bench_small": ModelConfig(vocab_size=512, embed_dim=256, num_layers=4, num_heads=8,
                               num_kv_heads=4, head_dim=32, mlp_dim=688, model_type="llama",
                               max_seq_len=1024),
    "gemma_2b": ModelConfig(vocab_size=256_000, embed_dim=2048, num_layers=18, num_heads=8,
                            num_kv_heads=1, head_dim=256, mlp_dim=16_384, model_type="gemma",
                            activation="gelu_tanh", norm_plus_one=True, embed_scale=True,
                            tie_embeddings=True, max_seq_len=8192, bos_id=2, eos_id=1, pad_id=0),
    "gemma_7b": ModelConfig(vocab_size=256_000, embed_dim=3072, num_layers=28, num_heads=16,
                            num_kv_heads=16, head_dim=256, mlp_dim=24_576, model_type="gemma",
                            activation="gelu_tanh", norm_plus_one=True, embed_scale=True,
                            tie_embeddings=True, max_seq_len=8192, bos_id=2, eos_id=1, pad_id=0),
    "llama3_8b": ModelConfig(vocab_size=128_256, embed_dim=4096, num_layers=32, num_heads=32,
                             num_kv_heads=8, head_dim=128, mlp_dim=14_336, model_type="llama",
                             norm_eps=1e-5, rope_theta=500_000.0, max_seq_len=8192,
                             bos_id=128_000, eos_id=128_001, pad_id=0),
    "llama3_1_8b": ModelConfig(vocab_size=128_256, embed_dim=4096, num_layers=32, num_heads=32,
                               num_kv_heads=8, head_dim=128, mlp_dim=14_336, model_type="llama",
                               norm_eps=1e-5, rope_theta=500_000.0, rope_scaling=_LLAMA31_ROPE,
                               max_seq_len=131_072, bos_id=128_000, eos_id=128_001, pad_id=0),
    "qwen2_0_5b": ModelConfig(vocab_size=151_936, embed_dim=896, num_layers=24, num_heads=14,
                              num_kv_heads=2, head_dim=64, mlp_dim=4864, model_type="qwen2",
                              qkv_bias=True, tie_embeddings=True, rope_theta=1_000_000.0,
                              max_seq_len=32_768, eos_id=151_643, pad_id=151_643),
    "qwen2_1_5b": ModelConfig(vocab_size=151_936, embed_dim=1536, num_layers=28, num_heads=12,
                              num_kv_heads=2, head_dim=128, mlp_dim=8960, model_type="qwen2",
                              qkv_bias=True, tie_embeddings=True, rope_theta=1_000_000.0,
                              max_seq_len=32_768, eos_id=151_643, pad_id=151_643),
}


def names() -> list[str]:
  return sorted(_PRESETS)


def get(name: str, **overrides) -> ModelConfig:
  """Returns the named `ModelConfig`, with any field overridden (e.g. `dtype="bfloat16"`)."""
  try:
    cfg = _PRESETS[name]
  except KeyError:
    raise KeyError(f"unknown model preset {name!r}; known: {names()}") from None
  return cfg.replace(**overrides) if overrides else cfg
