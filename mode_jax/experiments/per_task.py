"""The per-task LoRA baseline, one implementation for the comparison runner
(`experiments.compare`) and RecLLM (`crs_jax.per_task`): one LoRA per task, each trained on its
task alone for train.steps / n_tasks steps (warmup scaled in proportion, `run.sub_config`), so
the total number of steps and rows matches the multi-task run."""

from __future__ import annotations

import os
from typing import Callable, Iterator, Optional, Sequence

from mode_jax.adapters.config import AdapterConfig
from mode_jax.train import run


def steps_each(config, n_tasks: int) -> int:
  """Training steps of each task's adapter: train.steps / n_tasks (at least 1)."""
  return max(config.train.steps // n_tasks, 1)


def train_each(config, acfg: AdapterConfig, task_names: Sequence[str],
               task_dir: Callable[[str], str], *, model_cfg, base, seed: Optional[int] = None, lr: Optional[float] = None,
               skip: Callable[[str], bool] = lambda name: False
               ) -> Iterator[tuple[str, object, run.RunResult, dict]]:
  """Trains `acfg` on each task alone and scores it on that task.

  Args:
    config: the multi-task run's config (its steps are divided among the tasks).
    task_names: the registered task names (`data.only_tasks` values).
    task_dir: task name -> its directory (training resumes in `<dir>/train`; scores are
      written to `<dir>/eval.json|md`).
    skip: tasks already done (a resumed study); they are not trained.
  Yields:
    (task name, its sub-config, RunResult, {task: {metric: value}}) per trained task.
  """
  steps = steps_each(config, len(task_names))
  for name in task_names:
    if skip(name):
      continue
    sub = run.sub_config(config, acfg, seed=seed, lr=lr, steps=steps, only_tasks=(name,))
    tag = "" if seed is None else f", seed {seed}"
    print(f"== {acfg.describe()} on {name} alone{tag} ({steps} steps)", flush=True)
    out = run.run_training(sub, os.path.join(task_dir(name), "train"), model_cfg=model_cfg,
                           base_params=base)
    yield name, sub, out, out.score(sub.eval, task_dir(name), "eval",
                                    label=f"eval {name}")["scores"]
