"""Named architectures: `presets.get("gemma_2b")`.

Numbers are those of the published HF `config.json` files of each model; `tiny` is the embedded
default used by tests and `make run` (byte vocabulary, runs in seconds on a CPU).
"""

from __future__ import annotations

from mode_jax.model.config import ModelConfig, RopeScaling

_LLAMA31_ROPE = RopeScaling("llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                            original_max_position_embeddings=8192)

_LLAMA32_ROPE = RopeScaling("llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                            original_max_position_embeddings=8192)


def _gemma3(vocab, embed, layers, heads, kv, mlp, window, rope_scaling=RopeScaling(),
            max_len=32_768) -> ModelConfig:
  """Gemma 3 text: 5 sliding (local RoPE base 10k) then 1 global (base 1M) layer, q/k norms,
  sandwich norms, attention scale 256**-0.5."""
  return ModelConfig(vocab_size=vocab, embed_dim=embed, num_layers=layers, num_heads=heads,
                     num_kv_heads=kv, head_dim=256, mlp_dim=mlp, model_type="gemma3_text",
                     activation="gelu_tanh", norm_plus_one=True, embed_scale=True,
                     tie_embeddings=True, rope_theta=1_000_000.0, rope_scaling=rope_scaling,
                     rope_local_theta=10_000.0, max_seq_len=max_len, bos_id=2, eos_id=1,
                     extra_eos_ids=(106,), pad_id=0, qk_norm=True, post_norms=True,
                     query_pre_attn_scalar=256.0, sliding_window=window,
                     layer_types=tuple("full_attention" if (i + 1) % 6 == 0 else
                                       "sliding_attention" for i in range(layers)))


def _qwen3(embed, layers, mlp) -> ModelConfig:
  return ModelConfig(vocab_size=151_936, embed_dim=embed, num_layers=layers, num_heads=16,
                     num_kv_heads=8, head_dim=128, mlp_dim=mlp, model_type="qwen3",
                     qk_norm=True, tie_embeddings=True, rope_theta=1_000_000.0,
                     max_seq_len=40_960, bos_id=151_643, eos_id=151_645, pad_id=151_643)


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
    "gemma2_2b": ModelConfig(vocab_size=256_000, embed_dim=2304, num_layers=26, num_heads=8,
                             num_kv_heads=4, head_dim=256, mlp_dim=9216, model_type="gemma2",
                             activation="gelu_tanh", norm_plus_one=True, embed_scale=True,
                             tie_embeddings=True, max_seq_len=8192, bos_id=2, eos_id=1,
                             extra_eos_ids=(107,), pad_id=0, post_norms=True,
                             query_pre_attn_scalar=256.0, attn_softcap=50.0,
                             final_softcap=30.0, sliding_window=4096,
                             layer_types=tuple("sliding_attention" if i % 2 == 0 else
                                               "full_attention" for i in range(26))),
    "gemma3_270m": _gemma3(262_144, 640, 18, 4, 1, 2048, 512),
    "gemma3_1b": _gemma3(262_144, 1152, 26, 4, 1, 6912, 512),
    "gemma3_4b": _gemma3(262_208, 2560, 34, 8, 4, 10_240, 1024,
                         RopeScaling("linear", factor=8.0), max_len=131_072),
    "qwen3_0_6b": _qwen3(1024, 28, 3072),
    "qwen3_1_7b": _qwen3(2048, 28, 6144),
    "llama3_2_1b": ModelConfig(vocab_size=128_256, embed_dim=2048, num_layers=16, num_heads=32,
                               num_kv_heads=8, head_dim=64, mlp_dim=8192, model_type="llama",
                               norm_eps=1e-5, rope_theta=500_000.0, rope_scaling=_LLAMA32_ROPE,
                               tie_embeddings=True, max_seq_len=131_072, bos_id=128_000,
                               eos_id=128_001, extra_eos_ids=(128_008, 128_009), pad_id=0),
}


def names() -> list[str]:
  """The preset names."""
  return sorted(_PRESETS)


def get(name: str, **overrides) -> ModelConfig:
  """Returns the named `ModelConfig`, with any field overridden (e.g. `dtype="bfloat16"`)."""
  try:
    cfg = _PRESETS[name]
  except KeyError:
    raise KeyError(f"unknown model preset {name!r}; known: {names()}") from None
  return cfg.replace(**overrides) if overrides else cfg
