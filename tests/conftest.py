"""Shared fixtures: tiny random HF models saved locally (no hub), and the ../shared data path."""

import os
import tempfile

import numpy as np
import pytest

# JAX's persistent compilation cache for the suite and the subprocesses it starts (trainer
# harness runs, notebooks, CLIs): many of them compile the same small programs; a warm entry
# saves ~10 s of a 35 s harness run. Keyed by the program and the jax version, so a stale entry
# cannot change a result. MODE_JAX_TEST_JAX_CACHE= (empty) turns it off.
_JAX_CACHE = os.environ.get("MODE_JAX_TEST_JAX_CACHE",
                            os.path.join(tempfile.gettempdir(), "mode_jax_tests_jax_cache"))
if _JAX_CACHE:
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _JAX_CACHE)
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
  import jax
  jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
  jax.config.update("jax_persistent_cache_min_compile_time_secs",
                    float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")

# Each case exercises something different: GQA + head_dim != hidden/heads; every bias + Llama 3.1
# RoPE scaling; Qwen2 qkv bias + tied embeddings; Gemma MQA with (1+w) norms and sqrt(d) scale.
HF_CASES = {
    "llama_gqa_headdim": ("llama", dict(head_dim=12, num_key_value_heads=2)),
    "llama_bias_rope31": ("llama", dict(attention_bias=True, mlp_bias=True, num_key_value_heads=4,
                                        tie_word_embeddings=True,
                                        rope_parameters=dict(rope_type="llama3", rope_theta=5e5,
                                                             factor=8.0, low_freq_factor=1.0,
                                                             high_freq_factor=4.0,
                                                             original_max_position_embeddings=16))),
    "qwen2_tied_bias": ("qwen2", dict(num_key_value_heads=2, tie_word_embeddings=True)),
    "gemma_mqa": ("gemma", dict(num_key_value_heads=1, head_dim=16)),
    # Sliding-window families: windows of 4 on 13-token sequences; small soft-caps so that
    # capping changes the logits; Gemma 3's global layer uses linear-scaled RoPE, its local
    # layers the unscaled local base.
    "gemma2_window_softcap": ("gemma2", dict(num_hidden_layers=3, head_dim=16, sliding_window=4,
                                             query_pre_attn_scalar=24,
                                             attn_logit_softcapping=0.5,
                                             final_logit_softcapping=0.8)),
    "gemma3_local_global": ("gemma3_text", dict(
        num_hidden_layers=3, num_key_value_heads=1, head_dim=16, sliding_window=4,
        query_pre_attn_scalar=20,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 100.0},
                         "full_attention": {"rope_type": "linear", "factor": 2.0,
                                            "rope_theta": 1e6}})),
    "qwen3_window": ("qwen3", dict(num_hidden_layers=3, head_dim=12, use_sliding_window=True,
                                   sliding_window=4, max_window_layers=1)),
    "qwen2_window": ("qwen2", dict(num_hidden_layers=3, use_sliding_window=True,
                                   sliding_window=4, max_window_layers=1)),
}


def make_hf_model(family: str, seed: int = 0, **overrides):
  """A random tiny `*ForCausalLM` (weights perturbed so norms/biases are not trivial)."""
  import torch
  import transformers as tr
  cls = {"llama": (tr.LlamaConfig, tr.LlamaForCausalLM),
         "qwen2": (tr.Qwen2Config, tr.Qwen2ForCausalLM),
         "qwen3": (tr.Qwen3Config, tr.Qwen3ForCausalLM),
         "gemma": (tr.GemmaConfig, tr.GemmaForCausalLM),
         "gemma2": (tr.Gemma2Config, tr.Gemma2ForCausalLM),
         "gemma3_text": (tr.Gemma3TextConfig, tr.Gemma3ForCausalLM)}[family]
  kw = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
  kw.update(overrides)
  torch.manual_seed(seed)
  model = cls[1](cls[0](**kw)).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.add_(torch.randn_like(p) * 0.05)
  return model


@pytest.fixture
def hf_checkpoint(tmp_path):
  """Factory: (case name) -> (torch model, directory written with save_pretrained)."""
  def build(case: str):
    family, kw = HF_CASES[case]
    model = make_hf_model(family, **kw)
    path = tmp_path / case
    model.save_pretrained(path)
    return model, str(path)
  return build


@pytest.fixture
def tokens():
  return np.random.RandomState(0).randint(0, 97, (2, 13)).astype(np.int32)
