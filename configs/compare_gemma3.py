"""The MoDE paper's comparison on the real Gemma 3 270M (the `make run` base) and the word-level
synthetic suite (14 tasks), CPU-sized, seeded and resumable:

    python -m mode_jax.experiments.compare --config=configs/compare_gemma3.py \\
        --workdir=runs/compare_gemma3
    python -m mode_jax.experiments.compare --config=configs/compare_gemma3.py \\
        --workdir=runs/compare_gemma3 --only_report        # tables from the finished runs

Methods, all on q, k, v, o of every layer, budgets matched (within 10%) to the reference MoDE
6x4 (the paper's best, 2.42M added parameters, 0.90% of the base): LoRA, MoLoRA 16 experts and
MoLoRA-SD 16 experts (the paper's expert count; their ranks chosen to match: 16x1 -4%, 16x2
-9%), MoDE 6x4 and MoDE 12 experts (rank chosen to match: 12x2, -4%; the larger-m / smaller-r
size at this budget, standing in for the paper's 16x4, which adds 2.5x the parameters here);
token routers, p = 1; plus one LoRA per task whose 14 copies match the same total budget (each
trained on its task alone for steps / 14 steps: the same total compute). Same base, mixture,
steps (configs/mode_gemma3.py's), learning rate for all (one lr, no per-method sweep at this
CPU budget: the sweep rule is "none", stated as a limitation) and seeds 0, 1, 2 (data order and
adapter init).

`get_config("large")` (`--config=configs/compare_gemma3.py:large`) is the same study at an
accelerator's budget: 3000 steps of 32 x 256 tokens, 100 eval examples a task, 5 seeds, and the
learning-rate sweep rule `compare.lr_sweep`: each method trains once per lr in {3e-4, 1e-3,
3e-3} on seed 100 (not a reported seed) for 1000 steps and keeps the lr of the lowest mean
teacher-forced validation loss (the per-task LoRAs take the LoRA's); its primary comparison is
the same. Any study can sweep: `--config.compare.lr_sweep.lrs=(1e-3,3e-3)`.

PRIMARY COMPARISON (fixed before running): mean ROUGE-L over the 14 tasks of MoDE 6x4 minus
LoRA, paired over seeds (95% t-interval of the per-seed differences), with the task-level sign
test on the per-task means over seeds. Everything else (the other methods, exact match, MoDE 6)
is secondary (MoDE 12x2 included). Evaluation: 12 held-out examples per task (configs/mode_gemma3.py's), greedy,
zero-shot prompt; the base model 2-shot.
"""

import ml_collections

from mode_jax.config_files import sibling

base_cfg = sibling(__file__, "mode_gemma3")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """"" : the CPU-sized study; "large": the run that would settle the ordering on one
  accelerator (100x the training tokens, 100 eval examples a task, 5 seeds; see the README)."""
  if arg not in ("", "large"):
    raise ValueError(f"compare_gemma3: unknown variant {arg!r} (use '' or 'large')")
  c = base_cfg.get_config()
  c.compare = ml_collections.ConfigDict(dict(
      targets=("q", "k", "v", "o"),
      reference=dict(method="mode", experts=6, rank=4, block=1),
      methods=(
          dict(label="", method="lora", experts=1, rank=0, block=0),
          dict(label="", method="molora", experts=16, rank=0, block=0),
          dict(label="", method="molora_sd", experts=16, rank=0, block=0),
          dict(label="", method="mode", experts=6, rank=4, block=1),
          dict(label="", method="mode", experts=12, rank=0, block=1),
      ),
      seeds=(0, 1, 2), budget_tolerance=0.10, per_task_lora=True,
      lr_sweep=dict(lrs=(), seed=100, steps=0),
      primary=("MoDE 6x4x1", "LoRA"), primary_metric="rougeL"))
  if arg == "large":
    c.train.update(dict(steps=3000, batch_size=32, warmup_steps=100, lr=1e-3, ckpt_every=500,
                        log_every=100))
    c.eval.num_examples = 100
    c.compare.seeds = (0, 1, 2, 3, 4)
    c.compare.lr_sweep.update(dict(lrs=(3e-4, 1e-3, 3e-3), seed=100, steps=1000))
  return c
