"""The MoDE paper's comparison as a seeded study: LoRA, MoLoRA, MoLoRA-SD and MoDE at matched
added-parameter budgets, plus one LoRA per task at the same total budget, all from the same
base, mixture, steps and learning-rate rule (one lr for all, or `compare.lr_sweep`: each method's
lr chosen on a seed of its own by validation loss), each over `compare.seeds`.

    python -m mode_jax.experiments.compare --config=configs/compare_gemma3.py --workdir=DIR

Every (method, seed) is one run in `DIR/runs/<method>/seed<k>/` whose `result.json` (per-task
ROUGE-L / exact match, added parameters, seconds, routing usage) is written atomically when it
finishes; a run interrupted midway resumes from its training checkpoint. The same command
therefore continues a study across sessions (within a seed the primary comparison's two methods
train first), and `--only_report` rebuilds the tables from the finished runs. Writes
`results.json` / `results.md` (means with 95% t-intervals over seeds, per-task tables, the
primary paired comparison fixed in `compare.primary`, task-level win rates with a sign test, the
training losses from each run's `train/metrics.jsonl` paired against the primary's reference),
`per_task_scores.png`, `train_loss.png` and, for routed methods, `routing_<method>.png`
(per-task expert usage of the most task-specific block, and the task specificity of every
block). Methods with `rank: 0` in the config get the rank whose added parameters come closest
to the reference method's; a method further than `compare.budget_tolerance` from it is an
error.
"""

from __future__ import annotations

import os

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from mode_jax import cli
from mode_jax.adapters import AdapterConfig, count_params, lora_rank_for_budget
from mode_jax.atomic_io import atomic_file, read_json, write_json_atomic
from mode_jax.data import tasks
from mode_jax.experiments import study_plots, study_stats
from mode_jax.experiments.study_stats import slug
from mode_jax.model import Transformer, hf_io
from mode_jax.data.vocab import make_vocab
from mode_jax.experiments import per_task
from mode_jax.train import bases, evaluate, run, run_data
from mode_jax.train.step import forward

def matched(model_cfg, entry: dict, targets, budget: int) -> AdapterConfig:
  """AdapterConfig of `entry`; rank 0 means: the rank whose count is closest to `budget`."""
  e = {k: v for k, v in entry.items() if k != "label"}
  e["targets"] = tuple(targets)
  e["block"] = e.get("block") or None
  if e.get("rank"):
    return AdapterConfig(**e)
  best = min(range(1, 513), key=lambda r: abs(count_params(
      model_cfg, AdapterConfig(**dict(e, rank=r))) - budget))
  return AdapterConfig(**dict(e, rank=best))


def plan(config, model_cfg) -> tuple[int, list[dict]]:
  """(reference budget, [{"label", "acfg", "added_params"}]) of the configured methods."""
  targets = tuple(config.compare.targets)
  budget = count_params(model_cfg, matched(model_cfg, dict(config.compare.reference),
                                           targets, 0))
  out = []
  for entry in config.compare.methods:
    acfg = matched(model_cfg, dict(entry), targets, budget)
    n = count_params(model_cfg, acfg)
    if abs(n / budget - 1) > config.compare.budget_tolerance:
      raise ValueError(f"config.compare.methods: {acfg.describe()} adds {n:,} parameters, "
                       f"{100 * (n / budget - 1):+.1f}% from the reference's {budget:,} (over "
                       f"budget_tolerance={config.compare.budget_tolerance})")
    out.append({"label": entry.get("label") or acfg.describe(), "acfg": acfg,
                "added_params": n})
  return budget, out


def per_task_rank(config, model_cfg, n_tasks: int, budget: int) -> int:
  """The LoRA rank whose `n_tasks` copies come closest to the reference budget."""
  return lora_rank_for_budget(model_cfg, config.compare.targets, n_tasks, budget)


def routing_usage(out: run.RunResult) -> np.ndarray:
  """[tasks, blocks, experts]: each task's mean routing weight per routed block (layer x
  projection x rank block) and expert, over one packed validation batch of that task (real
  tokens; only the rows' tail padding is not masked)."""
  model = Transformer(out.model_cfg, adapter=out.acfg)
  params = evaluate.full_params(out.state.params, out.frozen, False)
  data = out.spec.data
  fwd = jax.jit(lambda p, b: forward(model, p, b, mutable=("routing",), head=False)[1])
  rows = []
  for name in data.evals:
    batch = next(tasks.get_dataset(name, "validation", data.lengths, batch_size=4,
                                   shuffle=False, pack=True, num_epochs=None,
                                   bos_id=data.bos_id).as_numpy_iterator())
    state = fwd(params, {k: jnp.asarray(v) for k, v in batch.items()})
    ws = [np.asarray(v[0]) for p, v in jax.tree_util.tree_flatten_with_path(
        state["routing"], is_leaf=lambda x: isinstance(x, tuple))[0]
          if "expert_weight" in jax.tree_util.keystr(p)]
    rows.append(np.concatenate([w.reshape(-1, w.shape[-1]) for w in ws]))
  return np.stack(rows)


def _sweep(config):
  """config.compare.lr_sweep when it names learning rates, else None (one lr for all)."""
  sw = config.compare.get("lr_sweep")
  return sw if sw is not None and len(sw.lrs) else None


def sweep_lr(config, workdir, m: dict, model_cfg, base) -> dict:
  """The learning-rate sweep rule of `config.compare.lr_sweep` for method `m`: one run per lr
  in `lrs` on seed `seed` (not a reported seed) for `steps` steps (0: train.steps), each
  scored by its mean teacher-forced validation loss over tasks (one fixed batch of 8 per task,
  `run_data.make_eval_fn`); the lowest wins. {"lr", "eval_loss": {lr: loss}}, stored per lr in
  `runs/<method>/lr_sweep/lr<lr>.json` (atomic; a cut-short sweep resumes) and the choice in
  `runs/<method>/lr_sweep.json`. The loss is read on the validation split the study reports
  ROUGE-L on (the data kinds have no separate dev split), but as teacher-forced loss on one
  batch and on a seed that is not reported."""
  sw = _sweep(config)
  mdir = os.path.join(workdir, "runs", slug(m["label"]))
  path = os.path.join(mdir, "lr_sweep.json")
  if os.path.exists(path):
    return read_json(path)
  losses = {}
  for lr in sw.lrs:
    lpath = os.path.join(mdir, "lr_sweep", f"lr{lr:g}.json")
    if not os.path.exists(lpath):
      sub = run.sub_config(config, m["acfg"], seed=sw.seed, lr=lr,
                            steps=sw.steps or config.train.steps)
      print(f"== lr sweep {m['label']}: lr {lr:g}, seed {sw.seed}, {sub.train.steps} steps",
            flush=True)
      out = run.run_training(sub, os.path.join(mdir, "lr_sweep", f"lr{lr:g}"),
                             model_cfg=model_cfg, base_params=base)
      ev = run_data.make_eval_fn(out.model_cfg, out.acfg, out.spec.data,
                                 loss_chunk=sub.train.loss_chunk,
                                 loss_positions=sub.train.loss_positions)(
                                     sub.train.steps, out.state.params, out.frozen)
      write_json_atomic(lpath, {"lr": lr, "eval_loss": ev["eval_loss"], "seed": sw.seed,
                                "steps": sub.train.steps})
    losses[f"{lr:g}"] = read_json(lpath)["eval_loss"]
  # lowest loss; a non-finite loss never wins
  best = min(sw.lrs, key=lambda lr: (not np.isfinite(losses[f"{lr:g}"]), losses[f"{lr:g}"]))
  result = {"lr": best, "eval_loss": losses, "seed": sw.seed}
  write_json_atomic(path, result)
  print(f"== lr sweep {m['label']}: validation loss " + ", ".join(
      f"{k} {v:.4f}" for k, v in losses.items()) + f" -> lr {best:g}", flush=True)
  return result


def _stored(path: str, lr: float) -> dict:
  """A finished run's result, refused when it was trained at another learning rate than the
  one the study now gives its method (e.g. a sweep added to a study with finished runs)."""
  r = read_json(path)
  if abs(r.get("lr", lr) - lr) > 1e-12 * max(abs(lr), 1.0):
    raise ValueError(f"{path}: trained at lr {r['lr']:g}, but this study now trains the method "
                     f"at lr {lr:g}; move the run away or use another workdir")
  return r


def run_method(config, workdir, m: dict, seed: int, model_cfg, base) -> dict:
  """One (method, seed) run at the method's lr (`m["lr"]`), or its stored result."""
  rdir = os.path.join(workdir, "runs", slug(m["label"]), f"seed{seed}")
  path = os.path.join(rdir, "result.json")
  lr = m.get("lr", config.train.lr)
  if os.path.exists(path):
    return _stored(path, lr)
  print(f"== {m['label']} seed {seed}: {m['added_params']:,} added params, lr {lr:g}",
        flush=True)
  sub = run.sub_config(config, m["acfg"], seed=seed, lr=lr)
  out = run.run_training(sub, os.path.join(rdir, "train"), model_cfg=model_cfg,
                         base_params=base)
  res = out.score(sub.eval, rdir, "eval", label=f"eval {m['label']} seed {seed}")
  result = {"label": m["label"], "seed": seed, "scores": res["scores"],
            "added_params": m["added_params"], "added_pct": out.report["added_pct"],
            "train_seconds": out.train_seconds, "lr": lr,
            "routing": (routing_usage(out).tolist() if m["acfg"].routed else None)}
  write_json_atomic(path, result)
  return result


def run_per_task(config, workdir, seed: int, rank: int, task_names, model_cfg, base,
                 lr=None) -> dict:
  """One LoRA of `rank` per task, each on its task alone for steps / n_tasks steps (warmup
  scaled in proportion), at `lr` (default train.lr)."""
  lr = config.train.lr if lr is None else lr
  pdir = os.path.join(workdir, "runs", "per_task_lora", f"seed{seed}")
  path = os.path.join(pdir, "result.json")
  if os.path.exists(path):
    return _stored(path, lr)
  acfg = AdapterConfig("lora", rank=rank, targets=tuple(config.compare.targets))
  tpath = lambda name: os.path.join(pdir, slug(name), "result.json")
  for name, _, out, scores in per_task.train_each(
      config, acfg, task_names, lambda name: os.path.join(pdir, slug(name)),
      model_cfg=model_cfg, base=base, seed=seed, lr=lr,
      skip=lambda name: os.path.exists(tpath(name))):
    write_json_atomic(tpath(name), {"scores": scores, "train_seconds": out.train_seconds})
  scores, seconds = {}, 0.0
  for name in task_names:
    r = read_json(tpath(name))
    scores.update(r["scores"])
    seconds += r["train_seconds"]
  steps = per_task.steps_each(config, len(task_names))
  result = {"label": f"LoRA {rank} per task", "seed": seed, "scores": scores,
            "added_params": len(task_names) * count_params(model_cfg, acfg),
            "added_pct": None, "train_seconds": seconds, "routing": None,
            "steps_each": steps, "lr": lr}
  write_json_atomic(path, result)
  return result


def base_scores(config, workdir, model_cfg, base) -> dict:
  """The base model's per-task scores (few-shot prompted when eval.base_shots > 0), once."""
  path = os.path.join(workdir, "base_eval.json")
  if os.path.exists(path):
    return read_json(path)
  vocab = make_vocab(config.vocab.kind, config.vocab.path or None)
  data = run_data.build(config.data, vocab, workdir)
  shots = config.eval.get("base_shots", 0)
  names, stable = evaluate.base_eval_tasks(config, vocab)
  res = evaluate.score(model_cfg, None, base, data, config.eval, workdir, "eval_base",
                       evals=names, table=stable, label=f"eval base ({shots}-shot)")
  scores = evaluate.zero_shot_names(res["scores"], shots)
  write_json_atomic(path, {"shots": shots, "scores": scores})
  return {"shots": shots, "scores": scores}


def run_compare(config, workdir: str, only_report: bool = False) -> dict:
  """Runs (or resumes) the study in `workdir` and writes its report; returns the results dict
  (`only_report`: no training, the report of the finished runs)."""
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  config = bases.with_pretrained(config)
  shapes = (hf_io.read_config(config.checkpoint.hf_path) if config.checkpoint.hf_path
            else run.model_config(config.model))
  budget, methods = plan(config, shapes)        # before any training: a bad plan fails fast
  model_cfg, base = run.ensure_base(config, workdir)
  seeds = tuple(config.compare.seeds)
  base_res = None if only_report else base_scores(config, workdir, model_cfg, base)
  sweeps = {}
  if _sweep(config):
    if config.compare.lr_sweep.seed in seeds:
      raise ValueError(f"config.compare.lr_sweep.seed={config.compare.lr_sweep.seed} is one "
                       f"of the reported seeds {seeds}; the sweep needs its own seed")
    for m in methods:
      p = os.path.join(workdir, "runs", slug(m["label"]), "lr_sweep.json")
      if not only_report:
        sweeps[m["label"]] = sweep_lr(config, workdir, m, model_cfg, base)
      elif os.path.exists(p):
        sweeps[m["label"]] = read_json(p)
      if m["label"] in sweeps:
        m["lr"] = sweeps[m["label"]]["lr"]
  # the per-task LoRAs take the (matched-budget) LoRA's learning rate
  lora_lr = next((m["lr"] for m in methods if m["acfg"].method == "lora" and "lr" in m), None)
  # seed-major, and within a seed the primary comparison's two methods first: a study cut
  # short has every method at low seeds and the primary pair at the most seeds. The tables
  # keep the configured order.
  runs: dict[str, dict[int, dict]] = {m["label"]: {} for m in methods}
  labels = {m["label"]: m for m in methods}
  first = [_find(labels, name) for name in config.compare.primary]
  order = [labels[lab] for lab in first if lab] + [m for m in methods if m["label"] not in first]
  for seed in seeds:
    for m in order:
      if only_report:
        p = os.path.join(workdir, "runs", slug(m["label"]), f"seed{seed}", "result.json")
        if os.path.exists(p):
          runs.setdefault(m["label"], {})[seed] = read_json(p)
        continue
      runs.setdefault(m["label"], {})[seed] = run_method(config, workdir, m, seed, model_cfg,
                                                         base)
    if config.compare.per_task_lora and not only_report:
      task_names = sorted(next(iter(runs.values()))[seed]["scores"])
      rank = per_task_rank(config, model_cfg, len(task_names), budget)
      r = run_per_task(config, workdir, seed, rank, task_names, model_cfg, base, lora_lr)
      runs.setdefault(r["label"], {})[seed] = r
  if only_report:
    for p in sorted(_glob(workdir, "per_task_lora")):
      r = read_json(p)
      runs.setdefault(r["label"], {})[r["seed"]] = r
    path = os.path.join(workdir, "base_eval.json")
    base_res = read_json(path) if os.path.exists(path) else None
  for lab, rs in runs.items():        # the logged training losses, when the run dir has them
    for seed, r in rs.items():
      r["train_curve"] = study_stats.read_train_curve(os.path.join(
          workdir, "runs", slug(lab), f"seed{seed}", "train", "metrics.jsonl"))
  out = report(config, runs, base_res, budget, time.perf_counter() - t0)
  out["lr_sweeps"] = sweeps
  write_json_atomic(os.path.join(workdir, "results.json"), out)
  md = render(out)
  with atomic_file(os.path.join(workdir, "results.md")) as f:
    f.write(md)
  study_plots.plots(workdir, out)
  print(md)
  return out


def _glob(workdir, name):
  d = os.path.join(workdir, "runs", name)
  if not os.path.isdir(d):
    return []
  return [os.path.join(d, s, "result.json") for s in os.listdir(d)
          if os.path.exists(os.path.join(d, s, "result.json"))]


def report(config, runs: dict, base_res, budget: int, seconds: float) -> dict:
  """The study's numbers from its finished runs (see `study_stats`)."""
  runs = {k: v for k, v in runs.items() if v}
  if not runs:
    raise ValueError("no finished runs to report")
  task_names = sorted(next(iter(next(iter(runs.values())).values()))["scores"])
  metric = config.compare.primary_metric
  summary, per_task, routing = {}, {}, {}
  for lab, rs in runs.items():
    r0 = next(iter(rs.values()))
    summary[lab] = {"seeds": sorted(rs), "added_params": r0["added_params"],
                    "added_pct": r0["added_pct"],
                    "rougeL": study_stats.method_summary(rs, task_names, "rougeL"),
                    "exact_match": study_stats.method_summary(rs, task_names, "exact_match"),
                    "train_seconds": float(np.mean([r["train_seconds"] for r in rs.values()])),
                    "lr": r0.get("lr", config.train.lr)}
    per_task[lab] = study_stats.task_means(rs, task_names, metric)
    usage = [np.asarray(r["routing"]) for r in rs.values() if r.get("routing") is not None]
    if usage:
      mean_usage = np.mean(usage, axis=0)
      routing[lab] = dict(study_stats.routing_analysis(mean_usage),
                          usage=mean_usage.tolist(), seeds=len(usage))
  a, b = (_find(runs, x) for x in config.compare.primary)
  primary = ({"a": a, "b": b, "metric": metric,
              **study_stats.paired(runs[a], runs[b], task_names, metric)}
             if a in runs and b in runs else None)
  wins = {}
  for mode_lab in [lab for lab in runs if lab.startswith("MoDE")]:
    wins[mode_lab] = {lab: study_stats.paired(runs[mode_lab], rs, task_names, metric)
                      for lab, rs in runs.items() if lab != mode_lab}
  train_loss = study_stats.train_loss_summary(runs, reference=b)
  return {"tasks": task_names, "metric": metric, "budget": budget, "train_loss": train_loss,
          "steps": config.train.steps, "lr": config.train.lr, "seeds": list(config.compare.seeds),
          "base": base_res, "summary": summary, "per_task": per_task, "primary": primary,
          "wins": wins, "routing": routing, "seconds": seconds}


def _find(runs: dict, name: str):
  """The run label `name` names: itself, else the first label that starts with it ("LoRA"
  names "LoRA 33", whose rank the budget chose); None when no run has it yet."""
  if name in runs:
    return name
  return next((lab for lab in runs if lab.startswith(name + " ")), None)


def render(out: dict) -> str:
  """The markdown of a `run_compare` result (results.md)."""
  fmt = study_stats.fmt
  labs = list(out["summary"])
  sweeps = out.get("lr_sweeps") or {}
  rule = ("one per method, the lowest mean validation loss of its sweep (the lr column; "
          "losses below)" if sweeps else f"{out['lr']} for every method (no sweep)")
  lines = [f"{out['steps']} steps per method, lr {rule}, seeds configured "
           f"{out['seeds']} (the seeds column: finished); means over finished seeds with 95% "
           f"t-intervals (none with one seed). Reference budget "
           f"{out['budget']:,} added parameters.", "",
           "| method | seeds | added params | % added | lr | mean ROUGE-L | mean exact match | "
           "train s |", "|---|---|---|---|---|---|---|---|"]
  if out.get("base"):
    s = out["base"]["scores"]
    mean = lambda k: np.mean([s[t][k] for t in out["tasks"]])
    lines.append(f"| base ({out['base']['shots']}-shot prompt) | - | 0 | 0 | - | "
                 f"{mean('rougeL'):.2f} | {mean('exact_match'):.2f} | - |")
  for lab in labs:
    s = out["summary"][lab]
    pct = "-" if s["added_pct"] is None else f"{s['added_pct']:.2f}%"
    lines.append(f"| {lab} | {len(s['seeds'])} | {s['added_params']:,} | {pct} | "
                 f"{s.get('lr', out['lr']):g} | {fmt(s['rougeL'])} | {fmt(s['exact_match'])} | "
                 f"{s['train_seconds']:.0f} |")
  for lab, sw in sweeps.items():
    lines.append(f"\nlr sweep of {lab} (seed {sw['seed']}; mean validation loss): " + ", ".join(
        f"{k}: {v:.4f}" for k, v in sw["eval_loss"].items()) + f" -> {sw['lr']:g}")
  p = out["primary"]
  if p and p.get("seeds"):
    w = p["win_rates"]
    lines += ["", f"Primary comparison (fixed in the config): {p['a']} - {p['b']}, mean "
              f"{p['metric']} over tasks, paired over seeds {p['seeds']}: {fmt(p['diff'])}. "
              f"Tasks won {w['wins']}, lost {w['losses']}, tied {w['ties']} (sign test p = "
              f"{w['p_value']:.3g}); (seed, task) pairs won {p['pair_wins']} / lost "
              f"{p['pair_losses']} of {p['pairs']}."]
  for mode_lab, vs in out["wins"].items():
    lines += ["", f"Task-level win rates of {mode_lab} ({out['metric']}, per-task means over "
              f"common seeds; two-sided sign test):", "",
              "| vs | seeds | difference | wins | losses | ties | win rate | p |",
              "|---|---|---|---|---|---|---|---|"]
    for lab, r in vs.items():
      if not r.get("seeds"):
        continue
      w = r["win_rates"]
      lines.append(f"| {lab} | {len(r['seeds'])} | {fmt(r['diff'])} | {w['wins']} | "
                   f"{w['losses']} | {w['ties']} | {w['win_rate']:.2f} | {w['p_value']:.3g} |")
  tl = out.get("train_loss") or {}
  if tl:
    ref = next((r["vs_reference"]["reference"] for r in tl.values() if "vs_reference" in r),
               "-")
    late = next(iter(tl.values()))["late_from_step"]
    lines += ["", f"Training loss at the logged steps, mean over the whole run (early speed "
              f"counts) and from step {late} on; at a seed every method trains on the same "
              f"batches, so the differences to {ref} are paired over seeds:", "",
              f"| method | seeds | whole run | - {ref} | from step {late} | - {ref} |",
              "|---|---|---|---|---|---|"]
    for lab, r in tl.items():
      vs = r.get("vs_reference")
      lines.append(f"| {lab} | {len(r['seeds'])} | {fmt(r['mean_loss'])} | "
                   f"{fmt(vs['mean_loss']) if vs else '-'} | {fmt(r['late_loss'])} | "
                   f"{fmt(vs['late_loss']) if vs else '-'} |")
  lines += ["", f"Per task ({out['metric']}, mean ± 95% interval over seeds):", "",
            "| task | " + " | ".join(labs) + " |", "|---|" + "---|" * len(labs)]
  for t in out["tasks"]:
    lines.append(f"| {t} | " + " | ".join(fmt(out["per_task"][lab][t]) for lab in labs) + " |")
  for lab, r in out["routing"].items():
    lines += ["", f"Routing of {lab} (seeds {r['seeds']}): task specificity (mean JS "
              f"divergence of a task's expert usage from all tasks', nats; ln 2 = 0.693 max) "
              f"mean over blocks {r['mean_specificity']:.4f}, max {r['max_specificity']:.4f} "
              f"(block {r['most_specific_block']}); per-task entropy of mean usage "
              f"{min(r['task_entropy']):.3f}-{max(r['task_entropy']):.3f} nats (uniform "
              f"{r['uniform_entropy']:.3f})."]
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  _ONLY_REPORT = flags.DEFINE_bool("only_report", False,
                                   "Only rebuild the report from the finished runs.")
  cli.config_main(lambda config, workdir: run_compare(config, workdir,
                                                      only_report=_ONLY_REPORT.value),
                  "configs/compare_synthetic.py", "runs/compare")
