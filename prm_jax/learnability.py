"""Is a PRM learnable from exactly labelled steps, on which backbone, and is the amount of data
the bottleneck? (`configs/prm_learnability.py` holds the pre-registered design.)

    python -m prm_jax.learnability --config=configs/prm_learnability.py \
        --workdir=runs/prm_learnability

The arithmetic env's checker labels every step of a sampled solution exactly (1 while no step
so far is wrong, 0 from the first wrong step on), so labelled steps cost only sampling. Every
PRM here trains on the same kind of records and is scored on the same held-out solutions:

1. training data: the `learn.train_questions` distinct questions of the pipeline's collection
   generator drawn with `learn.train_seed`, `learn.train_samples` solutions each sampled from
   `learn.policy` (the pipeline's sampling settings); one record per step prefix, its `mc` the
   exact label. `records_<n>.jsonl` for each n in `learn.sizes` holds the first n questions'
   records (the sets are nested: the larger contains the smaller).
2. held-out: `pipeline.eval_questions` problems of `pipeline.eval_seed`
   (`pipeline.heldout_problems`: none among the policy's SFT problems, the pipeline's collection
   questions or any training question here), `learn.eval_samples` solutions each.
3. one PRM per entry of `learn.prms` ({name: {size, backbone, head, adapter, steps, batch, lr}}):
   backbone "policy" is `learn.policy` fully fine-tuned (the study's tiny PRMs), any other
   value a `mode_jax.pretrained` name (e.g. gemma3_270m) with the entry's adapter; head scalar
   or tokens (the LM's own "+" / "-" logits, Math-Shepherd's reading).
4. report: per PRM, step AUROC and accuracy (threshold 0.5) against the exact labels of the
   test half of the held-out problems with cluster-bootstrap intervals over problems;
   ProcessBench first-error F1 by the official protocol (threshold 0.5) and the tuned variant
   (threshold from the other half); paired differences of step AUROC for `learn.compare`
   ("a-b" pairs), bootstrapping problems.
Every stage resumes from its files in the workdir.
"""

from __future__ import annotations

import json
import os
import random
import time

import numpy as np

from mode_jax import cli, serve
from mode_jax.atomic_io import atomic_file, jsonl_records, write_json_atomic, write_jsonl_atomic
from prm_jax import pipeline
from prm_jax import step_stats
from prm_jax import steps as steps_lib
from prm_jax.envs import arithmetic as A
from prm_jax.prm import train as prm_train_lib


def train_problems(config) -> list:
  """The `learn.train_questions` distinct training problems (normalised questions), in draw
  order, from the pipeline's collection generator."""
  lc = config.learn
  arith = A.ArithmeticConfig(**dict(pipeline.collect_config(config, "omegaprm", "")
                                    .questions.arith))
  rng, seen, out = random.Random(lc.train_seed), set(), []
  for i in range(lc.train_questions * 200):
    if len(out) == lc.train_questions:
      break
    p = A.make_problem(rng, arith, f"learn-{lc.train_seed}-{i}")
    key = pipeline.normalize_question(p.question)
    if key not in seen:
      seen.add(key)
      out.append(p)
  if len(out) < lc.train_questions:
    raise ValueError(f"learn.train_questions={lc.train_questions}: the generator gave only "
                     f"{len(out)} distinct questions ({arith})")
  return out


def exact_records(problem, solutions) -> list[dict]:
  """One record per step prefix of each solution, `mc` its exact label."""
  split, out = steps_lib.by_delimiter(), []
  for s in solutions:
    st = split(s)
    if not st:
      continue
    labels = pipeline.step_labels(A.first_error(problem, st), len(st))
    out += [{"question": problem.question, "question_id": problem.id, "steps": st[:i + 1],
             "mc": float(labels[i]), "source": "exact"} for i in range(len(st))]
  return out


def _cached_samples(path: str, problems, n: int):
  """The samples cached at `path` (None when absent); a ValueError naming the file when they
  do not fit the config (another number of problems or samples: another run's workdir)."""
  if not os.path.exists(path):
    return None
  sols = json.load(open(path))
  if len(sols) != len(problems) or any(len(ss) != n for ss in sols):
    raise ValueError(f"{path}: {len(sols)} problems x {len(sols[0]) if sols else 0} samples "
                     f"cached, the config asks for {len(problems)} x {n}: another run's "
                     "workdir (use a new --workdir)")
  return sols


def stage_data(config, wd, backend, log) -> dict:
  """{n: records path} for each size in `learn.sizes` (module doc, stage 1)."""
  lc = config.learn
  sizes = sorted({int(n) for n in lc.sizes})
  if sizes[-1] > lc.train_questions:
    raise ValueError(f"learn.sizes {sizes}: larger than learn.train_questions "
                     f"{lc.train_questions}")
  paths = {n: os.path.join(wd, f"records_{n}.jsonl") for n in sizes}
  if all(os.path.exists(p) for p in paths.values()):
    return paths
  probs = train_problems(config)
  cache = os.path.join(wd, "train_samples.json")
  sols = _cached_samples(cache, probs, lc.train_samples)
  if sols is None:
    t0 = time.perf_counter()
    log(f"== 1. sampling {lc.train_samples} solutions for each of {len(probs)} training "
        "questions")
    sols = pipeline.sample_solutions(backend, config.prm.template, probs, lc.train_samples,
                                     seed=lc.sample_seed)
    write_json_atomic(cache, sols)
    log(f"   in {time.perf_counter() - t0:.0f} s")
  for n, path in paths.items():
    recs = [r for p, ss in zip(probs[:n], sols[:n]) for r in exact_records(p, ss)]
    write_jsonl_atomic(path, recs)
    log(f"   {n} questions: {len(recs)} labelled step prefixes, "
        f"{np.mean([r['mc'] for r in recs]):.3f} right")
  return paths


def stage_heldout(config, wd, backend, log):
  """(problems, solutions) of the held-out set (module doc, stage 2), sampled once."""
  lc = config.learn
  problems = pipeline.heldout_problems(
      config, exclude=[p.question for p in train_problems(config)])
  cache = os.path.join(wd, "eval_samples.json")
  sols = _cached_samples(cache, problems, lc.eval_samples)
  if sols is None:
    log(f"== 2. sampling {lc.eval_samples} solutions for each of {len(problems)} held-out "
        "problems")
    sols = pipeline.sample_solutions(backend, config.prm.template, problems, lc.eval_samples,
                                     seed=lc.sample_seed + 1)
    write_json_atomic(cache, sols)
  return problems, sols


def prm_config(config, entry, records: str):
  """The prm_train config of one `learn.prms` entry (the records' mc is already the exact
  label)."""
  return pipeline.entry_config(config, dict(entry, labels="mc"), records, config.learn.policy,
                               where="learn.prms")


def stage_train(config, wd, paths, log) -> dict:
  """{name: prm_train summary} of every `learn.prms` entry (skipped when trained)."""
  for name, entry in config.learn.prms.items():
    if int(entry.size) not in paths:
      raise ValueError(f"learn.prms.{name}.size={entry.size}: not in learn.sizes")
  out = {}
  for name, entry in config.learn.prms.items():
    d = os.path.join(wd, f"prm_{name}")
    if not os.path.exists(os.path.join(d, "prm_train.json")):
      log(f"== 3. PRM {name}: {entry.backbone}, head {entry.head}, {entry.size} questions, "
          f"{entry.steps} steps x {entry.batch}")
    out[name] = pipeline.train_entry(prm_config(config, entry, paths[int(entry.size)]), d,
                                     log=log)
  return out


def stage_eval(config, wd, problems, sols, log) -> dict:
  lc = config.learn
  items, owner, checks, exact, gold_fe = pipeline.checked_items(problems, sols)
  names = list(lc.prms.keys())
  probs = pipeline.score_solutions(wd, {k: f"prm_{k}" for k in names}, items, log)
  half = len(problems) // 2
  test = [j for j in range(len(items)) if owner[j] >= half]
  res = {"eval_problems": len(problems), "samples_per_problem": lc.eval_samples,
         "test_solutions": len(test),
         "test_steps": int(sum(len(exact[j]) for j in test)),
         "test_steps_right": float(np.mean(np.concatenate([exact[j] for j in test]))),
         "sample_accuracy": float(np.mean([c.answer_correct for c in checks])),
         "prms": pipeline.step_level(names, probs, exact, gold_fe, checks, owner, half)}
  try:
    iv = step_stats.intervals(names, probs, exact, owner, test, lc.n_boot,
                              [tuple(p.split("-")) for p in lc.compare])
  except KeyError as e:
    raise ValueError(f"learn.compare: {e.args[0]}: both sides must be learn.prms names") from e
  res["position_baseline"] = {"step_auroc_ci": iv["position_step_auroc_ci"]}
  for k in names:
    res["prms"][k].update(iv["prms"][k])
  res["paired"], res["paired_first_error"] = iv["paired"], iv["paired_first_error"]
  return res


def _ci(e: dict) -> str:
  return f"{e['value']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"


def write_report(wd: str, config, data: dict, trained: dict, res: dict) -> str:
  lc = config.learn
  lines = ["# Is the PRM learnable? Exact step labels, equal data across backbones", "",
           f"Policy: `{lc.policy}`; held-out: {res['eval_problems']} problems x "
           f"{res['samples_per_problem']} samples (sample accuracy "
           f"{100 * res['sample_accuracy']:.1f}%); test half: {res['test_solutions']} "
           f"solutions, {res['test_steps']} steps ({100 * res['test_steps_right']:.1f}% right).",
           "", "## Training data (exact labels)", "",
           "| questions | labelled step prefixes | share right |", "|---|---|---|"]
  for n, d in data.items():
    lines.append(f"| {n} | {d['records']} | {d['right']:.3f} |")
  lines += ["", "## PRMs (test half; intervals: 95% cluster bootstrap over problems)", "",
            "Step AUROC: all steps, labels 1 until the first error. A score that knows only the "
            "step's index reaches " + _ci(res["position_baseline"]["step_auroc_ci"]) + " there. "
            "First-error AUROC: the first wrong step against the right steps before it, within "
            "each step index (`prm.metrics.first_error_auroc`; position alone: 0.5).", "",
            "| PRM | backbone | head | questions | train labels | steps x batch | saved step | "
            "train s | step AUROC | first-error AUROC within position | step acc @0.5 | "
            "ProcessBench F1, official (acc_err / acc_cor) | F1, tuned threshold (threshold) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for k, e in lc.prms.items():
    r, t = res["prms"][k], trained[k]
    off, pb = r["processbench_official"], r["processbench"]
    lines.append(
        f"| {k} | {e.backbone} | {e.head} | {e.size} | {t['train_labels']} | "
        f"{e.steps} x {e.batch} | {t['selected']['step']} | {t.get('train_seconds', 0):.0f} | "
        f"{_ci(r['step_auroc_ci'])} | {_ci(r['first_error_auroc_ci'])} | "
        f"{r['step']['accuracy']:.3f} | {off['f1']:.3f} "
        f"({off['acc_err']:.3f} / {off['acc_cor']:.3f}) | {pb['f1']:.3f} "
        f"({pb['threshold']:.2f}) |")
  lines += ["", "## Paired differences (same test steps, problems resampled together)", "",
            "| a - b | step AUROC [95% interval] | first-error AUROC within position |",
            "|---|---|---|"]
  for pair, e in res["paired"].items():
    f = res["paired_first_error"][pair]
    lines.append(f"| {pair} | {e['value']:+.3f} [{e['lo']:+.3f}, {e['hi']:+.3f}] | "
                 f"{f['value']:+.3f} [{f['lo']:+.3f}, {f['hi']:+.3f}] |")
  md = "\n".join(lines) + "\n"
  with atomic_file(os.path.join(wd, "report.md")) as f:
    f.write(md)
  write_json_atomic(os.path.join(wd, "report.json"),
                    {"data": data, "train": trained, "eval": res})
  return md


def run(config, wd: str, log=print, backend=None) -> dict:
  """`backend` (tests): a text-completion backend instead of loading `learn.policy`."""
  os.makedirs(wd, exist_ok=True)
  if backend is None:
    backend = serve.load(config.learn.policy, max_batch=512)
  paths = stage_data(config, wd, backend, log)
  data = {}
  for n, p in paths.items():
    recs = [r for _, r in jsonl_records(p)]
    data[n] = {"records": len(recs), "right": float(np.mean([r["mc"] for r in recs]))}
  problems, sols = stage_heldout(config, wd, backend, log)
  trained = stage_train(config, wd, paths, log)
  res = stage_eval(config, wd, problems, sols, log)
  md = write_report(wd, config, data, trained, res)
  log(md)
  return {"data": data, "train": trained, "eval": res}


def _cli_job(config, workdir):
  pipeline.use_config_dir_of(cli.config_path())
  run(config, workdir)


if __name__ == "__main__":
  cli.config_main(_cli_job, "configs/prm_learnability.py", "runs/prm_learnability")
