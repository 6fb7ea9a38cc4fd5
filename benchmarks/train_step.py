"""Train-step throughput and MFU of a preset, through the project's real trainer
(`mode_jax.train.loop.train`: sharded state, jitted step with donation, logical axis rules):

    python -m benchmarks.train_step                         # gemma_2b, MoDE 6x4, batch 8 x 1024
    python -m benchmarks.train_step --preset=gemma_2b --adapter=lora64 --batch=16 --seq_len=1024
    python -m benchmarks.train_step --small                 # CPU smoke run (not a timing)

The base weights are random (the same program as a loaded checkpoint: shapes and dtypes are
what matter) and the batch is random tokens with every position in the loss. The first
`--warmup` steps (compilation included) are one logging interval, the next `--steps` the
measured one, so the figure is steady-state time per step. MFU = tokens/s x model FLOPs per token
(`loop.model_flops_per_token`: 4N + 2N_adapter for a frozen base, 6N for full fine-tuning, plus
attention) / peak FLOP/s of all devices; the peak is looked up from the device kind (dense bf16:
H100 / H200 989 TFLOP/s, A100 312, TPU v4 275, v5e 197, v5p 459, v6e 918) or `--peak_flops`.
Prints one JSON line (also written to `--out` when given).
"""

from __future__ import annotations

import json
import tempfile
import time

from absl import flags
import jax
import numpy as np

from mode_jax import cli
from mode_jax.adapters.config import AdapterConfig
from mode_jax.model import presets
from mode_jax.train import loop

# Dense bf16 peak FLOP/s per device, by a substring of `jax.Device.device_kind` (lower case).
PEAK_FLOPS = (("h200", 989e12), ("h100", 989e12), ("a100", 312e12), ("v6", 918e12),
              ("v5p", 459e12), ("v5 lite", 197e12), ("v5e", 197e12), ("v4", 275e12))

ADAPTERS = {
    "none": None,
    "lora64": dict(method="lora", experts=1, rank=64),
    "mode6x4": dict(method="mode", experts=6, rank=4, block=1),
    "mode16x4": dict(method="mode", experts=16, rank=4, block=1),
}


class _Config(dict):
  """The attribute access `loop.train` reads a train config with (no ml_collections needed, so
  this runs on a bare accelerator VM with only jax / flax / optax / orbax)."""
  __getattr__ = dict.__getitem__


def peak_flops_per_device(kind: str) -> float:
  """Dense bf16 peak of one device of this kind (0.0 when unknown, e.g. a CPU)."""
  kind = kind.lower()
  return next((v for k, v in PEAK_FLOPS if k in kind), 0.0)


def random_batches(batch: int, seq_len: int, vocab: int, seed: int = 0):
  """A `batches(start)` function for `loop.train`: random tokens, every position in the loss."""
  def batches(start: int):
    rng = np.random.default_rng(seed + start)
    while True:
      toks = rng.integers(3, vocab, (batch, seq_len + 1)).astype(np.int32)
      yield {"decoder_input_tokens": toks[:, :-1], "decoder_target_tokens": toks[:, 1:],
             "decoder_loss_weights": np.ones((batch, seq_len), np.float32),
             "decoder_segment_ids": np.ones((batch, seq_len), np.int32),
             "decoder_positions": np.broadcast_to(np.arange(seq_len, dtype=np.int32),
                                                  (batch, seq_len))}
  return batches


def run(args) -> dict:
  over = dict(dtype=args.dtype, param_dtype=args.dtype, remat=args.remat,
              scan_layers=args.scan_layers)
  cfg = presets.get(args.preset, **over)
  spec = ADAPTERS[args.adapter]
  acfg = None if spec is None else AdapterConfig(
      **spec, targets=tuple(args.targets.split(",")), impl=args.impl)
  devices = jax.devices()
  kind = devices[0].device_kind
  peak = args.peak_flops or peak_flops_per_device(kind) * len(devices)
  tcfg = _Config(dict(
      steps=args.warmup + args.steps, batch_size=args.batch, seq_len=args.seq_len, seed=0,
      lr=1e-4, warmup_steps=0, decay="constant", end_lr_frac=0.1, optimizer=args.optimizer,
      weight_decay=0.0, grad_clip=1.0, grad_accum=1, log_every=args.warmup,
      eval_every=0, ckpt_every=10**9, keep=1, async_ckpt=False, peak_flops=peak,
      crash_at_step=-1, loss_chunk=args.loss_chunk, loss_positions=0))
  mesh = dict(axes=("data", "fsdp", "tensor"), shape=tuple(int(x) for x in args.mesh), num_devices=0)
  lines = []
  t0 = time.perf_counter()
  with tempfile.TemporaryDirectory() as wd:
    out = loop.train(cfg, acfg, tcfg, batches=random_batches(args.batch, args.seq_len,
                                                             cfg.vocab_size),
                     workdir=wd, mesh_cfg=mesh, log=lines.append)
  m = out.metrics
  res = {"benchmark": "train_step", "preset": args.preset, "adapter": args.adapter,
         "impl": args.impl, "params": cfg.num_params(), "trainable": out.report["trainable"],
         "added_pct": out.report["added_pct"], "batch": args.batch, "seq_len": args.seq_len,
         "dtype": args.dtype, "remat": args.remat, "loss_chunk": args.loss_chunk, "devices": len(devices), "device_kind": kind,
         "mesh": list(mesh["shape"]), "measured_steps": args.steps,
         "step_time_s": m["step_time_s"], "tokens_per_s": m["tokens_per_s"],
         "tokens_per_s_per_device": m["tokens_per_s"] / len(devices),
         "model_flops_per_token": loop.model_flops_per_token(
             cfg, out.report["trainable"] if acfg else 0, acfg is None, args.seq_len),
         "peak_flops": peak, "mfu": m.get("mfu"), "loss": m["loss"],
         "wall_s": time.perf_counter() - t0}
  return res


def parse(argv=None):
  ap = flags.FlagValues()
  flags.DEFINE_string("preset", "gemma_2b", "", flag_values=ap)
  flags.DEFINE_enum("adapter", "mode6x4", sorted(ADAPTERS), "", flag_values=ap)
  flags.DEFINE_string("targets", "q,k,v,o", "", flag_values=ap)
  flags.DEFINE_enum("impl", "xla", ["xla", "pallas"], "", flag_values=ap)
  flags.DEFINE_integer("batch", 8, "", flag_values=ap)
  flags.DEFINE_integer("seq_len", 1024, "", flag_values=ap)
  flags.DEFINE_integer("steps", 10, "measured steps", flag_values=ap)
  flags.DEFINE_integer("warmup", 3, "steps before (incl. compilation)", flag_values=ap)
  flags.DEFINE_string("dtype", "bfloat16", "", flag_values=ap)
  flags.DEFINE_integer("loss_chunk", 64, "positions per chunk of the LM loss (0: full [B, T, V] logits)", flag_values=ap)
  flags.DEFINE_string("optimizer", "adafactor", "", flag_values=ap)
  flags.DEFINE_integer("remat", 1, "", flag_values=ap)
  flags.DEFINE_integer("scan_layers", 1, "", flag_values=ap)
  flags.DEFINE_list("mesh", ["1", "-1", "1"],
                    "data,fsdp,tensor; -1 takes the remaining devices", flag_values=ap)
  flags.DEFINE_float("peak_flops", 0.0, "total peak FLOP/s (default: from the device kind; 0 on CPU)", flag_values=ap)
  flags.DEFINE_bool("small", False, "tiny preset, batch 2 x 64, 2 + 2 steps, float32 (a CPU smoke run)", flag_values=ap)
  flags.DEFINE_string("out", "", "also write the JSON result here", flag_values=ap)
  args = cli.parse_argv(ap, argv)
  if args.small:
    args.preset, args.batch, args.seq_len, args.steps, args.warmup = "tiny", 2, 64, 2, 2
    args.dtype, args.remat, args.scan_layers = "float32", 0, 0
  return args


def main(argv=None) -> dict:
  args = parse(argv)
  res = run(args)
  line = json.dumps(res)
  print(line)
  if args.out:
    with open(args.out, "w") as f:
      f.write(line + "\n")
  return res


if __name__ == "__main__":
  main()
