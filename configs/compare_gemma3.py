"""The MoDE paper's comparison on the real Gemma 3 270M (the `make run` base) and the word-level
synthetic suite (14 tasks), CPU-sized, seeded and resumable:

    python -m mode_jax.experiments.compare --config=configs/compare_gemma3.py \\
        --workdir=runs/compare_gemma3
    python -m mode_jax.experiments.compare --config=configs/compare_gemma3.py \\
        --workdir=runs/compare_gemma3 --only_report        # tables from the finished runs

Methods, all on q, k, v, o of every layer, budgets matched (within 10%) to the reference MoDE
16x2 (3.06M added parameters, 1.14% of the base): LoRA, MoLoRA 16 experts, MoLoRA-SD 16 experts
(their ranks chosen to match), MoDE 6 experts (rank chosen to match) and MoDE 16x2 (token
routers, p = 1), plus one LoRA per task whose 14 copies match the same total budget (each
trained on its task alone for steps / 14 steps: the same total compute). Same base, mixture,
steps (configs/mode_gemma3.py's), learning rate for all (one lr, no per-method sweep: the sweep
rule is "none", stated as a limitation) and seeds 0, 1, 2 (data order and adapter init).

PRIMARY COMPARISON (fixed before running): mean ROUGE-L over the 14 tasks of MoDE 16x2 minus
LoRA, paired over seeds (95% t-interval of the per-seed differences), with the task-level sign
test on the per-task means over seeds. Everything else (the other methods, exact match, MoDE 6)
is secondary. Evaluation: 20 held-out examples per task, greedy, zero-shot prompt.
"""

import ml_collections

from mode_jax.config_files import sibling

base_cfg = sibling(__file__, "mode_gemma3")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  del arg
  c = base_cfg.get_config()
  c.compare = ml_collections.ConfigDict(dict(
      targets=("q", "k", "v", "o"),
      reference=dict(method="mode", experts=16, rank=2, block=1),
      methods=(
          dict(label="", method="lora", experts=1, rank=0, block=0),
          dict(label="", method="molora", experts=16, rank=0, block=0),
          dict(label="", method="molora_sd", experts=16, rank=0, block=0),
          dict(label="", method="mode", experts=6, rank=0, block=1),
          dict(label="", method="mode", experts=16, rank=2, block=1),
      ),
      seeds=(0, 1, 2), budget_tolerance=0.10, per_task_lora=True,
      primary=("MoDE 16x2x1", "LoRA"), primary_metric="rougeL"))
  return c
