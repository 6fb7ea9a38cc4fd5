"""Evaluation: teacher-forced loss per task, and greedy generation with the Foundation sampler
scored by each task's seqio metric_fns; a per-task table plus the mean (JSON + markdown)."""

from __future__ import annotations

import os
import time
from typing import Optional, Sequence

import jax
from jax.experimental import multihost_utils
import numpy as np
import seqio

from mode_jax.adapters.params import combine
from mode_jax.atomic_io import atomic_file, write_json_atomic
from mode_jax.data import metrics, synthetic, tasks
from mode_jax.model.sampling import Sampler


def generate_and_score(model_cfg, acfg, params, vocab, task_names: Sequence[str], table, *,
                       split: str = "validation", num_examples: int = 50,
                       max_new_tokens: int = 32, bos_id: Optional[int] = None,
                       samples_per_task: int = 3, batch_size: int = 64,
                       first_line: bool = False,
                       progress: Optional[str] = None) -> tuple[dict, dict]:
  """({task: {metric: value}}, {task: [example predictions]}) with greedy decoding.

  `first_line`: generation stops at a newline and a prediction is its first line (for tasks
  whose answers are one line, where a few-shot prompted base model would go on with the next
  example). `progress`: a label; one line per batch with the rows done and an ETA.

  All tasks' prompts go through the sampler as one stream (sorted by length, `batch_size` rows
  per call, each row with its own task id), so the number of compiled programs is bounded by
  the sampler's length buckets, not the number of tasks (756 on SNI). Greedy decoding does not
  depend on the batch a row lands in, so the scores equal per-task generation."""
  sampler = Sampler(model_cfg, params, vocab=vocab, adapter=acfg)
  rows = []                                  # (task, example, prompt)
  for name in task_names:
    for e in tasks.task_examples(name, split)[:num_examples]:
      rows.append((name, e, ([bos_id] if bos_id is not None else [])
                   + list(vocab.encode(e["inputs"]))))
  preds: list = [None] * len(rows)
  order = sorted(range(len(rows)), key=lambda i: len(rows[i][2]))
  t0 = time.perf_counter()
  for start in range(0, len(order), batch_size):
    idx = order[start:start + batch_size]
    out = sampler.generate([rows[i][2] for i in idx], max_new_tokens=max_new_tokens,
                           temperature=0.0, task_ids=[table[rows[i][0]] for i in idx],
                           stop_strings=("\n",) if first_line else ())
    for i, text in zip(idx, out.texts):
      preds[i] = text.strip().split("\n")[0].strip() if first_line else text.strip()
    if progress:
      done, spent = start + len(idx), time.perf_counter() - t0
      print(f"{progress}: {done}/{len(order)} prompts | {spent:.0f} s | "
            f"ETA {spent / done * (len(order) - done):.0f} s", flush=True)
  scores, samples = {}, {}
  for name in task_names:
    mine = [(e, p) for (n, e, _), p in zip(rows, preds) if n == name]
    targets = [e["references"].split(metrics.REF_SEP) for e, _ in mine]
    predictions = [p for _, p in mine]
    scores[name] = {}
    for fn in seqio.get_mixture_or_task(name).metric_fns:
      scores[name].update(fn(targets, predictions))
    samples[name] = [{"input": e["inputs"][-80:], "prediction": p, "references": t}
                     for (e, p), t in list(zip(mine, targets))[:samples_per_task]]
  return scores, samples


def write_table(workdir: str, name: str, scores: dict, extra: Optional[dict] = None) -> str:
  """Writes `<name>.json` and `<name>.md` (process 0 only: every host evaluates, one writes);
  returns the markdown."""
  table, md = metrics.per_task_table(scores)
  if jax.process_index() != 0:
    return md
  write_json_atomic(os.path.join(workdir, f"{name}.json"), dict(table, **(extra or {})))
  with atomic_file(os.path.join(workdir, f"{name}.md")) as f:
    f.write(md + "\n")
  return md


def full_params(trainable, frozen, full: bool):
  """The whole parameter tree: `trainable` itself (full fine-tuning) or base + adapters."""
  return trainable if full else combine(frozen, trainable)


def host(tree):
  """A numpy copy of `tree` on this host, also when its arrays span several hosts (FSDP over
  hosts): those are gathered with `multihost_utils.process_allgather`, a collective, so every
  process must call `host` (then one process writes)."""
  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))
  return jax.tree.map(one, tree)


def score(model_cfg, acfg, params, data, ecfg, workdir: str, name: str, *,
          evals: Optional[Sequence[str]] = None, table=None,
          label: Optional[str] = None) -> dict:
  """Greedy generation on `evals` (default: `data.evals`) scored per task; writes
  `<workdir>/<name>.json|md`.

  Args:
    model_cfg, acfg, params: the model (acfg None: the base alone) and its full host tree.
    data: a `run_data.RunData` (vocabulary, eval tasks, task-id table, bos_id).
    ecfg: the `config.eval` block: num_examples, max_new_tokens, first_line (predictions are
      their first line).
    label: a progress label (one line per batch).
  Returns:
    {"scores": {task: {metric: value}}, "markdown": the per-task table}.
  """
  scores, samples = generate_and_score(
      model_cfg, acfg, params, data.vocab, evals or data.evals, table or data.table,
      num_examples=ecfg.num_examples, max_new_tokens=ecfg.max_new_tokens, bos_id=data.bos_id,
      first_line=ecfg.get("first_line", False), progress=label)
  md = write_table(workdir, name, scores, {"samples": samples})
  return {"scores": scores, "markdown": md}


def base_eval_tasks(config, vocab) -> tuple:
  """(task names, table) the base model is scored on: the run's eval tasks with
  `config.eval.base_shots` positive examples in the prompt (synthetic suites), registered
  under their own names ("words2shot_<task>"); (None, None) for the zero-shot run tasks."""
  shots = config.eval.get("base_shots", 0)
  if not shots:
    return None, None
  if config.data.kind != "synthetic":
    raise ValueError(f"config.eval.base_shots={shots} needs config.data.kind='synthetic' "
                     f"(SNI prompts carry their own positive examples: data.num_pos)")
  d = config.data
  suite = d.get("suite", "bytes")
  only = [synthetic.bare_name(n, suite) for n in d.get("only_tasks", ())] or None
  names = tasks.make_synthetic_tasks(vocab, seed=d.seed, num_train=max(shots, 1),
                                     num_eval=d.num_eval, suite=suite, num_shots=shots,
                                     names=only)
  return names, tasks.TaskIdTable({n: i for i, n in enumerate(names)})


def zero_shot_names(scores: dict, shots: int) -> dict:
  """Few-shot task names ("words2shot_x") back to the run's ("words_x") for one table."""
  tag = f"{shots}shot_"
  return {k.replace(tag, "_", 1) if tag in k else k: v for k, v in scores.items()}
