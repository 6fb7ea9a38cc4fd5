"""The paper's comparison in miniature on the synthetic suite (CPU-sized):

    python -m mode_jax.experiments.compare --config=configs/compare_synthetic.py --workdir=runs/cmp

Same base (pretrained in the workdir as in `make run`), mixture, steps and seed for every
method; budgets matched to MoDE 4x8 on q, k, v, o (methods with rank 0 get the closest rank).
"""

import ml_collections

from mode_jax.config_files import sibling

base_cfg = sibling(__file__, "mode_synthetic")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  del arg
  c = base_cfg.get_config()
  c.train.steps = 800
  c.compare = ml_collections.ConfigDict(dict(
      targets=("q", "k", "v", "o", "gate", "up", "down"),
      reference=dict(method="mode", experts=4, rank=8, block=1),
      methods=(
          dict(label="", method="lora", experts=1, rank=0, block=0),
          dict(label="", method="molora", experts=4, rank=0, block=0),
          dict(label="", method="molora_sd", experts=4, rank=0, block=0),
          dict(label="", method="mode", experts=4, rank=8, block=1),
      ),
      per_task_lora_rank=8))
  return c
