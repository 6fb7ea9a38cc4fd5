"""The MoDE paper's comparison in miniature: LoRA, MoLoRA, MoLoRA-SD and MoDE at matched added
parameter budgets, plus one LoRA per task, all from the same base, mixture, steps and seed.

    python -m mode_jax.experiments.compare --config=configs/compare_synthetic.py --workdir=DIR

Writes `results.json` and `results.md` (per-task ROUGE-L / exact match per method, the mean,
% added params, task-level win rates of MoDE with a sign test) and two PNGs: per-task scores, and
MoDE's mean routing weight per task and expert. Methods with `rank: 0` in the config get the
rank whose added parameters come closest to the reference method's.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from mode_jax.adapters import AdapterConfig, count_params
from mode_jax.atomic_io import atomic_file, write_json_atomic
from mode_jax.data import metrics, tasks
from mode_jax.train import evaluate, jobs

_CONFIG = config_flags.DEFINE_config_file("config", "configs/compare_synthetic.py",
                                          "Comparison config.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs/compare", "Output directory.")


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


def routing_by_task(out, config) -> np.ndarray:
  """[tasks, experts]: MoDE's routing weight averaged over tokens, blocks, layers, projections,
  on each task's eval examples."""
  model, params = out["model"], evaluate.full_params(out["state"].params, out["frozen"], False)
  lengths = {"inputs": config.data.inputs_len, "targets": config.data.targets_len}
  rows = []
  for name in out["evals"]:
    batch = next(tasks.get_dataset(name, "validation", lengths, batch_size=8, shuffle=False,
                                   pack=False, num_epochs=None).as_numpy_iterator())
    _, state = model.apply({"params": params}, jnp.asarray(batch["decoder_input_tokens"]),
                           task_ids=jnp.asarray(batch["decoder_task_ids"]),
                           mutable=["routing"])
    ws = [np.asarray(v[0]).reshape(-1, np.asarray(v[0]).shape[-1])
          for p, v in jax.tree_util.tree_flatten_with_path(
              state["routing"], is_leaf=lambda x: isinstance(x, tuple))[0]
          if "expert_weight" in jax.tree_util.keystr(p)]
    rows.append(np.mean(np.concatenate(ws), axis=0))
  return np.stack(rows)


def plots(workdir: str, results: dict, routing, task_names):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  labels = list(results)
  short = [t.replace("syn_", "") for t in task_names]
  fig, ax = plt.subplots(figsize=(12, 4.5))
  width = 0.8 / len(labels)
  for i, lab in enumerate(labels):
    ax.bar(np.arange(len(task_names)) + i * width,
           [results[lab]["scores"][t]["rougeL"] for t in task_names], width, label=lab)
  ax.set_xticks(np.arange(len(task_names)) + 0.4 - width / 2, short, rotation=45, ha="right")
  ax.set_ylabel("ROUGE-L")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "per_task_scores.png"), dpi=120)
  if routing is not None:
    fig, ax = plt.subplots(figsize=(5, 6))
    im = ax.imshow(routing, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(short)), short)
    ax.set_xlabel("expert")
    ax.set_title("MoDE mean routing weight")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, "mode_routing.png"), dpi=120)


def run_compare(config, workdir: str) -> dict:
  t0 = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  model_cfg, base = jobs.ensure_base(config, workdir)
  targets = tuple(config.compare.targets)
  ref = matched(model_cfg, dict(config.compare.reference), targets, 0)
  budget = count_params(model_cfg, ref)
  results, routing, base_scores = {}, None, None
  for entry in config.compare.methods:
    acfg = matched(model_cfg, dict(entry), targets, budget)
    label = entry["label"] if entry.get("label") else acfg.describe()
    sub = ml_collections.ConfigDict(config.to_dict())
    sub.adapter = acfg.to_dict()
    print(f"== {label}: {count_params(model_cfg, acfg):,} added params")
    wd = os.path.join(workdir, label.replace(" ", "_"))
    out = jobs.run_training(sub, wd, model_cfg=model_cfg, base_params=base)
    res = jobs.score(out, sub, wd, "eval")
    if base_scores is None:
      base_scores = jobs.score(out, sub, workdir, "eval_base", params=base, acfg=None)["scores"]
    results[label] = {"scores": res["scores"], "added_params": count_params(model_cfg, acfg),
                      "added_pct": out["report"]["added_pct"],
                      "train_seconds": out["train_seconds"]}
    if acfg.method == "mode" and routing is None:
      routing = routing_by_task(out, sub)
  task_names = sorted(base_scores)
  if config.compare.per_task_lora_rank:
    per_task = {}
    steps = max(config.train.steps // len(task_names), 1)
    for name in task_names:
      sub = ml_collections.ConfigDict(config.to_dict())
      sub.adapter = AdapterConfig("lora", rank=config.compare.per_task_lora_rank,
                                  targets=targets).to_dict()
      sub.data.only_tasks = (name,)
      sub.train.steps = steps
      wd = os.path.join(workdir, "per_task_lora", name)
      out = jobs.run_training(sub, wd, model_cfg=model_cfg, base_params=base)
      per_task.update(jobs.score(out, sub, wd, "eval")["scores"])
    label = f"LoRA {config.compare.per_task_lora_rank} per task ({steps} steps each)"
    results[label] = {"scores": per_task, "added_params": len(task_names) * count_params(
        model_cfg, AdapterConfig("lora", rank=config.compare.per_task_lora_rank,
                                 targets=targets)), "added_pct": None, "train_seconds": None}
  mode_label = next((lab for lab in results if lab.startswith("MoDE")), None)
  mean = lambda s, k: float(np.mean([s[t][k] for t in task_names]))
  summary = {lab: {"rougeL": mean(r["scores"], "rougeL"),
                   "exact_match": mean(r["scores"], "exact_match"),
                   "added_params": r["added_params"], "added_pct": r["added_pct"]}
             for lab, r in results.items()}
  wins = {}
  if mode_label:
    a = {t: results[mode_label]["scores"][t]["rougeL"] for t in task_names}
    for lab, r in results.items():
      if lab != mode_label:
        wins[lab] = metrics.win_rates(a, {t: r["scores"][t]["rougeL"] for t in task_names})
  out = {"base": {"rougeL": mean(base_scores, "rougeL"),
                  "exact_match": mean(base_scores, "exact_match")},
         "summary": summary, "win_rates_of": mode_label, "win_rates": wins,
         "per_task": {lab: r["scores"] for lab, r in results.items()},
         "routing": None if routing is None else routing.tolist(),
         "seed": config.train.seed, "steps": config.train.steps,
         "seconds": time.perf_counter() - t0}
  write_json_atomic(os.path.join(workdir, "results.json"), out)
  md = render(out, task_names)
  with atomic_file(os.path.join(workdir, "results.md")) as f:
    f.write(md)
  plots(workdir, results, routing, task_names)
  print(md)
  return out


def render(out: dict, task_names) -> str:
  labs = list(out["summary"])
  lines = [f"Seed {out['seed']}, {out['steps']} steps per method, {out['seconds']:.0f} s total.",
           "", "| method | added params | % added | mean ROUGE-L | mean exact match |",
           "|---|---|---|---|---|",
           f"| base (no adapter) | 0 | 0 | {out['base']['rougeL']:.2f} | "
           f"{out['base']['exact_match']:.2f} |"]
  for lab in labs:
    s = out["summary"][lab]
    pct = "-" if s["added_pct"] is None else f"{s['added_pct']:.2f}%"
    lines.append(f"| {lab} | {s['added_params']:,} | {pct} | {s['rougeL']:.2f} | "
                 f"{s['exact_match']:.2f} |")
  if out["win_rates"]:
    lines += ["", f"Task-level win rates of {out['win_rates_of']} (ROUGE-L; sign test, 0.99):",
              "", "| vs | wins | losses | ties | win rate | p | significant |",
              "|---|---|---|---|---|---|---|"]
    for lab, w in out["win_rates"].items():
      lines.append(f"| {lab} | {w['wins']} | {w['losses']} | {w['ties']} | "
                   f"{w['win_rate']:.2f} | {w['p_value']:.3g} | {w['significant']} |")
  lines += ["", "Per task (ROUGE-L):", "",
            "| task | " + " | ".join(labs) + " |", "|---|" + "---|" * len(labs)]
  for t in task_names:
    lines.append(f"| {t} | " + " | ".join(f"{out['per_task'][lab][t]['rougeL']:.1f}"
                                          for lab in labs) + " |")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from absl import logging
  logging.set_verbosity(logging.WARNING)
  run_compare(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
