"""Jobs of `mode_jax.main` (named in `mode_jax.resolve.JOBS`): `sample_demo` (build or load a
model, check the HF round trip, sample), `train` (one training run from config) and
`mode_synthetic` (the embedded default: a tiny base pretrained in the workdir, then adapters on
the synthetic suite, evaluated per task against the base). Each is `fn(config, workdir) -> dict`.
"""

from __future__ import annotations

import json
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging as absl_logging

from mode_jax.atomic_io import write_jsonl_atomic
from mode_jax.data.vocab import make_vocab
from mode_jax.model import Transformer, hf_io, presets, sampling
from mode_jax.train import bases, evaluate, run


def train_job(config, workdir: str) -> dict:
  """One training run (`run.run_training`), then greedy generation on its eval tasks scored
  per task (`<workdir>/eval_final.json|md`): {"train_seconds", "final": last logged metrics}."""
  out = run.run_training(config, workdir)
  res = out.score(config.eval, workdir, "eval_final")
  print(res["markdown"])
  return {"train_seconds": out.train_seconds, "final": out.metrics}


def mode_synthetic(config, workdir: str) -> dict:
  """The embedded default. Base: `config.checkpoint.pretrained` (a registry-installed real
  model, e.g. Gemma 3 270M), or `checkpoint.hf_path`, or (neither) a tiny model pretrained on
  generic text once per workdir (`<workdir>/base_model`). Then adapters (config.adapter) on the
  synthetic multi-task mixture, and the per-task table of the base (few-shot prompted when
  `eval.base_shots` > 0) and of the adapted model (zero-shot), on the held-out examples."""
  t_all = time.perf_counter()
  config = bases.with_pretrained(config)
  model_cfg, base = run.ensure_base(config, workdir)
  name = config.checkpoint.get("pretrained", "") or config.checkpoint.hf_path or "tiny base"
  print(f"== base model: {name} ({model_cfg.num_params() / 1e6:.1f}M parameters)")
  print(f"== stage 2: {config.adapter.method} adapters on the synthetic mixture")
  out = run.run_training(config, os.path.join(workdir, "adapter_train"), model_cfg=model_cfg,
                         base_params=base)
  shots = config.eval.get("base_shots", 0)
  evals, table = evaluate.base_eval_tasks(config, out.spec.vocab)
  base_res = evaluate.score(model_cfg, None, base, out.spec.data, config.eval, workdir,
                            "eval_base", evals=evals, table=table,
                            label=f"eval base ({shots}-shot)")
  base_res["scores"] = evaluate.zero_shot_names(base_res["scores"], shots)
  res = out.score(config.eval, workdir, "eval_adapted", label="eval adapted (0-shot)")
  print(f"base model ({shots}-shot prompt):\n" + base_res["markdown"])
  print(f"{out.report['line']}\nadapted (zero-shot prompt):\n" + res["markdown"])
  mean = lambda s, k: float(np.mean([v[k] for v in s.values()]))
  better = sum(res["scores"][t]["exact_match"] > base_res["scores"][t]["exact_match"]
               for t in res["scores"])
  summary = {"model": name, "adapter": out.acfg.describe() if out.acfg else "none",
             "base_shots": shots,
             "base_rougeL": mean(base_res["scores"], "rougeL"),
             "adapted_rougeL": mean(res["scores"], "rougeL"),
             "base_exact_match": mean(base_res["scores"], "exact_match"),
             "adapted_exact_match": mean(res["scores"], "exact_match"),
             "tasks_improved_exact_match": f"{better}/{len(res['scores'])}",
             "added_params_pct": out.report["added_pct"],
             "train_seconds": out.train_seconds,
             "total_seconds": time.perf_counter() - t_all}
  print(json.dumps(summary))
  return summary


def sample_demo(config, workdir: str) -> dict:
  """Builds (or loads) a model, checks the HF round trip, samples; returns a summary dict."""
  m = config.model
  overrides = dict(dtype=m.dtype, param_dtype=m.param_dtype, remat=m.remat)
  if config.checkpoint.hf_path:
    cfg, params = hf_io.load_hf_checkpoint(config.checkpoint.hf_path, dtype=m.param_dtype,
                                           scan_layers=m.scan_layers,
                                           config_overrides=overrides)
    source = config.checkpoint.hf_path
  else:
    cfg = presets.get(m.name, scan_layers=m.scan_layers, **overrides)
    variables = Transformer(cfg).init(jax.random.key(config.seed), jnp.ones((1, 8), jnp.int32))
    params = nn.meta.unbox(variables["params"])
    source = f"preset {m.name} (random init, seed {config.seed})"
  absl_logging.info("model: %s, %.2fM parameters", source, cfg.num_params() / 1e6)

  hf_dir = os.path.join(workdir, "hf_checkpoint")
  hf_io.save_hf_checkpoint(hf_dir, cfg, params)
  cfg2, params2 = hf_io.load_hf_checkpoint(hf_dir, dtype=m.param_dtype,
                                           scan_layers=m.scan_layers,
                                           config_overrides=overrides)
  same = jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), params, params2))
  if not same:
    raise RuntimeError(f"HF round trip through {hf_dir} changed the parameters")

  vocab = make_vocab(config.vocab.kind, config.vocab.path or None)
  s = config.sampling
  prompts = [list(vocab.encode(p)) for p in s.prompts for _ in range(s.num_samples)]
  sampler = sampling.Sampler(cfg2, params2, vocab=vocab)
  kw = dict(max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_k=s.top_k,
            top_p=s.top_p, stop_strings=tuple(s.stop_strings), rng=config.seed)
  sampler.generate(prompts, **kw)  # compile
  t0 = time.perf_counter()
  out = sampler.generate(prompts, **kw)
  dt = time.perf_counter() - t0
  rows = []
  for i, text in enumerate(out.texts):
    rows.append(dict(prompt=s.prompts[i // s.num_samples], completion=text,
                     num_tokens=int(out.lengths[i]),
                     logprob=float(np.sum(out.logprobs[i, :out.lengths[i]]))))
    print(f"[{i}] {rows[-1]['prompt']!r} -> {text!r}")
  write_jsonl_atomic(os.path.join(workdir, "samples.jsonl"), rows)
  summary = dict(source=source, params=cfg.num_params(), hf_round_trip_exact=same,
                 samples=len(rows), generated_tokens=int(out.lengths.sum()),
                 tokens_per_s=float(out.lengths.sum() / dt))
  print(json.dumps(summary))
  return summary
