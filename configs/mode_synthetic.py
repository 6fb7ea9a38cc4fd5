"""The embedded default (`make run`): MoDE on the synthetic multi-task suite, CPU-sized.

    python -m mode_jax.main --config=configs/mode_synthetic.py --workdir=runs/default
    python -m mode_jax.main --config=configs/mode_synthetic.py --workdir=runs/lora \
        --config.adapter.method=lora --config.adapter.experts=1 --config.adapter.rank=16

Stage 1 pretrains a small byte-level base on generic text (once per workdir, saved as an HF
checkpoint in <workdir>/base_model); stage 2 trains the adapters on the 14-task mixture; the
job prints the per-task table (ROUGE-L, exact match) of the base and of the adapted model.
"""

import ml_collections

from mode_jax.config_files import sibling

blocks = sibling(__file__, "blocks")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  del arg
  c = ml_collections.ConfigDict()
  c.job = "mode_synthetic"
  c.seed = 0
  c.model = ml_collections.ConfigDict(dict(
      name="tiny", dtype="float32", param_dtype="float32", scan_layers=False, remat=False,
      max_seq_len=512,
      overrides=dict(embed_dim=128, num_layers=4, num_heads=4, num_kv_heads=2, head_dim=32,
                     mlp_dim=384)))
  c.checkpoint = ml_collections.ConfigDict(dict(hf_path=""))
  c.vocab = ml_collections.ConfigDict(dict(kind="bytes", path=""))
  c.base = ml_collections.ConfigDict(dict(
      train=blocks.train_block(steps=600, lr=3e-3, batch=16),
      data=blocks.data_block("pretrain", inputs_len=8, targets_len=120,
                             loss_on_targets_only=False)))
  c.adapter = ml_collections.ConfigDict(dict(
      method="mode", experts=4, rank=8, block=1, targets=("q", "k", "v", "o", "gate", "up",
                                                          "down"),
      scale=1.0, router="token", top_k=0, impl="xla"))   # impl: xla | pallas (fused kernel)
  c.data = blocks.data_block("synthetic", inputs_len=160, targets_len=32)
  c.train = blocks.train_block(steps=1000, lr=3e-3, batch=16, warmup=50)
  c.mesh = blocks.mesh_block()
  c.eval = ml_collections.ConfigDict(dict(num_examples=30, max_new_tokens=24))
  return c
