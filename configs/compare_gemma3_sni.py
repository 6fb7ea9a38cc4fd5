"""The comparison on the real Gemma 3 270M and the shared Super-NaturalInstructions tasks
(../shared/data/sni: 10 English train-split tasks, instances split 90/10 within each task,
Tk-Instruct "def + 2 pos" prompts fitted to the input length, ROUGE-L), CPU-sized:

    python -m mode_jax.experiments.compare --config=configs/compare_gemma3_sni.py \\
        --workdir=runs/compare_gemma3_sni

Same methods, budgets, seeds and PRIMARY COMPARISON as configs/compare_gemma3.py (MoDE 6x4
minus LoRA, mean ROUGE-L over tasks, paired over seeds, sign test over tasks). The base is
scored with the same def + 2 pos prompt as the adapted models (SNI's protocol), and every
held-out instance is scored (the shared files keep a few dozen instances per task, so there
are 2-6 eval instances per task: per-task numbers are noisy, the mean over tasks less so).
The runner exits with a clear error when ../shared/data/sni is absent. `:large` is the same on
an accelerator (configs/compare_gemma3.py's `large`: 3000 steps of 32 rows, 5 seeds, the lr
sweep rule), with these lengths and every held-out instance scored.
"""

import os

from mode_jax.config_files import sibling

_HERE = os.path.dirname(os.path.abspath(__file__))
study = sibling(__file__, "compare_gemma3")


def get_config(arg: str = ""):
  c = study.get_config(arg)
  c.data.kind = "sni"
  c.data.sni_dir = os.path.join(_HERE, "..", "..", "shared", "data", "sni")
  c.data.num_pos = 2
  c.data.inputs_len, c.data.targets_len = 448, 64
  if arg != "large":          # ":large" keeps the study's accelerator batch (32) and sweep
    c.train.batch_size = 4
  c.train.loss_positions = 64
  c.eval.base_shots = 0
  c.eval.first_line = False
  c.eval.num_examples = 100
  c.eval.max_new_tokens = 48
  return c
