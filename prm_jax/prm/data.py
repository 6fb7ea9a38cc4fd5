"""PRM training data: OmegaPRM / Math-Shepherd records -> token sequences with labels at step
ends -> a seqio task -> packed batches whose labels stay on their tokens.

Records of one question form a tree (each record is a labelled prefix: its pieces and MC).
One sequence per leaf prefix (a record no other record extends): prompt + all its pieces, with
the MC label of every prefix that is a record put on that prefix's last token. Each record is
labelled once (in the first sequence that contains it), so shared prefixes are not counted
twice. Siblings (records with the same parent state) share a group id, which the pairwise
objective pairs on; sequences of one question are kept together so siblings mostly land in one
batch (shuffle at question level for the pairwise objective).

Labels are ints: 0 = none, 1 + round(1000 * MC) otherwise; groups: 0 = none, else id + 1;
weights: 0 = none, else the label's weight (ints >= 1): the record's `occurrences` (how many
labelled points the prefix stands for after the search shared identical prefixes; records
without the field, and `weighting="uniform"`, count 1; identical prefixes in several records
add up); tasks: the record's task id on every token (for task-routed adapters).
`PRMFeatureConverter` packs (decoder_input_tokens, prm_labels, prm_groups, prm_weights) with
seqio's packer, shifting values by one around it (seqio's packer treats 0 as padding).
"""

from __future__ import annotations

import random
from typing import Callable, Iterable, Mapping, Optional, Sequence

import seqio
import tensorflow as tf

from mode_jax.data import tasks
from prm_jax.prm import features

LABEL_SCALE = 1000


def encode_label(mc: float) -> int:
  """An MC value in [0, 1] as the integer label feature (0 is reserved for unlabelled)."""
  if not 0.0 <= mc <= 1.0:
    raise ValueError(f"MC label {mc} outside [0, 1]")
  return 1 + int(round(LABEL_SCALE * mc))


def decode_label(x: int) -> Optional[float]:
  """The MC value of a label feature (None for 0: unlabelled)."""
  return None if x <= 0 else (x - 1) / LABEL_SCALE


def question_key(r: dict) -> str:
  """A record's question id (its question text when it has none)."""
  return str(r.get("question_id") or r["question"])


WEIGHTINGS = ("occurrences", "uniform")


def record_weight(r: dict, where: str = "record") -> int:
  """A record's occurrence count (1 when absent); an error names the record otherwise."""
  w = r.get("occurrences", 1)
  if isinstance(w, bool) or not isinstance(w, int) or w < 1:
    raise ValueError(f"{where}: field 'occurrences' must be an int >= 1, got {w!r}")
  return w


def check_record(r, where: str) -> None:
  """A ValueError naming `where` and the field unless `r` is a usable PRM record."""
  for key, typ in (("question", str), ("steps", list), ("mc", (int, float))):
    if not isinstance(r.get(key), typ):
      raise ValueError(f"{where}: field {key!r} missing or not {getattr(typ, '__name__', typ)}")
  if not all(isinstance(s, str) for s in r["steps"]) or not r["steps"]:
    raise ValueError(f"{where}: field 'steps' must be a non-empty list of strings")
  record_weight(r, where)


def sequences_from_records(records: Iterable[dict], encode: Callable[[str], Sequence[int]],
                           template: str = "Question: {question}\nAnswer:\n",
                           task_ids: Optional[Mapping[str, int]] = None,
                           weighting: str = "occurrences") -> list[dict]:
  """[{"question_id", "targets", "labels", "groups", "weights", "tasks"}] (int lists of equal
  length). `task_ids` maps a record's "task" field (domain; "default" when absent) to the id
  that task-routed adapters read, so one PRM can route per domain."""
  if weighting not in WEIGHTINGS:
    raise ValueError(f"PRM weighting {weighting!r}: expected one of {WEIGHTINGS}")
  by_q: dict[str, list] = {}
  for r in records:
    by_q.setdefault(question_key(r), []).append(r)
  out, group_ids = [], {}
  for qid, recs in by_q.items():
    states = {tuple(r["steps"]): r for r in recs}
    weight: dict = {}
    for r in recs:
      key = tuple(r["steps"])
      w = record_weight(r, f"question {qid!r}, steps {len(key)}") if weighting != "uniform" else 1
      weight[key] = weight.get(key, 0) + w
    inner = {k[:i] for k in states for i in range(1, len(k))}
    leaves = sorted(k for k in states if k not in inner)
    labelled: set = set()
    prompt = list(encode(template.format(question=recs[0]["question"])))
    task = (task_ids or {}).get(recs[0].get("task") or "default", 0)
    for leaf in leaves:
      toks, labels = list(prompt), [0] * len(prompt)
      groups, weights = [0] * len(prompt), [0] * len(prompt)
      for i, step in enumerate(leaf):
        ids = list(encode(step))
        toks += ids
        labels += [0] * len(ids)
        groups += [0] * len(ids)
        weights += [0] * len(ids)
        key = leaf[:i + 1]
        if key in states and key not in labelled and ids:
          labelled.add(key)
          rec = states[key]
          labels[-1] = encode_label(float(rec["mc"]))
          weights[-1] = weight[key]
          if rec.get("parent_id") is not None:
            gid = group_ids.setdefault((qid, rec["parent_id"]), len(group_ids))
            groups[-1] = gid + 1
      out.append({"question_id": qid, "targets": toks, "labels": labels, "groups": groups,
                  "weights": weights, "tasks": [task] * len(toks)})
  return out


def with_bos(seqs: Iterable[dict], bos_id: Optional[int]) -> list[dict]:
  """The sequences with `bos_id` first (no label, group or weight on it; the row's task), as
  a backbone that was pretrained with BOS (Gemma, Llama) reads text; unchanged for None."""
  if bos_id is None:
    return list(seqs)
  out = []
  for s in seqs:
    row = dict(s, targets=[int(bos_id)] + list(s["targets"]))
    for key in ("labels", "groups", "weights"):
      row[key] = [0] + list(s[key])
    row["tasks"] = list(s["tasks"][:1]) + list(s["tasks"])
    out.append(row)
  return out


def outcome_sequences(items: Iterable[tuple[str, str, bool]],
                      encode: Callable[[str], Sequence[int]],
                      template: str = "Question: {question}\nAnswer:\n") -> list[dict]:
  """ORM data: (question, complete solution, correct) -> one label on the last token."""
  out = []
  for q, solution, ok in items:
    toks = list(encode(template.format(question=q))) + list(encode(solution))
    labels = [0] * len(toks)
    labels[-1] = encode_label(1.0 if ok else 0.0)
    weights = [0] * len(toks)
    weights[-1] = 1
    out.append({"question_id": q, "targets": toks, "labels": labels, "groups": [0] * len(toks),
                "weights": weights, "tasks": [0] * len(toks)})
  return out


def shuffle_by_question(seqs: list[dict], seed: int) -> list[dict]:
  """Question order shuffled, each question's sequences kept together (pairwise batches)."""
  by_q: dict[str, list] = {}
  for s in seqs:
    by_q.setdefault(s["question_id"], []).append(s)
  keys = sorted(by_q)
  random.Random(seed).shuffle(keys)
  return [s for k in keys for s in by_q[k]]


def register_task(name: str, seqs_by_split: Mapping[str, list[dict]], vocab) -> str:
  """A seqio Task whose examples are already tokenized sequences with labels and groups."""
  feats = ("targets", "labels", "groups", "weights", "tasks")

  def dataset_fn(split, shuffle_files=False, seed=None):
    del shuffle_files, seed
    seqs = seqs_by_split[split]

    def gen():
      for s in seqs:
        yield {k: s[k] for k in feats}
    return tf.data.Dataset.from_generator(
        gen, output_signature={k: tf.TensorSpec([None], tf.int32) for k in feats})

  ints = seqio.PassThroughVocabulary(size=1 << 30)
  return tasks.register_function_task(
      name, dataset_fn, {s: len(v) for s, v in seqs_by_split.items()},
      {"targets": seqio.Feature(vocab, add_eos=False, dtype=tf.int32),
       "labels": seqio.Feature(ints, add_eos=False, dtype=tf.int32),
       "groups": seqio.Feature(ints, add_eos=False, dtype=tf.int32),
       "weights": seqio.Feature(ints, add_eos=False, dtype=tf.int32),
       "tasks": seqio.Feature(ints, add_eos=False, dtype=tf.int32)})


def feature_converter(pack: bool = True):
  """The PRM feature converter (packed rows unless `pack=False`)."""
  return features.PRMFeatureConverter(pack=pack)


def batches(name: str, length: int, batch_size: int, *, seed: int = 0, shuffle: bool = True,
            split: str = "train", num_epochs: Optional[int] = None):
  """`fn(start_batch) -> iterator of numpy batches` for `mode_jax.train.loop.train`."""

  def fn(start_batch: int):
    ds = tasks.get_dataset(name, split, {k: length for k in ("targets", "labels", "groups",
                                                             "weights", "tasks")},
                           batch_size=batch_size, seed=seed, shuffle=shuffle,
                           num_epochs=num_epochs, start_batch=start_batch,
                           feature_converter=feature_converter())
    return ds.as_numpy_iterator()
  return fn
