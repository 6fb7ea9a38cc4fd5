"""Super-NaturalInstructions (natural-instructions task JSON) from a local clone.

`read_task(path)` validates one `tasks/<name>.json`; `prompt(task, instance, num_pos)` builds the
Tk-Instruct source text ("Definition: ... Positive Example k - ... Now complete the following
example - Input: ... Output: "), as Tk-Instruct's collator writes it; the target is the first
reference output. Splits (`task_splits`):
- "within_task" (the MoDE paper): the English tasks of `splits/default/train_tasks.txt`, each
  split 90/10 train/eval by a stable hash of (task name, instance id). An instance's split never
  depends on the other instances, so a truncated copy of a task splits its instances exactly
  as the full file does.
- "unseen_tasks" (the SNI protocol): train on train_tasks.txt, evaluate on test_tasks.txt.
"""

from __future__ import annotations

import json
import logging
import os
import string
from typing import Callable, Optional, Sequence

from mode_jax.data import metrics
from mode_jax.data.synthetic import stable_bucket

ENGLISH = ["English"]
PROTOCOLS = ("within_task", "unseen_tasks")


class SNIError(ValueError):
  """A malformed SNI task file; the message names the file and the field."""


def _field(obj: dict, key: str, where: str, types):
  if key not in obj:
    raise SNIError(f"{where}: missing field {key!r}")
  if not isinstance(obj[key], types):
    raise SNIError(f"{where}: field {key!r} has type {type(obj[key]).__name__}")
  return obj[key]


def read_task(path: str) -> dict:
  """{"name", "definition", "positive": [(in, out)], "instances": [{"id","input","outputs"}],
  "languages": {...}, "categories"} from one task JSON; errors name the file and field."""
  name = os.path.splitext(os.path.basename(path))[0]
  try:
    with open(path, encoding="utf-8") as f:
      raw = json.load(f)
  except json.JSONDecodeError as e:
    raise SNIError(f"{path}: invalid JSON ({e})") from None
  if not isinstance(raw, dict):
    raise SNIError(f"{path}: top level must be an object")
  definition = _field(raw, "Definition", path, (str, list))
  if isinstance(definition, list):
    if not definition or not all(isinstance(d, str) for d in definition):
      raise SNIError(f"{path}: field 'Definition' must be a non-empty string or list of strings")
    definition = definition[0]
  positive = []
  for i, ex in enumerate(raw.get("Positive Examples", []) or []):
    where = f"{path}: 'Positive Examples'[{i}]"
    positive.append((_field(ex, "input", where, str), _field(ex, "output", where, str)))
  instances = []
  for i, inst in enumerate(_field(raw, "Instances", path, list)):
    where = f"{path}: 'Instances'[{i}]"
    if not isinstance(inst, dict):
      raise SNIError(f"{where}: must be an object")
    outputs = _field(inst, "output", where, (list, str))
    outputs = [outputs] if isinstance(outputs, str) else [o for o in outputs if isinstance(o, str)]
    instances.append({"id": str(_field(inst, "id", where, (str, int))),
                      "input": _field(inst, "input", where, str), "outputs": outputs})
  langs = {k: raw.get(k, ENGLISH) for k in
           ("Input_language", "Output_language", "Instruction_language")}
  return {"name": name, "definition": definition, "positive": positive, "instances": instances,
          "languages": langs, "categories": raw.get("Categories", [])}


def is_english(task: dict) -> bool:
  """Whether every language field of the SNI task is English."""
  return all(v == ENGLISH for v in task["languages"].values())


def _end(s: str) -> str:
  return s if s and s[-1] in string.punctuation else s + "."


def prompt(task: dict, instance_input: str, num_pos: int = 2,
           max_tokens: Optional[int] = None,
           count: Optional[Callable[[str], int]] = None) -> str:
  """Tk-Instruct "def + k pos" source text for one instance.

  With `max_tokens` and `count` (text -> number of tokens), the prompt is fitted to the budget
  so that training never loses the instance or the "Output:" cue to seqio's right-trim: as in
  Tk-Instruct, positive examples are added only while they fit; then the definition is cut
  (whole words, marked "..."); the instance input is cut (from its end) only when it alone is
  over the budget, and the "Output: " suffix is always kept.
  """
  definition = _end("Definition: " + task["definition"].strip()) + "\n\n"
  tail = "Now complete the following example -\n" + _end(
      f"Input: {instance_input.strip()}") + "\nOutput: "
  examples = [(f" Positive Example {i + 1} -\n" + _end(f"Input: {x.strip()}") + "\n"
               + _end(f" Output: {y.strip()}") + "\n\n")
              for i, (x, y) in enumerate(task["positive"][:num_pos])]
  if max_tokens is None or count is None:
    return definition + "".join(examples) + tail
  fits = lambda text: count(text) <= max_tokens
  kept = ""
  for ex in examples:                       # Tk-Instruct: add examples while they fit
    if not fits(definition + kept + ex + tail):
      break
    kept += ex
  if fits(definition + kept + tail):
    return definition + kept + tail
  words = task["definition"].strip().split()    # cut the definition, never the instance
  lo, hi = 0, len(words) - 1                 # the longest prefix of words that fits
  while lo < hi:
    mid = (lo + hi + 1) // 2
    if fits("Definition: " + " ".join(words[:mid]) + " ...\n\n" + tail):
      lo = mid
    else:
      hi = mid - 1
  if lo > 0:
    return "Definition: " + " ".join(words[:lo]) + " ...\n\n" + tail
  suffix = "\nOutput: "                       # the instance alone is over the budget
  text = "Now complete the following example -\nInput: " + instance_input.strip()
  lo, hi = 0, len(text)
  while lo < hi:
    mid = (lo + hi + 1) // 2
    if fits(text[:mid] + suffix):
      lo = mid
    else:
      hi = mid - 1
  return text[:lo] + suffix


def in_eval_split(task_name: str, instance_id: str, eval_percent: int = 10) -> bool:
  """Whether an instance is in the held-out split (a stable hash bucket < `eval_percent`)."""
  return stable_bucket(task_name, instance_id) < eval_percent


def read_split_file(path: str) -> list[str]:
  """Task names of an SNI split file (one per line); a missing file is a FileNotFoundError."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"SNI split file {path} does not exist")
  with open(path, encoding="utf-8") as f:
    return [ln.strip() for ln in f if ln.strip()]


def load_tasks(tasks_dir: str, names: Sequence[str]) -> list[dict]:
  """Reads the named tasks that exist in `tasks_dir` (missing ones are logged, not fatal: a
  partial clone is common); tasks without any usable instance are skipped with a warning."""
  out, missing = [], []
  for name in names:
    path = os.path.join(tasks_dir, name + ".json")
    if not os.path.exists(path):
      missing.append(name)
      continue
    task = read_task(path)
    usable = [i for i in task["instances"] if i["outputs"] and i["outputs"][0].strip()]
    if not usable:
      logging.warning("SNI task %s (%s) has no usable instances; skipped", name, path)
      continue
    task["instances"] = usable
    out.append(task)
  if missing:
    logging.warning("SNI: %d of %d listed tasks are not in %s (first: %s)", len(missing),
                    len(names), tasks_dir, missing[0])
  return out


def task_splits(sni_dir: str, protocol: str = "within_task",
                names: Optional[Sequence[str]] = None) -> dict[str, list[dict]]:
  """{"train": tasks, "validation": tasks}, each task carrying only its split's instances.

  `sni_dir` holds `tasks/` and `splits/default/`; `names` restricts the task list."""
  if protocol not in PROTOCOLS:
    raise ValueError(f"SNI protocol {protocol!r} is not one of {PROTOCOLS}")
  tasks_dir = os.path.join(sni_dir, "tasks")
  split_dir = os.path.join(sni_dir, "splits", "default")
  train_names = read_split_file(os.path.join(split_dir, "train_tasks.txt"))
  if names is not None:
    train_names = [n for n in names if n in set(train_names) or protocol == "within_task"]
  train = [t for t in load_tasks(tasks_dir, train_names) if is_english(t)]
  if protocol == "unseen_tasks":
    test_names = read_split_file(os.path.join(split_dir, "test_tasks.txt"))
    if names is not None:
      test_names = [n for n in test_names if n in set(names)]
    return {"train": train, "validation": [t for t in load_tasks(tasks_dir, test_names)
                                           if is_english(t)]}
  out = {"train": [], "validation": []}
  for t in train:
    for split, want in (("train", False), ("validation", True)):
      inst = [i for i in t["instances"] if in_eval_split(t["name"], i["id"]) == want]
      if inst:
        out[split].append(dict(t, instances=inst))
  return out


def sni_rows(sni_dir: str, protocol: str = "within_task",
             names: Optional[Sequence[str]] = None, num_pos: int = 2,
             max_tokens: Optional[int] = None,
             count: Optional[Callable[[str], int]] = None) -> dict[str, dict]:
  """{task name: {"train": rows, "validation": rows}}: the SNI prompt rows both the direct
  JSON path and the TFDS builder produce; prompts fitted to `max_tokens` (see `prompt`)."""
  by_task: dict[str, dict[str, list[dict]]] = {}
  for split, task_list in task_splits(sni_dir, protocol, names).items():
    for t in task_list:
      by_task.setdefault(t["name"], {"train": [], "validation": []})[split] = metrics.reference_rows(
          (prompt(t, i["input"], num_pos, max_tokens, count), i["outputs"])
          for i in t["instances"])
  return by_task
