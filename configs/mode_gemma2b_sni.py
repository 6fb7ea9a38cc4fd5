"""The MoDE paper's setup: Gemma 2B (local HF checkpoint), the English SNI train tasks split
90/10 within task, Adafactor lr 1e-3, sequence length 1024, batch 128, 20,000 steps.

    python -m mode_jax.main --config=configs/mode_gemma2b_sni.py:mode6x4 --workdir=gs://.../run \
        --config.checkpoint.hf_path=/ckpts/gemma-2b \
        --config.vocab.path=/ckpts/gemma-2b/tokenizer.model \
        --config.data.sni_dir=/data/natural-instructions

Variants (the config argument): mode6x4 (default), mode16x4, lora64, molora16x4, molora_sd16x4.
Mesh: TPU v5e-8 or one 8-GPU host -> `mesh.shape=(1, 8, 1)` (FSDP over 8 chips; the base is
bf16, adapters and optimizer float32). Adapted modules are not stated in the paper; q, k, v, o
is the default here (its appendix analyses q, k, v, o LoRAs). `peak_flops` is the v5e-8 bf16
peak (197 TFLOP/s per chip); use 989e12 * 8 for 8xH100 (dense bf16).
"""

import ml_collections

from mode_jax.config_files import sibling

blocks = sibling(__file__, "blocks")

VARIANTS = {
    "mode6x4": dict(method="mode", experts=6, rank=4, block=1),
    "mode16x4": dict(method="mode", experts=16, rank=4, block=1),
    "lora64": dict(method="lora", experts=1, rank=64, block=None),
    "molora16x4": dict(method="molora", experts=16, rank=4, block=None),
    "molora_sd16x4": dict(method="molora_sd", experts=16, rank=4, block=None),
}


def get_config(arg: str = "mode6x4") -> ml_collections.ConfigDict:
  arg = arg or "mode6x4"
  if arg not in VARIANTS:
    raise ValueError(f"configs/mode_gemma2b_sni.py: unknown variant {arg!r}; choose from "
                     f"{sorted(VARIANTS)}")
  c = ml_collections.ConfigDict()
  c.job = "train"
  c.seed = 0
  c.model = ml_collections.ConfigDict(dict(
      name="gemma_2b", dtype="bfloat16", param_dtype="bfloat16", scan_layers=True, remat=True,
      remat_policy="nothing",          # or "dots" (keeps projection outputs; docs/fit.md)
      max_seq_len=8192, overrides={}))
  c.checkpoint = ml_collections.ConfigDict(dict(
      hf_path=""))                     # required: --config.checkpoint.hf_path=/ckpts/gemma-2b
  c.vocab = ml_collections.ConfigDict(dict(kind="sentencepiece", path=""))
  c.adapter = ml_collections.ConfigDict(dict(
      VARIANTS[arg], targets=("q", "k", "v", "o"), scale=1.0, router="token", top_k=0,
      impl="xla"))                     # --config.adapter.impl=pallas: the fused kernel
  c.data = blocks.data_block("sni", inputs_len=896, targets_len=128, bos_id=2)  # Gemma <bos>
  c.train = blocks.train_block(steps=20000, lr=1e-3, batch=128, warmup=0, optimizer="adafactor",
                               decay="constant", log_every=50, ckpt_every=1000, keep=3,
                               peak_flops=197e12 * 8,
                               loss_chunk=64)   # [16 rows/chip, 64, 256k] f32 = 1.05 GB
  c.mesh = blocks.mesh_block(shape=(1, 8, 1))
  c.eval = ml_collections.ConfigDict(dict(num_examples=100, max_new_tokens=128))
  return c
