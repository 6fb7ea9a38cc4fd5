"""PRM training through the `mode_jax` trainer and entry point:

    python -m mode_jax.main --config=configs/prm_arith.py --workdir=runs/prm_omegaprm

(config.job = "prm_jax.prm.train:prm_train"). The backbone starts from `checkpoint.hf_path`
(by default the tiny policy: a PRM initialised from its policy) and is trained fully
(`adapter.method=none`) or through LoRA / MoDE adapters; the head always trains. Records are
split into train / dev by question (a hash of the question id, `prm.dev_fraction`), so no
question is in both. The same checkpoints, metrics.jsonl / TensorBoard and resume behaviour as
every `mode_jax` run (in `<workdir>/train`); the trained PRM is saved in `<workdir>/prm_model`
(`save_prm` / `load_prm`: all params for full fine-tuning or a randomly initialised base,
else adapters + head and the base checkpoint path).
"""

from __future__ import annotations

import dataclasses
import json
import os
import zlib
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from safetensors.numpy import load_file, save_file

from mode_jax.adapters import params as adapter_params
from mode_jax.adapters.config import AdapterConfig
from mode_jax.atomic_io import atomic_directory, jsonl_records, read_json, write_json_atomic
from mode_jax.data.vocab import check_vocab, make_vocab, vocab_spec
from mode_jax.model import hf_io
from mode_jax.model.config import ModelConfig, RopeScaling
from mode_jax.train import bases, evaluate, run
from prm_jax.prm.metrics import auroc
from prm_jax.envs.llm_judge import LLMJudge
from mode_jax.serve.api import Sampling
from mode_jax.serve.http import OpenAIClient
from prm_jax.prm import data as prm_data
from prm_jax.prm import label_sources
from prm_jax.prm.model import PRMModel, StepScorer, backbone_params
from prm_jax.prm.objectives import make_loss, objective_loss

CONFIG_FILE, WEIGHTS_FILE = "prm_config.json", "prm.safetensors"
BEST_DIR, BEST_FILE = "best_dev", "best_dev.json"     # under <workdir>/train


def _save_best(path: str, trainable, info: dict) -> None:
  """The trainable leaves at the best dev evaluation so far (atomic; read back on resume)."""
  tensors = {k: np.ascontiguousarray(np.asarray(jax.device_get(v)))
             for k, v in adapter_params.flatten(nn.meta.unbox(trainable)).items()}
  with atomic_directory(path) as tmp:
    save_file(tensors, os.path.join(tmp, WEIGHTS_FILE))
    with open(os.path.join(tmp, BEST_FILE), "w") as f:
      json.dump(info, f, indent=2, default=float)


def _best_info(path: str):
  """The {"step", "eval_loss"} of `_save_best` at `path`, or None."""
  f = os.path.join(path, BEST_FILE)
  return read_json(f) if os.path.exists(f) else None


def _load_best(path: str):
  """(trainable tree, info) saved by `_save_best`, or (None, None)."""
  info = _best_info(path)
  if info is None:
    return None, None
  return adapter_params.unflatten(load_file(os.path.join(path, WEIGHTS_FILE))), info


def read_records(paths, errors: list) -> list[dict]:
  """Records from JSONL files; malformed lines and records go to `errors` and are skipped."""
  out = []
  for path in ([paths] if isinstance(paths, str) else list(paths)):
    if not os.path.exists(path):
      raise FileNotFoundError(f"prm.records: {path!r} does not exist (collect labels first: "
                              "python -m prm_jax.collect ...)")
    for n, rec in jsonl_records(path, errors):
      try:
        prm_data.check_record(rec, f"{path}:{n}")
      except ValueError as e:
        errors.append({"line": n, "error": str(e)})
        continue
      out.append(rec)
  return out


def is_dev(question_key: str, fraction: float) -> bool:
  """Whether a question is in the dev split (a stable hash < `fraction`)."""
  return zlib.crc32(question_key.encode()) % 10_000 < fraction * 10_000


def save_prm(path: str, model_cfg, params, acfg, meta: dict) -> None:
  """Writes the PRM (config + safetensors) to `path` atomically: every parameter (full
  fine-tuning, or no base checkpoint to load the rest from), else only the adapter and head
  leaves with the base checkpoint's path in `meta["base"]`."""
  params = nn.meta.unbox(params)
  whole = acfg is None or not meta.get("base")   # no base checkpoint to load the rest from
  keep = params if whole else adapter_params.split(params)[1]
  tensors = {k: np.ascontiguousarray(np.asarray(jax.device_get(v)))
             for k, v in adapter_params.flatten(keep).items()}
  cfg = {"model": dataclasses.asdict(model_cfg), "adapter": None if acfg is None else
         acfg.to_dict(), "full": acfg is None, "whole_tree": whole, **meta}
  with atomic_directory(path) as tmp:
    with open(os.path.join(tmp, CONFIG_FILE), "w") as f:
      json.dump(cfg, f, indent=2, default=str)
    save_file(tensors, os.path.join(tmp, WEIGHTS_FILE))


def load_prm(path: str):
  """(model_cfg, params, adapter config or None, meta) of a `save_prm` directory."""
  cfg_path = os.path.join(path, CONFIG_FILE)
  if not os.path.exists(cfg_path):
    raise FileNotFoundError(f"load_prm: {cfg_path} missing (not a saved PRM)")
  meta = read_json(cfg_path)
  m = dict(meta["model"])
  m["rope_scaling"] = RopeScaling(**m["rope_scaling"])
  model_cfg = ModelConfig(**m)
  tree = adapter_params.unflatten(load_file(os.path.join(path, WEIGHTS_FILE)))
  acfg = None
  if not meta["full"]:
    acfg = AdapterConfig.from_dict(meta["adapter"], where=f"{cfg_path}: field 'adapter'")
  if not meta.get("whole_tree", meta["full"]):
    _, base = hf_io.load_hf_checkpoint(meta["base"])
    tree = adapter_params.combine(backbone_params(base), tree, where=f"PRM {path}")
  return model_cfg, tree, acfg, meta


def saved_vocab(path: str, meta: dict):
  """The vocabulary a saved PRM was trained with (its `vocab` spec: kind and path), so steps
  are scored on the ids the PRM learned; PRMs saved before the spec was recorded were all
  byte-level. A spec whose file is gone is an error naming it (never a silent fallback)."""
  spec = meta.get("vocab") or {"kind": "bytes", "path": ""}
  kind, vpath = spec.get("kind", "bytes"), spec.get("path", "")
  if kind != "bytes" and not (vpath and os.path.exists(vpath)):
    raise FileNotFoundError(f"PRM {path}: trained with a {kind!r} vocabulary at {vpath!r}, "
                            f"which does not exist here; pass vocab= to scorer_from_dir")
  return make_vocab(kind, vpath or None)


def scorer_from_dir(path: str, vocab=None, batch_size: int = 64, task: str = "") -> StepScorer:
  """A StepScorer for a saved PRM; `task` (a record "task" name seen in training) picks the
  task id that task-routed adapters read."""
  model_cfg, params, acfg, meta = load_prm(path)
  ids = meta.get("task_ids", {"default": 0})
  if task and task not in ids:
    raise KeyError(f"PRM {path} was trained on tasks {sorted(ids)}, not {task!r}")
  return StepScorer(model_cfg, params, vocab or saved_vocab(path, meta), adapter=acfg,
                    template=meta.get("template", "Question: {question}\nAnswer:\n"),
                    batch_size=batch_size, task_id=ids[task] if task else None,
                    bos_id=meta.get("bos_id"), token_ids=meta.get("token_ids"))


def make_judge(pcfg):
  """config.prm.judge: an exact judge's name (returned as is) or "llm": an LLMJudge on the
  OpenAI-compatible server of `config.prm.judge_llm` (url, model, samples, max_tokens,
  temperature)."""
  name = pcfg.get("judge", "")
  if name != "llm" or pcfg.get("labels", "mc") not in ("exact", "consensus"):
    return name
  j = pcfg.get("judge_llm") or {}
  if not j.get("url") or not j.get("model"):
    raise ValueError("prm.judge='llm' needs prm.judge_llm.url and prm.judge_llm.model (an "
                     "OpenAI-compatible completions server)")
  samples = int(j.get("samples", 1))
  sampling = Sampling(max_tokens=int(j.get("max_tokens", 2048)),
                      temperature=float(j.get("temperature", 0.0 if samples == 1 else 1.0)))
  return LLMJudge(OpenAIClient(j["url"], j["model"], chat=bool(j.get("chat", False))),
                  samples=samples, sampling=sampling)


def build_sequences(pcfg, vocab) -> tuple[dict, dict]:
  """({"train": seqs, "validation": seqs}, info) from config.prm."""
  errors: list = []
  task_ids, label_info = {"default": 0}, {"labels": "outcomes"}
  if pcfg.objective == "orm":
    rows = _read_outcomes(pcfg.outcomes, errors)
    split = {"train": [], "validation": []}
    for q, sol, ok in rows:
      split["validation" if is_dev(q, pcfg.dev_fraction) else "train"].append((q, sol, ok))
    seqs = {k: prm_data.outcome_sequences(v, vocab.encode, pcfg.template)
            for k, v in split.items()}
  else:
    recs, label_info = label_sources.apply(read_records(pcfg.records, errors),
                                           pcfg.get("labels", "mc"), make_judge(pcfg))
    if not recs:
      raise ValueError(f"prm: no records left from {pcfg.records} after prm.labels="
                       f"{label_info['labels']!r}: {label_info}")
    names = sorted({r.get("task") or "default" for r in recs})
    task_ids = {n: i for i, n in enumerate(names)}
    split = {"train": [], "validation": []}
    for r in recs:
      split["validation" if is_dev(prm_data.question_key(r), pcfg.dev_fraction) else "train"].append(r)
    weighting = pcfg.get("weighting", "occurrences")
    seqs = {k: prm_data.sequences_from_records(v, vocab.encode, pcfg.template, task_ids,
                                               weighting)
            for k, v in split.items()}
  if not seqs["train"]:
    raise ValueError(f"prm: no training sequences from {pcfg.records or pcfg.outcomes}")
  if pcfg.objective == "pairwise":
    seqs["train"] = prm_data.shuffle_by_question(seqs["train"], 0)
  info = {"input_errors": errors[:50], "num_input_errors": len(errors), "task_ids": task_ids,
          "label_source": label_info,
          **{f"{k}_sequences": len(v) for k, v in seqs.items()},
          **{f"{k}_labels": int(sum(sum(x > 0 for x in s["labels"]) for s in v))
             for k, v in seqs.items()},
          **{f"{k}_label_weight": int(sum(sum(s["weights"]) for s in v))
             for k, v in seqs.items()}}
  return seqs, info


def _read_outcomes(path: str, errors: list) -> list[tuple[str, str, bool]]:
  """ORM data: JSONL of {"question", "solution", "correct"}."""
  out = []
  for n, rec in jsonl_records(path, errors):
    if not (isinstance(rec.get("question"), str) and isinstance(rec.get("solution"), str)
            and isinstance(rec.get("correct"), bool)):
      errors.append({"line": n, "error": f"{path}:{n}: need question, solution (str), "
                                         "correct (bool)"})
      continue
    out.append((rec["question"], rec["solution"], rec["correct"]))
  return out


def backbone_vocab(config, model_cfg=None) -> tuple[dict, object]:
  """({"kind", "path"[, "bos_id"]}, vocabulary) the PRM reads text with: the backbone's own
  tokenizer record (`vocab.vocab_spec`: what the project saved beside it, or its tokenizer
  file) when `config.vocab` is left at its byte-level default, else `config.vocab`; checked
  against the backbone's embedding (`VocabularyMismatch` names the checkpoint)."""
  spec = {"kind": config.vocab.kind, "path": config.vocab.path or ""}
  hf = config.checkpoint.hf_path
  if hf and spec == {"kind": "bytes", "path": ""}:
    rec = vocab_spec(hf)
    if rec is not None:
      spec = {"kind": rec["kind"], "path": rec.get("path") or ""}
      if "bos_id" in rec:
        spec["bos_id"] = rec["bos_id"]
  vocab = make_vocab(spec["kind"], spec["path"] or None)
  if model_cfg is not None:
    check_vocab(model_cfg, vocab, f"PRM backbone {hf or config.model.get('name', '')}")
  return spec, vocab


HEADS = ("scalar", "tokens")


def head_token_ids(pcfg, vocab) -> Optional[tuple]:
  """None for the scalar head; for `prm.head="tokens"` the ids of `prm.tokens` (good, bad
  text), each of which must be one token of the PRM's vocabulary."""
  head = pcfg.get("head", "scalar")
  if head not in HEADS:
    raise ValueError(f"prm.head={head!r}: expected one of {HEADS}")
  if head == "scalar":
    return None
  ids = []
  for text in pcfg.get("tokens", ("+", "-")):
    enc = list(vocab.encode(text))
    if len(enc) != 1:
      raise ValueError(f"prm.tokens: {text!r} is {len(enc)} tokens of this vocabulary "
                       f"({enc}); the token reading needs one token each")
    ids.append(int(enc[0]))
  if len(ids) != 2 or ids[0] == ids[1]:
    raise ValueError(f"prm.tokens={tuple(pcfg.tokens)!r}: need two different tokens")
  return tuple(ids)


def prm_train(config, workdir: str, log=print) -> dict:
  """Trains a PRM on `config.prm.records` through `mode_jax.train.run` (the job of
  configs/prm_arith.py): the backbone of `checkpoint.hf_path` (or the preset `model.name`),
  full or through `config.adapter`, with the head of `prm.objective`; saves the PRM in
  `<workdir>/prm_model`: the parameters of the lowest dev objective loss among the periodic
  dev evaluations (`train.eval_every`) and the last step, else the last step. Returns (and
  writes to prm_train.json) the label counts, the last logged training metrics, which step was
  saved and why (`selected`), the dev evaluations of this process (`dev_evals`) and the saved
  PRM's metrics on the whole dev split (`dev`)."""
  config = bases.with_pretrained(config)    # checkpoint.pretrained: a registry model's HF dir
  pcfg = config.prm
  model_cfg = base = None
  if config.checkpoint.hf_path:
    model_cfg, base = hf_io.load_hf_checkpoint(config.checkpoint.hf_path)
    base = backbone_params(base)
  vspec, vocab = backbone_vocab(config, model_cfg)
  seqs, info = build_sequences(pcfg, vocab)
  spec = run.spec_from_config(config, workdir, model_cfg=model_cfg, base_params=base,
                              data=False, seq_len=pcfg.max_len,
                              num_tasks=len(info["task_ids"]))
  model_cfg, acfg, tcfg = spec.model_cfg, spec.acfg, spec.train
  # the backbone's BOS (its tokenizer record's, else its config's) leads every sequence
  bos = vspec["bos_id"] if "bos_id" in vspec else model_cfg.bos_id
  seqs = {split: prm_data.with_bos(rows, bos) for split, rows in seqs.items()}
  name = f"prm_{zlib.crc32(os.path.abspath(workdir).encode()):08x}"   # one seqio task per run
  prm_data.register_task(name, seqs, vocab)
  log(f"PRM ({pcfg.objective}): {info['train_sequences']} train / "
      f"{info['validation_sequences']} dev sequences, {info['train_labels']} / "
      f"{info['validation_labels']} labelled steps" + (f"; BOS {bos} first" if bos is not None
                                                        else ""))
  token_ids = head_token_ids(pcfg, vocab)
  model = PRMModel(model_cfg, acfg, token_ids)
  loss = make_loss(pcfg.objective, threshold=pcfg.threshold, max_positions=pcfg.max_positions)
  dev = list(prm_data.batches(name, pcfg.max_len, tcfg.batch_size, shuffle=False,
                              split="validation", num_epochs=1)(0)) if seqs["validation"] else []

  @jax.jit
  def dev_loss(params, batch):
    z = model.apply({"params": params}, batch["decoder_input_tokens"],
                    positions=batch["decoder_positions"],
                    segment_ids=batch["decoder_segment_ids"],
                    task_ids=batch.get("decoder_task_ids"))
    return objective_loss(pcfg.objective, z, batch["prm_labels"], batch["prm_groups"],
                          threshold=pcfg.threshold, max_positions=pcfg.max_positions,
                          weights=batch.get("prm_weights")) + (z,)

  def dev_eval(params, batches) -> dict:
    """Objective loss / accuracy and per-step metrics against the MC labels (AUROC and
    accuracy of 1[p > .5] vs 1[MC > 0]; accuracy vs 1[MC > .5]), one forward per batch."""
    vals, ps, mcs = [], [], []
    for b in batches:
      loss_v, acc_v, z = jax.device_get(dev_loss(params, {k: jnp.asarray(v)
                                                          for k, v in b.items()}))
      vals.append((loss_v, acc_v))
      lab = b["prm_labels"]
      ps.append(1 / (1 + np.exp(-np.asarray(z)[lab > 0])))
      mcs.append((lab[lab > 0] - 1) / prm_data.LABEL_SCALE)
    p, mc = np.concatenate(ps), np.concatenate(mcs)
    return {"eval_loss": float(np.mean([v[0] for v in vals])),
            "eval_accuracy": float(np.mean([v[1] for v in vals])),
            "dev_steps": int(len(p)), "dev_auroc_mc_gt_0": auroc(p, mc > 0),
            "dev_acc_mc_gt_0": float(((p > 0.5) == (mc > 0)).mean()),
            "dev_acc_mc_gt_half": float(((p > 0.5) == (mc > 0.5)).mean())}

  best_path = os.path.join(workdir, "train", BEST_DIR)
  history: list = []

  def eval_fn(step, trainable, frozen):
    """Dev metrics on the first `prm.dev_batches` dev batches; keeps the trainable leaves of
    the lowest dev objective loss so far (`<workdir>/train/best_dev`, survives a resume)."""
    m = dev_eval(evaluate.full_params(trainable, frozen, acfg is None), dev[:pcfg.dev_batches])
    history.append({"step": int(step), "eval_loss": m["eval_loss"]})
    best = _best_info(best_path)          # the JSON only: the weights are read once, at the end
    if best is None or m["eval_loss"] < best["eval_loss"]:
      _save_best(best_path, trainable, {"step": int(step), "eval_loss": m["eval_loss"]})
    return m

  out = run.run(spec, os.path.join(workdir, "train"), batches=prm_data.batches(
                     name, pcfg.max_len, tcfg.batch_size, seed=tcfg.seed,
                     shuffle=pcfg.objective != "pairwise"),
                 eval_fn=eval_fn if (dev and tcfg.eval_every) else None, model=model,
                 loss=loss, save=False, log=log)
  params = out.params()
  selected = {"step": int(out.state.step), "rule": "last step (no dev evaluation)"}
  best_tree, best = _load_best(best_path)
  if best is not None:        # the saved PRM: the best dev evaluation, the last step included
    last = dev_eval(params, dev[:pcfg.dev_batches])["eval_loss"]
    selected = {"step": int(out.state.step), "eval_loss": last, "last_step_eval_loss": last,
                "rule": f"lowest dev objective loss on {min(len(dev), pcfg.dev_batches)} "
                        f"dev batches over the evaluations and the last step"}
    if best["eval_loss"] < last:
      params = evaluate.host(evaluate.full_params(best_tree, out.frozen, acfg is None))
      selected.update(step=best["step"], eval_loss=best["eval_loss"])
  log(f"PRM saved from step {selected['step']} ({selected['rule']})")
  save_prm(os.path.join(workdir, "prm_model"), model_cfg, params, acfg,
           {"template": pcfg.template, "objective": pcfg.objective,
            "base": config.checkpoint.hf_path, "task_ids": info["task_ids"],
            "vocab": {"kind": vspec["kind"], "path": vspec["path"]},
            "selected_step": selected["step"], "bos_id": bos,
            "token_ids": None if token_ids is None else list(token_ids)})
  summary = {"objective": pcfg.objective, **info, "final": out.metrics, "selected": selected,
             "dev_evals": history}
  if dev:
    summary["dev"] = dev_eval(params, dev)
  write_json_atomic(os.path.join(workdir, "prm_train.json"), summary, default=float)
  log(json.dumps({k: v for k, v in summary.items() if k != "input_errors"}, default=float))
  return summary
