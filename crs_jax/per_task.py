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
from mode_jax.train import evaluate, jobs


class TaskRoutedTextModel:
  """`TextModel` that sends each call to the model trained for its task."""

  def __init__(self, models: dict):
    self.models = models

  def complete(self, prompts, task, prefixes=None):
    return self.models[task].complete(prompts, task, prefixes)

  def score(self, prompts, task, continuations):
    return self.models[task].score(prompts, task, continuations)


def lora_config(config, model_cfg) -> AdapterConfig:
  n_tasks, targets = len(text_lib.TASKS), tuple(config.adapter.targets)
  rank = config.per_task.rank
  if not rank:
    budget = count_params(model_cfg, jobs.adapter_config(config.adapter, n_tasks))
    rank = lora_rank_for_budget(model_cfg, targets, n_tasks, budget)
  return AdapterConfig("lora", rank=rank, targets=targets, scale=config.adapter.get("scale", 1.0))


def train_per_task(config, workdir: str, model_cfg, base) -> dict:
  """{"model", "adapter", "added_pct", "train_seconds", "task_scores"} as the job reports them;
  each task's run resumes in `<workdir>/adapter_train_per_task/<task>`."""
  acfg = lora_config(config, model_cfg)
  n = len(text_lib.TASKS)
  steps = max(config.train.steps // n, 1)
  models, scores, seconds, pct = {}, {}, 0.0, 0.0
  for t in text_lib.TASKS:
    sub = jobs.sub_config(config, acfg, steps=steps, only_tasks=(data.task_name(t),))
    wd = os.path.join(workdir, "adapter_train_per_task", t)
    print(f"== LoRA {acfg.rank} on {t} alone ({steps} steps)", flush=True)
    out = jobs.run_training(sub, wd, model_cfg=model_cfg, base_params=base)
    scores.update(jobs.score(out, sub, wd, "eval", label=f"eval {t}")["scores"])
    models[t] = sampler_model.from_training(out, sub)
    seconds += out["train_seconds"]
    pct += out["report"]["added_pct"]
  total = n * count_params(model_cfg, acfg)
  print(f"per-task LoRA: {n} x rank {acfg.rank} = {total:,} added parameters ({pct:.2f}%)")
  return {"model": TaskRoutedTextModel(models), "adapter": f"{n} x {acfg.describe()}",
          "added_pct": pct, "train_seconds": seconds, "task_scores": scores,
          "markdown": evaluate.write_table(workdir, "eval_tasks", scores)}
