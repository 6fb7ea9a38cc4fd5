"""The baseline of RecLLM's "one model, several tasks": one LoRA per task at the budget of the
configured task-routed adapters (`config.per_task.enabled`), as `mode_jax.experiments.compare`
builds its per-task baseline: LoRA on the same projections, the rank whose five copies come
closest to the configured adapter's added parameters (or `per_task.rank`), each trained on its
task alone for train.steps / 5 steps (warmup scaled), so the total number of steps and rows is
the multi-task run's. Sessions then call each task's own adapted model (`TaskRoutedTextModel`);
each keeps its own copy of the merged parameters (five copies of the base: fine for the tiny
decoder and for Gemma 3 270M, not for large bases). Such a run writes no `serving.json`: the
chat page serves multi-task runs only."""

from __future__ import annotations

import os

from crs_jax import data, sampler_model
from crs_jax import text as text_lib
from mode_jax.adapters import AdapterConfig, count_params, lora_rank_for_budget
from mode_jax.experiments import per_task
from mode_jax.train import evaluate, run


class TaskRoutedTextModel:
  """`TextModel` that sends each call to the model trained for its task."""

  def __init__(self, models: dict):
    self.models = models

  def complete(self, prompts, task, prefixes=None):
    """The completions of `task`'s own model (see `TaskTextModel.complete`)."""
    return self.models[task].complete(prompts, task, prefixes)

  def score(self, prompts, task, continuations):
    """Log-likelihoods under `task`'s own model (see `TaskTextModel.score`)."""
    return self.models[task].score(prompts, task, continuations)


def lora_config(config, model_cfg) -> AdapterConfig:
  """The per-task LoRA: `per_task.rank`, or the rank whose five copies come closest to the
  configured adapter's added parameters, on the configured projections."""
  n_tasks, targets = len(text_lib.TASKS), tuple(config.adapter.targets)
  rank = config.per_task.rank
  if not rank:
    budget = count_params(model_cfg, run.adapter_config(config.adapter, n_tasks))
    rank = lora_rank_for_budget(model_cfg, targets, n_tasks, budget)
  return AdapterConfig("lora", rank=rank, targets=targets, scale=config.adapter.get("scale", 1.0))


def train_per_task(config, workdir: str, model_cfg, base) -> dict:
  """{"model", "adapter", "added_pct", "train_seconds", "task_scores"} as the job reports them;
  each task's run resumes in `<workdir>/adapter_train_per_task/<task>`."""
  acfg = lora_config(config, model_cfg)
  n = len(text_lib.TASKS)
  task_of = {data.task_name(t): t for t in text_lib.TASKS}
  models, scores, seconds, pct = {}, {}, 0.0, 0.0
  for name, sub, out, task_scores in per_task.train_each(
      config, acfg, list(task_of), lambda name: os.path.join(
          workdir, "adapter_train_per_task", task_of[name]), model_cfg=model_cfg, base=base):
    scores.update(task_scores)
    models[task_of[name]] = sampler_model.from_training(out)
    seconds += out.train_seconds
    pct += out.report["added_pct"]
  total = n * count_params(model_cfg, acfg)
  print(f"per-task LoRA: {n} x rank {acfg.rank} = {total:,} added parameters ({pct:.2f}%)")
  return {"model": TaskRoutedTextModel(models), "adapter": f"{n} x {acfg.describe()}",
          "added_pct": pct, "train_seconds": seconds, "task_scores": scores,
          "markdown": evaluate.write_table(workdir, "eval_tasks", scores)}
