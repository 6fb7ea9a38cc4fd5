"""ProcessBench-style evaluation of a saved PRM (`python -m prm_jax.evaluate --prm DIR --data F`).

`read_processbench` reads any JSONL of (question, steps, first error index) with configurable
field names (ProcessBench's own: problem, steps, label); `main` scores it with the PRM, picks the
threshold on a dev split and reports F1 on the rest. The metrics themselves live in
`prm_jax.prm.metrics` (re-exported here).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from mode_jax.atomic_io import jsonl_records
from prm_jax.prm.metrics import (auroc, choose_threshold, predict_first_error,  # noqa: F401
                                 processbench, processbench_scores, step_metrics)
from prm_jax.prm.train import scorer_from_dir


def read_processbench(path: str, question_field: str = "problem", steps_field: str = "steps",
                      label_field: str = "label") -> tuple[list[dict], list[dict]]:
  """([{"question", "steps", "first_error"}], errors) from a ProcessBench-style JSONL."""
  out, errors = [], []
  for n, rec in jsonl_records(path, errors):
    q, steps, label = rec.get(question_field), rec.get(steps_field), rec.get(label_field)
    if not (isinstance(q, str) and isinstance(steps, list) and isinstance(label, int)
            and all(isinstance(s, str) for s in steps) and -1 <= label < len(steps)):
      errors.append({"line": n, "error": f"{path}:{n}: need {question_field!r} (str), "
                                         f"{steps_field!r} (list of str), {label_field!r} "
                                         "(int in [-1, len(steps)))"})
      continue
    out.append({"question": q, "steps": steps, "first_error": label})
  return out, errors


def main(argv=None):
  """python -m prm_jax.evaluate --prm=DIR --data=FILE.jsonl: ProcessBench-style F1 of a saved
  PRM on a local JSONL (threshold chosen on a seeded random `--dev_fraction` of it)."""
  ap = argparse.ArgumentParser(description=main.__doc__)
  ap.add_argument("--prm", required=True, help="a prm_model directory (prm_jax.prm.train)")
  ap.add_argument("--data", required=True)
  ap.add_argument("--question_field", default="problem")
  ap.add_argument("--steps_field", default="steps")
  ap.add_argument("--label_field", default="label")
  ap.add_argument("--step_separator", default="\n",
                  help="appended to every step but the last before scoring")
  ap.add_argument("--dev_fraction", type=float, default=0.5)
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args(argv)
  items, errors = read_processbench(args.data, args.question_field, args.steps_field,
                                    args.label_field)
  if not items:
    raise SystemExit(f"{args.data}: no usable lines ({len(errors)} malformed)")
  order = np.random.default_rng(args.seed).permutation(len(items))
  n_dev = max(1, int(round(args.dev_fraction * len(items))))
  sep = args.step_separator
  scored = scorer_from_dir(args.prm).score(
      [(it["question"], [s + (sep if i < len(it["steps"]) - 1 else "")
                         for i, s in enumerate(it["steps"])]) for it in items])
  dev, test = order[:n_dev], order[n_dev:] if len(order) > n_dev else order[:n_dev]
  res = processbench([scored[i] for i in dev], [items[i]["first_error"] for i in dev],
                     [scored[i] for i in test], [items[i]["first_error"] for i in test])
  res.update(dev=len(dev), test=len(test), malformed_lines=len(errors))
  print(json.dumps(res, indent=2))
  return res


if __name__ == "__main__":
  main()
