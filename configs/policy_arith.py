"""The tiny arithmetic policy (`prm_jax.policy.sft`): the `tiny` backbone trained from scratch
on generated step-by-step solutions, a few minutes on 2 CPU cores.

    python -m prm_jax.policy.sft --config=configs/policy_arith.py --workdir=runs/policy
"""

import ml_collections

from mode_jax.config_files import sibling
from prm_jax.policy.sft import POLICY_ARITH, TEMPLATE




def get_config(arg: str = "") -> ml_collections.ConfigDict:
  del arg
  base = sibling(__file__, "mode_synthetic")
  c = ml_collections.ConfigDict()
  c.job = "policy_sft"
  c.seed = 0
  c.model = base.get_config().model
  c.checkpoint = ml_collections.ConfigDict(dict(hf_path=""))
  c.vocab = ml_collections.ConfigDict(dict(kind="bytes", path=""))
  c.adapter = ml_collections.ConfigDict(dict(method="none"))
  c.data = base.data_block("arith", inputs_len=112, targets_len=80)
  c.data.num_train = 20000
  c.data.num_eval = 200
  c.data.arith = POLICY_ARITH
  c.data.template = TEMPLATE
  c.train = base.train_block(steps=1000, lr=3e-3, batch=32, warmup=50)
  c.train.ckpt_every = 200
  c.mesh = base.get_config().mesh
  c.eval = ml_collections.ConfigDict(dict(num_problems=100, samples=8, temperature=1.0,
                                          max_new_tokens=80, max_batch=256))
  return c
