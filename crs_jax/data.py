"""Bootstrap data for the one-backbone RecLLM: teacher sessions on the embedded catalogue turned
into seqio tasks (one per RecLLM task, task ids for the routed adapters), a conversation corpus
for the base model and for the SentencePiece vocabulary.

Data kinds for `mode_jax`'s trainer (`config.data.kind`, see `mode_jax.train.data_kinds`):
`crs_jax.data:tasks` (the five tasks, `crs_<task>`) and `crs_jax.data:pretrain` (transcripts and
item descriptions as plain text). Both read `config.data.crs`:

    catalogue_size, catalogue_seed    the embedded catalogue (`crs_jax.catalogue`)
    num_sessions, seed                bootstrap sessions (teacher + rule simulator)
    num_eval_sessions                 held-out sessions (seed + 1000) for validation rows
    p_forced_intent                   share of user rows whose intent is given in the prompt
"""

from __future__ import annotations

import functools
from typing import Iterator

import numpy as np

from crs_jax import catalogue as catalogue_lib
from crs_jax import report, rule_simulator
from crs_jax import session as session_lib
from crs_jax import text as text_lib
from mode_jax.data import metrics, tasks
from mode_jax.train import run_data

EVAL_SEED_OFFSET = 1000
PREFIX = "crs_"


def task_name(task: str) -> str:
  """The registered seqio name of RecLLM task `task`."""
  return PREFIX + task


@functools.lru_cache(maxsize=8)
def make_catalogue(size: int, seed: int) -> catalogue_lib.Catalogue:
  """The embedded catalogue (cached)."""
  return catalogue_lib.make_catalogue(size, seed)


@functools.lru_cache(maxsize=8)
def bootstrap(size: int, cat_seed: int, num_sessions: int, seed: int) -> tuple:
  """Records of `num_sessions` teacher sessions with the rule simulator (a tuple: cached)."""
  cat = make_catalogue(size, cat_seed)
  recs = session_lib.run_sessions(text_lib.TeacherRecommender(cat),
                                  rule_simulator.RuleSimulator(cat), cat,
                                  num_sessions=num_sessions, seed=seed)
  return tuple(recs)


def task_pairs(c, split: str) -> dict[str, list[tuple[str, str]]]:
  """(prompt, target) per task for `split` ("train": the bootstrap sessions, "validation":
  held-out ones) of the `config.data.crs` block `c`."""
  n, seed = ((c.num_sessions, c.seed) if split == "train"
             else (c.num_eval_sessions, c.seed + EVAL_SEED_OFFSET))
  cat = make_catalogue(c.catalogue_size, c.catalogue_seed)
  recs = bootstrap(c.catalogue_size, c.catalogue_seed, n, seed)
  return text_lib.examples(session_lib.sessions_from_records(recs, cat), cat,
                           np.random.default_rng([seed, 7]),
                           p_forced_intent=c.p_forced_intent)


def tasks_kind(dcfg, vocab, workdir: str):
  """Data kind: the five RecLLM tasks (train and validation rows), ids from the workdir's table."""
  c = dcfg.crs
  names = [task_name(t) for t in text_lib.TASKS]
  table = tasks.TaskIdTable.load_or_create(workdir, names)
  train, val = task_pairs(c, "train"), task_pairs(c, "validation")
  check_lengths(train, vocab, dcfg)
  for t in text_lib.TASKS:
    rows = {"train": metrics.reference_rows((p, [y]) for p, y in train[t]),
            "validation": metrics.reference_rows((p, [y]) for p, y in val[t])}
    tasks.register_rows(task_name(t), rows, vocab, table[task_name(t)],
                        metric_fns=[metrics.rouge_em_metrics] + (
                            [text_lib.decision_metric(t)] if t in text_lib.DECISION_TASKS
                            else []))
  only = dcfg.get("only_tasks", ())     # one task's run (per-task adapters); ids unchanged
  unknown = sorted(set(only) - set(names))
  if unknown:
    raise ValueError(f"config.data.only_tasks: unknown {unknown}; the tasks are {names}")
  names = [n for n in names if not only or n in only]
  return names, names, table


def check_lengths(pairs: dict, vocab, dcfg) -> None:
  """Every prompt fits `inputs_len` (with BOS) and every target `targets_len` (with EOS):
  seqio would cut a long prompt from the right, losing its "Action:" / "Pick:" cue, so a
  config whose lengths are too short is an error, not a silent truncation."""
  bos = 1 if run_data.bos_id(dcfg) is not None else 0
  for task, rows in pairs.items():
    p_max = max(len(vocab.encode(p)) for p, _ in rows) + bos
    y_max = max(len(vocab.encode(y)) for _, y in rows) + 1
    if p_max > dcfg.inputs_len or y_max > dcfg.targets_len:
      raise ValueError(f"config.data: task {task_name(task)!r} needs inputs_len >= {p_max} and "
                       f"targets_len >= {y_max} (has {dcfg.inputs_len}, {dcfg.targets_len})")


def transcript(rec: dict) -> str:
  """A bootstrap session as text: its profile line, then the turns."""
  return f"P: {rec['profile']}\n" + report.transcript(rec)


def corpus(c) -> Iterator[str]:
  """Plain text of the bootstrap data: transcripts, then every prompt and target once."""
  cat = make_catalogue(c.catalogue_size, c.catalogue_seed)
  for r in bootstrap(c.catalogue_size, c.catalogue_seed, c.num_sessions, c.seed):
    yield transcript(r)
  for pairs in task_pairs(c, "train").values():
    for p, y in pairs:
      yield p + " " + y
  for it in cat.items:
    yield f"{it.title}. {it.description}"


def pretrain_kind(dcfg, vocab, workdir: str):
  """Data kind: transcripts and item descriptions as documents, loss on every token."""
  del workdir
  docs = list(corpus(dcfg.crs))
  cut = max(1, len(docs) // 50)
  rng = np.random.default_rng(dcfg.crs.seed)
  docs = [docs[i] for i in rng.permutation(len(docs))]
  rows = {s: [{"inputs": "", "targets": d, "references": d} for d in part]
          for s, part in (("train", docs[cut:]), ("validation", docs[:cut]))}
  name = tasks.register_rows(PREFIX + "pretrain", rows, vocab, 0)
  return [name], [], tasks.TaskIdTable({name: 0})
