"""The training loop: sharded state creation, resume, the jitted step, metrics, checkpoints.

    result = train(model_cfg, acfg, tcfg, batches=fn(start_batch) -> iterator, workdir=...,
                   base_params=params_or_None, mesh_cfg=..., eval_fn=fn(step, params, frozen))

`acfg=None` is full fine-tuning (every parameter trainable); otherwise only the adapter leaves
are trainable and the base is a frozen input of the step (no optimizer state for it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Callable, Iterator, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mode_jax.adapters import params as adapter_params
from mode_jax.atomic_io import append_line, makedirs
from mode_jax.model.transformer import Transformer
from mode_jax.train import partitioning
from mode_jax.train.checkpoint import BestCheckpoint, Checkpointer
from mode_jax.train.optim import make_optimizer
from mode_jax.train.preemption import Preempted, PreemptionWatch
from mode_jax.train.step import TrainState, make_train_step


class NonFiniteLoss(FloatingPointError):
  pass


def _fmt_time(s: float) -> str:
  s = int(max(s, 0))
  return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def model_flops_per_token(model_cfg, n_trainable: int, full: bool, seq_len: int) -> float:
  """6N (full fine-tuning) or 4N + 2 N_adapter (frozen base: no weight gradients) per token,
  plus causal attention 6 * layers * seq * heads * head_dim."""
  n = model_cfg.num_params()
  dense = 6 * n if full else 4 * n + 2 * n_trainable
  attn = 6 * model_cfg.num_layers * seq_len * model_cfg.num_heads * model_cfg.head_dim
  return float(dense + attn)


class MetricLog:
  """JSONL (appended; one object per logged step) + TensorBoard via clu metric writers."""

  def __init__(self, workdir: str):
    makedirs(workdir)                     # local or a bucket (atomic_io)
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.writer = None
    if jax.process_index() == 0:
      try:
        from clu import metric_writers
        self.writer = metric_writers.create_default_writer(
            os.path.join(workdir, "tensorboard"), asynchronous=False)
      except ImportError:   # clu is optional; the JSONL file is always written
        self.writer = None

  def write(self, step: int, scalars: dict):
    """Appends `scalars` at `step` to metrics.jsonl and TensorBoard (process 0 only)."""
    if jax.process_index() != 0:
      return
    append_line(self.path, json.dumps(dict(step=step, **scalars)))
    if self.writer is not None:
      self.writer.write_scalars(step, scalars)
      self.writer.flush()


@dataclasses.dataclass
class Setup:
  """Everything a run's train step is built from, before any array exists: the mesh and rules,
  the abstract (shape-only) parameter trees and their shardings, the optimizer and the jitted
  step. `train` runs it; `fit_check` lowers and compiles `step_fn` on `abstract_args(...)`."""
  full: bool
  mesh: object
  rules: tuple
  model: object
  key: object
  init_all: Callable
  abstract: dict              # all parameters (ShapeDtypeStruct leaves)
  frozen_abs: dict
  train_abs: dict
  frozen_sh: object
  train_sh: object
  state_sh: TrainState
  tx: object
  lr_fn: Callable
  accum: int
  make_state: Callable
  n_train: int
  report: dict
  batch_sharding: object
  step_fn: Callable           # jitted (state, frozen, batch) -> (state, metrics), donates state
  task_aware: bool

  def abstract_args(self, batch_size: int, seq_len: int) -> tuple:
    """(state, frozen, batch) as sharded ShapeDtypeStructs, for `step_fn.lower(...)`."""
    sds = lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh)
    state = jax.tree.map(sds, jax.eval_shape(self.make_state, self.train_abs), self.state_sh)
    frozen = jax.tree.map(sds, self.frozen_abs, self.frozen_sh)
    tok = jax.ShapeDtypeStruct((batch_size, seq_len), jnp.int32, sharding=self.batch_sharding)
    batch = {"decoder_input_tokens": tok, "decoder_target_tokens": tok,
             "decoder_loss_weights": jax.ShapeDtypeStruct((batch_size, seq_len), jnp.float32,
                                                          sharding=self.batch_sharding),
             "decoder_segment_ids": tok, "decoder_positions": tok, "decoder_task_ids": tok}
    return state, frozen, batch


def setup(model_cfg, acfg, tcfg, *, mesh_cfg=None, model=None, loss=None, devices=None) -> Setup:
  """The mesh, abstract sharded state and jitted step of a run (see `train` for the args);
  `devices` overrides the mesh's devices (default: `mesh_cfg.num_devices` first, or all)."""
  full = acfg is None
  mesh_cfg = mesh_cfg or {}
  n_dev = int(mesh_cfg.get("num_devices", 0) or 0)
  if devices is None:
    devices = jax.devices()[:n_dev] if n_dev else None
  mesh = partitioning.make_mesh(mesh_cfg.get("axes", ("data", "fsdp", "tensor")),
                                mesh_cfg.get("shape", (-1, 1, 1)), devices)
  rules = partitioning.rules_from_config(mesh_cfg.get("rules"))
  model = model if model is not None else Transformer(model_cfg, adapter=acfg)
  task_aware = acfg is not None and acfg.uses_task_router
  tokens = jnp.zeros((1, 8), jnp.int32)
  task_ids = jnp.zeros((1,), jnp.int32) if task_aware else None
  init_boxed = lambda k: model.init(k, tokens, task_ids=task_ids)["params"]
  init_all = lambda k: nn.meta.unbox(init_boxed(k))
  key = jax.random.key(tcfg.seed)
  boxed_abs = jax.eval_shape(init_boxed, key)
  param_sh = partitioning.shardings(boxed_abs, mesh, rules)
  abstract = nn.meta.unbox(boxed_abs)
  frozen_sh, train_sh = (({}, param_sh) if full else adapter_params.split(param_sh))
  frozen_abs, train_abs = (({}, abstract) if full else adapter_params.split(abstract))
  tx, lr_fn = make_optimizer(tcfg)
  accum = max(int(tcfg.grad_accum), 1)
  opt_sh = partitioning.opt_state_shardings(tx, train_abs, train_sh, mesh)
  rep = partitioning.replicated(mesh)
  state_sh = TrainState(step=rep, params=train_sh, opt_state=opt_sh)
  make_state = lambda p: TrainState(step=jnp.zeros((), jnp.int32), params=p, opt_state=tx.init(p))
  report = adapter_params.param_report(
      train_abs if full else abstract, "full fine-tuning" if full else acfg.describe(), full=full)
  bsh = partitioning.batch_sharding(mesh, rules)
  step_fn = jax.jit(make_train_step(model, tx, lr_fn, full, loss, grad_accum=accum,
                                    loss_chunk=int(tcfg.loss_chunk),
                                    loss_positions=int(tcfg.loss_positions)),
                    in_shardings=(state_sh, frozen_sh, bsh),
                    out_shardings=(state_sh, None), donate_argnums=(0,))
  return Setup(full=full, mesh=mesh, rules=rules, model=model, key=key, init_all=init_all,
               abstract=abstract, frozen_abs=frozen_abs, train_abs=train_abs,
               frozen_sh=frozen_sh, train_sh=train_sh, state_sh=state_sh, tx=tx, lr_fn=lr_fn,
               accum=accum, make_state=make_state,
               n_train=adapter_params.count_leaves(train_abs), report=report,
               batch_sharding=bsh, step_fn=step_fn, task_aware=task_aware)


@dataclasses.dataclass(frozen=True)
class TrainResult:
  """What `train` returns.

  Attributes:
    state: the final `TrainState` (step, trainable params, optimizer state), sharded.
    frozen: the frozen base parameters ({} for full fine-tuning), sharded.
    metrics: the last logged scalars (loss, accuracy, lr, tokens_per_s, ...).
    report: the parameter table (`adapters.param_report`: trainable / frozen / % added).
    mesh: the device mesh the run used.
    model: the Linen module that was trained.
    start_step: the step the run started (or resumed) from.
  """
  state: TrainState
  frozen: dict
  metrics: dict
  report: dict
  mesh: object
  model: object
  start_step: int


def _initial_state(st: Setup, base_params, ckpt: Checkpointer, log) -> tuple:
  """(frozen base, train state, start step): the base from `base_params` (or the seed), the
  state restored from the latest checkpoint onto this mesh, else initialised already sharded."""
  full = st.full
  if base_params is not None:
    base_only = adapter_params.split(nn.meta.unbox(base_params))[0]
    frozen = {} if full else jax.device_put(base_only, st.frozen_sh)
  elif full:
    frozen = {}
  else:   # random base (tests): deterministic from the seed, so a resumed run rebuilds it
    frozen = jax.jit(lambda k: adapter_params.split(st.init_all(k))[0],
                     out_shardings=st.frozen_sh)(st.key)
  start = ckpt.latest_step()
  if start is not None:
    abstract_state = jax.tree.map(lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                                       sharding=sh),
                                  jax.eval_shape(st.make_state, st.train_abs), st.state_sh)
    log(f"resumed from {ckpt.directory}/{start}")
    return frozen, ckpt.restore(start, abstract_state), int(start)
  if full and base_params is not None:
    base_sh, extra_sh = adapter_params.split(st.train_sh)
    trainable = jax.device_put(base_only, base_sh)
    if extra_sh:   # leaves the base lacks (e.g. a PRM head under "adapter"): initialised
      extra = jax.jit(lambda k: adapter_params.split(st.init_all(k))[1],
                      out_shardings=extra_sh)(st.key)
      trainable = adapter_params.combine(trainable, extra, where="full fine-tuning init")
  else:   # adapters (or a full model from scratch) from their initialisers
    trainable = jax.jit(lambda k: adapter_params.split(st.init_all(k))[1] if not full
                        else st.init_all(k), out_shardings=st.train_sh)(st.key)
  return frozen, jax.jit(st.make_state, out_shardings=st.state_sh)(trainable), 0


class _Progress:
  """Throughput, MFU, the metrics file and the progress line of the logged steps."""

  def __init__(self, st: Setup, model_cfg, tcfg, workdir: str, start: int, total: int, log):
    self.flops_tok = model_flops_per_token(model_cfg, st.n_train, st.full, tcfg.seq_len)
    self.peak_flops, self.total, self.start, self.log = tcfg.peak_flops, total, start, log
    self.mlog = MetricLog(workdir)
    self.t_last = self.t_start = time.perf_counter()
    self.s_last, self.pending, self.last = start, [], {}

  def add_tokens(self, tokens) -> None:
    """Counts a step's tokens (a device scalar: read at the next log, no host round trip)."""
    self.pending.append(tokens)

  def log_step(self, done: int, m: dict) -> None:
    """Writes step `done`'s scalars `m` (host values) with tokens/s since the last log."""
    now = time.perf_counter()
    dt = now - self.t_last
    n_steps = max(done - self.s_last, 1)
    tok_s = float(np.sum(jax.device_get(self.pending))) / dt
    self.pending = []
    scal = {k: float(v) for k, v in m.items() if k != "tokens"}
    scal.update(tokens_per_s=tok_s, step_time_s=dt / n_steps)
    if self.peak_flops:
      scal["mfu"] = tok_s * self.flops_tok / self.peak_flops
    self.mlog.write(done, scal)
    eta = (now - self.t_start) / max(done - self.start, 1) * (self.total - done)
    self.log(f"step {done}/{self.total} | loss {scal['loss']:.4f} | acc {scal['accuracy']:.3f} | "
             f"lr {scal['lr']:.2e} | {tok_s:,.0f} tok/s | {dt / n_steps:.3f} s/step | "
             f"ETA {_fmt_time(eta)}")
    self.t_last, self.s_last, self.last = now, done, scal


def train(model_cfg, acfg, tcfg, *, batches: Callable[[int], Iterator[dict]], workdir: str,
          base_params=None, mesh_cfg=None, eval_fn=None, meta: Optional[dict] = None,
          log: Callable[[str], None] = print, model=None, loss=None) -> TrainResult:
  """Runs (or resumes) training in `workdir`.

  tcfg: steps, batch_size, seq_len, seed, optimizer settings (see optim.py), log_every,
  eval_every, ckpt_every, keep, async_ckpt, peak_flops (0: no MFU), crash_at_step (tests),
  loss_chunk (positions per chunk of the LM loss, `losses.chunked_cross_entropy`; 0 or absent:
  full logits), loss_positions (> 0: the head only on the first that many loss-weighted
  positions of each row, `losses.gather_loss_positions`).
  `batches(start_batch)` yields numpy batches from `start_batch` on (a resumed run continues).
  `eval_fn(step, trainable, frozen) -> {"eval_loss", ...}` runs every eval_every steps and at
  the end; the state with the lowest eval_loss is kept in <workdir>/checkpoint_best.
  `model` (default `Transformer(model_cfg, adapter=acfg)`) and `loss` (default the LM loss, see
  `step.make_train_step`) let other heads train through the same loop, e.g. prm_jax's PRM: a
  module called like `Transformer` whose extra trainable leaves sit under an "adapter" key.

  Returns:
    A `TrainResult`.
  """
  st = setup(model_cfg, acfg, tcfg, mesh_cfg=mesh_cfg, model=model, loss=loss)
  log(st.report["line"])
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=tcfg.keep,
                      every=tcfg.ckpt_every, async_save=tcfg.async_ckpt)
  best = BestCheckpoint(os.path.join(workdir, "checkpoint_best"))
  meta = dict(meta or {}, model=dataclasses.asdict(model_cfg),
              adapter=None if st.full else acfg.to_dict())
  meta = json.loads(json.dumps(meta, default=str))
  frozen, state, start = _initial_state(st, base_params, ckpt, log)
  total = int(tcfg.steps) * st.accum
  progress = _Progress(st, model_cfg, tcfg, workdir, start, total, log)
  it = batches(start)
  with partitioning.activate(st.mesh, st.rules), PreemptionWatch() as watch:
    for step in range(start, total):
      if tcfg.crash_at_step == step:   # tests: die like SIGKILL between saves
        os.kill(os.getpid(), 9)
      batch = {k: jax.make_array_from_process_local_data(st.batch_sharding, np.asarray(v))
               for k, v in next(it).items()}
      state, m = st.step_fn(state, frozen, batch)
      progress.add_tokens(m["tokens"])
      done = step + 1
      if watch.should_stop(done) and done < total:   # SIGTERM: save this step, then stop
        ckpt.save(done, state, meta, force=True)
        ckpt.close()
        best.close()
        log(f"preempted at step {done}: checkpoint saved in {ckpt.directory}")
        raise Preempted(done, ckpt.directory)
      is_log = done % tcfg.log_every == 0 or done == total
      is_eval = bool(eval_fn is not None and tcfg.eval_every
                     and (done % tcfg.eval_every == 0 or done == total))
      if not (is_log or is_eval or ckpt.due(done)):
        continue   # no host round trip: dispatch runs ahead of the device
      m = jax.device_get(m)
      # Checked before anything is saved, so a checkpoint never holds non-finite parameters
      # (a NaN update makes every later loss and parameter NaN, so no step is missed).
      if not (math.isfinite(float(m["loss"])) and bool(m.pop("params_finite"))):
        ckpt.wait()
        raise NonFiniteLoss(
            f"non-finite loss ({m['loss']}) or parameters at step {done}; stopped. The "
            f"last good checkpoint is step {ckpt.latest_step()} in {ckpt.directory}")
      ckpt.save(done, state, meta)
      if is_log:
        progress.log_step(done, m)
      if is_eval:
        ev = eval_fn(done, state.params, frozen)
        progress.mlog.write(done, ev)
        log(f"eval at step {done}: eval_loss {ev['eval_loss']:.4f}")
        best.save(done, state, meta, metric=ev["eval_loss"])
  ckpt.save(total, state, meta, force=True)
  ckpt.close()
  best.close()
  return TrainResult(state=state, frozen=frozen, metrics=progress.last, report=st.report,
                     mesh=st.mesh, model=st.model, start_step=start)
