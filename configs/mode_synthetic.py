"""The embedded default (`make run`): MoDE on the synthetic multi-task suite, CPU-sized.

    python -m mode_jax.main --config=configs/mode_synthetic.py --workdir=runs/default
    python -m mode_jax.main --config=configs/mode_synthetic.py --workdir=runs/lora \
        --config.adapter.method=lora --config.adapter.experts=1 --config.adapter.rank=16

Stage 1 pretrains a small byte-level base on generic text (once per workdir, saved as an HF
checkpoint in <workdir>/base_model); stage 2 trains the adapters on the 14-task mixture; the
job prints the per-task table (ROUGE-L, exact match) of the base and of the adapted model.
"""

import ml_collections


def train_block(steps, lr, batch, warmup=20, optimizer="adamw"):
  return ml_collections.ConfigDict(dict(
      steps=steps, batch_size=batch, seed=0, lr=lr, warmup_steps=warmup, decay="cosine",
      end_lr_frac=0.1, optimizer=optimizer, weight_decay=0.0, grad_clip=1.0, grad_accum=1,
      log_every=25, eval_every=0, ckpt_every=100, keep=2, async_ckpt=True, peak_flops=0.0,
      crash_at_step=-1))


def data_block(kind, inputs_len, targets_len, loss_on_targets_only=True):
  return ml_collections.ConfigDict(dict(
      kind=kind, seed=0, num_train=2000, num_eval=100, inputs_len=inputs_len,
      targets_len=targets_len, loss_on_targets_only=loss_on_targets_only, bos_id=-1,
      mix_maximum=0, mix_temperature=1.0, sni_dir="", protocol="within_task", num_pos=2,
      only_tasks=()))


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
      train=train_block(steps=600, lr=3e-3, batch=16),
      data=data_block("pretrain", inputs_len=8, targets_len=120, loss_on_targets_only=False)))
  c.adapter = ml_collections.ConfigDict(dict(
      method="mode", experts=4, rank=8, block=1, targets=("q", "k", "v", "o", "gate", "up",
                                                          "down"),
      scale=1.0, router="token", top_k=0, impl="xla"))   # impl: xla | pallas (fused kernel)
  c.data = data_block("synthetic", inputs_len=160, targets_len=32)
  c.train = train_block(steps=1000, lr=3e-3, batch=16, warmup=50)
  c.mesh = ml_collections.ConfigDict(dict(axes=("data", "fsdp", "tensor"), shape=(-1, 1, 1),
                                          rules=(), num_devices=0))
  c.eval = ml_collections.ConfigDict(dict(num_examples=30, max_new_tokens=24))
  return c
