"""The comparison runner on the tiny byte-level base and the byte suite (tests, plumbing):

    python -m mode_jax.experiments.compare --config=configs/compare_synthetic.py --workdir=runs/cmp

Same base (pretrained in the workdir as in configs/mode_synthetic.py), mixture, steps and
learning rate for every method; budgets matched to MoDE 4x8 (methods with rank 0 get the
closest rank). The real study is configs/compare_gemma3.py.
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
      seeds=(0,), budget_tolerance=0.10, per_task_lora=True,
      lr_sweep=dict(lrs=(), seed=100, steps=0),
      primary=("MoDE 4x8x1", "LoRA 36"), primary_metric="rougeL"))
  return c
