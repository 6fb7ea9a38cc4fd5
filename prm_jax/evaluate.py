"""ProcessBench-style evaluation of a saved PRM (`python -m prm_jax.evaluate --prm DIR --data F`).

With `--judge_url` (instead of `--prm`) the critic is an LLM on an OpenAI-compatible server
(`prm_jax.envs.llm_judge`, ProcessBench's critic prompt): it names the earliest wrong step, so
only the official protocol applies (no threshold). `--critic=gsm8k_calc` is the rule baseline
of the same protocol (`prm_jax.envs.judges.CalculationCritic`: the first step with a false
written calculation). `--prm` with `--critic` combines them: the step the rule critic flags
scores 0, so the predicted first error is the earlier of the PRM's and the rule's, under both
protocols (`with_critic`); the official protocol then also reports the PRM alone, the critic
alone and paired bootstrap intervals of the combination's F1 gain over each (`critic_parts`).
`--scores_out` keeps every item's step scores (JSONL).

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
from mode_jax.atomic_io import jsonl_records, write_jsonl_atomic
from prm_jax.prm.metrics import (auroc, choose_threshold, first_error_auroc,  # noqa: F401
                                 position_scores, predict_first_error, processbench,
                                 processbench_official, processbench_scores, step_metrics)
from prm_jax.prm.train import scorer_from_dir


def read_processbench(path: str, question_field: str = "problem", steps_field: str = "steps",
                      label_field: str = "label", kind_field: str = "error_kind"
                      ) -> tuple[list[dict], list[dict]]:
  """([{"question", "steps", "first_error", "kind"}], errors) from a ProcessBench-style JSONL;
  "kind": the erroneous item's `kind_field` if it has one (None for correct items)."""
  out, errors = [], []
  for n, rec in jsonl_records(path, errors):
    q, steps, label = rec.get(question_field), rec.get(steps_field), rec.get(label_field)
    if not (isinstance(q, str) and isinstance(steps, list) and isinstance(label, int)
            and all(isinstance(s, str) for s in steps) and -1 <= label < len(steps)):
      errors.append({"line": n, "error": f"{path}:{n}: need {question_field!r} (str), "
                                         f"{steps_field!r} (list of str), {label_field!r} "
                                         "(int in [-1, len(steps)))"})
      continue
    out.append({"question": q, "steps": steps, "first_error": label,
                "kind": rec.get(kind_field) if label >= 0 else None})
  return out, errors


def by_error_kind(items: list[dict], values: list) -> dict:
  """{kind: (values, gold first errors)} for each error kind the items name (the builder's
  `error_kind`): that kind's erroneous items plus every correct one, so each split is scored by
  the same protocol as the whole subset (empty when no item names a kind)."""
  kinds = sorted({it.get("kind") for it in items} - {None, "", "none"})
  return {k: tuple(map(list, zip(*[(v, it["first_error"]) for it, v in zip(items, values)
                                   if it["first_error"] < 0 or it.get("kind") == k])))
          for k in kinds}


def main(argv=None):
  """python -m prm_jax.evaluate --prm=DIR --data=gsm8k.jsonl,math.jsonl: ProcessBench F1 of a
  saved PRM on local subset files (official protocol; --protocol=dev_tuned for the variant)."""
  ap = flags.FlagValues()
  flags.DEFINE_string("prm", None, "a prm_model directory (prm_jax.prm.train)", flag_values=ap)
  flags.DEFINE_string("judge_url", None, "instead of --prm: an LLM critic on this "
                      "OpenAI-compatible server (ProcessBench's critic prompt)", flag_values=ap)
  flags.DEFINE_enum("critic", None, ["gsm8k_calc"], "a rule critic (gsm8k_calc: the first "
                    "step with a false written calculation); with --prm the step it flags "
                    "scores 0 (the earlier of the two errors is predicted)", flag_values=ap)
  flags.DEFINE_string("scores_out", "", "--prm: write every item's step scores here (JSONL: "
                      "subset, question, first_error, kind, scores)", flag_values=ap)
  flags.DEFINE_string("judge_model", "", "the served model's name", flag_values=ap)
  flags.DEFINE_bool("judge_chat", False, "chat completions (instruction-tuned models)",
                    flag_values=ap)
  flags.DEFINE_integer("judge_samples", 1, "verdicts per item (majority; >1 samples at "
                       "temperature 1)", flag_values=ap)
  flags.DEFINE_integer("judge_max_tokens", 2048, "ProcessBench's critics write a review "
                       "before the boxed index", flag_values=ap)
  flags.DEFINE_float("judge_timeout", 600.0, "seconds per request", flag_values=ap)
  flags.DEFINE_integer("num", 0, "score the first NUM items of each subset (0: all)",
                       flag_values=ap)
  flags.DEFINE_string("data", None, "comma-separated JSONL files, one per subset", flag_values=ap)
  flags.mark_flag_as_required("data", flag_values=ap)
  flags.DEFINE_string("question_field", "problem", "", flag_values=ap)
  flags.DEFINE_string("steps_field", "steps", "", flag_values=ap)
  flags.DEFINE_string("label_field", "label", "", flag_values=ap)
  flags.DEFINE_string("kind_field", "error_kind", "an erroneous item's error kind, if any: "
                      "the official protocol is also reported per kind", flag_values=ap)
  flags.DEFINE_string("step_separator", "\n", "appended to every step but the last before scoring", flag_values=ap)
  flags.DEFINE_enum("protocol", "official", ["official", "dev_tuned", "both"],
                    "both: one scoring, both reports (under 'official' and 'dev_tuned')",
                    flag_values=ap)
  flags.DEFINE_float("threshold", 0.5, "official protocol's threshold", flag_values=ap)
  flags.DEFINE_float("dev_fraction", 0.5, "dev_tuned only", flag_values=ap)
  flags.DEFINE_integer("seed", 0, "", flag_values=ap)
  args = cli.parse_argv(ap, argv)
  if not (args.prm or args.judge_url or args.critic) or (
      args.judge_url and (args.prm or args.critic)):
    raise SystemExit("prm_jax.evaluate: give one of --prm (a saved PRM), --judge_url (an LLM "
                     "critic on a server) and --critic (a rule critic), or --prm with --critic")
  if args.scores_out and not args.prm:
    raise SystemExit("prm_jax.evaluate: --scores_out needs --prm (critics name one step)")
  data = {os.path.splitext(os.path.basename(p))[0]: p for p in args.data.split(",") if p}
  if not args.prm:
    return judge_main(args, data)
  scorer = scorer_from_dir(args.prm)
  critic = None
  if args.critic:
    from prm_jax.envs.judges import CRITICS
    critic = CRITICS[args.critic]()
  sep, subsets, kinds, kept, parts = args.step_separator, {}, {}, [], {}
  res = {"protocol": args.protocol, "malformed_lines": {}}
  if critic is not None:
    res["critic"] = {"rule": args.critic, "combined": "its flagged step scores 0"}
  for name, path in data.items():
    items = _read(args, path, res)
    scored = scorer.score(
        [(it["question"], [s + (sep if i < len(it["steps"]) - 1 else "")
                           for i, s in enumerate(it["steps"])]) for it in items])
    if critic is not None:
      flagged = critic.first_errors([(it["question"], it["steps"]) for it in items])
      prm_alone, scored = scored, with_critic(scored, flagged)
      parts[name] = critic_parts(prm_alone, flagged, [it["first_error"] for it in items],
                                 args.threshold, seed=args.seed)
    if args.scores_out:
      kept += [{"subset": name, "question": it["question"], "first_error": it["first_error"],
                "kind": it["kind"], "scores": [float(x) for x in sc]}
               for it, sc in zip(items, scored)]
    subsets[name] = (scored, [it["first_error"] for it in items])
    kinds.update({f"{name}/{k}": v for k, v in by_error_kind(items, scored).items()})
  if args.protocol in ("official", "both"):
    off = processbench_official(subsets, args.threshold)
    if kinds:   # the official protocol per error kind (that kind's errors + every correct item)
      off["by_error_kind"] = processbench_official(kinds, args.threshold)["subsets"]
    if parts:
      off["critic_parts"] = parts
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
  if args.scores_out:
    write_jsonl_atomic(args.scores_out, kept)
  print(json.dumps(res, indent=2))
  return res


def with_critic(scored: list, flagged: list[int]) -> list[list[float]]:
  """Step scores with each item's critic-flagged step (index >= 0; -1: none) set to 0, so any
  threshold predicts the earlier of the PRM's first error and the critic's."""
  out = []
  for sc, f in zip(scored, flagged):
    sc = [float(x) for x in sc]
    if 0 <= f < len(sc):
      sc[f] = 0.0
    out.append(sc)
  return out


def critic_parts(prm_scores: list, flagged: list[int], gold: list[int], threshold: float, *,
                 n_boot: int = 2000, seed: int = 0) -> dict:
  """Official-protocol scores of the PRM alone, the critic alone and the two combined
  (`with_critic`) on one subset, and paired bootstrap 95% intervals (items resampled) of the
  combination's F1 minus each part's."""
  from mode_jax.dataeval.stats import bootstrap
  preds = {"prm": [predict_first_error(p, threshold) for p in prm_scores],
           "critic": [int(f) for f in flagged],
           "combined": [predict_first_error(p, threshold)
                        for p in with_critic(prm_scores, flagged)]}
  g = np.asarray(gold)
  out = {k: processbench_scores(v, gold) for k, v in preds.items()}
  arr = {k: np.asarray(v) for k, v in preds.items()}

  def gain(part):
    return lambda idx: (processbench_scores(arr["combined"][idx], g[idx])["f1"]
                        - processbench_scores(arr[part][idx], g[idx])["f1"])
  for part in ("prm", "critic"):
    out[f"combined_minus_{part}_f1"] = bootstrap(gain(part), len(g), n_boot=n_boot, seed=seed)
  return out


def _read(args, path: str, res: dict) -> list[dict]:
  items, errors = read_processbench(path, args.question_field, args.steps_field,
                                    args.label_field, args.kind_field)
  res["malformed_lines"][os.path.splitext(os.path.basename(path))[0]] = len(errors)
  if not items:
    raise SystemExit(f"{path}: no usable lines ({len(errors)} malformed)")
  return items[:args.num] if args.num > 0 else items


def judge_scores(judge, items: list[dict]) -> dict:
  """ProcessBench's critic scores of an LLM judge on `items` ({"question", "steps",
  "first_error"}): the predicted earliest wrong paragraph (-1: none) must equal the label;
  a completion with no parsable \\boxed{} index counts as wrong ("unparsed" says how many)."""
  found = judge.first_errors([(it["question"], it["steps"]) for it in items])
  preds = [-2 if f is None else f for f in found]
  out = processbench_scores(preds, [it["first_error"] for it in items])
  out["unparsed"] = sum(f is None for f in found)
  split = by_error_kind(items, preds)
  if split:
    out["by_error_kind"] = {k: processbench_scores(*v) for k, v in split.items()}
  return out


def judge_main(args, data: dict) -> dict:
  """--judge_url / --critic: ProcessBench F1 of a critic (there is no threshold: the critic
  names the step), per subset and the unweighted average."""
  if args.critic:
    from prm_jax.envs.judges import CRITICS
    judge, about = CRITICS[args.critic](), {"rule": args.critic}
  else:
    from mode_jax.serve.http import OpenAIClient
    from mode_jax.serve.api import Sampling
    from prm_jax.envs.llm_judge import LLMJudge
    client = OpenAIClient(args.judge_url, args.judge_model, chat=args.judge_chat,
                          timeout=args.judge_timeout)
    judge = LLMJudge(client, samples=args.judge_samples, seed=args.seed,
                     sampling=Sampling(max_tokens=args.judge_max_tokens,
                                       temperature=0.0 if args.judge_samples == 1 else 1.0))
    about = {"url": args.judge_url, "model": args.judge_model, "samples": args.judge_samples}
  res = {"protocol": "official (critic)", "judge": about, "malformed_lines": {}, "subsets": {}}
  for name, path in data.items():
    res["subsets"][name] = judge_scores(judge, _read(args, path, res))
  res["average_f1"] = float(np.mean([v["f1"] for v in res["subsets"].values()]))
  print(json.dumps(res, indent=2))
  return res


if __name__ == "__main__":
  main()
