"""Does a config fit its hardware? Compile its real programs on simulated devices and read their
memory, no weights and no accelerator needed:

    python -m mode_jax.train.fit_check --config=configs/mode_gemma2b_sni.py:mode16x4 \
        --devices=8 --hbm_gib=16                     # TPU v5e-8: 16 GiB of HBM per chip
    python -m mode_jax.train.fit_check --config=configs/mode_gemma2b_sni.py:lora64 \
        --devices=8 --hbm_gib=80 --json=fit.json     # 8xH100

It makes `--devices` CPU host devices (`--xla_force_host_platform_device_count`, set before
JAX starts its backend), builds the run exactly as `loop.train` does (`loop.setup`: the config's
mesh and logical axis rules, abstract parameters as sharded `jax.ShapeDtypeStruct`s, the
optimizer, the jitted train step with donation), AOT-lowers and compiles

- `train_step`: the real step at the config's batch and sequence length;
- `eval_loss`: the teacher-forced eval loss (`run_data.make_eval_fn`'s program) at `--eval_batch`;
- `sample`: the sampler's prefill + decode loop (`sampling.lower_generate`, what generation-based
  eval runs) at `--sample_batch` rows, the config's input length and `eval.max_new_tokens`;

and prints, per device, the argument / output / temporary bytes of
`compiled.memory_analysis()` next to an analytical estimate (sharded weights, trainable
parameters, optimizer state and gradients; saved activations under the config's remat; the
peak of one layer's recomputation; one chunk of logits). It exits with status 1 when a program
does not fit `--hbm_gib` by the compiled figure (or by either, with `--strict`).

What this proves and what it does not: the programs compile for these shapes and shardings
(every collective and buffer is assigned); the CPU compiler's buffer assignment is not a TPU's or
a GPU's (it fuses and schedules differently; in one measurement a smaller batch reported more
temp memory), so the compiled bytes are an indication and the analytical estimate is the
cross-check. Timings need the hardware (`launch/accelerator_check.sh`).
"""

from __future__ import annotations

import math
import os
import sys
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from absl import flags
from ml_collections import config_flags

from mode_jax import cli
from mode_jax.adapters.params import combine
from mode_jax.atomic_io import write_json_atomic
from mode_jax.model import sampling
from mode_jax.model.sampling import bucket
from mode_jax.model.transformer import Transformer
from mode_jax.train import loop, partitioning, run
from mode_jax.train.step import lm_losses

GIB = 2**30


def _force_devices(n: int) -> None:
  flags = os.environ.get("XLA_FLAGS", "")
  flag = f"--xla_force_host_platform_device_count={n}"
  if "xla_force_host_platform_device_count" not in flags:
    os.environ["XLA_FLAGS"] = (flags + " " + flag).strip()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")


def shard_factor(sharding, shape) -> int:
  """How many ways a leaf of `shape` is split by its NamedSharding."""
  mesh = sharding.mesh
  n = 1
  for axes in sharding.spec:
    if axes is None:
      continue
    for a in (axes if isinstance(axes, tuple) else (axes,)):
      n *= mesh.shape[a]
  return n


def sharded_bytes(abstract, shardings) -> int:
  """Per-device bytes of a tree of ShapeDtypeStructs under a same-structure tree of shardings."""
  leaves = jax.tree.leaves(abstract)
  shs = jax.tree.leaves(shardings, is_leaf=lambda x: hasattr(x, "spec"))
  total = 0
  for x, sh in zip(leaves, shs):
    total += math.prod(x.shape) * x.dtype.itemsize // shard_factor(sh, x.shape)
  return total


def analytic(st, model_cfg, tcfg, batch: int, seq: int) -> dict:
  """Per-device estimate (bytes) of the train step: see the module docstring."""
  mesh = st.mesh
  ax = dict(mesh.shape)
  batch_shards = ax.get("data", 1) * ax.get("fsdp", 1)
  tensor = ax.get("tensor", 1)
  b = max(1, batch // batch_shards)
  cfg = model_cfg
  act = jnp.dtype(cfg.dtype).itemsize
  state_abs = jax.eval_shape(st.make_state, st.train_abs)
  out = {
      "frozen_weights": sharded_bytes(st.frozen_abs, st.frozen_sh),
      "train_state": sharded_bytes(state_abs, st.state_sh),
      "gradients": sharded_bytes(st.train_abs, st.train_sh),
  }
  e, h, k, d, f = cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.mlp_dim
  h_loc, k_loc, f_loc = max(1, h // tensor), max(1, k // tensor), max(1, f // tensor)
  layer_in = b * seq * e * act
  # saved per layer: the input only under full remat, every activation otherwise
  one_layer = (b * seq * (3 * e + (h_loc + 2 * k_loc) * d * 2 + 3 * f_loc) * act
               + b * h_loc * seq * seq * (4 + act))      # f32 attention logits + probs
  dots = b * seq * ((h_loc + 2 * k_loc) * d + 2 * e + 3 * f_loc) * act   # projection outputs
  saved = one_layer if not cfg.remat else layer_in + (dots if cfg.remat_policy == "dots" else 0)
  out["saved_activations"] = cfg.num_layers * saved
  out["layer_recompute_peak"] = 2 * one_layer            # forward + its gradient
  chunk = int(tcfg.loss_chunk) or seq
  v_loc = cfg.vocab_size // (tensor if cfg.vocab_size % tensor == 0 else 1)
  out["logits_chunk"] = 3 * b * min(chunk, seq) * v_loc * 4   # logits, softmax, gradient (f32)
  out["total"] = sum(out.values())
  return out


def sample_analytic(model_cfg, flat_params, *, batch: int, prompt_len: int, new_tokens: int,
                    row_shards: int, tensor: int = 1, shardings=None) -> dict:
  """Per-device estimate (bytes) of the sampler: its parameters (sharded by `shardings`, else
  replicated), the KV cache of its rows (rows over `row_shards`, kv heads over `tensor` when
  they divide), and the prefill's peak (one layer's attention logits and MLP activations)."""
  cfg = model_cfg
  b = -(-bucket(batch, max(8, row_shards)) // row_shards)
  p, n = bucket(prompt_len, 16), bucket(new_tokens, 16)
  act = jnp.dtype(cfg.dtype).itemsize
  kv = cfg.num_kv_heads // (tensor if cfg.num_kv_heads % tensor == 0 else 1)
  heads = cfg.num_heads // (tensor if cfg.num_heads % tensor == 0 else 1)
  mlp = cfg.mlp_dim // (tensor if cfg.mlp_dim % tensor == 0 else 1)
  params = (sharded_bytes(flat_params, shardings) if shardings is not None else
            sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(flat_params)))
  out = {"parameters": params,
         "kv_cache": 2 * cfg.num_layers * b * kv * cfg.head_dim * (p + n) * act,
         "prefill_peak": b * p * (heads * (p + n) * (4 + act)
                                  + 3 * mlp * act + 4 * cfg.embed_dim * act)}
  out["total"] = sum(out.values())
  return out


def serving_mesh(cfg, devices: int):
  """The sampler's mesh: tensor parallel over the largest device count that divides the query
  heads and the MLP width (rows over the rest), no FSDP. Decoding one token at a time with
  FSDP-sharded weights gathers every layer's weights each step (the CPU compiler hoisted those
  gathers out of the decode loop: 57 GiB per device for Llama-3-8B); tensor parallelism keeps
  each device's slice of every weight resident and moves activations instead."""
  t = max(d for d in range(1, devices + 1)
          if devices % d == 0 and cfg.num_heads % d == 0 and cfg.mlp_dim % d == 0)
  return partitioning.make_mesh(("data", "fsdp", "tensor"), (devices // t, 1, t),
                                jax.devices()[:devices])


def memory(compiled) -> dict:
  """The compiled program's memory analysis in bytes (arguments, outputs, temporaries,
  aliased, generated code, total); {} when the backend gives none."""
  m = compiled.memory_analysis()
  if m is None:
    return {}
  d = {"arguments": m.argument_size_in_bytes, "outputs": m.output_size_in_bytes,
       "temporaries": m.temp_size_in_bytes, "aliased": m.alias_size_in_bytes,
       "generated_code": m.generated_code_size_in_bytes}
  d["total"] = d["arguments"] + d["outputs"] + d["temporaries"] - d["aliased"]
  return d


def check(config, *, devices: int, hbm_gib: float, eval_batch: int = 8,
          sample_batch: int = 64, num_tasks: int = 0, log=print) -> dict:
  """Compiles the config's programs on `devices` host devices; returns the report dict."""
  if jax.device_count() < devices:
    raise RuntimeError(f"fit_check needs {devices} devices, JAX has {jax.device_count()}: run it "
                       f"as its own process (XLA_FLAGS must be set before JAX starts)")
  model_cfg = run.model_config(config.model)
  acfg = run.adapter_config(config.adapter, num_tasks or 1)
  tcfg = run.train_config(config.train, config.data.inputs_len + config.data.targets_len)
  batch, seq = int(tcfg.batch_size), int(tcfg.seq_len)
  mesh_cfg = dict(config.mesh.to_dict(), num_devices=devices)
  st = loop.setup(model_cfg, acfg, tcfg, mesh_cfg=mesh_cfg,
                  devices=jax.devices()[:devices])
  log(f"{st.report['line']}; mesh {dict(st.mesh.shape)}; batch {batch} x {seq}; "
      f"remat {model_cfg.remat} ({model_cfg.remat_policy}); loss_chunk {tcfg.get('loss_chunk', 0)}")
  programs = {}
  with partitioning.activate(st.mesh, st.rules):
    args = st.abstract_args(batch, seq)
    programs["train_step"] = st.step_fn.lower(*args).compile()
    chunk = int(tcfg.loss_chunk)
    full = st.full

    def eval_loss(trainable, frozen, b):
      params = trainable if full else combine(frozen, trainable, where="eval")
      return lm_losses(st.model, params, b, chunk)[0]
    eval_args = st.abstract_args(eval_batch, seq)
    ev = jax.jit(eval_loss, in_shardings=(st.train_sh, st.frozen_sh, st.batch_sharding))
    programs["eval_loss"] = ev.lower(eval_args[0].params, eval_args[1], eval_args[2]).compile()
  # The sampler (generation-based eval) on the run's mesh and rules: parameters sharded as in
  # training (FSDP / tensor axes), rows over the batch axes, kv heads over the tensor axis;
  # unstacked layers, the eval prompt and generation lengths.
  flat_cfg = model_cfg.replace(scan_layers=False)
  tid = jnp.zeros((1,), jnp.int32) if st.task_aware else None
  flat = jax.eval_shape(lambda k: nn.meta.unbox(Transformer(flat_cfg, adapter=acfg).init(
      k, jnp.zeros((1, 8), jnp.int32), task_ids=tid)["params"]), st.key)
  ecfg = config.get("eval")
  new_tokens = int(ecfg.max_new_tokens) if ecfg is not None else 32
  smesh = serving_mesh(flat_cfg, devices)
  tensor = int(dict(smesh.shape).get("tensor", 1))
  srules = sampling.serving_rules(flat_cfg, st.rules, tensor)
  _, n_rows = sampling.row_shards(smesh, srules)
  sample_est = sample_analytic(
      flat_cfg, flat, batch=sample_batch, prompt_len=int(config.data.inputs_len),
      new_tokens=new_tokens, row_shards=n_rows, tensor=tensor,
      shardings=sampling.param_shardings(flat_cfg, acfg, smesh, srules))
  programs["sample"] = sampling.lower_generate(
      flat_cfg, flat, batch=sample_batch, prompt_len=int(config.data.inputs_len),
      new_tokens=new_tokens, adapter=acfg, mesh=smesh, rules=srules).compile()
  sample_mesh = dict(smesh.shape)
  limit = hbm_gib * GIB
  report = {"config": {"model": model_cfg.__class__.__name__, "params": model_cfg.num_params(),
                       "adapter": None if acfg is None else acfg.describe(),
                       "mesh": dict(st.mesh.shape), "batch": batch, "seq_len": seq,
                       "remat": model_cfg.remat, "remat_policy": model_cfg.remat_policy,
                       "dtype": model_cfg.dtype,
                       "param_dtype": model_cfg.param_dtype,
                       "loss_chunk": int(tcfg.loss_chunk),
                       "trainable": st.report["trainable"], "added_pct": st.report["added_pct"],
                       "sample_mesh": sample_mesh},
            "devices": devices, "hbm_gib": hbm_gib, "programs": {}}
  est = analytic(st, model_cfg, tcfg, batch, seq)
  for name, comp in programs.items():
    mem = memory(comp)
    row = {"compiled": mem}
    if name == "train_step":
      row["analytic"] = est
    elif name == "sample":
      row["analytic"] = sample_est
    row["fits_compiled"] = bool(mem) and mem["total"] <= limit
    row["fits_analytic"] = (row["analytic"]["total"] <= limit) if "analytic" in row else None
    report["programs"][name] = row
  return report


def failures(report: dict, hbm_gib: Optional[float] = None, strict: bool = False) -> list:
  """Programs that do not fit `hbm_gib` (default: the report's) per device: by the compiled
  total, or with `strict` by either the compiled or the analytic total."""
  limit = (report["hbm_gib"] if hbm_gib is None else hbm_gib) * GIB
  bad = []
  for name, row in report["programs"].items():
    compiled = row["compiled"].get("total", math.inf)
    analytic = row.get("analytic", {}).get("total")
    if compiled > limit or (strict and analytic is not None and analytic > limit):
      bad.append(name)
  return bad


def render(report: dict) -> str:
  """The report as a markdown table (GiB per device) plus the analytic figures."""
  g = lambda x: f"{x / GIB:.2f}"
  lines = ["| program | arguments | outputs | temporaries | total (compiled) | analytic | fits "
           f"{report['hbm_gib']:g} GiB |", "|---|---|---|---|---|---|---|"]
  for name, row in report["programs"].items():
    m = row["compiled"]
    an = row.get("analytic", {}).get("total")
    fits = "yes" if row["fits_compiled"] else "NO"
    if row["fits_analytic"] is not None:
      fits += " / " + ("yes" if row["fits_analytic"] else "NO") + " (analytic)"
    lines.append(f"| {name} | {g(m['arguments'])} | {g(m['outputs'])} | {g(m['temporaries'])} "
                 f"| {g(m['total'])} | {g(an) if an is not None else '-'} | {fits} |")
  for name in ("train_step", "sample"):
    est = report["programs"].get(name, {}).get("analytic", {})
    if est:
      lines.append(f"analytic {name} (GiB/device): " + ", ".join(
          f"{k} {g(v)}" for k, v in est.items()))
  if "sample_mesh" in report["config"]:
    lines.append(f"sample mesh (data, fsdp, tensor): {report['config']['sample_mesh']}")
  return "\n".join(lines)


def main(argv: Optional[list] = None) -> int:
  """The command line (module docstring): `--config=configs/X.py[:arg]` with `--config.a.b=v`
  overrides; returns the exit status (1: does not fit)."""
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "configs/X.py[:arg]", flag_values=fv,
                                  lock_config=True)
  flags.mark_flag_as_required("config", flag_values=fv)
  flags.DEFINE_integer("devices", 8, "simulated host devices", flag_values=fv)
  flags.DEFINE_float("hbm_gib", 16.0, "memory per device (GiB)", flag_values=fv)
  flags.DEFINE_integer("eval_batch", 8, "rows of the eval-loss program", flag_values=fv)
  flags.DEFINE_integer("sample_batch", 64,
                       "rows per sampler call (generation-based eval sends 64)", flag_values=fv)
  flags.DEFINE_integer("num_tasks", 756,
                       "task-table rows for task-routed adapters (SNI: 756 train tasks)",
                       flag_values=fv)
  flags.DEFINE_bool("strict", False,
                    "fail when either the compiled or the analytic figure does not fit",
                    flag_values=fv)
  flags.DEFINE_string("json", "", "also write the report here", flag_values=fv)
  args = cli.parse_argv(fv, argv)
  _force_devices(args.devices)
  config = args.config
  report = check(config, devices=args.devices, hbm_gib=args.hbm_gib,
                 eval_batch=args.eval_batch, sample_batch=args.sample_batch,
                 num_tasks=args.num_tasks)
  report["command"] = " ".join(["python -m mode_jax.train.fit_check"] + list(
      argv if argv is not None else sys.argv[1:]))
  print(render(report))
  if args.json:
    write_json_atomic(args.json, report)
  bad = failures(report, strict=args.strict)
  if bad:
    print(f"does not fit {args.hbm_gib:g} GiB per device: {', '.join(bad)}")
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
