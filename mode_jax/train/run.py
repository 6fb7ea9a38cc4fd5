"""The training-run API: a `RunSpec` resolved once from a config, `run(spec, workdir)` and the
frozen `RunResult` it returns.

    spec = run.spec_from_config(config, workdir)       # model, adapter, train, mesh, data
    result = run.run(spec, workdir)                     # trains (or resumes), saves the adapter
    result.state, result.metrics, result.params()       # typed fields, no string keys

`run.run_training(config, workdir)` is both steps. Other heads (prm_jax's PRM) build a spec
without SeqIO data (`spec_from_config(..., data=False, seq_len=..., num_tasks=...)`) and pass
their own `batches`, `eval_fn`, `model` and `loss` to `run`. The SeqIO side (mixture, eval
tasks, validation loss) is `run_data`; the base model (pretrained name, HF path or a tiny base
pretrained in the workdir) is `bases`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Iterator, Optional

import jax
import ml_collections

from mode_jax.adapters.config import AdapterConfig
from mode_jax import atomic_io
from mode_jax.adapters.export import save_adapter
from mode_jax.data import tasks
from mode_jax.data.vocab import make_vocab, save_vocab_spec
from mode_jax.model import hf_io, presets
from mode_jax.model.config import ModelConfig
from mode_jax.train import bases, evaluate, loop, run_data


def model_config(mcfg) -> ModelConfig:
  """The `ModelConfig` of a `config.model` block: the preset `mcfg.name` with the block's
  compute settings (dtype, param_dtype, remat, scan_layers) and `mcfg.overrides` applied."""
  over = dict(bases.runtime_overrides(mcfg), param_dtype=mcfg.param_dtype,
              scan_layers=mcfg.scan_layers)
  over.update(dict(mcfg.get("overrides", {})))
  return presets.get(mcfg.name, **over)


def adapter_config(acfg_dict, num_tasks: int) -> Optional[AdapterConfig]:
  """The `AdapterConfig` of a `config.adapter` block (None for method "none": full
  fine-tuning); a task router gets `num_tasks` when the block leaves it 0."""
  if not acfg_dict or acfg_dict.get("method", "none") in ("none", ""):
    return None
  d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(acfg_dict).items()}
  if d.get("router", "token") != "token" and not d.get("num_tasks"):
    d["num_tasks"] = num_tasks
  return AdapterConfig(**d)


def train_config(tcfg, seq_len: int) -> ml_collections.ConfigDict:
  """A copy of the `config.train` block with `seq_len` (the packed row length) set."""
  t = ml_collections.ConfigDict(tcfg.to_dict())
  t.seq_len = int(seq_len)
  return t


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """Everything one training run is built from, resolved once from the config.

  Attributes:
    model_cfg: the backbone's shapes and compute settings.
    acfg: the adapter (None: full fine-tuning, every parameter trainable).
    train: the `config.train` block with `seq_len` set (steps, batch, optimizer, logging).
    mesh: the `config.mesh` block as a dict (axes, shape, rules, num_devices).
    job: a name stored in the checkpoints' metadata.
    base_params: the base's parameters (None: initialised from `train.seed`).
    base_name: where the base came from (adapter metadata).
    data: the SeqIO side (None for runs that bring their own batches).
    vocab_spec: the run's tokenizer {"kind", "path"} (adapter metadata, so that
      `mode_jax.serve.load` serves the run with it).
  """
  model_cfg: ModelConfig
  acfg: Optional[AdapterConfig]
  train: ml_collections.ConfigDict
  mesh: dict
  job: str = "train"
  base_params: Any = None
  base_name: str = ""
  data: Optional[run_data.RunData] = None
  vocab_spec: Optional[dict] = None

  @property
  def vocab(self):
    """The run's vocabulary (from its data)."""
    return self.data.vocab

  @property
  def evals(self) -> list:
    """The run's eval task names."""
    return self.data.evals

  @property
  def table(self) -> tasks.TaskIdTable:
    """The run's task-id table."""
    return self.data.table


def spec_from_config(config, workdir: str, *, model_cfg: Optional[ModelConfig] = None,
                     base_params=None, data: bool = True, seq_len: int = 0,
                     num_tasks: int = 1) -> RunSpec:
  """The `RunSpec` of `config` (blocks model, checkpoint, vocab, data, adapter, train, mesh).

  Args:
    config: the run's ConfigDict.
    workdir: where data kinds that write files (a word list, a pretraining corpus) put them.
    model_cfg, base_params: a base already in memory (e.g. from `bases.ensure_base`); else
      `config.checkpoint.hf_path` is loaded straight into the run's shardings, or the preset
      `config.model.name` is initialised from the seed.
    data: False for runs that feed their own batches (then `seq_len` and `num_tasks` give the
      row length and the task router's size; `config.data` is not read).
  Returns:
    A frozen RunSpec.
  """
  rd = None
  if data:
    rd = run_data.build(config.data, make_vocab(config.vocab.kind, config.vocab.path or None),
                        workdir)
    seq_len, num_tasks = config.data.inputs_len + config.data.targets_len, len(rd.table)
  acfg = adapter_config(config.adapter, num_tasks)
  tcfg = train_config(config.train, seq_len)
  mesh = config.mesh.to_dict()
  base_name = config.checkpoint.hf_path or "trained in workdir"
  if model_cfg is None:
    if config.checkpoint.hf_path:
      model_cfg, base_params = bases.load_sharded_base(config.checkpoint.hf_path, config.model,
                                                       mesh, acfg, tcfg)
    else:
      model_cfg = model_config(config.model)
  return RunSpec(model_cfg=model_cfg, acfg=acfg, train=tcfg, mesh=mesh, job=config.job,
                 base_params=base_params, base_name=base_name, data=rd,
                 vocab_spec={"kind": config.vocab.kind, "path": config.vocab.path or ""})


@dataclasses.dataclass(frozen=True)
class RunResult(loop.TrainResult):
  """`loop.TrainResult` (state, frozen, metrics, report, mesh, model, start_step) plus the spec
  it ran and the wall time of training."""
  spec: RunSpec = None
  train_seconds: float = 0.0

  @property
  def acfg(self) -> Optional[AdapterConfig]:
    """The adapter that was trained (None: full fine-tuning)."""
    return self.spec.acfg

  @property
  def model_cfg(self) -> ModelConfig:
    """The backbone's config."""
    return self.spec.model_cfg

  def params(self) -> dict:
    """The full parameter tree (base + trained adapters, or the fine-tuned model) as numpy
    arrays on this host (a collective when arrays span hosts: every process calls it)."""
    return evaluate.host(evaluate.full_params(self.state.params, self.frozen,
                                              self.acfg is None))

  def score(self, ecfg, workdir: str, name: str, *, label: Optional[str] = None) -> dict:
    """The trained model's greedy generations on the run's eval tasks, scored per task
    (`evaluate.score`; writes `<workdir>/<name>.json|md`): {"scores", "markdown"}."""
    return evaluate.score(self.model_cfg, self.acfg, self.params(), self.spec.data, ecfg,
                          workdir, name, label=label)


def run(spec: RunSpec, workdir: str, *, batches: Optional[Callable[[int], Iterator[dict]]] = None,
        eval_fn: Optional[Callable] = None, model=None, loss=None, save: bool = True,
        log: Callable[[str], None] = print) -> RunResult:
  """Trains (or resumes) `spec` in `workdir` and, for an adapter run, saves the adapter in
  `<workdir>/adapter` (`save=True`).

  Args:
    spec: from `spec_from_config`.
    batches: `fn(start_batch) -> iterator of numpy batches`; default the spec's SeqIO mixture.
    eval_fn: `fn(step, trainable, frozen) -> {"eval_loss", ...}`; default the teacher-forced
      loss per eval task when `train.eval_every` > 0 and the spec has eval tasks.
    model, loss: another head trained through the same loop (see `loop.train`).
  Returns:
    A frozen RunResult.
  """
  t = spec.train
  if batches is None:
    batches = run_data.batch_fn(spec.data, t)
  if eval_fn is None and spec.data is not None and t.eval_every and spec.evals:
    eval_fn = run_data.make_eval_fn(spec.model_cfg, spec.acfg, spec.data,
                                    loss_chunk=t.loss_chunk,
                                    loss_positions=t.loss_positions)
  t0 = time.perf_counter()
  out = loop.train(spec.model_cfg, spec.acfg, t, batches=batches, workdir=workdir,
                   base_params=spec.base_params, mesh_cfg=spec.mesh, log=log,
                   meta={"job": spec.job}, eval_fn=eval_fn, model=model, loss=loss)
  result = RunResult(**{f.name: getattr(out, f.name) for f in dataclasses.fields(out)},
                     spec=spec, train_seconds=time.perf_counter() - t0)
  if save and spec.acfg is not None:   # small; applies to the base by path. Gathered on every
    trained = evaluate.host(result.state.params)   # host (a collective), written by process 0.
    if jax.process_index() == 0:
      meta = {"base": spec.base_name}
      if spec.vocab_spec:
        meta["vocab"] = dict(spec.vocab_spec)
      if spec.data is not None:
        meta["task_ids"] = spec.table.ids
        meta["bos_id"] = spec.data.bos_id
      save_adapter(os.path.join(workdir, "adapter"), trained, spec.acfg, metadata=meta)
  return result


def run_training(config, workdir: str, *, model_cfg: Optional[ModelConfig] = None,
                 base_params=None, log: Callable[[str], None] = print) -> RunResult:
  """One training run as configured: `run(spec_from_config(config, workdir, ...), workdir)`."""
  spec = spec_from_config(config, workdir, model_cfg=model_cfg, base_params=base_params)
  return run(spec, workdir, log=log)


def ensure_base(config, workdir: str) -> tuple[ModelConfig, dict]:
  """(model_cfg, params): the HF checkpoint at config.checkpoint.hf_path when set, else the
  base in `<workdir>/base_model`, pretrained there first when it does not exist yet (full
  fine-tuning on config.base.data with config.base.train)."""
  if config.checkpoint.hf_path:   # a real base (e.g. Gemma 2B) instead of the tiny one
    return hf_io.load_hf_checkpoint(
        config.checkpoint.hf_path, dtype=config.model.param_dtype,
        scan_layers=config.model.scan_layers,
        config_overrides=bases.runtime_overrides(config.model))
  base_dir = os.path.join(workdir, "base_model")
  if not atomic_io.exists(os.path.join(base_dir, "config.json")):
    pre = ml_collections.ConfigDict(config.to_dict())
    pre.data = config.base.data
    pre.train = config.base.train
    pre.adapter = {"method": "none"}
    print(f"== stage 1: pretraining the base model (full fine-tuning on {config.base.data.kind})")
    out = run_training(pre, os.path.join(workdir, "base_train"))
    base = evaluate.host(out.state.params)          # every host (a collective)
    if jax.process_index() == 0:
      hf_io.save_hf_checkpoint(base_dir, out.model_cfg, base)
      save_vocab_spec(base_dir, config.vocab.kind, config.vocab.path or "",
                      run_data.bos_id(config.data))
    bases.barrier("base_model saved")
  return hf_io.load_hf_checkpoint(
      base_dir, config_overrides=dict(bases.runtime_overrides(config.model),
                                      max_seq_len=config.model.get("max_seq_len", 512)))


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
