"""ProcessBench-style evaluation of a saved PRM (`python -m prm_jax.evaluate --prm DIR --data F`).

`read_processbench` reads any JSONL of (question, steps, first error index) with configurable
field names (ProcessBench's own: problem, steps, label); `main` scores local copies of the
subsets (one JSONL per subset, named by its file stem: gsm8k.jsonl, math.jsonl, ...) with the
PRM and reports the official protocol (fixed threshold 0.5, F1 per subset, unweighted average)
or, with `--protocol=dev_tuned`, the variant that picks the threshold on a seeded random dev
half of each subset and reports F1 on the rest (`--protocol=both`: both from one scoring). The
metrics themselves live in
`prm_jax.prm.metrics` (re-exported here).
"""

from __future__ import annotations

import json
import os

import numpy as np
from absl import flags

from mode_jax import cli
from mode_jax.atomic_io import jsonl_records
from prm_jax.prm.metrics import (auroc, choose_threshold, first_error_auroc,  # noqa: F401
                                 position_scores, predict_first_error, processbench,
                                 processbench_official, processbench_scores, step_metrics)
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
  """python -m prm_jax.evaluate --prm=DIR --data=gsm8k.jsonl,math.jsonl: ProcessBench F1 of a
  saved PRM on local subset files (official protocol; --protocol=dev_tuned for the variant)."""
  ap = flags.FlagValues()
  flags.DEFINE_string("prm", None, "a prm_model directory (prm_jax.prm.train)", flag_values=ap)
  flags.mark_flag_as_required("prm", flag_values=ap)
  flags.DEFINE_string("data", None, "comma-separated JSONL files, one per subset", flag_values=ap)
  flags.mark_flag_as_required("data", flag_values=ap)
  flags.DEFINE_string("question_field", "problem", "", flag_values=ap)
  flags.DEFINE_string("steps_field", "steps", "", flag_values=ap)
  flags.DEFINE_string("label_field", "label", "", flag_values=ap)
  flags.DEFINE_string("step_separator", "\n", "appended to every step but the last before scoring", flag_values=ap)
  flags.DEFINE_enum("protocol", "official", ["official", "dev_tuned", "both"],
                    "both: one scoring, both reports (under 'official' and 'dev_tuned')",
                    flag_values=ap)
  flags.DEFINE_float("threshold", 0.5, "official protocol's threshold", flag_values=ap)
  flags.DEFINE_float("dev_fraction", 0.5, "dev_tuned only", flag_values=ap)
  flags.DEFINE_integer("seed", 0, "", flag_values=ap)
  args = cli.parse_argv(ap, argv)
  scorer = scorer_from_dir(args.prm)
  sep, subsets, res = args.step_separator, {}, {"protocol": args.protocol, "malformed_lines": {}}
  for path in [p for p in args.data.split(",") if p]:
    name = os.path.splitext(os.path.basename(path))[0]
    items, errors = read_processbench(path, args.question_field, args.steps_field,
                                      args.label_field)
    res["malformed_lines"][name] = len(errors)
    if not items:
      raise SystemExit(f"{path}: no usable lines ({len(errors)} malformed)")
    scored = scorer.score(
        [(it["question"], [s + (sep if i < len(it["steps"]) - 1 else "")
                           for i, s in enumerate(it["steps"])]) for it in items])
    subsets[name] = (scored, [it["first_error"] for it in items])
  if args.protocol in ("official", "both"):
    off = processbench_official(subsets, args.threshold)
    res.update(off) if args.protocol == "official" else res.update(official=off)
  if args.protocol in ("dev_tuned", "both"):
    tuned = {"subsets": {}}
    for name, (scored, gold) in subsets.items():
      order = np.random.default_rng(args.seed).permutation(len(gold))
      n_dev = max(1, int(round(args.dev_fraction * len(gold))))
      dev, test = order[:n_dev], order[n_dev:] if len(order) > n_dev else order[:n_dev]
      r = processbench([scored[i] for i in dev], [gold[i] for i in dev],
                       [scored[i] for i in test], [gold[i] for i in test])
      tuned["subsets"][name] = dict(r, dev=len(dev), test=len(test))
    tuned["average_f1"] = float(np.mean([v["f1"] for v in tuned["subsets"].values()]))
    res.update(tuned) if args.protocol == "dev_tuned" else res.update(dev_tuned=tuned)
  print(json.dumps(res, indent=2))
  return res


if __name__ == "__main__":
  main()
