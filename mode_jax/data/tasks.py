"""seqio Tasks and Mixtures, built by functions a run calls (no registration at import time).

    vocab = make_vocab("bytes")
    names = make_synthetic_tasks(vocab)                       # 14 tasks "syn_<name>"
    table = TaskIdTable.load_or_create(workdir, names)        # stable ids, saved in the workdir
    mix = make_mixture("syn_mix", names, table, rate="examples", maximum=None, temperature=1.0)
    ds = get_dataset(mix, "train", {"inputs": 256, "targets": 64}, batch_size=16, seed=0)

Every task yields "inputs", "targets" (tokenized, EOS appended to targets), "task_id" (from
the table) and the raw "targets_pretokenized" / "references" strings for metrics. Calling a
builder twice replaces the earlier registration, so a notebook can re-run its cells.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Callable, Optional, Sequence

import seqio
import tensorflow as tf

from mode_jax.atomic_io import exists, read_json, write_json_atomic
from mode_jax.data import math_data, metrics, sni, synthetic, tfds_builders
from mode_jax.data.features import TaskPrefixLMFeatureConverter



class TaskIdTable:
  """name -> int id, saved as JSON in the run's workdir and reused on resume and at eval."""

  FILE = "task_ids.json"

  def __init__(self, ids: dict[str, int]):
    if sorted(ids.values()) != list(range(len(ids))):
      raise ValueError(f"task id table must number tasks 0..n-1, got {ids}")
    self.ids = dict(ids)

  @classmethod
  def load_or_create(cls, workdir: str, names: Sequence[str]) -> "TaskIdTable":
    """Loads `workdir/task_ids.json` (new names get the next ids and the file is rewritten)
    or creates it with ids 0..n-1 in first-seen order of `names` (repeats are ignored: SNI
    passes its train and validation task lists, which name the same tasks)."""
    path = os.path.join(workdir, cls.FILE)
    ids = read_json(path) if exists(path) else {}
    if not isinstance(ids, dict) or not all(isinstance(v, int) for v in ids.values()):
      raise ValueError(f"{path}: expected an object mapping task name -> int id")
    table = cls(ids)
    added = list(dict.fromkeys(n for n in names if n not in table.ids))
    for n in added:
      table.ids[n] = len(table.ids)
    if added or not exists(path):
      write_json_atomic(path, table.ids)
    return table

  def __getitem__(self, name: str) -> int:
    if name not in self.ids:
      raise KeyError(f"task {name!r} has no id in the task table ({len(self.ids)} tasks)")
    return self.ids[name]

  def __len__(self):
    return len(self.ids)

  def names(self) -> list[str]:
    """Task names in id order."""
    return sorted(self.ids, key=self.ids.get)


def seqio_name(name: str) -> str:
  """seqio task names allow [A-Za-z0-9_.:#]; SNI names contain '-' (-> '_')."""
  return re.sub(r"[^\w.:#]", "_", name)


def output_features(vocab) -> dict:
  """The seqio output features: inputs, targets (with EOS) and a pass-through task id."""
  # task_id is an output feature so that seqio Mixtures (which keep only output features)
  # carry it to the feature converter.
  return {"inputs": seqio.Feature(vocab, add_eos=False),
          "targets": seqio.Feature(vocab, add_eos=True),
          "task_id": seqio.Feature(seqio.PassThroughVocabulary(size=0), add_eos=False,
                                   dtype=tf.int32, rank=0)}


def _add_task_id(ds, task_id: int):
  return ds.map(lambda ex: dict(ex, task_id=tf.constant(task_id, tf.int32)),
                num_parallel_calls=tf.data.AUTOTUNE)


def _preprocessors(task_id: int) -> list:
  return [functools.partial(_add_task_id, task_id=task_id), seqio.preprocessors.tokenize,
          seqio.preprocessors.append_eos_after_trim]


def register_rows(name: str, rows_by_split: dict[str, list[dict]], vocab, task_id: int,
              metric_fns: Sequence[Callable] = ()) -> str:
  """A seqio Task over in-memory rows {"inputs", "targets", "references"} per split."""
  def dataset_fn(split, shuffle_files=False, seed=None):
    del shuffle_files, seed
    rows = rows_by_split[split]
    return tf.data.Dataset.from_tensor_slices(
        {k: [r[k] for r in rows] for k in ("inputs", "targets", "references")})
  return register_function_task(
      name, dataset_fn, {s: len(r) for s, r in rows_by_split.items()}, output_features(vocab),
      preprocessors=_preprocessors(task_id), postprocess_fn=metrics.postprocess,
      metric_fns=metric_fns)


def register_function_task(name: str, dataset_fn: Callable, num_examples: dict,
                           features: dict, *, preprocessors: Sequence = (),
                           postprocess_fn: Optional[Callable] = None,
                           metric_fns: Sequence[Callable] = ()) -> str:
  """(Re-)registers a seqio Task over `dataset_fn(split, shuffle_files, seed)` with
  `num_examples` per split."""
  seqio.TaskRegistry.remove(name)
  seqio.TaskRegistry.add(
      name,
      source=seqio.FunctionDataSource(dataset_fn, splits=list(num_examples),
                                      num_input_examples=dict(num_examples)),
      preprocessors=list(preprocessors), output_features=features,
      postprocess_fn=postprocess_fn, metric_fns=list(metric_fns))
  return name


def make_synthetic_tasks(vocab, table: Optional[TaskIdTable] = None, *, seed: int = 0,
                         num_train: int = 2000, num_eval: int = 100,
                         names: Optional[Sequence[str]] = None,
                         with_definition: bool = True, prefix: Optional[str] = None,
                         suite: str = "bytes", num_shots: int = 0) -> list[str]:
  """One seqio Task per synthetic generator of `suite` ("bytes": "syn_<name>", "words":
  "words_<name>", or `prefix` + name). Prompts: the byte suite's "Definition: ...\n\nInput:
  ...\nOutput: "; the word suite (or any `num_shots` > 0) uses Tk-Instruct's "def + k pos"
  text (`sni.prompt`) with `num_shots` positive examples, fixed per task and drawn from the
  train split with another seed (a few-shot prompt for evaluating a base model). Returns the
  task names (register `table` first, or ids follow `names` order)."""
  if prefix is None:
    prefix = synthetic.PREFIX.get(suite, suite + "_")
    prefix = prefix if not num_shots else f"{prefix[:-1]}{num_shots}shot_"
  out = []
  for i, name in enumerate(names or [t.name for t in synthetic.suite_tasks(suite)]):
    task = synthetic.get_task(name, suite)
    shots = [(e["input"], e["output"]) for e in synthetic.examples(
        name, "train", num_shots, seed=seed + 7919, suite=suite)] if num_shots else []
    as_sni = {"definition": task.definition, "positive": shots}
    rows = {}
    for split, n in (("train", num_train), ("validation", num_eval)):
      exs = synthetic.examples(name, split, n, seed=seed, suite=suite)
      if suite == "bytes" and not num_shots:
        head = f"Definition: {task.definition}\n\n" if with_definition else ""
        pairs = ((f"{head}Input: {e['input']}\nOutput: ", [e["output"]]) for e in exs)
      else:
        pairs = ((sni.prompt(as_sni, e["input"], num_pos=num_shots), [e["output"]])
                 for e in exs)
      rows[split] = metrics.reference_rows(pairs)
    tname = prefix + name
    out.append(register_rows(tname, rows, vocab, table[tname] if table else i,
                             [metrics.rouge_em_metrics]))
  return out


def make_pretrain_task(vocab, *, seed: int = 0, num_train: int = 4000, num_eval: int = 200,
                       name: str = "pretrain_text") -> str:
  """Generic text for building the embedded default's base model: the generators' inputs and
  outputs as separate documents (never paired with an instruction), loss on every token, so
  the base learns the alphabet of the tasks but not the tasks."""
  rows = {}
  for split, n in (("train", num_train), ("validation", num_eval)):
    docs = []
    per = max(1, n // (2 * len(synthetic.TASK_NAMES)))
    for tname in synthetic.TASK_NAMES:
      for e in synthetic.examples(tname, split, per, seed=seed + 1):
        docs.extend([e["input"], e["output"] + " " + e["input"][::-1]])
    rows[split] = [{"inputs": "", "targets": d, "references": d} for d in docs[:n]]
  return register_rows(name, rows, vocab, 0)


def make_sni_tasks(sni_dir: str, vocab, table: Optional[TaskIdTable] = None, *,
                   protocol: str = "within_task", names: Optional[Sequence[str]] = None,
                   num_pos: int = 2, prefix: str = "sni_",
                   tfds_data_dir: Optional[str] = None,
                   max_input_tokens: Optional[int] = None) -> dict[str, list[str]]:
  """seqio Tasks over SNI task files (one per task; `sni.task_splits` decides the instances).
  With `max_input_tokens` (the `inputs` length, less one for a BOS), every prompt is fitted to
  it in `vocab`'s tokens (`sni.prompt`: examples dropped, then the definition cut, never the
  instance), so seqio's right-trim never removes the instance or the "Output:" cue.
  With `tfds_data_dir`, each task reads the prepared `sni_tasks` TFDS dataset (see
  `tfds_builders.prepare_sni`; prompts are not fitted there) instead of the JSON files.
  Returns {"train": [task names], "validation": [task names]}."""
  if tfds_data_dir and max_input_tokens:
    raise ValueError("make_sni_tasks: max_input_tokens fits prompts on the JSON path; the TFDS "
                     "path stores unfitted prompts (pass one or the other)")
  count = (lambda text: len(vocab.encode(text))) if max_input_tokens else None
  by_task = sni.sni_rows(sni_dir, protocol, names, num_pos, max_input_tokens, count)
  out = {"train": [], "validation": []}
  for k, (name, rows) in enumerate(sorted(by_task.items())):
    tname = seqio_name(prefix + name)
    tid = table[tname] if table else k
    if tfds_data_dir:
      _register_tfds(tname, tfds_builders.sni_tfds_name(protocol, num_pos), tfds_data_dir,
                     name, {s: len(r) for s, r in rows.items() if r}, vocab, tid)
    else:
      register_rows(tname, rows, vocab, tid, [metrics.rouge_em_metrics])
    for split in out:
      if rows[split]:
        out[split].append(tname)
  return out


def _register_tfds(name: str, tfds_name: str, data_dir: str, source_task: str,
                   counts: dict[str, int], vocab, task_id: int) -> str:
  """A seqio Task reading one source task's rows from a prepared TFDS dataset."""
  def only_this(ds):
    return ds.filter(lambda ex: tf.equal(ex["task"], source_task))
  seqio.TaskRegistry.remove(name)
  seqio.TaskRegistry.add(
      name,
      source=seqio.TfdsDataSource(tfds_name=tfds_name, tfds_data_dir=data_dir,
                                  splits=list(counts)),
      preprocessors=[only_this] + _preprocessors(task_id),
      output_features=output_features(vocab), postprocess_fn=metrics.postprocess,
      metric_fns=[metrics.rouge_em_metrics])
  return name


def make_math_task(path_by_split: dict[str, str], vocab, *, kind: str = "gsm8k",
                   name: Optional[str] = None, task_id: int = 0) -> str:
  """A seqio Task over GSM8K or MATH JSONL files (see `math_data.math_rows`)."""
  reader = {"gsm8k": math_data.read_gsm8k, "math": math_data.read_math}[kind]
  rows = {split: math_data.math_rows(reader(path)) for split, path in path_by_split.items()}
  return register_rows(name or kind, rows, vocab, task_id, [metrics.math_answer_metrics])


def make_mixture(name: str, task_names: Sequence[str], *, rate: str = "examples",
                 maximum: Optional[int] = None, temperature: float = 1.0,
                 rates: Optional[dict[str, float]] = None) -> str:
  """A seqio Mixture: rate "examples" (T5's mixing_rate_num_examples(maximum, temperature))
  or "explicit" (`rates` by task name, missing ones 1.0)."""
  if rate == "examples":
    fn = functools.partial(seqio.mixing_rate_num_examples, maximum=maximum,
                           temperature=temperature)
    tasks = [(t, fn) for t in task_names]
  elif rate == "explicit":
    tasks = [(t, float((rates or {}).get(t, 1.0))) for t in task_names]
  else:
    raise ValueError(f"mixing rate {rate!r} must be 'examples' or 'explicit'")
  seqio.MixtureRegistry.remove(name)
  seqio.MixtureRegistry.add(name, tasks)
  return name


def get_dataset(name: str, split: str, lengths: dict[str, int], *, batch_size: int,
                seed: int = 0, shuffle: bool = True, pack: bool = True,
                num_epochs: Optional[int] = None, shard_index: int = 0, num_shards: int = 1,
                loss_on_targets_only: bool = True, bos_id: Optional[int] = None,
                start_batch: int = 0, use_cached: bool = False,
                feature_converter: Optional[seqio.FeatureConverter] = None) -> tf.data.Dataset:
  """Batched model features of a task or mixture. Deterministic given (seed, shard): a run
  resumed at step s with start_batch=s sees the batches an uninterrupted run would. Each host
  passes its (shard_index, num_shards) and reads its own shard. `feature_converter` replaces
  the default `TaskPrefixLMFeatureConverter(pack, loss_on_targets_only, bos_id)`."""
  conv = feature_converter or TaskPrefixLMFeatureConverter(
      pack=pack, loss_on_targets_only=loss_on_targets_only, bos_id=bos_id)
  ds = seqio.get_dataset(
      name, task_feature_lengths=dict(lengths), dataset_split=split, shuffle=shuffle,
      num_epochs=num_epochs, seed=seed, use_cached=use_cached, feature_converter=conv,
      shard_info=seqio.ShardInfo(shard_index, num_shards) if num_shards > 1 else None)
  ds = ds.batch(batch_size, drop_remainder=True)
  if start_batch:
    ds = ds.skip(start_batch)
  return ds.prefetch(tf.data.AUTOTUNE)


def task_examples(name: str, split: str) -> list[dict]:
  """Raw rows of a registered task (for generation-based eval): inputs, targets, references."""
  task = seqio.get_mixture_or_task(name)
  ds = task.source.get_dataset(split=split, shuffle=False)
  out = []
  for ex in ds.as_numpy_iterator():
    out.append({k: v.decode("utf-8") for k, v in ex.items()})
  return out
