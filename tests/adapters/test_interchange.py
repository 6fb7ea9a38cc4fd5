"""PEFT-format LoRA export (loaded by PeftModel.from_pretrained on the HF model: same logits)
and merged per-task HF checkpoints of task-routed MoDE (loaded by transformers)."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from conftest import make_hf_model  # noqa: E402
from mode_jax.adapters import AdapterConfig, interchange, params as ap  # noqa: E402
from mode_jax.model import Transformer, hf_io  # noqa: E402

TOKENS = np.random.RandomState(0).randint(0, 97, (2, 11)).astype(np.int32)


def _adapted(case_kw, family, acfg, tmp_path):
  model = make_hf_model(family, **case_kw)
  model.save_pretrained(tmp_path / "base")
  cfg, base = hf_io.load_hf_checkpoint(str(tmp_path / "base"))
  ad = nn.meta.unbox(ap.init_adapter(cfg, acfg, jax.random.key(0)))
  ad = jax.tree.map(lambda x: x + 0.2 * jax.random.normal(jax.random.key(1), x.shape), ad)
  return model, cfg, ap.combine(base, ad)


@pytest.mark.parametrize("family,kw", [("llama", dict(num_key_value_heads=2, head_dim=12)),
                                       ("gemma3_text", dict(num_key_value_heads=1, head_dim=16,
                                                            num_hidden_layers=2))])
def test_peft_lora_export_loads_in_peft_with_the_same_logits(family, kw, tmp_path):
  acfg = AdapterConfig("lora", rank=4, scale=2.0, targets=("q", "k", "v", "o", "gate", "down"))
  model, cfg, params = _adapted(kw, family, acfg, tmp_path)
  interchange.export_peft_lora(str(tmp_path / "peft"), params, acfg, cfg)
  meta = json.load(open(tmp_path / "peft" / "adapter_config.json"))
  assert meta["peft_type"] == "LORA" and meta["r"] == 4 and meta["lora_alpha"] == 8.0
  loaded = peft.PeftModel.from_pretrained(model, str(tmp_path / "peft")).eval()
  with torch.no_grad():
    ref = loaded(torch.tensor(TOKENS, dtype=torch.long)).logits.numpy()
  ours = Transformer(cfg, acfg).apply({"params": params}, jnp.asarray(TOKENS))
  np.testing.assert_allclose(np.asarray(ours), ref, atol=1e-4, rtol=0)
  base = Transformer(cfg).apply({"params": ap.split(params)[0]}, jnp.asarray(TOKENS))
  assert np.abs(np.asarray(base) - ref).max() > 1e-3          # the adapter matters
  with pytest.raises(ValueError, match="no PEFT form"):
    interchange.export_peft_lora(str(tmp_path / "x"), params,
                                 AdapterConfig("mode", experts=2, rank=4), cfg)


def test_task_routed_mode_exports_one_merged_hf_checkpoint_per_task(tmp_path):
  import transformers
  acfg = AdapterConfig("mode", experts=2, rank=4, block=2, router="task", num_tasks=2,
                       targets=("q", "v", "up"))
  _, cfg, params = _adapted(dict(num_key_value_heads=2), "qwen2", acfg, tmp_path)
  dirs = interchange.export_merged(str(tmp_path / "merged"), params, acfg, cfg,
                                   task_names=["qa", "sum"])
  for t, d in enumerate(dirs):
    hf = transformers.AutoModelForCausalLM.from_pretrained(d).eval()
    with torch.no_grad():
      ref = hf(torch.tensor(TOKENS, dtype=torch.long)).logits.numpy()
    ours = Transformer(cfg, acfg).apply({"params": params}, jnp.asarray(TOKENS),
                                        task_ids=jnp.full((2,), t))
    np.testing.assert_allclose(np.asarray(ours), ref, atol=1e-4, rtol=0)
