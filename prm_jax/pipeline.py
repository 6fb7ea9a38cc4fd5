"""The end-to-end process-supervision pipeline on the arithmetic env:

    python -m prm_jax.pipeline --config=configs/prm_arith.py --workdir=runs/prm_pipeline

1. trains the tiny policy (`prm_jax.policy.sft`; skipped when `pipeline.policy_checkpoint`
   is set or `<workdir>/policy/policy_model` exists);
2. collects OmegaPRM labels on `train_questions` problems with the in-process policy, then
   Math-Shepherd labels on the same problems with the same rollouts per question;
3. samples `orm_samples` graded solutions per training problem (outcome-model data);
4. trains a PRM on each label set (the `config.prm` objective) and an ORM, all through the
   `mode_jax` trainer (`prm_jax.prm.train.prm_train`), plus one PRM on the OmegaPRM records
   per extra label source in `pipeline.label_sources` (e.g. exact, consensus: the same
   rollouts, other targets; `prm_jax.prm.label_sources`), and one per `pipeline.prm_adapters`
   entry (lora, mode): adapters + head on the frozen policy instead of full fine-tuning;
5. on `eval_questions` held-out problems (`heldout_problems`: drawn with `eval_seed`, none of
   them among the policy's SFT problems, the collection questions or each other) samples
   `max_n` solutions each and reports: step
   accuracy / AUROC against the exact checker, ProcessBench F1 by the official protocol
   (threshold 0.5) and the tuned variant (threshold chosen on the
   first half of the problems, reported on the second), the "answer right, process wrong"
   slice, and accuracy vs N of majority vote, PRM-weighted self-consistency (four
   aggregations), best-of-N and ORM-weighted vote with bootstrap intervals, the ceilings
   (pass@N: best-of-N with a verifier that knows the answer; an oracle process verifier that
   knows each solution's first error), a verifier without training (the policy's own mean
   token probability, best-of-N and weighted vote; when the backend reports log-probs, as the
   in-process sampler does), and the paired difference of each verifier minus
   majority at N = `compare_n`, also as a share of pass@N's headroom over majority;
6. PRM-guided step-level beam search (`prm_jax.step_search`; `pipeline.beam_width` 0 skips
   it) with its generated tokens per problem and the sampling methods at the nearest N.
Writes `<workdir>/report.md`, `report.json` and PNG plots. Every stage resumes: finished
stages are skipped on a re-run (their outputs exist), collection resumes per question.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import time

import ml_collections
import numpy as np

from mode_jax import cli
from mode_jax.atomic_io import atomic_file, write_json_atomic, write_jsonl_atomic
from mode_jax.config_files import sibling
from mode_jax.dataeval import stats
from prm_jax import collect, evaluate, step_search, step_stats, verify
from prm_jax import steps as steps_lib
from prm_jax.questions import normalize_question
from prm_jax.envs import arithmetic as A
from mode_jax import serve
from mode_jax.serve.api import Sampling
from prm_jax.policy import sft
from prm_jax.policy.base import TemplatePolicy
from prm_jax.prm import train as prm_train_lib


def _load_sibling(name: str):
  """A config beside the pipeline's config file (policy_arith, omegaprm_arith)."""
  return sibling(_CONFIG_PATH[0], name)


_CONFIG_PATH = ["configs/prm_arith.py"]


def use_config_dir_of(path: str) -> None:
  """Read the sibling configs (policy_arith, omegaprm_arith) beside the config file `path`."""
  _CONFIG_PATH[0] = path


def stage_policy(config, wd, log) -> str:
  """Stage 1: the policy checkpoint (`pipeline.policy_checkpoint`, else trained once)."""
  p = config.pipeline
  if p.policy_checkpoint:
    return p.policy_checkpoint
  pc = _load_sibling("policy_arith").get_config()
  pc.train.steps = p.policy_steps
  out = os.path.join(wd, "policy")
  if not os.path.exists(os.path.join(out, "policy_eval.json")):
    log("== 1. policy (tiny backbone, SFT on generated solutions)")
    sft.run(pc, out, log=log)
  return os.path.join(out, "policy_model")


def collect_config(config, method: str, policy_ckpt: str, budget: int = 0):
  """The collection config of `method` with the pipeline's questions, policy and budget."""
  p = config.pipeline
  c = _load_sibling("omegaprm_arith").get_config("jax")
  c.method = method
  c.policy.checkpoint = policy_ckpt
  c.questions.num = p.train_questions
  c.questions.seed = p.train_seed
  c.search.search_limit = p.search_limit
  c.shepherd.k = c.search.k
  c.shepherd.rollout_budget = budget
  c.shepherd.max_solutions = 32
  c.search.record_root_rollouts = c.shepherd.record_root_rollouts = p.record_root_rollouts
  c.log_every = 1000
  return c


def stage_collect(config, wd, policy_ckpt, log, policy=None) -> dict:
  """Stage 2: OmegaPRM and Math-Shepherd labels at the same rollout budget."""
  out = {}
  log("== 2. OmegaPRM labels")
  out["omegaprm"] = collect.collect(collect_config(config, "omegaprm", policy_ckpt),
                                    os.path.join(wd, "collect_omegaprm"), log=log,
                                    policy=policy)
  per_q = math.ceil(out["omegaprm"]["rollouts"] / max(1, out["omegaprm"]["questions"]))
  log(f"== 2b. Math-Shepherd labels, {per_q} rollouts per question (OmegaPRM's average)")
  out["math_shepherd"] = collect.collect(
      collect_config(config, "math_shepherd", policy_ckpt, budget=per_q),
      os.path.join(wd, "collect_shepherd"), log=log, policy=policy)
  return out


def training_questions(config) -> dict[str, set]:
  """{split: normalised questions} of every split the pipeline trains or tunes on: the
  policy's SFT problems (train and its validation, from the policy config beside the pipeline's
  config: `pipeline.policy_checkpoint` is assumed to come from it too) and the collection
  questions (OmegaPRM and Math-Shepherd records, the ORM's samples, hence every PRM's and the
  ORM's training and dev data)."""
  pc = _load_sibling("policy_arith").get_config()
  arith = A.ArithmeticConfig(**dict(pc.data.arith))
  out = {}
  for split in ("train", "validation"):
    n, seed = sft.split_size_seed(pc.data, split)
    out[f"policy_sft_{split}"] = {normalize_question(p.question)
                                  for p in A.make_problems(n, arith, seed=seed)}
  qs = collect.load_questions(collect_config(config, "omegaprm", "").questions)[0]
  out["collection"] = {normalize_question(q["question"]) for q in qs}
  return out


def heldout_problems(config, max_draws_per_problem: int = 200, exclude=()) -> list:
  """The `pipeline.eval_questions` held-out problems of `pipeline.eval_seed`, disjoint by
  construction from every training split (`training_questions`), from the questions in
  `exclude` (another study's training questions) and from each other: problems
  are drawn from the seed's stream in order and a draw whose normalised question was seen
  before is skipped (resampled). Raises ValueError when the generator's space cannot give that
  many new problems. The study, the pipeline's evaluation and any outside check call this."""
  p = config.pipeline
  arith = A.ArithmeticConfig(**dict(collect_config(config, "omegaprm", "").questions.arith))
  seen = set().union(*training_questions(config).values(),
                     {normalize_question(q) for q in exclude})
  rng, out = random.Random(p.eval_seed), []
  for i in range(max(1, p.eval_questions) * max_draws_per_problem):
    if len(out) == p.eval_questions:
      break
    prob = A.make_problem(rng, arith, f"heldout-{p.eval_seed}-{i}")
    key = normalize_question(prob.question)
    if key not in seen:
      seen.add(key)
      out.append(prob)
  if len(out) < p.eval_questions:
    raise ValueError(f"pipeline.eval_questions={p.eval_questions}: only {len(out)} problems "
                     f"outside the training splits in {i + 1} draws of the arithmetic "
                     f"generator ({arith}); widen pipeline's questions.arith or ask for fewer")
  return out


# How the pipeline samples its policy outside collection (ORM data, evaluation, beam search).
SAMPLING = Sampling(max_tokens=96, temperature=1.0)


def sample_solutions(backend, template, problems, n, seed) -> list[list[str]]:
  """`n` sampled solution texts per problem."""
  prompts = [template.format(question=p.question) for p in problems]
  return [[c.text for c in comps] for comps in backend.complete(prompts, n, seeds=seed,
                                                                   **SAMPLING.kwargs())]


def stage_orm_data(config, wd, backend, log) -> str:
  """Stage 3: graded samples of the training problems for the ORM; returns its JSONL path."""
  p = config.pipeline
  path = os.path.join(wd, "orm_outcomes.jsonl")
  if not os.path.exists(path):
    log(f"== 3. ORM data: {p.orm_samples} graded samples per training problem")
    probs = A.make_problems(p.train_questions, A.ArithmeticConfig(**dict(
        collect_config(config, "omegaprm", "").questions.arith)), seed=p.train_seed)
    sols = sample_solutions(backend, config.prm.template, probs, p.orm_samples, seed=1)
    write_jsonl_atomic(path, [{"question": pr.question, "solution": s,
                               "correct": A.is_correct(s, pr.answer)}
                              for pr, ss in zip(probs, sols) for s in ss])
  return path


def stage_train(config, wd, name, *, records=None, outcomes="", objective=None, labels=None,
                adapter=None, backbone="", log=print):
  """Trains PRM `name` into `<wd>/prm_<name>`; `backbone`: the checkpoint it starts from (the
  pipeline's own policy; empty: config.checkpoint.hf_path)."""
  out = os.path.join(wd, f"prm_{name}")
  done = os.path.join(out, "prm_train.json")
  if os.path.exists(done):
    return json.load(open(done))
  c = ml_collections.ConfigDict(config.to_dict())
  if backbone:
    c.checkpoint.hf_path = backbone
  if records:
    c.prm.records = (records,)
  c.prm.outcomes = outcomes
  if objective:
    c.prm.objective = objective
  if labels:
    c.prm.labels = labels
  if adapter:                # a frozen backbone: adapters + head train, the policy stays
    c.adapter = ml_collections.ConfigDict(dict(adapter))
  c.train.steps = config.pipeline.prm_steps
  log(f"== 4. PRM '{name}' ({c.prm.objective}, labels {c.prm.get('labels', 'mc')})")
  return prm_train_lib.prm_train(c, out, log=log)


def entry_config(config, entry, records: str, policy_ckpt: str, where: str = "PRM entry"):
  """The prm_train config of a PRM entry {backbone, head, adapter, labels, steps, batch, lr}
  on `records`: backbone "policy" is `policy_ckpt` (fully fine-tuned unless the entry's adapter
  freezes it), any other value a `mode_jax.pretrained` name (its own tokenizer and BOS) with the
  entry's adapter; head scalar or tokens (the LM's own "+" / "-" logits at the step end)."""
  e = dict(entry)
  head = e.get("head", "scalar")
  if head not in prm_train_lib.HEADS:
    raise ValueError(f"{where}: head {head!r}, expected one of {prm_train_lib.HEADS}")
  c = ml_collections.ConfigDict(config.to_dict())
  c.prm.records = (records,)
  c.prm.labels = e.get("labels", "mc")
  c.prm.head = head
  backbone = e.get("backbone", "policy")
  if backbone == "policy":
    c.checkpoint.hf_path, c.checkpoint.pretrained = policy_ckpt, ""
  else:
    c.checkpoint.hf_path, c.checkpoint.pretrained = "", backbone
  c.adapter = ml_collections.ConfigDict(dict(e.get("adapter") or dict(method="none")))
  c.train.steps = int(e["steps"])
  c.train.batch_size = int(e["batch"])
  c.train.lr = float(e["lr"])
  c.train.eval_every = max(1, c.train.steps // 8)
  c.train.log_every = max(1, c.train.steps // 20)
  return c


def train_entry(c, out: str, log=print) -> dict:
  """`prm_train(c)` into `out` once (its `prm_train.json`, with `train_seconds`, marks it
  done; a rerun returns it)."""
  done = os.path.join(out, "prm_train.json")
  if not os.path.exists(done):
    t0 = time.perf_counter()
    prm_train_lib.prm_train(c, out, log=log)
    with open(done) as f:
      s = json.load(f)
    s["train_seconds"] = time.perf_counter() - t0
    write_json_atomic(done, s)
  with open(done) as f:
    return json.load(f)


def label_source_names(config) -> list[str]:
  """The extra label sources the pipeline trains OmegaPRM-record PRMs on (besides "mc")."""
  return [x for x in config.pipeline.get("label_sources", ()) if x != "mc"]


ADAPTER_PRMS = {   # PRMs on a frozen policy backbone (the default PRM fine-tunes it fully)
    "lora": dict(method="lora", experts=1, rank=8, targets=("q", "v")),
    "mode": dict(method="mode", experts=4, rank=8, block=2, targets=("q", "v")),
}


def pretrained_prms(config) -> dict:
  """`pipeline.pretrained_prms` ({name: entry}, `entry_config`): PRMs on the OmegaPRM records
  that start from another backbone (e.g. Gemma 3 270M + LoRA) instead of the policy."""
  return dict(config.pipeline.get("pretrained_prms", None) or {})


def _extra_label(name: str, config=None) -> str:
  e = pretrained_prms(config).get(name) if config is not None else None
  if e is not None:
    method = (dict(e.get("adapter") or {}).get("method") or "none")
    return (f"{name} ({e['backbone']} + {method}, {e.get('head', 'scalar')} head, "
            f"{e.get('labels', 'mc')} labels)")
  return name.replace("_adapter", " adapter, frozen policy") if name.endswith("_adapter") \
      else f"{name} labels"


def paired_aggregations(config) -> tuple:
  """The aggregations whose PRM-weighted vote is compared with majority (default: product)."""
  aggs = tuple(config.pipeline.get("paired_aggregations", ("product",)))
  bad = [a for a in aggs if a not in verify.AGGREGATIONS]
  if bad:
    raise ValueError(f"pipeline.paired_aggregations: unknown {bad}; known "
                     f"{verify.AGGREGATIONS}")
  return aggs


def extra_prm_names(config) -> list[str]:
  """Names (without the "omegaprm_" prefix) of the extra PRMs on the OmegaPRM records: one per
  extra label source, one per frozen-backbone adapter in `pipeline.prm_adapters`."""
  names = label_source_names(config)
  for a in config.pipeline.get("prm_adapters", ()):
    if a not in ADAPTER_PRMS:
      raise ValueError(f"pipeline.prm_adapters: unknown {a!r}; known {sorted(ADAPTER_PRMS)}")
    names.append(f"{a}_adapter")
  clash = sorted(set(pretrained_prms(config)) & set(names))
  if clash:
    raise ValueError(f"pipeline.pretrained_prms: {clash} also name a label source or adapter")
  return names + list(pretrained_prms(config))


def step_labels(first_error, num_steps: int) -> list[int]:
  """1 for every step before the first error (all steps when there is none)."""
  return [int(first_error is None or i < first_error) for i in range(num_steps)]


def checked_items(problems, sols) -> tuple[list, list, list, list, list]:
  """(items [(question, steps)], owner problem index, checker result, exact step labels, gold
  first error or -1) of every sampled solution, one step per line."""
  split = steps_lib.by_delimiter()
  items = [(pr.question, split(s) or [""]) for pr, ss in zip(problems, sols) for s in ss]
  owner = [i for i, ss in enumerate(sols) for _ in ss]
  checks = [A.check(problems[owner[j]], "".join(st)) for j, (_, st) in enumerate(items)]
  exact = [step_labels(c.first_error, len(st)) for c, (_, st) in zip(checks, items)]
  gold_fe = [-1 if c.first_error is None else c.first_error for c in checks]
  return items, owner, checks, exact, gold_fe


def eval_samples(config, wd, backend, problems, log) -> tuple[list, "list | None"]:
  """(`max_n` sampled solutions per held-out problem, their mean log-probability per token or
  None when the backend gives none), sampled once and cached in the workdir."""
  p = config.pipeline
  cache, cache_lp = (os.path.join(wd, f) for f in ("eval_samples.json", "eval_logprobs.json"))
  if os.path.exists(cache):
    sols = json.load(open(cache))
  else:
    log(f"== 5. sampling {p.max_n} solutions for each of {len(problems)} held-out problems")
    prompts = [config.prm.template.format(question=pr.question) for pr in problems]
    comps = backend.complete(prompts, p.max_n, seeds=2, **SAMPLING.kwargs())
    sols = [[c.text for c in cs] for cs in comps]
    if all(c.logprob is not None for cs in comps for c in cs):   # the policy's own verdict
      write_json_atomic(cache_lp, [[c.logprob / max(1, c.num_tokens) for c in cs]
                                   for cs in comps])
    write_json_atomic(cache, sols)
  return sols, (json.load(open(cache_lp)) if os.path.exists(cache_lp) else None)


def score_solutions(wd, scorers: dict, items, log) -> dict:
  """{name: per-solution step probabilities} of each trained PRM (`scorers`: name -> run
  directory), each cached in `<wd>/eval_scores/<name>.json` (a rerun resumes here)."""
  probs = {}
  for name, d in scorers.items():
    path = os.path.join(wd, "eval_scores", f"{name}.json")
    if os.path.exists(path):
      probs[name] = [np.asarray(x) for x in json.load(open(path))]
      continue
    t0 = time.perf_counter()
    probs[name] = prm_train_lib.scorer_from_dir(os.path.join(wd, d, "prm_model"),
                                            batch_size=256).score(items)
    write_json_atomic(path, [x.tolist() for x in probs[name]])
    log(f"   scored {len(items)} solutions with {name} in {time.perf_counter() - t0:.1f} s")
  return probs


def step_level(prms, probs, exact, gold_fe, checks, owner, half) -> dict:
  """Per PRM: step metrics against exact labels; ProcessBench first-error F1 on the problems
  from `half` on, by the official protocol (threshold 0.5, the earliest flagged step:
  "processbench_official") and the tuned variant (threshold chosen on the problems below
  `half`: "processbench"); and how often it flags right-answer solutions with a wrong step and
  with none (at the tuned threshold)."""
  dev = [j for j in range(len(exact)) if owner[j] < half]
  test = [j for j in range(len(exact)) if owner[j] >= half]
  out = {}
  for name in prms:
    flat_p = np.concatenate([probs[name][j] for j in test])
    flat_y = np.concatenate([exact[j] for j in test])
    pb = evaluate.processbench([probs[name][j] for j in dev], [gold_fe[j] for j in dev],
                               [probs[name][j] for j in test], [gold_fe[j] for j in test])
    slice_ = [j for j in test if checks[j].answer_correct and gold_fe[j] != -1]
    clean = [j for j in test if checks[j].answer_correct and gold_fe[j] == -1]
    flag = lambda js: float(np.mean([min(probs[name][j]) < pb["threshold"] for j in js])) \
        if js else float("nan")
    official = evaluate.processbench_official(
        {"test half": ([probs[name][j] for j in test], [gold_fe[j] for j in test])})
    out[name] = {"step": evaluate.step_metrics(flat_p, flat_y), "processbench": pb,
                 "first_error_auroc": evaluate.first_error_auroc(
                     [probs[name][j] for j in test], [exact[j] for j in test]),
                 "processbench_official": official["subsets"]["test half"],
                 "answer_right_process_wrong": {"solutions": len(slice_),
                                                "flagged": flag(slice_),
                                                "flagged_when_process_right": flag(clean)}}
  return out


def question_scores(problems, sols, items, prms, probs, checks, gold_fe, mean_lp) -> list:
  """Per held-out problem: gold, extracted answers and every verifier's score per sample
  (PRM aggregations, ORM, the oracle ceilings and the policy's likelihood)."""
  starts = np.cumsum([0] + [len(ss) for ss in sols])   # items of problem i: a contiguous block
  qs = []
  for i, pr in enumerate(problems):
    js = range(starts[i], starts[i] + len(sols[i]))
    q = {"gold": pr.answer, "answers": [A.extract_answer("".join(items[j][1])) for j in js],
         "num_steps": [len(items[j][1]) for j in js], "scores": {}}
    for name in prms:
      for agg in verify.AGGREGATIONS:
        q["scores"][f"{name}_{agg}"] = [verify.aggregate(probs[name][j], agg) for j in js]
    q["scores"]["orm"] = [float(probs["orm"][j][-1]) if len(probs["orm"][j]) else 0.0
                          for j in js]
    # ceilings: a verifier that knows the answer (best-of-N = pass@N) / the first error
    q["scores"]["oracle_answer"] = [float(a == pr.answer) for a in q["answers"]]
    q["scores"]["oracle_process"] = [float(gold_fe[j] == -1 and checks[j].complete) for j in js]
    if mean_lp is not None:   # no training: the policy's mean log-probability per token
      q["scores"]["policy_likelihood"] = [float(np.exp(x)) for x in mean_lp[i]]
    qs.append(q)
  return qs


def verification_methods(config, with_likelihood: bool) -> dict:
  """{curve label: (selection, score key)} of the accuracy-vs-N curves."""
  methods = {"pass@N (oracle answer check)": ("best_of_n", "oracle_answer"),
             "oracle process verifier, best-of-N": ("best_of_n", "oracle_process"),
             "majority vote": ("majority", None)}
  for agg in verify.AGGREGATIONS:
    methods[f"PRM-weighted ({agg}), OmegaPRM"] = ("weighted", f"omegaprm_{agg}")
  methods["PRM-weighted (product), Math-Shepherd"] = ("weighted", "math_shepherd_product")
  methods["best-of-N (product), OmegaPRM"] = ("best_of_n", "omegaprm_product")
  methods["best-of-N (product), Math-Shepherd"] = ("best_of_n", "math_shepherd_product")
  methods["ORM-weighted vote"] = ("weighted", "orm")
  if with_likelihood:
    methods["policy likelihood, best-of-N"] = ("best_of_n", "policy_likelihood")
    methods["policy-likelihood-weighted vote"] = ("weighted", "policy_likelihood")
  for x in extra_prm_names(config):
    for agg in dict.fromkeys(("product",) + paired_aggregations(config)):
      methods[f"PRM-weighted ({agg}), OmegaPRM {_extra_label(x, config)}"] = (
          "weighted", f"omegaprm_{x}_{agg}")
  return methods


def stage_eval(config, wd, backend, log) -> tuple[dict, list, list]:
  """(results, held-out problems, their sampled solutions): scores, curves, paired
  differences; the beam search (`stage_beam`) runs after the report's first write."""
  p = config.pipeline
  problems = heldout_problems(config)
  sols, mean_lp = eval_samples(config, wd, backend, problems, log)
  items, owner, checks, exact, gold_fe = checked_items(problems, sols)
  prms = ["omegaprm", "math_shepherd"] + [f"omegaprm_{x}" for x in extra_prm_names(config)]
  probs = score_solutions(wd, {**{k: f"prm_{k}" for k in prms}, "orm": "prm_orm"}, items, log)
  res: dict = {"eval_problems": len(problems), "samples_per_problem": p.max_n,
               "sample_accuracy": float(np.mean([c.answer_correct for c in checks])),
               "process_correct_rate": float(np.mean([g == -1 and c.complete
                                                      for g, c in zip(gold_fe, checks)]))}
  res.update(step_level(prms, probs, exact, gold_fe, checks, owner, len(problems) // 2))
  test = [j for j in range(len(items)) if owner[j] >= len(problems) // 2]
  pairs = [tuple(x) for x in p.get("step_pairs", ())]
  try:
    res["step_intervals"] = step_stats.intervals(prms, probs, exact, owner, test, p.n_boot,
                                                 pairs)
  except KeyError as e:
    raise ValueError(f"pipeline.step_pairs: {e.args[0]}: both sides must be PRMs of the "
                     f"pipeline ({prms})") from e
  # the baseline that knows only step indices (its point estimate, from the intervals)
  res["position_step_auroc"] = res["step_intervals"]["position_step_auroc_ci"]["value"]
  qs = question_scores(problems, sols, items, prms, probs, checks, gold_fe, mean_lp)
  methods = verification_methods(config, mean_lp is not None)
  ns = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= p.max_n]
  t0 = time.perf_counter()
  res["curves"] = verify.accuracy_curves(qs, methods, ns, n_boot=p.n_boot, seed=0)
  keys = [f"{k}_{agg}" for k in prms for agg in verify.AGGREGATIONS] + (
      ["policy_likelihood"] if mean_lp is not None else [])
  res["best_of_n_by_steps"] = {int(n): verify.best_of_n_by_steps(qs, keys, int(n))
                               for n in p.compare_n}
  res["paired"] = {}
  cmp_ns = p.compare_n if isinstance(p.compare_n, (tuple, list)) else (p.compare_n,)
  for n_cmp in sorted({min(int(n), p.max_n) for n in cmp_ns}):
    res["paired"].update(paired_at(qs, methods, n_cmp, p.n_boot, config,
                                   suffix=f" @ N={n_cmp}" if len(cmp_ns) > 1 else ""))
  log(f"   accuracy curves in {time.perf_counter() - t0:.1f} s")
  return res, problems, sols


def paired_at(qs, methods, n_cmp, n_boot, config, suffix="") -> dict:
  """Each verifier minus majority at N = n_cmp (paired bootstrap), with its share of the
  oracle's (pass@N's) headroom over majority."""
  out = {}
  aggs = tuple(dict.fromkeys(("product", "last") + paired_aggregations(config)))
  for label in (*[f"PRM-weighted ({a}), OmegaPRM" for a in aggs],
                "PRM-weighted (product), Math-Shepherd",
                *[f"PRM-weighted ({a}), OmegaPRM {_extra_label(x, config)}"
                  for x in extra_prm_names(config) for a in paired_aggregations(config)],
                "oracle process verifier, best-of-N", "pass@N (oracle answer check)"):
    out[label] = verify.paired_difference(qs, methods[label], methods["majority vote"], n_cmp,
                                          n_boot=n_boot, seed=1)
  # a gain as a share of the oracle's headroom over majority (same subsets, same seed)
  room = out["pass@N (oracle answer check)"]["mean"]
  for d in out.values():
    d["share_of_headroom"] = d["mean"] / room if room > 0 else float("nan")
  return {k + suffix: v for k, v in out.items()}


def stage_beam(config, wd, backend, problems, sols, curves, log) -> dict:
  """PRM-guided step-level beam search with the OmegaPRM PRM on the held-out problems, with
  the token budget it used and the sampling methods' accuracy at the nearest N."""
  p = config.pipeline
  cfg = step_search.BeamConfig(beam_width=p.beam_width, expand=p.beam_expand)
  cache = os.path.join(wd, "beam_search.json")
  if os.path.exists(cache):
    out = json.load(open(cache))
  else:
    log(f"== 6. step-level beam search (beam {cfg.beam_width}, {cfg.expand} per beam)")
    out = step_search.beam_search(
        TemplatePolicy(backend, config.prm.template, SAMPLING),
        prm_train_lib.scorer_from_dir(os.path.join(wd, "prm_omegaprm", "prm_model")),
        [pr.question for pr in problems], cfg, seed=3)
    write_json_atomic(cache, out)
  hits = np.array([float(A.is_correct(o["solution"], pr.answer))
                   for o, pr in zip(out, problems)])
  acc = stats.bootstrap(lambda i: float(hits[i].mean()), len(hits), n_boot=p.n_boot, seed=0)
  tokens = float(np.mean([o["tokens"] for o in out]))
  # samples of the tiny policy / simulator: one token per UTF-8 byte (as the beam counts)
  per_sample = float(np.mean([len(s.encode()) for ss in sols for s in ss]))
  n_equal = tokens / max(per_sample, 1e-9)
  ns = sorted(next(iter(curves.values())))
  near = {n: {m: curves[m][n]["mean"] for m in ("majority vote",
                                                "PRM-weighted (product), OmegaPRM",
                                                "best-of-N (product), OmegaPRM")}
          for n in ns if n in (max([x for x in ns if x <= n_equal], default=ns[0]),
                               min([x for x in ns if x >= n_equal], default=ns[-1]))}
  return {"beam_width": cfg.beam_width, "expand": cfg.expand, "accuracy": acc,
          "tokens_per_problem": tokens, "tokens_per_sample": per_sample,
          "equal_token_n": n_equal, "sampling_at_nearest_n": near,
          "finished": float(np.mean([o["finished"] for o in out]))}


def write_report(wd: str, res: dict, stats: dict) -> str:
  """Writes report.md and the accuracy-vs-N plot of the verification result; returns the md."""
  verify.plot_curves(res["curves"], os.path.join(wd, "accuracy_vs_n.png"),
                "held-out arithmetic problems")
  lines = ["# Process supervision on the arithmetic env", ""]
  col = stats["collect"]
  lines += ["## Labels", "", "| labels | questions | rollouts | policy calls | labelled prefixes |",
            "|---|---|---|---|---|"]
  for k, s in col.items():
    lines.append(f"| {k} | {s['questions']} | {s['rollouts']} | {s['policy_calls']} | "
                 f"{s['labelled_prefixes']} |")
  lines += ["", "## PRM training labels", "",
            "| PRM | label source | records kept | labels changed | dropped (judge abstained / "
            "disagreed) | train labels (weight) |", "|---|---|---|---|---|---|"]
  for k, t in stats.get("prm_train", {}).items():
    ls = t.get("label_source") or {}
    lines.append(f"| {k} | {ls.get('labels', '?')} | {ls.get('kept', '-')} | "
                 f"{ls.get('changed', '-')} | {ls.get('dropped_unjudged', '-')} / "
                 f"{ls.get('dropped_disagree', '-')} | {t.get('train_labels')} "
                 f"({t.get('train_label_weight')}) |")
  lines += ["", "## Step-level (test half, exact labels from the checker)", "",
            "Step AUROC counts every step (labels 1 until the first error), so step position "
            "alone ranks them: " + (f"{res['position_step_auroc']:.3f} here" if
                                    "position_step_auroc" in res else "not computed") +
            ". First-error AUROC compares the first wrong step with the right steps before it "
            "within each step index (position alone: 0.5).", "",
            "| PRM trained on | step acc | step AUROC | first-error AUROC within position | "
            "ProcessBench F1, official: threshold "
            "0.5 (acc_err / acc_cor) | ProcessBench-style F1, threshold tuned on the other half "
            "(acc_err / acc_cor, threshold) | answer-right-process-wrong flagged | flagged "
            "when process right |",
            "|---|---|---|---|---|---|---|---|"]
  for k in [k for k in res if isinstance(res[k], dict) and "processbench" in res[k]]:
    r = res[k]
    pb, sl = r["processbench"], r["answer_right_process_wrong"]
    off = r.get("processbench_official")
    off = (f"{off['f1']:.3f} ({off['acc_err']:.3f} / {off['acc_cor']:.3f})" if off else "-")
    fe = r.get("first_error_auroc")
    fe = "-" if fe is None else f"{fe:.3f}"
    lines.append(f"| {k} | {r['step']['accuracy']:.3f} | {r['step']['auroc']:.3f} | {fe} | "
                 f"{off} | "
                 f"{pb['f1']:.3f} ({pb['acc_err']:.3f} / {pb['acc_cor']:.3f}, "
                 f"{pb['threshold']:.2f}) | {sl['flagged']:.3f} of {sl['solutions']} | "
                 f"{sl['flagged_when_process_right']:.3f} |")
  iv = res.get("step_intervals")
  if iv:
    ci = lambda e: f"{e['value']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"
    lines += ["", "Intervals (95%, bootstrap over test problems, a problem's solutions "
              f"together): position alone {ci(iv['position_step_auroc_ci'])} step AUROC.", "",
              "| PRM | step AUROC | first-error AUROC within position |", "|---|---|---|"]
    lines += [f"| {k} | {ci(e['step_auroc_ci'])} | {ci(e['first_error_auroc_ci'])} |"
              for k, e in iv["prms"].items()]
    if iv["paired"]:
      lines += ["", "| a - b (same steps, paired) | step AUROC | first-error AUROC within "
                "position |", "|---|---|---|"]
      lines += [f"| {k} | {ci(d)} | {ci(iv['paired_first_error'][k])} |"
                for k, d in iv["paired"].items()]
  lines += ["", f"## Accuracy vs N ({res['eval_problems']} held-out problems, sample "
                f"accuracy {100 * res['sample_accuracy']:.1f}%; mean [95% bootstrap interval])",
            "", verify.curves_markdown(res["curves"]), "", "![accuracy vs N](accuracy_vs_n.png)", "",
            "## Verifiers minus majority vote (paired bootstrap)", "",
            "Share of headroom: the gain over majority divided by the oracle answer check's "
            "(pass@N) gain over majority at the same N.", "",
            "| method | N | difference (points) | 95% interval | share of headroom |",
            "|---|---|---|---|---|"]
  for label, d in res["paired"].items():
    lines.append(f"| {label} | {d['n']} | {100 * d['mean']:+.1f} | "
                 f"[{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}] | "
                 f"{d.get('share_of_headroom', float('nan')):.2f} |")
  for n, by_key in res.get("best_of_n_by_steps", {}).items():
    lines += ["", f"## What best-of-N picks, by number of steps (first {n} samples per problem)",
              "", "Mean steps of the picked solution against the candidates with an answer; "
              "a score that falls with the number of steps picks the shortest.", "",
              "| score | best-of-N accuracy | picked: steps | candidates: steps (right / wrong) "
              "| picked the shortest |", "|---|---|---|---|---|"]
    for key, d in by_key.items():
      lines.append(f"| {key} | {100 * d['accuracy']:.1f} | {d['picked_steps']:.2f} | "
                   f"{d['candidate_steps']:.2f} ({d['right_candidate_steps']:.2f} / "
                   f"{d['wrong_candidate_steps']:.2f}) | {100 * d['picked_shortest']:.0f}% |")
  bs = res.get("beam_search")
  if bs:
    a = bs["accuracy"]
    lines += ["", "## PRM-guided step-level beam search (OmegaPRM PRM)", "",
              f"Beam {bs['beam_width']}, {bs['expand']} continuations per beam: accuracy "
              f"{100 * a['value']:.1f} [{100 * a['lo']:.1f}, {100 * a['hi']:.1f}], "
              f"{bs['tokens_per_problem']:.0f} generated tokens per problem = "
              f"{bs['equal_token_n']:.1f} sampled solutions of {bs['tokens_per_sample']:.0f} "
              f"tokens; {100 * bs['finished']:.0f}% finished. Sampling at the nearest N:", "",
              "| N | " + " | ".join(next(iter(bs["sampling_at_nearest_n"].values()))) + " |",
              "|---|" + "---|" * len(next(iter(bs["sampling_at_nearest_n"].values())))]
    for n, row in bs["sampling_at_nearest_n"].items():
      lines.append(f"| {n} | " + " | ".join(f"{100 * v:.1f}" for v in row.values()) + " |")
  md = "\n".join(lines) + "\n"
  with atomic_file(os.path.join(wd, "report.md")) as f:
    f.write(md)
  write_json_atomic(os.path.join(wd, "report.json"), {"eval": res, **stats})
  return md


def run(config, wd: str, log=print, backend=None) -> dict:
  """`backend` (tests): a text-completion backend used instead of training and loading the
  policy (e.g. `policy.simulated.SimulatedBackend`)."""
  t0 = time.perf_counter()
  os.makedirs(wd, exist_ok=True)
  timings = {}
  policy_ckpt = "" if backend is not None else stage_policy(config, wd, log)
  timings["policy"] = time.perf_counter() - t0
  col = stage_collect(config, wd, policy_ckpt, log, policy=None if backend is None else
                      TemplatePolicy(backend, config.prm.template, SAMPLING))
  timings["collect"] = time.perf_counter() - t0 - sum(timings.values())
  if backend is None:
    backend = serve.load(policy_ckpt, max_batch=512)
  outcomes = stage_orm_data(config, wd, backend, log)
  # every PRM starts from the policy that wrote the data (not whatever checkpoint.hf_path names)
  train = functools.partial(stage_train, config, wd, backbone=policy_ckpt, log=log)
  records = os.path.join(wd, "collect_omegaprm", "records.jsonl")
  trained = {
      "omegaprm": train("omegaprm", records=records),
      "math_shepherd": train("math_shepherd", records=os.path.join(
          wd, "collect_shepherd", "records.jsonl")),
      "orm": train("orm", outcomes=outcomes, objective="orm")}
  for x in label_source_names(config):
    trained[f"omegaprm_{x}"] = train(f"omegaprm_{x}", records=records, labels=x)
  for a in config.pipeline.get("prm_adapters", ()):
    trained[f"omegaprm_{a}_adapter"] = train(f"omegaprm_{a}_adapter", records=records,
                                             adapter=ADAPTER_PRMS[a])
  for name, e in pretrained_prms(config).items():
    log(f"== 4. PRM 'omegaprm_{name}' ({_extra_label(name, config)})")
    trained[f"omegaprm_{name}"] = train_entry(
        entry_config(config, e, records, policy_ckpt, where=f"pipeline.pretrained_prms.{name}"),
        os.path.join(wd, f"prm_omegaprm_{name}"), log=log)
  timings["train"] = time.perf_counter() - t0 - sum(timings.values())
  res, problems, sols = stage_eval(config, wd, backend, log)
  timings["eval"] = time.perf_counter() - t0 - sum(timings.values())
  stats = {"collect": {k: {kk: v[kk] for kk in ("questions", "rollouts", "policy_calls",
                                                 "labelled_prefixes", "tokens")}
                       for k, v in col.items()},
           "prm_train": {k: {kk: v.get(kk) for kk in ("train_labels", "validation_labels",
                                                       "train_label_weight", "label_source",
                                                       "dev")} for k, v in trained.items()},
           "timings_s": timings}
  if config.pipeline.get("beam_width", 0):
    write_report(wd, res, stats)     # the verification result first; the beam search after
    res["beam_search"] = stage_beam(config, wd, backend, problems, sols, res["curves"], log)
    timings["beam"] = time.perf_counter() - t0 - sum(timings.values())
  timings["total"] = time.perf_counter() - t0
  md = write_report(wd, res, stats)
  log(md)
  log(f"pipeline done in {timings['total']:.0f} s; report in {wd}/report.md")
  return {"eval": res, **stats}


def _cli_job(config, workdir):
  use_config_dir_of(cli.config_path())
  run(config, workdir)


if __name__ == "__main__":
  cli.config_main(_cli_job, "configs/prm_arith.py", "runs/prm_pipeline")
