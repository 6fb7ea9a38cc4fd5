"""LoRA training throughput and peak memory on the real Gemma 3 270M: this package vs HF PEFT.

    python -m benchmarks.lora_training [--steps 5] [--batch 4] [--seq 256] [--loss_tokens 64]

Setting (both sides): Gemma 3 270M in float32 (the converted GGUF of `mode_jax.pretrained`, the
same weights on both sides), LoRA rank 8 on q, k, v, o (scale 1: PEFT lora_alpha = r), AdamW
lr 1e-4, batch 4 x 256 tokens of English text, loss on the last 64 tokens of each row
(instruction tuning: targets after the prompt). This package: the jitted train step with the
head computed only on the loss positions (`train.loss_positions=64`). PEFT: `get_peft_model`
+ torch AdamW, (a) as HF's Trainer does it, labels -100 outside the targets (full [B, T, V]
logits), and (b) with `logits_to_keep=64` (HF's own way to compute the head on the last
positions only). The gemma library (Google DeepMind's JAX library, in its own virtual
environment: `--gemma_python`, see benchmarks/gemma_lib_worker.py) with its own LoRA modules on
its attention einsums and the same weights (`mode_jax.model.gemma_lib.to_gemma_library`), the
loss as the library computes it (full logits, masked). Each side runs in its own subprocess:
reported are training tokens/s (B x T per step / median step time over `--steps` timed steps
after 2 warm-up steps, compilation excluded) and, for the project and PEFT, the process's peak
resident memory (ru_maxrss, which includes the model and the framework).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

from absl import flags
import numpy as np

from benchmarks.sampling import ENGLISH as _TEXT
from mode_jax import cli

def _batch(vocab, bos, args):
  text = list(vocab.encode(_TEXT * 40))
  rs = np.random.RandomState(0)
  starts = rs.randint(0, len(text) - args.seq, args.batch)
  toks = np.array([[bos] + text[s:s + args.seq - 1] for s in starts], np.int32)
  weights = np.zeros_like(toks, dtype=np.float32)
  weights[:, -args.loss_tokens - 1:-1] = 1.0   # predict the last loss_tokens tokens
  targets = np.roll(toks, -1, axis=1)
  return toks, targets, weights


def _time(step, args):
  for _ in range(2):
    step()
  times = []
  for _ in range(args.steps):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def lora_setup(args):
  """(model config, frozen base, LoRA r8 q/k/v/o adapter, its config, batch) of the project's
  side on `args.model` (shared with benchmarks.train_profile)."""
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  from mode_jax import pretrained
  from mode_jax.adapters import AdapterConfig, params as ap
  cfg, base, vocab = pretrained.load(args.model)
  acfg = AdapterConfig("lora", rank=8, targets=("q", "k", "v", "o"), scale=1.0,
                       init="kaiming_uniform")
  adapter = jax.tree.map(jnp.asarray, nn.meta.unbox(ap.init_adapter(cfg, acfg,
                                                                     jax.random.key(0))))
  toks, targets, weights = _batch(vocab, cfg.bos_id, args)
  batch = {"decoder_input_tokens": jnp.asarray(toks), "decoder_target_tokens":
           jnp.asarray(targets), "decoder_loss_weights": jnp.asarray(weights)}
  return cfg, base, adapter, acfg, batch


def ours(args):
  import jax
  import jax.numpy as jnp
  import optax
  from mode_jax.adapters import params as ap
  from mode_jax.model import Transformer
  from mode_jax.train.step import TrainState, make_train_step
  cfg, base, adapter, acfg, batch = lora_setup(args)
  tx = optax.adamw(1e-4, weight_decay=0.0)
  fn = jax.jit(make_train_step(Transformer(cfg, acfg), tx, lambda s: 1e-4, full=False,
                               loss_positions=args.loss_tokens), donate_argnums=(0,))
  state = [TrainState(step=jnp.int32(0), params=adapter, opt_state=tx.init(adapter))]
  losses = []

  def step():
    state[0], m = fn(state[0], base, batch)
    losses.append(float(m["loss"]))
  t = _time(step, args)
  return {"side": "mode_jax (head on loss positions)", "step_s": t, "first_loss": losses[0],
          "trainable": ap.count_leaves(adapter)}


def peft(args, keep: bool):
  import torch
  from peft import LoraConfig, get_peft_model
  from transformers import AutoModelForCausalLM
  from mode_jax import pretrained
  from mode_jax.data.vocab import make_vocab
  model = AutoModelForCausalLM.from_pretrained(pretrained.hf_dir(args.model),
                                               dtype=torch.float32)
  model = get_peft_model(model, LoraConfig(r=8, lora_alpha=8, lora_dropout=0.0,
                                           target_modules=["q_proj", "k_proj", "v_proj",
                                                           "o_proj"]))
  model.train()
  vocab = make_vocab("gguf", pretrained.gguf_path(args.model))
  toks, targets, weights = _batch(vocab, model.config.bos_token_id, args)
  x = torch.tensor(toks, dtype=torch.long)
  labels = torch.tensor(np.where(weights > 0, targets, -100), dtype=torch.long)
  opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                          weight_decay=0.0)
  losses = []
  k = args.loss_tokens

  def step():
    if keep:     # logits for the last k + 1 positions only; the loss on the first k of them
      logits = model(input_ids=x, logits_to_keep=k + 1).logits[:, :-1]
      loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                               labels[:, -k - 1:-1].reshape(-1))
    else:        # HF Trainer: labels shifted inside the model, -100 ignored, full logits
      shifted = torch.full_like(labels, -100)
      shifted[:, 1:] = labels[:, :-1]
      loss = model(input_ids=x, labels=shifted).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    losses.append(float(loss))
  t = _time(step, args)
  return {"side": "PEFT" + (" + logits_to_keep" if keep else " (full logits, as Trainer)"),
          "step_s": t, "first_loss": losses[0],
          "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def gemma_library(args):
  """The gemma library's LoRA step on the same batch (benchmarks.gemma_lib_worker)."""
  from benchmarks.text_generation import gemma_lib_worker
  from mode_jax import pretrained
  cfg, params, vocab = pretrained.load(args.model)
  toks, targets, weights = _batch(vocab, cfg.bos_id, args)
  res = gemma_lib_worker(args.gemma_python, cfg, params, {
      "dtype": "float32", "lora": {"rank": 8, "lr": 1e-4, "tokens": toks.tolist(),
                                   "targets": targets.tolist(), "weights": weights.tolist(),
                                   "steps": args.steps}})["lora"]
  return dict(res, side="gemma library LoRA (full logits)", peak_rss_gib=float("nan"))


def main(argv=None):
  p = flags.FlagValues()
  for name, default in (("steps", 5), ("batch", 4), ("seq", 256), ("loss_tokens", 64)):
    flags.DEFINE_integer(f"{name}", default, "", flag_values=p)
  flags.DEFINE_string("model", "gemma3_270m", "", flag_values=p)
  flags.DEFINE_string("side", "", "", flag_values=p)
  flags.DEFINE_string("gemma_python", os.environ.get("MODE_JAX_GEMMA_PYTHON",
                                                     "/work/anchors/gemma/bin/python"),
                      "the python of a virtual environment with the gemma library (skipped "
                      "when absent)", flag_values=p)
  args = cli.parse_argv(p, argv)
  if args.side:
    out = ours(args) if args.side == "ours" else peft(args, keep=args.side == "peft_keep")
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print("RESULT " + json.dumps(out), flush=True)
    return
  from mode_jax import pretrained
  print(f"setting: {args.model} float32 ({pretrained.hf_dir(args.model)}), LoRA r8 q,k,v,o, batch "
        f"{args.batch} x {args.seq}, loss on the last {args.loss_tokens} tokens per row, "
        f"{args.steps} timed steps")
  rows = []
  for side in ("ours", "peft", "peft_keep"):
    cmd = [sys.executable, "-m", "benchmarks.lora_training", f"--side={side}"] + [
        f"--{k}={getattr(args, k)}" for k in ("steps", "batch", "seq", "loss_tokens", "model")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode or not line:
      raise SystemExit(f"{side} failed:\n{res.stderr[-3000:]}")
    rows.append(json.loads(line[0][7:]))
  if os.path.exists(args.gemma_python):
    rows.append(gemma_library(args))
  else:
    print(f"gemma library: no {args.gemma_python} (see benchmarks/gemma_lib_worker.py)")
  tokens = args.batch * args.seq
  for r in rows:
    print(f"{r['side']:40s}: {tokens / r['step_s']:8.0f} tokens/s  (step {r['step_s']:.2f} s, "
          f"peak RSS {r['peak_rss_gib']:.2f} GiB, trainable {r['trainable']:,}, first loss "
          f"{r['first_loss']:.3f})")
  for r in rows[1:]:
    print(f"ratio mode_jax / {r['side']}: {r['step_s'] / rows[0]['step_s']:.2f}x")


if __name__ == "__main__":
  main()
