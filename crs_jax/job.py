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
   `report.md` / `report.json`. Encoder (`config.report.encoder`): "backbone" (mean-pooled
   states of the trained base) or "hashing" (word 1-2-gram features).
"""

from __future__ import annotations

import json
import os
import time

import ml_collections
import numpy as np

from crs_jax import baselines, data, dual_encoder, interfaces, llm, metrics, report
from crs_jax import per_task, rule_simulator
from crs_jax import sampler_model, serving
from crs_jax import session as session_lib
from crs_jax import text as text_lib
from crs_jax import vocab as vocab_lib
from mode_jax.atomic_io import atomic_directory, atomic_file, write_json_atomic
from mode_jax.dataeval import embed, render
from mode_jax.train import bases, run

SESSION_SEED_OFFSET = 2000
COLUMNS = ("success@1", "success@4", "success@8", "mean_turns_to_success",
           "recommended_ndcg@5", "retrieval_recall@10", "explanation_faithful", "gini",
           "long_tail_share", "goal_adherence", "target_leak_rate", "acceptance_agreement",
           "intent_accuracy", "intent_text_agreement")


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


def forced_intents(seed: int, num_turns: int):
  """sid -> a random intent per user turn (opening: inform or chit-chat)."""
  def fn(sid):
    rng = np.random.default_rng([seed, int(sid[1:])])
    first = ("inform", "chitchat")[rng.integers(2)]
    rest = [interfaces.INTENTS[i] for i in rng.integers(len(interfaces.INTENTS), size=num_turns)]
    return [first] + rest
  return fn


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


def dense_index(config, cat) -> dual_encoder.DenseIndex:
  """The dual encoder (`config.sessions.dense`: hashed word 1-2-gram features, the measured
  best on this dialogue, `benchmarks.crs_dense_retrieval`) trained on the bootstrap sessions'
  (conversation, accepted item) pairs, over every item of `cat`."""
  c, d = config.data.crs, config.sessions.dense
  train = session_lib.sessions_from_records(
      data.bootstrap(c.catalogue_size, c.catalogue_seed, c.num_sessions, c.seed), cat)
  items = {it.id: dual_encoder.item_text(it) for it in cat.items}
  pairs = dual_encoder.training_pairs(train)
  enc, losses = dual_encoder.train(embed.HashingEncoder(d.features_dim), pairs, items,
                                   dim=d.dim, steps=d.steps, temperature=d.temperature,
                                   seed=config.seed)
  print(f"dense retrieval: dual encoder trained on {len(pairs)} pairs, final loss "
        f"{losses[-1]:.3f}")
  return dual_encoder.DenseIndex(enc, cat.items)


def recllm_runs(config, model, cat) -> dict:
  """name -> LLMRecommender: the configured one (`sessions.retriever`, `sessions.ranking`,
  `sessions.profile`) and each of `sessions.variants` ("<retriever>/<ranking>")."""
  s = config.sessions
  main = (s.get("retriever", "search"), s.get("ranking", "generate"))
  wanted = [main] + [tuple(v.split("/")) for v in s.get("variants", ())]
  for v in wanted:
    if len(v) != 2:
      raise ValueError(f"config.sessions.variants: {'/'.join(v)!r} is not "
                       f"'<retriever>/<ranking>'")
  dense = dense_index(config, cat) if any(r != "search" for r, _ in wanted) else None
  out = {}
  for r, k in wanted:
    name = ("RecLLM (LLM recommender)" if (r, k) == main else f"RecLLM, {r} retrieval, {k}")
    out[name] = llm.LLMRecommender(model, cat, profile=s.get("profile", "given"), retriever=r,
                                   dense=dense, ranking=k)
  return out


def select_systems(runs: dict, systems) -> dict:
  """The session sets named in `config.sessions.systems` (all when empty); "RecLLM" names
  every RecLLM row."""
  if not systems:
    return runs
  unknown = [n for n in systems if n != "RecLLM" and n not in runs]
  if unknown:
    raise ValueError(f"config.sessions.systems: unknown {unknown}; known: "
                     f"{['RecLLM'] + [n for n in runs if not n.startswith('RecLLM')]}")
  return {n: r for n, r in runs.items()
          if n in systems or ("RecLLM" in systems and n.startswith("RecLLM"))}


def table(results: dict) -> str:
  """The session metrics of each system as a markdown table."""
  head = "| system | " + " | ".join(COLUMNS) + " |"
  rows = [head, "|" + "---|" * (len(COLUMNS) + 1)]
  for name, m in results.items():
    cells = [("" if k not in m or m[k] != m[k] else f"{m[k]:.3f}") for k in COLUMNS]
    rows.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(rows)


def crs_synthetic(config, workdir: str) -> dict:
  """The RecLLM main job (module docstring): bootstrap, base, adapters, sessions, metrics and
  the conversation report; returns the summary (also one JSON line)."""
  t_all = time.perf_counter()
  config = bases.with_pretrained(config)
  os.makedirs(workdir, exist_ok=True)
  c, s = config.data.crs, config.sessions
  print(f"== bootstrap: {c.num_sessions} teacher sessions on {c.catalogue_size} items")
  config = with_vocab(config, workdir)
  model_cfg, base = run.ensure_base(config, workdir)
  print(f"== base model: {model_cfg.num_params() / 1e6:.2f}M parameters")
  if config.per_task.enabled:
    trained = per_task.train_per_task(config, workdir, model_cfg, base)
  else:
    trained = train_multitask(config, workdir, model_cfg, base)
  print(trained["markdown"])
  model = trained["model"]
  cat = data.make_catalogue(c.catalogue_size, c.catalogue_seed)
  seed = c.seed + SESSION_SEED_OFFSET
  sim = rule_simulator.RuleSimulator(cat)
  runs = {name: (rec, sim, None) for name, rec in recllm_runs(config, model, cat).items()}
  for name in s.baselines:
    cls = text_lib.TeacherRecommender if name == "teacher" else baselines.BASELINES[name]
    runs[name] = (cls(cat), sim, None)
  teacher = text_lib.TeacherRecommender(cat)
  runs["teacher + LLM simulator"] = (teacher, llm.LLMSimulator(model), None)
  forced = forced_intents(seed, s.max_turns + 1)
  runs["teacher + LLM simulator, forced intents"] = (teacher, llm.LLMSimulator(model), forced)
  runs = select_systems(runs, s.get("systems", ()))
  results, seconds, records = {}, {}, {}
  for name, (rec, user, force) in runs.items():
    t0 = time.perf_counter()
    path = os.path.join(workdir, "sessions", name.split(" (")[0].replace(" ", "_")
                        .replace(",", "").replace("+", "and") + ".jsonl")
    recs = session_lib.run_sessions(rec, user, cat, num_sessions=s.num_sessions, seed=seed,
                                    max_turns=s.max_turns, out_path=path, forced_intents=force,
                                    batch_size=s.batch_size)
    records[name] = recs
    fmap = {r["session_id"]: force(r["session_id"]) for r in recs} if force else None
    results[name] = metrics.all_metrics(recs, cat, fmap)
    seconds[name] = time.perf_counter() - t0
    print(f"sessions {name}: {len(recs)} in {seconds[name]:.0f} s", flush=True)
  md = table(results)
  print(md)
  t0 = time.perf_counter()
  rep = {}
  if {"teacher", "teacher + LLM simulator"} <= set(records):   # same recommender, two users
    rep = report.conversation_report(
        records["teacher + LLM simulator"], records["teacher"], cat,
        train=data.bootstrap(c.catalogue_size, c.catalogue_seed, c.num_sessions, c.seed),
        encoder=make_encoder(config, workdir), names=("LLM simulator", "rule simulator"))
    rep_md = report.markdown(rep, "LLM simulator", "rule simulator")
    with atomic_directory(os.path.join(workdir, "report")) as tmp:   # report.md/json + plots
      render.write(rep, tmp, (report.section(cat),))
    write_json_atomic(os.path.join(workdir, "report.json"), json.loads(json.dumps(
        rep, default=float)))
    with atomic_file(os.path.join(workdir, "report.md")) as f:
      f.write(rep_md + "\n")
    print("conversation report (teacher recommender; LLM vs rule simulator):\n" + rep_md)
  else:
    print("conversation report skipped: it needs the 'teacher' and 'teacher + LLM simulator' "
          "session sets (config.sessions.baselines / systems)")
  seconds["report"] = time.perf_counter() - t0
  llm_m = results.get("RecLLM (LLM recommender)", {})
  sim_m = results.get("teacher + LLM simulator", {})
  summary = {"model": config.checkpoint.get("pretrained", "") or "tiny (trained in workdir)",
             "adapter": trained["adapter"], "added_params_pct": trained["added_pct"],
             "sessions": s.num_sessions, "max_turns": s.max_turns,
             "recllm_success": llm_m.get("success"), "recllm_success@8": llm_m.get("success@8"),
             "rule_success": results.get("rule", {}).get("success"),
             "random_success": results.get("random", {}).get("success"),
             "oracle_success": results.get("oracle", {}).get("success"),
             "recllm_explanation_faithful": llm_m.get("explanation_faithful"),
             "simulator_goal_adherence": sim_m.get("goal_adherence"),
             "report_discriminator_auc": rep.get("distribution", {}).get(
                 "discriminator_auc", {}).get("value"),
             "report_mauve": rep.get("distribution", {}).get("mauve", {}).get("mean"),
             "simulator_intent_accuracy":
                 results.get("teacher + LLM simulator, forced intents", {}).get("intent_accuracy"),
             "task_exact_match": {k: v["exact_match"]
                                  for k, v in trained["task_scores"].items()},
             "train_seconds": trained["train_seconds"], "session_seconds": seconds,
             "total_seconds": time.perf_counter() - t_all}
  write_json_atomic(os.path.join(workdir, "results.json"),
                    {"metrics": results, "summary": summary, "table": md})
  print(json.dumps(summary))
  return summary
