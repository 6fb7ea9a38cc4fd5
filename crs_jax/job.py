"""The RecLLM main job (`python -m crs_jax.main --config=configs/crs_synthetic.py --workdir=DIR`).

1. Bootstrap: teacher sessions with the agenda-based rule simulator on the embedded catalogue
   (`crs_jax.data`); a SentencePiece vocabulary trained on them when `vocab.path` is empty.
2. Base: `checkpoint.pretrained` / `checkpoint.hf_path`, or a tiny decoder pretrained in the
   workdir on the bootstrap transcripts (`config.base`), as `mode_jax`'s embedded default does.
3. One backbone, five tasks (dialogue manager, query writer, ranker/explainer, profile writer,
   user simulator) with task-routed MoDE adapters, through `mode_jax`'s trainer; per-task
   exact match / ROUGE-L on held-out rows.
4. Simulated sessions (ids disjoint from the bootstrap's: seed + 2000), each set resumable as
   `<workdir>/sessions/<name>.jsonl`: the LLM recommender with the rule simulator (and its
   `sessions.variants`: other retrievers / rankings, `crs_jax.llm`); the
   baselines (random, popularity, rule, teacher, oracle) with the same simulator; the teacher
   with the learned simulator, free and with forced intents (controllability).
5. The exact metrics per set (`crs_jax.metrics`) as a table, `results.json`, and one JSON line.
6. The conversation report (`crs_jax.report`): the learned simulator's conversations against the
   rule simulator's with the same recommender, bootstrap sessions as the leakage set;
   `report/` (report.md, report.json, plots) and the compact `report.md`. Encoder (`config.report.encoder`): "backbone" (mean-pooled
   states of the trained base) or "hashing" (word 1-2-gram features).
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable

import ml_collections

from crs_jax import data, dual_encoder, few_shot, metrics, per_task, report, sampler_model
from crs_jax import serving
from crs_jax import session_sets
from crs_jax import session as session_lib
from crs_jax import vocab as vocab_lib
from mode_jax.atomic_io import atomic_directory, atomic_file, write_json_atomic
from mode_jax.dataeval import embed, render
from mode_jax.train import bases, run

SESSION_SEED_OFFSET = 2000
COLUMNS = ("success@1", "success@4", "success@8", "success_acceptable", "mean_turns_to_success",
           "ranking_ndcg@5", "target_hit@5", "retrieval_recall@10", "explanation_faithful",
           "explanation_grounded", "explanation_user_grounded", "recommendation_titled", "gini",
           "long_tail_share", "goal_adherence", "target_leak_rate", "acceptance_agreement",
           "intent_accuracy", "intent_chance", "intent_kappa", "intent_text_agreement")


def with_vocab(config, workdir: str):
  """`config` with vocab.path set: a SentencePiece model trained on the bootstrap corpus into
  `<workdir>/crs_vocab.model` (once) when the kind is sentencepiece and no path is given."""
  if config.vocab.kind != "sentencepiece" or config.vocab.path:
    return config
  path = os.path.join(workdir, "crs_vocab.model")
  if not os.path.exists(path):
    vocab_lib.train_sentencepiece(data.corpus(config.data.crs), path,
                                  config.data.crs.vocab_size)
  c = ml_collections.ConfigDict(config.to_dict())
  c.vocab.path = path
  return c


def make_encoder(config, workdir: str):
  """The conversation report's encoder (`config.report.encoder`: hashing or the backbone)."""
  if config.report.encoder == "hashing":
    return embed.HashingEncoder()
  ckpt = config.checkpoint.hf_path or os.path.join(workdir, "base_model")
  return embed.BackboneEncoder(ckpt, vocab_kind=config.vocab.kind, vocab_path=config.vocab.path,
                               max_len=config.data.inputs_len)


def train_multitask(config, workdir: str, model_cfg, base) -> dict:
  """The configured adapters (task-routed MoDE by default) on the five tasks at once."""
  print(f"== {config.adapter.method} adapters ({config.adapter.router} router) on the five "
        f"RecLLM tasks")
  out = run.run_training(config, os.path.join(workdir, "adapter_train"), model_cfg=model_cfg,
                         base_params=base)
  serving.write_serving_spec(workdir, config, config.checkpoint.hf_path
                             or os.path.join(workdir, "base_model"))
  res = out.score(config.eval, workdir, "eval_tasks", label="eval tasks")
  return {"model": sampler_model.from_training(out),
          "adapter": out.acfg.describe() if out.acfg else "none",
          "added_pct": out.report["added_pct"], "train_seconds": out.train_seconds,
          "task_scores": res["scores"], "markdown": res["markdown"]}


def dense_index(c, d, cat, seed: int) -> dual_encoder.DenseIndex:
  """The dual encoder (`d` = `config.sessions.dense`: hashed word 1-2-gram features, the
  measured best on this dialogue, `benchmarks.crs_dense_retrieval`) trained on the bootstrap
  sessions (`c` = `config.data.crs`) as (conversation, accepted item) pairs, over every item
  of `cat`."""
  train = session_lib.sessions_from_records(
      data.bootstrap(c.catalogue_size, c.catalogue_seed, c.num_sessions, c.seed), cat)
  items = {it.id: dual_encoder.item_text(it) for it in cat.items}
  pairs = dual_encoder.training_pairs(train)
  enc, losses = dual_encoder.train(embed.HashingEncoder(d.features_dim), pairs, items,
                                   dim=d.dim, steps=d.steps, temperature=d.temperature,
                                   seed=seed)
  print(f"dense retrieval: dual encoder trained on {len(pairs)} pairs, final loss "
        f"{losses[-1]:.3f}")
  return dual_encoder.DenseIndex(enc, cat.items)


def table(results: dict) -> str:
  """The session metrics of each system as a markdown table."""
  head = "| system | " + " | ".join(COLUMNS) + " |"
  rows = [head, "|" + "---|" * (len(COLUMNS) + 1)]
  for name, m in results.items():
    cells = [("" if k not in m or m[k] != m[k] else f"{m[k]:.3f}") for k in COLUMNS]
    rows.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(rows)


def run_sets(sets, cat, scfg, workdir: str, seed: int) -> tuple[dict, dict, dict]:
  """Runs (or resumes: `<workdir>/sessions/<stem>.jsonl`) every session set.

  Returns:
    ({name: metrics}, {name: records}, {name: seconds}).
  """
  results, records, seconds = {}, {}, {}
  for ss in sets:
    t0 = time.perf_counter()
    recs = session_lib.run_sessions(
        ss.recommender, ss.simulator, cat, num_sessions=scfg.num_sessions, seed=seed,
        max_turns=scfg.max_turns, out_path=os.path.join(workdir, "sessions", ss.stem + ".jsonl"),
        forced_intents=ss.forced, batch_size=scfg.batch_size)
    records[ss.name] = recs
    fmap = {r["session_id"]: ss.forced(r["session_id"]) for r in recs} if ss.forced else None
    results[ss.name] = metrics.all_metrics(recs, cat, fmap)
    seconds[ss.name] = time.perf_counter() - t0
    print(f"sessions {ss.name}: {len(recs)} in {seconds[ss.name]:.0f} s", flush=True)
  return results, records, seconds


def conversation_report(c, encoder: Callable, workdir: str, sets, records: dict, cat) -> dict:
  """The learned simulator's conversations against the rule simulator's with the same
  (teacher) recommender, bootstrap sessions of `c` (`config.data.crs`) as the leakage set,
  embedded by the encoder `encoder()` builds: `<workdir>/report/` (report.md, report.json and
  plots: the full dataset report) and `<workdir>/report.md` (the compact table printed here).
  {} when the job ran without one of the two sets."""
  sim, ref = session_sets.find(sets, "llm_simulator"), session_sets.find(sets, "baseline",
                                                                           "teacher")
  if sim is None or ref is None:
    print("conversation report skipped: it needs the 'teacher' and 'teacher + LLM simulator' "
          "session sets (config.sessions.baselines / systems)")
    return {}
  names = ("LLM simulator", "rule simulator")
  rep = report.conversation_report(
      records[sim.name], records[ref.name], cat,
      train=data.bootstrap(c.catalogue_size, c.catalogue_seed, c.num_sessions, c.seed),
      encoder=encoder(), names=names)
  rep_md = report.markdown(rep, *names)
  with atomic_directory(os.path.join(workdir, "report")) as tmp:   # report.md/json + plots
    render.write(rep, tmp, (report.section(cat),))
  with atomic_file(os.path.join(workdir, "report.md")) as f:
    f.write(rep_md + "\n")
  print("conversation report (teacher recommender; LLM vs rule simulator):\n" + rep_md)
  return rep


def summarize(model_name: str, scfg, trained: dict, sets, results: dict, rep: dict,
              seconds: dict) -> dict:
  """The job's one-line summary: RecLLM's and the baselines' success, faithfulness, the
  simulator's adherence, realism and controllability, task scores and timings."""
  by_role = lambda role, key="": results.get(getattr(session_sets.find(sets, role, key),
                                                     "name", ""), {})
  llm_m, sim_m = by_role("recllm"), by_role("llm_simulator")
  dist = rep.get("distribution", {})
  return {"model": model_name,
          "adapter": trained["adapter"], "added_params_pct": trained["added_pct"],
          "sessions": scfg.num_sessions, "max_turns": scfg.max_turns,
          "recllm_success": llm_m.get("success"), "recllm_success@8": llm_m.get("success@8"),
          "rule_success": by_role("baseline", "rule").get("success"),
          "random_success": by_role("baseline", "random").get("success"),
          "oracle_success": by_role("baseline", "oracle").get("success"),
          "recllm_explanation_faithful": llm_m.get("explanation_faithful"),
          "simulator_goal_adherence": sim_m.get("goal_adherence"),
          "report_discriminator_auc": dist.get("discriminator_auc", {}).get("value"),
          "report_mauve": dist.get("mauve", {}).get("mean"),
          "simulator_intent_accuracy": by_role("llm_simulator_forced").get("intent_accuracy"),
          "task_exact_match": {k: v["exact_match"] for k, v in trained["task_scores"].items()},
          "train_seconds": trained["train_seconds"], "session_seconds": seconds}


def crs_synthetic(config, workdir: str) -> dict:
  """The RecLLM main job (module docstring): bootstrap, base, adapters, sessions, metrics and
  the conversation report; returns the summary (also one JSON line)."""
  t_all = time.perf_counter()
  config = bases.with_pretrained(config)
  os.makedirs(workdir, exist_ok=True)
  c = config.data.crs
  print(f"== bootstrap: {c.num_sessions} teacher sessions on {c.catalogue_size} items")
  config = with_vocab(config, workdir)
  model_cfg, base = run.ensure_base(config, workdir)
  print(f"== base model: {model_cfg.num_params() / 1e6:.2f}M parameters")
  if config.per_task.enabled:
    trained = per_task.train_per_task(config, workdir, model_cfg, base)
  else:
    trained = train_multitask(config, workdir, model_cfg, base)
  print(trained["markdown"])
  cat = data.make_catalogue(c.catalogue_size, c.catalogue_seed)
  seed = c.seed + SESSION_SEED_OFFSET
  sets = session_sets.build(config.sessions, trained["model"], cat, seed=seed,
                            dense=lambda: dense_index(c, config.sessions.dense, cat,
                                                      config.seed))
  results, records, seconds = run_sets(sets, cat, config.sessions, workdir, seed)
  md = table(results)
  print(md)
  t0 = time.perf_counter()
  rep = conversation_report(c, lambda: make_encoder(config, workdir), workdir, sets, records,
                            cat)
  seconds["report"] = time.perf_counter() - t0
  summary = summarize(config.checkpoint.pretrained or "tiny (trained in workdir)",
                      config.sessions, trained, sets, results, rep, seconds)
  summary["total_seconds"] = time.perf_counter() - t_all
  write_json_atomic(os.path.join(workdir, "results.json"),
                    {"metrics": results, "summary": summary, "table": md})
  print(json.dumps(summary))
  return summary


def crs_served(config, workdir: str) -> dict:
  """RecLLM on a served LLM, no training (`config.served`: url, model, chat, shot_sessions;
  `crs_jax.few_shot`): every session set of `config.sessions` with the served model as all
  five components, few-shot prompted from teacher sessions of the bootstrap seed; the table,
  `results.json` and one JSON line."""
  os.makedirs(workdir, exist_ok=True)
  c = config.data.crs
  cat = data.make_catalogue(c.catalogue_size, c.catalogue_seed)
  model = few_shot.served_model(config.served, cat, seed=c.seed)
  seed = c.seed + SESSION_SEED_OFFSET
  sets = session_sets.build(config.sessions, model, cat, seed=seed)
  results, _, seconds = run_sets(sets, cat, config.sessions, workdir, seed)
  md = table(results)
  print(md)
  summary = {"model": f"{config.served.model} at {config.served.url} (few-shot)",
             "sessions": config.sessions.num_sessions, "max_turns": config.sessions.max_turns,
             "calls": dict(model.calls), "session_seconds": seconds}
  write_json_atomic(os.path.join(workdir, "results.json"),
                    {"metrics": results, "summary": summary, "table": md})
  print(json.dumps(summary))
  return summary
