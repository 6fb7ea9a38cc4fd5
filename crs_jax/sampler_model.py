"""RecLLM's `TextModel` (complete / score per task) over any `mode_jax.serve.TextModel`: the
in-process model of a training run, a checkpoint loaded by `mode_jax.serve.load`, or an
OpenAI-compatible server (`mode_jax.serve.OpenAIClient`).

Each call is greedy, stops at the end of the line and returns the first line; with a task-id
`table` (task-routed adapters) every row carries its task's id (`crs_<task>`), in-process or as
the project server's `task_id` field. A `prefix` forced into `complete` is appended to the
prompt text; `score` asks the layer for log p(continuation | prompt) (in-process: prompt and
continuation tokenised apart, as the trainer builds its rows).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from mode_jax.serve.local import LocalModel
from mode_jax.train import run

MAX_NEW_TOKENS = {"dm": 16, "query": 20, "rank": 64, "profile": 56, "user": 40}


class TaskTextModel:
  """See the module docstring. `model`: a `mode_jax.serve.TextModel`; `table`: the run's
  `TaskIdTable` (None: no task ids, e.g. a served instruction model)."""

  def __init__(self, model, table=None, *, prefix: str = "crs_",
               max_new_tokens: Optional[dict] = None):
    self.model, self.table, self.prefix = model, table, prefix
    self.max_new = dict(MAX_NEW_TOKENS, **(max_new_tokens or {}))
    self.calls: dict = {}
    self.tokens = 0

  def _task_ids(self, task: str, count: int) -> Optional[list]:
    return None if self.table is None else [self.table[self.prefix + task]] * count

  def complete(self, prompts: Sequence[str], task: str,
               prefixes: Optional[Sequence[str]] = None) -> list[str]:
    """First line of the greedy continuation of each prompt; with `prefixes`, of prompt +
    prefix (the prefix forced, not returned)."""
    self.calls[task] = self.calls.get(task, 0) + 1
    if not prompts:
      return []
    if prefixes is not None:
      prompts = [p + x for p, x in zip(prompts, prefixes, strict=True)]
    out = self.model.complete(list(prompts), 1, max_tokens=self.max_new[task], temperature=0.0,
                              stop=("\n",), task_ids=self._task_ids(task, len(prompts)))
    self.tokens += sum(row[0].num_tokens for row in out)
    return [row[0].text.strip().split("\n")[0].strip() for row in out]

  def score(self, prompts: Sequence[str], task: str,
            continuations: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Per prompt, the summed log-probability of each of its continuations, under the task's
    adapters."""
    self.calls[task + " score"] = self.calls.get(task + " score", 0) + 1
    flat_p, flat_c, owner = [], [], []
    for j, (p, cs) in enumerate(zip(prompts, continuations, strict=True)):
      for c in cs:
        flat_p.append(p)
        flat_c.append(c)
        owner.append(j)
    lp = (self.model.score(flat_p, flat_c, self._task_ids(task, len(flat_p))) if flat_p
          else np.zeros((0,)))
    owner = np.asarray(owner, np.int64)
    return [np.asarray(lp)[owner == j] for j in range(len(prompts))]


def from_training(out: run.RunResult) -> TaskTextModel:
  """The text model of a training run's result (base + trained adapters, host copy), with the
  run's vocabulary, task ids, BOS and prompt length."""
  data = out.spec.data
  bos = data.bos_id
  local = LocalModel(out.model_cfg, out.params(), data.vocab, adapter=out.acfg, bos_id=bos,
                     name="crs", max_prompt_tokens=data.config.inputs_len
                     - (1 if bos is not None else 0))
  return TaskTextModel(local, data.table)
