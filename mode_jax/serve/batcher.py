"""Batching of concurrent `complete` calls into one model call (the server's scheduler).

    batcher = Batcher(model)                  # any api.TextModel
    batcher.complete(prompts, n, seeds=s, max_tokens=64, ...)   # from many threads at once

Calls that arrive while the model is busy wait in a queue; when it frees, every waiting call
with the same settings (n, max_tokens, temperature, top_p, top_k, stop, log-probs, whether
task ids are given) is joined into one `model.complete` and the samples are handed back. Seeds
are made per prompt (`api.request_seeds`) before joining, so a sample depends on its request's
seed, prompt and sample index only: the same texts at concurrency 1 and 8. This is request-
level batching (a new call joins at the next model call, not at the next decode step).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Optional, Sequence

from mode_jax.serve import api


@dataclasses.dataclass
class _Job:
  prompts: list
  seeds: list
  task_ids: Optional[list]
  key: tuple
  settings: dict
  done: threading.Event = dataclasses.field(default_factory=threading.Event)
  result: Optional[list] = None
  error: Optional[BaseException] = None


class Batcher:
  """See the module docstring. `max_prompts`: at most this many prompts joined per call;
  `enabled=False` serves calls one at a time (the comparison point)."""

  def __init__(self, model, *, max_prompts: int = 256, enabled: bool = True):
    self.model, self.max_prompts, self.enabled = model, max_prompts, enabled
    self._queue: "queue.Queue[_Job]" = queue.Queue()
    self._lock = threading.Lock()
    self.calls = 0                           # model calls made
    if enabled:
      threading.Thread(target=self._loop, daemon=True, name="batcher").start()

  def complete(self, prompts: Sequence[str], n: int = 1, *, seeds: api.Seeds = None,
               task_ids: Optional[Sequence[int]] = None, **settings) -> list[list[api.Sample]]:
    """As `api.TextModel.complete`, served together with concurrent calls."""
    seeds = api.request_seeds(seeds, len(prompts))
    settings = dict(settings, n=n)
    key = tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v)
                       for k, v in settings.items())) + (task_ids is None,)
    job = _Job(list(prompts), seeds, None if task_ids is None else list(task_ids), key,
               settings)
    if not self.enabled:
      with self._lock:
        self._run([job])
    else:
      self._queue.put(job)
      job.done.wait()
    if job.error is not None:
      raise job.error
    return job.result

  def _loop(self) -> None:
    while True:
      first = self._queue.get()
      pending = [first]
      while True:
        try:
          pending.append(self._queue.get_nowait())
        except queue.Empty:
          break
      groups: dict = {}
      for job in pending:
        groups.setdefault(job.key, []).append(job)
      for jobs in groups.values():
        batch: list = []
        for job in jobs:
          if batch and sum(len(j.prompts) for j in batch) + len(job.prompts) > self.max_prompts:
            self._run(batch)
            batch = []
          batch.append(job)
        self._run(batch)

  def _run(self, jobs: list) -> None:
    settings = dict(jobs[0].settings)
    n = settings.pop("n")
    prompts = [p for j in jobs for p in j.prompts]
    seeds = [s for j in jobs for s in j.seeds]
    tids = None if jobs[0].task_ids is None else [t for j in jobs for t in j.task_ids]
    try:
      out = self.model.complete(prompts, n, seeds=seeds, task_ids=tids, **settings)
      self.calls += 1
      start = 0
      for j in jobs:
        j.result = out[start:start + len(j.prompts)]
        start += len(j.prompts)
    except Exception as e:       # handed to the waiting request (an HTTP 400 / 500 there)
      if len(jobs) > 1:          # one bad request must not fail the others joined with it
        for j in jobs:
          self._run([j])
        return
      jobs[0].error = e
    for j in jobs:
      j.done.set()
