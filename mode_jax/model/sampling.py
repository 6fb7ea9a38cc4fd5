"""Jitted batched generation with a preallocated KV cache (the rollout engine of OmegaPRM).

    sampler = Sampler(cfg, params, vocab=vocab)       # vocab only needed for strings
    out = sampler.generate([[5, 6, 7], [8]], max_new_tokens=64, temperature=1.0, top_p=0.95,
                           rng=jax.random.key(0), stop_strings=["\n"])
    out.tokens, out.logprobs, out.lengths, out.texts

One jitted program per (batch bucket, prompt bucket, new-token bucket, filters, greedy or
sampled, prefix sharing or not): prefill of the
left-padded prompts, then a `lax.while_loop` that samples one token per step for every row and
stops when all rows are done or `max_new_tokens` is reached. Batch and lengths are rounded up to
buckets (powers of two, and 3/4 of them from 128 on: `bucket`), and temperature / top-k / top-p / max_new_tokens are traced values, so repeated
calls with other settings or sizes in the same bucket do not recompile.

Stopping, per row: an EOS id; a "stop token" (a token whose text contains a stop string, e.g.
any token containing "\n" for step-by-step rollouts); or a stop string's own token sequence at
the end of the generated tokens. Returned texts are cut right after the first stop string (the
stop string is kept, so prefix + text continues the solution verbatim).

Data parallel by default: the batch is sharded over the local devices (params replicated), so
a host with several accelerators, or a CPU split into several host devices with
`--xla_force_host_platform_device_count` (see `host_devices`), samples on all of them at once.
Sharded parameters (a model too big for one chip): pass `mesh` and the logical axis `rules` of
the training run (e.g. `partitioning.make_mesh` + `rules_from_config`); every parameter is
placed by its logical axis names (FSDP / tensor axes as in training), rows go over the mesh
axes `batch` maps to, and the program is traced under the rules and mesh, so the model's
activation constraints and the KV cache's (kv heads over the tensor axis) shard it too.

Per-row randomness: row i at step t uses fold_in(fold_in(rng, row_ids[i]), t) (row_ids
default to the row's position), so a row's sample does not depend on which other rows share
the batch or on bucket padding; callers that batch requests from independent searches give
each its own id. `logprobs` are log-probs
of the chosen tokens under the model (temperature 1, unfiltered).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import weakref
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mode_jax.model.config import ModelConfig
from mode_jax.model.hf_io import unstack_layers
from mode_jax.model.kv_cache import KVCache
from mode_jax.model.transformer import Transformer

_NEG = -1e30


def bucket(n: int, minimum: int) -> int:
  """The compiled size for `n`: the smallest power of two >= max(n, minimum), or from 128 on
  three quarters of it when that is enough (96, 128, 192, 256, 384, ...): padding wastes at
  most a third of the prefill instead of half (a 130-token few-shot prompt pays for 192, not
  256), for one more compiled program per octave."""
  n = max(int(n), int(minimum), 1)
  p = 1 << (n - 1).bit_length()
  return 3 * p // 4 if p >= 128 and 3 * p // 4 >= n else p


@dataclasses.dataclass
class SampleOutput:
  tokens: np.ndarray         # int32 [B, max_new_tokens], pad_id after the end of each row
  logprobs: np.ndarray       # float32 [B, max_new_tokens], 0 after the end
  lengths: np.ndarray        # int32 [B]: generated tokens per row (incl. the EOS/stop token)
  texts: Optional[list[str]] = None   # decoded (and cut at stop strings) when a vocab is given
  finished: Optional[np.ndarray] = None   # bool [B]: stopped by EOS / a stop token or string
                                          # (False: cut by max_new_tokens, finish "length")


def _order_keys(x):
  """float32 -> int32 keys in the same order (flip the magnitude bits of negative floats;
  -0.0 becomes 0.0 first, so the two zeros tie as they compare)."""
  x = x.astype(jnp.float32)
  i = jax.lax.bitcast_convert_type(jnp.where(x == 0, jnp.float32(0), x), jnp.int32)
  return jnp.where(i < 0, i ^ jnp.int32(0x7FFFFFFF), i)


def _cutoff_key(keys, weights, target):
  """Per row, the largest key c with sum(weights[keys >= c]) >= target: a bisection over the
  int32 keys (32 halvings of the 2^32 range: exact, no sort). keys/weights [B, V], target
  [B, 1], at most the row's total weight."""
  big = jnp.int32(2**31 - 1)
  lo = jnp.min(jnp.where(weights > 0, keys, big), axis=-1, keepdims=True)
  hi = jnp.max(keys, axis=-1, keepdims=True)
  mass = lambda c: jnp.sum(jnp.where(keys >= c, weights, 0.0), axis=-1, keepdims=True)
  top_ok = mass(hi) >= target                    # the best key alone reaches the target

  def halve(_, lh):
    lo, hi = lh                                  # mass(>= lo) >= target > mass(>= hi)
    mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # floor((lo + hi) / 2) without overflow
    ok = mass(mid) >= target
    return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)
  lo, _ = jax.lax.fori_loop(0, 32, halve, (lo, hi))
  return jnp.where(top_ok, hi, lo)


CANDIDATES = 1024   # best logits a filter looks at first (`filter_logits`)


def filter_logits(logits, temperature, top_k, top_p, *, use_top_k: bool, use_top_p: bool,
                  candidates: int = CANDIDATES):
  """Temperature, then top-k (k traced; 0 = off), then nucleus top-p. logits [B, V] float32.

  No sort of the vocabulary (262k entries for Gemma). Fast path: the `candidates` best logits
  of each row (`lax.top_k`, a partial selection) hold the cutoff whenever k <= candidates and
  their probability mass reaches top_p (the normaliser is summed over the whole row): then
  the k-th value and the nucleus cutoff are read off the sorted candidates. Otherwise (a flat
  distribution, a large k; any row of the batch) the exact fallback `filter_logits_bisect`
  runs. Both keep the logits >= the cutoff (ties at the cutoff kept) and equal the sorted-cumsum
  definition (`filter_logits_sorted`, the reference) up to float summation order.
  """
  logits = logits / jnp.maximum(temperature, 1e-6)
  if not (use_top_k or use_top_p):
    return logits
  b, v = logits.shape
  c = min(int(candidates), v)
  vals = jax.lax.top_k(logits, c)[0]                        # [B, c], descending
  ok = jnp.bool_(True)
  cut = jnp.full((b, 1), -jnp.inf, logits.dtype)
  masked = logits
  if use_top_k:
    k = jnp.clip(jnp.where(top_k > 0, top_k, v), 1, v)
    ok &= k <= c
    cut = jnp.take_along_axis(vals, jnp.broadcast_to(jnp.minimum(k, c) - 1, (b, 1)), -1)
    vals = jnp.where(vals < cut, -jnp.inf, vals)
    masked = jnp.where(logits < cut, -jnp.inf, logits)
  if use_top_p:
    # the row max (not vals[:, :1]: XLA CPU turns a top_k whose output is sliced into a sort)
    top = jnp.max(logits, axis=-1, keepdims=True)
    z = jnp.sum(jnp.exp(masked - top), axis=-1, keepdims=True)
    pc = jnp.exp(vals - top) / z                           # candidate probabilities
    before = jnp.cumsum(pc, axis=-1) - pc                  # mass of strictly better tokens
    ok &= jnp.all(jnp.sum(pc, axis=-1) >= top_p)
    cut = jnp.maximum(cut, jnp.min(jnp.where(before < top_p, vals, jnp.inf), axis=-1,
                                   keepdims=True))
  fast = lambda: jnp.where(logits < cut, _NEG, logits)
  slow = lambda: filter_logits_bisect(logits, top_k, top_p, use_top_k=use_top_k,
                                      use_top_p=use_top_p)
  return jax.lax.cond(ok, fast, slow)


def filter_logits_bisect(logits, top_k, top_p, *, use_top_k: bool, use_top_p: bool):
  """`filter_logits`' exact fallback on temperature-scaled logits: each filter finds its
  cutoff by bisection over the logits' order keys (`_cutoff_key`, 32 passes over the row):
  top-k keeps the logits >= the largest value with at least k logits at or above it, top-p
  those >= the largest value whose at-or-above probability mass reaches top_p (the smallest
  set of best tokens with mass >= top_p; ties at the cutoff are kept)."""
  keys = _order_keys(logits)
  if use_top_k:
    v = logits.shape[-1]
    k = jnp.clip(jnp.where(top_k > 0, top_k, v), 1, v).astype(jnp.float32)
    ones = jnp.ones_like(logits)
    cut = _cutoff_key(keys, ones, jnp.broadcast_to(k, (logits.shape[0], 1)))
    logits = jnp.where(keys < cut, _NEG, logits)
    keys = jnp.where(keys < cut, _order_keys(jnp.float32(_NEG)), keys)
  if use_top_p:
    probs = jax.nn.softmax(logits, axis=-1)
    target = top_p * jnp.sum(probs, axis=-1, keepdims=True)
    cut = _cutoff_key(keys, probs, target)
    logits = jnp.where(keys < cut, _NEG, logits)
  return logits


def filter_logits_sorted(logits, temperature, top_k, top_p, *, use_top_k: bool,
                         use_top_p: bool):
  """The sort-based definition of `filter_logits` (the reference its tests compare with)."""
  logits = logits / jnp.maximum(temperature, 1e-6)
  if not (use_top_k or use_top_p):
    return logits
  sorted_desc = -jnp.sort(-logits, axis=-1)
  v = logits.shape[-1]
  if use_top_k:
    k = jnp.clip(jnp.where(top_k > 0, top_k, v), 1, v)
    kth = jnp.take_along_axis(sorted_desc, jnp.broadcast_to(k - 1, (logits.shape[0], 1)), -1)
    logits = jnp.where(logits < kth, _NEG, logits)
    sorted_desc = jnp.where(sorted_desc < kth, _NEG, sorted_desc)
  if use_top_p:
    probs = jax.nn.softmax(sorted_desc, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs          # mass of strictly better tokens
    keep = before < top_p                                # always keeps the best token
    cutoff = jnp.min(jnp.where(keep, sorted_desc, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < cutoff, _NEG, logits)
  return logits


def sample_inverse_cdf(logits, u):
  """Exact categorical sample per row from one uniform u [B] in [0, 1) by inverting the CDF.

  One random number per row instead of a Gumbel per vocabulary entry (`jax.random.categorical`).
  In isolation on this CPU (batch 16, vocab 512) it took ~23 us per step against ~86 us; in the
  full decode loop the difference was within run-to-run noise.
  """
  p = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))
  cdf = jnp.cumsum(p, axis=-1)
  idx = jnp.sum(cdf < (u * cdf[:, -1])[:, None], axis=-1)
  return jnp.minimum(idx, logits.shape[-1] - 1)


def _broadcast_rows(cache: KVCache, logits, src):
  """The prefilled cache and last logits of the unique prompts, copied to the rows that
  sample them (row r continues prompt src[r])."""
  take = lambda x: jnp.take(x, src, axis=0)
  k = tuple(map(take, cache.k)) if isinstance(cache.k, tuple) else jnp.take(cache.k, src, 1)
  v = tuple(map(take, cache.v)) if isinstance(cache.v, tuple) else jnp.take(cache.v, src, 1)
  return cache.replace(k=k, v=v, start=take(cache.start)), take(logits)


@functools.partial(jax.jit, static_argnames=("cfg", "adapter", "new_bucket", "use_top_k",
                                             "use_top_p", "shared", "greedy"))
def _generate(params, prompt, prompt_len, row_valid, task_ids, row_ids, max_new, temperature,
              top_k, top_p, rng, stop_table, stop_seqs, src=None, prompt_task_ids=None, *,
              cfg: ModelConfig, adapter, new_bucket: int, use_top_k: bool, use_top_p: bool,
              shared: bool = False, greedy: bool = False):
  """prompt int32 [U, P] left-padded; returns (tokens [B, N], logprobs [B, N], lengths [B]).

  Without `shared`, U == B (row r samples prompt r). With `shared` (prefix sharing), the U
  unique prompts are prefilled once (with `prompt_task_ids` [U]) and row r continues prompt
  src[r]: the KV cache and last logits are broadcast to the B rows."""
  model = Transformer(cfg, adapter=adapter)
  b = row_ids.shape[0]
  u, p = prompt.shape
  start = (p - prompt_len).astype(jnp.int32)
  cache = KVCache.init(cfg, u, p + new_bucket, start=start)
  logits, cache = model.apply({"params": params}, prompt, cache=cache, last_only=True,
                              task_ids=prompt_task_ids if shared else task_ids)
  if shared:
    cache, logits = _broadcast_rows(cache, logits, src)
  # All uniforms up front in one vectorised call (threefry is a loop of tiny ops on CPU; per
  # step it cost more than the sampling itself). u[i, t] depends only on (rng, row_ids[i], t).
  row_keys = jax.vmap(lambda i: jax.random.fold_in(rng, i))(row_ids)
  step_u = jax.vmap(lambda k: jax.vmap(lambda t: jax.random.uniform(jax.random.fold_in(k, t)))(
      jnp.arange(new_bucket)))(row_keys)                                # [B, N]
  seq_len = stop_seqs.shape[1]
  stop_len = jnp.sum(stop_seqs >= 0, axis=-1)                         # [n_seqs], 0 = unused

  def sample(logits, step):
    if greedy:                  # its own program: no filters or CDF over the vocabulary
      return jnp.argmax(logits, -1).astype(jnp.int32)
    u = jax.lax.dynamic_index_in_dim(step_u, step, axis=1, keepdims=False)
    filtered = filter_logits(logits, temperature, top_k, top_p, use_top_k=use_top_k,
                             use_top_p=use_top_p)
    return sample_inverse_cdf(filtered, u).astype(jnp.int32)

  def cond(c):
    step, done = c[0], c[4]
    return (step < max_new) & ~jnp.all(done)

  def body(c):
    step, toks, lps, lengths, done, recent, logits, cache = c
    logits = logits[:, -1, :]
    tok = sample(logits, step)
    lp = jnp.take_along_axis(jax.nn.log_softmax(logits, -1), tok[:, None], -1)[:, 0]
    active = ~done
    tok = jnp.where(active, tok, cfg.pad_id)
    toks = jax.lax.dynamic_update_slice(toks, tok[:, None], (0, step))
    lps = jax.lax.dynamic_update_slice(lps, jnp.where(active, lp, 0.0)[:, None], (0, step))
    lengths = lengths + active.astype(jnp.int32)
    recent = jnp.concatenate([recent[:, 1:], tok[:, None]], axis=1)
    seq_hit = jnp.all((stop_seqs[None] < 0) | (recent[:, None, :] == stop_seqs[None]), -1)
    seq_hit = jnp.any(seq_hit & (stop_len[None] <= lengths[:, None]) & (stop_len[None] > 0), -1)
    done = done | (active & (stop_table[tok] | seq_hit))
    logits, cache = model.apply({"params": params}, tok[:, None], cache=cache, task_ids=task_ids)
    return step + 1, toks, lps, lengths, done, recent, logits, cache

  init = (jnp.zeros((), jnp.int32), jnp.full((b, new_bucket), cfg.pad_id, jnp.int32),
          jnp.zeros((b, new_bucket), jnp.float32), jnp.zeros((b,), jnp.int32), ~row_valid,
          jnp.full((b, seq_len), -1, jnp.int32), logits, cache)
  _, toks, lps, lengths, _, _, _, _ = jax.lax.while_loop(cond, body, init)
  return toks, lps, lengths


def sampler_mesh(devices) -> tuple:
  """(mesh, row sharding, replicated sharding) of the sampler: the batch split over `devices`,
  parameters replicated on each."""
  mesh = Mesh(np.array(list(devices)), ("data",))
  return mesh, NamedSharding(mesh, PartitionSpec("data")), NamedSharding(mesh, PartitionSpec())


def param_shardings(cfg: ModelConfig, adapter, mesh: Mesh, rules) -> object:
  """NamedShardings of the (unstacked) parameters by their logical axis names under `rules`
  (dims the mesh axes do not divide are replicated)."""
  tid = jnp.zeros((1,), jnp.int32) if adapter is not None and getattr(
      adapter, "uses_task_router", False) else None
  boxed = jax.eval_shape(lambda: Transformer(cfg, adapter=adapter).init(
      jax.random.key(0), jnp.zeros((1, 8), jnp.int32), task_ids=tid)["params"])
  specs = nn.get_partition_spec(boxed)
  shapes = nn.meta.unbox(boxed)

  def sharding(spec, shape):
    # A dim the mesh axes do not divide (a 259-token vocabulary over 4 shards) is replicated.
    mesh_spec = nn.logical_to_mesh_axes(spec, rules)
    dims = []
    for size, axes in zip(shape.shape, tuple(mesh_spec) + (None,) * len(shape.shape)):
      names = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
      n = int(np.prod([mesh.shape[a] for a in names])) if names else 1
      dims.append(axes if size % n == 0 else None)
    return NamedSharding(mesh, PartitionSpec(*dims))
  return jax.tree.map(sharding, specs, shapes, is_leaf=lambda x: isinstance(x, PartitionSpec))


def serving_rules(cfg: ModelConfig, rules, tensor: int) -> tuple:
  """`rules` for decoding on a `tensor`-way tensor axis: KV heads that do not divide it (MQA,
  e.g. Gemma 2B's single KV head) are replicated over the tensor shards, as tensor-parallel
  serving does, instead of split."""
  if cfg.num_kv_heads % max(tensor, 1) == 0:
    return tuple(rules)
  return tuple((k, None if k == "kv_heads" else v) for k, v in rules)


def lookup_for_mesh(cfg: ModelConfig, mesh: Mesh, rules) -> ModelConfig:
  """`cfg` with the vocab-parallel embedding lookup when `rules` split the vocabulary over
  `mesh` (`ModelConfig.embed_lookup`; a plain gather would replicate the table)."""
  axes = nn.logical_to_mesh_axes(("vocab",), rules)[0]
  axes = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
  if int(np.prod([mesh.shape[a] for a in axes])) > 1:
    return cfg.replace(embed_lookup="vocab_parallel")
  return cfg


def row_shards(mesh: Mesh, rules) -> tuple:
  """(row sharding, number of row shards) of a sharded sampler's batch."""
  spec = nn.logical_to_mesh_axes(("batch",), rules)
  axes = spec[0] if spec else None
  axes = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
  n = int(np.prod([mesh.shape[a] for a in axes])) if axes else 1
  return NamedSharding(mesh, spec), n


@contextlib.contextmanager
def _context(mesh, rules):
  if rules is None:
    yield
  else:
    with nn.logical_axis_rules(rules), jax.set_mesh(mesh):
      yield


def lower_generate(cfg: ModelConfig, abstract_params, *, batch: int, prompt_len: int,
                   new_tokens: int, adapter=None, devices=None, min_batch: int = 8,
                   mesh: Optional[Mesh] = None, rules=None):
  """`Sampler.generate`'s program (prefill + decode loop) AOT-lowered for these shapes, from
  abstract parameters (unstacked layers, `jax.ShapeDtypeStruct` leaves), as a Sampler over
  `devices` (or over `mesh` with `rules`: sharded parameters) would run it: for compiling and
  reading memory without weights (fit_check)."""
  cfg = cfg.replace(scan_layers=False)
  sds = lambda shape, dt, sh: jax.ShapeDtypeStruct(shape, dt, sharding=sh)
  if mesh is None:
    devices = list(jax.local_devices() if devices is None else devices)
    _, rows, rep = sampler_mesh(devices)
    n = len(devices)
    params = jax.tree.map(lambda x: sds(x.shape, x.dtype, rep), abstract_params)
  else:
    cfg = lookup_for_mesh(cfg, mesh, rules)
    rows, n = row_shards(mesh, rules)
    rep = NamedSharding(mesh, PartitionSpec())
    params = jax.tree.map(lambda x, sh: sds(x.shape, x.dtype, sh), abstract_params,
                          param_shardings(cfg, adapter, mesh, rules))
  b = -(-bucket(batch, max(min_batch, n)) // n) * n
  p, nb = bucket(prompt_len, 16), bucket(new_tokens, 16)
  i32, f32 = jnp.int32, jnp.float32
  with _context(mesh, rules):
    return _generate.lower(
        params, sds((b, p), i32, rows), sds((b,), i32, rows), sds((b,), jnp.bool_, rows),
        sds((b,), i32, rows), sds((b,), jnp.uint32, rows), i32(new_tokens), f32(0.0), i32(0),
        f32(1.0), jax.random.key(0),
        sds((cfg.vocab_size,), jnp.bool_, rep), sds((1, 1), i32, rep),
        cfg=cfg, adapter=adapter, new_bucket=nb, use_top_k=False, use_top_p=False)


class Sampler:
  """Batched sampling from a `Transformer` with params; see the module docstring.

  vocab: anything with `decode(ids) -> str` and `encode(str) -> ids` (a seqio Vocabulary);
  needed for `stop_strings` and `texts`. eos_ids default to `cfg.eos_ids` (every id of
  the checkpoint's eos_token_id list). `adapter`: the
  `AdapterConfig` of adapted params (pass `task_ids` to `generate` when it routes by task).
  """

  def __init__(self, cfg: ModelConfig, params, *, vocab=None, adapter=None,
               eos_ids: Optional[Sequence[int]] = None, min_batch: int = 8,
               min_prompt: int = 16, min_new: int = 16, devices=None,
               mesh: Optional[Mesh] = None, rules=None):
    if cfg.scan_layers:   # decode with per-layer cache buffers (updated in place)
      params = unstack_layers(params, cfg.num_layers) if "layers" in params else params
      cfg = cfg.replace(scan_layers=False)
    self.cfg, self.vocab, self.adapter = cfg, vocab, adapter
    self.rules = None
    if mesh is None:
      devices = list(jax.local_devices() if devices is None else devices)
      self.mesh, self._rows, self._replicated = sampler_mesh(devices)
      self.params = jax.device_put(nn.meta.unbox(params), self._replicated)
      n_rows = len(devices)
    else:
      if rules is None:
        raise ValueError("Sampler(mesh=...) needs the logical axis rules too")
      self.mesh, self.rules = mesh, tuple(rules)
      cfg = self.cfg = lookup_for_mesh(cfg, mesh, self.rules)
      self._rows, n_rows = row_shards(mesh, self.rules)
      self._replicated = NamedSharding(mesh, PartitionSpec())
      self.params = jax.device_put(nn.meta.unbox(params),
                                   param_shardings(cfg, adapter, mesh, self.rules))
    self._row_shards = n_rows
    if eos_ids is None:
      eos_ids = cfg.eos_ids
    self.eos_ids = tuple(int(e) for e in eos_ids)
    # Batch buckets (`bucket`) are multiples of the number of row shards.
    self.min_batch = max(min_batch, n_rows)
    self.min_prompt, self.min_new = min_prompt, min_new
    self._stop_cache: dict = {}
    self._stop_host: dict = {}
    self.prefill_tokens = 0          # prompt tokens prefilled so far (after prefix sharing)

  def _stop_tables(self, stop_strings: Sequence[str], stop_token_ids: Sequence[int]):
    key = (tuple(stop_strings), tuple(stop_token_ids))
    if key in self._stop_cache:
      return self._stop_cache[key]
    v = self.cfg.vocab_size
    table = np.zeros((v,), bool)
    for t in self.eos_ids + tuple(stop_token_ids):
      if not 0 <= t < v:
        raise ValueError(f"stop/eos token id {t} outside the vocabulary (size {v})")
      table[t] = True
    seqs = []
    if stop_strings:
      if self.vocab is None:
        raise ValueError("stop_strings need a vocab (Sampler(..., vocab=...))")
      pieces = vocab_pieces(self.vocab, v)
      for s in stop_strings:
        if not s:
          raise ValueError("empty stop string")
        table |= np.array([s in piece for piece in pieces])
        ids = [int(i) for i in self.vocab.encode(s)]
        if len(ids) > 1:
          seqs.append(ids)
    width = max([len(s) for s in seqs] + [1])
    arr = np.full((max(len(seqs), 1), width), -1, np.int32)
    for i, s in enumerate(seqs):
      arr[i, width - len(s):] = s
    out = jax.device_put((table, arr), self._replicated)
    self._stop_cache[key] = out
    self._stop_host[key] = (table, [s for s in seqs])
    return out

  def generate(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
               temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               rng=None, stop_strings: Sequence[str] = (),
               stop_token_ids: Sequence[int] = (),
               task_ids: Optional[Sequence[int]] = None,
               row_ids: Optional[Sequence[int]] = None,
               share_prefix: bool = True) -> SampleOutput:
    """Samples continuations of token-id `prompts` (lists of different lengths).

    temperature 0 is greedy. `rng` is a jax PRNG key or an int seed (required when sampling).
    `task_ids` (one per prompt) reach task-routed adapters. `row_ids` (one uint32 per prompt,
    default its position): row i draws its randomness from fold_in(rng, row_ids[i]), so a
    prompt given the same id samples the same continuation whatever batch it is in.
    `share_prefix`: rows with the same prompt (and task id) are prefilled once and their KV
    cache broadcast (n samples of one prompt, rollouts from one search state); the running
    count of prefilled prompt tokens is `self.prefill_tokens`.
    """
    if not prompts:
      raise ValueError("generate() needs at least one prompt")
    if any(len(p) == 0 for p in prompts):
      raise ValueError("every prompt needs at least one token (e.g. BOS)")
    if max_new_tokens < 1:
      raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
      raise ValueError(f"bad sampling settings: temperature={temperature}, top_k={top_k}, "
                       f"top_p={top_p}")
    if rng is None:
      if temperature > 0:
        raise ValueError("sampling with temperature > 0 needs an explicit rng (key or seed)")
      rng = 0
    if isinstance(rng, (int, np.integer)):
      rng = jax.random.key(int(rng))
    n = len(prompts)
    n_dev = self._row_shards
    b = -(-bucket(n, self.min_batch) // n_dev) * n_dev
    p = bucket(max(len(x) for x in prompts), self.min_prompt)
    new_bucket = bucket(max_new_tokens, self.min_new)
    if p + new_bucket > self.cfg.max_seq_len:
      raise ValueError(f"prompt bucket {p} + new-token bucket {new_bucket} exceeds "
                       f"max_seq_len={self.cfg.max_seq_len}")
    tids = np.zeros((b,), np.int32)
    if task_ids is not None:
      if len(task_ids) != n:
        raise ValueError(f"task_ids has {len(task_ids)} entries for {n} prompts")
      tids[:n] = task_ids
    # Prefix sharing: identical (prompt, task) rows are prefilled once.
    unique: dict = {}
    src = np.zeros((b,), np.int32)
    for i, x in enumerate(prompts):
      src[i] = unique.setdefault((tuple(int(t) for t in x), int(tids[i])), i)
    firsts = sorted(set(int(i) for i in src[:n]))
    src[:n] = np.searchsorted(firsts, src[:n])
    shared = share_prefix and len(firsts) < n
    rows_in = firsts if shared else list(range(n))
    u = -(-bucket(len(rows_in), self.min_batch) // n_dev) * n_dev if shared else b
    arr = np.full((u, p), self.cfg.pad_id, np.int32)
    lens = np.ones((u,), np.int32)
    for r, i in enumerate(rows_in):
      arr[r, p - len(prompts[i]):] = prompts[i]
      lens[r] = len(prompts[i])
    utids = np.zeros((u,), np.int32)
    utids[:len(rows_in)] = tids[rows_in]
    self.prefill_tokens += int(sum(len(prompts[i]) for i in rows_in))
    valid = np.arange(b) < n
    rids = np.arange(b, dtype=np.uint32)
    if row_ids is not None:
      if len(row_ids) != n:
        raise ValueError(f"row_ids has {len(row_ids)} entries for {n} prompts")
      rids[:n] = np.asarray([int(r) % 2**32 for r in row_ids], np.uint32)
    table, seqs = self._stop_tables(stop_strings, stop_token_ids)
    greedy = temperature == 0
    rows = lambda a: jax.device_put(a, self._rows)
    with _context(self.mesh, self.rules):
      toks, lps, lengths = _generate(
          self.params, rows(arr), rows(lens), rows(valid), rows(tids), rows(rids),
          jnp.int32(max_new_tokens), jnp.float32(temperature), jnp.int32(top_k),
          jnp.float32(top_p), rng, table, seqs, rows(src) if shared else None,
          rows(utids) if shared else None, cfg=self.cfg, adapter=self.adapter,
          new_bucket=new_bucket, use_top_k=top_k > 0 and not greedy,
          use_top_p=top_p < 1.0 and not greedy, shared=shared, greedy=greedy)
    toks, lps, lengths = jax.device_get((toks, lps, lengths))
    toks, lps, lengths = toks[:n, :max_new_tokens], lps[:n, :max_new_tokens], lengths[:n]
    texts = None
    # A row finished when it stopped before the limit, or its last token is a stop / EOS
    # token, or it ends with a multi-token stop sequence.
    host_table, host_seqs = self._stop_host[(tuple(stop_strings), tuple(stop_token_ids))]
    finished = np.array([
        int(l) < max_new_tokens or (int(l) > 0 and bool(host_table[int(row[int(l) - 1])])) or
        any(int(l) >= len(s) and list(row[int(l) - len(s):int(l)]) == list(s)
            for s in host_seqs)
        for row, l in zip(toks, lengths)], bool)
    if self.vocab is not None:
      toks, lps, lengths = np.array(toks), np.array(lps), np.array(lengths)
      if stop_strings:
        # A stop string can arrive in another tokenisation than its own ids (Gemma writes
        # "\n\n" + "Question" + ":" where "\nQuestion:" encodes as "\n" + ...): the loop
        # does not see it, the text does. Such a row ends at the token that completes it.
        for r in range(n):
          k = stop_length(self.vocab, toks[r, :lengths[r]], stop_strings)
          if k is not None and k <= lengths[r]:
            toks[r, k:], lps[r, k:], lengths[r], finished[r] = self.cfg.pad_id, 0.0, k, True
      texts = [_cut(self.vocab.decode([int(t) for t in row[:l]]), stop_strings)
               for row, l in zip(toks, lengths)]
    return SampleOutput(tokens=np.asarray(toks), logprobs=np.asarray(lps),
                        lengths=np.asarray(lengths), texts=texts, finished=finished)


_PIECES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def vocab_pieces(vocab, size: int) -> list:
  """Every id's decoded text, computed once per vocabulary object (256k decodes for Gemma),
  shared by every Sampler and stop-string set that uses it."""
  try:
    cached = _PIECES.get(vocab)
  except TypeError:            # not weak-referenceable: no cache
    cached = None
  if cached is None or len(cached) != size:
    cached = [_decode_one(vocab, i) for i in range(size)]
    try:
      _PIECES[vocab] = cached
    except TypeError:
      pass
  return cached


def _decode_one(vocab, i: int) -> str:
  try:
    return vocab.decode([i])
  except Exception:  # ids a vocab cannot decode alone (e.g. special ids) never stop generation
    return ""


def stop_length(vocab, tokens, stop_strings: Sequence[str]) -> Optional[int]:
  """The number of leading `tokens` whose decoded text first contains a stop string (the
  token that completes it included), or None when the decoded whole contains none. Bisection
  over prefixes (containment only grows with the prefix), O(log n) decodes."""
  ids = [int(t) for t in tokens]
  has = lambda k: any(s in vocab.decode(ids[:k]) for s in stop_strings if s)
  if not ids or not has(len(ids)):
    return None
  lo, hi = 0, len(ids)                   # has(hi) holds, has(lo) does not (nothing decoded)
  while hi - lo > 1:
    mid = (lo + hi) // 2
    lo, hi = (lo, mid) if has(mid) else (mid, hi)
  return hi


def _cut(text: str, stop_strings: Sequence[str]) -> str:
  """Cuts `text` right after the earliest occurrence of any stop string."""
  ends = [text.find(s) + len(s) for s in stop_strings if s and s in text]
  return text[:min(ends)] if ends else text


def host_devices(n: Optional[int] = None) -> None:
  """Splits the CPU into `n` (default: all cores) JAX host devices, so that `Sampler` runs one
  shard of the batch per core. Must run before JAX initialises its backends (first array op);
  does nothing if XLA_FLAGS already sets a host device count. Only affects the CPU platform."""
  import os
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_force_host_platform_device_count" not in flags:
    n = n or os.cpu_count() or 1
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
